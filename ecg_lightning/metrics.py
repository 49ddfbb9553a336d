"""Beat-classification metrics, defined once and cloned per split: binary (normal/abnormal) or multi-class (AAMI)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    BinaryF1Score,
    BinaryPrecision,
    BinaryRecall,
    BinarySpecificity,
    BinaryStatScores,
    MulticlassAccuracy,
    MulticlassAUROC,
    MulticlassCohenKappa,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
    MulticlassSpecificity,
)
from torchmetrics.wrappers import ClasswiseWrapper

# A class absent from a batch or a validation record (the Q class has 8 DS1 beats) is normal in beat data: its
# AUROC is undefined (torchmetrics counts a zero true-positive rate) and its warning, on every such batch, is noise
warnings.filterwarnings("ignore", message="No (positive|negative) samples in targets")


class BinaryBalancedAccuracy(BinaryStatScores):
    """Mean of sensitivity and specificity: accuracy that a majority-class guess cannot inflate."""

    higher_is_better = True
    full_state_update = False

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self._final_state()
        sensitivity = tp / (tp + fn).clamp(min=1)
        specificity = tn / (tn + fp).clamp(min=1)
        return ((sensitivity + specificity) / 2).float()


def j_kappa_index(confusion: torch.Tensor, s: int, v: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The j-index and jκ-index of Mondéjar-Guerra et al. (2019) from a confusion matrix (rows: reference).

    j = Se_S + +P_S + Se_V + +P_V (0..4); jκ = κ / 2 + j / 8 (≤ 1), with κ Cohen's kappa over all classes.
    """
    cm = confusion.double()
    total = cm.sum().clamp(min=1)
    tp = cm.diagonal()
    se = tp / cm.sum(1).clamp(min=1)
    ppv = tp / cm.sum(0).clamp(min=1)
    observed = tp.sum() / total
    expected = (cm.sum(1) * cm.sum(0)).sum() / total**2
    kappa = (observed - expected) / (1 - expected).clamp(min=1e-12)
    j = se[s] + ppv[s] + se[v] + ppv[v]
    return j.float(), (kappa / 2 + j / 8).float()


class JKappaIndex(MulticlassConfusionMatrix):
    """j-index and jκ-index of the S and V classes (see ``j_kappa_index``), as {"j_index", "jk_index"}."""

    higher_is_better = True

    def __init__(self, num_classes: int, s_index: int, v_index: int) -> None:
        super().__init__(num_classes=num_classes)
        self.s_index, self.v_index = s_index, v_index

    def compute(self) -> dict[str, torch.Tensor]:
        j, jk = j_kappa_index(self.confmat, self.s_index, self.v_index)
        return {"j_index": j, "jk_index": jk}


PER_CLASS = {"se": MulticlassRecall, "ppv": MulticlassPrecision, "spec": MulticlassSpecificity, "f1": MulticlassF1Score}
BINARY = ("accuracy", "balanced_accuracy", "auroc", "f1", "sensitivity", "specificity", "ppv")
MULTICLASS = ("accuracy", "balanced_accuracy", "macro_f1", "kappa", "auroc")


def has_s_and_v(classes: Sequence[str]) -> bool:
    return "S" in classes and "V" in classes


def metric_names(classes: Sequence[str]) -> list[str]:
    """The scalar names ``beat_metrics(classes)`` computes (without the split prefix)."""
    if len(classes) == 2:
        return list(BINARY)
    per_class = [f"{kind}_{c}" for kind in PER_CLASS for c in classes]
    return [*MULTICLASS, *per_class, *(["j_index", "jk_index"] if has_s_and_v(classes) else [])]


def beat_metrics(classes: Sequence[str] = ("normal", "abnormal"), threshold: float = 0.5) -> MetricCollection:
    """Metrics over probabilities (not logits: see torchmetrics' auto-sigmoid pitfall).

    Two classes: P(abnormal) per beat and the binary metrics. More: class probabilities (batch, classes) and
    accuracy, balanced accuracy (macro sensitivity), macro F1, Cohen's kappa, macro AUROC, per class sensitivity
    ``se_<c>``, positive predictivity ``ppv_<c>``, specificity ``spec_<c>`` and ``f1_<c>``, and with S and V
    classes the j-index and jκ-index.
    """
    classes = list(classes)
    if len(classes) == 2:
        return MetricCollection(
            {
                "accuracy": BinaryAccuracy(threshold),
                "balanced_accuracy": BinaryBalancedAccuracy(threshold),
                "auroc": BinaryAUROC(),
                "f1": BinaryF1Score(threshold),
                "sensitivity": BinaryRecall(threshold),
                "specificity": BinarySpecificity(threshold),
                "ppv": BinaryPrecision(threshold),
            }
        )
    k = len(classes)
    metrics = {
        "accuracy": MulticlassAccuracy(num_classes=k, average="micro"),
        "balanced_accuracy": MulticlassAccuracy(num_classes=k, average="macro"),
        "macro_f1": MulticlassF1Score(num_classes=k, average="macro"),
        "kappa": MulticlassCohenKappa(num_classes=k),
        "auroc": MulticlassAUROC(num_classes=k, average="macro"),
        **{
            kind: ClasswiseWrapper(metric(num_classes=k, average=None), labels=classes, prefix=f"{kind}_")
            for kind, metric in PER_CLASS.items()
        },
    }
    if has_s_and_v(classes):
        metrics["jk"] = JKappaIndex(k, classes.index("S"), classes.index("V"))
    # no compute groups: with classwise wrappers they leave members "never updated" (spurious warnings)
    return MetricCollection(metrics, compute_groups=False)
