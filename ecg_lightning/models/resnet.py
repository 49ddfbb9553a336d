"""A residual 1D CNN for beat windows, optionally fed RR-interval features: our stronger model."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ecg_lightning.models.cnn import MatmulConv1d, logits_out
from ecg_lightning.models.dropout import FastDropout


class TimeConv(nn.Conv1d):
    """``nn.Conv1d`` that also takes (batch, channels, 1, time) input, as a (1, k) 2-D convolution.

    Why: on the CPU, oneDNN runs a 2-D convolution on channels-last tensors without reordering every input and
    output to its blocked layout, which 1-D convolutions pay at each call; BeatResNet's training step is ~1.3x
    faster so (benchmarks/step_parts.py). Same parameters (checkpoints are interchangeable) and the same
    convolution, summed in another order.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        stride, padding, dilation = (1, self.stride[0]), (0, self.padding[0]), (1, self.dilation[0])
        return F.conv2d(x, self.weight.unsqueeze(2), self.bias, stride, padding, dilation, self.groups)


class TimeBatchNorm(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also takes (batch, channels, 1, time) input (batch norm is per channel either way)."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected 2-D, 3-D or 4-D input (got {x.dim()}-D input)")


class TimeMaxPool(nn.MaxPool1d):
    """``nn.MaxPool1d`` that also takes (batch, channels, 1, time) input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return super().forward(x)
        return F.max_pool2d(x, (1, self.kernel_size), (1, self.stride), (0, self.padding), (1, self.dilation))


def time_layout(x: torch.Tensor) -> torch.Tensor:
    """(batch, channels, time) -> (batch, channels, 1, time), channels-last on the CPU (see ``TimeConv``)."""
    x = x.unsqueeze(2)
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x


class ResidualBlock(nn.Module):
    """Two conv-BN layers with a (strided) skip connection."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, stride: int, dropout: float) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            TimeConv(c_in, c_out, kernel_size, stride, pad, bias=False),
            TimeBatchNorm(c_out),
            nn.ReLU(inplace=True),
            FastDropout(dropout),
            TimeConv(c_out, c_out, kernel_size, 1, pad, bias=False),
            TimeBatchNorm(c_out),
        )
        self.skip = (
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(TimeConv(c_in, c_out, 1, stride, bias=False), TimeBatchNorm(c_out))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class BeatResNet(nn.Module):
    """Strided stem, residual stages, then the centre beat's features + whole-window context (+ RR features).

    The label belongs to the beat in the middle of the window, so besides a global average over the window
    (rhythm context) the head sees the feature map averaged over the central ``center_s`` seconds. ``width``
    scales every stage's channels (a capacity setting to search).
    """

    def __init__(
        self,
        input_length: int = 2160,
        fs: float = 360.0,
        channels: Sequence[int] = (16, 32, 64, 64),
        kernel_size: int = 7,
        stem_stride: int = 4,
        dropout: float = 0.2,
        head_dropout: float = 0.5,
        center_s: float = 0.4,
        n_rr: int = 0,
        in_channels: int = 1,
        n_outputs: int = 1,
        width: float = 1.0,
    ) -> None:
        super().__init__()
        channels = [max(1, round(c * width)) for c in channels]
        # the stem's convolution sees the raw (batch, leads, time) window; everything after it runs on
        # (batch, channels, 1, time) tensors (time_layout)
        self.stem = nn.Sequential(
            MatmulConv1d(in_channels, channels[0], 15, stride=stem_stride, padding=7, bias=False),
            TimeBatchNorm(channels[0]),
            nn.ReLU(inplace=True),
            TimeMaxPool(2),
        )
        blocks, c_in = [], channels[0]
        for c_out in channels:
            blocks.append(ResidualBlock(c_in, c_out, kernel_size, stride=2, dropout=dropout))
            c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.downsampling = stem_stride * 2 * 2 ** len(channels)
        self.center_steps = max(1, round(center_s * fs / self.downsampling))
        self.n_rr = n_rr
        head_in = 2 * c_in + (16 if n_rr else 0)
        self.rr = nn.Sequential(nn.Linear(n_rr, 16), nn.ReLU(inplace=True)) if n_rr else None
        self.head = nn.Sequential(
            FastDropout(head_dropout), nn.Linear(head_in, 64), nn.ReLU(inplace=True), nn.Linear(64, n_outputs)
        )

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.stages(self.stem[1:](time_layout(self.stem[0](x)))).squeeze(2), rr)

    def classify(self, z: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        """Logits from the stages' feature map z (batch, channels, time): centre beat, whole window, RR."""
        mid, half = z.shape[-1] // 2, self.center_steps // 2
        center = z[..., mid - half : mid - half + self.center_steps].mean(-1)
        parts = [center, z.mean(-1)]
        if self.rr is not None:
            if rr is None:
                raise ValueError("this network was built with n_rr > 0: set data.rr_features=true")
            parts.append(self.rr(rr))
        return logits_out(self.head(torch.cat(parts, dim=1)))
