"""Training-time callbacks of our own: epoch timing and the run's metrics.json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import lightning as L


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


class EpochTimer(L.Callback):
    """Logs ``time/epoch_s``: wall time of each training epoch including its validation."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._start)


def _scalars(metrics: dict, prefix: str = "") -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefix) and getattr(v, "numel", lambda: 1)() == 1}


class MetricsJson(L.Callback):
    """Keeps ``metrics.json`` up to date after every validation: final metrics and those of the best epoch.

    "best" is the epoch with the best ``monitor`` value, i.e. chosen on the validation set itself;
    "final" is the last epoch, chosen without looking at validation. Its state goes into checkpoints,
    so a resumed run keeps its best epoch.
    """

    def __init__(self, path: str | Path, monitor: str, mode: str = "max") -> None:
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best: dict[str, float] = {}
        self.last_epoch: int | None = None

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
        self.write(trainer)

    def write(self, trainer: L.Trainer) -> None:
        final = {**_scalars(trainer.callback_metrics), "epoch": self.last_epoch}
        write_json_atomic(self.path, {"monitor": self.monitor, "mode": self.mode, "best": self.best, "final": final})

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict["best"]
