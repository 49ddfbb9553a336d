"""RR-interval features: the rhythm context that inter-patient beat classifiers rely on.

An early (premature) or late beat is the main clue for supraventricular ectopy, and dividing by the
record's own mean RR makes the features comparable across patients with different heart rates.
"""

from __future__ import annotations

import numpy as np

RR_FEATURES = ("log_pre_rr", "log_post_rr", "log_local_rr", "log_pre_post", "mean_rr_s")


def rr_features(record: np.ndarray, sample: np.ndarray, fs: float, local_beats: int = 10) -> np.ndarray:
    """Features per beat from the beat positions of each record (sorted by record, then sample).

    Returns float32 (n_beats, 5): log(pre RR / record mean RR), log(post RR / mean), log(mean of the last
    ``local_beats`` RRs / mean), log(pre / post), and the record's mean RR in seconds.
    """
    n = len(sample)
    if n == 0:
        return np.zeros((0, len(RR_FEATURES)), dtype=np.float32)
    first = np.r_[True, record[1:] != record[:-1]]
    last = np.r_[record[1:] != record[:-1], True]
    gaps = np.diff(sample).astype(np.float64)
    pre = np.r_[np.nan, gaps]
    post = np.r_[gaps, np.nan]
    pre[first], post[last] = np.nan, np.nan
    pre = np.where(np.isnan(pre), post, pre)  # a record's first beat borrows its post RR, and vice versa
    post = np.where(np.isnan(post), pre, post)
    single = np.isnan(pre)  # a record with one beat has no RR at all
    pre[single] = post[single] = fs  # 60 bpm, neutral after normalization

    groups = np.cumsum(first) - 1
    mean_rr = (np.bincount(groups, pre) / np.bincount(groups))[groups]
    group_start = np.flatnonzero(first)[groups]
    cumulative = np.r_[0.0, np.cumsum(pre)]
    i = np.arange(n)
    j = np.maximum(i - local_beats + 1, group_start)
    local = (cumulative[i + 1] - cumulative[j]) / (i - j + 1)
    features = np.column_stack(
        [np.log(pre / mean_rr), np.log(post / mean_rr), np.log(local / mean_rr), np.log(pre / post), mean_rr / fs]
    )
    return features.astype(np.float32)
