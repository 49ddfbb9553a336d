"""The linear floor fitted as the issue's logistic regression was, on DS1 only (docs/inter_patient.md, thirteenth
round): scikit-learn's class-balanced LogisticRegression, features standardized, fitted to convergence, on the
floor's own features (``BeatLinear.features``: 24 block means or 24 single samples of the band-passed beat from
-250 to +350 ms, and the floor's ten RR features), in the same five subject-grouped DS1 folds as the project's
cross-validation; pooled over the folds, no offsets. Nothing here touches DS2.

    python benchmarks/floor_as_logistic_regression.py --out results/aami_ds1_cv5_floor_as_logistic_regression.json

With ``--ds2`` (fourteenth round, a diagnostic that chooses nothing): the same fit on every DS1 subject (strict
protocol), scored once on DS2 per feature set (all, the 24 single samples alone, the ten RR features alone; since
the nineteenth round also all but the local RR irregularity, and the RR features without it), with the per-record
S and N sensitivity of the records that tell a model of S beats from a model of a QRS shape.

    python benchmarks/floor_as_logistic_regression.py --ds2 \
        --out results/aami_linear_logistic_regression_ds2_strict_by_features.json
    python benchmarks/floor_as_logistic_regression.py --ds2 data.standardize=false \
        --out results/aami_linear_logistic_regression_millivolts_ds2_strict_by_features.json
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

from ecg_lightning.data.rr import rr_feature_names
from ecg_lightning.report import metrics_report, per_record

FOLDS = 5
KEPT = ("accuracy", "se_S", "ppv_S", "se_V", "ppv_V", "kappa", "jk_index")


def floor_config(pooling: str, *overrides: str):
    return compose_train(["experiment=aami_linear", f"model.net.pooling={pooling}", *overrides])


# DS2's right-bundle-branch-block records (232: S beats the majority; 212, 231: no S beats), then its other S records
WATCHED = ("232", "212", "231", "222", "202", "100", "213")
# the nineteenth round: the one RR feature dropped to test whether it keeps a linear model off 232's S beats
DROPPED = "local_irregularity"


def side_features(dm, net, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One side's floor features, classes and record names, in the DataModule's beat order."""
    data = dm.eval_dataset(side)
    features, labels = [], []
    with torch.no_grad():
        for x, rr, y in dm.loader(data, 4096):
            features.append(net.features(x, rr).numpy())
            labels.append(y.numpy())
    return np.concatenate(features), np.concatenate(labels), np.asarray(dm.records.names)[data.beats.record]


def balanced_logistic_regression():
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=3000))


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
    features, labels, names = side_features(dm, instantiate(cfg.model.net), "train")
    return features, labels, np.array([fold_of[n] for n in names]), dm.class_names


def cross_validated(pooling: str) -> dict[str, float]:
    x, y, fold, classes = ds1_features(pooling)
    probs = np.zeros((len(y), len(classes)), dtype=np.float32)
    for k in range(FOLDS):
        train, val = fold != k, fold == k
        model = balanced_logistic_regression()
        model.fit(x[train], y[train])
        probs[np.ix_(val, model.classes_)] = model.predict_proba(x[val])
    report = metrics_report(probs, y, classes)
    return {k: round(report[k], 4) for k in KEPT}


def ds2_by_features(*overrides: str) -> dict[str, dict]:
    """Fit on every DS1 subject, score DS2 once per feature set: overall figures and the watched records."""
    cfg = floor_config("sample", *overrides)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup("fit")
    net = instantiate(cfg.model.net)
    x_train, y_train, _ = side_features(dm, net, "train")
    x_test, y_test, names = side_features(dm, net, "test")
    classes = dm.class_names
    rr_names = rr_feature_names(cfg.data.rr_features)
    n_beat = x_train.shape[1] - len(rr_names)  # the RR features come last (BeatLinear.features)
    everything = np.arange(x_train.shape[1])
    dropped = everything != n_beat + rr_names.index(DROPPED)
    columns = {
        "all": everything,
        "samples": everything[:n_beat],
        "rr": everything[n_beat:],
        f"all_but_{DROPPED}": everything[dropped],
        f"rr_but_{DROPPED}": everything[n_beat:][dropped[n_beat:]],
    }
    record_names = tuple(np.unique(names))
    record_index = np.searchsorted(record_names, names)
    rows = {}
    for name, cols in columns.items():
        model = balanced_logistic_regression().fit(x_train[:, cols], y_train)
        probs = np.zeros((len(y_test), len(classes)), dtype=np.float32)
        probs[:, model.classes_] = model.predict_proba(x_test[:, cols])
        report = metrics_report(probs, y_test, classes)
        records = per_record(record_index, record_names, probs, y_test, classes)
        watched = {r["record"]: {k: r[k] for k in ("n_N", "n_S", "se_N", "se_S")} for r in records}
        rows[name] = {
            **{k: round(report[k], 4) for k in KEPT},
            "records": {r: watched[r] for r in WATCHED if r in watched},
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument("--ds2", action="store_true", help="the fourteenth round's DS2 diagnostic (chooses nothing)")
    parser.add_argument("overrides", nargs="*", help="with --ds2: data overrides, e.g. data.standardize=false")
    args = parser.parse_args()
    if args.ds2:
        rows = ds2_by_features(*args.overrides)
        print("| features | " + " | ".join(KEPT) + " | " + " | ".join(f"{r} S Se / N Se" for r in WATCHED[:3]) + " |")
        for name, row in rows.items():
            cells = [f"{row['records'][r]['se_S']:.2f} / {row['records'][r]['se_N']:.2f}" for r in WATCHED[:3]]
            print(f"| {name} | " + " | ".join(f"{row[k]:.3f}" for k in KEPT) + " | " + " | ".join(cells) + " |")
        if args.out:
            protocol = "fit on every DS1 subject (strict: 201 out), DS2 scored once; a diagnostic: chooses nothing"
            payload = {"protocol": protocol, "overrides": args.overrides, **rows}
            args.out.write_text(json.dumps(payload, indent=2, default=float))
        return
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
