"""Several WFDB databases at once: INCART-like (257 Hz, several records per patient named in the headers) and
SVDB-like (128 Hz, unnamed leads) databases written here, beside the tiny MIT-BIH-like one."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import (
    FRACTIONS,
    LABEL_SETS,
    TEST_WINDOW_S,
    beat_dm,
    compose_config,
    database_spec,
    synthetic_signal,
)
from omegaconf import OmegaConf

from ecg_lightning.data import BeatDataModule, MITBIHDataModule, cache
from ecg_lightning.data.databases import Database, configured_lead
from ecg_lightning.data.records import RecordError, record_sources
from ecg_lightning.errors import ConfigError
from ecg_lightning.evaluate import leave_out_train_only, use_local_data

# INCART-like: record -> patient (as in the real headers' "# patient N" line); 3 patients, 7 records
INCART_PATIENTS = {"I01": 1, "I02": 1, "I03": 2, "I04": 2, "I05": 2, "I06": 3, "I07": 4, "I08": 5}
SVDB_RECORDS = ["800", "801", "802", "803"]
ABNORMAL_EVERY = 4  # every 4th beat is a V beat


def write_database(root: Path, names: list[str], fs: int, sig_name: list[str], comments=None, seed: int = 0) -> None:
    """Records of 20 s at ``fs`` Hz with a beat every 0.8 s (every 4th one V), headers with ``comments[name]``."""
    rng = np.random.default_rng(seed)
    for name in names:
        n = 20 * fs
        beats = np.arange(int(0.5 * fs), n - int(0.3 * fs), int(0.8 * fs))
        symbols = np.where(np.arange(len(beats)) % ABNORMAL_EVERY == 1, "V", "N")
        two = synthetic_signal(n, fs, beats, symbols, rng)
        signal = np.column_stack([two[:, 0] * 0.5, two[:, 0], two[:, 1]])[:, : len(sig_name)]
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * len(sig_name),
            sig_name=sig_name,
            p_signal=signal,
            fmt=["16"] * len(sig_name),
            comments=(comments or {}).get(name, []),
            write_dir=str(root),
        )
        wfdb.wrann(name, "atr", beats, symbol=list(symbols), write_dir=str(root))
    (root / "RECORDS").write_text("\n".join(names) + "\n")


@pytest.fixture(scope="module")
def incart_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("incartdb")
    comments = {r: ["<age>: 65 <sex>: F ", f"patient {p}", "PVCs"] for r, p in INCART_PATIENTS.items()}
    write_database(root, list(INCART_PATIENTS), 257, ["I", "II", "V1"], comments, seed=1)
    return root


@pytest.fixture(scope="module")
def svdb_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("svdb")
    write_database(root, SVDB_RECORDS, 128, ["ECG1", "ECG2"], seed=2)
    return root


def catalog(tiny_db, incart_db, svdb_db) -> dict:
    """The three configured databases (conf/data/database/*.yaml) at the test folders, never downloaded."""
    return {
        "mitdb": database_spec("mitdb", tiny_db, download=False),
        "incartdb": database_spec("incartdb", incart_db, download=False),
        "svdb": database_spec("svdb", svdb_db, download=False),
    }


def make(tiny_db, incart_db, svdb_db, tmp_path, **kwargs) -> BeatDataModule:
    kwargs = {"window_s": TEST_WINDOW_S, "cache_dir": tmp_path, "batch_size": 16, "label_sets": LABEL_SETS, **kwargs}
    return BeatDataModule(catalog=catalog(tiny_db, incart_db, svdb_db), **kwargs)


def test_incart_subjects_come_from_the_headers():
    db = Database("incartdb", Path("."), subject_pattern=r"patient\s+(\d+)", same_subject=(("a", "b"),))
    comments = [["<age>: 65", "patient 1"], ["patient 1"], ["patient 12"], [], ["no patient here"], []]
    keys = db.subject_keys(["I01", "I02", "I03", "a", "x", "b"], comments)
    assert keys == [
        "incartdb:subject 1",
        "incartdb:subject 1",
        "incartdb:subject 12",
        "incartdb:a",
        "incartdb:x",
        "incartdb:a",
    ]
    # a pattern can name the subject in the record name instead (Icentia11k: p<patient>_s<segment>)
    icentia = Database("icentia", Path("."), subject_pattern=r"^(p\d+)_s\d+$")
    assert icentia.subject_keys(["p00001_s00", "p00001_s07", "p00002_s00"], [["patient 9"]] * 3) == [
        "icentia:subject p00001",
        "icentia:subject p00001",
        "icentia:subject p00002",
    ]
    # a pattern without a group names the subject by its whole match
    whole = Database("db", Path("."), subject_pattern=r"p\d+")
    assert whole.subject_keys(["p1_s0", "p1_s1", "x"], [[], [], []]) == ["db:subject p1", "db:subject p1", "db:x"]
    # the configured pattern (conf/data/database/incartdb.yaml) reads the real header's line
    spec = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf/data/database/incartdb.yaml"))
    assert Database.from_config("incartdb", {**spec, "root": "."}).subject_keys(["I08"], [["# patient 4"]]) == [
        "incartdb:subject 4"
    ]


def test_two_databases_at_other_rates_are_resampled_and_split_by_subject(tiny_db, incart_db, svdb_db, tmp_path):
    dm = make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb", "incartdb"], split="patient")
    dm.setup()
    assert dm.records.names == tuple(FRACTIONS) + tuple(INCART_PATIENTS)
    assert dm.records.databases == ("mitdb",) * len(FRACTIONS) + ("incartdb",) * len(INCART_PATIENTS)
    assert dm.records.fs == 360.0 and dm.test_records == []
    # INCART's lead II (conf: lead: II), matched by name; MIT-BIH's channel 0 (data.lead)
    leads = dict(zip(dm.records.names, dm.records.leads))
    assert leads["I03"] == ("II",) and leads["100"] == ("MLII",)
    # every INCART beat, its annotation moved from 257 Hz to 360 Hz samples (rounded), read here with wfdb
    for name in INCART_PATIENTS:
        ann = wfdb.rdann(str(incart_db / name), "atr")
        length = wfdb.rdheader(str(incart_db / name)).sig_len
        start = dm.records.offsets[dm.records.names.index(name)]
        assert dm.records.lengths[dm.records.names.index(name)] == int(np.ceil(length * 360 / 257))
        got = dm.records.ann_sample[dm.records.ann_record == dm.records.names.index(name)]
        np.testing.assert_array_equal(got, np.round(np.asarray(ann.sample) * 360 / 257).astype(int))
        # the resampled beat is still on its QRS peak (lead II's tallest sample within 10 ms)
        lead = np.asarray(dm.records.signal[0, start : start + dm.records.lengths[dm.records.names.index(name)]])
        normal = got[np.asarray(ann.symbol) == "N"][1:-1]
        peaks = [np.argmax(lead[s - 20 : s + 21]) - 20 for s in normal]
        assert np.abs(peaks).max() <= 4, name
    # every patient's records on one side
    for patient in set(INCART_PATIENTS.values()):
        records = {r for r, p in INCART_PATIENTS.items() if p == patient}
        assert records <= set(dm.train_records) or records <= set(dm.val_records), patient
    assert set(dm.train_records) & set(INCART_PATIENTS) and set(dm.train_records) & set(FRACTIONS)


@pytest.mark.parametrize("seed", range(6))
def test_subjects_of_every_database_stay_on_one_side_of_every_split(tiny_db, incart_db, svdb_db, tmp_path, seed):
    for split in ("patient", "kfold"):
        dm = make(tiny_db, incart_db, svdb_db, tmp_path, databases=["incartdb", "mitdb"], split=split, split_seed=seed)
        dm.setup()
        train = set(dm.train_records)
        assert not train & set(dm.val_records)
        assert sorted(train | set(dm.val_records)) == sorted([*INCART_PATIENTS, *FRACTIONS])
        assert ("201" in train) == ("202" in train)
        for patient in set(INCART_PATIENTS.values()):
            together = {r in train for r, p in INCART_PATIENTS.items() if p == patient}
            assert len(together) == 1, (split, seed, patient)


def test_cross_database_evaluation_tests_on_the_unseen_database(tiny_db, incart_db, svdb_db, tmp_path):
    dm = make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb", "incartdb"], test_databases=["svdb"])
    dm.setup()
    assert dm.test_records == SVDB_RECORDS
    assert not set(dm.train_records + dm.val_records) & set(SVDB_RECORDS)
    # every SVDB beat whose window fits (at 360 Hz) is a test window, labelled by its symbol (V abnormal)
    half = int(TEST_WINDOW_S * 360)
    expected = []
    for name in SVDB_RECORDS:
        ann = wfdb.rdann(str(svdb_db / name), "atr")
        n = int(np.ceil(wfdb.rdheader(str(svdb_db / name)).sig_len * 360 / 128))
        at = np.round(np.asarray(ann.sample) * 360 / 128).astype(int)
        fits = (at >= half) & (at + half <= n)
        expected += [int(s == "V") for s in np.asarray(ann.symbol)[fits]]
    ys = [int(y) for _, batch_y in dm.test_dataloader() for y in batch_y]
    assert ys == expected and sum(ys) > 0


@pytest.mark.parametrize("split, extra", [("kfold", {}), ("ds1ds2", {"inner_split": "kfold"})])
def test_train_only_databases_train_in_every_fold_and_are_never_validated_or_tested(
    tiny_db, incart_db, svdb_db, tmp_path, caplog, split, extra
):
    """data.train_only_databases: every INCART and SVDB record trains in every fold, beside the fold's MIT-BIH
    training records; validation and test come from MIT-BIH alone, as without them (so the folds, and the rules'
    measures, are the same)."""
    mitdb = sorted(FRACTIONS)
    if split == "ds1ds2":
        extra = {**extra, "ds1": mitdb[: len(mitdb) // 2 + 2], "ds2": mitdb[len(mitdb) // 2 + 2 :]}
    for fold in range(3):
        settings = dict(split=split, n_folds=3, fold=fold, **extra)
        dm = make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb", "incartdb", "svdb"],
                  train_only_databases=["incartdb", "svdb"], **settings)  # fmt: skip
        alone = make(tiny_db, incart_db, svdb_db, tmp_path, **settings)
        dm.setup()
        alone.setup()
        assert set(INCART_PATIENTS) | set(SVDB_RECORDS) <= set(dm.train_records)
        assert sorted(set(dm.train_records) - set(INCART_PATIENTS) - set(SVDB_RECORDS)) == sorted(alone.train_records)
        assert dm.val_records == alone.val_records and dm.test_records == alone.test_records
        assert dm.val_records and not set(dm.val_records) & (set(INCART_PATIENTS) | set(SVDB_RECORDS))
    if split == "ds1ds2":  # a database named for training but in neither list is left out, and the log says how
        dropped = make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb", "incartdb"], **settings)
        with caplog.at_level(logging.WARNING):
            dropped.setup()
        assert not set(dropped.train_records) & set(INCART_PATIENTS)
        assert "['incartdb'] are in neither data.ds1 nor data.ds2" in caplog.text
        assert "data.train_only_databases" in caplog.text


def test_scoring_a_run_trained_with_train_only_databases_reads_none_of_them(tiny_db, incart_db, svdb_db, tmp_path):
    """evaluate side=val/test (``leave_out_train_only``): the run's train-only databases are not read, and the
    validation and test records are those the run had; a run without them is left as it was."""
    mitdb = sorted(FRACTIONS)
    split = dict(split="ds1ds2", inner_split="kfold", n_folds=3, fold=1, ds1=mitdb[:6], ds2=mitdb[6:])
    run = OmegaConf.create({"databases": ["mitdb", "incartdb", "svdb"], "train_only_databases": ["incartdb", "svdb"]})
    trained = make(tiny_db, incart_db, svdb_db, tmp_path, **OmegaConf.to_container(run), **split)
    leave_out_train_only(run)
    assert list(run.databases) == ["mitdb"] and list(run.train_only_databases) == []
    scored = make(tiny_db, incart_db, svdb_db, tmp_path, **OmegaConf.to_container(run), **split)
    trained.setup()
    scored.setup()
    assert scored.val_records == trained.val_records and scored.test_records == trained.test_records
    assert set(trained.records.names) & set(INCART_PATIENTS) and not set(scored.records.names) & set(INCART_PATIENTS)
    plain = OmegaConf.create({"databases": ["mitdb", "incartdb"], "train_only_databases": []})
    leave_out_train_only(plain)
    assert list(plain.databases) == ["mitdb", "incartdb"]


def test_database_settings_errors_are_named(tiny_db, incart_db, svdb_db, tmp_path):
    with pytest.raises(ConfigError, match=r"data.databases: \['ptbdb'\] not in data.catalog"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["ptbdb"])
    with pytest.raises(ConfigError, match=r"\['svdb'\] in both data.databases and data.test_databases"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["svdb"], test_databases=["svdb"])
    with pytest.raises(ConfigError, match="ds1ds2 has its own test set"):
        make(tiny_db, incart_db, svdb_db, tmp_path, split="ds1ds2", ds1=["100"], ds2=["101"], test_databases=["svdb"])
    with pytest.raises(ConfigError, match=r"data.catalog.incartdb.lead=II gives 1 lead\(s\) where .* gives 2"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb", "incartdb"], lead=["MLII", "V1"])
    with pytest.raises(ConfigError, match="data.databases is empty"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=[])
    with pytest.raises(ConfigError, match=r"data.train_only_databases=\['svdb'\]: \['svdb'\] not in data.databases"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["mitdb"], train_only_databases=["svdb"])
    with pytest.raises(ConfigError, match="names every database of data.databases: leave one to validate on"):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["svdb"], train_only_databases=["svdb"])
    twin = {**catalog(tiny_db, incart_db, svdb_db), "copy": database_spec("mitdb", tiny_db, download=False)}
    dm = BeatDataModule(databases=["mitdb", "copy"], catalog=twin, label_sets=LABEL_SETS, cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"record 100 is in both mitdb .* and copy .*; record names must be unique"):
        dm.setup()
    missing = [f"X{i:02d}" for i in range(12)]  # the first ten are named, with the folders looked in
    dm = make(tiny_db, incart_db, svdb_db, tmp_path, records=["I01", *missing], databases=["incartdb", "svdb"])
    with pytest.raises(ConfigError) as err:
        dm.setup()
    assert str(err.value) == (
        f"data.records: {missing[:10]} not in the records of ['incartdb', 'svdb'] ({incart_db}, {svdb_db})"
    )
    spec = database_spec("incartdb", incart_db)
    with pytest.raises(ConfigError, match=r"^data.catalog.incartdb: unknown keys \['leads', 'name'\]$"):
        Database.from_config("incartdb", {**spec, "leads": "II", "name": "x"})
    with pytest.raises(ConfigError, match=r"^data.catalog.incartdb.root is not set: give the folder of the incartdb"):
        Database.from_config("incartdb", {**spec, "root": None})
    with pytest.raises(ConfigError, match=r"^data.catalog.incartdb.subject_pattern='patient \(' is not a regular"):
        Database.from_config("incartdb", {**spec, "subject_pattern": "patient ("})
    db = Database.from_config("x", {"root": "/r", "annotation": "qrs", "physionet": "x-db", "download": False})
    assert (db.annotation, db.physionet, db.download, db.lead) == ("qrs", "x-db", False, None)
    assert db.sources(["a"], [0, 1]) == record_sources("x", Path("/r"), ["a"], (0, 1), "qrs")
    assert Database.from_config("z", {"root": "/r", "lead": ["II", "V1"]}).lead == ("II", "V1")
    defaults = Database.from_config("y", {"root": "/r"})
    assert (defaults.annotation, defaults.physionet, defaults.download) == ("atr", None, True)


def test_unnamed_leads_fall_back_with_a_warning_naming_the_database(tiny_db, incart_db, svdb_db, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        make(tiny_db, incart_db, svdb_db, tmp_path, databases=["svdb"], lead="MLII").setup()
    assert "data.lead MLII: 4 of 4 svdb records lack it and give another lead there: 800 ECG1" in caplog.text
    caplog.clear()
    own = catalog(tiny_db, incart_db, svdb_db)
    own["incartdb"]["lead"] = "V5"  # a database's own lead that none of its (named) leads is: refused, naming the key
    with pytest.raises(ConfigError, match=r"data.catalog.incartdb.lead: no incartdb record has a V5 lead \(their "):
        BeatDataModule(databases=["incartdb"], catalog=own, label_sets=LABEL_SETS, cache_dir=tmp_path).setup()


def test_split_settings_reach_the_split(tiny_db, incart_db, svdb_db, tmp_path):
    """val_fraction and bin_edges of the config are the ones the splits use (scikit-learn's split as the oracle)."""
    from sklearn.model_selection import train_test_split

    from ecg_lightning.data.split import abnormal_fraction, fraction_bins

    for split in ("seed", "patient"):
        dm = make(tiny_db, incart_db, svdb_db, tmp_path, split=split, val_fraction=0.5, bin_edges=[0.0, 0.5, 1.0])
        dm.setup()
        names = list(dm.records.names)
        fraction = abnormal_fraction(dm.beats.record, dm.beats.label, len(names))
        if split == "seed":
            bins = fraction_bins(fraction, [0.0, 0.5, 1.0])
            _, val = train_test_split(names, test_size=0.5, stratify=bins, random_state=42)
            assert dm.val_records == val
        else:  # 11 subjects (201 and 202 are one): half of them, rounded up, are validation
            assert len({"201" if r == "202" else r for r in dm.val_records}) == 6
    # the subject-grouped splits take bin_edges from the config too (the split module, tested against
    # scikit-learn in test_split.py, as the oracle; the default edges would split otherwise)
    from ecg_lightning.data.split import holdout_split, kfold_split, subject_ids

    edges = [0.0, 0.1, 1.0]
    dm = make(tiny_db, incart_db, svdb_db, tmp_path, split="patient", bin_edges=edges)
    dm.setup()
    names = list(dm.records.names)
    fraction = abnormal_fraction(dm.beats.record, dm.beats.label, len(names))
    windows = np.bincount(dm.beats.record, minlength=len(names)).astype(float)
    subjects = subject_ids(dm.subjects())
    expected = holdout_split(names, fraction, windows, 0.25, 42, subjects, edges)[1]
    assert dm.val_records == expected != holdout_split(names, fraction, windows, 0.25, 42, subjects)[1]
    dm = make(tiny_db, incart_db, svdb_db, tmp_path, split="kfold", n_folds=3, bin_edges=edges)
    dm.setup()
    expected = kfold_split(names, fraction, windows, subjects, 0, 3, 42, edges)[1]
    assert dm.val_records == expected != kfold_split(names, fraction, windows, subjects, 0, 3, 42)[1]
    with pytest.raises(ValueError, match=r"^data.split=ds1ds2: no DS1 or no DS2 record among the 12 records read$"):
        make(tiny_db, incart_db, svdb_db, tmp_path, split="ds1ds2", ds1=["100", "101"], ds2=["999"]).setup()


def test_a_record_without_beats_last_still_splits(tmp_path, tiny_db, incart_db, svdb_db):
    """A database whose last record has no beat annotations (only rhythm/noise marks): it is read and split."""
    import shutil

    root = tmp_path / "db"
    root.mkdir()
    for name in ("I01", "I02", "I03", "I04"):
        for ext in ("hea", "dat", "atr"):
            shutil.copy(incart_db / f"{name}.{ext}", root / f"{name}.{ext}")
    wfdb.wrann("I04", "atr", np.array([100, 2000]), symbol=["+", "~"], write_dir=str(root))
    (root / "RECORDS").write_text("I01\nI02\nI03\nI04\n")
    spec = database_spec("incartdb", root, download=False)
    dm = BeatDataModule(
        databases=["incartdb"], catalog={"incartdb": spec}, label_sets=LABEL_SETS, window_s=TEST_WINDOW_S
    )
    dm.setup()
    assert sorted(dm.train_records + dm.val_records) == ["I01", "I02", "I03", "I04"]


def test_one_store_holds_the_records_of_several_folders(tiny_db, incart_db, tmp_path):
    sources = record_sources("mitdb", tiny_db, ["100", "101"], 0) + record_sources(
        "incartdb", incart_db, ["I01", "I06"], "II"
    )
    cold = cache.load_or_read(sources, 360.0, tmp_path)
    warm = cache.load_or_read(sources, 360.0, tmp_path)
    assert len(list(tmp_path.iterdir())) == 1 and warm.databases == ("mitdb", "mitdb", "incartdb", "incartdb")
    assert warm.comments[2] == ("<age>: 65 <sex>: F", "patient 1", "PVCs") and warm.comments[0] == ()
    np.testing.assert_array_equal(warm.signal, cold.signal)
    assert warm.leads == (("MLII",), ("MLII",), ("II",), ("II",))
    # which folder a record comes from and its annotation file shape the store
    key = cache.cache_key(sources, 360.0)
    moved = [*sources[:2], *record_sources("incartdb", incart_db, ["I01", "I06"], "II", "qrs")]
    assert cache.cache_key(moved, 360.0) != key
    renamed = [*sources[:2], *record_sources("other", incart_db, ["I01", "I06"], "II")]
    assert cache.cache_key(renamed, 360.0) != key


def test_a_cross_database_run_is_one_override(tiny_db, incart_db, svdb_db, tmp_path, compose_cfg):
    from ecg_lightning.train import train

    cfg = compose_cfg(
        f"data.catalog.incartdb.root={incart_db}",
        f"data.catalog.svdb.root={svdb_db}",
        "data.catalog.svdb.download=false",
        "data.databases=[mitdb,incartdb]",
        "data.test_databases=[svdb]",
        "trainer.max_epochs=1",
        "logger=none",
    )
    metrics = train(cfg)
    # learnt on MIT-BIH + INCART, scored on SVDB, which it never saw (V beats are learnable in one epoch here)
    assert metrics["test/balanced_accuracy"] > 0.8 and metrics["val/balanced_accuracy"] > 0.6
    # evaluate side=test rebuilds the same cross-database test set from the checkpoint and scores it the same
    from ecg_lightning.evaluate import evaluate

    out = tmp_path / "eval"
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt"))
    overrides = [f"ckpt_path={ckpt}", "side=test", f"paths.cache_dir={tmp_path / 'cache'}"]
    roots = [f"data.catalog.{n}.root={r}" for n, r in (("mitdb", tiny_db), ("incartdb", incart_db), ("svdb", svdb_db))]
    report = evaluate(compose_config("evaluate", out, [*overrides, *roots]))
    assert report["records"] == SVDB_RECORDS
    assert report["balanced_accuracy"] == pytest.approx(metrics["test/balanced_accuracy"], abs=1e-6)
    rows = (out / "per_record.csv").read_text().splitlines()
    assert rows[0].startswith("record,database,beats") and all(",svdb," in r for r in rows[1:])
    # the run's checkpoint config says where each record came from
    assert OmegaConf.to_container(cfg.data.test_databases) == ["svdb"]


def test_checkpoints_of_the_one_folder_config_still_build_their_data(tiny_db, tmp_path):
    old = MITBIHDataModule(tiny_db, window_s=TEST_WINDOW_S, label_sets=LABEL_SETS, cache_dir=tmp_path)
    new = beat_dm(tiny_db, window_s=TEST_WINDOW_S, cache_dir=tmp_path)
    old.setup(), new.setup()
    assert (old.train_records, old.val_records) == (new.train_records, new.val_records)
    run = OmegaConf.create({"root": "/gone", "download": True, "cache_dir": "/gone", "lead": 0})
    local = OmegaConf.create({"cache_dir": "/c", "catalog": {"mitdb": {"root": "/here", "download": False}}})
    use_local_data(run, local)
    assert (run.root, run.download, run.cache_dir) == ("/here", False, "/c")
    run = OmegaConf.create({"cache_dir": "/x", "catalog": {"mitdb": {"root": "/a", "download": True, "lead": None}}})
    use_local_data(run, local)
    assert run.catalog.mitdb.root == "/here" and run.catalog.mitdb.download is False
    # predict reads the first training database's own lead, else data.lead
    incart = {"lead": 0, "databases": ["incartdb"], "catalog": {"incartdb": {"root": "/r", "lead": "II"}}}
    assert configured_lead(incart) == "II"
    assert configured_lead({"lead": 0, "databases": ["mitdb"], "catalog": {"mitdb": {"root": "/r", "lead": None}}}) == 0
    assert configured_lead({"lead": "MLII"}) == "MLII"


def test_without_a_cache_the_records_read_the_same(tiny_db, incart_db, svdb_db, tmp_path):
    """cache_dir=None reads every record into memory: the same resampled signals, annotations, databases, comments
    and split as the memory-mapped store."""
    kwargs = {"databases": ["mitdb", "incartdb"], "test_databases": ["svdb"], "split": "patient", "band": [0.5, 40]}
    stored = make(tiny_db, incart_db, svdb_db, tmp_path, **kwargs)
    memory = make(tiny_db, incart_db, svdb_db, tmp_path, **{**kwargs, "cache_dir": None})
    stored.setup(), memory.setup()
    assert not isinstance(memory.records.signal, np.memmap) and memory.records.fs == 360.0
    assert memory.records.signal.dtype == np.float32 and memory.records.ann_record.dtype == np.int32
    np.testing.assert_array_equal(memory.records.signal, stored.records.signal)
    for field in ("offsets", "ann_record", "ann_sample", "ann_symbol"):
        np.testing.assert_array_equal(getattr(memory.records, field), getattr(stored.records, field))
    assert memory.records.databases == stored.records.databases and memory.records.leads == stored.records.leads
    assert memory.records.comments == stored.records.comments and memory.records.names == stored.records.names
    assert (memory.train_records, memory.val_records, memory.test_records) == (
        stored.train_records,
        stored.val_records,
        stored.test_records,
    )


def test_an_empty_database_folder_is_downloaded_by_its_physionet_name(tmp_path, monkeypatch, incart_db, caplog):
    import shutil

    from ecg_lightning.data import records as records_mod

    fetched = []

    def fake_dl(db, dl_dir, records):
        fetched.append((db, records[0]))
        for ext in ("hea", "dat", "atr"):
            shutil.copy(incart_db / f"{records[0]}.{ext}", Path(dl_dir) / f"{records[0]}.{ext}")

    monkeypatch.setattr(records_mod.wfdb, "get_record_list", lambda db: ["I01", "I02"])
    monkeypatch.setattr(records_mod.wfdb, "dl_database", fake_dl)
    spec = database_spec("incartdb", tmp_path / "fresh")
    assert Database.from_config("incartdb", spec).record_names() == ["I01", "I02"]
    assert fetched == [("incartdb", "I01"), ("incartdb", "I02")]
    assert (tmp_path / "fresh" / "RECORDS").read_text() == "I01\nI02\n"
    # into a nested folder that does not exist yet, and into an existing empty one
    nested, empty = tmp_path / "a" / "b" / "incart", tmp_path / "empty"
    empty.mkdir()
    with caplog.at_level(logging.INFO):
        for root in (nested, empty):
            assert Database.from_config("incartdb", {**spec, "root": root}).record_names() == ["I01", "I02"]
    assert (
        f"No records in {empty}: downloading incartdb from PhysioNet (if the database is elsewhere, set "
        "data.catalog.incartdb.root or INCARTDB_DIR)" in caplog.messages
    )
    with pytest.raises(RecordError, match=r"data.catalog.incartdb.download=false. .* point data.catalog.incartdb.root"):
        Database.from_config("incartdb", {**spec, "root": tmp_path / "none", "download": False}).record_names()
    with pytest.raises(RecordError) as err:
        Database.from_config("mine", {"root": tmp_path / "none", "physionet": None}).record_names()
    assert str(err.value) == (
        f"No WFDB records in {tmp_path / 'none'} and no PhysioNet name (data.catalog.mine.physionet) to download it "
        f"from. Put the database's files (RECORDS, *.hea, *.dat and the annotation files) in {tmp_path / 'none'}, or "
        "point data.catalog.mine.root at a folder that has them."
    )


def test_a_database_reads_its_own_annotation_extension(tmp_path, incart_db):
    """annotation: ann reads <record>.ann (the folder has no .atr): beats come from it."""
    import shutil

    root = tmp_path / "db"
    root.mkdir()
    for name in ("I01", "I06"):
        shutil.copy(incart_db / f"{name}.hea", root / f"{name}.hea")
        shutil.copy(incart_db / f"{name}.dat", root / f"{name}.dat")
        shutil.copy(incart_db / f"{name}.atr", root / f"{name}.ann")
    spec = {"root": str(root), "annotation": "ann", "lead": "II"}
    dm = BeatDataModule(databases=["x"], catalog={"x": spec}, label_sets=LABEL_SETS, window_s=TEST_WINDOW_S)
    dm.setup()
    n = sum(len(wfdb.rdann(str(incart_db / r), "atr").sample) for r in ("I01", "I06"))
    assert len(dm.records.ann_sample) == n and (dm.records.ann_symbol == "V").sum() > 0
