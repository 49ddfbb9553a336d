"""Using trained models: resume, evaluate, predict on new recordings, and clear errors for bad input."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from hydra.core.hydra_config import HydraConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import compose_config, train_overrides, write_record
from ecg_lightning.checkpoint import CheckpointError
from ecg_lightning.data.records import RecordError
from ecg_lightning.evaluate import evaluate
from ecg_lightning.predict import predict_record
from ecg_lightning.train import train

QUICK = ["trainer.limit_train_batches=4", "seed=3"]


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def trained(tiny_db, tmp_path_factory) -> Path:
    """A checkpoint of the study CNN trained for one short epoch on the tiny database."""
    tmp = tmp_path_factory.mktemp("trained")
    train(compose_config("train", tmp / "run", [*train_overrides(tiny_db, tmp), "trainer.max_epochs=1", *QUICK]))
    HydraConfig.instance().cfg = None
    return tmp / "run" / "checkpoints" / "last.ckpt"


def test_training_stores_its_config_and_validation_figures(trained):
    ckpt = torch.load(trained, weights_only=False)
    assert ckpt["ecg_lightning_config"]["model"]["net"]["_target_"] == "ecg_lightning.models.StudyCNN"
    run = trained.parent.parent
    assert (run / "val_confusion_matrix.png").stat().st_size > 0 and (run / "val_roc.png").stat().st_size > 0
    events = EventAccumulator(str(run))
    events.Reload()
    assert {"val/confusion_matrix", "val/roc"} <= set(events.Tags()["images"])


def test_resume_ends_where_an_uninterrupted_run_ends(tiny_db, tmp_path):
    whole = tmp_path / "whole"
    train(compose_config("train", whole, [*train_overrides(tiny_db, tmp_path), "trainer.max_epochs=2", *QUICK]))
    part = tmp_path / "part"
    train(compose_config("train", part, [*train_overrides(tiny_db, tmp_path), "trainer.max_epochs=1", *QUICK]))
    last = part / "checkpoints" / "last.ckpt"
    resumed = train(compose_config("train", tmp_path / "elsewhere", [
        *train_overrides(tiny_db, tmp_path), "trainer.max_epochs=2", *QUICK, f"ckpt_path={last}"]))
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(last, weights_only=False)  # the resumed run writes into the interrupted run's folder
    assert a["epoch"] == b["epoch"] == 1 and a["global_step"] == b["global_step"] == 8
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)
    whole_report = json.loads((whole / "metrics.json").read_text())
    part_report = json.loads((part / "metrics.json").read_text())
    assert part_report["best"] == pytest.approx(whole_report["best"])
    assert part_report["final"]["val/accuracy"] == pytest.approx(whole_report["final"]["val/accuracy"])
    assert resumed["val/balanced_accuracy_best"] == pytest.approx(whole_report["best"]["val/balanced_accuracy"])
    events = EventAccumulator(str(part))  # the same TensorBoard run holds both epochs
    events.Reload()
    assert sorted({e.step for e in events.Scalars("val/accuracy")}) == sorted(
        {e.step for e in EventAccumulator(str(whole)).Reload().Scalars("val/accuracy")})


def test_evaluate_writes_a_consistent_report(trained, tiny_db, tmp_path):
    out = tmp_path / "eval"
    result = evaluate(compose_config("evaluate", out, [f"ckpt_path={trained}", f"data.root={tiny_db}",
                                                      f"paths.cache_dir={tmp_path / 'cache'}"]))
    saved = json.loads((out / "metrics.json").read_text())
    (tn, fp), (fn, tp) = saved["confusion_matrix"]
    assert tn + fp + fn + tp == saved["beats"] == result["beats"]
    assert saved["accuracy"] == pytest.approx((tn + tp) / saved["beats"], abs=1e-6)
    assert saved["sensitivity"] == pytest.approx(tp / max(tp + fn, 1), abs=1e-6)
    assert saved["balanced_accuracy"] == pytest.approx((saved["sensitivity"] + saved["specificity"]) / 2, abs=1e-6)
    rows = list(csv.DictReader((out / "per_record.csv").open()))
    assert [r["record"] for r in rows] == saved["records"] and len(rows) >= 3
    assert sum(int(r["beats"]) for r in rows) == saved["beats"]
    types = {r["symbol"]: r for r in csv.DictReader((out / "per_symbol.csv").open())}
    assert types["N"]["label"] == "normal" and sum(int(r["beats"]) for r in types.values()) == saved["beats"]
    called = sum(float(r["called_abnormal"]) * int(r["beats"]) for r in types.values())
    assert called == pytest.approx(fp + tp, abs=0.01 * len(types))
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0
    assert list(out.glob("events.out.tfevents.*"))
    # another side of the split, chosen by a data override
    train_side = evaluate(compose_config("evaluate", tmp_path / "eval2", [
        f"ckpt_path={trained}", f"data.root={tiny_db}", "side=train", f"paths.cache_dir={tmp_path / 'c'}"]))
    assert not set(train_side["records"]) & set(saved["records"])


def test_ensemble_averages_the_models(trained, tiny_db, tmp_path):
    common = [f"data.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    single = evaluate(compose_config("evaluate", tmp_path / "one", [f"ckpt_path={trained}", *common]))
    twice = evaluate(compose_config("evaluate", tmp_path / "two", [f"ckpt_path=[{trained},{trained}]", *common]))
    assert twice["auroc"] == pytest.approx(single["auroc"]) and twice["checkpoint"] == [str(trained)] * 2
    other = tmp_path / "other"
    train(compose_config("train", other, [*train_overrides(tiny_db, tmp_path, window_s=0.4), "trainer.max_epochs=1",
                                          *QUICK]))
    with pytest.raises(CheckpointError, match="other data.window_s"):
        evaluate(compose_config("evaluate", tmp_path / "mixed", [
            f"ckpt_path=[{trained},{other / 'checkpoints' / 'last.ckpt'}]", *common]))


def test_predict_on_an_unannotated_250_hz_record(trained, tmp_path):
    write_record(tmp_path, "holter", 0.2, np.random.default_rng(9), fs=250, duration_s=30)
    (tmp_path / "holter.atr").unlink()
    out = tmp_path / "pred"
    summary = predict_record(compose_config("predict", out, [f"ckpt_path={trained}", f"record={tmp_path / 'holter'}",
                                                            "length_s=10"]))
    assert summary["beat_source"] == "xqrs" and summary["fs"] == 250
    rows = list(csv.DictReader((out / "beats.csv").open()))
    assert len(rows) == summary["beats"] >= 30  # beats every 0.8 s, edge beats skipped
    samples = np.array([int(r["sample"]) for r in rows])
    true_beats = np.arange(int(0.3 * 250), 30 * 250, int(288 * 250 / 360))
    assert np.abs(samples[:, None] - true_beats[None]).min(axis=1).max() <= 5  # at the QRS, in 250 Hz samples
    assert all(0 <= float(r["prob_abnormal"]) <= 1 and r["reference"] == "" for r in rows)
    assert summary["abnormal"] == sum(r["predicted"] == "abnormal" for r in rows)
    assert (out / "strip.png").stat().st_size > 0 and "reference" not in summary


def test_predict_with_annotations_reports_the_reference(trained, tiny_db, tmp_path):
    summary = predict_record(compose_config("predict", tmp_path, [f"ckpt_path={trained}", f"record={tiny_db / '108'}"]))
    rows = list(csv.DictReader((tmp_path / "beats.csv").open()))
    ann = wfdb.rdann(str(tiny_db / "108"), "atr")
    assert summary["beat_source"] == "annotation"
    assert {int(r["sample"]) for r in rows} <= set(ann.sample.tolist())
    assert {r["symbol"] for r in rows} <= {"N", "V", "A", "L", "/"}
    assert summary["reference"]["beats"] == len(rows)


# ---- bad input: one clear error naming the file, and no half-written output ----

def predict_error(trained, tmp_path, record, **extra) -> str:
    out = tmp_path / "out"
    overrides = [f"ckpt_path={trained}", f"record={record}", *[f"{k}={v}" for k, v in extra.items()]]
    with pytest.raises((RecordError, CheckpointError)) as err:
        predict_record(compose_config("predict", out, overrides))
    assert not [p for p in out.glob("*") if p.name in {"beats.csv", "summary.json", "strip.png"}]
    return str(err.value)


def test_missing_and_foreign_checkpoints(tmp_path, tiny_db):
    message = predict_error(tmp_path / "nope.ckpt", tmp_path, tiny_db / "100")
    assert "nope.ckpt: checkpoint not found" in message
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    assert "not an ecg-lightning checkpoint" in predict_error(tmp_path / "other.ckpt", tmp_path, tiny_db / "100")


def test_checkpoint_of_a_different_model(trained, tiny_db, tmp_path):
    with pytest.raises(CheckpointError, match=r"last\.ckpt: weights do not fit the configured model .*StudyCNNLSTM"):
        evaluate(compose_config("evaluate", tmp_path, [f"ckpt_path={trained}", "model=cnn_lstm",
                                                       f"data.root={tiny_db}"]))
    assert not (tmp_path / "metrics.json").exists()


def test_bad_records(trained, tmp_path):
    assert "header not found" in predict_error(trained, tmp_path, tmp_path / "missing")
    rng = np.random.default_rng(11)
    write_record(tmp_path, "nodat", 0.1, rng)
    (tmp_path / "nodat.dat").unlink()
    assert "nodat.dat" in predict_error(trained, tmp_path, tmp_path / "nodat")
    write_record(tmp_path, "trunc", 0.1, rng)
    (tmp_path / "trunc.dat").write_bytes((tmp_path / "trunc.dat").read_bytes()[:999])
    assert "trunc" in predict_error(trained, tmp_path, tmp_path / "trunc")
    write_record(tmp_path, "short", 0.1, rng, duration_s=0.8)
    assert "shorter than one 1 s window" in predict_error(trained, tmp_path, tmp_path / "short")
    write_record(tmp_path, "nobeats", 0.1, rng)
    wfdb.wrann("nobeats", "atr", np.array([10, 500]), symbol=["+", "~"], write_dir=str(tmp_path))
    assert "no beat annotations" in predict_error(trained, tmp_path, tmp_path / "nobeats")
    signal = rng.normal(size=(3600, 1))
    signal[5:9] = np.nan
    wfdb.wrsamp("nan", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"], write_dir=str(tmp_path))
    assert "NaN" in predict_error(trained, tmp_path, tmp_path / "nan")


def test_cli_prints_one_clear_line_and_fails(tmp_path, tiny_db):
    env = {**os.environ, "MITDB_DIR": str(tmp_path / "empty")}
    done = subprocess.run([sys.executable, "-m", "ecg_lightning.predict", f"ckpt_path={tmp_path / 'x.ckpt'}",
                           f"record={tiny_db / '100'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1
    assert "x.ckpt: checkpoint not found" in done.stderr + done.stdout and "Traceback" not in done.stderr
    offline = subprocess.run([sys.executable, "-m", "ecg_lightning.train", "data.download=false", "debug=fdr",
                              f"hydra.run.dir={tmp_path / 'run2'}"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert offline.returncode == 1 and "No WFDB records in" in offline.stderr + offline.stdout
    assert "Traceback" not in offline.stderr
