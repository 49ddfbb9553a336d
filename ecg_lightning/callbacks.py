"""Training-time callbacks of our own: epoch timing, per-epoch seeding, metrics.json, run config, end-of-fit figures."""

from __future__ import annotations

import json
import logging
import platform
import random
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from ecg_lightning import report
from ecg_lightning.checkpoint import CONFIG_KEY, LEADS_KEY

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    report.write_atomic(Path(path), json.dumps(data, indent=2, sort_keys=True))


# the libraries whose versions decide a run's numbers: the same recipe and seeds moved a DS1 result by more than the
# selection rules' margins in a rebuilt environment (docs/inter_patient.md, sixty-fifth and sixty-sixth rounds)
VERSIONED = ("torch", "lightning", "torchmetrics", "numpy", "scikit-learn", "wfdb", "hydra-core")


def library_versions() -> dict[str, str]:
    """Python's and ``VERSIONED``'s versions, as installed (a library not installed: "absent")."""

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return {"python": platform.python_version(), **{name: version(name) for name in VERSIONED}}


class EpochSeed(L.Callback):
    """Reseeds torch, numpy and random at every training epoch from (seed, epoch).

    Each epoch's shuffling, augmentation and dropout then depend only on the seed and the epoch number (and
    the process's rank in distributed training, so ranks draw different dropout masks), so a run resumed from
    a checkpoint ends in the same state as one never interrupted.
    """

    def __init__(self, seed: int | None) -> None:
        self.seed = seed

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_train_epoch_start(trainer, pl_module)  # a resumed epoch may start without on_train_epoch_start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seed is not None:
            epoch_seed = (self.seed * 1_000_003 + trainer.current_epoch + 65_537 * trainer.global_rank) % 2**32
            torch.manual_seed(epoch_seed)
            np.random.seed(epoch_seed)
            random.seed(epoch_seed)


class RunConfigInCheckpoint(L.Callback):
    """Stores the run's resolved data/model config in every checkpoint (evaluate and predict read it), and the
    signal names of the leads the training records gave (predict refuses leads the model never saw)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CONFIG_KEY] = self.config
        seen = getattr(trainer.datamodule, "leads_seen", None)
        if seen is not None:
            checkpoint[LEADS_KEY] = seen


VAL_PREDICTIONS = "val_predictions.npz"


class ValidationFigures(L.Callback):
    """At the end of fit: confusion matrix and ROC of the final model on the validation set (PNG and TensorBoard),
    and its per-beat probabilities (``val_predictions.npz``: probs, labels, record, sample, classes, threshold), which
    ``aggregate --which pooled`` joins across the folds of a cross-validation (every beat validated once). After
    a test (e.g. DS2 at the end of a benchmark run): the same figures of the test set, ``test_*.png``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self._test: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._test = []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if isinstance(outputs, tuple):
            self._test.append((outputs[0].detach().cpu(), outputs[1].detach().cpu()))

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._test:
            return
        probs, labels = (torch.cat(part).numpy() for part in zip(*self._test))
        self._test = []
        if trainer.world_size > 1:  # each rank tested its shard: rank 0 draws them all
            shards: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, (probs, labels))
            if not trainer.is_global_zero:
                return
            probs, labels = (np.concatenate(part) for part in zip(*shards))
        self._draw(trainer, pl_module, probs, labels.astype(np.int64), "test")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run or trainer.datamodule is None or not getattr(trainer.datamodule, "val_records", 1):
            return  # (no validation set: data.inner_split=none)
        # the batches the last validation saw (a limited quick check sees a few), so figures match the metrics
        seen = trainer.num_val_batches[0] if trainer.num_val_batches else None
        probs, labels = report.predict_proba(
            pl_module, trainer.datamodule.val_dataloader(), "Validation figures", int(seen) if seen else None
        )
        if trainer.world_size > 1:
            # every rank predicts its shard of the validation set (DDP): rank 0 draws from all of them, and no
            # rank leaves while another still waits for it
            shards: list = [None] * trainer.world_size
            torch.distributed.all_gather_object(shards, (probs, labels))
            if not trainer.is_global_zero:
                return
            probs, labels = (np.concatenate(part) for part in zip(*shards))
        else:
            self._save_predictions(trainer, pl_module, probs, labels)
        self._draw(trainer, pl_module, probs, labels, "val")

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule, probs, labels, side: str) -> None:
        for name, fig in report.figures(probs, labels, pl_module.hparams.classes, pl_module.hparams.threshold).items():
            report.save_figure(fig, self.out_dir / f"{side}_{name}.png")
            for logger in trainer.loggers:
                if hasattr(logger.experiment, "add_figure"):
                    logger.experiment.add_figure(f"{side}/{name}", fig, global_step=trainer.global_step, close=False)
            report.plt.close(fig)

    def _save_predictions(
        self, trainer: L.Trainer, pl_module: L.LightningModule, probs: np.ndarray, labels: np.ndarray
    ) -> None:
        """``val_predictions.npz`` when the whole validation set was predicted (one process: in beat order)."""
        data = trainer.datamodule.data_val
        if len(labels) != len(data.labels):
            return
        report.save_npz(
            self.out_dir / VAL_PREDICTIONS,
            probs=probs,
            labels=labels,
            record=np.asarray(trainer.datamodule.records.names)[data.beats.record],
            sample=data.beats.sample,  # with the record: each beat's RR (the longest-RR reference of selection)
            classes=np.asarray(pl_module.hparams.classes),
            threshold=pl_module.hparams.threshold,
        )


class EpochTimer(L.Callback):
    """Logs ``time/epoch_s``: wall time of each training epoch including its validation."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._start)


def _scalars(metrics: dict, prefix: str = "") -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1}


class MetricsJson(L.Callback):
    """Keeps ``metrics.json`` up to date after every validation: final metrics and those of the best epoch, and the
    versions of the libraries that trained it ("environment").

    "best" is the epoch with the best ``monitor`` value, i.e. chosen on the validation set itself;
    "final" is the last epoch, chosen without looking at validation; "test" (when the split has a test set)
    is the test set scored once with the best checkpoint. Its state goes into checkpoints, so a resumed
    run keeps its best epoch.
    """

    def __init__(self, path: str | Path, monitor: str, mode: str = "max") -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.test: dict[str, float | str] = {}
        self.last_epoch: int | None = None
        self.finished = False  # until training ends: a sweep read while its jobs run is told which are partial
        self.environment = library_versions()

    def _improved(self, value: float) -> bool:
        if self.monitor not in self.best:
            return True
        best = self.best[self.monitor]
        return value > best if self.mode == "max" else value < best

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        current = _scalars(trainer.callback_metrics, "val/")
        self.last_epoch = trainer.current_epoch
        if self.monitor in current and self._improved(current[self.monitor]):
            self.best = {**current, "epoch": trainer.current_epoch}
        self.write(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.final = {**_scalars(trainer.callback_metrics), "epoch": self.last_epoch}
        self.finished = True
        self.write()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The test set's metrics, with the checkpoint they come from (the one trainer.test loaded: the best on
        validation, or none with test_weights=last)."""
        self.test = {**_scalars(trainer.callback_metrics, "test/"), "checkpoint": trainer.ckpt_path or "final weights"}
        self.write()

    def write(self, trainer: L.Trainer | None = None) -> None:
        if trainer is not None:
            self.final = {**_scalars(trainer.callback_metrics), "epoch": self.last_epoch}
        report = {"monitor": self.monitor, "mode": self.mode, "finished": self.finished, "best": self.best,
                  "final": self.final, "environment": self.environment}  # fmt: skip
        if self.test:
            report["test"] = self.test
        if rank_zero_only.rank == 0:  # every rank holds the same (synchronized) metrics; one writes them
            write_json_atomic(self.path, report)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]


class EMAWeights(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights, whose checkpoints serve the average everywhere.

    A checkpoint holds the average as its weights and the raw weights beside them, for resuming. Lightning's callback
    puts the raw weights back whenever the trainer loads a checkpoint, also to test one (the run's test score with
    ``test_weights=best``), so the test would score other weights than ``evaluate`` and ``predict`` serve from the
    same file. Here the raw weights are restored only to resume fitting.
    """

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
