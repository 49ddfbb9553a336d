"""Beat-classifier networks: plain nn.Modules mapping (batch, 1, window) to one logit per window."""

from ecg_lightning.models.cnn import StudyCNN
from ecg_lightning.models.cnn_lstm import StudyCNNLSTM
from ecg_lightning.models.resnet import BeatResNet

__all__ = ["BeatResNet", "StudyCNN", "StudyCNNLSTM"]
