"""The study's 1D CNN."""

from __future__ import annotations

import torch
from torch import nn


def study_conv_features(channels: int = 8, kernel_size: int = 4) -> nn.Sequential:
    """Conv1d(1->channels) with Keras "same" padding (the extra pad on the right for even kernels), ReLU, flatten."""
    pad = kernel_size - 1
    return nn.Sequential(
        nn.ConstantPad1d((pad // 2, pad - pad // 2), 0.0),
        nn.Conv1d(1, channels, kernel_size),
        nn.ReLU(),
        nn.Flatten(),
    )


class StudyCNN(nn.Module):
    """Conv1d(1->8, k=4, "same", ReLU) -> flatten -> Dropout(0.5) -> Linear -> 1 logit (17,321 params at 2160)."""

    def __init__(self, input_length: int = 2160, channels: int = 8, kernel_size: int = 4, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = study_conv_features(channels, kernel_size)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(channels * input_length, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(-1)
