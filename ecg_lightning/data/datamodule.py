"""LightningDataModule serving patient-split MIT-BIH beat windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from ecg_lightning.data import cache
from ecg_lightning.data.labels import STUDY_ABNORMAL, STUDY_NORMAL, label_beats
from ecg_lightning.data.records import RecordSet, ensure_database
from ecg_lightning.data.split import STUDY_BIN_EDGES, abnormal_fraction, holdout_split, kfold_split, subject_ids
from ecg_lightning.data.windows import (
    Augment,
    BeatIndex,
    BeatWindowDataset,
    EpochShuffle,
    index_beats,
    passthrough_collate,
)

log = logging.getLogger(__name__)

SPLITS = ("seed", "patient", "kfold")


class MITBIHDataModule(L.LightningDataModule):
    """Beat windows of a WFDB arrhythmia database, split by patient.

    Args:
        root: database folder (RECORDS, *.hea, *.dat, *.atr).
        download: fetch MIT-BIH into ``root`` when it has no records.
        records: record names to use (default: all in RECORDS).
        lead: channel index (the study: 0) or signal name (e.g. "MLII"; channel 0 where a record lacks it).
        fs: sampling rate the records must have (or are resampled to).
        band: band-pass (low, high) in Hz applied before standardization (None: raw, as in the study).
        window_s: seconds of signal on each side of the beat.
        rr_features: also serve RR-interval features (data/rr.py) with each window.
        augment: training-time augmentation: jitter_s (max window shift, s), scale, noise (see windows.Augment).
        normal, abnormal: annotation symbols of each class; others are not beats.
        split: "seed" (the study's record split), "patient" (same, grouping records by subject) or "kfold".
        val_fraction, split_seed, bin_edges: the stratified hold-out split.
        fold, n_folds: which fold of the subject-grouped k-fold is validation.
        same_subject: groups of records from one subject.
        cache_dir: where the read records are cached (None: no cache).
        seed: seeds shuffling and augmentation (per epoch and batch, independent of the global RNG).
    """

    def __init__(
        self,
        root: str | Path,
        download: bool = True,
        records: Sequence[str] | None = None,
        lead: int | str = 0,
        fs: float = 360.0,
        band: Sequence[float] | None = None,
        window_s: float = 3.0,
        rr_features: bool = False,
        augment: dict | None = None,
        normal: Sequence[str] = STUDY_NORMAL,
        abnormal: Sequence[str] = STUDY_ABNORMAL,
        split: str = "seed",
        val_fraction: float = 0.25,
        split_seed: int = 42,
        bin_edges: Sequence[float] = STUDY_BIN_EDGES,
        fold: int = 0,
        n_folds: int = 4,
        same_subject: Sequence[Sequence[str]] = (("201", "202"),),
        cache_dir: str | Path | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if split not in SPLITS:
            raise ValueError(f"data.split={split!r}; choose one of {SPLITS}")
        self.save_hyperparameters(logger=False)
        self.root = Path(root).expanduser()
        self.half_width = int(round(window_s * fs))
        self.records: RecordSet | None = None
        self.beats: BeatIndex | None = None
        self.train_records: list[str] = []
        self.val_records: list[str] = []
        self.data_train: BeatWindowDataset | None = None
        self.data_val: BeatWindowDataset | None = None

    @property
    def window_length(self) -> int:
        return 2 * self.half_width

    def prepare_data(self) -> None:
        ensure_database(self.root, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.data_train is not None:
            return
        hp = self.hparams
        names = [str(r) for r in hp.records] if hp.records else ensure_database(self.root, hp.download)
        cache_dir = Path(hp.cache_dir).expanduser() if hp.cache_dir else None
        band = tuple(float(f) for f in hp.band) if hp.band else None
        self.records = cache.load_or_read(self.root, names, hp.lead, float(hp.fs), cache_dir, band)
        labels = label_beats(self.records.ann_symbol, hp.normal, hp.abnormal)
        self.beats = index_beats(self.records, labels, self.half_width)
        self.train_records, self.val_records = self._split()
        in_train = np.isin(self.records.names, self.train_records)[self.beats.record]
        self.data_train = BeatWindowDataset(
            self.records, self.beats.subset(in_train), self.half_width, hp.rr_features, self._augment(), hp.seed
        )
        self.data_val = BeatWindowDataset(self.records, self.beats.subset(~in_train), self.half_width, hp.rr_features)
        self._log_summary()

    def _augment(self) -> Augment:
        spec = dict(self.hparams.augment or {})
        jitter = int(round(float(spec.pop("jitter_s", 0.0)) * self.hparams.fs))
        return Augment(jitter=jitter, **spec)

    @property
    def abnormal_weight(self) -> float:
        """Normal / abnormal windows in the training set: the BCE ``pos_weight`` that balances the classes."""
        positives = float(self.data_train.labels.sum())
        return (len(self.data_train) - positives) / max(positives, 1.0)

    def _split(self) -> tuple[list[str], list[str]]:
        hp, names = self.hparams, self.records.names
        fraction = abnormal_fraction(self.beats.record, self.beats.label, len(names))
        windows = np.bincount(self.beats.record, minlength=len(names)).astype(np.float64)
        if hp.split == "seed":
            return holdout_split(names, fraction, windows, hp.val_fraction, hp.split_seed, None, hp.bin_edges)
        subjects = subject_ids(names, hp.same_subject)
        if hp.split == "patient":
            return holdout_split(names, fraction, windows, hp.val_fraction, hp.split_seed, subjects, hp.bin_edges)
        return kfold_split(names, fraction, windows, subjects, hp.fold, hp.n_folds, hp.split_seed, hp.bin_edges)

    def _log_summary(self) -> None:
        for side, records, data in (("train", self.train_records, self.data_train), ("val", self.val_records, self.data_val)):
            log.info(
                "%s: %d records, %d windows, %.1f%% abnormal",
                side, len(records), len(data), 100 * float(data.labels.mean()) if len(data) else 0.0,
            )
        log.info("val records: %s", " ".join(self.val_records))

    def eval_dataset(self, side: str) -> BeatWindowDataset:
        """Windows of one side ("train", "val" or "all") without augmentation, for evaluation."""
        beats = {"train": self.data_train.beats, "val": self.data_val.beats, "all": self.beats}.get(side)
        if beats is None:
            raise ValueError(f"side={side!r}; choose train, val or all")
        return BeatWindowDataset(self.records, beats, self.half_width, self.hparams.rr_features)

    def loader(self, data: BeatWindowDataset, batch_size: int | None = None) -> DataLoader:
        """An ordered loader over ``data`` (evaluation and prediction)."""
        return DataLoader(data, batch_size=batch_size or self.hparams.batch_size, collate_fn=passthrough_collate)

    @property
    def nbytes(self) -> int:
        """Memory of the signals plus both sides' indexes."""
        return self.records.signal.nbytes + self.data_train.nbytes + self.data_val.nbytes

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _loader(self, data: BeatWindowDataset, shuffle: bool) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.hparams.batch_size,
            sampler=EpochShuffle(len(data), self.hparams.seed, self._current_epoch) if shuffle else None,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            collate_fn=passthrough_collate,
            generator=torch.Generator().manual_seed(self.hparams.seed),  # worker seeds, not the global RNG
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data_train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data_val, shuffle=False)
