"""Using trained models: resume, evaluate, predict on new recordings, and clear errors for bad input."""

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
import yaml
from conftest import compose_config, database_spec, train_overrides, write_record
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from sklearn.metrics import (
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ecg_lightning import report
from ecg_lightning.checkpoint import CONFIG_KEY, CheckpointError, build_model, checkpoint_config
from ecg_lightning.data.records import RecordError, list_records
from ecg_lightning.errors import ConfigError
from ecg_lightning.evaluate import evaluate
from ecg_lightning.predict import predict_record
from ecg_lightning.train import train

QUICK = ["trainer.limit_train_batches=4", "seed=3"]
# three full epochs on the learnable synthetic database: enough for the study CNN to tell the classes apart
LEARN = ["trainer.max_epochs=3", "seed=3"]


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def trained(tiny_db, tmp_path_factory) -> Path:
    """A checkpoint of the study CNN trained for three epochs on the tiny (learnable) database."""
    tmp = tmp_path_factory.mktemp("trained")
    train(compose_config("train", tmp / "run", [*train_overrides(tiny_db, tmp), *LEARN]))
    HydraConfig.instance().cfg = None
    return tmp / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def trained_aami(tiny_db, tmp_path_factory) -> Path:
    """A 5-class (AAMI) study CNN trained on the benchmark split of the tiny database (DS1 records, DS2 as test)."""
    tmp = tmp_path_factory.mktemp("trained_aami")
    train(
        compose_config(
            "train",
            tmp / "run",
            [
                *train_overrides(tiny_db, tmp),
                *LEARN,
                "trainer.max_epochs=6",
                "data.labels=aami",
                "data.split=ds1ds2",
                "data.pad_edges=true",
                "data.lead=[MLII,V1]",
                "monitor=val/accuracy",
            ],
        )
    )
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


def val_curve(run: Path, name: str = "val/balanced_accuracy") -> list[float]:
    """The per-epoch values of a validation metric, read back from the run's TensorBoard events."""
    events = EventAccumulator(str(run))
    events.Reload()
    return [e.value for e in sorted(events.Scalars(name), key=lambda e: e.step)]


def test_training_learns_and_keeps_its_best_epoch(trained, tiny_db, tmp_path):
    run = trained.parent.parent
    curve = val_curve(run)
    report = json.loads((run / "metrics.json").read_text())
    best = int(np.argmax(curve))
    assert len(curve) == 3 and max(curve) > 0.8 and curve[0] < max(curve) - 0.1  # it learns, and the metric moves
    assert report["best"]["epoch"] == best and report["best"]["val/balanced_accuracy"] == pytest.approx(max(curve))
    assert report["final"]["val/balanced_accuracy_best"] == pytest.approx(max(curve))
    assert report["final"]["val/balanced_accuracy"] == pytest.approx(curve[-1])
    best_ckpt = run / "checkpoints" / f"epoch_{best:03d}.ckpt"
    assert [p.name for p in (run / "checkpoints").glob("epoch_*.ckpt")] == [best_ckpt.name]
    again = evaluate(
        compose_config(
            "evaluate",
            tmp_path / "e",
            [f"ckpt_path={best_ckpt}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'c'}"],
        )
    )
    assert again["balanced_accuracy"] == pytest.approx(max(curve), abs=1e-6)


def test_resume_ends_where_an_uninterrupted_run_ends(tiny_db, tmp_path, caplog):
    whole = tmp_path / "whole"
    train(compose_config("train", whole, [*train_overrides(tiny_db, tmp_path), *LEARN]))
    part = tmp_path / "part"
    train(compose_config("train", part, [*train_overrides(tiny_db, tmp_path), *LEARN, "trainer.max_epochs=1"]))
    best_before = json.loads((part / "metrics.json").read_text())["best"]["val/balanced_accuracy"]
    last = part / "checkpoints" / "last.ckpt"
    (part / "FAILED.txt").write_text("This run did not finish: interrupted (exit status 143)\n")  # as a preempted run
    (tmp_path / "elsewhere" / ".hydra").mkdir(parents=True)  # what Hydra makes for the resuming invocation
    (tmp_path / "elsewhere" / "train.log").write_text("")
    with caplog.at_level(logging.INFO):  # as in a Hydra run
        resumed = train(
            compose_config(
                "train", tmp_path / "elsewhere", [*train_overrides(tiny_db, tmp_path), *LEARN, f"ckpt_path={last}"]
            )
        )
    assert resumed["val/balanced_accuracy_best"] > best_before + 0.1  # a real improvement after the resume
    assert not (tmp_path / "elsewhere").exists()  # no stray run folder
    assert "Resuming" in (part / "train.log").read_text()  # the resumed part's log is in the interrupted run's
    assert not (part / "FAILED.txt").exists()  # finished now: no longer marked
    a = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(last, weights_only=False)  # the resumed run writes into the interrupted run's folder
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
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
        {e.step for e in EventAccumulator(str(whole)).Reload().Scalars("val/accuracy")}
    )


def test_a_resumed_run_with_weight_averaging_ends_with_the_uninterrupted_runs_average(tiny_db, tmp_path):
    """``callbacks=ema``: the average (what checkpoints serve) and the raw weights both continue across a resume."""
    ema = [*train_overrides(tiny_db, tmp_path), *LEARN, "callbacks=ema"]
    train(compose_config("train", tmp_path / "whole", ema))
    part = tmp_path / "part"
    train(compose_config("train", part, [*ema, "trainer.max_epochs=1"]))
    last = part / "checkpoints" / "last.ckpt"
    train(compose_config("train", tmp_path / "elsewhere", [*ema, f"ckpt_path={last}"]))
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.ckpt", weights_only=False)
    b = torch.load(last, weights_only=False)
    assert a["global_step"] == b["global_step"] > 0
    assert not all(torch.equal(a["state_dict"][k], a["current_model_state"][k]) for k in a["state_dict"])
    for weights in ("state_dict", "current_model_state"):
        for key, value in a[weights].items():
            torch.testing.assert_close(b[weights][key], value, msg=f"{weights}: {key}")


def test_evaluate_writes_a_consistent_report(trained, tiny_db, tmp_path):
    out = tmp_path / "eval"
    result = evaluate(
        compose_config(
            "evaluate",
            out,
            [f"ckpt_path={trained}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"],
        )
    )
    saved = json.loads((out / "metrics.json").read_text())
    (tn, fp), (fn, tp) = saved["confusion_matrix"]
    assert tn + fp + fn + tp == saved["beats"] == result["beats"]
    assert saved["accuracy"] == pytest.approx((tn + tp) / saved["beats"], abs=1e-6)
    assert saved["sensitivity"] == pytest.approx(tp / max(tp + fn, 1), abs=1e-6)
    assert saved["balanced_accuracy"] == pytest.approx((saved["sensitivity"] + saved["specificity"]) / 2, abs=1e-6)
    rows = list(csv.DictReader((out / "per_record.csv").open()))
    assert [r["record"] for r in rows] == saved["records"] and len(rows) >= 3
    assert {r["database"] for r in rows} == {"mitdb"} and list(rows[0])[:3] == ["record", "database", "beats"]
    assert sum(int(r["beats"]) for r in rows) == saved["beats"]
    types = {r["symbol"]: r for r in csv.DictReader((out / "per_symbol.csv").open())}
    assert types["N"]["class"] == "normal" and sum(int(r["beats"]) for r in types.values()) == saved["beats"]
    called = sum(float(r["called_abnormal"]) * int(r["beats"]) for r in types.values())
    assert called == pytest.approx(fp + tp, abs=0.01 * len(types))
    assert (out / "confusion_matrix.png").stat().st_size > 0 and (out / "roc.png").stat().st_size > 0
    assert list(out.glob("events.out.tfevents.*"))
    hparams = yaml.safe_load((out / "hparams.yaml").read_text())  # what was scored, with what
    assert hparams["checkpoint"] == str(trained) and hparams["side"] == "val"
    assert hparams["data"]["window_s"] == 0.5 and list(hparams["data"]["catalog"]) == ["mitdb"]
    # another side of the split, chosen by a data override
    train_side = evaluate(
        compose_config(
            "evaluate",
            tmp_path / "eval2",
            [
                f"ckpt_path={trained}",
                f"data.catalog.mitdb.root={tiny_db}",
                "side=train",
                f"paths.cache_dir={tmp_path / 'c'}",
            ],
        )
    )
    assert not set(train_side["records"]) & set(saved["records"])


def probabilities_of(ckpt: Path, tiny_db: Path, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """P(abnormal) and labels of the validation windows, computed here from the checkpoint's own config."""
    blob = torch.load(ckpt, weights_only=False)
    run = checkpoint_config(blob)
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(cache)
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    return report.predict_proba(build_model(blob, run, ckpt), dm.loader(dm.data_val))


def test_evaluate_refuses_record_norm_for_a_network_without_batch_norm(trained, tiny_db, tmp_path):
    """``record_norm=true`` reads each record's batch-norm statistics: the study CNN has none, so it is refused by
    name rather than scored as if adapted."""
    overrides = [f"ckpt_path={trained}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'c'}"]
    with pytest.raises(ConfigError, match="without batch-norm layers: leave record_norm=false"):
        evaluate(compose_config("evaluate", tmp_path / "ev", [*overrides, "record_norm=true"]))
    HydraConfig.instance().cfg = None
    with pytest.raises(ConfigError, match="set record_norm=true"):
        evaluate(compose_config("evaluate", tmp_path / "ev1", [*overrides, "record_norm_classes=[abnormal]"]))
    HydraConfig.instance().cfg = None
    assert evaluate(compose_config("evaluate", tmp_path / "ev2", overrides))["record_norm"] is False


def test_evaluate_reads_none_of_the_runs_train_only_databases(trained, tiny_db, tmp_path):
    """A run trained with a train-only database (``data.train_only_databases``, here one this machine lacks) is
    scored on its validation side without reading it, on the same records and beats as the run without it."""
    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    data = ckpt[CONFIG_KEY]["data"]
    data["catalog"]["extra"] = database_spec("svdb", tmp_path / "nowhere", download=False)
    data["databases"], data["train_only_databases"] = [*data["databases"], "extra"], ["extra"]
    with_extra = tmp_path / "with_extra.ckpt"
    torch.save(ckpt, with_extra)
    common = [f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    plain = evaluate(compose_config("evaluate", tmp_path / "plain", [f"ckpt_path={trained}", *common]))
    HydraConfig.instance().cfg = None
    scored = evaluate(compose_config("evaluate", tmp_path / "extra", [f"ckpt_path={with_extra}", *common]))
    assert scored["records"] == plain["records"] and scored["beats"] == plain["beats"]


def test_ensemble_averages_two_different_models(trained, tiny_db, tmp_path):
    common = [f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    second = tmp_path / "second"
    train(compose_config("train", second, [*train_overrides(tiny_db, tmp_path), *LEARN, "seed=11"]))
    other_ckpt = second / "checkpoints" / "last.ckpt"
    (pa, y), (pb, _) = (probabilities_of(c, tiny_db, tmp_path / "cache") for c in (trained, other_ckpt))
    assert np.abs(pa - pb).max() > 0.05  # two different models
    both = evaluate(compose_config("evaluate", tmp_path / "two", [f"ckpt_path=[{trained},{other_ckpt}]", *common]))
    mean = (pa + pb) / 2
    assert both["auroc"] == pytest.approx(roc_auc_score(y, mean), abs=1e-6)
    assert both["confusion_matrix"] == confusion_matrix(y, mean >= 0.5).tolist()
    assert both["checkpoint"] == [str(trained), str(other_ckpt)]
    other = tmp_path / "other"
    train(
        compose_config(
            "train", other, [*train_overrides(tiny_db, tmp_path, window_s=0.4), "trainer.max_epochs=1", *QUICK]
        )
    )
    with pytest.raises(CheckpointError, match="other data.window_s"):
        evaluate(
            compose_config(
                "evaluate",
                tmp_path / "mixed",
                [f"ckpt_path=[{trained},{other / 'checkpoints' / 'last.ckpt'}]", *common],
            )
        )


def test_predict_on_an_unannotated_250_hz_record(trained, tmp_path):
    write_record(tmp_path, "holter", 0.2, np.random.default_rng(9), fs=250, duration_s=30)
    (tmp_path / "holter.atr").unlink()
    out = tmp_path / "pred"
    summary = predict_record(
        compose_config("predict", out, [f"ckpt_path={trained}", f"record={tmp_path / 'holter'}", "length_s=10"])
    )
    assert summary["beat_source"] == "detector" and summary["fs"] == 250
    rows = list(csv.DictReader((out / "beats.csv").open()))
    samples = np.array([int(r["sample"]) for r in rows])
    true_beats = np.arange(int(0.3 * 250), 30 * 250, int(288 * 250 / 360))
    assert len(rows) == summary["beats"] == len(true_beats)  # every beat, edge beats included (padded)
    assert np.abs(samples[:, None] - true_beats[None]).min(axis=1).max() <= 0.15 * 250  # AAMI's 150 ms match window
    assert [r["padded"] for r in rows][:1] == ["1"] and summary["padded_near_edges"] >= 2  # the first beat, at 0.3 s
    times = np.array([float(r["time_s"]) for r in rows])
    np.testing.assert_allclose(times, samples / 250, atol=0.01)  # seconds, whatever rate the model runs at
    assert all(r["reference"] == "" for r in rows)
    np.testing.assert_allclose([float(r["prob_normal"]) + float(r["prob_abnormal"]) for r in rows], 1.0, atol=2e-5)
    assert summary["abnormal"] == sum(r["predicted"] == "abnormal" for r in rows)
    assert (out / "strip.png").stat().st_size > 0 and "reference" not in summary
    assert summary["noisy_share"] == 0 and {r["noisy"] for r in rows} == {"0"}  # an ECG: nothing flagged


def test_a_recording_of_noise_is_flagged_not_called_normal(trained, tmp_path, caplog):
    """Gaussian noise (electrodes off): the detector finds "beats"; they are flagged noisy, the summary counts them
    as noisy instead of as normal beats and gives the share, the log and report.html say so."""
    rng = np.random.default_rng(9)
    wfdb.wrsamp("noise", fs=360, units=["mV", "mV"], sig_name=["MLII", "V1"], p_signal=rng.normal(size=(360 * 60, 2)),
                fmt=["16", "16"], write_dir=str(tmp_path))  # fmt: skip
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING):
        summary = predict_record(
            compose_config("predict", out, [f"ckpt_path={trained}", f"record={tmp_path / 'noise'}"])
        )
    rows = list(csv.DictReader((out / "beats.csv").open()))
    assert len(rows) > 20 and summary["noisy_share"] == 1.0 and summary["noisy_beats"] == len(rows)
    assert {r["noisy"] for r in rows} == {"1"}  # each beat flagged beside the model's call on it
    assert sum(summary["predicted"].values()) == 0 and summary["abnormal"] == 0  # no beat counted as normal (or any)
    assert "100% of the recording looks like noise" in caplog.text
    page = (out / "report.html").read_text()  # the page's data, and the line its header draws from it
    assert '"noisy_share":1.0' in page and "% of the recording looks like noise" in page


def test_predict_with_annotations_reports_the_reference(trained, tiny_db, tmp_path):
    summary = predict_record(compose_config("predict", tmp_path, [f"ckpt_path={trained}", f"record={tiny_db / '108'}"]))
    rows = list(csv.DictReader((tmp_path / "beats.csv").open()))
    ann = wfdb.rdann(str(tiny_db / "108"), "atr")
    assert summary["beat_source"] == "annotation"
    assert {int(r["sample"]) for r in rows} <= set(ann.sample.tolist())
    assert {r["symbol"] for r in rows} <= {"N", "V", "A", "L", "/", "F"}
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
    # a random file renamed .ckpt: what it may be and what to give, not torch's advice to load it unsafely
    (tmp_path / "random.ckpt").write_bytes(np.random.default_rng(0).bytes(3000))
    message = predict_error(tmp_path / "random.ckpt", tmp_path, tiny_db / "100")
    assert "random.ckpt: not a readable PyTorch checkpoint" in message and "give a .ckpt that" in message
    assert "weights_only" not in message and "issue" not in message
    # a checkpoint name that is not there: the folder's checkpoints are listed, the best one named
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    for name in ("epoch_007.ckpt", "last.ckpt"):
        (run / name).write_bytes(b"")
    message = predict_error(run / "best.ckpt", tmp_path, tiny_db / "100")
    assert f"best.ckpt: checkpoint not found; {run} has epoch_007.ckpt (best on validation), last.ckpt" in message
    assert "(best on validation), last.ckpt" in predict_error(tmp_path / "run", tmp_path, tiny_db / "100")


def test_checkpoint_of_a_different_model(trained, tiny_db, tmp_path):
    with pytest.raises(CheckpointError, match=r"last\.ckpt: weights do not fit the configured model .*StudyCNNLSTM"):
        evaluate(
            compose_config(
                "evaluate", tmp_path, [f"ckpt_path={trained}", "model=cnn_lstm", f"data.catalog.mitdb.root={tiny_db}"]
            )
        )
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


@pytest.mark.slow  # subprocesses: ~20 s
def test_cli_prints_one_clear_line_and_fails(tmp_path, tiny_db):
    env = {**os.environ, "MITDB_DIR": str(tmp_path / "empty")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecg_lightning.predict",
            f"ckpt_path={tmp_path / 'x.ckpt'}",
            f"record={tiny_db / '100'}",
            f"hydra.run.dir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "x.ckpt: checkpoint not found" in done.stderr + done.stdout and "Traceback" not in done.stderr
    offline = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecg_lightning.train",
            "data.catalog.mitdb.download=false",
            "debug=fdr",
            f"hydra.run.dir={tmp_path / 'run2'}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert offline.returncode == 1 and "No WFDB records in" in offline.stderr + offline.stdout
    assert "Traceback" not in offline.stderr


# ---- thresholds, sides, overrides, per-record and per-symbol values ----


def test_threshold_in_evaluate_and_predict(trained, tiny_db, tmp_path):
    common = [f"ckpt_path={trained}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'c'}"]
    everything = evaluate(compose_config("evaluate", tmp_path / "lo", [*common, "threshold=0.0"]))
    default = evaluate(compose_config("evaluate", tmp_path / "mid", common))
    strict = evaluate(compose_config("evaluate", tmp_path / "hi", [*common, "threshold=0.999"]))
    (tn, fp), (fn, tp) = everything["confusion_matrix"]
    assert tn == fn == 0 and everything["sensitivity"] == 1.0 and everything["specificity"] == 0.0
    called = [np.array(r["confusion_matrix"])[:, 1].sum() for r in (everything, default, strict)]
    assert called[0] > called[1] > called[2]  # fewer beats called abnormal as the threshold rises
    assert default["threshold"] == 0.5 and strict["specificity"] >= default["specificity"]
    summary = predict_record(
        compose_config(
            "predict", tmp_path / "p", [f"ckpt_path={trained}", f"record={tiny_db / '108'}", "threshold=0.0"]
        )
    )
    assert summary["abnormal"] == summary["beats"] and summary["threshold"] == 0.0
    # a threshold that is not a probability is refused, naming it, in evaluate and predict alike
    with pytest.raises(ConfigError, match=r"threshold=1.5: a probability, must be between 0 and 1"):
        evaluate(compose_config("evaluate", tmp_path / "x", [*common, "threshold=1.5"]))
    with pytest.raises(ConfigError, match=r"threshold=-0.1: a probability"):
        predict_record(
            compose_config(
                "predict", tmp_path / "y", [f"ckpt_path={trained}", f"record={tiny_db / '108'}", "threshold=-0.1"]
            )
        )


def test_per_record_and_per_symbol_values_match_the_beats(trained, tiny_db, tmp_path):
    """evaluate's tables, recomputed by hand from predict's per-beat rows of the same record."""
    out = tmp_path / "eval"
    evaluate(
        compose_config(
            "evaluate",
            out,
            [
                f"ckpt_path={trained}",
                f"data.catalog.mitdb.root={tiny_db}",
                "side=all",
                f"paths.cache_dir={tmp_path / 'c'}",
            ],
        )
    )
    per_record = {r["record"]: r for r in csv.DictReader((out / "per_record.csv").open())}
    assert sorted(per_record) == sorted(list_records(tiny_db))  # side=all: every record
    for name in ("106", "109"):
        predict_record(compose_config("predict", tmp_path / name, [f"ckpt_path={trained}", f"record={tiny_db / name}"]))
        rows = [r for r in csv.DictReader((tmp_path / name / "beats.csv").open()) if r["padded"] == "0"]
        row = per_record[name]
        abnormal = [r for r in rows if r["reference"] == "abnormal"]
        assert int(row["beats"]) == len(rows) and int(row["n_abnormal"]) == len(abnormal)
        assert float(row["abnormal_fraction"]) == pytest.approx(len(abnormal) / len(rows), abs=1e-4)
        assert float(row["se_abnormal"]) == pytest.approx(
            sum(r["predicted"] == "abnormal" for r in abnormal) / len(abnormal), abs=1e-4
        )
        assert float(row["accuracy"]) == pytest.approx(
            sum(r["predicted"] == r["reference"] for r in rows) / len(rows), abs=1e-4
        )
    symbols = {r["symbol"]: r for r in csv.DictReader((out / "per_symbol.csv").open())}
    assert {s: symbols[s]["class"] for s in symbols} == {"N": "normal", **{s: "abnormal" for s in "VAL/F"}}
    for s, row in symbols.items():
        assert float(row["called_normal"]) + float(row["called_abnormal"]) == pytest.approx(1.0, abs=2e-4)
        right = row["called_abnormal"] if s != "N" else row["called_normal"]
        assert float(row["accuracy"]) == pytest.approx(float(right))


def test_data_overrides_in_evaluate_change_the_split(trained, tiny_db, tmp_path):
    common = [f"ckpt_path={trained}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'c'}"]
    default = evaluate(compose_config("evaluate", tmp_path / "a", common))
    study = evaluate(compose_config("evaluate", tmp_path / "b", [*common, "data.split=seed"]))
    seed_fold = evaluate(
        compose_config("evaluate", tmp_path / "c", [*common, "data.split=kfold", "data.fold=1", "data.n_folds=3"])
    )
    blob = torch.load(trained, weights_only=False)
    run = checkpoint_config(blob, ["data.split=seed"])
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(tmp_path / "c")
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    assert study["records"] == sorted(dm.val_records) and len(study["records"]) == 3
    assert default["records"] != study["records"] or default["records"] != seed_fold["records"]
    assert len(seed_fold["records"]) in (3, 4, 5) and seed_fold["records"] != default["records"]
    # a deletion ("~data.key") reaches the checkpoint's config, as on a training command line; a key it lacks is named
    from ecg_lightning.evaluate import data_overrides

    cfg = compose_config("evaluate", tmp_path / "d", [*common, "~data.templates"])
    assert "~data.templates" in data_overrides(cfg)
    run = checkpoint_config(blob, ["~data.templates", "data.split=seed"])
    assert "templates" not in run.data and run.data.split == "seed" and "templates" in checkpoint_config(blob).data
    with pytest.raises(CheckpointError, match="~data.nope: the checkpoint's config has no data.nope"):
        checkpoint_config(blob, ["~data.nope"])


def test_predict_with_annotation_null_detects_the_beats(trained, tiny_db, tmp_path):
    summary = predict_record(
        compose_config("predict", tmp_path, [f"ckpt_path={trained}", f"record={tiny_db / '105'}", "annotation=null"])
    )
    assert summary["beat_source"] != "annotation" and "reference" not in summary
    rows = list(csv.DictReader((tmp_path / "beats.csv").open()))
    assert all(r["reference"] == "" and r["symbol"] == "" for r in rows)


# ---- the AAMI benchmark path: 5 classes, DS1 -> DS2 ----


def evaluate_test_side(ckpt: Path, tiny_db: Path, tmp_path: Path, out: Path) -> dict:
    overrides = [
        f"ckpt_path={ckpt}",
        f"data.catalog.mitdb.root={tiny_db}",
        "side=test",
        f"paths.cache_dir={tmp_path / 'c'}",
    ]
    return evaluate(compose_config("evaluate", out, overrides))


def test_aami_training_scores_the_test_set_with_the_best_checkpoint(trained_aami, tiny_db, tmp_path):
    run = trained_aami.parent.parent
    saved = json.loads((run / "metrics.json").read_text())
    best_ckpt = Path(saved["test"]["checkpoint"])
    assert best_ckpt.name == f"epoch_{saved['best']['epoch']:03d}.ckpt"  # chosen on validation (DS1), not on test
    out = tmp_path / "test"
    result = evaluate_test_side(best_ckpt, tiny_db, tmp_path, out)
    assert result["records"] == ["100", "103", "105", "202"]  # DS2 records of the tiny database
    assert result["accuracy"] == pytest.approx(saved["test"]["test/accuracy"], abs=1e-6)
    assert result["jk_index"] == pytest.approx(saved["test"]["test/jk_index"], abs=1e-5)
    assert result["accuracy"] > 0.8 and result["se_V"] > 0.8  # it learned the classes


def test_aami_metrics_agree_with_scikit_learn(trained_aami, tiny_db, tmp_path):
    out = tmp_path / "test"
    result = evaluate_test_side(trained_aami, tiny_db, tmp_path, out)
    cm = np.array(result["confusion_matrix"])
    assert cm.shape == (5, 5) and result["classes"] == ["N", "S", "V", "F", "Q"] and cm.sum() == result["beats"]
    y = np.repeat(np.arange(5), cm.sum(1))  # rebuild (reference, predicted) pairs from the confusion matrix
    pred = np.concatenate([np.repeat(np.arange(5), cm[k]) for k in range(5)])
    labels = list(range(5))
    se = recall_score(y, pred, labels=labels, average=None, zero_division=0)
    ppv = precision_score(y, pred, labels=labels, average=None, zero_division=0)
    for k, c in enumerate("NSVFQ"):
        assert result[f"se_{c}"] == pytest.approx(se[k], abs=1e-6)
        assert result[f"ppv_{c}"] == pytest.approx(ppv[k], abs=1e-6)
        negatives = cm.sum() - cm[k].sum()
        assert result[f"spec_{c}"] == pytest.approx((negatives - (cm[:, k].sum() - cm[k, k])) / negatives, abs=1e-6)
    assert result["kappa"] == pytest.approx(cohen_kappa_score(y, pred), abs=1e-5)
    assert result["macro_f1"] == pytest.approx(
        f1_score(y, pred, labels=labels, average="macro", zero_division=0), abs=1e-6
    )
    j = se[1] + ppv[1] + se[2] + ppv[2]
    assert result["j_index"] == pytest.approx(j, abs=1e-5)
    assert result["jk_index"] == pytest.approx(cohen_kappa_score(y, pred) / 2 + j / 8, abs=1e-5)
    symbols = {r["symbol"]: r["class"] for r in csv.DictReader((out / "per_symbol.csv").open())}
    assert (
        symbols
        == {s: c for s, c in {"N": "N", "L": "N", "A": "S", "V": "V", "F": "F", "/": "Q"}.items() if s in symbols}
        and "V" in symbols
    )
    rows = list(csv.DictReader((out / "per_record.csv").open()))
    assert {"n_S", "se_V", "se_Q"} <= set(rows[0]) and sum(int(r["n_V"]) for r in rows) == cm[2].sum()
    assert (out / "confusion_matrix.png").stat().st_size > 0


def test_aami_predict_gives_every_class_probability(trained_aami, tiny_db, tmp_path):
    summary = predict_record(
        compose_config("predict", tmp_path, [f"ckpt_path={trained_aami}", f"record={tiny_db / '109'}", "length_s=10"])
    )
    rows = list(csv.DictReader((tmp_path / "beats.csv").open()))
    assert summary["classes"] == ["N", "S", "V", "F", "Q"] and summary["leads"] == ["MLII", "V1"]
    probs = np.array([[float(r[f"prob_{c}"]) for c in "NSVFQ"] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=5e-5)
    assert [r["predicted"] for r in rows] == ["NSVFQ"[k] for k in probs.argmax(1)]
    # every beat counted once: in its class, or as noisy (the synthetic records mix five shapes at random, and some
    # of their stretches look like noise to signal_quality)
    assert sum(summary["predicted"].values()) + summary["noisy_beats"] == len(rows) == summary["beats"]
    ann = wfdb.rdann(str(tiny_db / "109"), "atr")
    assert len(rows) == sum(s in "NLAVF/" for s in ann.symbol)  # every beat, edge beats included
    assert {r["reference"] for r in rows} <= set("NSVFQ") and summary["reference"]["classes"] == list("NSVFQ")
    assert (tmp_path / "strip.png").stat().st_size > 0


def test_predict_matches_leads_by_name_and_refuses_other_leads(trained_aami, tmp_path):
    rng = np.random.default_rng(21)
    write_record(tmp_path, "lower", 0.2, rng, sig_name=("ii", "v1"))
    write_record(tmp_path, "chest", 0.2, rng, sig_name=("V5", "V2"))
    ok = predict_record(
        compose_config("predict", tmp_path / "a", [f"ckpt_path={trained_aami}", f"record={tmp_path / 'lower'}"])
    )
    assert ok["leads"] == ["ii", "v1"] and ok["other_lead_than_trained"] == [] and ok["trained_leads"] == ["MLII", "V1"]
    assert ok["leads_seen_in_training"] == [["MLII"], ["V1"]]  # what the training records gave, from the checkpoint
    with pytest.raises(
        RecordError, match=r"trained on \[\['MLII'\], \['V1'\]\] but reads \['V5', 'V2'\].*allow_other_lead"
    ):
        predict_record(
            compose_config("predict", tmp_path / "b", [f"ckpt_path={trained_aami}", f"record={tmp_path / 'chest'}"])
        )
    assert not (tmp_path / "b" / "beats.csv").exists()
    forced = predict_record(
        compose_config(
            "predict",
            tmp_path / "c",
            [f"ckpt_path={trained_aami}", f"record={tmp_path / 'chest'}", "allow_other_lead=true"],
        )
    )
    assert forced["other_lead_than_trained"] == ["MLII->V5", "V1->V2"] and forced["beats"] > 30
    with pytest.raises(RecordError, match=r"V1->v1|MLII->v1"):
        predict_record(
            compose_config(
                "predict", tmp_path / "d", [f"ckpt_path={trained_aami}", "lead=[V1,II]", f"record={tmp_path / 'lower'}"]
            )
        )
    with pytest.raises(RecordError, match="takes 2 lead"):
        predict_record(
            compose_config(
                "predict", tmp_path / "e", [f"ckpt_path={trained_aami}", "lead=II", f"record={tmp_path / 'lower'}"]
            )
        )


def test_lightning_predict_gives_the_report_probabilities(trained, tiny_db, tmp_path):
    import lightning as L

    probs, _ = probabilities_of(trained, tiny_db, tmp_path / "cache")
    blob = torch.load(trained, weights_only=False)
    run = checkpoint_config(blob)
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(tmp_path / "cache")
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    out = L.Trainer(logger=False, enable_progress_bar=False).predict(
        build_model(blob, run, trained), dm.loader(dm.data_val)
    )
    np.testing.assert_allclose(torch.cat(out).numpy(), probs, atol=1e-6)


def test_predict_on_a_folder_and_a_glob_of_records(trained, tmp_path):
    rng = np.random.default_rng(5)
    (tmp_path / "db").mkdir()
    for name in ("r1", "r2", "s1"):
        write_record(tmp_path / "db", name, 0.3, rng, duration_s=20)
    out = tmp_path / "all"
    result = predict_record(compose_config("predict", out, [f"ckpt_path={trained}", f"record={tmp_path / 'db'}"]))
    assert [Path(s["record"]).name for s in result["records"]] == ["r1", "r2", "s1"]
    table = list(csv.DictReader((out / "records.csv").open()))
    assert [r["record"] for r in table] == ["r1", "r2", "s1"] and {r["leads"] for r in table} == {"MLII"}
    for row, summary in zip(table, result["records"]):
        beats = list(csv.DictReader((out / row["record"] / "beats.csv").open()))
        assert int(row["beats"]) == len(beats) == summary["beats"] == 25  # 20 s, a beat every 0.8 s from 0.3 s
        assert int(row["abnormal"]) == sum(b["predicted"] == "abnormal" for b in beats)
        assert (out / row["record"] / "strip.png").is_file()
    some = predict_record(
        compose_config("predict", tmp_path / "some", [f"ckpt_path={trained}", f"record={tmp_path / 'db' / 'r*'}"])
    )
    assert [Path(s["record"]).name for s in some["records"]] == ["r1", "r2"]
    with pytest.raises(RecordError, match="no WFDB records"):
        predict_record(
            compose_config("predict", tmp_path / "none", [f"ckpt_path={trained}", f"record={tmp_path / 'db' / 'x*'}"])
        )
    summary = json.loads((out / "r1" / "summary.json").read_text())
    assert set(summary["seconds"]) == {"read", "beats", "classify", "write"}


def test_leads_seen_in_training_are_accepted_others_flagged():
    from ecg_lightning.predict import lead_mismatch

    seen = [["MLII", "V5"], ["V1", "V2", "V4"]]  # e.g. MIT-BIH DS1 with its fall-backs
    assert lead_mismatch(["MLII", "V1"], ("ii", "V4"), seen) == []
    assert lead_mismatch(["MLII", "V1"], ("MLII", "V6"), seen) == ["V1->V6"]
    assert lead_mismatch(["MLII", "V1"], ("MLII", "MCL1")) == []  # no record of training leads: the configured names
    assert lead_mismatch([0], ("V5",)) == []  # trained by channel index: nothing to compare


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_exported_model_gives_the_checkpoints_probabilities(trained_aami, tiny_db, tmp_path, fmt):
    from ecg_lightning.export import export

    path = export(compose_config("export", tmp_path, [f"ckpt_path={trained_aami}", f"format={fmt}"]))
    spec = json.loads((tmp_path / "preprocessing.json").read_text())
    assert spec["classes"] == list("NSVFQ") and spec["channels"] == 2 and spec["inputs"] == ["x"]
    blob = torch.load(trained_aami, weights_only=False)
    run = checkpoint_config(blob)
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(tmp_path / "cache")
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    x, _ = dm.data_test.__getitems__(list(range(40)))  # real windows of held-out records, edge ones included
    expected = build_model(blob, run, trained_aami).probabilities(build_model(blob, run, trained_aami)(x)).detach()
    if fmt == "torchscript":
        got = torch.jit.load(str(path))(x).detach().numpy()
    else:
        import onnxruntime

        got = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    assert got.shape == (40, 5)


def assert_onnx_gives_the_checkpoints_probabilities(ckpt, path, tiny_db, tmp_path):
    """The exported graph (windows and RR features as two inputs) gives 30 test beats the checkpoint's probabilities."""
    import onnxruntime

    blob = torch.load(ckpt, weights_only=False)
    run = checkpoint_config(blob)
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(tmp_path / "cache")
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    x, rr, _ = dm.data_test.__getitems__(list(range(30)))
    model = build_model(blob, run, ckpt)
    expected = model.probabilities(model(x, rr)).detach().numpy()
    got = onnxruntime.InferenceSession(str(path)).run(None, {"x": x.numpy(), "rr": rr.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_export_of_the_benchmark_model_takes_templates_and_rr(tiny_db, tmp_path):
    """experiment=aami_ds1ds2: two leads plus their templates, and ten RR features, as two inputs."""

    from ecg_lightning.export import export

    train(
        compose_config(
            "train",
            tmp_path / "run",
            [
                *train_overrides(tiny_db, tmp_path, window_s=1.0),
                "experiment=aami_ds1ds2",
                "trainer.max_epochs=1",
                "trainer.limit_train_batches=2",
            ],
        )
    )
    HydraConfig.instance().cfg = None
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path = export(compose_config("export", tmp_path / "onnx", [f"ckpt_path={ckpt}", "format=onnx"]))
    spec = json.loads((tmp_path / "onnx" / "preprocessing.json").read_text())
    assert spec["inputs"] == ["x", "rr"] and spec["channels"] == 4 and len(spec["rr_features"]) == 8
    assert spec["leads_seen_in_training"] == [["MLII"], ["V1"]] and spec["window_samples"] == 720
    assert_onnx_gives_the_checkpoints_probabilities(ckpt, path, tiny_db, tmp_path)


def test_an_exported_mean_of_networks_gives_the_checkpoints_probabilities(tiny_db, tmp_path):
    """The recommended model shipped as three seeds averaged (combine --mean) exports as one ONNX graph."""

    from ecg_lightning.combine import combine_mean
    from ecg_lightning.export import export

    for seed in (1, 2):
        overrides = [*train_overrides(tiny_db, tmp_path, window_s=1.0), "experiment=aami_longest_rr_local_rr"]
        run = compose_config("train", tmp_path / f"runs/{seed}", [*overrides, "trainer.max_epochs=1", f"seed={seed}"])
        train(run)
        HydraConfig.instance().cfg = None
    ckpt = combine_mean([tmp_path / "runs"], tmp_path / "mean.ckpt", [0.0, -1.0, -0.5, 0.0, 0.0])
    path = export(compose_config("export", tmp_path / "onnx", [f"ckpt_path={ckpt}", "format=onnx"]))
    assert_onnx_gives_the_checkpoints_probabilities(ckpt, path, tiny_db, tmp_path)
    assert "record_decision" not in json.loads((tmp_path / "onnx" / "preprocessing.json").read_text())
    # a model deciding S relative to each record: the graph decides beat by beat, the sidecar says what to add
    relative = combine_mean([tmp_path / "runs"], tmp_path / "rel.ckpt", [0.0, -6.0, -0.5, 0.0, 0.0], relative_s=True)
    export(compose_config("export", tmp_path / "rel", [f"ckpt_path={relative}", "format=onnx"]))
    spec = json.loads((tmp_path / "rel" / "preprocessing.json").read_text())
    assert "relative_to_records" in spec["record_decision"] and spec["class_bias"] == [0.0, -6.0, -0.5, 0.0, 0.0]
    assert spec["quantile"] == 0.5


def test_resume_from_a_truncated_checkpoint_fails_before_writing_anything(tiny_db, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match=r"last.ckpt: not a readable PyTorch checkpoint"):
        train(
            compose_config(
                "train",
                tmp_path / "new",
                [*train_overrides(tiny_db, tmp_path), f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"],
            )
        )
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"] and not (tmp_path / "new").exists()


def test_strip_length_must_be_positive_and_a_long_one_is_the_whole_record(trained, tiny_db, tmp_path):
    for length in ("0", "-5"):
        message = predict_error(trained, tmp_path, tiny_db / "100", length_s=length)
        assert f"length_s={float(length)}" in message or f"length_s={length}" in message
    for length in ("100000", "1e9"):  # the figure is sized by the record, not by the request
        out = tmp_path / f"long{length}"
        predict_record(
            compose_config("predict", out, [f"ckpt_path={trained}", f"record={tiny_db / '100'}", f"length_s={length}"])
        )
        assert 0 < (out / "strip.png").stat().st_size < 2_000_000


def test_a_run_writes_its_hparams_and_a_failed_one_leaves_no_events(tiny_db, tmp_path):
    import yaml

    train(
        compose_config("train", tmp_path / "ok", [*train_overrides(tiny_db, tmp_path), *QUICK, "trainer.max_epochs=1"])
    )
    hparams = yaml.safe_load((tmp_path / "ok" / "hparams.yaml").read_text())
    assert hparams["seed"] == 3 and hparams["data"]["window_s"] == 0.5 and hparams["model"]["net"]["channels"] == 8
    # only what the run used: its database's catalog entry and its label set (not svdb, incartdb, aami)
    assert list(hparams["data"]["catalog"]) == ["mitdb"] and list(hparams["data"]["label_sets"]) == ["study"]
    # TensorBoard's HPARAMS tab: the settings that tell runs apart, under readable names, with the real scores
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    events = EventAccumulator(str(tmp_path / "ok"))
    events.Reload()
    contents = events.PluginTagToContent("hparams")
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
        for c in contents.values()
        if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info")
    )
    shown = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    assert {"model", "params", "lr", "labels", "split", "leads", "window_s", "epochs", "seed"} <= set(shown)
    assert shown["model"] == "StudyCNN" and shown["window_s"] == 0.5 and shown["seed"] == 3 and shown["params"] > 1000
    assert not any(k.startswith("data/") for k in shown)  # not every setting, no catalog entries
    assert not (tmp_path / "ok" / "FAILED.txt").exists()
    bad = tmp_path / "bad"
    bad.mkdir()  # Hydra makes the run folder before the run starts
    with pytest.raises(ValueError, match="data.fold=7"):
        train(compose_config("train", bad, [*train_overrides(tiny_db, tmp_path), "data.split=kfold", "data.fold=7"]))
    assert not list(bad.glob("**/events.out.tfevents.*"))
    # the folder says the run did not finish, and why
    assert "This run did not finish: ConfigError: data.fold=7" in (bad / "FAILED.txt").read_text()


def test_exported_leads_are_the_ones_predict_reads():
    """A model trained on a database with its own lead (INCART: II) is exported as lead II, not data.lead's 0."""
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from ecg_lightning.export import preprocessing

    data = {"lead": 0, "databases": ["incartdb"], "fs": 257, "window_s": 1.0, "band": None,
            "catalog": {"incartdb": {"root": "/r", "lead": "II", "annotation": "atr"}}}  # fmt: skip
    module = SimpleNamespace(binary=True, hparams=SimpleNamespace(classes=["normal", "abnormal"], threshold=0.5))
    spec = preprocessing(OmegaConf.create({"data": data}), module, None)
    assert spec["leads"] == "II"
    data["catalog"]["incartdb"]["lead"] = None  # no lead of its own: data.lead
    assert preprocessing(OmegaConf.create({"data": data}), module, None)["leads"] == 0
