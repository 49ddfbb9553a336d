"""How much of the patient a network's beat embeddings hold: a linear probe that tells a fold's patients apart from
the embeddings of their beats (docs/inter_patient.md, sixty-first round: does the patient adversary take the patient
out of the embeddings?), on the fold's training patients (the ones the adversary saw; windows without augmentation) or
its validation patients. The probe trains on every fourth run of beats and is scored on the runs halfway between (no
beat in both); chance is the largest patient's share of those beats. Nothing is chosen by it.

    python benchmarks/patient_probe.py CBMS=<fold 0 last.ckpt> CBMSG1=<fold 0 last.ckpt> --side train \
        --out results/aami_ds1_fold0_patient_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from common import compose_train
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ecg_lightning.checkpoint import build_model, checkpoint_config, load_checkpoint
from ecg_lightning.errors import instantiate_checked
from ecg_lightning.evaluate import use_local_data

CHUNK = 64  # runs embedded at a time


def embeddings(path: Path, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each beat's embedding, its record and its run, on ``side`` (train or val) of the checkpoint's own fold."""
    ckpt = load_checkpoint(path)
    run = checkpoint_config(ckpt)
    use_local_data(run.data, compose_train([]).data)
    run.data.augment = {}  # the training windows as they are
    run.data.patient_codes = False
    model = build_model(ckpt, run, path).eval()
    if not hasattr(model.net, "embedding_size"):
        raise SystemExit(f"{path}: {type(model.net).__name__} gives no beat embeddings (a beat-sequence model does)")
    datamodule = instantiate_checked(run.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup()
    data = datamodule.data_train if side == "train" else datamodule.data_val
    if data.runs is None:
        raise SystemExit(f"{path}: trained on single beats; the probe reads runs of beats")
    parts = []
    with torch.no_grad():
        for start in range(0, len(data), CHUNK):
            index = list(range(start, min(start + CHUNK, len(data))))
            *inputs, y = data.__getitems__(index)
            z = model.net(*inputs, embeddings=True)[1]
            beat = data.runs[index]
            real = y.numpy() >= 0
            parts.append((z.numpy()[real], data.beats.record[beat[real]], np.repeat(index, real.sum(1))))
    z, record, runs = (np.concatenate(p) for p in zip(*parts))
    return z, record, runs


def probe(z: np.ndarray, record: np.ndarray, runs: np.ndarray) -> dict:
    fit, scored = runs % 4 == 0, runs % 4 == 2  # training runs overlap by half a run: these two never do
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(z[fit], record[fit])
    held = record[scored]
    return {
        "patients": int(len(np.unique(record))),
        "beats_scored": int(len(held)),
        "accuracy": round(float(np.mean(clf.predict(z[scored]) == held)), 4),
        "chance": round(float(np.bincount(held).max() / len(held)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="NAME=path to a beat-sequence checkpoint of a DS1 fold")
    parser.add_argument("--side", choices=("train", "val"), default="train", help="the fold's patients to tell apart")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = {}
    for item in args.checkpoints:
        name, _, path = item.partition("=")
        rows[name] = {"checkpoint": path, "side": args.side, **probe(*embeddings(Path(path), args.side))}
        print(name, rows[name])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
