"""Sweeps and distributed training through the real command line: Optuna, joblib and submitit launchers, DDP.

Each test runs ``python -m ecg_lightning.train`` in a subprocess on the tiny synthetic database (slow: CI runs
them with ``pytest -m slow``).
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import compose_config
from hydra.core.hydra_config import HydraConfig
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ecg_lightning.evaluate import evaluate

pytestmark = pytest.mark.slow

QUICK = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.limit_val_batches=2",
    "data.window_s=0.5",
    "callbacks.progress_bar.refresh_rate=0",
    "callbacks.val_figures=null",
]


def run_train(tiny_db: Path, tmp: Path, *overrides: str, timeout: int = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "MITDB_DIR": str(tiny_db), "ECG_LIGHTNING_CACHE": str(tmp / "cache")}
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "ecg_lightning.train", *overrides, f"paths.log_dir={tmp / 'outputs'}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def job_dirs(sweep: Path) -> list[Path]:
    jobs = (p for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    return sorted(jobs, key=lambda p: int(p.name.split("_")[0]))


def test_optuna_study_runs_and_resumes(tiny_db, tmp_path):
    sweep = tmp_path / "sweep"
    search = ["-m", "hparams_search=optuna", *QUICK, f"hydra.sweep.dir={sweep}"]
    run_train(tiny_db, tmp_path, *search, "hydra.sweeper.n_trials=2")
    with sqlite3.connect(sweep / "optuna.db") as db:
        assert db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone() == (2,)
    first = json.loads((job_dirs(sweep)[0] / "metrics.json").read_text())
    assert 0.0 <= first["best"]["val/balanced_accuracy"] <= 1.0
    # "interrupted" after 2 of 3 trials: the rerun runs the one missing trial, in a new job folder
    done = run_train(tiny_db, tmp_path, *search, "hydra.sweeper.n_trials=3")
    assert "2 of 3 trials finished" in done.stdout + done.stderr
    with sqlite3.connect(sweep / "optuna.db") as db:
        assert db.execute("select count(*) from trials where state = 'COMPLETE'").fetchone() == (3,)
    jobs = job_dirs(sweep)
    assert [j.name for j in jobs] == ["0", "1", "2"]
    # every trial sampled the searched settings (the fixed window_s from the command line is not searched)
    overrides = yaml.safe_load((jobs[2] / ".hydra" / "overrides.yaml").read_text())
    assert any(o.startswith("model.optimizer.lr=") for o in overrides)
    assert "data.window_s=0.5" in overrides
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) >= {"model.optimizer.lr", "model.net.width", "model.class_weight"}
    best_job = max(jobs, key=lambda j: json.loads((j / "metrics.json").read_text())["best"]["val/balanced_accuracy"])
    assert results["best_value"] == pytest.approx(
        json.loads((best_job / "metrics.json").read_text())["best"]["val/balanced_accuracy"], abs=1e-6
    )


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_give_one_tensorboard_run_per_job(tiny_db, tmp_path, launcher):
    sweep = tmp_path / "sweep"
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else ["hydra.launcher.timeout_min=10"]
    run_train(
        tiny_db, tmp_path, "-m", f"hydra/launcher={launcher}", *extra, "model=cnn,cnn_lstm", "seed=0", *QUICK,
        f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    jobs = job_dirs(sweep)
    assert len(jobs) == 2
    for job, model in zip(jobs, ["cnn", "cnn_lstm"]):
        assert f"model-{model}" in job.name
        events = EventAccumulator(str(job))
        events.Reload()
        assert "val/accuracy" in events.Tags()["scalars"]
        assert json.loads((job / "metrics.json").read_text())["final"]["val/accuracy"] > 0
        if launcher == "joblib":  # 2 cores shared by 2 jobs at once: one thread each
            assert torch.get_num_threads() >= 1 and "torch CPU threads: 1" in (job / "train.log").read_text()


DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.labels=aami", "data.split=ds1ds2"]
# the default callbacks, validation figures included (rank 0 draws them from every rank's shard)
DDP_QUICK = ["data.window_s=0.5", "callbacks.progress_bar.refresh_rate=0", "seed=5"]


def test_ddp_on_two_cpu_processes_counts_every_window_once_and_resumes_exactly(tiny_db, tmp_path):
    whole = tmp_path / "whole"
    done = run_train(tiny_db, tmp_path, *DDP, *DDP_QUICK, "trainer.max_epochs=2", f"hydra.run.dir={whole}")
    output = done.stdout + done.stderr
    assert "distributed_backend=gloo" in output and "Starting with 2 processes" in output
    assert output.count("torch CPU threads: 1") == 2  # 2 cores shared by the 2 processes
    report = json.loads((whole / "metrics.json").read_text())
    assert (whole / "val_confusion_matrix.png").stat().st_size > 0 and done.returncode == 0
    # validation and test metrics of the 2-process run equal one process's on the same checkpoints
    common = [f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    last = whole / "checkpoints" / "last.ckpt"
    val = evaluate(compose_config("evaluate", tmp_path / "ev", [f"ckpt_path={last}", *common]))
    HydraConfig.instance().cfg = None
    for name in ("accuracy", "kappa", "macro_f1", "se_V", "ppv_N"):
        assert report["final"][f"val/{name}"] == pytest.approx(val[name], abs=1e-6), name
    tested = report["test"]["checkpoint"]
    test = evaluate(compose_config("evaluate", tmp_path / "et", [f"ckpt_path={tested}", "side=test", *common]))
    HydraConfig.instance().cfg = None
    for name in ("accuracy", "kappa", "se_N"):
        assert report["test"][f"test/{name}"] == pytest.approx(test[name], abs=1e-6), name
    # resume: one epoch, then resumed to two, ends where the uninterrupted 2-process run ended
    part = tmp_path / "part"
    run_train(tiny_db, tmp_path, *DDP, *DDP_QUICK, "trainer.max_epochs=1", f"hydra.run.dir={part}")
    run_train(
        tiny_db, tmp_path, *DDP, *DDP_QUICK, "trainer.max_epochs=2", f"ckpt_path={part / 'checkpoints' / 'last.ckpt'}",
        f"hydra.run.dir={tmp_path / 'resuming'}",
    )  # fmt: skip
    a = torch.load(last, weights_only=False)
    b = torch.load(part / "checkpoints" / "last.ckpt", weights_only=False)
    assert a["global_step"] == b["global_step"]
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, msg=key)


def test_sigterm_mid_training_exits_non_zero_logs_it_and_leaves_a_resumable_checkpoint(tiny_db, tmp_path):
    import signal
    import time

    run = tmp_path / "run"
    env = {**os.environ, "MITDB_DIR": str(tiny_db), "ECG_LIGHTNING_CACHE": str(tmp_path / "cache")}
    many = ["trainer.max_epochs=500", "trainer.limit_train_batches=2"]
    cmd = [sys.executable, "-m", "ecg_lightning.train", *QUICK[2:], *many, f"hydra.run.dir={run}",
           f"paths.log_dir={tmp_path / 'outputs'}"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = run / "checkpoints" / "last.ckpt"
    deadline = time.time() + 120
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.is_file(), proc.stdout.read()[-3000:]
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    log = (run / "train.log").read_text()
    assert "Interrupted by SIGTERM" in log and f"ckpt_path={last}" in log
    assert torch.load(last, weights_only=False)["epoch"] >= 0  # the last finished epoch, loadable
    assert "did not finish: interrupted (exit status 143)" in (run / "FAILED.txt").read_text()


def test_the_gpu_check_runs_dry_on_the_cpu(tiny_db, tmp_path):
    """benchmarks/device_check.sh --dry: every step of the GPU check, a few batches each, on the CPU: the throughput
    checks, then the first DS1 cross-validation candidate (one fold, one seed) and its stress sweep, packed."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MITDB_DIR": str(tiny_db), "OUT": str(tmp_path), "ECG_LIGHTNING_CACHE": str(tmp_path / "c")}
    done = subprocess.run(["bash", str(root / "benchmarks" / "device_check.sh"), "--dry"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = (tmp_path / "benchmark_gpu.txt").read_text()
    assert report.count("Lightning w/s") == 2 and "data.cut_on_device=true" in report and "throughput checks" in report
    candidates = (root / "benchmarks" / "gpu_cv_candidates.txt").read_text().splitlines()
    first = next(line for line in candidates if line and not line.startswith("#")).split()[0]
    assert f"{first}: 1 trainings finished, 0 stopped" in report, report
    import tarfile

    names = tarfile.open(tmp_path / f"cv_{first}.tar.xz").getnames()
    assert any(n.startswith(f"cv/{first}/") and n.endswith("val_predictions.npz") for n in names), names
    assert any(n.startswith(f"stress/{first}/") and n.endswith("predictions.npz") for n in names), names
    assert not any(n.endswith(".ckpt") for n in names)
