"""From WFDB files to batches: records -> labelled beats -> subject split -> windows cut at batch time."""

from ecg_lightning.data.datamodule import BeatDataModule, MITBIHDataModule

__all__ = ["BeatDataModule", "MITBIHDataModule"]
