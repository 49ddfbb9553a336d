"""The study's 1D CNN."""

from __future__ import annotations

import torch
from torch import nn

from ecg_lightning.models.dropout import FastDropout


def study_conv_features(channels: int = 8, kernel_size: int = 4, in_channels: int = 1) -> nn.Sequential:
    """Conv1d(in_channels->channels), Keras "same" padding (extra pad on the right for even kernels), ReLU, flatten."""
    pad = kernel_size - 1
    return nn.Sequential(
        nn.ConstantPad1d((pad // 2, pad - pad // 2), 0.0),
        nn.Conv1d(in_channels, channels, kernel_size),
        nn.ReLU(),
        nn.Flatten(),
    )


def logits_out(z: torch.Tensor) -> torch.Tensor:
    """(batch,) for a one-logit (binary) head, (batch, classes) otherwise."""
    return z.squeeze(-1) if z.shape[-1] == 1 else z


class StudyCNN(nn.Module):
    """Conv1d(1->8, k=4, "same", ReLU) -> flatten -> Dropout(0.5) -> Linear -> 1 logit (17,321 params at 2160).

    ``in_channels`` leads and ``n_outputs`` logits (one per class beyond the binary task) generalize it.
    """

    def __init__(
        self,
        input_length: int = 2160,
        channels: int = 8,
        kernel_size: int = 4,
        dropout: float = 0.5,
        in_channels: int = 1,
        n_outputs: int = 1,
    ) -> None:
        super().__init__()
        self.features = study_conv_features(channels, kernel_size, in_channels)
        self.head = nn.Sequential(FastDropout(dropout), nn.Linear(channels * input_length, n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_out(self.head(self.features(x)))
