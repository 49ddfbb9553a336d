"""Choose a multi-class decision rule on cross-validated validation predictions, never on a test set.

    python -m ecg_lightning.calibrate <cross-validation sweep dir(s)> [--classes S V] [--metric f1_S_plus_V]
        [--ensemble | --vote S] [--seed-ensemble]

The folds' validation beats (``val_predictions.npz``: every beat of the pool validated once, by a model that did
not train on its subject) are joined per setting, and a log-prior offset per chosen class (``model.class_bias``:
added to the logits before the softmax) is searched on a grid to maximize the metric over the joined beats. The
offsets are printed as the override to train or evaluate with, with the metrics before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ecg_lightning.aggregate import selected_predictions
from ecg_lightning.metrics import j_kappa_index

GRID = np.round(np.arange(-2.0, 4.01, 0.25), 2)


def scores(confusion: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Accuracy, S and V sensitivity, +P and F1, j and jκ from a confusion matrix (rows: reference)."""
    s, v = classes.index("S"), classes.index("V")
    j, jk = j_kappa_index(torch.from_numpy(confusion), s, v)
    tp = np.diag(confusion)
    se, ppv = tp / np.maximum(confusion.sum(1), 1), tp / np.maximum(confusion.sum(0), 1)
    f1 = 2 * se * ppv / np.maximum(se + ppv, 1e-12)
    return {
        "accuracy": float(tp.sum() / max(confusion.sum(), 1)),
        "se_S": float(se[s]),
        "ppv_S": float(ppv[s]),
        "se_V": float(se[v]),
        "ppv_V": float(ppv[v]),
        "f1_S": float(f1[s]),
        "f1_V": float(f1[v]),
        # harmonic means cannot be raised by calling almost nothing S (j-index can: +P 1 on one beat)
        "f1_S_plus_V": float(f1[s] + f1[v]),
        "j_index": float(j),
        "jk_index": float(jk),
    }


def confusion_with(log_probs: np.ndarray, labels: np.ndarray, bias: np.ndarray) -> np.ndarray:
    k = log_probs.shape[1]
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, (log_probs + bias).argmax(1)), 1)
    return confusion


def choose_bias(
    probs: np.ndarray, labels: np.ndarray, classes: list[str], tuned: list[str], metric: str = "f1_S_plus_V"
) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """The offsets (one per class, 0 for classes not tuned) maximizing ``metric``; metrics without and with them.
    Ties go to the offsets nearest zero."""
    log_probs = np.log(np.clip(probs, 1e-12, None))
    at = [classes.index(c) for c in tuned]
    best, best_key = np.zeros(len(classes)), None
    for values in itertools.product(GRID, repeat=len(at)):
        bias = np.zeros(len(classes))
        bias[at] = values
        value = scores(confusion_with(log_probs, labels, bias), classes)[metric]
        key = (round(value, 6), -float(np.abs(bias).sum()))
        if best_key is None or key > best_key:
            best, best_key = bias, key
    before = scores(confusion_with(log_probs, labels, np.zeros(len(classes))), classes)
    return best, before, scores(confusion_with(log_probs, labels, best), classes)


# de Chazal et al. (2004)'s S +P on DS2: a published operating point, the floor the twenty-third round holds S +P at
PUBLISHED_PPV_S = 0.385
# a record counts as an S patient with at least this many S beats (DS1: 114, 118, 124, 207, 209, 220, 223)
MIN_S_BEATS = 10


def patient_mean(
    predicted: np.ndarray, labels: np.ndarray, records: np.ndarray, k: int, min_beats: int = MIN_S_BEATS
) -> tuple[float, dict[str, float]]:
    """The mean over records holding at least ``min_beats`` beats of class ``k`` of each one's sensitivity to it, and
    those sensitivities: every such patient counts once, however many beats it holds (on DS1 one patient holds
    almost half the S beats, so a pooled S sensitivity is mostly that patient's)."""
    names, index = np.unique(np.asarray(records).astype(str), return_inverse=True)
    of_class = np.bincount(index, weights=labels == k, minlength=len(names))
    found = np.bincount(index, weights=(labels == k) & (predicted == k), minlength=len(names))
    kept = np.flatnonzero(of_class >= min_beats)
    if not len(kept):
        raise ValueError(f"no record holds {min_beats} or more beats of class index {k}")
    each = {str(names[i]): float(found[i] / of_class[i]) for i in kept}
    return float(np.mean(list(each.values()))), each


# the twenty-fifth round's S offsets, relative to each record's median S-vs-N log-odds (classifier.relative_to_records:
# about 0 calls half a record S)
RELATIVE_GRID = np.round(np.arange(-12.0, 2.01, 0.25), 2)


def choose_operating_point(
    probs: np.ndarray,
    labels: np.ndarray,
    records: np.ndarray,
    classes: list[str],
    base: np.ndarray,
    min_ppv: float = PUBLISHED_PPV_S,
    grid: np.ndarray = GRID,
) -> tuple[np.ndarray, dict[str, Any]]:
    """``base``'s offsets with the S offset moved on the grid to maximize the patient mean of S sensitivity while the
    pooled S +P stays >= ``min_ppv`` (ties: the higher +P); if no offset reaches it, the one with the highest +P. Its
    scores, the patient mean and each S patient's sensitivity beside them, and the whole trade-off (``curve``: per S
    offset on the grid, the patient mean and the pooled S Se and +P) to show what the floor on +P costs."""
    log_probs = np.log(np.clip(probs, 1e-12, None))
    s = classes.index("S")
    best, best_key, best_info, curve = None, None, None, []
    for value in grid:
        bias = np.asarray(base, dtype=float).copy()
        bias[s] = value
        row = scores(confusion_with(log_probs, labels, bias), classes)
        mean, each = patient_mean((log_probs + bias).argmax(1), labels, records, s)
        curve.append({"s_offset": float(value), "patient_mean_se_S": mean, "se_S": row["se_S"], "ppv_S": row["ppv_S"]})
        reached = row["ppv_S"] >= min_ppv
        key = (reached, round(mean, 6) if reached else 0.0, row["ppv_S"])
        if best_key is None or key > best_key:
            best, best_key = bias, key
            best_info = {**row, "patient_mean_se_S": mean, "per_patient_se_S": each, "min_ppv_S": min_ppv}
    return best, {**best_info, "curve": curve}


def main() -> None:
    parser = argparse.ArgumentParser(description="Choose model.class_bias on cross-validated validation beats.")
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="cross-validation multirun folders")
    parser.add_argument("--classes", nargs="+", default=["S", "V"], help="classes whose offset is searched")
    parser.add_argument(
        "--metric", default="f1_S_plus_V", help="what the offsets maximize (default: f1_S_plus_V; see scores)"
    )
    parser.add_argument(
        "--ensemble", action="store_true", help="choose for the average of every setting found (one ensemble)"
    )
    parser.add_argument(
        "--seed-ensemble", action="store_true", help="choose for each setting's training seeds averaged"
    )
    parser.add_argument(
        "--vote", metavar="CLASS", help="choose for the first sweep's setting with the second's vote on CLASS"
    )
    parser.add_argument("--out", type=Path, help="also write the choice as JSON here")
    args = parser.parse_args()
    chosen = {}
    joined = selected_predictions(args.sweep_dirs, args.ensemble, args.vote, args.seed_ensemble)
    for setting, (probs, labels, classes, _) in joined.items():
        bias, before, after = choose_bias(probs, labels, classes, args.classes, args.metric)
        override = "model.class_bias=[" + ",".join(f"{b:g}" for b in bias) + "]"
        print(f"{setting}\n  {override}\n  before: {json.dumps(before)}\n  after:  {json.dumps(after)}")
        chosen[setting] = {"class_bias": bias.tolist(), "classes": classes, "before": before, "after": after}
    if args.out:
        args.out.write_text(json.dumps({"sweeps": [str(d) for d in args.sweep_dirs], "metric": args.metric,
                                        "settings": chosen}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
