from collections.abc import Callable

import numpy as np
import pytest
import torch
from conftest import STUDY, THREE_RECORDS_HALF

from ecg_lightning.data.labels import label_beats
from ecg_lightning.data.records import read_database, record_sources
from ecg_lightning.data.rr import (
    FOLLOWING,
    PRE_POST,
    PRECEDING,
    RR_FEATURES,
    WINDOWED,
    moved_earlier,
    rr_feature_names,
    rr_features,
    run_features,
)
from ecg_lightning.data.windows import Augment, BeatWindowDataset, index_beats
from ecg_lightning.errors import ConfigError


def test_rr_features_by_hand():
    record = np.array([0, 0, 0, 0, 1, 1])
    sample = np.array([100, 400, 600, 1000, 50, 410])
    f = rr_features(record, sample, fs=360.0, local_beats=2)
    pre = np.array([300, 300, 200, 400, 360, 360.0])
    post = np.array([300, 200, 400, 400, 360, 360.0])
    mean = np.array([1200 / 4] * 4 + [360.0] * 2)
    local = np.array([300, 300, 250, 300, 360, 360.0])
    np.testing.assert_allclose(f[:, 0], np.log(pre / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 1], np.log(post / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 2], np.log(local / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 3], np.log(pre / post), rtol=1e-6)
    np.testing.assert_allclose(f[:, 4], mean / 360.0, rtol=1e-6)


def test_local_rhythm_features_by_hand():
    """context_beats=1: the local RR of beat i is the mean pre-RR of beats i-1..i+1 within its record."""
    record = np.array([0, 0, 0, 0, 0])
    sample = np.array([0, 100, 300, 400, 600])
    f = rr_features(record, sample, fs=100.0, context_beats=1)
    pre = np.array([100, 100, 200, 100, 200.0])  # the first beat borrows its post RR
    post = np.array([100, 200, 100, 200, 200.0])
    context = np.array(
        [(100 + 100) / 2, (100 + 100 + 200) / 3, (100 + 200 + 100) / 3, (200 + 100 + 200) / 3, (100 + 200) / 2]
    )
    np.testing.assert_allclose(f[:, 5], np.log(pre / context), rtol=1e-5)
    np.testing.assert_allclose(f[:, 6], np.log(post / context), rtol=1e-5)
    log_pre = np.log(pre)
    spread = [np.std(log_pre[max(i - 1, 0) : i + 2]) for i in range(5)]
    np.testing.assert_allclose(f[:, 7], spread, atol=1e-6)
    np.testing.assert_allclose(f[:, 8], np.log(pre / 100.0), rtol=1e-5)  # seconds, not normalized
    np.testing.assert_allclose(f[:, 9], np.log(post / 100.0), rtol=1e-5)
    regular = rr_features(np.zeros(6, int), np.arange(6) * 100, fs=100.0)
    np.testing.assert_allclose(regular[:, 5:8], 0.0, atol=1e-6)  # a regular rhythm: nothing premature, no spread


def check_windowed_feature_by_loop(
    rng: np.random.Generator, sizes: list[int], context: int, column: int, statistic: Callable
) -> None:
    """Records of ``sizes`` random beats: the feature in ``column`` equals ``statistic(pre, i, lo, hi)`` computed here
    beat by beat (pre: the record's preceding RRs, its first beat borrowing its following one; ``lo:hi``: beat i's
    ``context`` beats each side, within its record)."""
    record = np.repeat(np.arange(len(sizes)), sizes)
    sample = np.concatenate([np.cumsum(rng.integers(50, 150, n)) for n in sizes])
    f = rr_features(record, sample, fs=100.0, context_beats=context)
    for name in range(len(sizes)):
        mine = record == name
        gaps = np.diff(sample[mine]).astype(float)
        pre = np.r_[gaps[0], gaps]
        wanted = [statistic(pre, i, max(i - context, 0), i + context + 1) for i in range(mine.sum())]
        np.testing.assert_allclose(f[mine, column], wanted, atol=1e-5)


def test_local_rr_change_is_the_median_successive_change_that_pauses_do_not_inflate():
    """local_rr_change: the median over the beats around (context_beats each side, within the record) of |log(RR /
    previous RR)|, the record's first beat having none; checked against a loop over beats written here. A regular
    rhythm with a long pause every fifth beat keeps it at 0 while the standard deviation (local_irregularity) is high;
    RRs that all differ (fibrillation-like) raise both."""
    rng = np.random.default_rng(3)
    column = RR_FEATURES.index("local_rr_change")

    def median_change(pre: np.ndarray, i: int, lo: int, hi: int) -> float:
        change = np.r_[np.nan, np.abs(np.diff(np.log(pre)))]  # the record's first beat has none
        return np.nanmedian(change[lo:hi])

    check_windowed_feature_by_loop(rng, [9, 7], context=2, column=column, statistic=median_change)
    paused = np.cumsum(np.where(np.arange(60) % 5 == 0, 300, 100))
    fibrillating = np.cumsum(rng.uniform(60, 140, 60)).astype(int)
    g = rr_features(np.repeat([0, 1], 60), np.r_[paused, fibrillating], fs=100.0)
    irregularity = RR_FEATURES.index("local_irregularity")
    assert np.median(g[:60, column]) == 0.0 and np.median(g[:60, irregularity]) > 0.4
    assert np.median(g[60:, column]) > 0.15 and np.median(g[60:, irregularity]) > 0.15
    assert rr_features(np.zeros(1, int), np.array([5]), fs=100.0)[0, column] == 0.0  # one beat: no change, not NaN
    skipped = rr_features(np.repeat([0, 1], 60), np.r_[paused, fibrillating], fs=100.0, windowed=False)
    costly = [RR_FEATURES.index(name) for name in WINDOWED]
    assert np.isnan(skipped[:, costly]).all()  # not asked for: not computed, and loud if ever served
    np.testing.assert_array_equal(np.delete(skipped, costly, 1), np.delete(g, costly, 1))


def test_log_pre_local_slow_measures_a_run_of_premature_beats_against_the_slowest_beats_nearby():
    """log_pre_local_slow: log(pre RR / the 80th percentile of the preceding RRs among the context_beats each side,
    within the record), checked against a loop over beats written here. In a run of premature beats inside a steady
    rhythm it stays at the run's prematurity, where log_pre_local (divided by the local mean, which the run pulls
    down) says the run's beats are nearly on time; a steady rhythm reads 0."""
    column = RR_FEATURES.index("log_pre_local_slow")

    def against_slowest(pre: np.ndarray, i: int, lo: int, hi: int) -> float:
        return np.log(pre[i] / np.quantile(pre[lo:hi], 0.8))

    check_windowed_feature_by_loop(np.random.default_rng(5), [12, 9], 3, column, statistic=against_slowest)
    rr = np.r_[np.full(40, 100), np.full(20, 50), np.full(40, 100)]  # a run of 20 beats at twice the rate
    g = rr_features(np.zeros(100, int), np.cumsum(rr), fs=100.0)
    run = np.arange(45, 55)  # the middle of the run
    np.testing.assert_allclose(g[run, column], np.log(0.5), atol=1e-6)
    assert (g[run, RR_FEATURES.index("log_pre_local")] > np.log(0.5) + 0.3).all()
    np.testing.assert_allclose(g[:20, column], 0.0, atol=1e-6)


def test_index_beats_computes_the_windowed_features_only_when_served(tiny_db):
    """index_beats takes the served columns: each costly windowed feature (local_rr_change, log_pre_local_slow) only
    when it is among them (the same values as with every feature), NaN otherwise; no columns: no features at all."""
    db = read_database(record_sources("db", tiny_db, ["100", "108"], 0), 360.0)
    labels = label_beats(db.ann_symbol, STUDY)
    column = RR_FEATURES.index("local_rr_change")
    slow = RR_FEATURES.index("log_pre_local_slow")
    every = index_beats(db, labels, 180).rr
    served = index_beats(db, labels, 180, rr=[0, column]).rr
    others = index_beats(db, labels, 180, rr=[0, 5]).rr
    np.testing.assert_array_equal(np.delete(served, slow, 1), np.delete(every, slow, 1))
    assert np.isnan(served[:, slow]).all()
    np.testing.assert_array_equal(index_beats(db, labels, 180, rr=[slow]).rr[:, slow], every[:, slow])
    assert np.isnan(others[:, [column, slow]]).all() and np.isfinite(np.delete(others, [column, slow], 1)).all()
    assert index_beats(db, labels, 180, rr=[]).rr.shape == (len(every), 0)


def test_rr_feature_selection():
    assert rr_feature_names(False) == () and rr_feature_names(None) == ()
    assert rr_feature_names(True) == RR_FEATURES[:5]
    assert rr_feature_names(["local_irregularity", "log_pre_rr"]) == ("local_irregularity", "log_pre_rr")
    with pytest.raises(ValueError, match="unknown \\['log_rr'\\]"):
        rr_feature_names(["log_rr"])


def test_dataset_serves_rr_and_augments_only_when_asked(tiny_db):
    db = read_database(record_sources("db", tiny_db, ["100", "108"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), 180)
    plain = BeatWindowDataset(db, beats, 180, rr_columns=[4, 0])
    x, rr, y = plain.__getitems__(list(range(20)))
    assert rr.shape == (20, 2)
    np.testing.assert_allclose(rr[:, 0].numpy(), 0.8, rtol=1e-4)  # mean RR (s): beats every 0.8 s
    np.testing.assert_allclose(rr[:, 1].numpy(), 0.0, atol=1e-5)  # log(pre RR / mean RR) of a regular rhythm
    torch.manual_seed(0)
    augmented = BeatWindowDataset(db, beats, 180, augment=Augment(jitter=36, scale=0.1, noise=0.05))
    xa, ya = augmented.__getitems__(list(range(20)))
    assert xa.shape == x.shape and torch.equal(ya, y)
    assert not torch.allclose(xa, x)
    assert (xa - x).abs().mean() < 1.5  # perturbed, not replaced
    again = BeatWindowDataset(db, beats, 180, augment=Augment(jitter=36, scale=0.1, noise=0.05))
    torch.testing.assert_close(again.__getitems__(list(range(20)))[0], xa)  # repeatable: drawn from the batch itself
    assert not torch.allclose(augmented.__getitems__(list(range(1, 21)))[0][:-1], xa[1:])  # another batch, other draws


def test_every_epoch_gets_its_own_seed_and_the_same_epoch_the_same():
    from types import SimpleNamespace

    from ecg_lightning.callbacks import EpochSeed

    seeder = EpochSeed(seed=7)
    draws = {}
    for epoch in (0, 1, 2, 3, 2):
        seeder.on_train_epoch_start(SimpleNamespace(current_epoch=epoch, global_rank=0), None)
        draw = (torch.rand(3).tolist(), np.random.rand(), __import__("random").random())
        assert draws.setdefault(epoch, draw) == draw  # the same epoch: the same numbers (as after a resume)
    assert len({str(d) for d in draws.values()}) == 4  # every epoch different
    other = EpochSeed(seed=8)
    other.on_train_epoch_start(SimpleNamespace(current_epoch=0, global_rank=0), None)
    assert torch.rand(3).tolist() != draws[0][0]
    seeder.on_train_epoch_start(SimpleNamespace(current_epoch=0, global_rank=1), None)  # DDP: ranks differ
    assert torch.rand(3).tolist() != draws[0][0]


def test_longest_rr_reference_is_the_fifth_of_each_records_beats_with_the_longest_preceding_rr():
    """A record of 10 beats: the 2 with the longest preceding RR are its reference; a record of 2 beats keeps 1."""
    from ecg_lightning.data.rr import reference_mask

    record = np.array([0] * 10 + [1] * 2)
    pre = np.array([5, 9, 1, 7, 3, 8, 2, 6, 4, 0, 3, 2.0])
    np.testing.assert_array_equal(np.flatnonzero(reference_mask(record, pre, "longest_rr")), [1, 5, 10])
    assert reference_mask(record, pre, "all").all()
    with pytest.raises(ValueError, match="reference_beats"):
        reference_mask(record, pre, "shortest")


def test_an_annotated_reference_takes_the_annotated_beats_of_records_with_enough_of_them():
    """The stress test's reference: record 0 has 6 annotated beats (its reference), record 1 only 2 (all its beats);
    without the annotations it is refused (predict has none)."""
    from ecg_lightning.data.rr import MIN_ANNOTATED, reference_mask

    assert MIN_ANNOTATED == 5
    record = np.array([0] * 10 + [1] * 4)
    annotated = np.zeros(14, dtype=bool)
    annotated[[0, 2, 3, 5, 7, 9, 10, 12]] = True
    chosen = reference_mask(record, np.ones(14), "annotated_S", annotated)
    np.testing.assert_array_equal(np.flatnonzero(chosen), [0, 2, 3, 5, 7, 9, 10, 11, 12, 13])
    with pytest.raises(ValueError, match="reads the annotations; only evaluate"):
        reference_mask(record, np.ones(14), "annotated_S")


def test_rr_normalized_to_the_annotated_beats_makes_them_the_records_rhythm():
    """Normalized to its premature (annotated) beats, a record's premature beats are its rhythm (log ratio 0) and
    its normal beats late; the local-rhythm features do not change."""
    fs = 100.0
    pre = np.tile([100.0, 50], 10)
    sample = np.cumsum(pre).astype(np.int64)
    record = np.zeros(len(sample), dtype=np.int64)
    premature = pre == 50
    by_all = rr_features(record, sample, fs)
    stressed = rr_features(record, sample, fs, reference="annotated_S", annotated=premature)
    np.testing.assert_allclose(stressed[premature, 0], 0.0, atol=1e-5)
    np.testing.assert_allclose(stressed[1:][~premature[1:], 0], np.log(2.0), atol=1e-5)
    np.testing.assert_allclose(stressed[:, 4:], by_all[:, 4:])


def test_rr_normalized_to_the_longest_rr_beats_survives_a_record_whose_beats_are_mostly_premature():
    """A record of premature beats (RR 0.5 s) with every fifth beat after a 1 s pause (the normal rhythm): normalized
    to all beats, the premature ones look like the record's rhythm (log pre RR / mean ~ 0); normalized to the
    longest-RR beats they are premature (log 0.5 / 1 s)."""
    fs = 100.0
    pre = np.tile([50.0, 50, 50, 50, 100], 8)  # 8 of 40 beats after a pause: exactly the longest fifth
    sample = np.cumsum(pre).astype(np.int64)
    record = np.zeros(len(sample), dtype=np.int64)
    by_all = rr_features(record, sample, fs, reference="all")
    by_longest = rr_features(record, sample, fs, reference="longest_rr")
    premature = np.flatnonzero(pre[1:] == 50) + 1
    assert np.abs(by_all[premature, 0]).max() < 0.25
    np.testing.assert_allclose(by_longest[premature, 0], np.log(0.5), atol=1e-5)
    np.testing.assert_allclose(by_longest[:, 4], by_all[:, 4])  # the record's mean RR in seconds is unchanged
    np.testing.assert_allclose(by_longest[:, 5:], by_all[:, 5:])  # so are the local-rhythm and absolute ones


def test_stretch_reads_each_record_and_its_template_at_one_rate(tiny_db):
    """On a ramp signal a window's slope is its stretch factor: one factor per record in a batch, shared by the
    record's template, within 1 ± stretch, different between records; zero stays zero outside the record."""
    import dataclasses

    db = read_database(record_sources("db", tiny_db, ["100", "108"], 0), 360.0)
    ramp = np.arange(db.signal.shape[1], dtype=np.float32)[None].repeat(db.signal.shape[0], axis=0)
    db = dataclasses.replace(db, signal=ramp)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), 180, pad_edges=True)
    templates = np.tile(np.arange(360, dtype=np.float32), (len(db.names), db.signal.shape[0], 1))
    data = BeatWindowDataset(db, beats, 180, augment=Augment(stretch=0.2), templates=templates)
    idx = list(range(len(beats)))
    x, _ = data.__getitems__(idx)
    leads = db.signal.shape[0]
    window_slope = (x[:, 0, 190] - x[:, 0, 170]).numpy() / 20
    template_slope = (x[:, leads, 190] - x[:, leads, 170]).numpy() / 20
    np.testing.assert_allclose(template_slope, window_slope, rtol=1e-4)
    record = beats.record
    per_record = [window_slope[record == r] for r in np.unique(record)]
    assert all(np.ptp(slopes) < 1e-3 for slopes in per_record)  # one factor per record and batch (float32 ramp)
    factors = np.array([slopes.mean() for slopes in per_record])
    assert (np.abs(factors - 1) <= 0.2 + 1e-3).all() and np.ptp(factors) > 1e-2
    first = np.flatnonzero(beats.sample < 140)  # windows running past the record's start at any factor: zero there
    assert len(first) and (x[first, 0, 0] == 0).all()
    torch.testing.assert_close(data.__getitems__(idx)[0], x)  # repeatable: drawn from the batch itself
    plain, _ = BeatWindowDataset(db, beats, 180, templates=templates).__getitems__(idx)
    np.testing.assert_allclose((plain[:, 0, 190] - plain[:, 0, 170]).numpy() / 20, 1.0)  # no stretch asked: none


def test_record_scale_scales_each_record_and_its_template_alike(tiny_db):
    """Every window of a record in a batch, and the record's template, are multiplied by one factor within
    1 ± record_scale, different between records; the same batch is scaled the same way again; with a stretch as well,
    the stretch draws as it did without the scale."""
    db = read_database(record_sources("db", tiny_db, ["100", "108"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), 180, pad_edges=True)
    leads = db.signal.shape[0]
    templates = np.ones((len(db.names), leads, 360), dtype=np.float32)
    idx = list(range(len(beats)))
    plain, _ = BeatWindowDataset(db, beats, 180, templates=templates).__getitems__(idx)
    data = BeatWindowDataset(db, beats, 180, augment=Augment(record_scale=0.3), templates=templates)
    x, _ = data.__getitems__(idx)
    factor = x[:, leads:].numpy()  # a template of ones shows each window's factor
    assert (np.ptp(factor, axis=(1, 2)) < 1e-6).all()
    factor = factor[:, 0, 0]
    torch.testing.assert_close(x[:, :leads], plain[:, :leads] * torch.from_numpy(factor)[:, None, None])
    per_record = [factor[beats.record == r] for r in np.unique(beats.record)]
    assert all(np.ptp(f) == 0 for f in per_record)  # one factor per record and batch
    factors = np.array([f[0] for f in per_record])
    assert (np.abs(factors - 1) <= 0.3 + 1e-6).all() and np.ptp(factors) > 1e-2
    torch.testing.assert_close(data.__getitems__(idx)[0], x)  # repeatable: drawn from the batch itself
    stretched_only, _ = BeatWindowDataset(
        db, beats, 180, augment=Augment(stretch=0.2), templates=templates
    ).__getitems__(idx)
    both, _ = BeatWindowDataset(
        db, beats, 180, augment=Augment(stretch=0.2, record_scale=0.3), templates=templates
    ).__getitems__(idx)
    both_factor = both[:, leads:, 180:181]  # the scale's own draw (the template centre: inside at any stretch)
    torch.testing.assert_close(both[:, :leads], stretched_only[:, :leads] * both_factor)


def test_per_record_draws_refuse_the_device_cut(tiny_db):
    """The device cut (plan_only) draws no per-record factors; asking for them there is an error, not a no-op."""
    db = read_database(record_sources("db", tiny_db, ["100"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), 180, pad_edges=True)
    for augment in (
        Augment(record_scale=0.2),
        Augment(stretch=0.1),
        Augment(rr_scale=0.2),
        Augment(template_swap=0.2, swap_by_record=True),
    ):
        with pytest.raises(ValueError, match="cut on the CPU"):
            BeatWindowDataset(db, beats, 180, augment=augment, plan_only=True)


def test_rr_scale_moves_each_records_rr_in_seconds_only(tiny_db):
    """rr_scale: per record in a batch, one factor within 1 ± rr_scale on every RR in seconds (log ones shifted by
    its log, mean RR multiplied), different between records; ratios to the record or the local rhythm unchanged, and
    the windows untouched."""
    db = read_database(record_sources("db", tiny_db, ["100", "108"], 0), 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol, STUDY), 180, pad_edges=True)
    names = ["mean_rr_s", "log_pre_rr_s", "log_post_rr_s", "log_pre_rr", "log_pre_local"]
    columns = [RR_FEATURES.index(n) for n in names]
    idx = list(range(len(beats)))
    x, rr, _ = BeatWindowDataset(db, beats, 180, rr_columns=columns).__getitems__(idx)
    xa, rra, _ = BeatWindowDataset(db, beats, 180, rr_columns=columns, augment=Augment(rr_scale=0.3)).__getitems__(idx)
    torch.testing.assert_close(xa, x)
    torch.testing.assert_close(rra[:, 3:], rr[:, 3:])
    log_factor = (rra[:, 1] - rr[:, 1]).numpy()
    np.testing.assert_allclose(rra[:, 2] - rr[:, 2], log_factor, atol=1e-5)
    np.testing.assert_allclose((rra[:, 0] / rr[:, 0]).numpy(), np.exp(log_factor), rtol=1e-5)
    per_record = [log_factor[beats.record == r] for r in np.unique(beats.record)]
    assert all(np.ptp(f) < 1e-5 for f in per_record)
    factors = np.exp([f[0] for f in per_record])
    assert (np.abs(factors - 1) <= 0.3 + 1e-5).all() and np.ptp(factors) > 1e-2


MOVED_EXACTLY = [n for n in (*PRECEDING, *FOLLOWING, PRE_POST) if n != "log_pre_local_slow"]


def test_moved_earlier_gives_the_features_of_the_beat_moved():
    """Moving beat k earlier in the beat positions and recomputing every feature gives, at the beat and its two
    neighbours, what ``moved_earlier`` makes of the original features, for every feature it changes (the move keeps
    the sum of the two RRs, so the record's and those beats' neighbourhood mean RR stay); it changes no other beat
    (beats 16 away, whose neighbourhood holds one of the two RRs, move by ~1 % in truth: left as they were)."""
    rng = np.random.default_rng(3)
    sample = np.cumsum(rng.integers(280, 320, 60))
    record = np.zeros(len(sample), dtype=np.int64)
    k, early = 30, 0.3
    moved = sample.copy()
    moved[k] -= round(early * (sample[k] - sample[k - 1]))
    earlier = (sample[k] - moved[k]) / (sample[k] - sample[k - 1])
    before, after = rr_features(record, sample, 360.0), rr_features(record, moved, 360.0)
    rr = torch.from_numpy(before)[None].clone()
    moved_earlier(rr, RR_FEATURES, torch.tensor([0]), torch.tensor([k]), torch.tensor([earlier], dtype=torch.float32))
    columns = [RR_FEATURES.index(n) for n in MOVED_EXACTLY]
    near = [k - 1, k, k + 1]
    np.testing.assert_allclose(rr[0, near][:, columns].numpy(), after[near][:, columns], atol=1e-5)
    np.testing.assert_allclose(rr[0, :, columns].numpy(), after[:, columns], atol=0.02)
    changed = np.flatnonzero(np.any(rr[0].numpy() != before, axis=1))
    assert changed.tolist() == [k - 1, k, k + 1]
    assert np.isclose(after[k, RR_FEATURES.index("log_pre_rr_s")] - before[k, RR_FEATURES.index("log_pre_rr_s")],
                      np.log(1 - earlier), atol=1e-5)  # fmt: skip


PREMATURE_NAMES = ["log_pre_local", "log_post_local", "local_irregularity", "log_pre_rr_s", "log_post_rr_s"]


def premature_runs_served(three_records, chance: float, rr_offset: float = 0.0, **augment):
    """The three records' runs of 7 beats, plainly and with ``Augment(premature=chance, **augment)`` (log_pre_local
    shifted by ``rr_offset`` in both: an irregular rhythm)."""
    from dataclasses import replace

    db, index = three_records
    if rr_offset:
        rr = index.rr.copy()
        rr[:, RR_FEATURES.index("log_pre_local")] += rr_offset
        index = replace(index, rr=rr)
    columns = [RR_FEATURES.index(n) for n in PREMATURE_NAMES]
    plain = BeatWindowDataset(db, index, THREE_RECORDS_HALF, rr_columns=columns, run_beats=7)
    served = BeatWindowDataset(
        db, index, THREE_RECORDS_HALF, rr_columns=columns, run_beats=7, augment=Augment(premature=chance, **augment)
    )
    idx = list(range(len(plain)))
    return plain.__getitems__(idx), served.__getitems__(idx)


def test_premature_serves_one_regular_normal_beat_of_a_run_as_s_by_its_timing_alone(three_records):
    (x, rr, y), (xp, rrp, yp) = premature_runs_served(three_records, 1.0)
    torch.testing.assert_close(xp, x)  # the beat's shape (and its template) are the patient's normal beat's
    relabelled = yp != y
    assert (relabelled.sum(1) <= 1).all() and relabelled.sum() >= len(y) // 2
    run, beat = torch.nonzero(relabelled, as_tuple=True)
    assert (y[run, beat] == 0).all() and (yp[run, beat] == 1).all()
    assert (beat >= 1).all() and (beat <= 5).all()
    assert (y[run, beat - 1] == 0).all() and (y[run, beat + 1] == 0).all()
    changed = torch.nonzero((rrp != rr).any(-1), as_tuple=True)
    expected = {(int(r), int(b) + d) for r, b in zip(run, beat) for d in (-1, 0, 1)}
    assert set(zip(changed[0].tolist(), changed[1].tolist())) == expected
    irregularity = PREMATURE_NAMES.index("local_irregularity")
    torch.testing.assert_close(rrp[..., irregularity], rr[..., irregularity])
    pre_s = PREMATURE_NAMES.index("log_pre_rr_s")
    shift = (rrp[run, beat, pre_s] - rr[run, beat, pre_s]).numpy()
    assert (shift >= np.log(0.6) - 1e-5).all() and (shift <= np.log(0.8) + 1e-5).all()
    assert (rrp[run, beat + 1, pre_s] > rr[run, beat + 1, pre_s]).all()
    assert (rrp[run, beat - 1, PREMATURE_NAMES.index("log_post_rr_s")] < rr[run, beat - 1, pre_s + 1]).all()


@pytest.mark.parametrize("earlier", [(0.05, 0.1), (0.3, 0.3)])
def test_premature_earlier_sets_how_early_the_served_beat_comes(three_records, earlier):
    """``premature_earlier``: the served beat's preceding RR shortens by a fraction drawn from the range given (a
    mild one, and a single value), not the default 20-40 %."""
    (_, rr, y), (_, rrp, yp) = premature_runs_served(three_records, 1.0, premature_earlier=earlier)
    run, beat = torch.nonzero(yp != y, as_tuple=True)
    assert len(run) >= len(y) // 2
    pre_s = PREMATURE_NAMES.index("log_pre_rr_s")
    shift = (rrp[run, beat, pre_s] - rr[run, beat, pre_s]).numpy()
    assert (shift >= np.log(1 - earlier[1]) - 1e-5).all() and (shift <= np.log(1 - earlier[0]) + 1e-5).all()


@pytest.mark.parametrize("earlier", [(0.0, 0.3), (0.4, 0.2), (0.2, 1.0), (0.2,)])
def test_premature_earlier_out_of_range_is_refused(three_records, earlier):
    """Refused with premature beats and with atrial runs, which draw from it too."""
    with pytest.raises(ConfigError, match="premature_earlier"):
        premature_runs_served(three_records, 1.0, premature_earlier=earlier)
    with pytest.raises(ConfigError, match="premature_earlier"):
        irregular_runs_served(three_records, atrial_runs=1.0, premature_earlier=earlier)


def test_premature_leaves_an_irregular_rhythm_alone(three_records):
    (_, rr, y), (_, rrp, yp) = premature_runs_served(three_records, 1.0, rr_offset=0.2)
    torch.testing.assert_close(yp, y)
    torch.testing.assert_close(rrp, rr)


def test_run_features_read_the_intervals_given():
    """A steady run (every RR 0.8 s): nothing premature, no spread, log RR in seconds log 0.8; a run alternating
    0.6 s and 1.0 s: each beat's preceding and following RR as given (the beat before the run read too), its
    successive change |log(0.6 / 1.0)| and its spread the sd of the two logs, the column order that of ``names``."""
    names = ["log_pre_rr_s", "log_post_rr_s", "log_pre_local", "local_irregularity", "local_rr_change"]
    steady = np.full((1, 9), 0.8)
    alternating = np.where(np.arange(9) % 2 == 0, 0.6, 1.0)[None]
    features = run_features(np.concatenate([steady, alternating]), names)
    assert features.shape == (2, 8, 5)
    np.testing.assert_allclose(features[0, :, :2], np.log(0.8), atol=1e-6)
    np.testing.assert_allclose(features[0, :, 2:], 0.0, atol=1e-6)
    np.testing.assert_allclose(np.exp(features[1, :, 0]), alternating[0, :-1], rtol=1e-5)  # beat k follows interval k
    np.testing.assert_allclose(np.exp(features[1, :, 1]), alternating[0, 1:], rtol=1e-5)
    np.testing.assert_allclose(features[1, :, 4], abs(np.log(0.6 / 1.0)), rtol=1e-5)
    assert np.all(np.abs(features[1, :, 3] - abs(np.log(0.6 / 1.0)) / 2) < 0.02)


IRREGULAR_NAMES = [*PREMATURE_NAMES, "local_rr_change"]


def irregular_runs_served(three_records, **augment):
    """The three records' runs of 7 beats, plainly and with ``Augment(**augment)``."""
    db, index = three_records
    columns = [RR_FEATURES.index(n) for n in IRREGULAR_NAMES]
    plain, served = (
        BeatWindowDataset(db, index, THREE_RECORDS_HALF, rr_columns=columns, run_beats=7, augment=Augment(**a))
        for a in ({}, augment)
    )
    idx = list(range(len(plain)))
    return plain.__getitems__(idx), served.__getitems__(idx)


def test_irregular_gives_runs_without_s_beats_fibrillations_rhythm_and_keeps_their_labels(three_records):
    (x, rr, y), (xi, rri, yi) = irregular_runs_served(three_records, irregular=1.0)
    torch.testing.assert_close(xi, x)
    torch.testing.assert_close(yi, y)
    eligible = ~((y == 1) | (y < 0)).any(1)
    assert eligible.any() and (~eligible).any()
    torch.testing.assert_close(rri[~eligible], rr[~eligible])  # a run holding an S beat, or padded, keeps its rhythm
    assert (rri[eligible] != rr[eligible]).any(-1).all()  # every beat of an eligible run is given new intervals
    spread = rri[eligible][..., IRREGULAR_NAMES.index("local_irregularity")]
    assert 0.1 < spread.median() < 0.4 and rr[eligible][..., IRREGULAR_NAMES.index("local_irregularity")].median() < 0.1
    pre_s = IRREGULAR_NAMES.index("log_pre_rr_s")  # about the run's own heart rate: its mean RR is kept
    ratio = rri[eligible][..., pre_s].exp().mean(1) / rr[eligible][..., pre_s].exp().mean(1)
    assert (ratio > 0.6).all() and (ratio < 1.6).all()


def test_irregular_without_p_flattens_the_p_waves_of_the_runs_served_fibrillation_and_nothing_else(three_records):
    """``Augment.p_wave``: the runs given fibrillation's intervals have, on each beat's signal leads, the stretch
    before the beat made a straight line between its ends; the other runs, the rest of each window, the RR features
    and the labels are as with ``irregular`` alone."""
    span = (30, 8)  # samples before the beat
    _, (x, rr, y) = irregular_runs_served(three_records, irregular=1.0)
    _, (xp, rrp, yp) = irregular_runs_served(three_records, irregular=1.0, p_wave=span)
    torch.testing.assert_close(rrp, rr)
    torch.testing.assert_close(yp, y)
    served = ~((y == 1) | (y < 0)).any(1)
    centre = x.shape[-1] // 2
    start, stop = centre - span[0], centre - span[1]
    torch.testing.assert_close(xp[~served], x[~served])  # a run holding an S beat, or padded, keeps its P waves
    outside = torch.ones(x.shape[-1], dtype=torch.bool)
    outside[start:stop] = False
    torch.testing.assert_close(xp[served][..., outside], x[served][..., outside])
    line = xp[served][..., start - 1 : stop + 1]
    torch.testing.assert_close(line.diff(dim=-1).diff(dim=-1), torch.zeros_like(line[..., 2:]), atol=1e-5, rtol=0)
    assert (x[served][..., start:stop] - xp[served][..., start:stop]).abs().amax() > 0.05  # there was a wave to flatten
    db, index = three_records
    with pytest.raises(ConfigError, match="set data.augment.irregular above 0"):
        BeatWindowDataset(db, index, THREE_RECORDS_HALF, run_beats=7, augment=Augment(p_wave=span))
    with pytest.raises(ConfigError, match="90 samples before it: widen data.window_s"):
        BeatWindowDataset(db, index, THREE_RECORDS_HALF, run_beats=7, augment=Augment(irregular=1.0, p_wave=(101, 22)))


def test_irregular_leaves_a_run_given_a_premature_beat_as_premature_made_it(three_records):
    (_, rr, y), (_, rrp, yp) = irregular_runs_served(three_records, premature=1.0)
    _, (_, rrb, yb) = irregular_runs_served(three_records, premature=1.0, irregular=1.0)
    torch.testing.assert_close(yb, yp)
    given = (yp != y).any(1)
    assert given.any()
    torch.testing.assert_close(rrb[given], rrp[given])
    fibrillating = ~((yp == 1) | (yp < 0)).any(1)
    assert (rrb[fibrillating] != rrp[fibrillating]).any(-1).all()


def test_pauses_lengthen_some_intervals_of_a_run_but_never_the_one_before_an_s_beat(three_records):
    """Augment.pauses: every whole run's intervals (read back from the RR features in seconds) are kept or made
    1.5-3 times as long, one factor per run; the interval before an S beat is kept; windows, labels and padded runs
    are untouched, and the spread of log RR around the beats rises."""
    (x, rr, y), (xp, rrp, yp) = irregular_runs_served(three_records, pauses=1.0)
    torch.testing.assert_close(xp, x)
    torch.testing.assert_close(yp, y)
    padded = (y < 0).any(1)
    assert padded.any() and (~padded).sum() >= 2
    torch.testing.assert_close(rrp[padded], rr[padded])
    pre_s = IRREGULAR_NAMES.index("log_pre_rr_s")
    ratio = (rrp[~padded][..., pre_s] - rr[~padded][..., pre_s]).exp()  # each beat's preceding interval, after/before
    lengthened = (ratio - 1).abs() > 1e-3
    assert lengthened.any(1).float().mean() > 0.6 and (~lengthened).any(1).all()  # a quarter of the intervals
    assert ((ratio[lengthened] > 1.5 - 1e-3) & (ratio[lengthened] < 3 + 1e-3)).all()
    for run_ratio, hit in zip(ratio, lengthened):
        if hit.any():
            torch.testing.assert_close(run_ratio[hit], run_ratio[hit][:1].expand(int(hit.sum())), rtol=1e-3, atol=0)
    s_beat = y[~padded] == 1
    assert s_beat.any() and not lengthened[s_beat].any()
    spread = IRREGULAR_NAMES.index("local_irregularity")
    assert rrp[~padded][..., spread].mean() > rr[~padded][..., spread].mean() + 0.05


def test_atrial_runs_serve_a_stretch_of_a_normal_run_as_s_beats_at_one_shortened_interval(three_records):
    """Augment.atrial_runs: every run of normal beats only has a stretch of 30-80 % of its beats (a normal beat on each
    side) served as S, each beat of it after an interval of 0.6-0.8 times the run's median one (one per run), the
    interval after it 1.0-1.3 times; windows, other runs and the beats outside the stretch keep what they had."""
    (x, rr, y), (xa, rra, ya) = irregular_runs_served(three_records, atrial_runs=1.0)
    torch.testing.assert_close(xa, x)
    normal = (y == 0).all(1)
    assert normal.sum() >= 2 and (~normal).any()
    torch.testing.assert_close(ya[~normal], y[~normal])
    torch.testing.assert_close(rra[~normal], rr[~normal])
    pre_s = IRREGULAR_NAMES.index("log_pre_rr_s")
    for before, after, labels in zip(rr[normal], rra[normal], ya[normal]):
        stretch = torch.nonzero(labels == 1).flatten()
        assert 2 <= len(stretch) <= 5 and 0 < stretch[0] and stretch[-1] < 6  # 7 beats: 30-80 %, one N each side
        assert (stretch.diff() == 1).all() and (labels[labels != 1] == 0).all()
        intervals = np.r_[before[:, pre_s].exp().numpy(), before[-1, pre_s + 1].exp().item()]
        median = np.median(intervals)
        served = after[:, pre_s].exp().numpy()
        ratio = served[stretch.numpy()] / median
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-4)
        assert 0.6 - 1e-4 <= ratio[0] <= 0.8 + 1e-4
        assert 1.0 - 1e-4 <= served[stretch[-1] + 1] / median <= 1.3 + 1e-4
        kept = np.setdiff1d(np.arange(7), np.r_[stretch.numpy(), stretch[-1].item() + 1])
        np.testing.assert_allclose(served[kept], before[kept, pre_s].exp().numpy(), rtol=1e-4)


@pytest.mark.parametrize(
    "option, names, lacking, needs, least",
    [("premature", PREMATURE_NAMES, PREMATURE_NAMES[:1], "log_post_local", 3),
     ("irregular", IRREGULAR_NAMES, [], "data.rr_features", 3),
     ("pauses", IRREGULAR_NAMES, PREMATURE_NAMES[:4], "log_post_rr_s", 3),
     ("atrial_runs", IRREGULAR_NAMES, PREMATURE_NAMES[:4], "log_post_rr_s", 5)],
)  # fmt: skip
def test_timing_augments_need_runs_and_their_rr_features(three_records, option, names, lacking, needs, least):
    """premature, irregular, pauses and atrial runs change the RR features of runs of beats: single beats (or runs
    too short), the features they read missing and a chance outside (0, 1] are refused, naming the key."""
    db, index = three_records

    def served(chance: float, served_names: list[str], **kwargs) -> BeatWindowDataset:
        columns = [RR_FEATURES.index(n) for n in served_names]
        augment = Augment(**{option: chance})
        return BeatWindowDataset(db, index, THREE_RECORDS_HALF, rr_columns=columns, augment=augment, **kwargs)

    with pytest.raises(ConfigError, match=f"data.run_beats >= {least}"):
        served(0.5, names)
    with pytest.raises(ConfigError, match=needs):
        served(0.5, lacking, run_beats=7)
    with pytest.raises(ConfigError, match=f"data.augment.{option}=.* between 0 and 1"):
        served(1.5, names, run_beats=7)


def test_paused_timing_puts_a_pause_before_every_fourth_normal_beat_after_a_normal_beat():
    """rr.paused_timing: record "a" beats every 100 samples; its eligible beats (normal, after a normal beat, not the
    record's first) are 1, 2, 3, 4, ...: beat 4's RR becomes 300 and every later beat moves on by 200, then beat 8's;
    the S beat at 10 and beat 11 after it are not eligible, so the twelfth eligible beat is 14. Record "b" counts
    afresh."""
    from ecg_lightning.data.rr import paused_timing

    record = np.r_[np.zeros(16, int), np.ones(6, int)]
    sample = np.r_[np.arange(16) * 100, np.arange(6) * 100]
    normal = np.ones(22, bool)
    normal[10] = False
    timing = paused_timing(record, sample, normal, 3.0)
    rr_a = np.diff(timing[:16])
    assert rr_a.tolist() == [100, 100, 100, 300, 100, 100, 100, 300, 100, 100, 100, 100, 100, 300, 100]
    assert timing[16:].tolist() == [0, 100, 200, 300, 600, 700]  # b's 4th eligible beat: index 4
    assert np.array_equal(paused_timing(record, sample, normal, 1.0), sample)  # factor 1: no pause
