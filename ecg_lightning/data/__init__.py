"""From WFDB files to batches: records -> labelled beats -> patient split -> windows cut at batch time."""

from ecg_lightning.data.datamodule import MITBIHDataModule

__all__ = ["MITBIHDataModule"]
