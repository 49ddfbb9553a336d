"""Evaluation reports: probabilities over a loader, metrics, the per-record table and figures."""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchmetrics.classification import (  # noqa: E402
    BinaryConfusionMatrix,
    BinaryROC,
    MulticlassConfusionMatrix,
    MulticlassROC,
)
from tqdm.auto import tqdm  # noqa: E402

from ecg_lightning.classifier import beats_of_runs  # noqa: E402
from ecg_lightning.metrics import beat_metrics  # noqa: E402
from ecg_lightning.models.record_norm import record_statistics  # noqa: E402


@torch.inference_mode()
def predict_proba(
    module: torch.nn.Module,
    loader: DataLoader,
    desc: str = "Predicting",
    max_batches: int | None = None,
    record_norm: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and the label of every window of ``loader`` (of its first ``max_batches``), in loader order.

    Probabilities are P(abnormal) per window for a binary model, (windows, classes) otherwise; runs of beats give
    one row per beat, in run order, padding dropped. With ``record_norm`` the model runs record by record, each with
    its batch-norm statistics from that record's own beats (``models/record_norm.py``; an ordered loader over a
    whole evaluation index, as ``BeatDataModule.loader`` gives).
    """
    if record_norm and max_batches is not None:
        raise ValueError("record_norm reads every beat of each record: predict the whole loader (max_batches=None)")
    was_training = module.training
    module.eval()
    device = next(module.parameters()).device
    if record_norm:
        parts = [
            _predict_record(module, loader, items, whole, device)
            for items, whole in tqdm(loader.dataset.items_by_record(), desc=desc, unit="record", leave=False)
        ]
        probs, labels = (np.concatenate(part) for part in zip(*parts))
    else:
        total = len(loader) if max_batches is None else min(len(loader), max_batches)
        batches = tqdm(itertools.islice(loader, max_batches), desc=desc, total=total, unit="batch", leave=False)
        probs, labels = _scored(module, batches, device)
    module.train(was_training)
    return probs, labels


def _scored(module: torch.nn.Module, batches, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of ``batches`` (inputs..., labels), one row per beat, padding dropped."""
    probs, labels = [], []
    for *inputs, y in batches:
        logits, y = beats_of_runs(module(*(t.to(device) for t in inputs)).cpu(), y)
        probs.append(module.probabilities(logits).float())
        labels.append(y)
    return torch.cat(probs).numpy(), torch.cat(labels).numpy().astype(np.int64)


def _predict_record(
    module: torch.nn.Module, loader: DataLoader, items: np.ndarray, whole: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """One record's probabilities and labels, its batch-norm statistics read from its unpadded items ``whole``."""

    def batches(positions: np.ndarray) -> DataLoader:
        sampler = positions.tolist()
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, collate_fn=loader.collate_fn)

    with record_statistics(module, (tuple(t.to(device) for t in batch[:-1]) for batch in batches(whole))):
        return _scored(module, batches(items), device)


# class colours by class index (normal first): the strip figure's and report.html's
CLASS_COLORS = ("tab:green", "tab:red", "tab:orange", "tab:purple", "tab:blue", "tab:brown", "tab:pink")


def predicted_class(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Class index per beat: P(abnormal) > threshold for a binary model (as torchmetrics decides, so tables and
    metrics agree on a beat exactly at the threshold), else the most probable class."""
    return (probs > threshold).astype(np.int64) if probs.ndim == 1 else probs.argmax(axis=1)


def class_probabilities(probs: np.ndarray) -> np.ndarray:
    """(beats, classes) probabilities, also for a binary model's P(abnormal)."""
    return np.column_stack([1 - probs, probs]) if probs.ndim == 1 else probs


def metrics_report(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], threshold: float = 0.5
) -> dict[str, Any]:
    """All beat metrics (metrics.beat_metrics) plus the confusion matrix (rows: reference, columns: predicted)."""
    p, y = torch.from_numpy(probs), torch.from_numpy(labels)
    report: dict[str, Any] = {k: float(v) for k, v in beat_metrics(classes, threshold)(p, y).items()}
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted_class(probs, threshold)), 1)
    report["confusion_matrix"] = confusion.tolist()
    report["classes"] = list(classes)
    report["beats"] = int(len(labels))
    report["threshold"] = threshold
    return report


def per_record(
    record: np.ndarray,
    names: tuple[str, ...],
    probs: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    threshold: float = 0.5,
    databases: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Per record (and its database, when ``databases`` names each record's): beats, abnormal fraction, accuracy,
    and per class its beats and sensitivity (NaN where undefined)."""
    n = len(names)
    correct = predicted_class(probs, threshold) == labels

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(record, weights=mask.astype(np.float64), minlength=n)

    beats = count(np.ones_like(correct))
    columns = {
        "abnormal_fraction": count(labels != 0) / np.maximum(beats, 1),
        "accuracy": count(correct) / np.maximum(beats, 1),
    }
    for k, name in enumerate(classes):
        of_class = count(labels == k)
        columns[f"n_{name}"] = of_class
        with np.errstate(invalid="ignore", divide="ignore"):
            columns[f"se_{name}"] = count(correct & (labels == k)) / of_class
    rows = []
    for i in np.flatnonzero(beats > 0):
        row: dict[str, Any] = {"record": names[i], **({"database": databases[i]} if databases else {})}
        row["beats"] = int(beats[i])
        row.update({c: int(v[i]) if c.startswith("n_") else round(float(v[i]), 4) for c, v in columns.items()})
        rows.append(row)
    return rows


def per_record_columns(classes: Sequence[str], databases: bool = False) -> tuple[str, ...]:
    return (
        "record",
        *(["database"] if databases else []),
        "beats",
        "abnormal_fraction",
        "accuracy",
        *[f"n_{c}" for c in classes],
        *[f"se_{c}" for c in classes],
    )


def per_symbol(
    symbol: np.ndarray, probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], threshold: float = 0.5
) -> list[dict[str, Any]]:
    """Per annotation symbol (beat type): its class, how many, how often called each class (which types are missed)."""
    kinds, which = np.unique(symbol, return_inverse=True)
    beats = np.bincount(which, minlength=len(kinds))
    predicted = predicted_class(probs, threshold)
    rows = []
    for k, kind in enumerate(kinds):
        of_kind = which == k
        label = int(np.bincount(labels[of_kind]).argmax())
        called = np.bincount(predicted[of_kind], minlength=len(classes)) / beats[k]
        rows.append(
            {
                "symbol": str(kind),
                "class": classes[label],
                "beats": int(beats[k]),
                "accuracy": round(float(called[label]), 4),
                **{f"called_{c}": round(float(called[j]), 4) for j, c in enumerate(classes)},
            }
        )
    return sorted(rows, key=lambda r: -r["beats"])


def per_symbol_columns(classes: Sequence[str]) -> tuple[str, ...]:
    return ("symbol", "class", "beats", "accuracy", *[f"called_{c}" for c in classes])


def match_to_reference(
    ref_sample: np.ndarray, ref_class: np.ndarray, found_sample: np.ndarray, found_class: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """(reference class, called class) over every reference beat and every unmatched detection: a missed reference
    beat is called -1, a detection matching no reference beat has reference -1 (AAMI EC57 matching within
    ``window`` samples, ``wfdb.processing.compare_annotations``)."""
    import wfdb.processing

    if len(ref_sample) == 0 or len(found_sample) == 0:  # nothing to match (wfdb's comparison fails on empty input)
        return np.r_[ref_class, np.full(len(found_sample), -1)].astype(np.int64), np.r_[
            np.full(len(ref_sample), -1), found_class
        ].astype(np.int64)
    hit = wfdb.processing.compare_annotations(ref_sample, found_sample, window).matching_sample_nums
    called = np.where(hit >= 0, found_class[np.maximum(hit, 0)], -1)
    extra = np.setdiff1d(np.arange(len(found_sample)), hit[hit >= 0])
    return np.r_[ref_class, np.full(len(extra), -1)], np.r_[called, found_class[extra]]


def class_counts(reference: np.ndarray, called: np.ndarray, n_classes: int) -> np.ndarray:
    """(classes, 3): TP, FN, FP of each class (-1 on either side: no beat there)."""
    k = np.arange(n_classes)[:, None]
    is_ref, is_called = reference[None] == k, called[None] == k
    return np.stack([(is_ref & is_called).sum(1), (is_ref & ~is_called).sum(1), (~is_ref & is_called).sum(1)], 1)


def figures(
    probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], threshold: float = 0.5
) -> dict[str, plt.Figure]:
    """Confusion-matrix and ROC (one-vs-rest for several classes) figures, drawn by torchmetrics."""
    p, y = torch.from_numpy(probs), torch.from_numpy(labels)
    classes = list(classes)
    # the arrays are already whole: never sync with other processes (under DDP only rank 0 draws)
    local = {"sync_on_compute": False}
    if len(classes) == 2:
        confusion, roc = BinaryConfusionMatrix(threshold, **local), BinaryROC(**local)
    else:
        confusion, roc = MulticlassConfusionMatrix(len(classes), **local), MulticlassROC(len(classes), **local)
    confusion.update(p, y)
    cm_fig, cm_ax = confusion.plot(labels=classes)
    cm_ax.set_title("Confusion matrix (rows: reference)")
    roc.update(p, y)
    roc_fig, roc_ax = roc.plot(score=True) if len(classes) == 2 else roc.plot(score=True, labels=classes)
    roc_ax.set_title("ROC: abnormal vs normal beats" if len(classes) == 2 else "ROC: each class vs the rest")
    return {"confusion_matrix": cm_fig, "roc": roc_fig}


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a file through a temporary name and a rename: never half a file under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Arrays in one compressed .npz, written as ``write_atomic`` writes (never half a file under the real name)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def save_figure(fig: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    write_atomic(path, buffer.getvalue())


def columns_to_csv(columns: dict[str, np.ndarray]) -> str:
    """A CSV from equally long columns of text, built a column at a time (one string per row, no dict per row):
    a 24-hour recording's 110,000 beats in a few MiB (values must not contain commas)."""
    lines = np.full(len(next(iter(columns.values()))), "", dtype=object)
    for k, values in enumerate(columns.values()):
        lines = lines + ("," if k else "") + np.asarray(values, dtype=str).astype(object)
    return "\n".join([",".join(columns), *lines.tolist()]) + "\n"


def rows_to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
