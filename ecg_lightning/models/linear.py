"""The linear floor: one linear layer on a short, decimated stretch of the beat and its RR features."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ecg_lightning.errors import ConfigError
from ecg_lightning.models.cnn import logits_out

# how the stretch of the beat becomes n_samples numbers: block means (a low-pass) or single samples (the issue's
# logistic regression; aliased above n_samples / (before_s + after_s) / 2 Hz)
POOLING = ("mean", "sample")


class BeatLinear(nn.Module):
    """Multinomial logistic regression on ``n_samples`` block means of the signal from ``before_s`` before to
    ``after_s`` after the beat (each lead), plus the RR features: the classic inter-patient baseline (de Chazal
    2004 used linear discriminants on such features). A network that does not beat it on S and V is not learning
    what generalizes to new patients.
    """

    def __init__(
        self,
        input_length: int = 720,
        fs: float = 360.0,
        before_s: float = 0.25,
        after_s: float = 0.35,
        n_samples: int = 24,
        n_rr: int = 0,
        in_channels: int = 1,
        n_outputs: int = 1,
        pooling: str = "mean",
    ) -> None:
        super().__init__()
        if pooling not in POOLING:
            raise ConfigError(f"model.net.pooling={pooling!r}; choose one of {POOLING}")
        centre = input_length // 2
        self.lo, self.hi = centre - round(before_s * fs), centre + round(after_s * fs)
        if self.lo < 0 or self.hi > input_length or self.hi - self.lo < n_samples:
            raise ValueError(
                f"-{before_s} s .. +{after_s} s around the beat ({n_samples} samples) does not fit a window of "
                f"{input_length} samples at {fs} Hz; widen data.window_s or narrow model.net.before_s/after_s"
            )
        self.n_samples, self.n_rr, self.pooling = n_samples, n_rr, pooling
        # pooling="sample": the sample at the centre of each block (a buffer: moves with the model, not saved)
        step = (self.hi - self.lo) / n_samples
        self.register_buffer("centres", ((torch.arange(n_samples) + 0.5) * step).long(), persistent=False)
        self.linear = nn.Linear(in_channels * n_samples + n_rr, n_outputs)

    def features(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, leads x n_samples [+ n_rr]): the decimated beat of each lead, then the RR features."""
        beat = x[..., self.lo : self.hi]
        if self.pooling == "mean":
            parts = [F.adaptive_avg_pool1d(beat, self.n_samples).flatten(1)]
        else:
            parts = [beat[..., self.centres].flatten(1)]
        if self.n_rr:
            if rr is None:
                raise ValueError("this network was built with n_rr > 0: set data.rr_features")
            parts.append(rr)
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        return logits_out(self.linear(self.features(x, rr)))
