"""Patient splits: the study's stratified record split, a subject-grouped split, and subject-grouped k-fold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

# Abnormal-beat-fraction bins of the study: [0, 0.2], (0.2, 0.6], (0.6, 1.0].
STUDY_BIN_EDGES = (0.0, 0.2, 0.6, 1.0)


def abnormal_fraction(record: np.ndarray, label: np.ndarray, n_records: int) -> np.ndarray:
    """Fraction of abnormal windows per record (0 for a record without windows)."""
    counts = np.bincount(record, minlength=n_records)
    abnormal = np.bincount(record, weights=label.astype(np.float64), minlength=n_records)
    return np.divide(abnormal, counts, out=np.zeros(n_records), where=counts > 0)


def fraction_bins(fraction: np.ndarray, edges: Sequence[float] = STUDY_BIN_EDGES) -> np.ndarray:
    """Right-closed bins with the lowest edge included (pandas ``cut(..., include_lowest=True)``)."""
    return np.digitize(fraction, edges[1:-1], right=True)


def subject_ids(names: Sequence[str], same_subject: Sequence[Sequence[str]] = ()) -> np.ndarray:
    """Subject of each record: records listed together in ``same_subject`` share one (e.g. 201 and 202)."""
    subject_of = {name: i for i, name in enumerate(names)}
    for group in same_subject:
        present = [str(r) for r in group if str(r) in subject_of]
        for name in present[1:]:
            subject_of[name] = subject_of[present[0]]
    _, ids = np.unique([subject_of[n] for n in names], return_inverse=True)
    return ids


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
        train, val = train_test_split(
            names, test_size=test_size, stratify=fraction_bins(fraction, edges), random_state=random_state
        )
        return train, val
    units = np.arange(subjects.max() + 1)
    unit_bins = fraction_bins(_subject_fraction(subjects, fraction, windows), edges)
    train_units, _ = train_test_split(units, test_size=test_size, stratify=unit_bins, random_state=random_state)
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
        raise ValueError(f"data.fold={fold} is outside 0..{n_folds - 1} (data.n_folds={n_folds})")
    units = np.arange(subjects.max() + 1)
    unit_bins = fraction_bins(_subject_fraction(subjects, fraction, windows), edges)
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    _, val_units = list(folds.split(units, unit_bins))[fold]
    in_val = np.isin(subjects, val_units)
    names = list(names)
    return [n for n, v in zip(names, in_val) if not v], [n for n, v in zip(names, in_val) if v]
