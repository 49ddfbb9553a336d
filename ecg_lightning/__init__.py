"""ecg-lightning: abnormal-heartbeat detection on MIT-BIH with PyTorch Lightning and Hydra."""

__version__ = "0.1.0"
