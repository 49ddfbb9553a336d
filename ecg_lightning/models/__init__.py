"""Beat-classifier networks: plain nn.Modules mapping beat windows (and RR features) to logits per beat."""

from ecg_lightning.models.cnn import StudyCNN
from ecg_lightning.models.cnn_lstm import StudyCNNLSTM
from ecg_lightning.models.linear import BeatLinear
from ecg_lightning.models.resnet import BeatResNet
from ecg_lightning.models.sequence import BeatSequenceNet
from ecg_lightning.models.vote import ClassVote, NetworkMean

__all__ = ["BeatLinear", "BeatResNet", "BeatSequenceNet", "ClassVote", "NetworkMean", "StudyCNN", "StudyCNNLSTM"]
