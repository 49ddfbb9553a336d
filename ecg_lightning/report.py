"""Evaluation reports: probabilities over a loader, metrics, the per-record table and figures."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchmetrics.classification import BinaryConfusionMatrix, BinaryROC  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ecg_lightning.metrics import beat_metrics  # noqa: E402

PER_RECORD_COLUMNS = ("record", "beats", "abnormal_fraction", "sensitivity", "specificity", "accuracy")
PER_SYMBOL_COLUMNS = ("symbol", "label", "beats", "called_abnormal", "accuracy")


@torch.inference_mode()
def predict_proba(module: torch.nn.Module, loader: DataLoader, desc: str = "Predicting") -> tuple[np.ndarray, np.ndarray]:
    """Probability of "abnormal" and the label of every window of ``loader``, in loader order."""
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    probs, labels = [], []
    for batch in tqdm(loader, desc=desc, unit="batch", leave=False):
        *inputs, y = batch
        probs.append(torch.sigmoid(module(*(t.to(device) for t in inputs))).float().cpu())
        labels.append(y)
    module.train(was_training)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy().astype(np.int64)


def binary_report(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """All beat metrics plus the confusion matrix [[TN, FP], [FN, TP]]."""
    p, y = torch.from_numpy(probs), torch.from_numpy(labels)
    report: dict[str, Any] = {k: float(v) for k, v in beat_metrics(threshold)(p, y).items()}
    report["confusion_matrix"] = BinaryConfusionMatrix(threshold)(p, y).tolist()
    report["beats"] = int(len(labels))
    report["threshold"] = threshold
    return report


def per_record(record: np.ndarray, names: tuple[str, ...], probs: np.ndarray, labels: np.ndarray,
               threshold: float = 0.5) -> list[dict[str, Any]]:
    """Beats, abnormal fraction, sensitivity, specificity and accuracy per record (NaN where undefined)."""
    n = len(names)
    pred = probs >= threshold

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(record, weights=mask.astype(np.float64), minlength=n)

    beats, positives = count(np.ones_like(pred)), count(labels == 1)
    tp, tn = count(pred & (labels == 1)), count(~pred & (labels == 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = (beats, positives / beats, tp / positives, tn / (beats - positives), (tp + tn) / beats)
    present = np.flatnonzero(beats > 0)
    return [{"record": names[i], **{c: round(float(v[i]), 4) for c, v in zip(PER_RECORD_COLUMNS[1:], columns)},
             "beats": int(beats[i])} for i in present]


def per_symbol(symbol: np.ndarray, probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> list[dict[str, Any]]:
    """Per annotation symbol (beat type): how many, and how often called abnormal: which beat types are missed."""
    kinds, which = np.unique(symbol, return_inverse=True)
    beats = np.bincount(which, minlength=len(kinds))
    called = np.bincount(which, weights=(probs >= threshold).astype(np.float64), minlength=len(kinds))
    label = np.bincount(which, weights=labels.astype(np.float64), minlength=len(kinds)) / beats
    rows = []
    for k, kind in enumerate(kinds):
        abnormal = label[k] >= 0.5
        rate = called[k] / beats[k]
        rows.append({"symbol": str(kind), "label": "abnormal" if abnormal else "normal", "beats": int(beats[k]),
                     "called_abnormal": round(float(rate), 4), "accuracy": round(float(rate if abnormal else 1 - rate), 4)})
    return sorted(rows, key=lambda r: -r["beats"])


def figures(probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, plt.Figure]:
    """Confusion-matrix and ROC figures, drawn by torchmetrics."""
    p, y = torch.from_numpy(probs), torch.from_numpy(labels)
    confusion = BinaryConfusionMatrix(threshold)
    confusion.update(p, y)
    cm_fig, cm_ax = confusion.plot(labels=["normal", "abnormal"])
    cm_ax.set_title("Confusion matrix (rows: reference)")
    roc = BinaryROC()
    roc.update(p, y)
    roc_fig, roc_ax = roc.plot(score=True)
    roc_ax.set_title("ROC: abnormal vs normal beats")
    return {"confusion_matrix": cm_fig, "roc": roc_fig}


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file through a temporary name and a rename: never half a file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def save_figure(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def rows_to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
