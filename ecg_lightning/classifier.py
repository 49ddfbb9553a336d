"""The one LightningModule: training, validation, test and prediction logic for any beat-classifier network."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric, MinMetric

from ecg_lightning.errors import ConfigError, check_threshold
from ecg_lightning.metrics import beat_metrics, metric_names
from ecg_lightning.models.adversary import PatientAdversary, adversary_scale

CLASS_WEIGHTINGS = ("balanced", "sqrt_balanced")


def balanced_weights(counts: torch.Tensor, how: str) -> torch.Tensor:
    """Class weights inversely proportional to the class counts ("balanced") or to their square root
    ("sqrt_balanced", gentler on very rare classes), scaled so the first (normal) class weighs 1."""
    weight = counts.sum() / (len(counts) * counts.double().clamp(min=1))
    if how == "sqrt_balanced":
        weight = weight.sqrt()
    return (weight / weight[0]).float()


def beats_of_runs(output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One row per beat: runs of beats (target (batch, beats), output (batch, beats[, classes])) are flattened in
    run order and their padding (target -1) dropped; single-beat batches pass through unchanged."""
    if target.dim() < 2:
        return output, target
    keep = target.reshape(-1) >= 0
    return output.reshape(-1, *output.shape[2:])[keep], target.reshape(-1)[keep]


def probabilities(logits: torch.Tensor, binary: bool, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Logits to probabilities: sigmoid of the one logit (P(abnormal)) or softmax over the classes, after adding
    ``bias`` (per class, multi-class only: a decision rule's log prior, see ``BeatClassifier``)."""
    if binary:
        return torch.sigmoid(logits)
    return torch.softmax(logits if bias is None else logits + bias.to(logits.device, logits.dtype), dim=-1)


def centred_median(values: np.ndarray, window: int) -> np.ndarray:
    """The median of the ``window`` values centred on each value (an odd count; fewer at the ends, none invented)."""
    half = window // 2
    padded = np.pad(np.asarray(values, dtype=np.float64), half, constant_values=np.nan)
    return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)


def relative_to_records(
    probs: np.ndarray,
    records: np.ndarray,
    classes: Sequence[str],
    s_offset: float = 0.0,
    window: int | None = None,
    quantile: float = 0.5,
    among: np.ndarray | None = None,
) -> np.ndarray:
    """Probabilities whose S log-odds against N are measured from the median of the beat's own record, then offset by
    ``s_offset``: p(S) times exp(s_offset - median over the record of log p(S) - log p(N)), renormalized. Any S offset
    already in ``probs`` cancels in the median, so ``s_offset`` is the whole S decision. Why: within a patient the
    networks rank S beats above N beats almost perfectly, but one threshold for all patients misses a patient whose
    beats all get a low S score (bundle branch blocks) and catches one whose N beats get a high one (fibrillation)
    (docs/inter_patient.md, twenty-fifth and twenty-sixth rounds). Needs every beat of each record, as ``evaluate``
    and ``predict`` have them; a record's median beat then sits at even S-vs-N odds before the offset. With ``window``
    (an odd number of beats) the median is that of the beats around each beat in its record, in time order
    (``centred_median``): a rhythm that changes within a record (a fibrillation episode) moves the reference with it;
    weighed on DS1 in the twenty-eighth round and not chosen (a run of S beats pulls its own reference up). With
    ``quantile`` the reference is that quantile of the record's log-odds in place of its median (0.5): a low one stays
    among the N beats of a record whose beats are mostly S (the thirty-first round). With ``among`` (a mask per beat)
    the quantile is that of the masked beats of each record only, e.g. the fifth that follows its longest RR
    (``data.rr.reference_mask``: the beats most likely normal whatever the record's composition; the thirty-sixth
    round)."""
    if window is not None and (window < 1 or window % 2 == 0):
        raise ValueError(f"window={window}: the beats around a beat, itself in the middle: give an odd number of beats")
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile={quantile}: the reference is a quantile of the record's beats, from 0 to 1")
    if window is not None and (quantile != 0.5 or among is not None):
        raise ValueError("the reference is either the beats around each beat (window) or a quantile of the record")
    among = np.ones(len(probs), dtype=bool) if among is None else np.asarray(among, dtype=bool)
    if among.shape != (len(probs),):
        raise ValueError(f"among: one flag per beat ({len(probs)}), got shape {among.shape}")
    log_probs = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))
    s, n = list(classes).index("S"), list(classes).index("N")
    odds = log_probs[:, s] - log_probs[:, n]
    names, index = np.unique(np.asarray(records).astype(str), return_inverse=True)
    reference = np.empty_like(odds)
    for i in range(len(names)):  # one step per record, none per beat
        mine = index == i
        if window is not None:
            reference[mine] = centred_median(odds[mine], window)
            continue
        if not among[mine].any():
            raise ValueError(f"record {names[i]}: none of its beats is among the reference beats")
        reference[mine] = np.quantile(odds[mine & among], quantile)
    log_probs[:, s] += s_offset - reference
    shifted = np.exp(log_probs - log_probs.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


# the S-vs-N log-odds a run's median beat gets in the run-relative loss: an N beat at or above its run's median then
# costs at most log(1 + e^-4) ~ 0.018, so the loss asks for S beats well above their run, not for half its N beats below
RUN_RELATIVE_S_OFFSET = -4.0


def run_relative_s_logits(
    logits: torch.Tensor,
    target: torch.Tensor,
    s: int,
    n: int,
    offset: float = RUN_RELATIVE_S_OFFSET,
    quantile: float = 0.5,
) -> torch.Tensor:
    """Runs' logits (batch, beats, classes) whose S logit is measured from the run's median S-vs-N log-odds (over its
    beats, padding (target -1) left out), then ``offset``: the training counterpart of ``relative_to_records``, over
    the run a beat-sequence model sees in place of the whole record. The median is not detached, so a loss on these
    logits is blind to a constant added to a run's S scores: it asks only that S beats stand out from their run. With
    ``quantile`` the reference is that quantile of the run's log-odds (the lower of two beats, as the median is), the
    counterpart of ``relative_to_records(quantile=)``: training for the decision the model is judged by."""
    odds = (logits[..., s] - logits[..., n]).float().masked_fill(target < 0, float("nan"))
    reference = torch.nanquantile(odds, quantile, dim=1, keepdim=True, interpolation="lower")
    shift = torch.zeros_like(logits)
    shift[..., s] = (offset - reference).to(logits.dtype)
    return logits + shift


class BeatClassifier(L.LightningModule):
    """Beat classifier around an injected network: one logit per window for two classes, one per class otherwise.

    Two classes (normal/abnormal) train with binary cross-entropy on one logit, as the study did; more classes
    (AAMI N, S, V, F, Q) with cross-entropy. The rest (metrics, best-value tracking, test, prediction) is one path.

    Args:
        net: the network (``models/``), chosen by config; it outputs 1 logit for 2 classes, else one per class.
        optimizer: partial optimizer, called with the parameters.
        scheduler: optional partial LR scheduler, called with the optimizer.
        classes: class names in label order (from the data config's label set); the first is the normal class.
        class_weight: loss weight per class: a list, "balanced" / "sqrt_balanced" (from the training windows'
            class counts, set at fit start) or None (unweighted, as in the study). With two classes this is BCE's
            ``pos_weight`` = weight[1] / weight[0].
        threshold: with two classes, the probability above which a beat is called abnormal.
        class_bias: with more classes, a log-prior offset per class added to the logits before the softmax (the
            multi-class counterpart of ``threshold``: e.g. how readily a beat is called S), chosen on pooled
            cross-validated validation predictions (``python -m ecg_lightning.calibrate``), never on a test set;
            the loss does not see it. None: no offset.
        relative_s: make the S decision relative to each record (``relative_to_records``; AAMI classes): the S
            offset of ``class_bias`` then applies to a beat's S-vs-N log-odds minus its record's median. Applied by
            ``evaluate`` and ``predict`` over whole records, never per batch; training does not see it.
        relative_s_quantile: the quantile of the record's S-vs-N log-odds the relative decision measures from (0.5:
            its median); a low one stays among the N beats of a record whose beats are mostly S (docs/inter_patient.md,
            thirty-first round).
        relative_s_loss: weight of a second training loss, cross-entropy on ``run_relative_s_logits`` (beat-sequence
            models, AAMI classes): training for the record-relative decision, each run of beats standing in for its
            record. 0: off. Validation and test losses stay the plain cross-entropy.
        relative_s_offset: the S-vs-N log-odds a run's median beat is given in that loss (default
            ``RUN_RELATIVE_S_OFFSET``): how far below their run's median N beats are asked to stay, i.e. the margin
            an S beat needs above its run.
        relative_s_loss_quantile: the quantile of each run's S-vs-N log-odds that loss measures from (0.5: the run's
            median; ``relative_s_quantile``'s training counterpart, docs/inter_patient.md, thirty-second round).
        patient_adversary: weight of a patient-confusion loss (``models/adversary.py``): a head learns to guess each
            training beat's patient from the network's beat embedding, and the encoder is trained, with this weight
            on the DANN schedule, towards embeddings on which that guess is uniform (meant to hide the patient; on DS1 a
            linear probe still reads it: docs/inter_patient.md, sixty-first round). Needs a network with beat embeddings
            (``BeatSequenceNet``) and ``data.patient_codes=true``. 0: off.
        adversary_patients: the adversary head's outputs: at least the number of training records.
        monitor, mode: the validation metric whose best value is tracked (and checkpointed on).
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        classes: Sequence[str] = ("normal", "abnormal"),
        class_weight: str | Sequence[float] | None = None,
        threshold: float = 0.5,
        class_bias: Sequence[float] | None = None,
        relative_s: bool = False,
        relative_s_quantile: float = 0.5,
        relative_s_loss: float = 0.0,
        relative_s_offset: float = RUN_RELATIVE_S_OFFSET,
        relative_s_loss_quantile: float = 0.5,
        patient_adversary: float = 0.0,
        adversary_patients: int = 64,
        monitor: str = "val/balanced_accuracy",
        mode: str = "max",
    ) -> None:  # pragma: no mutate block (mutmut's trampoline hides the init frame from save_hyperparameters)
        super().__init__()
        classes = list(classes)
        metrics = beat_metrics(classes, threshold)
        known = metric_names(classes)
        if monitor.removeprefix("val/") not in known:
            raise ConfigError(f"monitor={monitor!r}; choose val/<metric> with <metric> one of {known}")
        if isinstance(class_weight, str) and class_weight not in CLASS_WEIGHTINGS:
            raise ConfigError(
                f"model.class_weight={class_weight!r}; use a list of weights, one of {CLASS_WEIGHTINGS} or null"
            )
        if class_weight is not None and not isinstance(class_weight, str) and len(class_weight) != len(classes):
            raise ConfigError(
                f"model.class_weight has {len(class_weight)} weights for {len(classes)} classes {classes}"
            )
        for key, ok, allowed in (("lr", lambda v: v > 0, "> 0"), ("weight_decay", lambda v: v >= 0, ">= 0")):
            value = getattr(optimizer, "keywords", {}).get(key)
            if isinstance(value, (int, float)) and not ok(value):
                raise ConfigError(f"model.optimizer.{key}={value}: must be {allowed}")
        check_threshold(threshold, "model.threshold")
        if class_bias is not None and (len(classes) == 2 or len(class_bias) != len(classes)):
            raise ConfigError(
                f"model.class_bias has {len(class_bias)} values for classes {classes}: one per class, and only for "
                "more than two classes (two classes: model.threshold)"
            )
        # optimizer/scheduler factories stay out of the checkpoint, which then loads with weights_only=True
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.binary = len(classes) == 2
        # a buffer, so a resumed or evaluated model keeps the weights it was trained with
        weight = (
            torch.ones(len(classes))
            if class_weight is None or isinstance(class_weight, str)
            else torch.tensor([float(w) for w in class_weight])
        )
        self.register_buffer("class_weight", weight)
        # not a buffer: checkpoints from before it existed load as they are; it comes back from the hparams
        self.class_bias = None if class_bias is None else torch.tensor([float(b) for b in class_bias])
        for key, value in (("relative_s", relative_s), ("relative_s_loss", relative_s_loss)):
            if value and not {"S", "N"} <= set(classes):
                raise ConfigError(
                    f"model.{key}={value} needs the classes N and S (AAMI labels); the classes are {classes}"
                )
        for key, value in (
            ("relative_s_quantile", relative_s_quantile),
            ("relative_s_loss_quantile", relative_s_loss_quantile),
        ):
            if not 0 <= value <= 1:
                raise ConfigError(f"model.{key}={value}: a quantile, from 0 to 1 (0.5: median)")
        if relative_s_loss < 0:
            raise ConfigError(f"model.relative_s_loss={relative_s_loss}: a loss weight, >= 0 (0: off)")
        self.relative_s = bool(relative_s)
        self.relative_s_quantile = float(relative_s_quantile)
        self.relative_s_loss = float(relative_s_loss)
        self.relative_s_offset = float(relative_s_offset)
        self.relative_s_loss_quantile = float(relative_s_loss_quantile)
        if patient_adversary < 0:
            raise ConfigError(f"model.patient_adversary={patient_adversary}: a loss weight, >= 0 (0: off)")
        self.patient_head = None
        if patient_adversary:
            if not hasattr(net, "embedding_size"):
                raise ConfigError(
                    f"model.patient_adversary={patient_adversary} reads beat embeddings, which "
                    f"{type(net).__name__} does not give: use model=beat_sequence, or set it to 0"
                )
            self.patient_head = PatientAdversary(net.embedding_size, int(adversary_patients))
        self.patient_loss: torch.Tensor | None = None  # the last training step's confusion loss (for the log)
        self.training_patients = int(adversary_patients)  # set at fit start: the patients the head tells apart
        self.train_metrics = metrics.clone(prefix="train/")
        self.train_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.val_best = MaxMetric() if mode == "max" else MinMetric()
        self.val_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Logits from the network's inputs: the windows, plus RR features when the data serves them."""
        return self.net(*inputs)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """P(abnormal) per beat for two classes, else class probabilities (batch, classes)."""
        return probabilities(logits, self.binary, self.class_bias)

    def decide_per_record(self, probs: np.ndarray, records: np.ndarray) -> np.ndarray:
        """The probabilities a whole-record decision gives: with ``relative_s`` the S decision relative to each record
        (``relative_to_records``, the S offset of ``class_bias``, from ``relative_s_quantile``), else ``probs``."""
        if not self.relative_s:
            return probs
        s_offset = 0.0 if self.class_bias is None else float(self.class_bias[list(self.hparams.classes).index("S")])
        decided = relative_to_records(probs, records, self.hparams.classes, s_offset, quantile=self.relative_s_quantile)
        return decided.astype(probs.dtype)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.binary:
            pos_weight = self.class_weight[1] / self.class_weight[0]
            return F.binary_cross_entropy_with_logits(logits, target.float(), pos_weight=pos_weight)
        return F.cross_entropy(logits, target, weight=self.class_weight)

    def run_relative_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the run-relative S logits (``run_relative_s_logits``) of runs of beats."""
        if target.dim() < 2:
            raise ConfigError(
                "model.relative_s_loss > 0 needs runs of beats (a beat-sequence model, data.run_beats > 1)"
            )
        classes = list(self.hparams.classes)
        relative = run_relative_s_logits(
            logits,
            target,
            classes.index("S"),
            classes.index("N"),
            offset=self.relative_s_offset,
            quantile=self.relative_s_loss_quantile,
        )
        return self.loss(*beats_of_runs(relative, target))

    def adversary_loss(
        self, embedded: torch.Tensor, patients: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The patient head's fit, and the confusion loss weighted by ``patient_adversary`` on the DANN schedule over
        this fit's steps (``adversary_scale``); the unweighted confusion is what the log shows."""
        steps = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1
        weight = adversary_scale(self.hparams.patient_adversary, self.global_step / steps)
        z, who = beats_of_runs(embedded, target)[0], beats_of_runs(patients, target)[0]
        fit, confusion = self.patient_head.losses(z, who, self.training_patients)
        return fit + weight * confusion, confusion.detach()

    def _step(
        self, batch: tuple[torch.Tensor, ...], train: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        *inputs, target = batch
        adversary = train and self.patient_head is not None
        if adversary:
            *inputs, patients = inputs  # served by data.patient_codes (checked at fit start)
            runs, embedded = self.net(*inputs, embeddings=True)
        else:
            runs = self(*inputs)
        logits, y = beats_of_runs(runs, target)
        loss = self.loss(logits, y)
        if train and self.relative_s_loss:
            loss = loss + self.relative_s_loss * self.run_relative_loss(runs, target)
        if adversary:
            adversarial, self.patient_loss = self.adversary_loss(embedded, patients, target)
            loss = loss + adversarial
        # probabilities in float32 whatever the training precision (bf16-mixed): the metrics sort and sum them
        return loss, self.probabilities(logits.detach().float()), y

    def setup(self, stage: str) -> None:
        """One training item as ``example_input_array``: the model summary then shows each layer's input and output
        sizes and real FLOPs (without it, a column of zeros)."""
        data = getattr(getattr(self.trainer, "datamodule", None), "data_train", None)
        if self.example_input_array is None and data is not None and len(data):
            item = data.__getitems__([0])
            if isinstance(item, tuple):  # not a device-cut plan
                served = 2 if getattr(data, "patient", None) is not None else 1  # the labels (and patient codes)
                self.example_input_array = tuple(item[:-served])

    def on_fit_start(self) -> None:
        if self.patient_head is not None:  # once per fit, not a device sync per step
            patients = getattr(getattr(self.trainer.datamodule, "data_train", None), "patient", None)
            if patients is None:
                raise ConfigError("model.patient_adversary > 0 needs each training window's patient: set "
                                  "data.patient_codes=true")  # fmt: skip
            self.training_patients = int(patients.max()) + 1
            if self.training_patients > self.patient_head.patients:
                raise ConfigError(
                    f"{self.training_patients} training patients for model.adversary_patients="
                    f"{self.patient_head.patients}: raise it to at least the number of training records"
                )
        if isinstance(self.hparams.class_weight, str) and self.trainer.ckpt_path is None:
            counts = torch.as_tensor(self.trainer.datamodule.class_counts())
            self.class_weight.copy_(balanced_weights(counts, self.hparams.class_weight))

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss, probs, target = self._step(batch, train=True)
        # kept, and given to the metrics (and the epoch's mean loss) once at the epoch's end: one update instead of
        # one per step (a tenth of a fast step's time); the epoch's training metrics are the same
        self.train_outputs.append((probs, target, loss.detach()))
        # the step's loss only on the steps the loggers write (every trainer.log_every_n_steps optimizer steps) and
        # the first (the progress bar shows it from the start): a self.log call costs ~0.5 ms, a tenth of a
        # study-CNN step on the CPU
        every = self.trainer.log_every_n_steps
        if self.global_step == 0 or (every and (self.global_step + 1) % every == 0):
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(target))
            if self.patient_loss is not None:  # at its floor, log(patients), the head cannot tell them apart
                self.log("train/patient_confusion", self.patient_loss, on_step=True, on_epoch=False,
                         batch_size=len(target))  # fmt: skip
        return loss

    def on_train_epoch_start(self) -> None:
        self.train_outputs.clear()

    def on_train_epoch_end(self) -> None:
        if self.train_outputs:
            probs, targets, losses = zip(*self.train_outputs)
            sizes = torch.tensor([len(target) for target in targets], device=self.device)
            # the mean over the epoch's windows (batches weighted by their size), averaged over DDP ranks
            loss = (torch.stack(losses).float() * sizes).sum() / sizes.sum()
            self.log("train/loss_epoch", loss, prog_bar=True, sync_dist=True)
            self.train_metrics.update(torch.cat(probs), torch.cat(targets))
            self.train_outputs.clear()
        # torchmetrics values are already gathered over DDP ranks (equal on every rank): sync_dist only quiets
        # Lightning's advice to sync epoch-level values
        self.log_dict(self.train_metrics.compute(), sync_dist=True)
        self.train_metrics.reset()

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        loss, probs, target = self._step(batch)
        self.val_metrics.update(probs, target)
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(target), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, sync_dist=True)
        if not self.trainer.sanity_checking:  # the sanity check's few batches are not an epoch to remember
            self.val_best(values[self.hparams.monitor])
            self.log(f"{self.hparams.monitor}_best", self.val_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        loss, probs, target = self._step(batch)
        self.test_metrics.update(probs, target)
        self.log("test/loss", loss, on_step=False, on_epoch=True, batch_size=len(target), sync_dist=True)
        return probs, target  # for the test figures (callbacks.ValidationFigures)

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute(), sync_dist=True)
        self.test_metrics.reset()

    def predict_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        *inputs, y = batch
        return self.probabilities(beats_of_runs(self(*inputs), y)[0].float())

    def configure_optimizers(self) -> dict:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        scheduler = self.scheduler_factory(optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor}}
