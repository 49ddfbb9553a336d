"""The study's 1D CNN."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ecg_lightning.models.dropout import FastDropout, ReluDropoutLinear


class MatmulConv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation or groups) whose CPU training pass is one batched matmul.

    Why: for a convolution of few input channels over a long input (the study's Conv1d(1->8, k=4) over 2160
    samples, BeatResNet's stem Conv1d(1->16, k=15, stride 4)) oneDNN's backward takes ~8 ms a batch of 128 on 2
    threads, ~70 % of a study-CNN step. The same convolution as weight (out, in x k) @ the input's strided
    windows ((batch, in x k, positions), from ``unfold``) takes a third of that forward and backward. Same
    parameters (checkpoints are interchangeable with ``nn.Conv1d``), the same output up to float rounding;
    inference and other devices use the standard convolution. With many input channels oneDNN is faster: use
    ``nn.Conv1d`` there.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        plain = self.dilation == (1,) and self.groups == 1 and self.padding_mode == "zeros"
        if not (plain and self.training and torch.is_grad_enabled() and x.device.type == "cpu"):
            return super().forward(x)
        if isinstance(self.padding, str):
            return super().forward(x)
        if self.padding[0]:
            x = F.pad(x, (self.padding[0], self.padding[0]))
        batch, stride = x.shape[0], self.stride[0]
        # windows[b, c * k + j, t] = x[b, c, stride * t + j]
        windows = x.unfold(-1, self.kernel_size[0], stride).transpose(-1, -2)
        positions = windows.shape[-1]
        # contiguous: for one input channel the reshape is a view with overlapping strides, which sends both bmm
        # passes through a per-window loop of copies (2.9 ms a study-CNN batch on 2 threads; 1.4 ms contiguous)
        windows = windows.reshape(batch, -1, positions).contiguous()
        weight = self.weight.reshape(1, self.out_channels, -1).expand(batch, -1, -1)
        if self.bias is None:
            return torch.bmm(weight, windows)
        return torch.baddbmm(self.bias.view(1, -1, 1).expand(batch, -1, positions), weight, windows)


def study_conv_features(channels: int = 8, kernel_size: int = 4, in_channels: int = 1) -> nn.Sequential:
    """Conv1d(in_channels->channels), Keras "same" padding (extra pad on the right for even kernels), ReLU, flatten."""
    pad = kernel_size - 1
    return nn.Sequential(
        nn.ConstantPad1d((pad // 2, pad - pad // 2), 0.0),
        MatmulConv1d(in_channels, channels, kernel_size),
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
        pad, conv, _relu, _flatten = self.features
        dropout, linear = self.head
        if self.training and dropout.p > 0.0 and x.device.type == "cpu" and torch.is_grad_enabled():
            # the same operations, ReLU -> flatten -> dropout -> linear as one autograd node (fewer passes)
            return logits_out(ReluDropoutLinear.apply(conv(pad(x)), linear.weight, linear.bias, 1.0 - dropout.p))
        return logits_out(self.head(self.features(x)))
