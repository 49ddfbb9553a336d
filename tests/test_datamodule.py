import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import wfdb
from conftest import FRACTIONS, LABEL_SETS, TEST_WINDOW_S, beat_dm, write_record

from ecg_lightning.errors import ConfigError, InputError

# de Chazal 2004, written out here independently of conf/data/wfdb.yaml
DS1 = "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
DS2 = "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()
PACED = ["102", "104", "107", "217"]
AAMI_BEATS = ["N", "L", "R", "e", "j", "A", "a", "J", "S", "V", "E", "F", "/", "f", "Q"]


def make_dm(tiny_db, tmp_path, **kwargs):
    kwargs = {"window_s": TEST_WINDOW_S, "cache_dir": tmp_path, "batch_size": 16, **kwargs}
    return beat_dm(tiny_db, **kwargs)


def beats_of(root, names, symbols, half=180):
    """(record, sample, symbol) of the beats whose window fits, read with wfdb directly."""
    rows = []
    for name in names:
        ann, n = wfdb.rdann(str(root / name), "atr"), wfdb.rdheader(str(root / name)).sig_len
        for s, sym in zip(ann.sample, ann.symbol):
            if sym in symbols and s >= half and s + half <= n:
                rows.append((name, int(s), sym))
    return rows


def test_setup_serves_split_windows(tiny_db, tmp_path, caplog):
    dm = make_dm(tiny_db, tmp_path)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert not set(dm.train_records) & set(dm.val_records) and dm.test_records == []
    assert sorted(dm.train_records + dm.val_records) == sorted(FRACTIONS)
    assert len(dm.val_records) == 3
    symbols = LABEL_SETS["study"]["normal"] + LABEL_SETS["study"]["abnormal"]
    assert len(dm.train_dataloader().dataset) == len(beats_of(tiny_db, dm.train_records, symbols))
    assert len(dm.val_dataloader().dataset) == len(beats_of(tiny_db, dm.val_records, symbols))
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 360) and y.shape == (16,) and y.dtype == torch.int64 and set(y.tolist()) <= {0, 1}
    assert "train: 9 records" in caplog.text and "val: 3 records" in caplog.text and "abnormal" in caplog.text
    labels = np.array([int(sym not in ("N", ".")) for _, _, sym in beats_of(tiny_db, dm.train_records, symbols)])
    n, share = len(labels), 100 * labels.mean()
    assert (
        f"train: 9 records, {n} windows, {share:.1f}% abnormal (normal {100 - share:.1f}%, abnormal {share:.1f}%)"
        in caplog.messages
    )


def test_val_loader_is_ordered_and_complete(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path)
    dm.setup()
    expected = [(r, s, int(sym not in ("N", "."))) for r, s, sym in beats_of(tiny_db, dm.val_records, "NVALF/")]
    expected.sort(key=lambda t: (list(dm.records.names).index(t[0]), t[1]))
    ys = torch.cat([y for _, y in dm.val_dataloader()])
    assert ys.tolist() == [label for _, _, label in expected]


def test_validation_is_never_augmented(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path, augment={"jitter_s": 0.1, "scale": 0.3, "noise": 0.5})
    dm.setup()
    plain = make_dm(tiny_db, tmp_path)
    plain.setup()
    for (xa, _), (xb, _) in zip(dm.val_dataloader(), plain.val_dataloader()):
        torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    xa, _ = next(iter(dm.train_dataloader()))
    xb, _ = next(iter(plain.train_dataloader()))
    assert not torch.allclose(xa, xb)


def test_every_epoch_is_shuffled_differently(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path)
    dm.setup()
    orders = []
    for epoch in range(3):
        dm._current_epoch = lambda e=epoch: e
        orders.append(list(iter(dm.train_dataloader().sampler)))
    assert sorted(orders[0]) == list(range(len(dm.data_train)))
    assert orders[0] != orders[1] != orders[2] != orders[0]
    dm._current_epoch = lambda: 1
    assert list(iter(dm.train_dataloader().sampler)) == orders[1]  # the same epoch, the same order (resume)


def test_loaders_shard_by_rank_under_ddp(tiny_db, tmp_path):
    """Two ranks: training shards of one epoch's permutation (padded to equal length), validation and test
    windows each on exactly one rank."""
    dm = make_dm(tiny_db, tmp_path, split="ds1ds2", ds1=DS1, ds2=DS2, labels="aami")
    dm.setup()
    loaders = {}
    for rank in (0, 1):
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2, current_epoch=3, limit_val_batches=1.0)
        loaders[rank] = [
            list(loader.sampler) for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader())
        ]
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1, current_epoch=3, limit_val_batches=1.0)
    whole = list(dm.train_dataloader().sampler)
    train0, train1 = loaders[0][0], loaders[1][0]
    assert len(train0) == len(train1) == -(-len(whole) // 2)
    assert sorted(set(train0) | set(train1)) == sorted(whole)
    assert train0 == (whole + whole)[0 : 2 * len(train0) : 2] and train1 == (whole + whole)[1 : 2 * len(train1) : 2]
    for side, data in ((1, dm.data_val), (2, dm.data_test)):
        shards = loaders[0][side] + loaders[1][side]
        assert sorted(shards) == list(range(len(data))), side  # every window once


def test_lead_by_name_and_patient_split(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path, lead="V1", split="patient")
    dm.setup()
    assert set(dm.records.leads) == {("V1",)}
    assert ("201" in dm.train_records) == ("202" in dm.train_records)


def test_kfold_and_records_through_the_datamodule(tiny_db, tmp_path):
    vals = []
    for fold in range(3):
        dm = make_dm(
            tiny_db, tmp_path, split="kfold", fold=fold, n_folds=3, records=list(FRACTIONS)[:9] + ["201", "202"]
        )
        dm.setup()
        assert sorted(dm.train_records + dm.val_records) == sorted(list(FRACTIONS)[:9] + ["201", "202"])
        vals.append(dm.val_records)
    assert sorted(sum(vals, [])) == sorted(list(FRACTIONS)[:9] + ["201", "202"])


def test_ds1ds2_split_keeps_ds2_for_test_and_no_subject_or_paced_record_leaks(tiny_db, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        dm = make_dm(tiny_db, tmp_path, split="ds1ds2", ds1=DS1, ds2=DS2, labels="aami", pad_edges=True)
        dm.setup()
    present = set(FRACTIONS)
    assert dm.test_records == [r for r in FRACTIONS if r in DS2]  # 100 103 105 202
    assert set(dm.train_records + dm.val_records) == (present & set(DS1)) - {"201"}  # 201: same man as 202 (DS2)
    assert "Training records ['201'] share a subject with test records: left out of training" in caplog.text
    assert not set(dm.train_records + dm.val_records + dm.test_records) & set(PACED)
    assert len(dm.val_records) == 1 and not set(dm.train_records) & set(dm.val_records)
    # every AAMI beat of the test records is scored, edge beats included (padded)
    expected = sum(
        int(np.isin(wfdb.rdann(str(tiny_db / r), "atr").symbol, AAMI_BEATS).sum()) for r in DS2 if r in present
    )
    assert len(dm.data_test) == expected
    x, y = next(iter(dm.test_dataloader()))
    assert y.dtype == torch.int64 and set(y.tolist()) <= set(range(5))
    assert dm.class_names == ["N", "S", "V", "F", "Q"]


def test_ds1ds2_inner_kfold_carves_validation_from_ds1(tiny_db, tmp_path):
    vals = []
    for fold in range(2):
        dm = make_dm(tiny_db, tmp_path, split="ds1ds2", ds1=DS1, ds2=DS2, inner_split="kfold", fold=fold, n_folds=2)
        dm.setup()
        vals += dm.val_records
        assert dm.test_records == ["100", "103", "105", "202"]
    assert sorted(vals) == ["101", "106", "108", "109"]


def test_bad_settings_are_named(tiny_db, tmp_path):
    with pytest.raises(ValueError, match="data.split='random'"):
        make_dm(tiny_db, tmp_path, split="random")
    with pytest.raises(ValueError, match="data.labels='bogus'"):
        make_dm(tiny_db, tmp_path, labels="bogus")
    with pytest.raises(ValueError, match="needs the record lists data.ds1"):
        make_dm(tiny_db, tmp_path, split="ds1ds2")
    dm = make_dm(tiny_db, tmp_path)
    dm.setup()
    with pytest.raises(InputError, match="^side=test: this split has no test set; use data.split=ds1ds2"):
        dm.eval_dataset("test")
    with pytest.raises(InputError, match="side='dev'"):
        dm.eval_dataset("dev")
    with pytest.raises(
        ValueError,
        match=r"^this split has no test set; train with data.split=ds1ds2 or data.test_databases=\[\.\.\.\]$",
    ):
        dm.test_dataloader()
    assert dm.loader(dm.data_val, 7).batch_size == 7 and dm.loader(dm.data_val).batch_size == 16
    assert len(dm.eval_dataset("all")) == len(dm.data_train) + len(dm.data_val)


def test_class_counts_cover_every_class_even_when_absent(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path, labels="aami", records=["100", "103"], val_fraction=0.5)
    dm.setup()
    counts = dm.class_counts()
    assert len(counts) == 5 and counts.sum() == len(dm.data_train)
    assert counts.tolist() == np.bincount(dm.data_train.labels, minlength=5).tolist() and counts[0] > 0


def test_a_lead_no_record_has_is_refused_whether_the_cache_is_cold_or_warm(tiny_db, tmp_path):
    """Every record falling back to another lead is not a run on the asked lead: refused, naming the leads there are
    (a lead only some records lack is a warning: tests/test_databases.py)."""
    for _ in ("cold", "warm"):
        with pytest.raises(ConfigError, match="data.lead: no mitdb record has a V9 lead \\(their leads: MLII, V1\\)"):
            make_dm(tiny_db, tmp_path, lead=[0, "V9"]).setup()  # a channel index first: not checked, V9 still is
        with pytest.raises(ConfigError, match="no mitdb record has a aVR lead"):
            make_dm(tiny_db, tmp_path, lead="aVR").setup()


def test_an_unknown_reference_is_refused_naming_the_key(tiny_db, tmp_path):
    with pytest.raises(ConfigError, match=r"data.reference_beats='median'; choose one of \('all', 'longest_rr'\)"):
        make_dm(tiny_db, tmp_path, reference_beats="median")


def test_a_stress_reference_of_a_class_the_labels_lack_is_refused_naming_the_key(tiny_db, tmp_path):
    with pytest.raises(
        ConfigError, match=r"data.reference_beats=annotated_Z: no class 'Z' in \['N', 'S', 'V', 'F', 'Q'\]"
    ):
        make_dm(tiny_db, tmp_path, labels="aami", reference_beats="annotated_Z").setup()


def test_an_empty_record_list_is_refused_not_read_as_every_record(tiny_db, tmp_path):
    with pytest.raises(ConfigError, match=r"data.records=\[\] names no record; leave it out"):
        make_dm(tiny_db, tmp_path, records=[]).setup()


def test_cut_on_device_gives_the_cpu_path_batches(tiny_db, tmp_path):
    """data.cut_on_device: the loaders carry plans; cut on the device (the CPU here: no GPU needed) they give the
    CPU path's windows exactly: edge padding, jitter, scale, noise, templates, two leads and RR features included."""
    settings = dict(
        lead=["MLII", "V1"], pad_edges=True, templates=True, rr_features=True,
        augment={"jitter_s": 0.05, "scale": 0.2, "noise": 0.1},
    )  # fmt: skip
    cpu = make_dm(tiny_db, tmp_path, **settings)
    device = make_dm(tiny_db, tmp_path, cut_on_device=True, **settings)
    cpu.setup()
    device.setup()
    for loader in ("train_dataloader", "val_dataloader"):
        for plan, batch in zip(getattr(device, loader)(), getattr(cpu, loader)()):
            assert isinstance(plan, dict) and "start" in plan
            cut = device.on_after_batch_transfer(plan, 0)
            assert len(cut) == len(batch) == 3
            for ours, theirs in zip(cut, batch):
                torch.testing.assert_close(ours, theirs)
    assert cpu.on_after_batch_transfer(batch, 0) is batch  # CPU-cut batches pass through
    assert not isinstance(device.loader(device.eval_dataset("val")).__iter__().__next__(), dict)  # evaluate: cut


def test_cut_on_device_draws_seeded_noise_of_the_configured_size(tiny_db, tmp_path):
    clean = make_dm(tiny_db, tmp_path, cut_on_device=True)
    noisy = make_dm(tiny_db, tmp_path, cut_on_device=True, augment={"noise": 0.3})
    clean.setup()
    noisy.setup()
    plan = next(iter(noisy.train_dataloader()))
    x, _ = noisy.on_after_batch_transfer(plan, 0)
    again, _ = noisy.on_after_batch_transfer(plan, 0)
    reference, _ = clean.on_after_batch_transfer(next(iter(clean.train_dataloader())), 0)
    assert torch.equal(x, again)  # seeded by the batch
    assert abs(float((x - reference).std()) - 0.3) < 0.02


def test_without_augment_settings_training_windows_are_the_plain_ones(tiny_db, tmp_path):
    """augment=None (no settings at all): training serves exactly the evaluation windows, no jitter, scale or noise."""
    dm = make_dm(tiny_db, tmp_path, augment=None)
    dm.setup()
    idx = list(range(min(64, len(dm.data_train))))
    x, y = dm.data_train.__getitems__(idx)
    x0, y0 = dm.eval_dataset("train").__getitems__(idx)
    assert torch.equal(x, x0) and torch.equal(y, y0)


def test_a_limited_validation_takes_the_same_shuffled_windows_every_time(tiny_db, tmp_path):
    """limit_val_batches < 1: a fixed shuffle of every record's windows, the same in every process and call."""
    orders = []
    for _ in range(2):
        dm = make_dm(tiny_db, tmp_path)
        dm.setup()
        dm.trainer = SimpleNamespace(global_rank=0, world_size=1, current_epoch=0, limit_val_batches=0.5)
        orders += [list(dm.val_dataloader().sampler), list(dm.val_dataloader().sampler)]
    assert orders[0] == orders[1] == orders[2] == orders[3] != sorted(orders[0])


@pytest.mark.parametrize("fs", [360.0, 257.0])
def test_jitter_is_given_in_seconds_and_applied_in_samples(tiny_db, tmp_path, fs):
    """data.augment.jitter_s is seconds: at any rate the largest shift is jitter_s x fs samples, and shifts occur."""
    dm = make_dm(tiny_db, tmp_path / str(fs), fs=fs, augment={"jitter_s": 0.05})
    dm.setup()
    assert dm.data_train.augment.jitter == round(0.05 * fs)
    data = dm.data_train
    rng = np.random.default_rng([data.seed, 0, 63, 64])
    shifts = rng.integers(-data.augment.jitter, data.augment.jitter + 1, 64)
    x, _ = data.__getitems__(list(range(64)))
    lead = data.signal[0]
    for i in np.flatnonzero(shifts)[:5]:  # the served window starts where the beat's start plus its shift says
        start = data.starts[i] + shifts[i]
        np.testing.assert_allclose(x[i, 0].numpy(), lead[start : start + x.shape[-1]], atol=1e-6)
    assert np.abs(shifts).max() > 1


@pytest.fixture(scope="module")
def s_db(tmp_path_factory):
    """Eight records, half of them with many S (A) beats, the others with V beats only."""
    root = tmp_path_factory.mktemp("s_db")
    rng = np.random.default_rng(3)
    names = [str(100 + i) for i in range(8)]
    for i, name in enumerate(names):
        write_record(root, name, 0.3, rng, abnormal_symbols=("A",) if i % 2 else ("V",))
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    return root


def test_template_swap_serves_training_windows_beside_their_records_s_template(s_db, tmp_path):
    """augment.template_swap=1: every training window of a record with enough S beats is served beside the median of
    its S beats (the stress test's template), the others beside their own; validation windows are never swapped."""
    from ecg_lightning.data.windows import beat_templates

    settings = dict(labels="aami", templates=True, lead=["MLII", "V1"])
    dm = make_dm(s_db, tmp_path, augment={"template_swap": 1.0, "swap_class": "S"}, **settings)
    dm.setup()
    n, s = len(dm.records.names), list(dm.classes).index("S")
    own = beat_templates(dm.records, dm.beats, dm.half_width)
    stressed = beat_templates(dm.records, dm.beats, dm.half_width, reference="annotated_S", reference_class=s)
    enough = np.bincount(dm.beats.record[dm.beats.label == s], minlength=n) >= 5
    train = np.flatnonzero(np.isin(np.asarray(dm.records.names), dm.train_records))
    assert enough[train].any() and (~enough).any()  # both kinds of record are exercised
    idx = list(range(len(dm.data_train)))
    x, _ = dm.data_train.__getitems__(idx)
    record = dm.data_train.beats.record
    expected = np.where(enough[record][:, None, None], stressed[record], own[record])
    np.testing.assert_array_equal(x[:, 2:].numpy(), expected)
    xv, _ = dm.eval_dataset("val").__getitems__(list(range(len(dm.eval_dataset("val")))))
    np.testing.assert_array_equal(xv[:, 2:].numpy(), own[dm.eval_dataset("val").beats.record])


def test_balanced_sampling_draws_the_s_runs_of_each_patient_by_its_weight(s_db, tmp_path):
    """data.balance_power > 0: the training loader draws runs with replacement by ``record_balance_weights`` over the
    training records (validation keeps every window once); 0 keeps the plain permutation."""
    from ecg_lightning.data.windows import record_balance_weights

    settings = dict(labels="aami", run_beats=4, balance_class="S")
    plain = make_dm(s_db, tmp_path, **settings)
    plain.setup()
    assert plain.train_weights() is None
    assert sorted(plain.train_dataloader().sampler) == list(range(len(plain.data_train)))
    dm = make_dm(s_db, tmp_path, balance_power=1.0, **settings)
    dm.setup()
    data, s = dm.data_train, list(dm.classes).index("S")
    expected = record_balance_weights(data.beats.record, data.labels, s, 1.0, data.runs)
    np.testing.assert_array_equal(dm.train_weights(), expected)
    assert len(np.unique(expected)) > 2  # S patients weighted apart from each other and from the rest
    sampler = dm.train_dataloader().sampler
    np.testing.assert_allclose(sampler.weights, expected / expected.sum())
    assert sorted(dm.val_dataloader().sampler) == list(range(len(dm.data_val)))


def test_balanced_sampling_settings_are_checked(tiny_db, tmp_path):
    with pytest.raises(ConfigError, match="no such class"):
        make_dm(tiny_db, tmp_path, balance_power=0.5, balance_class="S")  # the study's labels have no S
    with pytest.raises(ConfigError, match="balance_power=-1"):
        make_dm(tiny_db, tmp_path, labels="aami", balance_power=-1)


def test_batches_by_record_hold_one_training_record_each(s_db, tmp_path):
    """data.batch_by_record=true: every training batch's runs come from one record, every run served; validation
    keeps its order; beside balanced sampling it is refused by name."""
    dm = make_dm(s_db, tmp_path, labels="aami", run_beats=4, batch_size=3, batch_by_record=True)
    dm.setup()
    data = dm.data_train
    records = data.beats.record[data.runs[:, 0]]
    assert len(np.unique(records)) > 1
    served = 0
    for batch in dm.train_dataloader().batch_sampler:
        assert len(np.unique(records[batch])) == 1 and len(batch) == 3
        served += len(batch)
    assert set(dm.train_dataloader().sampler) == set(range(len(data))) and served >= len(data)
    assert list(dm.val_dataloader().sampler) == list(range(len(dm.data_val)))
    with pytest.raises(ConfigError, match="set one of them"):
        make_dm(s_db, tmp_path, labels="aami", batch_by_record=True, balance_power=0.5)


def test_template_swap_draws_its_share_and_cuts_alike_on_the_device(s_db, tmp_path):
    """A swap chance of 0.5 swaps about half the windows of the records that can swap, drawn from the batch's seed,
    so the device path (plans) serves the CPU path's windows exactly."""
    settings = dict(labels="aami", templates=True, augment={"template_swap": 0.5, "noise": 0.1})
    cpu, device = make_dm(s_db, tmp_path, **settings), make_dm(s_db, tmp_path, cut_on_device=True, **settings)
    cpu.setup()
    device.setup()
    rows = np.concatenate(
        [
            device.data_train.__getitems__(list(b))["template_row"].numpy()
            for b in np.array_split(np.arange(len(device.data_train)), 8)
        ]
    )
    can = cpu.swap_rows[device.data_train.beats.record] != device.data_train.beats.record
    swapped = rows >= len(cpu.records.names)
    assert not swapped[~can].any() and 0.4 < swapped[can].mean() < 0.6
    for plan, batch in zip(device.train_dataloader(), cpu.train_dataloader()):
        for ours, theirs in zip(device.on_after_batch_transfer(plan, 0), batch):
            torch.testing.assert_close(ours, theirs)


def test_swap_by_record_swaps_a_records_windows_together(s_db, tmp_path):
    """swap_by_record: within a batch, every window of a record that can swap holds the same template (all swapped
    or none), and over batches about template_swap of them are swapped; per window (the default) a record's windows
    in one batch are mixed."""
    from ecg_lightning.data.windows import beat_templates

    def swapped_per_batch(by_record: bool) -> list[np.ndarray]:
        augment = {"template_swap": 0.5, "swap_class": "S", "swap_by_record": by_record}
        dm = make_dm(s_db, tmp_path, labels="aami", templates=True, augment=augment)
        dm.setup()
        stressed = beat_templates(
            dm.records, dm.beats, dm.half_width, reference="annotated_S", reference_class=list(dm.classes).index("S")
        )
        own = beat_templates(dm.records, dm.beats, dm.half_width)
        record = dm.data_train.beats.record
        can = dm.swap_rows[record] != record
        leads = dm.records.signal.shape[0]
        out = []
        for batch in np.array_split(np.arange(len(dm.data_train)), 6):
            x, _ = dm.data_train.__getitems__(list(batch))
            tmpl = x[:, leads:].numpy()
            swapped = (tmpl == stressed[record[batch]]).all(axis=(1, 2))
            assert (swapped | (tmpl == own[record[batch]]).all(axis=(1, 2))).all()
            out.append(np.stack([record[batch][can[batch]], swapped[can[batch]]]))
        return out

    by_record = swapped_per_batch(True)
    assert all(len(np.unique(s[1][s[0] == r])) == 1 for s in by_record for r in np.unique(s[0]))
    shares = np.concatenate([[s[1][s[0] == r][0] for r in np.unique(s[0])] for s in by_record])
    assert 0 < shares.mean() < 1  # some records swapped in some batches, not in others
    per_window = swapped_per_batch(False)
    assert any(len(np.unique(s[1][s[0] == r])) == 2 for s in per_window for r in np.unique(s[0]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"templates": False, "augment": {"template_swap": 0.5}}, "set data.templates=true"),
        ({"templates": True, "augment": {"template_swap": 1.5}}, r"must be a probability in \[0, 1\]"),
        ({"templates": True, "augment": {"swap_by_record": True}}, "set it > 0"),
        (
            {"templates": True, "augment": {"template_swap": 0.5, "swap_by_record": True}, "cut_on_device": True},
            "swap_by_record is cut on the CPU",
        ),
    ],
)
def test_template_swap_settings_are_checked(tiny_db, tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        make_dm(tiny_db, tmp_path, labels="aami", **settings)


def test_template_swap_names_an_unknown_class(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path, templates=True, augment={"template_swap": 0.5, "swap_class": "S"})
    with pytest.raises(ConfigError, match="no class 'S'"):
        dm.setup()  # the study's label set has no S class


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"augment": {"stretch": 1.0}}, r"must be in \[0, 1\)"),
        ({"augment": {"stretch": 0.1}, "cut_on_device": True}, "set data.cut_on_device=false"),
        ({"augment": {"record_scale": -0.1}}, r"must be in \[0, 1\)"),
        ({"augment": {"record_scale": 0.2}, "cut_on_device": True}, "set data.cut_on_device=false"),
        ({"augment": {"rr_scale": 1.5}}, r"must be in \[0, 1\)"),
        ({"augment": {"rr_scale": 0.2}, "cut_on_device": True}, "set data.cut_on_device=false"),
    ],
)
def test_per_record_augment_settings_are_checked(tiny_db, tmp_path, settings, message):
    with pytest.raises(ConfigError, match=message):
        make_dm(tiny_db, tmp_path, **settings)


@pytest.mark.parametrize("augment", [{"stretch": 0.2}, {"record_scale": 0.2}])
def test_per_record_augment_reaches_training_runs_only(s_db, tmp_path, augment):
    """data.augment.stretch or record_scale through the DataModule: runs of training beats are stretched or scaled
    (their windows differ from the plain cut), validation windows never are."""
    settings = dict(labels="aami", templates=True, run_beats=4)
    plain, augmented = (
        make_dm(s_db, tmp_path, **settings),
        make_dm(s_db, tmp_path, augment=augment, **settings),
    )
    plain.setup()
    augmented.setup()
    idx = list(range(len(plain.data_train)))
    xp, xa = plain.data_train.__getitems__(idx)[0], augmented.data_train.__getitems__(idx)[0]
    assert xa.shape == xp.shape and not torch.allclose(xa, xp)
    val = list(range(len(plain.eval_dataset("val"))))
    torch.testing.assert_close(
        augmented.eval_dataset("val").__getitems__(val)[0], plain.eval_dataset("val").__getitems__(val)[0]
    )


def test_premature_beats_are_served_in_training_only_as_the_class_named(s_db, tmp_path):
    """data.augment.premature: the training runs carry more S beats than the index holds (normal beats served early),
    validation runs exactly the annotated ones; the class is checked by name, how early as a list from the config."""
    settings = dict(labels="aami", run_beats=6, rr_features=["log_pre_local", "log_post_local"])
    dm = make_dm(s_db, tmp_path, augment={"premature": 1.0, "premature_earlier": [0.1, 0.3]}, **settings)
    dm.setup()
    assert dm.data_train.augment.premature_earlier == (0.1, 0.3)
    s = list(dm.classes).index("S")
    for data, more in ((dm.data_train, True), (dm.data_val, False)):
        *_, y = data.__getitems__(list(range(len(data))))
        served, annotated = int((y == s).sum()), int((data.labels[np.maximum(data.runs, 0)][data.runs >= 0] == s).sum())
        assert (served > annotated) if more else (served == annotated)
    for name in ("N", "X"):
        with pytest.raises(ConfigError, match=f"premature_class={name}"):
            make_dm(s_db, tmp_path, augment={"premature": 0.5, "premature_class": name}, **settings).setup()


@pytest.mark.parametrize("option", ["pauses", "atrial_runs"])
def test_interval_augments_are_served_in_training_only(s_db, tmp_path, option):
    """data.augment.pauses and atrial_runs: training runs carry a rewritten rhythm (their RR in seconds changed;
    pauses keep the labels, atrial runs serve S beats), validation the annotated one; without the RR in seconds the
    key is refused by name."""
    settings = dict(labels="aami", run_beats=6, rr_features=["log_pre_local", "log_pre_rr_s", "log_post_rr_s"])
    plain, dm = (make_dm(s_db, tmp_path, augment=a, **settings) for a in ({}, {option: 1.0}))
    plain.setup()
    dm.setup()
    s = list(dm.classes).index("S")
    for which, changed in (("data_train", True), ("data_val", False)):
        data, base = getattr(dm, which), getattr(plain, which)
        idx = list(range(len(data)))
        (_, rr, y), (_, rr0, y0) = data.__getitems__(idx), base.__getitems__(idx)
        more_s = int((y == s).sum()) > int((y0 == s).sum())
        assert more_s == (changed and option == "atrial_runs")
        assert torch.equal(y, y0) or more_s
        assert (not torch.equal(rr, rr0)) if changed else torch.equal(rr, rr0)
    with pytest.raises(ConfigError, match=f"data.augment.{option}.*log_post_rr_s"):
        make_dm(s_db, tmp_path, augment={option: 0.5}, **{**settings, "rr_features": ["log_pre_rr_s"]}).setup()


def test_irregular_rhythm_is_served_in_training_only_and_spares_the_class_named(s_db, tmp_path):
    """data.augment.irregular: the training runs without an S beat carry a spread-out rhythm, validation the
    annotated one; the class whose runs are spared is premature_class's, checked by name."""
    settings = dict(labels="aami", run_beats=6, rr_features=["log_pre_local", "local_irregularity"])
    plain, dm = (make_dm(s_db, tmp_path, augment=a, **settings) for a in ({}, {"irregular": 1.0}))
    plain.setup()
    dm.setup()
    s = list(dm.classes).index("S")
    for which, changed in (("data_train", True), ("data_val", False)):
        data, base = getattr(dm, which), getattr(plain, which)
        idx = list(range(len(data)))
        (_, rr, y), (_, rr0, _) = data.__getitems__(idx), base.__getitems__(idx)
        spared = ((y == s) | (y < 0)).any(1)
        torch.testing.assert_close(rr[spared], rr0[spared])
        assert (not torch.equal(rr[~spared], rr0[~spared])) if changed else torch.equal(rr, rr0)
    with pytest.raises(ConfigError, match="premature_class=N"):
        make_dm(s_db, tmp_path, augment={"irregular": 0.5, "premature_class": "N"}, **settings).setup()


def test_fibrillation_served_without_p_waves_keeps_the_record_template(s_db, tmp_path):
    """data.augment.irregular_without_p: in training, the runs served fibrillation's timing lose each beat's P-wave
    stretch on the signal lead (0.28-0.06 s before the beat, in samples at the data's rate); the record template
    beside it and every other sample are as with irregular alone; without irregular it is refused."""
    from ecg_lightning.data.windows import P_WAVE_S

    settings = dict(labels="aami", run_beats=6, rr_features=["log_pre_local", "local_irregularity"], templates=True,
                    window_s=0.5, lead=[0])  # fmt: skip
    plain, flat = (make_dm(s_db, tmp_path, augment={"irregular": 1.0, **a}, **settings)
                   for a in ({}, {"irregular_without_p": True}))  # fmt: skip
    plain.setup()
    flat.setup()
    idx = list(range(len(flat.data_train)))
    (x, _, y), (xp, _, yp) = plain.data_train.__getitems__(idx), flat.data_train.__getitems__(idx)
    torch.testing.assert_close(yp, y)
    served = ~((y == list(flat.classes).index("S")) | (y < 0)).any(1)
    assert served.any() and x.shape[2] == 2  # the lead, then its record template
    torch.testing.assert_close(xp[:, :, 1], x[:, :, 1])
    centre, (before, after) = x.shape[-1] // 2, (round(f * flat.hparams.fs) for f in P_WAVE_S)
    changed = (xp[:, :, 0] != x[:, :, 0]).any(1)  # per run: which samples changed
    assert not changed[~served].any()
    assert changed[served].any(0).nonzero().ravel().tolist() == list(range(centre - before, centre - after))
    with pytest.raises(ConfigError, match="irregular_without_p=true .*set data.augment.irregular above 0"):
        make_dm(s_db, tmp_path, augment={"irregular_without_p": True}, **settings).setup()


def test_the_pause_stress_changes_the_rhythm_features_not_the_windows(s_db, tmp_path):
    """data.pause_stress (an evaluation stress): the beats and their windows are the same, the local irregularity of
    the rhythm they are read in rises around the pauses; a factor of 1 or less, or no RR features, is refused."""
    from ecg_lightning.data.rr import RR_FEATURES

    settings = dict(labels="aami", rr_features=["log_pre_local", "local_irregularity"])
    plain, stressed = (make_dm(s_db, tmp_path, pause_stress=f, **settings) for f in (0.0, 2.5))
    plain.setup()
    stressed.setup()
    np.testing.assert_array_equal(plain.beats.sample, stressed.beats.sample)
    np.testing.assert_array_equal(plain.beats.label, stressed.beats.label)
    column = RR_FEATURES.index("local_irregularity")
    assert np.median(stressed.beats.rr[:, column]) > np.median(plain.beats.rr[:, column]) + 0.1
    for factor, more in ((1.0, settings), (2.5, dict(labels="aami"))):
        with pytest.raises(ConfigError, match="data.pause_stress"):
            make_dm(s_db, tmp_path, pause_stress=factor, **more)
