"""How many S beats sit in a rhythm as irregular as atrial fibrillation, per record: what a training change that
teaches "an early beat in an irregular rhythm is N" (``data.augment.irregular``) can cost, and whether a validation
set holds enough such beats to weigh it. Reads predictions files (``val_predictions.npz`` of a cross-validation,
``predictions.npz`` of ``evaluate``): their beats' records, samples and labels; nothing is trained or scored.

    python benchmarks/s_beats_by_rhythm.py outputs/<cv sweep> --out results/<name>.txt        # DS1, every fold
    python benchmarks/s_beats_by_rhythm.py outputs/<eval run>/predictions.npz                  # DS2

Each beat's two irregularity features (``data.rr``) are computed over the beats of its file, as the store computes
them over a record: ``local_irregularity`` (the sd of log RR over 16 beats each side: raised by fibrillation and by
long pauses alike) and ``local_rr_change`` (the median change of log RR from beat to beat: raised by fibrillation,
not by a minority of pauses). A beat counts as irregular by one of them when it is above that feature's cut.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import emit  # benchmarks/common.py (scripts run from the repo root)

from ecg_lightning.aggregate import load_predictions
from ecg_lightning.callbacks import VAL_PREDICTIONS
from ecg_lightning.data.rr import RR_FEATURES, rr_features
from ecg_lightning.evaluate import PREDICTIONS

# the lower quartile of each feature over the N beats of DS1's fibrillation patient 203 (the strict protocol's only
# one), in its cross-validation (CBMSP, seeds 72-74): a beat above it is in a rhythm as irregular as most of 203's
CUTS = {"local_irregularity": 0.294, "local_rr_change": 0.243}


def read(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Records, samples and labels of every beat in ``paths`` (predictions files, or folders searched for them; a
    record validated by several runs of one fold counted once), with the files' class names."""
    found = (sorted([*p.rglob(VAL_PREDICTIONS), *p.rglob(PREDICTIONS)]) for p in paths if not p.is_file())
    files = [p for p in paths if p.is_file()] + [f for group in found for f in group]
    if not files:
        raise SystemExit(f"{[str(p) for p in paths]}: no {PREDICTIONS} or {VAL_PREDICTIONS} found")
    seen, records, samples, labels, classes = set(), [], [], [], []
    for f in files:
        part = load_predictions(f)
        classes = classes or [str(c) for c in part["classes"]]
        if "sample" not in part:
            raise SystemExit(f"{f}: holds no beat samples (predictions written before they were saved)")
        record = part["record"].astype(str)
        for name in sorted(set(record) - seen):  # a record another seed's run validated is counted once
            seen.add(name)
            mine = record == name
            records.append(record[mine])
            samples.append(part["sample"][mine])
            labels.append(part["labels"][mine])
    order = np.lexsort((np.concatenate(samples), np.concatenate(records)))
    return np.concatenate(records)[order], np.concatenate(samples)[order], np.concatenate(labels)[order], classes


def irregular_s_beats(records: np.ndarray, samples: np.ndarray, labels: np.ndarray, s_index: int,
                      cuts: dict[str, float] = CUTS) -> dict[str, dict[str, int]]:  # fmt: skip
    """Per record holding S beats: its S beats, and how many of them are above each feature's cut."""
    _, codes = np.unique(records, return_inverse=True)
    names = list(cuts)
    features = rr_features(codes, samples, 1.0, windowed=names)  # the windowed ones among them computed too
    columns = {n: features[:, RR_FEATURES.index(n)] for n in names}
    out = {}
    for name in np.unique(records[labels == s_index]):
        mine = (records == name) & (labels == s_index)
        out[str(name)] = {"S": int(mine.sum())} | {n: int(np.sum(columns[n][mine] > cuts[n])) for n in names}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+", help="predictions files, or folders holding them")
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args()
    records, samples, labels, classes = read(args.paths)
    rows = irregular_s_beats(records, samples, labels, classes.index("S"))
    names = list(CUTS)
    lines = [f"S beats above each irregularity cut ({', '.join(f'{n} > {c}' for n, c in CUTS.items())}), per record:",
             f"| record | S beats | {' | '.join(names)} |", "|---|---|" + "---|" * len(names)]  # fmt: skip
    for name, row in rows.items():
        lines.append(f"| {name} | {row['S']} | " + " | ".join(str(row[n]) for n in names) + " |")
    total = {k: sum(r[k] for r in rows.values()) for k in ["S", *names]}
    lines.append(f"| all | {total['S']} | " + " | ".join(str(total[n]) for n in names) + " |")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
