from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import train_test_split

from ecg_lightning.data.databases import Database
from ecg_lightning.data.split import (
    abnormal_fraction,
    benchmark_split,
    fraction_bins,
    holdout_split,
    kfold_split,
    subject_ids,
)

NAMES = [str(n) for n in range(100, 112)] + ["201", "202"]
FRACTION = np.array([0.0, 0.1, 0.2, 0.05, 0.21, 0.4, 0.6, 0.35, 0.61, 0.8, 0.9, 1.0, 0.3, 0.5])
WINDOWS = np.full(len(NAMES), 100.0)


def test_bins_are_right_closed_with_lowest_edge_included():
    assert list(fraction_bins(np.array([0.0, 0.2, 0.2001, 0.6, 0.6001, 1.0]))) == [0, 0, 1, 1, 2, 2]


def test_abnormal_fraction_per_record():
    record = np.array([0, 0, 0, 0, 2, 2])
    label = np.array([1, 0, 0, 0, 1, 1])
    np.testing.assert_allclose(abnormal_fraction(record, label, 3), [0.25, 0.0, 1.0])
    # records without windows are 0 exactly, never leftover memory (a ones-filled block of that size freed first)
    junk = np.ones(5000)
    del junk
    fraction = abnormal_fraction(np.array([4999]), np.array([1]), 5000)
    assert fraction[4999] == 1.0 and not fraction[:4999].any()


def test_seed_split_is_the_studys_train_test_split():
    train, val = holdout_split(NAMES, FRACTION, WINDOWS, 0.25, 42)
    bins = np.digitize(FRACTION, [0.2, 0.6], right=True)
    expected_train, expected_val = train_test_split(NAMES, test_size=0.25, stratify=bins, random_state=42)
    assert (train, val) == (expected_train, expected_val)
    assert not set(train) & set(val) and sorted(train + val) == sorted(NAMES)
    val_bins = fraction_bins(FRACTION[[NAMES.index(n) for n in val]])
    assert sorted(set(val_bins)) == [0, 1, 2]  # stratified: every bin on the val side
    assert holdout_split(NAMES, FRACTION, WINDOWS, 0.25, 42) == (train, val)
    assert holdout_split(NAMES, FRACTION, WINDOWS, 0.25, 7) != (train, val)


def grouped(names, groups):
    """Subject ids of ``names`` with ``groups`` of records from one subject, as the DataModule makes them."""
    return subject_ids(Database("db", Path("."), same_subject=groups).subject_keys(names, [()] * len(names)))


def test_subject_ids_group_records_of_one_subject():
    ids = grouped(NAMES, [["201", "202"]])
    assert ids[NAMES.index("201")] == ids[NAMES.index("202")]
    assert len(set(ids)) == len(NAMES) - 1
    # numbered in order of first appearance (the order train_test_split sees the subjects in), not by key
    assert subject_ids(["b", "a", "b", "c"]).tolist() == [0, 1, 0, 2]


@pytest.mark.parametrize("seed", range(10))
def test_patient_split_never_separates_a_subject(seed):
    subjects = grouped(NAMES, [["201", "202"]])
    train, val = holdout_split(NAMES, FRACTION, WINDOWS, 0.25, seed, subjects)
    assert not set(train) & set(val) and sorted(train + val) == sorted(NAMES)
    assert ("201" in train) == ("202" in train)


def test_kfold_partitions_subjects():
    subjects = grouped(NAMES, [["201", "202"]])
    vals = [kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 3, 42)[1] for k in range(3)]
    assert sorted(sum(vals, [])) == sorted(NAMES)  # every record validated exactly once
    for k, val in enumerate(vals):
        train = kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 3, 42)[0]
        assert not set(train) & set(val) and ("201" in val) == ("202" in val)
    assert vals == [kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 3, 42)[1] for k in range(3)]
    with pytest.raises(ValueError, match="data.fold=3"):
        kfold_split(NAMES, FRACTION, WINDOWS, subjects, 3, 3, 42)


def test_stratification_falls_back_when_bins_are_too_small(caplog):
    fraction = np.array([0.0, 0.1, 0.05, 0.9])  # one record in the top bin: cannot be stratified
    with caplog.at_level("WARNING"):
        train, val = holdout_split(["a", "b", "c", "d"], fraction, np.ones(4), 0.25, 0)
    assert len(val) == 1 and sorted(train + val) == ["a", "b", "c", "d"]
    assert "without stratification" in caplog.text


def test_kfold_is_stratified_by_subject_fraction():
    subjects = grouped(NAMES, [["201", "202"]])
    for k in range(3):
        _, val = kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 3, 42)
        bins = fraction_bins(FRACTION[[NAMES.index(n) for n in val]])
        assert sorted(set(bins)) == [0, 1, 2]  # every fold has subjects of every bin
    with pytest.raises(ValueError, match="data.n_folds=20 is more than the 13 subjects"):
        kfold_split(NAMES, FRACTION, WINDOWS, subjects, 0, 20, 42)


def test_benchmark_split_leaves_out_other_records_and_shared_subjects(caplog):
    names = ["100", "101", "102", "201", "202", "203"]
    subjects = grouped(names, [["201", "202"]])
    with caplog.at_level("WARNING"):
        train, test = benchmark_split(names, ["101", "201", "203"], ["100", "202"], subjects)
    assert train == ["101", "203"] and test == ["100", "202"]  # 102 in neither; 201 shares 202's subject
    assert caplog.messages == ["Training records ['201'] share a subject with test records: left out of training"]


def test_kfold_folds_by_hand_against_scikit_learn():
    from sklearn.model_selection import KFold, StratifiedKFold

    subjects = grouped(NAMES, [["201", "202"]])
    units = np.arange(subjects.max() + 1)
    subject_fraction = np.array([FRACTION[subjects == u].mean() for u in units])  # equal windows per record
    for edges in ([0.0, 0.2, 0.6, 1.0], [0.0, 0.5, 1.0]):
        bins = np.digitize(subject_fraction, edges[1:-1], right=True)
        expected = [units[v] for _, v in StratifiedKFold(3, shuffle=True, random_state=42).split(units, bins)]
        for k in range(3):
            _, val = kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 3, 42, edges)
            assert sorted(val) == sorted(n for n, s in zip(NAMES, subjects) if s in expected[k])
    # every bin smaller than the number of folds: plain (shuffled, seeded) KFold, with a warning
    few = np.array([0.0, 0.1, 0.3, 0.4, 0.7])
    names = ["a", "b", "c", "d", "e"]
    expected = [v for _, v in KFold(3, shuffle=True, random_state=42).split(np.arange(5))]
    for k in range(3):
        _, val = kfold_split(names, few, np.ones(5), np.arange(5), k, 3, 42)
        assert val == [names[i] for i in sorted(expected[k])]


def test_kfold_limits_are_exact(caplog):
    subjects = grouped(NAMES, [["201", "202"]])
    with pytest.raises(ValueError, match=r"data.fold=3 is outside 0..2 \(data.n_folds=3\)"):
        kfold_split(NAMES, FRACTION, WINDOWS, subjects, 3, 3, 42)
    vals = [kfold_split(NAMES, FRACTION, WINDOWS, subjects, k, 13, 42)[1] for k in range(13)]  # one subject a fold
    assert sorted(len(v) for v in vals) == [1] * 12 + [2]
    with caplog.at_level("WARNING"):
        kfold_split(["a", "b", "c", "d", "e"], np.array([0.0, 0.1, 0.3, 0.4, 0.7]), np.ones(5), np.arange(5), 0, 3, 42)
    assert any(m.startswith("Too few subjects per abnormal-fraction bin to stratify 3 folds") for m in caplog.messages)
    caplog.clear()
    with caplog.at_level("WARNING"):  # the largest bin has exactly n_folds subjects: stratified, no warning
        kfold_split(["a", "b", "c", "d"], np.array([0.0, 0.1, 0.15, 0.7]), np.ones(4), np.arange(4), 0, 3, 42)
    assert "stratify" not in caplog.text


def test_patient_split_is_stratified_by_subject_fraction():
    subjects = grouped(NAMES, [["201", "202"]])
    for seed in range(5):
        _, val = holdout_split(NAMES, FRACTION, WINDOWS, 0.25, seed, subjects)
        assert sorted(set(fraction_bins(FRACTION[[NAMES.index(n) for n in val]]))) == [0, 1, 2]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=8, max_size=30), st.integers(2, 4), st.integers(0, 10_000))
def test_splits_partition_subjects_property(fractions, n_folds, seed):
    names = [f"r{i}" for i in range(len(fractions))]
    groups = [names[i : i + 2] for i in range(0, len(names) - 1, 5)]  # some two-record subjects
    subjects = grouped(names, groups)
    fraction = np.array(fractions)
    train, val = holdout_split(names, fraction, np.ones(len(names)), 0.25, seed, subjects)
    assert sorted(train + val) == sorted(names) and not set(train) & set(val)
    vals = [kfold_split(names, fraction, np.ones(len(names)), subjects, k, n_folds, seed)[1] for k in range(n_folds)]
    assert sorted(sum(vals, [])) == sorted(names)  # every record validated exactly once
    for group in groups:
        assert (
            len({k for k, v in enumerate(vals) if group[0] in v} | {k for k, v in enumerate(vals) if group[1] in v})
            == 1
        )
        assert (group[0] in train) == (group[1] in train)
