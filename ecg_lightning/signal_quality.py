"""Is it an ECG at all? Stretches of a recording where the "beats" do not resemble each other.

In any real ECG a beat's QRS complex looks like its neighbours' — in sinus rhythm, bundle branch block, paced
rhythm, atrial fibrillation and ventricular tachycardia alike (an ectopic beat among normal ones is outvoted by
its stretch). In noise, or with the electrodes off, the detector still finds "beats", and a classifier calls them
something; their shapes, though, are unrelated. Each beat's similarity is its best correlation with one of its
``neighbours`` on each side over the QRS (±``half_s``); a stretch of ``stretch_s`` seconds whose median similarity
is below ``threshold`` is flagged as noise (the median: bigeminy finds its partner two beats away, and the ectopic
beats of trigeminy are outvoted). On the 48 MIT-BIH records (annotated beats, MLII band-passed, 8,677
stretches of 10 s) the lowest stretch median was 0.78 (0.1 % quantile); on band-passed Gaussian noise with detected
"beats" the highest was 0.60 (docs/usage.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

THRESHOLD = 0.7


@dataclass(frozen=True)
class Quality:
    """Per beat: its similarity to its neighbours and whether it lies in a noisy stretch; over the recording: the
    share of its stretches (with beats) that are noisy."""

    similarity: np.ndarray
    noisy: np.ndarray
    noisy_share: float


def beat_similarity(
    lead: np.ndarray, beats: np.ndarray, fs: float, half_s: float = 0.1, neighbours: int = 2
) -> np.ndarray:
    """Each beat's highest correlation with one of its ``neighbours`` preceding or following beats, over
    ``lead[beat - half_s : beat + half_s]`` (1: the same shape, 0: unrelated; a beat too near an edge and a lone
    beat get 1, there being nothing to judge)."""
    half = max(1, int(round(half_s * fs)))
    similarity = np.ones(len(beats))
    inside = np.flatnonzero((beats >= half) & (beats + half <= len(lead)))
    if len(inside) < 2:
        return similarity
    windows = sliding_window_view(lead, 2 * half)[beats[inside] - half].astype(np.float64)
    windows -= windows.mean(axis=1, keepdims=True)
    windows /= np.linalg.norm(windows, axis=1, keepdims=True) + 1e-12
    best = np.full(len(inside), -1.0)
    for shift in range(1, min(neighbours, len(inside) - 1) + 1):  # one vectorized pass per neighbour distance
        corr = np.einsum("ij,ij->i", windows[shift:], windows[:-shift])
        best[shift:] = np.maximum(best[shift:], corr)
        best[:-shift] = np.maximum(best[:-shift], corr)
    similarity[inside] = best
    return similarity


def signal_quality(
    lead: np.ndarray, beats: np.ndarray, fs: float, stretch_s: float = 10.0, threshold: float = THRESHOLD
) -> Quality:
    """Beats in stretches of ``stretch_s`` seconds whose median beat similarity is below ``threshold`` are noisy."""
    similarity = beat_similarity(lead, beats, fs)
    if len(beats) == 0:
        return Quality(similarity, np.zeros(0, dtype=bool), 0.0)
    stretch = (beats // int(round(stretch_s * fs))).astype(np.int64)
    counts = np.bincount(stretch)
    order = np.lexsort((similarity, stretch))  # by stretch, then similarity: each stretch's median by position
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    median = np.full(len(counts), np.inf)
    median[counts > 0] = similarity[order][(starts + (counts - 1) // 2)[counts > 0]]
    bad = median < threshold
    return Quality(similarity, bad[stretch], float(bad.sum() / max((counts > 0).sum(), 1)))
