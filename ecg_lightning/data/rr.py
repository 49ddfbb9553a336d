"""RR-interval features: the rhythm context that inter-patient beat classifiers rely on.

An early (premature) or late beat is the main clue for supraventricular ectopy. Dividing by the record's
own mean RR makes the features comparable across patients with different heart rates; dividing by the
*local* rhythm (a centred neighbourhood of beats) keeps a beat in atrial fibrillation, whose RRs vary
all the time, from looking premature, and the local irregularity tells the network when that is the case.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence

import numpy as np
import torch

from ecg_lightning.errors import ConfigError

RR_FEATURES = (
    # normalized to the record
    "log_pre_rr",
    "log_post_rr",
    "log_local_rr",
    "log_pre_post",
    "mean_rr_s",
    # normalized to the local rhythm
    "log_pre_local",
    "log_post_local",
    "local_irregularity",
    # not normalized: log RR in seconds (a record whose beats are mostly ectopic has an ectopic "normal")
    "log_pre_rr_s",
    "log_post_rr_s",
    # the local irregularity that a minority of pauses or ectopic beats does not inflate (thirty-third round)
    "local_rr_change",
    # prematurity against the slowest beats nearby, which a run of S beats does not pull down (thirty-seventh round)
    "log_pre_local_slow",
)
# the features in seconds (not normalized), as each is changed when a record's RR intervals are all scaled by f:
# ``log``: log(f) added; ``linear``: multiplied by f (``Augment.rr_scale``); every other feature is a ratio
SECONDS_FEATURES = {"mean_rr_s": "linear", "log_pre_rr_s": "log", "log_post_rr_s": "log"}
# the features that take a statistic over each beat's neighbourhood beat by beat (costly): computed only when served
WINDOWED = ("local_rr_change", "log_pre_local_slow")
# log_pre_local_slow divides by this quantile of the neighbourhood's preceding RRs: its slowest fifth begins there
SLOW_RR_QUANTILE = 0.8
# ``data.rr_features: true``: the record-normalized five (the features of the first RR experiments)
RECORD_RR = RR_FEATURES[:5]
# how the features of a beat and its two neighbours change when the beat comes earlier, the neighbours kept
# (``moved_earlier``): the log of its preceding RR over a reference the move leaves as it was, the same of its
# following RR, and log(preceding / following); the neighbourhood statistics (local RR, irregularity) are left alone
PRECEDING = ("log_pre_rr", "log_pre_local", "log_pre_rr_s", "log_pre_local_slow")
FOLLOWING = ("log_post_rr", "log_post_local", "log_post_rr_s")
PRE_POST = "log_pre_post"
# ``data.reference_beats``: which of a record's beats stand for its normal beat (its template, and the RR that
# the record-normalized features divide by): every beat, or the fifth with the longest preceding RR — a patient
# whose most frequent beat is premature (S beats the majority) then still gets a normal reference
REFERENCE_BEATS = ("all", "longest_rr")
LONGEST_RR_SHARE = 0.2
# ``annotated_<class>`` (e.g. annotated_S): the beats annotated with that class — a diagnostic for ``evaluate`` only
# (it reads the labels): every record made a patient whose dominant beat is of that class, as far as the record
# reference goes (docs/inter_patient.md, the dominant-S stress test). A record with fewer such beats keeps all.
ANNOTATED = "annotated_"
MIN_ANNOTATED = 5


def rescaled_seconds(rr: np.ndarray, names: Sequence[str], factor: np.ndarray) -> np.ndarray:
    """``rr`` (beats, features named ``names``) as if each beat's RR intervals were ``factor`` times as long: only the
    features in seconds change (``SECONDS_FEATURES``); a copy."""
    rr = rr.copy()
    for column, name in enumerate(names):
        kind = SECONDS_FEATURES.get(name)
        if kind == "log":
            rr[:, column] += np.log(factor).astype(rr.dtype)
        elif kind == "linear":
            rr[:, column] *= factor.astype(rr.dtype)
    return rr


def moved_earlier(
    rr: torch.Tensor, names: Sequence[str], run: torch.Tensor, beat: torch.Tensor, earlier: torch.Tensor
) -> None:
    """In place: runs' RR features ``rr`` (runs, beats, features named ``names``) as if beat ``beat[i]`` of run
    ``run[i]`` came ``earlier[i]`` (a fraction of its preceding RR, 0..1) sooner, its neighbours where they were
    (``Augment.premature``): its preceding RR, which is also the previous beat's following RR, shortens by that
    fraction; its following RR, which is also the next beat's preceding RR, lengthens by as much. The beat must have a
    neighbour on each side in its run. The ratio of preceding to following RR is read from ``log_pre_local`` and
    ``log_post_local`` (one denominator), which must be among ``names``; the means over the neighbourhood (the local
    and the record's RR) keep the sum of the two intervals and are left as they were, as are the irregularities."""
    column = {name: c for c, name in enumerate(names)}
    pre = rr[run, beat, column["log_pre_local"]]
    post = rr[run, beat, column["log_post_local"]]
    shorter = torch.log1p(-earlier)  # log of the new preceding RR over the old
    longer = torch.log1p(earlier * torch.exp(pre - post))  # log of the new following RR over the old
    for name, c in column.items():
        if name in PRECEDING:  # the beat's preceding RR, and the next beat's
            rr[run, beat, c] += shorter
            rr[run, beat + 1, c] += longer
        elif name in FOLLOWING:  # the beat's following RR, and the previous beat's
            rr[run, beat, c] += longer
            rr[run, beat - 1, c] += shorter
        elif name == PRE_POST:
            rr[run, beat, c] += shorter - longer
            rr[run, beat - 1, c] -= shorter
            rr[run, beat + 1, c] += longer


def run_features(intervals_s: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The RR features ``names`` of runs of beats whose RR intervals (seconds) are ``intervals_s`` (runs, beats + 1):
    (runs, beats, features), each run taken as a record of beats + 2 beats, one before and one after those kept, so
    that every kept beat has its own preceding and following RR (``Augment.irregular``). The record-normalized
    features take the run as the record; the windowed ones are computed only when named."""
    runs, steps = intervals_s.shape
    fs = 1000.0  # positions in ms: rr_features reads samples
    sample = np.cumsum(np.concatenate([np.zeros((runs, 1)), intervals_s * fs], axis=1), axis=1)
    record = np.repeat(np.arange(runs), steps + 1)
    wanted = [name for name in names if name in WINDOWED]
    features = rr_features(record, sample.ravel(), fs, windowed=wanted).reshape(runs, steps + 1, -1)
    return features[:, 1:-1, [RR_FEATURES.index(name) for name in names]]


def check_reference(reference: str) -> str:
    if reference not in REFERENCE_BEATS and not reference.startswith(ANNOTATED):
        raise ConfigError(
            f"data.reference_beats={reference!r}; choose one of {REFERENCE_BEATS} "
            f"(or {ANNOTATED}<class>, a diagnostic for evaluate)"
        )
    return reference


def annotated_class(reference: str) -> str | None:
    """The class whose annotated beats are the reference (``annotated_S`` -> "S"), or None."""
    return reference[len(ANNOTATED) :] if check_reference(reference).startswith(ANNOTATED) else None


def pre_post_rr(record: np.ndarray, sample: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Each beat's preceding and following RR in samples (beats sorted by record, then sample). A record's first
    beat borrows its following RR and its last beat its preceding one; a record of one beat gets 1 s (60 bpm,
    neutral once normalized)."""
    if len(sample) == 0:
        return np.zeros(0), np.zeros(0)
    first = np.r_[True, record[1:] != record[:-1]]
    last = np.r_[record[1:] != record[:-1], True]
    gaps = np.diff(sample).astype(np.float64)
    pre, post = np.r_[np.nan, gaps], np.r_[gaps, np.nan]
    pre[first], post[last] = np.nan, np.nan
    pre = np.where(np.isnan(pre), post, pre)
    post = np.where(np.isnan(post), pre, post)
    single = np.isnan(pre)
    pre[single] = post[single] = fs
    return pre, post


# ``data.pause_stress``: every PAUSE_EVERY-th normal beat that follows a normal beat has its preceding RR stretched
PAUSE_EVERY = 4


def paused_timing(record: np.ndarray, sample: np.ndarray, normal: np.ndarray, factor: float,
                  every: int = PAUSE_EVERY) -> np.ndarray:  # fmt: skip
    """The beats' positions as if every ``every``-th normal beat that follows a normal beat (``normal``: a bool per
    beat) came after a pause, its preceding RR ``factor`` times as long, each later beat of the record moved on by
    as much (beats sorted by record, then sample): the timing the RR features are computed from under the pause
    stress (``data.pause_stress``), the windows staying where the beats are. A rhythm broken by pauses raises
    ``local_irregularity`` around every beat near one, as in a record with sinus pauses between its S beats."""
    first = np.r_[True, record[1:] != record[:-1]]
    start = np.flatnonzero(first)[np.cumsum(first) - 1]  # each beat's record's first beat

    def so_far(values: np.ndarray) -> np.ndarray:  # the running sum within each record
        total = np.cumsum(values)
        return total - np.r_[0, total][start]

    pre, _ = pre_post_rr(record, sample, 1.0)
    eligible = normal & np.r_[False, normal[:-1]] & ~first
    paused = eligible & (so_far(eligible) % every == 0)
    return sample + so_far(np.where(paused, (factor - 1) * pre, 0.0))


def enough_annotated(record: np.ndarray, annotated: np.ndarray, n_records: int = 0) -> np.ndarray:
    """Per record index, whether at least ``MIN_ANNOTATED`` of its beats are ``annotated`` (a bool mask per beat):
    the records that get a reference or template of that class (the stress test, the template swap)."""
    return np.bincount(record, weights=annotated, minlength=n_records) >= MIN_ANNOTATED


def reference_mask(
    record: np.ndarray, pre: np.ndarray, reference: str, annotated: np.ndarray | None = None
) -> np.ndarray:
    """The beats that stand for each record's normal beat (``REFERENCE_BEATS``): every beat, or the
    ``LONGEST_RR_SHARE`` of each record's beats with the longest preceding RR (at least one per record). One sort,
    no loop over records or beats. ``annotated_<class>`` takes the ``annotated`` beats (a mask the caller makes from
    the labels) of records with at least ``MIN_ANNOTATED`` of them, every beat elsewhere."""
    if annotated_class(reference) is not None:
        if annotated is None:
            raise ConfigError(f"data.reference_beats={reference} reads the annotations; only evaluate can use it")
        _, groups = np.unique(record, return_inverse=True)
        return np.where(enough_annotated(groups, annotated)[groups], annotated, True)
    if reference == "all" or len(record) == 0:
        return np.ones(len(record), dtype=bool)
    order = np.lexsort((pre, record))  # by record, then preceding RR
    starts = np.flatnonzero(np.r_[True, record[order][1:] != record[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    group = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(len(order)) - starts[group]  # 0: the shortest preceding RR of its record
    cut = np.minimum(np.floor(sizes * (1 - LONGEST_RR_SHARE)).astype(np.int64), sizes - 1)
    keep = np.zeros(len(record), dtype=bool)
    keep[order] = rank >= cut[group]
    return keep


def rr_feature_names(spec: bool | Sequence[str] | None) -> tuple[str, ...]:
    """The features that ``data.rr_features`` asks for: none, the record-normalized five (true) or a list."""
    if spec is None or spec is False:
        return ()
    if spec is True:
        return RECORD_RR
    names = tuple(str(s) for s in spec)
    unknown = [n for n in names if n not in RR_FEATURES]
    if unknown:
        raise ValueError(f"data.rr_features: unknown {unknown}; choose from {list(RR_FEATURES)}")
    return names


def rr_columns(spec: bool | Sequence[str] | None) -> list[int]:
    """Columns of ``rr_features``' output that ``data.rr_features`` asks for."""
    return [RR_FEATURES.index(name) for name in rr_feature_names(spec)]


def _window_mean(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of ``values[lo[i]:hi[i]]`` for every i, by cumulative sums (callers keep windows inside a record)."""
    cumulative = np.r_[0.0, np.cumsum(values)]
    return (cumulative[hi] - cumulative[lo]) / (hi - lo)


def _window_quantile(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, q: float = 0.5, chunk: int = 1 << 16
) -> np.ndarray:
    """The ``q`` quantile (0.5: the median) of the non-NaN ``values[lo[i]:hi[i]]`` for every i: each chunk of beats'
    windows as one (beats, width) array, NaN past a window's end, so memory stays bounded for long stores."""
    width = int((hi - lo).max()) if len(lo) else 0
    out = np.full(len(lo), np.nan)
    offsets = np.arange(width)
    for start in range(0, len(lo), chunk):  # chunks of beats, not a loop over beats
        index = lo[start : start + chunk, None] + offsets
        inside = index < hi[start : start + chunk, None]
        window = np.where(inside, values[np.minimum(index, len(values) - 1)], np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a window of NaN only: its median stays NaN
            out[start : start + chunk] = np.nanquantile(window, q, axis=1)
    return out


def rr_features(
    record: np.ndarray,
    sample: np.ndarray,
    fs: float,
    local_beats: int = 10,
    context_beats: int = 16,
    reference: str = "all",
    annotated: np.ndarray | None = None,
    windowed: bool | Collection[str] = True,
) -> np.ndarray:
    """Features per beat from the beat positions of each record (sorted by record, then sample).

    Returns float32 (n_beats, len(RR_FEATURES)): log(pre RR / record reference RR), log(post RR / reference),
    log(mean of the last ``local_beats`` RRs / reference), log(pre / post), the record's mean RR in seconds, the
    reference RR being the mean preceding RR of the record's reference beats (``reference_mask``); then
    log(pre RR / local RR), log(post RR / local RR) with the local RR the mean over ``context_beats`` beats on
    each side, and the standard deviation of log RR over that neighbourhood (irregularity: high in AF); then
    log(pre RR / 1 s) and log(post RR / 1 s); then the median over that neighbourhood of |log(RR / previous RR)|
    (the record's first beat has none): high in AF, where most successive RRs differ, and low in a regular rhythm
    whatever a minority of long pauses or ectopic beats does to the standard deviation (DS2's record 232); then
    log(pre RR / the ``SLOW_RR_QUANTILE`` of the neighbourhood's preceding RRs): early against the slowest beats near
    it, which a run of premature beats does not pull down as it pulls down the local mean. Those two windowed
    statistics (``WINDOWED``) cost ~6 s each per 200,000 beats here, ~60 times all the rest: ``windowed`` (true,
    false, or the names to compute) leaves the others' columns NaN (not served, not computed).
    """
    n = len(sample)
    if n == 0:
        return np.zeros((0, len(RR_FEATURES)), dtype=np.float32)
    first = np.r_[True, record[1:] != record[:-1]]
    last = np.r_[record[1:] != record[:-1], True]
    pre, post = pre_post_rr(record, sample, fs)

    groups = np.cumsum(first) - 1
    mean_rr = (np.bincount(groups, pre) / np.bincount(groups))[groups]
    chosen = reference_mask(groups, pre, reference, annotated)
    reference_rr = (np.bincount(groups, pre * chosen) / np.bincount(groups, chosen))[groups]
    group_start = np.flatnonzero(first)[groups]
    group_end = np.flatnonzero(last)[groups] + 1
    i = np.arange(n)
    local = _window_mean(pre, np.maximum(i - local_beats + 1, group_start), i + 1)
    lo = np.maximum(i - context_beats, group_start)
    hi = np.minimum(i + context_beats + 1, group_end)
    context = _window_mean(pre, lo, hi)
    log_pre = np.log(pre)
    spread = _window_mean(log_pre**2, lo, hi) - _window_mean(log_pre, lo, hi) ** 2
    change = np.abs(np.diff(log_pre, prepend=np.nan))
    change[first] = np.nan  # a record's first RR follows none of its own
    wanted = set(WINDOWED) if windowed is True else set(windowed or ())
    changes, slow = np.full(n, np.nan), np.full(n, np.nan)
    if "local_rr_change" in wanted:
        changes = np.nan_to_num(_window_quantile(change, lo, hi), nan=0.0)
    if "log_pre_local_slow" in wanted:
        slow = _window_quantile(pre, lo, hi, SLOW_RR_QUANTILE)
    features = np.column_stack(
        [
            np.log(pre / reference_rr),
            np.log(post / reference_rr),
            np.log(local / reference_rr),
            np.log(pre / post),
            mean_rr / fs,
            np.log(pre / context),
            np.log(post / context),
            np.sqrt(np.maximum(spread, 0.0)),
            np.log(pre / fs),
            np.log(post / fs),
            changes,
            np.log(pre / slow),
        ]
    )
    return features.astype(np.float32)
