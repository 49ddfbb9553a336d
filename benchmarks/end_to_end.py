"""End-to-end quality on held-out records: detect, classify, match to the reference beats.

A model used on a new recording first has to find the beats; a beat never detected can never be called
abnormal. For each record this runs the unannotated path of `predict` (our QRS detector, then the model) and
the annotated path (the reference beat positions, then the model), matches detected beats to reference beats
(150 ms window, `wfdb.processing.compare_annotations`, as AAMI EC57) and counts, per class:
missed reference beats as false negatives, and detections that match no reference beat as false positives of
the class they were called. The gap between the two paths is what beat detection costs.

    python benchmarks/end_to_end.py --ckpt <checkpoint> [--records 100 103 ...] [--root $MITDB_DIR]
        [--out results/benchmark_end_to_end.txt]

Default records: DS2 (held out from the benchmark model's training).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from common import emit  # benchmarks/common.py (scripts run from the repo root)
from tqdm.auto import tqdm

from ecg_lightning import report
from ecg_lightning.checkpoint import (
    LEADS_KEY,
    build_model,
    checkpoint_config,
    load_checkpoint,
)
from ecg_lightning.predict import classify_record

DS2 = "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "data/mitdb")))
    parser.add_argument("--records", nargs="+", default=DS2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ckpt = load_checkpoint(args.ckpt)
    run = checkpoint_config(ckpt)
    model = build_model(ckpt, run, args.ckpt)
    classes = list(run.data.label_sets[run.data.labels])
    k = len(classes)
    totals = {"annotated": np.zeros((k + 1, 3), np.int64), "detected": np.zeros((k + 1, 3), np.int64)}
    missed = np.zeros(k, np.int64)
    window = int(round(0.15 * run.data.fs))
    for name in tqdm(args.records, desc="Records", unit="record"):
        seen = ckpt.get(LEADS_KEY)
        # MIT-BIH's second lead is V1, V2, V4 or V5: read as in training (checkpoints before leads_seen lack it)
        annotated = classify_record(model, run.data, args.root / name, "atr", allow_other_lead=True, leads_seen=seen)
        detected = classify_record(model, run.data, args.root / name, None, allow_other_lead=True, leads_seen=seen)
        reference = annotated.index.label.astype(np.int64)
        ref, called = report.match_to_reference(
            annotated.index.sample, reference, detected.index.sample, detected.predicted, window
        )
        for path, (r, p) in (("annotated", (reference, annotated.predicted)), ("detected", (ref, called))):
            totals[path][:k] += report.class_counts(r, p, k)
            totals[path][k] += report.class_counts(np.sign(r), np.sign(p), 2)[1]  # any abnormal class vs normal
        missed += np.bincount(ref[(ref >= 0) & (called < 0)], minlength=k)
    lines = [
        f"{len(args.records)} records, checkpoint {args.ckpt}; match window {window} samples (150 ms)",
        "reference beats missed by the detector, per class: " + ", ".join(f"{c} {m}" for c, m in zip(classes, missed)),
        f"{'class':>8} | {'annotated beats: Se':>20} {'+P':>7} | {'detected beats: Se':>19} {'+P':>7}",
    ]
    for c, name in enumerate([*classes, "abnormal"]):
        cells = []
        for path in ("annotated", "detected"):
            tp, fn, fp = totals[path][c]
            cells.append(f"{tp / max(tp + fn, 1):20.3f} {tp / max(tp + fp, 1):7.3f}")
        lines.append(f"{name:>8} | {cells[0]} | {cells[1]}")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
