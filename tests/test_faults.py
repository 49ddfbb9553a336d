"""Faults that used to lose data silently: a truncated annotation file, one bad record in a folder run."""

import csv
import json
import logging

import numpy as np
import pytest
import wfdb
from conftest import compose_config, train_overrides, write_record
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.data.records import read_record
from ecg_lightning.predict import RecordsFailed, predict_record
from ecg_lightning.train import train


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def ckpt(tiny_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    train(compose_config("train", tmp / "run", [*train_overrides(tiny_db, tmp), "trainer.max_epochs=1", "seed=2"]))
    HydraConfig.instance().cfg = None
    return tmp / "run" / "checkpoints" / "last.ckpt"


def test_a_cut_short_annotation_file_is_reported_and_the_rest_is_detected(ckpt, tmp_path, caplog):
    write_record(tmp_path, "long", 0.2, np.random.default_rng(1), duration_s=120)
    atr = tmp_path / "long.atr"
    whole = wfdb.rdann(str(tmp_path / "long"), "atr")
    atr.write_bytes(atr.read_bytes()[:100])  # an even byte count: wfdb reads what is there without a word
    cut = wfdb.rdann(str(tmp_path / "long"), "atr")
    assert 10 < len(cut.sample) < len(whole.sample) / 2
    with caplog.at_level(logging.WARNING):
        record = read_record(tmp_path / "long", lead=0)
    assert record.ann_until == cut.sample.max()
    assert "end-of-file marker" in caplog.text and "annotations stop at" in caplog.text
    out = tmp_path / "pred"
    summary = predict_record(compose_config("predict", out, [f"ckpt_path={ckpt}", f"record={tmp_path / 'long'}"]))
    rows = list(csv.DictReader((out / "beats.csv").open()))
    assert summary["beat_source"] == "annotation+detector"
    assert summary["annotated_until_s"] == pytest.approx(cut.sample.max() / 360, abs=1e-3)
    last_beat_s = float(rows[-1]["time_s"])
    assert last_beat_s > 118  # the whole record is classified, not only the annotated part
    annotated = [r for r in rows if r["source"] == "annotation"]
    detected = [r for r in rows if r["source"] == "detector"]
    assert len(detected) == summary["detected_beats"] > 100 and all(r["reference"] == "" for r in detected)
    assert all(r["reference"] for r in annotated)
    assert summary["reference"]["beats"] == len(annotated)  # scored against the annotations where they exist
    # an intact file: no warning, no detector
    caplog.clear()
    write_record(tmp_path, "intact", 0.2, np.random.default_rng(1), duration_s=120)
    with caplog.at_level(logging.WARNING):
        assert read_record(tmp_path / "intact", lead=0).ann_until is None
    assert "annotations stop" not in caplog.text


def test_one_bad_record_does_not_stop_a_folder_run(ckpt, tmp_path):
    db = tmp_path / "db"
    db.mkdir()
    rng = np.random.default_rng(4)
    for name in ("a1", "a2", "a3"):
        write_record(db, name, 0.3, rng, duration_s=20)
    (db / "a2.dat").write_bytes((db / "a2.dat").read_bytes()[:50])  # damaged signal file
    out = tmp_path / "out"
    with pytest.raises(RecordsFailed, match="1 of 3 records could not be classified"):
        predict_record(compose_config("predict", out, [f"ckpt_path={ckpt}", f"record={db}"]))
    table = {r["record"]: r for r in csv.DictReader((out / "records.csv").open())}
    assert set(table) == {"a1", "a2", "a3"}
    assert table["a2"]["error"] and "a2" in table["a2"]["error"] and not table["a2"]["beats"]
    for good in ("a1", "a3"):  # processed, the one after the bad record included
        assert int(table[good]["beats"]) == 25 and not table[good]["error"]
        assert json.loads((out / good / "summary.json").read_text())["beats"] == 25


def test_an_ensemble_is_not_scored_on_records_one_of_its_models_trained_on(ckpt, tiny_db, tmp_path):
    from ecg_lightning.checkpoint import CheckpointError
    from ecg_lightning.evaluate import evaluate

    other = tmp_path / "other"
    overrides = [*train_overrides(tiny_db, tmp_path), "trainer.max_epochs=1", "data.split_seed=7"]
    train(compose_config("train", other, overrides))
    HydraConfig.instance().cfg = None
    pair = f"ckpt_path=[{ckpt},{other / 'checkpoints' / 'last.ckpt'}]"
    common = [f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    with pytest.raises(CheckpointError, match="trained on .* of the records scored here"):
        evaluate(compose_config("evaluate", tmp_path / "ev", [pair, *common]))
    HydraConfig.instance().cfg = None
    # the training side is scored knowingly: no refusal
    assert evaluate(compose_config("evaluate", tmp_path / "tr", [pair, *common, "side=train"]))["beats"] > 0


def test_resuming_with_another_model_is_one_clear_error(ckpt, tiny_db, tmp_path):
    from ecg_lightning.checkpoint import CheckpointError

    cfg = compose_config("train", tmp_path / "r", [*train_overrides(tiny_db, tmp_path), "model=cnn_lstm",
                                                   f"ckpt_path={ckpt}"])  # fmt: skip
    expected = r"do not fit the configured model StudyCNNLSTM \(the checkpoint is a .*StudyCNN; .*resume with the same"
    with pytest.raises(CheckpointError, match=expected):
        train(cfg)


def test_a_window_longer_than_every_record_is_refused_before_fitting(tiny_db, tmp_path):
    from ecg_lightning.errors import ConfigError

    cfg = compose_config("train", tmp_path / "r", [*train_overrides(tiny_db, tmp_path, window_s=1000)])
    with pytest.raises(ConfigError, match=r"no training windows .*data.window_s=1000"):
        train(cfg)
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "entry, overrides, message",
    [
        ("train", ["model.optimizer.lr=-1", "trainer.max_epochs=1"], "model.optimizer.lr=-1: must be > 0"),
        ("predict", ["ckpt_path=x.ckpt", "record=r", "batch_size=0"], "batch_size=0: must be a whole number"),
        ("evaluate", [], "ckpt_path is required: give ckpt_path="),
        ("predict", ["ckpt_path=x.ckpt"], "record is required: give record="),
        ("export", [], "ckpt_path is required"),
    ],
)
def test_bad_settings_give_one_line_not_a_traceback(entry, overrides, message, tiny_db, tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "MITDB_DIR": str(tiny_db), "ECG_LIGHTNING_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", f"ecg_lightning.{entry}", *overrides, f"hydra.run.dir={tmp_path / 'run'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1 and message in out, out[-2000:]
    assert "Traceback" not in out


def write_multirate(root, name="mr", seconds=20, fs=125):
    """A bedside-monitor-shaped record: MCL1 at 4 x 125 = 500 Hz beside ABP and RESP at 125 Hz (``212x4``)."""
    n = fs * seconds
    t = np.arange(n * 4) / (4 * fs)
    ecg = 0.3 + 0.2 * np.sin(2 * np.pi * 1.1 * t) + np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4)  # a spike every 0.8 s
    abp = 90 + 20 * np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)
    resp = np.sin(2 * np.pi * 0.25 * np.arange(n) / fs)
    record = wfdb.Record(record_name=name, fs=fs, n_sig=3, sig_len=n, sig_name=["MCL1", "ABP", "RESP"],
                         units=["mV", "mmHg", "mV"], e_p_signal=[ecg, abp, resp], samps_per_frame=[4, 1, 1],
                         fmt=["212"] * 3, adc_gain=[200.0, 1.0, 200.0], baseline=[0, 0, 0])  # fmt: skip
    record.set_d_features(expanded=True, do_adc=True)
    record.set_defaults()
    record.wrsamp(expanded=True, write_dir=str(root))
    beats = np.arange(int(0.4 * fs), n, int(0.8 * fs))  # annotation times count frames (125 Hz)
    wfdb.wrann(name, "atr", beats, symbol=["N"] * len(beats), write_dir=str(root))
    return ecg, beats


def record_signal_physical(base):
    """Lead 0's own samples as wfdb reads them, frames unsmoothed."""
    return wfdb.rdrecord(str(base), channels=[0], smooth_frames=False).e_p_signal[0].astype(np.float32)


def test_a_multi_rate_record_is_read_at_its_leads_own_rate(tmp_path):
    ecg, beats = write_multirate(tmp_path)
    assert "212x4" in (tmp_path / "mr.hea").read_text()
    record = read_record(tmp_path / "mr", lead="MCL1")
    assert record.fs == 500 and record.signal.shape == (1, len(ecg))
    standardized = (ecg - ecg.mean()) / ecg.std()
    np.testing.assert_allclose(record.signal[0], standardized, atol=0.02)  # the 500 Hz samples, not frame means
    np.testing.assert_array_equal(record.ann_sample, beats * 4)  # at the lead's rate
    assert (standardized[record.ann_sample] > 3).all()  # on the spikes (baseline ~ -0.3)
    from ecg_lightning.data.records import bandpass, standardize

    filtered = read_record(tmp_path / "mr", lead="MCL1", band=(0.5, 40.0))  # filtered at the lead's 500 Hz
    expected = standardize(bandpass(record_signal_physical(tmp_path / "mr"), 500.0, (0.5, 40.0)))
    np.testing.assert_allclose(filtered.signal[0], expected, atol=1e-4)
    resampled = read_record(tmp_path / "mr", lead="MCL1", fs=360.0)
    assert resampled.fs == 360 and resampled.signal.shape[1] == len(ecg) * 360 // 500
    # the checksum is still checked, on the lead's own samples
    data = bytearray((tmp_path / "mr.dat").read_bytes())
    data[300] ^= 0x0F
    (tmp_path / "mr.dat").write_bytes(bytes(data))
    with pytest.raises(Exception, match="checksum"):
        read_record(tmp_path / "mr", lead="MCL1")


@pytest.mark.slow
@pytest.mark.parametrize("entry, starts", [("predict", "ecg-predict: classify every beat"),
                                           ("evaluate", "ecg-evaluate: score a checkpoint"),
                                           ("export", "ecg-export: export a checkpoint")])  # fmt: skip
def test_each_command_s_help_says_what_it_does_and_not_the_training_groups(entry, starts):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", f"ecg_lightning.{entry}", "--help"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith(starts) and "Usage: " in done.stdout
    assert "hparams_search" not in done.stdout and "experiment" not in done.stdout.split("Settings")[0]


@pytest.mark.slow
def test_a_run_folder_that_is_a_file_is_one_line(tmp_path):
    import subprocess
    import sys

    taken = tmp_path / "taken"
    taken.write_text("x")
    done = subprocess.run([sys.executable, "-m", "ecg_lightning.predict", "record=r", f"hydra.run.dir={taken}"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and f"hydra.run.dir={taken} is a file" in done.stderr
    assert "Traceback" not in done.stderr and taken.read_text() == "x"


def test_the_command_line_is_checked_before_hydra_starts(tmp_path, capsys):
    """An unquoted path with spaces and a misspelled Trainer argument (with or without Hydra's '+' advice) get one
    line naming the fix; real arguments, flags and deletions pass."""
    from ecg_lightning.errors import check_command_line

    def refused(argv, trainer=False):
        with pytest.raises(SystemExit) as stop:
            check_command_line(argv, trainer)
        assert stop.value.code == 1
        return capsys.readouterr().err

    assert 'quote the whole setting for the shell: "record=/data/my records/100"' in refused(
        ["record=/data/my", "records/100"]
    )
    for typo in ("trainer.max_epoch=1", "+trainer.max_epoch=1"):
        assert "trainer.max_epoch (did you mean trainer.max_epochs?): not an argument" in refused([typo], True)
    file = tmp_path / "f"
    file.write_text("")
    assert "is a file; give a folder" in refused([f"hydra.run.dir={file}"])
    check_command_line(["-m", "trainer.max_epochs=1", "+trainer.detect_anomaly=true", "~data.band", "seed=1"], True)
    check_command_line(["--cfg", "job", "trainer.max_epoch=1"])  # predict/evaluate/export have no trainer group


def test_a_record_name_wfdb_cannot_read_is_named_as_such(tmp_path, capsys):
    """wfdb drops the 'é' of 'réc100' and then reports rc100.dat missing: say what is wrong instead; and Hydra's
    lexer needs such a value quoted (the preflight says how)."""
    from ecg_lightning.data.records import RecordError, read_record
    from ecg_lightning.errors import check_command_line

    wfdb.wrsamp("réc100", fs=360, units=["mV"], sig_name=["MLII"], p_signal=np.zeros((720, 1)), fmt=["16"],
                write_dir=str(tmp_path))  # fmt: skip
    with pytest.raises(RecordError, match=r"réc100.hea: the record name 'réc100' has characters WFDB does not read"):
        read_record(tmp_path / "réc100")
    with pytest.raises(SystemExit):
        check_command_line([f"record={tmp_path / 'réc100'}"])
    assert f"\"record='{tmp_path / 'réc100'}'\"" in capsys.readouterr().err
    check_command_line([f"record='{tmp_path / 'réc100'}'"])
