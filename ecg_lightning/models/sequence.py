"""A beat-sequence model: each beat of a run encoded by a CNN, a bidirectional LSTM (or a small transformer) across
the beats, a class per beat.

The study's CNN+LSTM runs its LSTM across sub-sequences of one beat's window; here it runs across consecutive
beats, where rhythm lives: whether a beat comes early relative to its neighbours, whether its shape differs from
theirs, whether the rhythm around it is irregular (atrial fibrillation) — the context a single window cannot see
(Mousavi & Afghah 2019 took the same step).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ecg_lightning.errors import ConfigError
from ecg_lightning.models.cnn import logits_out
from ecg_lightning.models.dropout import FastDropout
from ecg_lightning.models.resnet import BeatResNet

# the P-wave path's samples are averaged over this many (360 Hz -> 90 Hz)
P_WAVE_POOL = 4


class BeatSequenceNet(nn.Module):
    """(batch, beats, leads, window) [+ RR (batch, beats, n_rr)] -> logits (batch, beats[, classes]).

    Each beat's window goes through a ``BeatResNet`` whose head outputs an ``embedding``-wide vector (the same
    network as the single-beat model, so one set of layers to maintain); its RR features join it, and a
    bidirectional LSTM of ``hidden`` units a direction reads the run both ways before a linear layer scores
    every beat. With ``contrast`` each beat's embedding also enters as its difference from the run's median
    embedding (the run's dominant beat): a local template, so a bundle-branch-block patient's wide beats look
    like their neighbours rather than like DS1's few ectopic beats. With ``rr_skip`` the RR features also reach
    the logits through one linear layer (a "wide" path beside the deep one): prematurity, the cue that carries
    supraventricular beats across patients, is then never hidden behind morphology the network learnt from DS1's
    few patients. With ``p_wave_s`` (seconds from the beat's annotation, e.g. [-0.3, -0.05]) that segment of every
    channel, averaged over ``P_WAVE_POOL`` samples, reaches the LSTM through one linear layer of ``p_wave_features``:
    the P wave, which tells an atrial beat from a sinus one, is small beside the QRS and would otherwise arrive only
    pooled with the rest of the window (docs/inter_patient.md, thirty-eighth round). With ``beat_dropout`` > 0,
    training zeroes whole beats' embeddings (each beat with that probability; ``nn.Dropout1d`` over the beats) while
    their RR features stay: the LSTM must then call those beats from their timing and their neighbours, the evidence
    that carries across patients, rather than from shapes learnt from DS1's few S patients (thirty-ninth round).
    With ``template_difference`` (record templates served: the second half of the input channels) each beat enters
    as its difference from its record's template and the template itself is left out: the encoder sees how a beat
    departs from its patient's own beat, never the patient's beat shape (a bundle-branch block's QRS, a patient's P
    wave), the kind of patient signature whose hiding gave the forty-first and forty-fourth rounds' gains (sixtieth).
    With ``across="transformer"`` a small transformer encoder (``layers`` layers, ``heads`` heads, width ``2 *
    hidden``, sine positions) reads the run in place of the LSTM: every beat attends to every other beat of the run
    at once, where the LSTM carries context step by step (the issue's "or a small transformer"; eightieth round).
    """

    def __init__(
        self,
        input_length: int = 720,
        fs: float = 360.0,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 7,
        stem_stride: int = 4,
        dropout: float = 0.2,
        center_s: float = 0.4,
        embedding: int = 32,
        hidden: int = 32,
        layers: int = 1,
        head_dropout: float = 0.3,
        n_rr: int = 0,
        in_channels: int = 1,
        n_outputs: int = 1,
        contrast: bool = False,
        rr_skip: bool = False,
        p_wave_s: Sequence[float] | None = None,
        p_wave_features: int = 8,
        beat_dropout: float = 0.0,
        template_difference: bool = False,
        across: str = "lstm",
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.embedding_size = embedding  # what a patient adversary (models/adversary.py) reads
        self.contrast = contrast
        self.template_difference = template_difference
        if template_difference:
            if in_channels % 2:
                raise ConfigError(
                    f"model.net.template_difference=true takes each lead's beat minus its template: set "
                    f"data.templates=true (the input has {in_channels} channels, not leads + their templates)"
                )
            in_channels //= 2
        self.encoder = BeatResNet(
            input_length,
            fs,
            channels,
            kernel_size,
            stem_stride,
            dropout,
            head_dropout=0.0,
            center_s=center_s,
            in_channels=in_channels,
            n_outputs=embedding,
        )
        # (batch, beats, embedding): Dropout1d's "channels" are the beats, so a dropped beat loses its whole embedding
        self.beat_dropout = nn.Dropout1d(beat_dropout) if beat_dropout > 0 else None
        self.n_rr = n_rr
        self.p_wave_slice, self.p_wave = None, None
        if p_wave_s is not None:
            start, stop = (input_length // 2 + round(float(t) * fs) for t in p_wave_s) if len(p_wave_s) == 2 else (0, 0)
            if not 0 <= start <= stop - P_WAVE_POOL or stop > input_length:
                raise ValueError(
                    f"model.net.p_wave_s={list(p_wave_s)}: give [start, end] seconds from the beat, inside its window "
                    f"of ±{input_length / 2 / fs:g} s and at least {P_WAVE_POOL} samples long"
                )
            self.p_wave_slice = slice(start, stop)
            steps = (stop - start) // P_WAVE_POOL
            self.p_wave = nn.Sequential(
                nn.AvgPool1d(P_WAVE_POOL),
                nn.Flatten(),
                nn.Linear(in_channels * steps, p_wave_features),
                nn.ReLU(inplace=True),
            )
        p_width = p_wave_features if self.p_wave is not None else 0
        width = embedding * (2 if contrast else 1) + p_width + n_rr
        # the layer across the beats keeps the name rnn, which trained checkpoints' LSTM weights carry
        if across == "lstm":
            self.rnn = nn.LSTM(width, hidden, num_layers=layers, batch_first=True, bidirectional=True)
        elif across == "transformer":
            if (2 * hidden) % heads:
                raise ConfigError(
                    f"model.net.heads={heads} must divide the transformer's width 2 * model.net.hidden = {2 * hidden}"
                )
            self.rnn = BeatTransformer(width, 2 * hidden, heads, layers)
        else:
            raise ConfigError(f"model.net.across={across!r}: give lstm or transformer")
        self.head = nn.Sequential(FastDropout(head_dropout), nn.Linear(2 * hidden, n_outputs))
        self.rr_skip = nn.Linear(n_rr, n_outputs) if rr_skip and n_rr else None

    def forward(
        self, x: torch.Tensor, rr: torch.Tensor | None = None, embeddings: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Logits (batch, beats[, classes]); with ``embeddings`` also each beat's encoding (batch, beats,
        ``embedding_size``), the encoder's output before anything else joins it."""
        if x.dim() != 4:
            raise ValueError(
                f"a beat-sequence model takes runs of beats (batch, beats, leads, window), got {tuple(x.shape)}: "
                "set data.run_beats > 1"
            )
        batch, beats = x.shape[:2]
        if self.template_difference:
            leads = x.shape[2] // 2
            x = x[:, :, :leads] - x[:, :, leads:]
        z = self.encoder(x.flatten(0, 1)).reshape(batch, beats, -1)
        encoded = z
        if self.beat_dropout is not None:
            z = self.beat_dropout(z)
        if self.contrast:
            z = torch.cat([z, z - z.median(dim=1, keepdim=True).values], dim=-1)
        if self.p_wave is not None:
            z = torch.cat([z, self.p_wave_of(x)], dim=-1)
        if self.n_rr:
            if rr is None:
                raise ValueError("this network was built with n_rr > 0: set data.rr_features")
            z = torch.cat([z, rr], dim=-1)
        h, _ = self.rnn(z)
        logits = self.head(h)
        if self.rr_skip is not None:
            logits = logits + self.rr_skip(rr)
        return (logits_out(logits), encoded) if embeddings else logits_out(logits)

    def p_wave_of(self, x: torch.Tensor) -> torch.Tensor:
        """The P-wave path's features of every beat of runs (batch, beats, leads, window): (batch, beats, features)."""
        batch, beats = x.shape[:2]
        return self.p_wave(x.flatten(0, 1)[..., self.p_wave_slice]).reshape(batch, beats, -1)


class BeatTransformer(nn.Module):
    """(batch, beats, features) -> ((batch, beats, width), None): a linear projection, sine positions, then
    ``layers`` pre-norm attention blocks across the beats and a final norm; it returns what an LSTM returns so that
    either reads a run. The blocks are written out (``AttentionBlock``), not ``nn.TransformerEncoder``, whose
    attention fixes the traced batch and run length in an exported ONNX graph."""

    def __init__(self, features: int, width: int, heads: int, layers: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(features, width)
        self.blocks = nn.Sequential(*(AttentionBlock(width, heads, dropout) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        h = self.project(z)
        return self.norm(self.blocks(h + sine_positions(h.shape[1], h.shape[2], h.device, h.dtype))), None


class AttentionBlock(nn.Module):
    """One pre-norm transformer block: every beat attends to every beat of its run, then a feed-forward layer of
    twice the width, each added back to its input."""

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.feed = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * width, width)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # (batch, beats, 3 * width) -> three (batch, heads, beats, width / heads); -1, not sizes, so any run exports
        q, k, v = self.qkv(self.norm1(h)).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        mixed = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        h = h + self.drop(self.out(mixed.transpose(1, 2).flatten(2)))
        return h + self.drop(self.feed(self.norm2(h)))


def sine_positions(beats: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Vaswani et al.'s sine and cosine position codes (beats, width): any run length, no weights to learn."""
    position = torch.arange(beats, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / width))
    codes = torch.zeros(beats, width, device=device, dtype=torch.float32)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate[: width // 2])
    return codes.to(dtype)
