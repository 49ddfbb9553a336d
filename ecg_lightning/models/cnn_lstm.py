"""The study's CNN+LSTM: a shared CNN over sub-sequences (Keras TimeDistributed), then an LSTM across them."""

from __future__ import annotations

import torch
from torch import nn

from ecg_lightning.models.cnn import logits_out, study_conv_features


class StudyCNNLSTM(nn.Module):
    """Window cut into ``n_steps`` sub-sequences; Conv1d(1->8, k=4, "same", ReLU) + flatten on each; LSTM(4); Linear.

    PyTorch's LSTM has two bias vectors where Keras has one, so it carries 4 x hidden more parameters
    than the Keras model (69,261 vs 69,245 at window 2160). The LSTM is initialized as Keras does
    (``keras_init``): PyTorch's default U(+-1/sqrt(hidden)) = U(+-0.5) on 4,320 inputs saturates the gates.
    """

    def __init__(
        self,
        input_length: int = 2160,
        n_steps: int = 4,
        channels: int = 8,
        kernel_size: int = 4,
        hidden_size: int = 4,
        keras_init: bool = True,
        in_channels: int = 1,
        n_outputs: int = 1,
    ) -> None:
        super().__init__()
        if input_length % n_steps:
            raise ValueError(f"input_length={input_length} does not split into n_steps={n_steps} equal sub-sequences")
        self.n_steps = n_steps
        self.step_length = input_length // n_steps
        self.features = study_conv_features(channels, kernel_size, in_channels)
        self.lstm = nn.LSTM(channels * self.step_length, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, n_outputs)
        if keras_init:
            self._init_lstm_like_keras()

    def _init_lstm_like_keras(self) -> None:
        """Glorot-uniform input weights, orthogonal recurrent weights, zero biases with forget-gate bias 1."""
        hidden = self.lstm.hidden_size
        for gate in range(4):  # torch packs the gates (input, forget, cell, output) along dim 0
            rows = slice(gate * hidden, (gate + 1) * hidden)
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0.data[rows])
            nn.init.orthogonal_(self.lstm.weight_hh_l0.data[rows])
        nn.init.zeros_(self.lstm.bias_ih_l0)
        nn.init.zeros_(self.lstm.bias_hh_l0)
        self.lstm.bias_ih_l0.data[hidden : 2 * hidden] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, leads = x.shape[:2]
        # sub-sequences in time order, each with all its leads: (batch * n_steps, leads, step_length)
        steps = x.reshape(batch, leads, self.n_steps, self.step_length).transpose(1, 2)
        features = self.features(steps.reshape(batch * self.n_steps, leads, self.step_length))
        _, (hidden, _) = self.lstm(features.reshape(batch, self.n_steps, -1))
        return logits_out(self.head(hidden[-1]))
