"""Beat labelling: annotation symbols -> normal (0), abnormal (1) or not a beat (dropped)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

NORMAL = 0
ABNORMAL = 1
DROPPED = -1

# The study's labelling; every other annotation symbol is not a beat.
STUDY_NORMAL = ("N", ".")
STUDY_ABNORMAL = ("L", "R", "B", "A", "a", "J", "S", "V", "r", "F", "e", "j", "n", "E", "/", "f", "Q", "?")


def label_beats(
    symbols: np.ndarray,
    normal: Sequence[str] = STUDY_NORMAL,
    abnormal: Sequence[str] = STUDY_ABNORMAL,
) -> np.ndarray:
    """Map annotation symbols to int8 labels (NORMAL, ABNORMAL, DROPPED) in one vectorized pass."""
    overlap = set(normal) & set(abnormal)
    if overlap:
        raise ValueError(f"Beat symbols {sorted(overlap)} are listed as both normal and abnormal")
    symbols = np.asarray(symbols)
    labels = np.full(symbols.shape, DROPPED, dtype=np.int8)
    labels[np.isin(symbols, list(normal))] = NORMAL
    labels[np.isin(symbols, list(abnormal))] = ABNORMAL
    return labels
