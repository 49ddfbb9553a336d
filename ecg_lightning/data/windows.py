"""Beat windows: an index of (record, sample, label) and a Dataset that cuts the windows when a batch is drawn."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from ecg_lightning.data.labels import DROPPED
from ecg_lightning.data.records import RecordSet


@dataclass(frozen=True)
class BeatIndex:
    """Labelled beats whose whole window lies inside their record."""

    record: np.ndarray  # int32 record index into RecordSet.names
    sample: np.ndarray  # int64 beat sample within its record (window centre)
    label: np.ndarray  # int8, 0 normal / 1 abnormal
    symbol: np.ndarray  # annotation symbol

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, mask: np.ndarray) -> "BeatIndex":
        return BeatIndex(self.record[mask], self.sample[mask], self.label[mask], self.symbol[mask])


def index_beats(records: RecordSet, labels: np.ndarray, half_width: int) -> BeatIndex:
    """Keep labelled beats with ``half_width`` samples of signal on each side (a beat too near an edge is dropped)."""
    lengths = records.lengths[records.ann_record]
    keep = (labels != DROPPED) & (records.ann_sample >= half_width) & (records.ann_sample + half_width <= lengths)
    return BeatIndex(
        record=records.ann_record[keep],
        sample=records.ann_sample[keep],
        label=labels[keep].astype(np.int8),
        symbol=records.ann_symbol[keep],
    )


def passthrough_collate(batch):
    """The dataset already returns whole batches (``__getitems__``); nothing is left to collate."""
    return batch


class BeatWindowDataset(Dataset):
    """Windows ``signal[c - half_width : c + half_width]`` around each indexed beat, cut a batch at a time.

    Only the records' signals (once, float32) and the beat index are held; ``__getitems__`` gathers a
    whole batch with one fancy-indexing call. Use it with ``collate_fn=passthrough_collate``.
    """

    def __init__(self, records: RecordSet, beats: BeatIndex, half_width: int) -> None:
        self.signal = records.signal
        self.beats = beats
        self.starts = records.offsets[beats.record] + beats.sample - half_width
        self.labels = beats.label.astype(np.float32)
        self.steps = np.arange(2 * half_width, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        windows = np.asarray(self.signal[self.starts[idx, None] + self.steps])
        return torch.from_numpy(windows).unsqueeze(1), torch.from_numpy(self.labels[idx])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.__getitems__([i])
        return x[0], y[0]

    @property
    def nbytes(self) -> int:
        """Memory held by this dataset's own index (the shared signal is counted once, by the DataModule)."""
        return self.starts.nbytes + self.labels.nbytes + sum(a.nbytes for a in vars(self.beats).values())
