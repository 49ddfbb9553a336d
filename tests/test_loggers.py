"""The loggers beside TensorBoard: each run short, its output read back (settings and validation metrics)."""

from pathlib import Path

import pytest
from conftest import compose_config, train_overrides
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.train import train

QUICK = ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "seed=4"]


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


def run(tiny_db: Path, tmp_path: Path, loggers: str) -> dict[str, float]:
    overrides = [*train_overrides(tiny_db, tmp_path), *QUICK, f"logger={loggers}"]
    return train(compose_config("train", tmp_path / "run", overrides))


def test_mlflow_and_tensorboard_at_once(tiny_db, tmp_path):
    from mlflow.tracking import MlflowClient

    metrics = run(tiny_db, tmp_path, "[tensorboard,mlflow]")
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    (logged,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert logged.data.params["data/window_s"] == "0.5" and logged.data.params["seed"] == "4"
    assert logged.data.metrics["val/loss"] == pytest.approx(metrics["val/loss"], rel=1e-5)
    assert [m.step for m in client.get_metric_history(logged.info.run_id, "val/loss")] == sorted(
        m.step for m in client.get_metric_history(logged.info.run_id, "val/loss")
    ) and len(client.get_metric_history(logged.info.run_id, "val/loss")) == 2  # one value per epoch
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))  # TensorBoard's as well


def test_wandb_offline_writes_the_run_into_the_run_folder(tiny_db, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    run(tiny_db, tmp_path, "wandb")
    import wandb

    # the run is finished, but its writer runs in W&B's service process: wait for it, as the end of a process does
    # (reading right after finish() once found only the file's header)
    wandb.teardown()
    (stream,) = (tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb")  # nothing sent anywhere
    data = stream.read_bytes()
    assert b"window_s" in data and b"val/loss" in data and b"train/loss_epoch" in data


def test_two_runs_in_one_process_are_two_wandb_runs(tiny_db, tmp_path, monkeypatch):
    """A sweep's jobs in one process (Hydra's basic launcher): each its own run, not one run continued."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in ("a", "b"):
        overrides = [*train_overrides(tiny_db, tmp_path), *QUICK, "logger=wandb", "trainer.max_epochs=1"]
        train(compose_config("train", tmp_path / name, overrides))
        HydraConfig.instance().cfg = None
    assert len(list((tmp_path / "a" / "wandb").glob("offline-run-*"))) == 1
    assert len(list((tmp_path / "b" / "wandb").glob("offline-run-*"))) == 1
