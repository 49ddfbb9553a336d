"""Beat windows: an index of (record, sample, label) and a Dataset that cuts the windows when a batch is drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

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


class EpochShuffle(Sampler[int]):
    """A permutation drawn from (seed, epoch) only, never from the global RNG.

    The epoch comes from ``epoch_of()`` (the trainer's current epoch), so an epoch is shuffled the same
    way whether the run got there uninterrupted or resumed from a checkpoint.
    """

    def __init__(self, n: int, seed: int, epoch_of=lambda: 0) -> None:
        self.n, self.seed, self.epoch_of = n, seed, epoch_of

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(np.random.default_rng([self.seed, self.epoch_of()]).permutation(self.n).tolist())


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
        seed: int = 0,
    ) -> None:
        self.signal = records.signal
        self.beats = beats
        self.starts = records.offsets[beats.record] + beats.sample - half_width
        self.labels = beats.label.astype(np.float32)
        self.steps = np.arange(2 * half_width, dtype=np.int64)
        self.with_rr = with_rr
        self.augment = augment or Augment()
        self.seed = seed
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
        # seeded by the batch itself, so a resumed run augments exactly as an uninterrupted one
        rng = np.random.default_rng([self.seed, int(idx[0]), int(idx[-1]), len(idx)])
        if aug.jitter:
            shift = rng.integers(-aug.jitter, aug.jitter + 1, len(idx))
            starts = np.clip(starts + shift, self.min_start[idx], self.max_start[idx])
        windows = np.asarray(self.signal[starts[:, None] + self.steps])
        if aug.scale:
            windows = windows * (1 + aug.scale * rng.uniform(-1, 1, (len(idx), 1))).astype(np.float32)
        if aug.noise:
            windows = windows + (aug.noise * rng.standard_normal(windows.shape)).astype(np.float32)
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).unsqueeze(1)
        y = torch.from_numpy(self.labels[idx])
        return (x, torch.from_numpy(self.beats.rr[idx]), y) if self.with_rr else (x, y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([i]))

    @property
    def nbytes(self) -> int:
        """Memory held by this dataset's own index (the shared signal is counted once, by the DataModule)."""
        arrays = (self.starts, self.labels, self.min_start, self.max_start, *vars(self.beats).values())
        return sum(a.nbytes for a in arrays)
