"""Beat windows: an index of (record, sample, label) and a Dataset that cuts the windows when a batch is drawn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch.utils.data import Dataset, Sampler

from ecg_lightning.data.labels import DROPPED
from ecg_lightning.data.records import RecordSet
from ecg_lightning.data.rr import (
    RR_FEATURES,
    enough_annotated,
    moved_earlier,
    paused_timing,
    pre_post_rr,
    reference_mask,
    rescaled_seconds,
    rr_features,
    run_features,
)
from ecg_lightning.errors import ConfigError

# ``Augment.premature``: a beat is served early only in a regular stretch of rhythm (it and both neighbours preceded
# and followed by RRs within 10 % of their local RR: not atrial fibrillation, where early beats are normal), by a
# fraction of its preceding RR, by default this range (a premature atrial beat's usual prematurity)
REGULAR_LOG_RR = float(np.log(1.1))
PREMATURE_EARLIER = (0.2, 0.4)


@dataclass(frozen=True)
class BeatIndex:
    """Labelled beats: those whose whole window lies inside their record, or every beat when edges are padded."""

    record: np.ndarray  # int32 record index into RecordSet.names
    sample: np.ndarray  # int64 beat sample within its record (window centre)
    label: np.ndarray  # int8 class index (0: the normal class)
    symbol: np.ndarray  # annotation symbol
    rr: np.ndarray  # float32 (n, len(RR_FEATURES)) RR-interval features (data/rr.py), from all beats of the record

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, mask: np.ndarray) -> BeatIndex:
        return BeatIndex(self.record[mask], self.sample[mask], self.label[mask], self.symbol[mask], self.rr[mask])


def index_beats(
    records: RecordSet,
    labels: np.ndarray,
    half_width: int,
    pad_edges: bool = False,
    rr: bool | Sequence[int] = True,
    reference: str = "all",
    reference_class: int | None = None,
    pause_stress: float = 0.0,
) -> BeatIndex:
    """Keep labelled beats with ``half_width`` samples of signal on each side (a beat too near an edge is dropped),
    or, with ``pad_edges``, every labelled beat inside its record (its window is zero-padded at the edge).

    RR features are computed over every labelled beat first, so an edge beat still counts as a neighbour; with
    ``rr=False`` (none served) they are left out: (beats, 0), 4 bytes a feature a beat saved on big databases; of
    the served columns (``rr.rr_columns``) the costly windowed ones (``rr.WINDOWED``) are computed only if served
    (else NaN).
    ``reference``: the record's beats whose RR the record-normalized features divide by (``rr.REFERENCE_BEATS``);
    ``reference_class``: the class index an ``annotated_<class>`` reference takes (evaluation only);
    ``pause_stress``: a factor > 1 computes the RR features from ``rr.paused_timing`` (pauses before some beats of
    the first class, the normal one; evaluation only), 0 from the beats' own positions.
    """
    is_beat = labels != DROPPED
    served = rr if isinstance(rr, bool) else len(rr) > 0
    features = np.zeros((len(labels), len(RR_FEATURES) if served else 0), dtype=np.float32)
    if served:
        timing = records.ann_sample[is_beat]
        if pause_stress:
            timing = paused_timing(records.ann_record[is_beat], timing, labels[is_beat] == 0, pause_stress)
        features[is_beat] = rr_features(
            records.ann_record[is_beat],
            timing,
            records.fs,
            reference=reference,
            annotated=None if reference_class is None else labels[is_beat] == reference_class,
            windowed=rr is True or {RR_FEATURES[column] for column in rr},
        )
    lengths = records.lengths[records.ann_record]
    margin = 0 if pad_edges else half_width
    keep = is_beat & (records.ann_sample >= margin) & (records.ann_sample + max(margin, 1) <= lengths)
    return BeatIndex(
        record=records.ann_record[keep],
        sample=records.ann_sample[keep],
        label=labels[keep].astype(np.int8),
        symbol=records.ann_symbol[keep],
        rr=features[keep],
    )


@dataclass(frozen=True)
class Augment:
    """Batch-time augmentation of training windows (all vectorized over the batch).

    jitter: max shift of the window in samples (the beat is no longer exactly centred);
    scale: max relative amplitude change; noise: std of added Gaussian noise (signals are standardized);
    template_swap: the chance that a window is served beside its record's *swap template* (the median of the
    record's beats of one class, ``BeatWindowDataset.swap_rows``) instead of its reference template — a patient
    whose dominant beat is that class, as far as the template is concerned, so the template cannot decide alone;
    stretch: max relative change of the time axis, drawn once per record in a batch and applied alike to every window
    of that record and to its template (linear interpolation about the window's centre) — a patient with wider or
    narrower waves, as patients differ, while a beat keeps its relation to its own record's template;
    record_scale: max relative amplitude change drawn once per record in a batch and applied alike to every window of
    that record and to its template — a patient whose waves stand higher or lower against the record's spread (what
    per-record standardization leaves of a patient's amplitude), while a beat keeps its height relative to its template;
    rr_scale: max relative change of a record's RR intervals in seconds, drawn once per record in a batch — a patient
    whose heart beats faster or slower — in the RR features that are not normalized (``rr.SECONDS_FEATURES``); the
    features relative to the record or to the beats around it are ratios and do not change;
    swap_by_record: draw ``template_swap`` once per record in a batch instead of once per window, so every window of a
    record in the batch (a whole run of beats) is served the swap template together — as every beat of a patient whose
    dominant beat is of that class is at test time — rather than beats beside each other holding different templates;
    premature: the chance that a run of beats has one of its normal beats served as class ``premature_label`` (S) with
    its RR features as if it came earlier (``premature_runs``): a premature beat of the patient's own normal shape,
    so that every training patient's morphology, bundle-branch blocks included, holds S beats told by their timing;
    premature_earlier: how much earlier, the least and the most, as fractions of the beat's preceding RR;
    atrial_runs: the chance that a run of normal beats has a stretch of them served as class ``premature_label`` at
    one shortened interval (``atrial_runs_of``; after premature): an atrial run in the patient's own beat shape, its
    first beat early and the rest early only against the beats around the stretch, so S beats can be most of a run,
    as in a patient whose most frequent beat is S;
    irregular: the chance that a run holding no beat of class ``premature_label`` has its RR intervals replaced by
    atrial fibrillation's (``irregular_runs``), its labels kept: early beats in an irregular rhythm that are normal,
    which a training set with few fibrillating patients (one in DS1) hardly holds;
    p_wave: with irregular, the stretch (samples before each beat: from, to) that runs served fibrillation's timing
    have flattened on their signal leads (``flatten_p_waves``), as fibrillation has no P waves: what is taught is
    "irregular without a P wave is normal", not "irregular is normal" (DS2's 232: S beats with P waves in an
    irregular rhythm; the seventy-ninth round); None: kept;
    pauses: the chance that a run has pauses put into its rhythm (``pause_runs``; after premature and irregular):
    beats of class ``premature_label`` between pauses, as in a patient with blocked atrial premature beats or sinus
    pauses (DS2's 232), which none of DS1's S patients is, so that a rhythm whose spread comes from pauses is not read
    as fibrillation's.
    """

    jitter: int = 0
    scale: float = 0.0
    noise: float = 0.0
    template_swap: float = 0.0
    stretch: float = 0.0
    record_scale: float = 0.0
    rr_scale: float = 0.0
    swap_by_record: bool = False
    premature: float = 0.0
    premature_label: int = 1
    premature_earlier: tuple[float, float] = PREMATURE_EARLIER
    atrial_runs: float = 0.0
    irregular: float = 0.0
    p_wave: tuple[int, int] | None = None
    pauses: float = 0.0

    def draws_per_record(self) -> bool:
        """Whether any draw is made once per record in a batch (the records of a batch are then listed)."""
        return bool(self.stretch or self.record_scale or self.rr_scale or (self.template_swap and self.swap_by_record))


class EpochShuffle(Sampler[int]):
    """A permutation drawn from (seed, epoch) only, never from the global RNG; in distributed training, one
    rank's shard of it. With ``weights`` (one per item), ``n`` items drawn with replacement in proportion to them
    instead (``record_balance_weights``), from the same (seed, epoch). With ``groups`` (one per item, e.g. its
    record) and ``batch`` (the loader's batch size), every ``batch`` consecutive items come from one group: each
    group's items shuffled, cut into batches (its last filled up with its own first items), the batches shuffled —
    so a network's batch norm trains on one patient's statistics at a time, as ``record_norm`` scores.

    The epoch comes from ``epoch_of()`` (the trainer's current epoch), so an epoch is shuffled the same
    way whether the run got there uninterrupted or resumed from a checkpoint. With ``world`` > 1 processes,
    rank r takes every world-th window of the permutation from position r (every world-th batch with ``groups``),
    the permutation being extended cyclically so every rank takes as many training steps (as torch's
    DistributedSampler pads).
    """

    def __init__(
        self,
        n: int,
        seed: int,
        epoch_of=lambda: 0,
        rank: int = 0,
        world: int = 1,
        weights: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        batch: int = 1,
    ) -> None:
        self.n, self.seed, self.epoch_of, self.rank, self.world = n, seed, epoch_of, rank, world
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (n,) or not np.all(weights >= 0) or not weights.sum() > 0:
                raise ValueError(f"weights: {n} non-negative numbers, not all zero, one per item")
            weights = weights / weights.sum()
        if groups is not None and (weights is not None or np.shape(groups) != (n,) or batch < 1):
            raise ValueError(f"groups: one per item ({n}), a batch >= 1, and no weights beside them")
        self.weights, self.batch = weights, batch
        self.groups = None
        if groups is not None:  # each group's items, from one sort (no pass over the items per group)
            order = np.argsort(groups, kind="stable")
            bounds = stretch_bounds(np.asarray(groups)[order])
            self.groups = [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        # with groups, the number of batches: each group's items in whole batches
        self.batches = None if groups is None else sum(-(-len(g) // batch) for g in self.groups)

    def __len__(self) -> int:
        if self.groups is not None:
            return -(-self.batches // self.world) * self.batch
        return -(-self.n // self.world)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch_of()])
        if self.groups is not None:
            return iter(self._group_batches(rng).tolist())
        order = rng.permutation(self.n) if self.weights is None else rng.choice(self.n, self.n, p=self.weights)
        if self.world > 1:
            order = np.resize(order, len(self) * self.world)[self.rank :: self.world]
        return iter(order.tolist())

    def _group_batches(self, rng: np.random.Generator) -> np.ndarray:
        """This rank's items, ``batch`` consecutive ones from one group (one loop step per group, none per item)."""
        batches = []
        for items in self.groups:
            shuffled = rng.permutation(items)
            batches.append(np.resize(shuffled, -(-len(items) // self.batch) * self.batch).reshape(-1, self.batch))
        batches = np.concatenate(batches)[rng.permutation(self.batches)]
        per_rank = len(self) // self.batch
        return np.resize(batches, (per_rank * self.world, self.batch))[self.rank :: self.world].ravel()


def record_balance_weights(
    record: np.ndarray, label: np.ndarray, cls: int, power: float, runs: np.ndarray | None = None
) -> np.ndarray:
    """A sampling weight per training item (a beat, or a run of beats: ``beat_runs``) so that the records with few
    beats of class ``cls`` are not drowned by the one with many (DS1: 209 holds 383 of its 816 S beats, 114 twelve).

    The records with at least ``MIN_ANNOTATED`` beats of the class (its patients) get (mean count over them / their
    own count) ** ``power``; an item holding a beat of the class in such a record takes its record's weight, every
    other item 1. ``power`` 1: each patient's beats of the class drawn about equally often in all; 0.5: halfway on a
    log scale; 0: no change. A vectorized lookup, no loop over beats.
    """
    has = np.asarray(label) == cls
    counts = np.bincount(record, weights=has, minlength=int(record.max(initial=-1)) + 1)
    patients = enough_annotated(record, has, len(counts))
    per_record = np.ones(len(counts))
    if patients.any():
        per_record[patients] = (counts[patients].mean() / counts[patients]) ** power
    holds = has & patients[record]
    if runs is None:
        return np.where(holds, per_record[record], 1.0)
    inside = runs >= 0
    hit = (holds[np.maximum(runs, 0)] & inside).any(axis=1)
    return np.where(hit, per_record[record[runs[:, 0]]], 1.0)


class Shard(Sampler[int]):
    """Evaluation order for one rank: positions rank, rank + world, ... of ``order`` (default 0..n-1).

    Unlike a DistributedSampler nothing is repeated to even out the ranks, so metrics gathered across ranks
    count every window exactly once.
    """

    def __init__(self, order: Sequence[int] | np.ndarray, rank: int = 0, world: int = 1) -> None:
        self.order = np.asarray(order)[rank::world]

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self):
        return iter(self.order.tolist())


def passthrough_collate(batch):
    """The dataset already returns whole batches (``__getitems__``); nothing is left to collate."""
    return batch


def stretch_bounds(values: np.ndarray) -> np.ndarray:
    """Where each stretch of equal consecutive ``values`` starts, then ``len(values)``: stretch k is
    ``bounds[k]:bounds[k + 1]`` (no stretch, ``[0]``, when ``values`` is empty)."""
    values = np.asarray(values)
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1], True]) if len(values) else np.zeros(1, np.int64)


def beat_runs(record: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Runs of ``length`` consecutive beats of one record each, a run starting every ``stride`` beats.

    ``record``: each beat's record (beats sorted by record, then time). Returns int64 (runs, length) positions into
    the beats, -1 past a record's last beat. Runs stop at the first that reaches the record's end, so with
    ``stride == length`` (evaluation) every beat is in exactly one run, in order; a smaller stride (training) lets
    runs overlap, each beat then seen at several positions of a run. One loop step per record, none per beat.
    """
    if length < 1 or not 1 <= stride <= length:
        raise ValueError(f"runs of {length} beats every {stride}: need length >= 1 and 1 <= stride <= length")
    bounds = stretch_bounds(record)
    runs = [np.zeros((0, length), dtype=np.int64)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        starts = np.arange(lo, hi, stride)
        starts = starts[: int(np.argmax(starts + length >= hi)) + 1]
        run = starts[:, None] + np.arange(length)
        runs.append(np.where(run < hi, run, -1))
    return np.concatenate(runs)


def check_chance(option: str, chance: float) -> None:
    """A per-run augmentation's chance must lie in (0, 1]."""
    if not 0 < chance <= 1:
        raise ConfigError(f"data.augment.{option}={chance}: give a chance per run between 0 and 1")


def check_earlier(earlier: Sequence[float]) -> None:
    """``data.augment.premature_earlier`` (premature beats, atrial runs): how much earlier, 0 < least <= most < 1."""
    if len(earlier) != 2 or not 0 < earlier[0] <= earlier[1] < 1:
        raise ConfigError(
            f"data.augment.premature_earlier={list(earlier)}: give [least, most], fractions of the preceding RR with "
            "0 < least <= most < 1 (default [0.2, 0.4])"
        )


def check_premature(chance: float, run_beats: int, names: Sequence[str]) -> None:
    """``data.augment.premature`` needs a chance in (0, 1], runs of at least three beats and the two local RR
    features it reads the rhythm from."""
    check_chance("premature", chance)
    if run_beats < 3:
        raise ConfigError(
            f"data.augment.premature serves a normal beat early between its two neighbours: set data.run_beats >= 3 "
            f"(now {run_beats}; a beat-sequence model, e.g. experiment=aami_sequence)"
        )
    missing = [name for name in ("log_pre_local", "log_post_local") if name not in names]
    if missing:
        raise ConfigError(
            f"data.augment.premature reads the rhythm around a beat from {missing}: add them to data.rr_features"
        )


def premature_runs(
    rr: torch.Tensor,
    y: torch.Tensor,
    names: Sequence[str],
    chance: float,
    label: int,
    rng: np.random.Generator,
    earlier_range: Sequence[float] = PREMATURE_EARLIER,
) -> None:
    """In place, for a batch of runs (rr (runs, beats, features named ``names``), y (runs, beats), 0 the normal
    class, -1 padding): with ``chance`` per run, one normal beat between two normal beats, in a regular stretch
    (``REGULAR_LOG_RR``), is labelled ``label`` and its RR features (and its neighbours') are those of the beat come
    earlier by a fraction of its preceding RR drawn from ``earlier_range`` (``rr.moved_earlier``). Runs without such a
    beat are left as they are. Vectorized over the runs; the draws come from ``rng`` (the batch's own generator)."""
    column = {name: c for c, name in enumerate(names)}
    local = rr[..., [column["log_pre_local"], column["log_post_local"]]]
    regular = (y == 0) & (local.abs() < REGULAR_LOG_RR).all(-1)
    candidate = regular[:, :-2] & regular[:, 1:-1] & regular[:, 2:]  # the middle beat of three regular normal beats
    picked = torch.from_numpy(rng.random(len(y)) < chance)
    keys = torch.from_numpy(rng.random(tuple(candidate.shape))).masked_fill(~candidate, -1.0)
    earlier = torch.from_numpy(rng.uniform(*earlier_range, len(y))).to(rr.dtype)
    run = torch.nonzero(picked & candidate.any(1)).flatten()
    beat = keys[run].argmax(1) + 1
    moved_earlier(rr, names, run, beat, earlier[run])
    y[run, beat] = label


# ``Augment.irregular``: the spread of log RR drawn per run, as in DS1's fibrillation episodes (201 and 203: the local
# irregularity, the sd of log RR over the neighbourhood, 0.20-0.34 between quartiles)
IRREGULAR_SIGMA = (0.15, 0.35)


# ``Augment.p_wave`` (``data.augment.irregular_without_p``): the stretch before a beat's R peak that its P wave
# spans, in seconds: from the P wave's onset (a PR interval and a P wave before the peak) to just before the QRS
P_WAVE_S = (0.28, 0.06)


def check_p_wave(span: tuple[int, int], irregular: float, half_width: int) -> None:
    """``data.augment.irregular_without_p`` flattens the P waves of the runs ``irregular`` serves, in each window."""
    if not irregular:
        raise ConfigError(
            "data.augment.irregular_without_p=true flattens the P waves of the runs served fibrillation's timing: "
            "set data.augment.irregular above 0"
        )
    if not 0 < span[1] < span[0] < half_width:
        raise ConfigError(
            f"data.augment.irregular_without_p: the P-wave stretch, {span[0]} to {span[1]} samples before the beat, "
            f"must lie inside the window's {half_width} samples before it: widen data.window_s"
        )


def check_irregular(chance: float, run_beats: int, names: Sequence[str]) -> None:
    """``data.augment.irregular`` needs a chance in (0, 1], runs of at least three beats and RR features to change."""
    check_chance("irregular", chance)
    if run_beats < 3 or not names:
        raise ConfigError(
            f"data.augment.irregular gives runs of beats an irregular rhythm in their RR features: set data.run_beats "
            f">= 3 (now {run_beats}) and data.rr_features (now {list(names)})"
        )


def irregular_runs(
    rr: torch.Tensor, y: torch.Tensor, names: Sequence[str], chance: float, label: int, rng: np.random.Generator
) -> None:
    """In place, for a batch of runs (rr (runs, beats, features named ``names``), y (runs, beats), -1 padding): with
    ``chance`` per run, a whole run (no padding) holding no beat of class ``label`` gets the RR features of
    fibrillation: each RR interval the run's mean RR times exp(sigma * z), z standard normal, sigma drawn per run from
    ``IRREGULAR_SIGMA``, and every feature recomputed from them (``rr.run_features``); labels are kept. The run's mean
    RR in seconds is read from ``log_pre_rr_s`` (or ``mean_rr_s``) when served, else 1 s (no feature in seconds is
    served then). Vectorized over the runs; the draws come from ``rng`` (the batch's own generator)."""
    runs, beats = y.shape
    picked = rng.random(runs) < chance
    sigma = rng.uniform(*IRREGULAR_SIGMA, runs)
    z = rng.standard_normal((runs, beats + 1))
    eligible = ~((y == label) | (y < 0)).any(1).numpy()
    run = np.flatnonzero(picked & eligible)
    if not len(run):
        return run
    column = {name: c for c, name in enumerate(names)}
    if "log_pre_rr_s" in column:
        mean_rr = rr[run, :, column["log_pre_rr_s"]].exp().mean(1).numpy()
    elif "mean_rr_s" in column:
        mean_rr = rr[run, :, column["mean_rr_s"]].mean(1).numpy()
    else:
        mean_rr = np.ones(len(run))
    set_run_intervals(rr, names, run, mean_rr[:, None].astype(np.float64) * np.exp(sigma[run, None] * z[run]))
    return run


def flatten_p_waves(x: torch.Tensor, run: np.ndarray, leads: int, span: tuple[int, int]) -> None:
    """In place, for the runs ``run`` of a batch of windows x (runs, beats, channels, window; each beat at the
    window's centre): on the first ``leads`` channels (the signal, not a record template after them), the samples
    from ``span[0]`` to ``span[1]`` before the beat become the straight line between the samples at the stretch's
    two ends — a beat without its P wave, as in atrial fibrillation."""
    centre = x.shape[-1] // 2
    start, stop = centre - span[0], centre - span[1]
    if not 0 < start < stop < centre:
        raise ValueError(f"p_wave={span}: samples before the beat, the first the larger, inside the window")
    if not len(run):
        return
    index = torch.from_numpy(np.asarray(run, dtype=np.int64))
    left, right = x[index, :, :leads, start - 1 : start], x[index, :, :leads, stop : stop + 1]
    steps = torch.arange(1, stop - start + 1, dtype=x.dtype) / (stop - start + 1)
    x[index, :, :leads, start:stop] = left + (right - left) * steps


# ``Augment.atrial_runs``: the share of a run's beats the atrial stretch takes (drawn per run), and the interval after
# its last beat against the run's median one (the sinus node reset: about a cycle, a little more)
ATRIAL_RUN_SHARE = (0.3, 0.8)
ATRIAL_RUN_RESET = (1.0, 1.3)
# the RR features in seconds that the rhythm augmentations read a run's intervals from (atrial runs, pauses)
SECONDS_PAIR = ("log_pre_rr_s", "log_post_rr_s")


def run_intervals(rr: torch.Tensor, names: Sequence[str], run: np.ndarray) -> np.ndarray:
    """The RR intervals in seconds of the runs ``run`` (runs, beats + 1; interval k comes before beat k, the last
    after the last beat), read from ``log_pre_rr_s`` and the last beat's ``log_post_rr_s`` (``SECONDS_PAIR``)."""
    column = {name: c for c, name in enumerate(names)}
    seconds = rr[run][..., [column[name] for name in SECONDS_PAIR]].double().exp().numpy()
    return np.concatenate([seconds[:, :, 0], seconds[:, -1:, 1]], axis=1)


def set_run_intervals(rr: torch.Tensor, names: Sequence[str], run: np.ndarray, intervals: np.ndarray) -> None:
    """In place: the runs ``run`` given every feature of these intervals (``run_intervals``' layout;
    ``rr.run_features``)."""
    rr[torch.from_numpy(run)] = torch.from_numpy(run_features(intervals, names)).to(rr.dtype)


def check_interval_augment(option: str, chance: float, run_beats: int, names: Sequence[str], least: int) -> None:
    """An augmentation that rewrites a run's RR intervals in seconds (``atrial_runs``: a stretch of two beats with a
    normal beat on each side, so runs of five; ``pauses``: runs of three) needs a chance in (0, 1], runs of at least
    ``least`` beats and the two RR features in seconds it reads the intervals from."""
    check_chance(option, chance)
    missing = [name for name in SECONDS_PAIR if name not in names]
    needs = [f"set data.run_beats >= {least} (now {run_beats})"] * (run_beats < least)
    needs += [f"add {missing} to data.rr_features"] * bool(missing)
    if needs:
        raise ConfigError(
            f"data.augment.{option} rewrites runs of beats' rhythm, read from their RR intervals in seconds: "
            f"{' and '.join(needs)}"
        )


def atrial_runs_of(
    rr: torch.Tensor,
    y: torch.Tensor,
    names: Sequence[str],
    chance: float,
    label: int,
    rng: np.random.Generator,
    earlier_range: Sequence[float] = PREMATURE_EARLIER,
) -> None:
    """In place, for a batch of runs (rr (runs, beats, features named ``names``), y (runs, beats), 0 the normal
    class, -1 padding): with ``chance`` per run of normal beats only, a stretch of ``ATRIAL_RUN_SHARE`` of its beats
    (at least two, with a normal beat before and after it) is labelled ``label`` and comes at one interval, the run's
    median RR shortened by a fraction drawn from ``earlier_range``; the interval after its last beat is the median
    times ``ATRIAL_RUN_RESET``. The intervals are read from ``log_pre_rr_s`` and the last beat's ``log_post_rr_s``
    and every feature is recomputed from them (``rr.run_features``). Vectorized over the runs; draws from ``rng``."""
    runs, beats = y.shape
    picked = rng.random(runs) < chance
    share = rng.uniform(*ATRIAL_RUN_SHARE, runs)
    place = rng.random(runs)
    earlier = rng.uniform(*earlier_range, runs)
    reset = rng.uniform(*ATRIAL_RUN_RESET, runs)
    run = np.flatnonzero(picked & (y == 0).all(1).numpy())
    if not len(run):
        return
    length = np.clip(np.round(share[run] * beats), 2, beats - 2).astype(int)
    start = 1 + np.floor(place[run] * (beats - 1 - length)).astype(int)  # 1 .. beats - 1 - length
    intervals = run_intervals(rr, names, run)
    median = np.median(intervals, axis=1, keepdims=True)
    k = np.arange(beats + 1)[None]
    stretch = (k >= start[:, None]) & (k < (start + length)[:, None])
    intervals = np.where(stretch, median * (1 - earlier[run, None]), intervals)
    intervals = np.where(k == (start + length)[:, None], median * reset[run, None], intervals)
    set_run_intervals(rr, names, run, intervals)
    y[torch.from_numpy(run)] = torch.from_numpy(np.where(stretch[:, :beats], label, 0)).to(y.dtype)


# ``Augment.pauses``: in a run given pauses, each interval before a beat not of the spared class (and the one after
# its last beat) becomes a pause with this chance, this many times as long (drawn per run): sinus pauses and the
# pauses after blocked atrial premature beats are 1.5-3 times the RR before them
PAUSE_SHARE = 0.25
PAUSE_FACTOR = (1.5, 3.0)


def pause_runs(
    rr: torch.Tensor, y: torch.Tensor, names: Sequence[str], chance: float, label: int, rng: np.random.Generator
) -> None:
    """In place, for a batch of runs (rr (runs, beats, features named ``names``), y (runs, beats), -1 padding): with
    ``chance`` per whole run (no padding), its RR intervals (read from ``log_pre_rr_s`` and the last beat's
    ``log_post_rr_s``) each become, with chance ``PAUSE_SHARE``, a pause ``PAUSE_FACTOR`` times as long — never the
    interval before a beat of class ``label``, which stays as early as it was — and every feature is recomputed from
    them (``rr.run_features``); labels are kept. Vectorized over the runs; the draws come from ``rng``."""
    runs, beats = y.shape
    picked = rng.random(runs) < chance
    factor = rng.uniform(*PAUSE_FACTOR, runs)
    where = rng.random((runs, beats + 1)) < PAUSE_SHARE
    run = np.flatnonzero(picked & ~(y < 0).any(1).numpy())
    if not len(run):
        return
    spared = np.concatenate([(y[run] == label).numpy(), np.zeros((len(run), 1), bool)], axis=1)
    intervals = run_intervals(rr, names, run)
    set_run_intervals(rr, names, run, np.where(where[run] & ~spared, intervals * factor[run, None], intervals))


def beat_templates(
    records: RecordSet,
    beats: BeatIndex,
    half_width: int,
    max_beats: int = 400,
    reference: str = "all",
    reference_class: int | None = None,
) -> np.ndarray:
    """Each record's typical beat: the median window (per lead) over up to ``max_beats`` of its reference beats
    (``rr.REFERENCE_BEATS``: all of them, or those with the longest preceding RR).

    Served beside each window (``data.templates``), it lets the network judge a beat against the patient's own
    dominant beat, which is how a wide QRS in a bundle-branch-block patient differs from a ventricular beat.
    Only beat positions are used, never labels, so detected beats of a new recording serve as well.
    Returns float32 (n_records, n_leads, 2 * half_width); zeros for a record without beats.
    """
    n_leads = records.signal.shape[0]
    templates = np.zeros((len(records.names), n_leads, 2 * half_width), dtype=np.float32)
    data = BeatWindowDataset(records, beats, half_width)
    pre, _ = pre_post_rr(beats.record, beats.sample, records.fs)
    annotated = None if reference_class is None else beats.label == reference_class
    chosen = reference_mask(beats.record, pre, reference, annotated)
    for r in np.unique(beats.record):  # one vectorized gather per record
        mine = np.flatnonzero((beats.record == r) & chosen)
        picks = mine[np.linspace(0, len(mine) - 1, min(len(mine), max_beats)).astype(np.int64)]
        templates[r] = np.median(data.__getitems__(picks.tolist())[0].numpy(), axis=0)
    return templates


class BeatWindowDataset(Dataset):
    """Windows ``signal[:, c - half_width : c + half_width]`` around each indexed beat, cut a batch at a time.

    Only the records' signals (once, float32) and the beat index are held; ``__getitems__`` gathers a
    whole batch with one fancy-indexing call. Use it with ``collate_fn=passthrough_collate``. Windows that
    run past their record's edge (``pad_edges`` indexes, or jitter) are zero-padded there: after
    standardization 0 is the record's mean, and no sample of a neighbouring record leaks in. With
    ``templates`` (``beat_templates``), each window's record template follows its leads as extra channels;
    ``swap_rows`` maps each record to its row of ``templates`` that ``Augment.template_swap`` serves instead.
    With ``patient_codes`` every batch also holds each window's patient (its record's rank among this dataset's
    records) before the labels: what a patient-adversarial loss (``BeatClassifier``'s ``patient_adversary``) reads.
    """

    def __init__(
        self,
        records: RecordSet,
        beats: BeatIndex,
        half_width: int,
        rr_columns: list[int] | None = None,
        augment: Augment | None = None,
        seed: int = 0,
        templates: np.ndarray | None = None,
        plan_only: bool = False,
        run_beats: int = 1,
        run_stride: int | None = None,
        swap_rows: np.ndarray | None = None,
        patient_codes: bool = False,
    ) -> None:
        if run_beats > 1 and plan_only:
            raise ValueError("runs of beats (run_beats > 1) are cut on the CPU; cut_on_device serves single beats")
        if plan_only and augment is not None and augment.draws_per_record():
            raise ValueError(
                "per-record stretch, record_scale, rr_scale, swap_by_record are cut on the CPU; set cut_on_device=false"
            )
        if plan_only and patient_codes:
            raise ValueError("patient codes are served by batches cut on the CPU; set cut_on_device=false")
        if augment is not None and augment.p_wave is not None:
            check_p_wave(augment.p_wave, augment.irregular, half_width)
        self.rr_columns = list(rr_columns or [])
        self.rr_names = [RR_FEATURES[c] for c in self.rr_columns]  # the served features' names, in column order
        if augment is not None and (augment.premature or augment.atrial_runs):
            check_earlier(augment.premature_earlier)
        if augment is not None and augment.premature:
            check_premature(augment.premature, run_beats, self.rr_names)
        if augment is not None and augment.atrial_runs:
            check_interval_augment("atrial_runs", augment.atrial_runs, run_beats, self.rr_names, least=5)
        if augment is not None and augment.irregular:
            check_irregular(augment.irregular, run_beats, self.rr_names)
        if augment is not None and augment.pauses:
            check_interval_augment("pauses", augment.pauses, run_beats, self.rr_names, least=3)
        self.plan_only = plan_only
        # each beat's patient: its record's rank among this dataset's records (0 .. records - 1), or None
        self.patient = np.unique(beats.record, return_inverse=True)[1].astype(np.int32) if patient_codes else None
        self.signal = records.signal
        # every window as a strided view (no copy): a batch inside its records is then one row gather (~15x faster
        # than gathering sample positions)
        width = 2 * half_width
        self.windows = sliding_window_view(self.signal, width, axis=-1) if self.signal.shape[-1] >= width else None
        self.templates = templates
        self.swap_rows = swap_rows
        self.beats = beats
        # per-beat arrays are kept small (a big database has millions of beats): record bounds are looked up per
        # batch from the records' offsets, labels stay int8 until a batch is cut
        self.offsets = records.offsets
        self.starts = records.offsets[beats.record] + beats.sample - half_width
        self.labels = beats.label
        self.steps = np.arange(2 * half_width, dtype=np.int64)
        self.augment = augment or Augment()
        self.seed = seed
        # beats whose (unjittered) window runs past an edge of their record
        self.padded = (beats.sample < half_width) | (beats.sample + half_width > records.lengths[beats.record])
        # runs of consecutive beats of one record (beat-sequence models): an item is a run, not a beat
        self.runs = beat_runs(beats.record, run_beats, run_stride or run_beats) if run_beats > 1 else None

    def __len__(self) -> int:
        return len(self.labels) if self.runs is None else len(self.runs)

    def item_records(self) -> np.ndarray:
        """Each item's record: a beat's, or a run's (its first beat's; a run never spans two records)."""
        return self.beats.record if self.runs is None else self.beats.record[self.runs[:, 0]]

    def items_by_record(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per record, in order: its items (beats, or runs of beats) and those of them without padding (runs that
        hold a record's last beats are padded past its end; all its items when every one is) — what a
        record-by-record pass (``models/record_norm.py``) reads its statistics from. Items must be ordered by
        record, as evaluation indexes are."""
        first = self.item_records()
        whole = np.ones(len(first), bool) if self.runs is None else (self.runs >= 0).all(1)
        bounds = stretch_bounds(first)
        if len(np.unique(first)) != len(bounds) - 1:
            raise ValueError("items_by_record needs the items ordered by record (an evaluation index)")
        groups = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            items = np.arange(lo, hi)
            groups.append((items, items[whole[lo:hi]] if whole[lo:hi].any() else items))
        return groups

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...] | dict[str, torch.Tensor]:
        """A whole batch: ``(x, y)``, or ``(x, rr, y)`` with RR features; x (batch, leads, window), y class indices;
        with ``patient_codes`` each window's patient (int64, shaped as y) just before y.

        With runs of beats (``run_beats`` > 1) an item is a run: x (batch, run_beats, leads, window), rr
        (batch, run_beats, features), y (batch, run_beats), with y = -1 (and zero inputs) where a record's last run
        is padded. With ``plan_only`` the batch's plan instead (``plan``): its windows are cut later, on the
        device (``cut_windows``), from signals kept there.
        """
        idx = np.asarray(indices, dtype=np.int64)
        # seeded by the batch itself, so a resumed run augments exactly as an uninterrupted one
        rng = np.random.default_rng([self.seed, int(idx[0]), int(idx[-1]), len(idx)])
        if self.runs is None:
            return self._cut(idx, rng)
        beat = self.runs[idx]
        pad = torch.from_numpy(beat < 0)
        parts = self._cut(np.maximum(beat, 0).ravel(), rng)
        shaped = [t.reshape(*beat.shape, *t.shape[1:]) for t in parts]
        *inputs, y = shaped
        inputs = [t.masked_fill(pad.reshape(*pad.shape, *[1] * (t.dim() - 2)), 0) for t in inputs]
        y = y.masked_fill(pad, -1)
        a = self.augment
        # after every other draw, each only when asked (a recipe without one draws exactly as before), in this order:
        # premature beats; atrial runs in runs left all normal; fibrillation in runs holding no S beat, served or
        # annotated (they keep their rhythm); pauses last, S beats and fibrillating runs alike between them
        for chance, serve, more in (
            (a.premature, premature_runs, (a.premature_earlier,)),
            (a.atrial_runs, atrial_runs_of, (a.premature_earlier,)),
            (a.irregular, irregular_runs, ()),
            (a.pauses, pause_runs, ()),
        ):
            if chance:
                served = serve(inputs[1], y, self.rr_names, chance, a.premature_label, rng, *more)
                if serve is irregular_runs and a.p_wave is not None:  # fibrillation has no P waves
                    flatten_p_waves(inputs[0], served, self.signal.shape[0], a.p_wave)
        return (*inputs, y)

    def _cut(self, idx: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, ...] | dict[str, torch.Tensor]:
        """The windows (or the plan) of the beats ``idx`` of this dataset's index."""
        aug = self.augment
        starts = self.starts[idx]
        if aug.jitter:
            starts = starts + rng.integers(-aug.jitter, aug.jitter + 1, len(idx))
        scales = (1 + aug.scale * rng.uniform(-1, 1, len(idx))).astype(np.float32) if aug.scale else None
        rows = self.beats.record[idx]  # each window's template row
        swap = aug.template_swap and self.swap_rows is not None
        if swap and not aug.swap_by_record:
            rows = np.where(rng.random(len(idx)) < aug.template_swap, self.swap_rows[rows], rows)
        if self.plan_only:
            return self.plan(idx, starts, scales, rng, rows)
        lo, hi = self._bounds(idx)
        # per-record factors, one draw per record in the batch, in this order (a recipe without the later ones draws
        # exactly as before they existed); none is drawn, and the records are not listed, when none is asked
        stretch = record_scale = rr_factor = None
        if aug.draws_per_record():
            records, each = np.unique(self.beats.record[idx], return_inverse=True)

            def per_record(amount: float) -> np.ndarray | None:
                return (1 + amount * rng.uniform(-1, 1, len(records)))[each] if amount else None

            stretch, record_scale, rr_factor = (per_record(a) for a in (aug.stretch, aug.record_scale, aug.rr_scale))
            if swap and aug.swap_by_record:
                rows = np.where((rng.random(len(records)) < aug.template_swap)[each], self.swap_rows[rows], rows)
        if record_scale is not None:
            record_scale = record_scale.astype(np.float32)
            scales = record_scale if scales is None else scales * record_scale
        if stretch is not None:
            windows = stretched(self.signal, starts, lo, hi, stretch, len(self.steps))
        elif ((starts >= lo) & (starts + len(self.steps) <= hi)).all():
            windows = self.windows[:, starts]
        else:  # some window runs past its record's edge: gather inside, zero outside
            positions = starts[:, None] + self.steps
            lo, hi = lo[:, None], hi[:, None]
            windows = self.signal[:, np.clip(positions, lo, hi - 1)] * ((positions >= lo) & (positions < hi))
        windows = windows.transpose(1, 0, 2)  # (batch, leads, window)
        if scales is not None:
            windows = windows * scales[:, None, None]
        x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        if aug.noise:
            x = add_noise(x, aug.noise, int(rng.integers(2**62)))
        if self.templates is not None:
            templates = self.templates[rows]
            if stretch is not None:  # the template as the same patient's: stretched by its record's factor
                n_rows, width = templates.shape[0] * templates.shape[1], templates.shape[-1]
                flat = templates.reshape(1, n_rows * width)
                bounds = np.arange(n_rows) * width
                factor = np.repeat(stretch, templates.shape[1])
                templates = stretched(flat, bounds, bounds, bounds + width, factor, width)[0].reshape(templates.shape)
            if record_scale is not None:  # the template as the same patient's: its record's amplitude
                templates = templates * record_scale[:, None, None]
            x = torch.cat([x, torch.from_numpy(np.ascontiguousarray(templates, dtype=np.float32))], dim=1)
        y = torch.from_numpy(self.labels[idx].astype(np.int64))
        inputs = (x,) if not self.rr_columns else (x, self._rr(idx, rr_factor))
        if self.patient is not None:
            inputs = (*inputs, torch.from_numpy(self.patient[idx].astype(np.int64)))
        return (*inputs, y)

    def _bounds(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First sample and end (exclusive) of each window's record, in the concatenated signal."""
        record = self.beats.record[idx]
        return self.offsets[record], self.offsets[record + 1]

    def _rr(self, idx: np.ndarray, factor: np.ndarray | None = None) -> torch.Tensor:
        """The served RR features of ``idx``; with ``factor``, each beat's RR intervals in seconds multiplied by it."""
        rr = self.beats.rr[idx][:, self.rr_columns]
        if factor is not None:
            rr = rescaled_seconds(rr, self.rr_names, factor)
        return torch.from_numpy(np.ascontiguousarray(rr))

    def plan(
        self,
        idx: np.ndarray,
        starts: np.ndarray,
        scales: np.ndarray | None,
        rng: np.random.Generator,
        rows: np.ndarray,
    ) -> dict[str, torch.Tensor]:
        """Everything a batch needs but its samples (a few numbers per window): window starts (jittered), record
        bounds, amplitude scales, a noise seed, template rows, RR features, labels. Drawn from the same seeded
        generator as a CPU-cut batch, so jitter, scale and the noise seed are the same; noise is drawn on the
        device (``add_noise``)."""
        lo, hi = self._bounds(idx)
        plan = {
            "start": torch.from_numpy(starts),
            "lo": torch.from_numpy(lo),
            "hi": torch.from_numpy(hi),
            "scale": torch.from_numpy(scales if scales is not None else np.ones(len(idx), np.float32)),
            "noise": torch.tensor([self.augment.noise], dtype=torch.float32),
            "noise_seed": torch.tensor([int(rng.integers(2**62))]),
            "template_row": torch.from_numpy(rows.astype(np.int64)),
            "label": torch.from_numpy(self.labels[idx].astype(np.int64)),
        }
        if self.rr_columns:
            plan["rr"] = self._rr(idx)
        return plan

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        return tuple(t[0] for t in self.__getitems__([i]))

    @property
    def nbytes(self) -> int:
        """Memory held by this dataset's own index (the shared signal is counted once, by the DataModule)."""
        arrays = (self.starts, self.padded, *vars(self.beats).values())
        return sum(a.nbytes for a in arrays)


def stretched(
    signal: np.ndarray, starts: np.ndarray, lo: np.ndarray, hi: np.ndarray, factor: np.ndarray, width: int
) -> np.ndarray:
    """Windows of ``width`` samples of ``signal`` (leads, samples), each centred where the unstretched window
    ``starts[i]`` is and read ``factor[i]`` samples apart (linear interpolation): (leads, batch, width), zero outside
    each window's ``[lo, hi)``."""
    half = width // 2
    position = (starts + half)[:, None] + (np.arange(width) - half) * factor[:, None]
    left = np.floor(position).astype(np.int64)
    weight = (position - left).astype(np.float32)
    lo, hi = lo[:, None], hi[:, None]
    inside = (position >= lo) & (position <= hi - 1)
    a = signal[:, np.clip(left, lo, hi - 1)]
    b = signal[:, np.clip(left + 1, lo, hi - 1)]
    return (a + (b - a) * weight) * inside


def add_noise(x: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``std``, drawn on x's device from ``seed`` (a number the
    batch's own generator draws): a batch cut on the CPU and its plan cut on the CPU get the same noise. torch's
    normals: ~4x faster than numpy's (a tenth of an AAMI training step otherwise)."""
    generator = torch.Generator(x.device).manual_seed(seed)
    return x + std * torch.randn(x.shape, generator=generator, device=x.device)


def cut_windows(
    plan: dict[str, torch.Tensor], signal: torch.Tensor, templates: torch.Tensor | None, width: int
) -> tuple[torch.Tensor, ...]:
    """A batch cut where ``signal`` (leads, samples) lives, e.g. on the GPU: one gather of every window's samples.

    The same windows as ``BeatWindowDataset.__getitems__`` (zero outside the window's record, the plan's scales,
    templates appended), with noise drawn on ``signal``'s device from the plan's seed.
    """
    lo, hi = plan["lo"][:, None], plan["hi"][:, None]
    positions = plan["start"][:, None] + torch.arange(width, device=signal.device)
    inside = (positions >= lo) & (positions < hi)
    x = signal[:, torch.minimum(torch.maximum(positions, lo), hi - 1)] * inside  # (leads, batch, window)
    x = x.transpose(0, 1).float() * plan["scale"][:, None, None]
    noise = float(plan["noise"][0])
    if noise:
        x = add_noise(x, noise, int(plan["noise_seed"][0]))
    if templates is not None:
        x = torch.cat([x, templates[plan["template_row"]]], dim=1)
    x = x.contiguous()
    return (x, plan["rr"], plan["label"]) if "rr" in plan else (x, plan["label"])
