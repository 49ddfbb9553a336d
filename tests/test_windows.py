import numpy as np
import pytest
import torch
import wfdb
from conftest import AAMI, STUDY
from hypothesis import given, settings
from hypothesis import strategies as st

from ecg_lightning.data.labels import label_beats
from ecg_lightning.data.records import Record, RecordSet, read_database, record_sources
from ecg_lightning.data.windows import (
    Augment,
    BeatWindowDataset,
    EpochShuffle,
    Shard,
    beat_runs,
    beat_templates,
    index_beats,
    record_balance_weights,
)

HALF = 180
BEAT_SYMBOLS = ["N", "V", "A", "L", "/", "F"]


def standardized(raw: np.ndarray) -> np.ndarray:
    return (raw - raw.mean(0)) / raw.std(0)


def test_index_keeps_labelled_beats_whose_window_fits(tiny_db):
    db = read_database(record_sources("db", tiny_db, ["100", "106"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), HALF)
    for i, name in enumerate(db.names):
        ann = wfdb.rdann(str(tiny_db / name), "atr")
        n = db.lengths[i]
        sample, symbol = np.asarray(ann.sample), np.asarray(ann.symbol)
        expected = sample[np.isin(symbol, BEAT_SYMBOLS) & (sample >= HALF) & (sample + HALF <= n)]
        np.testing.assert_array_equal(beats.sample[beats.record == i], expected)
        assert len(expected) < np.isin(symbol, BEAT_SYMBOLS).sum()  # the first beat (0.3 s) is dropped
    assert set(beats.symbol) <= set(BEAT_SYMBOLS)
    np.testing.assert_array_equal(beats.label, (beats.symbol != "N").astype(np.int8))


def test_edge_filter_boundary_is_exact():
    """A window [c - h, c + h) fits when c >= h and c + h <= n: beats at h and n - h kept, h - 1 and n - h + 1 not."""
    n, h = 1000, 100
    rec = Record(
        "r",
        np.random.default_rng(0).normal(size=(1, n)).astype(np.float32),
        ("MLII",),
        360.0,
        np.array([h - 1, h, 500, n - h, n - h + 1]),
        np.array(["N"] * 5),
    )
    db = RecordSet.from_records([rec])
    kept = index_beats(db, label_beats(db.ann_symbol, STUDY), h).sample
    assert kept.tolist() == [h, 500, n - h]
    padded = index_beats(db, label_beats(db.ann_symbol, STUDY), h, pad_edges=True).sample
    assert padded.tolist() == [h - 1, h, 500, n - h, n - h + 1]


def test_window_equals_the_slice_of_the_record_signal(tiny_db):
    db = read_database(record_sources("db", tiny_db, ["100", "106", "201"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), HALF)
    data = BeatWindowDataset(db, beats, HALF)
    picks = [0, 5, len(data) // 2, len(data) - 1]
    x, y = data.__getitems__(picks)
    assert x.shape == (len(picks), 1, 2 * HALF) and x.dtype == torch.float32 and y.dtype == torch.int64
    for row, i in enumerate(picks):
        record = standardized(wfdb.rdrecord(str(tiny_db / db.names[beats.record[i]])).p_signal)[:, 0]
        c = beats.sample[i]
        np.testing.assert_allclose(x[row, 0].numpy(), record[c - HALF : c + HALF], atol=1e-5)
        assert y[row] == int(beats.symbol[i] != "N")
    single_x, single_y = data[picks[2]]
    torch.testing.assert_close(single_x, x[2])
    assert single_y == y[2]


def test_two_leads_and_padded_edges(tiny_db):
    db = read_database(record_sources("db", tiny_db, ["105", "106"], ["MLII", "V1"]), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, AAMI), HALF, pad_edges=True)
    data = BeatWindowDataset(db, beats, HALF)
    first = 0  # record 105's first beat, at 0.3 s = 108 samples: 72 samples of padding on the left
    last = int(np.flatnonzero(beats.record == 0)[-1])  # its last beat: the window must not reach into record 106
    x, y = data.__getitems__([first, last])
    assert x.shape == (2, 2, 2 * HALF)
    raw = standardized(wfdb.rdrecord(str(tiny_db / "105")).p_signal).T  # (2 leads, n)
    c = beats.sample[first]
    assert c == 108 and data.padded[first] and not data.padded[1]
    np.testing.assert_array_equal(x[0, :, : HALF - c].numpy(), 0.0)
    np.testing.assert_allclose(x[0, :, HALF - c :].numpy(), raw[:, : c + HALF], atol=1e-5)
    c = beats.sample[last]
    n = raw.shape[1]
    inside = n - (c - HALF)
    np.testing.assert_allclose(x[1, :, :inside].numpy(), raw[:, c - HALF :], atol=1e-5)
    np.testing.assert_array_equal(x[1, :, inside:].numpy(), 0.0)
    symbols = np.asarray(wfdb.rdann(str(tiny_db / "105"), "atr").symbol)
    aami_class = {s: k for k, members in enumerate(AAMI.values()) for s in members}
    assert y.tolist() == [aami_class[beats.symbol[first]], aami_class[beats.symbol[last]]]
    assert (beats.record == 0).sum() == np.isin(symbols, BEAT_SYMBOLS).sum()  # every beat kept


def test_jitter_at_record_edges_pads_instead_of_reading_the_neighbour():
    """Two records, the second's samples all 100: a jittered window of record 0 must never see a 100."""
    n, h = 400, 50
    zeros = Record("a", np.ones((1, n), np.float32), ("MLII",), 360.0, np.array([h, n - h]), np.array(["N", "N"]))
    hundreds = Record("b", np.full((1, n), 100.0, np.float32), ("MLII",), 360.0, np.array([h]), np.array(["N"]))
    db = RecordSet.from_records([zeros, hundreds])
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), h)
    data = BeatWindowDataset(db, beats, h, augment=Augment(jitter=40))
    seen_padding = False
    for seed in range(30):
        data.seed = seed
        x, _ = data.__getitems__([0, 1])
        assert set(np.unique(x.numpy())) <= {0.0, 1.0}
        seen_padding |= bool((x == 0).any())
    assert seen_padding  # the jitter did run past the edges


@settings(max_examples=40, deadline=None)
@given(lengths=st.lists(st.integers(30, 200), min_size=1, max_size=4), half=st.integers(1, 40), data=st.data())
def test_every_window_is_its_record_slice_zero_padded(lengths, half, data):
    rng = np.random.default_rng(len(lengths) * 1000 + half)
    records = []
    for i, n in enumerate(lengths):
        samples = np.unique(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5)))
        records.append(
            Record(
                str(i),
                rng.normal(size=(2, n)).astype(np.float32),
                ("MLII", "V1"),
                360.0,
                samples,
                np.array(["V"] * len(samples)),
            )
        )
    db = RecordSet.from_records(records)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), half, pad_edges=True)
    assert len(beats) == len(db.ann_sample)  # padding keeps every beat
    x, _ = BeatWindowDataset(db, beats, half).__getitems__(list(range(len(beats))))
    for row, (r, c) in enumerate(zip(beats.record, beats.sample)):
        padded = np.pad(records[r].signal, ((0, 0), (half, half)))
        np.testing.assert_array_equal(x[row].numpy(), padded[:, c : c + 2 * half])


def test_templates_are_each_records_median_beat_served_as_extra_channels():
    h = 20
    shape_a, shape_b = np.hanning(2 * h), -np.hanning(2 * h)
    signal = np.zeros((2, 400), np.float32)
    beats = np.array([50, 150, 250])
    for c, shape in zip(beats, (shape_a, shape_a, shape_b)):  # two beats of shape a, one of b: the median is a
        signal[0, c - h : c + h] = shape
        signal[1, c - h : c + h] = 2 * shape
    first = Record("a", signal, ("MLII", "V1"), 360.0, beats, np.array(["N", "N", "V"]))
    second = Record("b", -signal, ("MLII", "V1"), 360.0, np.array([150]), np.array(["N"]))
    empty = Record("c", signal, ("MLII", "V1"), 360.0, np.array([], dtype=np.int64), np.array([], dtype="<U2"))
    db = RecordSet.from_records([first, second, empty])
    index = index_beats(db, label_beats(db.ann_symbol, STUDY), h)
    templates = beat_templates(db, index, h)
    assert templates.shape == (3, 2, 2 * h)
    np.testing.assert_allclose(templates[0], np.stack([shape_a, 2 * shape_a]), atol=1e-6)
    np.testing.assert_allclose(templates[1], -np.stack([shape_a, 2 * shape_a]), atol=1e-6)
    np.testing.assert_array_equal(templates[2], 0.0)  # no beats, no template
    x, _ = BeatWindowDataset(db, index, h, templates=templates).__getitems__([2, 3])
    assert x.shape == (2, 4, 2 * h)
    np.testing.assert_allclose(x[0, :2].numpy(), np.stack([shape_b, 2 * shape_b]), atol=1e-6)  # the beat itself
    np.testing.assert_allclose(x[0, 2:].numpy(), templates[0])  # then its own record's template
    np.testing.assert_allclose(x[1, 2:].numpy(), templates[1])


def test_templates_subsample_evenly():
    n, h = 2000, 5
    signal = np.zeros((1, n), np.float32)
    beats = np.arange(10, n - 10, 20)
    picked = np.linspace(0, len(beats) - 1, 3).astype(int)  # first, middle, last
    peaks = np.full(len(beats), 100.0, dtype=np.float32)
    peaks[picked] = [1.0, 2.0, 3.0]  # the median of the picked beats is 2; of all beats, 100
    signal[0, beats] = peaks
    db = RecordSet.from_records([Record("a", signal, ("MLII",), 360.0, beats, np.array(["N"] * len(beats)))])
    index = index_beats(db, label_beats(db.ann_symbol, STUDY), h)
    assert beat_templates(db, index, h, max_beats=3)[0, 0, h] == 2.0
    assert beat_templates(db, index, h)[0, 0, h] == 100.0  # default: up to 400 beats, here all of them


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), world=st.integers(1, 5), epoch=st.integers(0, 3))
def test_each_rank_trains_on_its_own_shard_of_the_epoch(n, world, epoch):
    """Ranks take disjoint positions of one (seed, epoch) permutation, together all of it, as many steps each."""
    whole = list(EpochShuffle(n, seed=7, epoch_of=lambda: epoch))
    assert sorted(whole) == list(range(n))
    shards = [list(EpochShuffle(n, 7, lambda: epoch, rank, world)) for rank in range(world)]
    assert {len(s) for s in shards} == {-(-n // world)}
    padded = (whole * world)[: world * len(shards[0])]  # the permutation extended cyclically
    for rank, shard in enumerate(shards):
        assert shard == padded[rank::world]
    assert set().union(*map(set, shards)) == set(range(n))
    assert list(EpochShuffle(n, 7, lambda: epoch + 1)) != whole or n < 10  # a new epoch, a new order


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    batch=st.integers(1, 9),
    world=st.integers(1, 3),
    epoch=st.integers(0, 2),
)
def test_grouped_epoch_shuffle_serves_each_batch_from_one_record(sizes, batch, world, epoch):
    """With groups, every batch of consecutive items is one group's; each group's items are all served (its last
    batch filled up with its own), ranks take whole batches in turn, as many each, and a new epoch draws anew."""
    groups = np.repeat(np.arange(len(sizes)) * 10, sizes)  # group labels need not be 0..k-1
    n = len(groups)
    whole = np.array(list(EpochShuffle(n, 3, lambda: epoch, groups=groups, batch=batch)))
    n_batches = sum(-(-k // batch) for k in sizes)
    assert len(whole) == n_batches * batch == len(EpochShuffle(n, 3, groups=groups, batch=batch))
    in_batches = groups[whole].reshape(-1, batch)
    assert (in_batches == in_batches[:, :1]).all()  # one group per batch
    assert set(whole.tolist()) == set(range(n))
    assert all((in_batches[:, 0] == g * 10).sum() == -(-k // batch) for g, k in enumerate(sizes))
    shards = [list(EpochShuffle(n, 3, lambda: epoch, rank, world, groups=groups, batch=batch)) for rank in range(world)]
    assert {len(shard) for shard in shards} == {-(-n_batches // world) * batch}
    cyclic = np.resize(whole.reshape(-1, batch), (-(-n_batches // world) * world, batch))
    for rank, shard in enumerate(shards):
        assert shard == cyclic[rank::world].ravel().tolist()
    if n > 20 and n_batches > 5:
        assert list(EpochShuffle(n, 3, lambda: epoch + 1, groups=groups, batch=batch)) != whole.tolist()
    with pytest.raises(ValueError, match="no weights beside them"):
        EpochShuffle(n, 3, weights=np.ones(n), groups=groups, batch=batch)


def test_record_balance_weights_even_out_the_patients_of_a_class():
    """Records with 20 and 5 S beats (S patients), one with 2 (too few: not a patient), one with none: at power 1 each
    patient's S beats weigh mean/count (so both patients' S beats are drawn as often in all), at 0.5 the square root,
    every other beat 1; a run takes its record's weight when it holds a patient's S beat, else 1."""
    counts = {0: 20, 1: 5, 2: 2, 3: 0}
    record = np.repeat(np.arange(4), 40)
    label = np.zeros(len(record), dtype=np.int8)
    for r, k in counts.items():
        label[np.flatnonzero(record == r)[:k]] = 1
    label[np.flatnonzero(record == 3)[:10]] = 2  # another class does not count
    full = record_balance_weights(record, label, 1, 1.0)
    s_beats = label == 1
    np.testing.assert_allclose(full[s_beats & (record == 0)], 12.5 / 20)
    np.testing.assert_allclose(full[s_beats & (record == 1)], 12.5 / 5)
    assert (full[~s_beats | (record == 2)] == 1).all()
    # at power 1 the two patients' S beats carry the same total weight
    assert full[s_beats & (record == 0)].sum() == pytest.approx(full[s_beats & (record == 1)].sum())
    np.testing.assert_allclose(record_balance_weights(record, label, 1, 0.5), np.sqrt(full))
    assert (record_balance_weights(record, label, 1, 0.0) == 1).all()
    runs = beat_runs(record, 16, 8)  # record 1's S beats are its first five: only its first run holds them
    by_run = record_balance_weights(record, label, 1, 1.0, runs)
    first = runs[:, 0]
    holds = np.array([(label[run[run >= 0]] == 1).any() and counts[record[run[0]]] >= 5 for run in runs])
    np.testing.assert_allclose(by_run, np.where(holds, 12.5 / np.maximum([counts[r] for r in record[first]], 1), 1.0))
    assert holds.sum() == 3 + 1  # record 0's S beats (0..19) in its runs from 0, 8 and 16, record 1's in its first


def test_weighted_epoch_shuffle_draws_in_proportion_from_seed_and_epoch():
    """With weights, n items drawn with replacement in proportion to them: an item of weight 0 never, one of weight 3
    three times as often as one of weight 1; the same (seed, epoch) draws the same, a new epoch anew; ranks shard it."""
    n = 3000
    weights = np.ones(n)
    weights[:1000], weights[1000:1500] = 3.0, 0.0
    draws = list(EpochShuffle(n, 5, lambda: 2, weights=weights))
    assert len(draws) == n and draws == list(EpochShuffle(n, 5, lambda: 2, weights=weights))
    assert draws != list(EpochShuffle(n, 5, lambda: 3, weights=weights))
    drawn = np.bincount(draws, minlength=n)
    assert drawn[1000:1500].sum() == 0
    assert drawn[:1000].sum() / drawn[1500:].sum() == pytest.approx(3 * 1000 / 1500, rel=0.1)
    shards = [list(EpochShuffle(n, 5, lambda: 2, rank, 2, weights)) for rank in range(2)]
    assert shards[0] == draws[0::2] and shards[1] == draws[1::2]
    with pytest.raises(ValueError, match="one per item"):
        EpochShuffle(n, 5, weights=weights[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        EpochShuffle(3, 5, weights=np.array([1.0, -1.0, 1.0]))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 300), world=st.integers(1, 5))
def test_evaluation_shards_cover_every_window_exactly_once(n, world):
    order = np.random.default_rng(n).permutation(n)
    shards = [list(Shard(order, rank, world)) for rank in range(world)]
    assert sorted(sum(shards, [])) == list(range(n))  # no window twice, none left out
    assert list(Shard(order)) == order.tolist()


def test_templates_take_the_median_over_every_beat_of_a_record():
    """60 beats, 31 of shape a and 29 of b: the template is a. The a beats sit where an even pick of 50 of the 60
    would skip (so a template from 50 picks would be b)."""
    h, n = 20, 60
    shape_a, shape_b = np.hanning(2 * h), -np.hanning(2 * h)
    skipped = sorted(set(range(n)) - set(np.linspace(0, n - 1, 50).astype(np.int64).tolist()))
    a_beats = set(skipped) | set([i for i in range(n) if i not in skipped][: 31 - len(skipped)])
    assert len(a_beats) == 31
    beats = 50 + 50 * np.arange(n)
    signal = np.zeros((1, 50 * n + 100), np.float32)
    for i, c in enumerate(beats):
        signal[0, c - h : c + h] = shape_a if i in a_beats else shape_b
    db = RecordSet.from_records([Record("a", signal, ("MLII",), 360.0, beats, np.array(["N"] * n))])
    index = index_beats(db, label_beats(db.ann_symbol, STUDY), h)
    np.testing.assert_allclose(beat_templates(db, index, h)[0, 0], shape_a, atol=1e-6)


def test_templates_from_the_longest_rr_beats_are_the_normal_beat_of_a_mostly_premature_record():
    """Most beats (shape b) come early; those after the longest RRs have shape a: the record's median beat is b, its
    longest-RR template is a."""
    h = 20
    shape_a, shape_b = np.hanning(2 * h), -np.hanning(2 * h)
    gaps = np.tile([200, 100, 100, 100, 100], 6)
    beats = 50 + np.cumsum(gaps)
    signal = np.zeros((1, beats[-1] + 100), np.float32)
    for gap, c in zip(gaps, beats):
        signal[0, c - h : c + h] = shape_a if gap == 200 else shape_b
    db = RecordSet.from_records([Record("a", signal, ("MLII",), 360.0, beats, np.array(["N"] * len(beats)))])
    index = index_beats(db, label_beats(db.ann_symbol, STUDY), h)
    np.testing.assert_allclose(beat_templates(db, index, h)[0, 0], shape_b, atol=1e-6)
    np.testing.assert_allclose(beat_templates(db, index, h, reference="longest_rr")[0, 0], shape_a, atol=1e-6)


def test_the_annotated_reference_template_is_the_median_of_the_annotated_class():
    """The stress test's template: the median beat of the beats annotated S (shape a, a minority), not the record's
    dominant shape b."""
    h = 20
    shape_a, shape_b = np.hanning(2 * h), -np.hanning(2 * h)
    beats = 50 + np.cumsum(np.full(30, 100))
    symbols = np.array(["A" if i % 5 == 0 else "N" for i in range(30)])
    signal = np.zeros((1, beats[-1] + 100), np.float32)
    for symbol, c in zip(symbols, beats):
        signal[0, c - h : c + h] = shape_a if symbol == "A" else shape_b
    db = RecordSet.from_records([Record("a", signal, ("MLII",), 360.0, beats, symbols)])
    index = index_beats(db, label_beats(db.ann_symbol, AAMI), h)
    np.testing.assert_allclose(beat_templates(db, index, h)[0, 0], shape_b, atol=1e-6)
    stressed = beat_templates(db, index, h, reference="annotated_S", reference_class=list(AAMI).index("S"))
    np.testing.assert_allclose(stressed[0, 0], shape_a, atol=1e-6)
