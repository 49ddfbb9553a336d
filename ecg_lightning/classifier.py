"""The one LightningModule: training, validation and prediction logic for any beat-classifier network."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torchmetrics import MaxMetric, MinMetric

from ecg_lightning.metrics import beat_metrics


class BeatClassifier(L.LightningModule):
    """Binary normal/abnormal beat classifier around an injected network that outputs one logit per window.

    Args:
        net: the network (``models/``), chosen by config.
        optimizer: partial optimizer, called with the parameters.
        scheduler: optional partial LR scheduler, called with the optimizer.
        pos_weight: weight of the abnormal class in the BCE loss: a number, "balanced" (normal/abnormal
            ratio of the training windows, set at fit start) or None (unweighted, as in the study).
        threshold: probability above which a beat is called abnormal.
        monitor, mode: the validation metric whose best value is tracked (and checkpointed on).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        pos_weight: float | str | None = None,
        threshold: float = 0.5,
        monitor: str = "val/balanced_accuracy",
        mode: str = "max",
    ) -> None:
        super().__init__()
        metrics = beat_metrics(threshold)
        if monitor.removeprefix("val/") not in metrics:
            raise ValueError(f"monitor={monitor!r}; choose val/<metric> with <metric> one of {list(metrics)}")
        # optimizer/scheduler factories stay out of the checkpoint, which then loads with weights_only=True
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if isinstance(pos_weight, str) and pos_weight != "balanced":
            raise ValueError(f"pos_weight={pos_weight!r}; use a number, 'balanced' or null")
        # a buffer, so a resumed or evaluated model keeps the weight it was trained with
        weight = 1.0 if pos_weight in (None, "balanced") else float(pos_weight)
        self.loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight))
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.val_best = MaxMetric() if mode == "max" else MinMetric()
        self.val_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Logits from the network's inputs: the windows, plus RR features when the data serves them."""
        return self.net(*inputs)

    def _step(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *inputs, y = batch
        logits = self(*inputs)
        return self.loss(logits, y), torch.sigmoid(logits.detach()), y.long()

    def on_fit_start(self) -> None:
        if self.hparams.pos_weight == "balanced" and self.trainer.ckpt_path is None:
            self.loss.pos_weight.fill_(self.trainer.datamodule.abnormal_weight)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss, probs, target = self._step(batch)
        self.train_metrics.update(probs, target)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(target))
        return loss

    def on_train_epoch_end(self) -> None:
        self.log_dict(self.train_metrics.compute())
        self.train_metrics.reset()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, probs, target = self._step(batch)
        self.val_metrics.update(probs, target)
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target))

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values)
        if not self.trainer.sanity_checking:
            self.val_best(values[self.hparams.monitor])
        self.log(f"{self.hparams.monitor}_best", self.val_best.compute(), prog_bar=True)

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        *inputs, _ = batch
        return torch.sigmoid(self(*inputs))

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor}}
