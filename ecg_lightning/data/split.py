"""Patient splits: the study's stratified record split, a subject-grouped split, subject-grouped k-fold,
and the inter-patient benchmark's fixed train/test record lists (DS1/DS2)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from ecg_lightning.errors import ConfigError

log = logging.getLogger(__name__)

# Abnormal-beat-fraction bins of the study: [0, 0.2], (0.2, 0.6], (0.6, 1.0].
STUDY_BIN_EDGES = (0.0, 0.2, 0.6, 1.0)


def abnormal_fraction(record: np.ndarray, label: np.ndarray, n_records: int) -> np.ndarray:
    """Fraction of abnormal windows (any class but the first, normal one) per record (0 for a record without any)."""
    counts = np.bincount(record, minlength=n_records)
    abnormal = np.bincount(record, weights=(label != 0).astype(np.float64), minlength=n_records)
    return np.divide(abnormal, counts, out=np.zeros(n_records), where=counts > 0)


def fraction_bins(fraction: np.ndarray, edges: Sequence[float] = STUDY_BIN_EDGES) -> np.ndarray:
    """Right-closed bins with the lowest edge included (pandas ``cut(..., include_lowest=True)``)."""
    return np.digitize(fraction, edges[1:-1], right=True)


def subject_ids(keys: Sequence[str]) -> np.ndarray:
    """Subject index of each record from its subject key (databases.Database.subject_keys): records with one key
    share an index; indices are numbered in order of first appearance, so splits follow the record order."""
    _, first, inverse = np.unique(np.asarray(keys, dtype=str), return_index=True, return_inverse=True)
    return np.argsort(np.argsort(first))[inverse]


def _subject_fraction(subjects: np.ndarray, record_fraction: np.ndarray, record_weight: np.ndarray) -> np.ndarray:
    """Abnormal fraction per subject, over the windows of all its records."""
    n = subjects.max() + 1
    beats = np.bincount(subjects, weights=record_weight, minlength=n)
    abnormal = np.bincount(subjects, weights=record_fraction * record_weight, minlength=n)
    return np.divide(abnormal, beats, out=np.zeros(n), where=beats > 0)


def holdout_split(
    names: Sequence[str],
    fraction: np.ndarray,
    windows: np.ndarray,
    test_size: float,
    random_state: int,
    subjects: np.ndarray | None = None,
    edges: Sequence[float] = STUDY_BIN_EDGES,
) -> tuple[list[str], list[str]]:
    """Stratified train/val split of records, or of subjects when ``subjects`` groups them.

    With ``subjects=None`` this is the study's split exactly: ``train_test_split`` over the records in
    order, stratified by binned abnormal fraction.
    """
    names = list(names)
    if subjects is None:
        return _stratified_holdout(names, fraction_bins(fraction, edges), test_size, random_state)
    units = np.arange(subjects.max() + 1)
    unit_bins = fraction_bins(_subject_fraction(subjects, fraction, windows), edges)
    train_units, _ = _stratified_holdout(list(units), unit_bins, test_size, random_state)
    in_train = np.isin(subjects, train_units)
    return [n for n, t in zip(names, in_train) if t], [n for n, t in zip(names, in_train) if not t]


def kfold_split(
    names: Sequence[str],
    fraction: np.ndarray,
    windows: np.ndarray,
    subjects: np.ndarray,
    fold: int,
    n_folds: int,
    random_state: int,
    edges: Sequence[float] = STUDY_BIN_EDGES,
) -> tuple[list[str], list[str]]:
    """Fold ``fold`` of a subject-grouped k-fold stratified by binned abnormal fraction."""
    if not 0 <= fold < n_folds:
        raise ConfigError(f"data.fold={fold} is outside 0..{n_folds - 1} (data.n_folds={n_folds})")
    units = np.arange(subjects.max() + 1)
    if n_folds > len(units):
        raise ConfigError(
            f"data.n_folds={n_folds} is more than the {len(units)} subjects to split; use 2..{len(units)}"
        )
    unit_bins = fraction_bins(_subject_fraction(subjects, fraction, windows), edges)
    if np.bincount(unit_bins).max() >= n_folds:
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    else:  # too few subjects in every bin to stratify
        log.warning(
            "Too few subjects per abnormal-fraction bin to stratify %d folds; folds are not stratified", n_folds
        )
        folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    _, val_units = list(folds.split(units, unit_bins))[fold]
    in_val = np.isin(subjects, val_units)
    names = list(names)
    return [n for n, v in zip(names, in_val) if not v], [n for n, v in zip(names, in_val) if v]


def _stratified_holdout(units: list, bins: np.ndarray, test_size: float, random_state: int) -> tuple[list, list]:
    """``train_test_split`` stratified by ``bins``; unstratified (with a warning) when the bins are too small."""
    try:
        train, test = train_test_split(units, test_size=test_size, stratify=bins, random_state=random_state)
    except ValueError as err:  # a bin with one member, or fewer test units than bins
        log.warning("Cannot stratify the split of %d units (%s); splitting without stratification", len(units), err)
        train, test = train_test_split(units, test_size=test_size, random_state=random_state)
    return train, test


def benchmark_split(
    names: Sequence[str], train: Sequence[str], test: Sequence[str], subjects: np.ndarray, keep_shared: bool = False
) -> tuple[list[str], list[str]]:
    """Records of a fixed train/test benchmark (e.g. DS1/DS2); records in neither (MIT-BIH's paced ones) are left out.

    A training record whose subject also has a test record is dropped from training (MIT-BIH: 201 is in DS1, 202
    of the same man in DS2), so no subject is on both sides while the test set stays the published one; with
    ``keep_shared`` it stays (the published protocol), and the warning says the subject is on both sides.
    """
    names = list(names)
    train_set, test_set = {str(r) for r in train}, {str(r) for r in test}
    test_names = [n for n in names if n in test_set]
    test_subjects = {subjects[i] for i, n in enumerate(names) if n in test_set}
    leaking = [n for i, n in enumerate(names) if n in train_set and subjects[i] in test_subjects]
    if leaking and keep_shared:
        log.warning("Training records %s share a subject with test records: kept (the published protocol)", leaking)
        leaking = []
    elif leaking:
        log.warning("Training records %s share a subject with test records: left out of training", leaking)
    train_names = [n for n in names if n in train_set and n not in leaking]
    return train_names, test_names
