"""The linear floor fitted as the issue's logistic regression was, on DS1 only (docs/inter_patient.md, thirteenth
round): scikit-learn's class-balanced LogisticRegression, features standardized, fitted to convergence, on the
floor's own features (``BeatLinear.features``: 24 block means or 24 single samples of the band-passed beat from
-250 to +350 ms, and the floor's ten RR features), in the same five subject-grouped DS1 folds as the project's
cross-validation; pooled over the folds, no offsets. Nothing here touches DS2.

    python benchmarks/floor_as_logistic_regression.py --out results/aami_ds1_cv5_floor_as_logistic_regression.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from common import compose_train
from hydra.utils import instantiate
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecg_lightning.report import metrics_report

FOLDS = 5
KEPT = ("accuracy", "se_S", "ppv_S", "se_V", "ppv_V", "kappa", "jk_index")


def floor_config(pooling: str, *split: str):
    return compose_train(["experiment=aami_linear", f"model.net.pooling={pooling}", *split])


def ds1_features(pooling: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Every DS1 beat's floor features, its class and the fold that validates its subject."""
    fold_of: dict[str, int] = {}
    for fold in range(FOLDS):
        kfold = ("data.inner_split=kfold", f"data.n_folds={FOLDS}", f"data.fold={fold}")
        dm = instantiate(floor_config(pooling, *kfold).data, _convert_="all")
        dm.setup("fit")
        fold_of.update({r: fold for r in dm.val_records})
    cfg = floor_config(pooling)  # every DS1 subject trains (data.inner_split=none): the "train" side is all of DS1
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    net = instantiate(cfg.model.net)
    data = dm.eval_dataset("train")
    features, labels = [], []
    with torch.no_grad():
        for x, rr, y in dm.loader(data, 4096):
            features.append(net.features(x, rr).numpy())
            labels.append(y.numpy())
    names = np.asarray(dm.records.names)[data.beats.record]
    return np.concatenate(features), np.concatenate(labels), np.array([fold_of[n] for n in names]), dm.class_names


def cross_validated(pooling: str) -> dict[str, float]:
    x, y, fold, classes = ds1_features(pooling)
    probs = np.zeros((len(y), len(classes)), dtype=np.float32)
    for k in range(FOLDS):
        train, val = fold != k, fold == k
        model = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000))
        model.fit(x[train], y[train])
        probs[np.ix_(val, model.classes_)] = model.predict_proba(x[val])
    report = metrics_report(probs, y, classes)
    return {k: round(report[k], 4) for k in KEPT}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    rows = {pooling: cross_validated(pooling) for pooling in ("mean", "sample")}
    print("| beat features | " + " | ".join(KEPT) + " |")
    for pooling, row in rows.items():
        print(f"| 24 {'block means' if pooling == 'mean' else 'single samples'} | "
              + " | ".join(f"{row[k]:.3f}" for k in KEPT) + " |")  # fmt: skip
    if args.out:
        protocol = "DS1 strict, 5 subject folds, pooled, no offsets"
        args.out.write_text(json.dumps({"protocol": protocol, **rows}, indent=2))


if __name__ == "__main__":
    main()
