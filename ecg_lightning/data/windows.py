"""Beat windows: an index of (record, sample, label) and a Dataset that cuts the windows when a batch is drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ecg_lightning.data.labels import DROPPED
from ecg_lightning.data.records import RecordSet
from ecg_lightning.data.rr import rr_features


@dataclass(frozen=True)
class BeatIndex:
    """Labelled beats whose whole window lies inside their record."""

    record: np.ndarray  # int32 record index into RecordSet.names
    sample: np.ndarray  # int64 beat sample within its record (window centre)
    label: np.ndarray  # int8, 0 normal / 1 abnormal
    symbol: np.ndarray  # annotation symbol
    rr: np.ndarray  # float32 (n, 5) RR-interval features (data/rr.py), from all beats of the record

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, mask: np.ndarray) -> "BeatIndex":
        return BeatIndex(self.record[mask], self.sample[mask], self.label[mask], self.symbol[mask], self.rr[mask])


def index_beats(records: RecordSet, labels: np.ndarray, half_width: int) -> BeatIndex:
    """Keep labelled beats with ``half_width`` samples of signal on each side (a beat too near an edge is dropped).

    RR features are computed over every labelled beat first, so an edge beat still counts as a neighbour.
    """
    is_beat = labels != DROPPED
    rr = np.zeros((len(labels), 5), dtype=np.float32)
    rr[is_beat] = rr_features(records.ann_record[is_beat], records.ann_sample[is_beat], records.fs)
    lengths = records.lengths[records.ann_record]
    keep = is_beat & (records.ann_sample >= half_width) & (records.ann_sample + half_width <= lengths)
    return BeatIndex(
        record=records.ann_record[keep],
        sample=records.ann_sample[keep],
        label=labels[keep].astype(np.int8),
        symbol=records.ann_symbol[keep],
        rr=rr[keep],
    )


@dataclass(frozen=True)
class Augment:
    """Batch-time augmentation of training windows (all vectorized over the batch).

    jitter: max shift of the window in samples (the beat is no longer exactly centred);
    scale: max relative amplitude change; noise: std of added Gaussian noise (signals are standardized).
    """

    jitter: int = 0
    scale: float = 0.0
    noise: float = 0.0


def passthrough_collate(batch):
    """The dataset already returns whole batches (``__getitems__``); nothing is left to collate."""
    return batch


class BeatWindowDataset(Dataset):
    """Windows ``signal[c - half_width : c + half_width]`` around each indexed beat, cut a batch at a time.

    Only the records' signals (once, float32) and the beat index are held; ``__getitems__`` gathers a
    whole batch with one fancy-indexing call. Use it with ``collate_fn=passthrough_collate``.
    """

    def __init__(
        self,
        records: RecordSet,
        beats: BeatIndex,
        half_width: int,
        with_rr: bool = False,
        augment: Augment | None = None,
    ) -> None:
        self.signal = records.signal
        self.beats = beats
        self.starts = records.offsets[beats.record] + beats.sample - half_width
        self.labels = beats.label.astype(np.float32)
        self.steps = np.arange(2 * half_width, dtype=np.int64)
        self.with_rr = with_rr
        self.augment = augment or Augment()
        # jittered windows must stay inside their own record
        self.min_start = records.offsets[beats.record]
        self.max_start = records.offsets[beats.record + 1] - 2 * half_width

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        """A whole batch: ``(x, y)``, or ``(x, rr, y)`` with RR features; x is (batch, 1, window)."""
        idx = np.asarray(indices, dtype=np.int64)
        starts = self.starts[idx]
        aug = self.augment
        if aug.jitter:
            shift = torch.randint(-aug.jitter, aug.jitter + 1, (len(idx),)).numpy()
            starts = np.clip(starts + shift, self.min_start[idx], self.max_start[idx])
        x = torch.from_numpy(np.asarray(self.signal[starts[:, None] + self.steps])).unsqueeze(1)
        if aug.scale:
            x = x * (1 + aug.scale * (2 * torch.rand(len(idx), 1, 1) - 1))
        if aug.noise:
            x = x + aug.noise * torch.randn_like(x)
        y = torch.from_numpy(self.labels[idx])
        return (x, torch.from_numpy(self.beats.rr[idx]), y) if self.with_rr else (x, y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([i]))

    @property
    def nbytes(self) -> int:
        """Memory held by this dataset's own index (the shared signal is counted once, by the DataModule)."""
        arrays = (self.starts, self.labels, self.min_start, self.max_start, *vars(self.beats).values())
        return sum(a.nbytes for a in arrays)
