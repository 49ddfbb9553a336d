"""Binary beat-classification metrics, defined once and cloned per split."""

from __future__ import annotations

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
)


class BinaryBalancedAccuracy(BinaryStatScores):
    """Mean of sensitivity and specificity: accuracy that a majority-class guess cannot inflate."""

    higher_is_better = True
    full_state_update = False

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self._final_state()
        sensitivity = tp / (tp + fn).clamp(min=1)
        specificity = tn / (tn + fp).clamp(min=1)
        return ((sensitivity + specificity) / 2).float()


def beat_metrics(threshold: float = 0.5) -> MetricCollection:
    """Metrics over probabilities of "abnormal" (not logits: see torchmetrics' auto-sigmoid pitfall)."""
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
