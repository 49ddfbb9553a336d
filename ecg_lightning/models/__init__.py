"""Beat-classifier networks: plain nn.Modules mapping (batch, 1, window) to one logit per window."""

from ecg_lightning.models.cnn import StudyCNN
from ecg_lightning.models.cnn_lstm import StudyCNNLSTM

__all__ = ["StudyCNN", "StudyCNNLSTM"]
