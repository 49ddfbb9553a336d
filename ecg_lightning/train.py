"""Train a beat classifier: ``python -m ecg_lightning.train [overrides]`` (Hydra; configs in conf/)."""

from __future__ import annotations

import inspect
import logging
import shutil
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.core.saving import save_hparams_to_yaml
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf, open_dict

from ecg_lightning.callbacks import RunConfigInCheckpoint
from ecg_lightning.checkpoint import CheckpointError, check_weights_fit, load_checkpoint, run_config, used_settings
from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.data.rr import annotated_class
from ecg_lightning.errors import (
    ConfigError,
    check_command_line,
    exit_on_input_error,
    instantiate_checked,
    unknown_trainer_args,
)
from ecg_lightning.runtime import cpu_processes, reuse_freed_memory, set_threads

log = logging.getLogger(__name__)

# Batches are cut by one vectorized gather in the main process (benchmarks/data_setup.py measures it),
# so Lightning's generic advice to add DataLoader workers does not apply.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
# Lightning's own use of a torch pytree API that torch has deprecated: nothing a user can act on
warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")

HPARAM_GROUPS = ("data", "model", "trainer", "seed")


class _NoAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip" adverts (for a cloud logger) from the console; its real messages stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "💡 Tip" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry of a config group such as ``callbacks`` or ``logger`` (null entries skipped)."""
    return [instantiate(entry) for entry in (group or {}).values() if entry is not None and "_target_" in entry]


def readable_settings(cfg: DictConfig, model: L.LightningModule) -> dict[str, Any]:
    """The settings that tell runs apart, under short names (TensorBoard's HPARAMS columns, MLflow's first)."""
    data, opt = cfg.data, cfg.model.get("optimizer") or {}
    rr = OmegaConf.to_object(data.rr_features) if OmegaConf.is_config(data.rr_features) else data.rr_features
    leads = OmegaConf.to_object(data.lead) if OmegaConf.is_config(data.lead) else data.lead
    # e.g. ds1ds2/kfold/strict: the split, how validation is carved out, the benchmark's protocol
    split = "/".join(str(v) for v in (data.split, data.get("inner_split"), data.get("benchmark_protocol")) if v)
    return {
        "model": str(cfg.model.net.get("_target_", "?")).rsplit(".", 1)[-1],
        "params": sum(p.numel() for p in model.parameters()),
        "optimizer": str(opt.get("_target_", "?")).rsplit(".", 1)[-1],
        "lr": float(opt.get("lr", float("nan"))),
        "weight_decay": float(opt.get("weight_decay", 0.0) or 0.0),
        "class_weight": str(cfg.model.get("class_weight")),
        "labels": str(data.labels),
        "split": split,
        "fold": int(data.fold),
        "leads": ",".join(map(str, leads)) if isinstance(leads, (list, tuple)) else str(leads),
        "window_s": float(data.window_s),
        "templates": bool(data.get("templates", False)),
        "rr_features": len(rr) if isinstance(rr, (list, tuple)) else (5 if rr is True else 0),
        "run_beats": int(data.get("run_beats", 1)),
        "batch_size": int(data.batch_size),
        "epochs": int(cfg.trainer.max_epochs),
        "seed": cfg.get("seed"),
    }


def log_hparams(loggers: list[Logger], cfg: DictConfig, metrics: dict[str, float], model: L.LightningModule) -> None:
    """Log the run's settings with its real validation metrics: TensorBoard's HPARAMS tab gets the settings that
    tell runs apart under readable names; the other loggers those first, then every setting; hparams.yaml all."""
    params = used_settings(cfg, HPARAM_GROUPS)
    readable = readable_settings(cfg, model)
    scores = {f"hparams/{k.removeprefix('val/')}": v for k, v in metrics.items() if k.startswith("val/")}
    for logger in loggers:
        if "metrics" in inspect.signature(logger.log_hyperparams).parameters:  # TensorBoard's HPARAMS tab
            logger.log_hyperparams(readable, scores)
        else:  # e.g. CSVLogger, MLflow: the settings only (their metrics hold the scores)
            logger.log_hyperparams({**readable, **params})
        logger.save()
        # Lightning writes hparams.yaml once, empty, at the first save; write the real one (one process of DDP)
        if logger.log_dir and rank_zero_only.rank == 0:
            save_hparams_to_yaml(Path(logger.log_dir) / "hparams.yaml", params)


def finish_runs(loggers: list[Logger]) -> None:
    """End the loggers' runs that stay open otherwise (Weights & Biases): the next job of a sweep in the same
    process starts its own run instead of writing into this one, and an offline run is complete on disk."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger" and rank_zero_only.rank == 0:
            logger.experiment.finish()


def resume_into_run_dir(cfg: DictConfig) -> Path | None:
    """When resuming, write logs, checkpoints and metrics into the interrupted run's folder (same TensorBoard run).

    Returns the folder Hydra made for this invocation when it is another one (removed after the run, its log
    having gone to the interrupted run's log as well), else None.
    """
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise CheckpointError(f"{ckpt}: checkpoint not found; resume with ckpt_path=<run dir>/checkpoints/last.ckpt")
    load_checkpoint(ckpt)  # a truncated or foreign file fails here, before any logger writes into the run folder
    if ckpt.parent.name != "checkpoints":
        return None
    run_dir = ckpt.parent.parent.resolve()
    stray = Path(cfg.paths.output_dir).resolve()
    with open_dict(cfg):
        cfg.paths.output_dir = str(run_dir)
    handler = logging.FileHandler(run_dir / f"{cfg.get('task_name', 'train')}.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logging.getLogger().addHandler(handler)
    log.info("Resuming %s in %s", ckpt, run_dir)
    return stray if stray != run_dir else None


def remove_stray_run_dir(stray: Path | None) -> None:
    """Remove the folder Hydra made for a resumed run if it holds nothing but Hydra's config and the log."""
    if stray is None or not stray.is_dir() or {p.name for p in stray.iterdir()} - {".hydra", "train.log"}:
        return
    for handler in list(logging.getLogger().handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == stray:
            logging.getLogger().removeHandler(handler)
            handler.close()
    shutil.rmtree(stray, ignore_errors=True)


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model on the configured data, test it when the split has a test set; return the metrics."""
    stray = None
    try:
        stray = resume_into_run_dir(cfg) if cfg.get("ckpt_path") else None
        return fit_and_test(cfg)
    except (Exception, SystemExit) as err:
        mark_failed(cfg, err)
        raise
    finally:
        remove_stray_run_dir(stray)


FAILED = "FAILED.txt"


def mark_failed(cfg: DictConfig, err: BaseException) -> None:
    """A run that did not finish says so in its folder (``FAILED.txt``: why), so it is not taken for a finished
    run; a run that later finishes (a resume into the same folder) removes the mark."""
    if rank_zero_only.rank != 0:
        return
    folder = Path(cfg.paths.output_dir)
    if not folder.is_dir():
        return
    why = f"interrupted (exit status {err.code})" if isinstance(err, SystemExit) else f"{type(err).__name__}: {err}"
    (folder / FAILED).write_text(f"This run did not finish: {why}\nSee train.log in this folder.\n")


def fit_and_test(cfg: DictConfig) -> dict[str, float]:
    set_threads(cfg.get("threads", "auto"), cpu_processes(cfg.trainer))
    reuse = cfg.get("reuse_freed_memory", True)
    if not isinstance(reuse, bool):
        raise ConfigError(f"reuse_freed_memory={reuse!r}: use true or false")
    if reuse:
        reuse_freed_memory()
    if cfg.get("test_weights", "best") not in TEST_WEIGHTS:
        raise ConfigError(f"test_weights={cfg.test_weights!r}; choose one of {TEST_WEIGHTS}")
    unknown = unknown_trainer_args(k for k in cfg.trainer if k != "_target_")
    if unknown:  # a config file's typo, caught before the data loads
        raise ConfigError(unknown)
    reference = str(cfg.data.get("reference_beats", "all"))
    if annotated_class(reference) is not None:  # a model must not learn from a reference that reads the labels
        raise ConfigError(
            f"data.reference_beats={reference} reads the annotations: a diagnostic for "
            "python -m ecg_lightning.evaluate (side=val), not for training"
        )
    if cfg.data.get("pause_stress"):  # a stress of the rhythm a model is evaluated on, not one to learn
        raise ConfigError(
            f"data.pause_stress={cfg.data.pause_stress} is a stress for python -m ecg_lightning.evaluate (side=val), "
            "not for training: leave it 0"
        )
    if cfg.model.get("net", {}).get("template_difference") and not cfg.data.get("templates"):
        raise ConfigError(  # the net would read a second lead as the first one's template
            "model.net.template_difference=true reads each beat against its record's template: set data.templates=true"
        )
    adversary, codes = bool(cfg.model.get("patient_adversary")), bool(cfg.data.get("patient_codes"))
    if adversary != codes:  # a batch's patient codes would otherwise be read as a network input, or be missing
        raise ConfigError(
            "model.patient_adversary > 0 and data.patient_codes=true go together (the adversary reads each training "
            f"window's patient); got model.patient_adversary={cfg.model.get('patient_adversary')}, "
            f"data.patient_codes={cfg.data.get('patient_codes')}"
        )
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule: L.LightningDataModule = instantiate_checked(cfg.data, _convert_="all")
    model: L.LightningModule = instantiate_checked(cfg.model, _convert_="all")
    if cfg.get("ckpt_path"):  # resuming: the checkpoint must be of this model (one line, not a state-dict page)
        check_weights_fit(model, load_checkpoint(cfg.ckpt_path), cfg.ckpt_path, "resume with the same model=...")
    datamodule.prepare_data()
    datamodule.setup("fit")  # bad data fails here, before any logger writes into the run folder
    callbacks = [*instantiate_all(cfg.get("callbacks")), RunConfigInCheckpoint(run_config(cfg))]
    loggers = instantiate_all(cfg.get("logger"))
    if not loggers:  # nothing to monitor the learning rate into (logger=none)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    # no validation set (data.inner_split=none, a final model): no validation loop, rather than an empty one
    no_val = {"limit_val_batches": 0, "num_sanity_val_steps": 0} if not getattr(datamodule, "val_records", 1) else {}
    if no_val:  # nor a checkpoint callback waiting for a validation metric (last.ckpt holds the final weights)
        callbacks = [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and c.monitor)]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **no_val)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    except SIGTERMException:
        # a scheduler's stop (SLURM preemption, timeout, kill): a failed run to the shell, never a finished one
        last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        log.error(
            "Interrupted by SIGTERM in epoch %d (step %d): the run did not finish. %s",
            trainer.current_epoch,
            trainer.global_step,
            f"Resume with ckpt_path={last} (the last finished epoch)"
            if last.is_file()
            else "No epoch had finished; nothing to resume from",
        )
        sys.exit(128 + signal.SIGTERM)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    (Path(cfg.paths.output_dir) / FAILED).unlink(missing_ok=True)  # a resumed run that finished
    log_hparams(loggers, cfg, metrics, model)
    log.info("Final metrics: %s", {k: round(v, 4) for k, v in sorted(metrics.items()) if k.startswith("val/")})
    if getattr(datamodule, "test_records", None) and cfg.get("score_test", True):
        metrics.update(score_test(trainer, model, datamodule, cfg.get("test_weights", "best")))
    elif getattr(datamodule, "test_records", None):
        log.info("score_test=false: the %d test records were not scored", len(datamodule.test_records))
    log.info("Outputs (checkpoints, metrics.json, figures, TensorBoard events) are in %s", cfg.paths.output_dir)
    finish_runs(loggers)
    tested = {k: round(v, 4) for k, v in sorted(metrics.items()) if k.startswith("test/") and k != "test/loss"}
    if tested:  # a benchmark run ends with its test-set (e.g. DS2) result
        log.info("Test set (%d records): %s", len(datamodule.test_records), tested)
    return metrics


TEST_WEIGHTS = ("best", "last")


def score_test(
    trainer: L.Trainer, model: L.LightningModule, datamodule: L.LightningDataModule, weights: str = "best"
) -> dict[str, float]:
    """Score the test set (e.g. DS2) once, with the checkpoint that was best on validation (else the final weights),
    or with the final weights (``weights="last"``: a number of epochs fixed beforehand)."""
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback and weights == "best" else ""
    log.info("Testing %s on %d test records", best or "the final weights", len(datamodule.test_records))
    results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
    return {k: float(v) for k, v in results[0].items()}


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def run(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the optimized metric so sweepers can use it."""
    metrics = exit_on_input_error(lambda: train(cfg))
    return metrics.get(cfg.get("optimized_metric"))


def main() -> None:
    """The console command: checks what Hydra would fail on with a traceback, then runs."""
    check_command_line(sys.argv[1:], trainer=True)
    run()


if __name__ == "__main__":
    main()
