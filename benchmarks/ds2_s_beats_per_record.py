"""Where DS2's S beats are, and which of them each model finds: one bar per DS2 record holding S beats, from the
``per_record.csv`` that ``evaluate`` wrote for each model's ensemble of all its final seeds (strict protocol).
Reads results only; nothing is trained or scored.

    python benchmarks/ds2_s_beats_per_record.py --out docs/ds2_s_beats_per_record.png
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RESULTS = Path(__file__).parents[1] / "results"
# the DS2 record whose S beats are most of its beats (1,382 of DS2's 1,837): reported apart, as the rest of DS2's
# S beats tell whether a model misses S beats only where the patient's dominant beat is S
DOMINANT_S = "232"
# label: the results folder of the model's ensemble on DS2 (strict protocol)
MODELS = {
    "linear floor (5 seeds)": "aami_linear_ds2_strict_ensemble5",
    "recommended: MLII, stretch, premature and fibrillation timing (15)": "aami_sequence_mlii_fibrillation_timing_"
    "three_network_ensemble_ds2_strict_ensemble15",
    "before: the same without fibrillation timing (15)": "aami_sequence_mlii_premature_three_network_ensemble_ds2_"
    "strict_ensemble15",
    "two before: without premature timing either (15)": "aami_sequence_mlii_stretch_three_network_ensemble_ds2_"
    "strict_ensemble15",
    "BeatResNet, no irregularity (15)": "aami_no_irregularity_three_network_ensemble_ds2_strict_ensemble15",
    "beat-sequence, first inputs (5 seeds)": "aami_sequence_ds2_strict_ensemble5",
}


def s_beats(folder: Path) -> dict[str, tuple[int, int]]:
    """Per record with S beats: (S beats, S beats found)."""
    path = folder / "per_record.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: not found; evaluate the model's ensemble on DS2 first (docs/inter_patient.md)")
    rows = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            n = int(row["n_S"])
            if n:
                rows[row["record"]] = (n, round(n * float(row["se_S"])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folder holding the models' results")
    parser.add_argument("--out", type=Path, default=Path("ds2_s_beats_per_record.png"))
    args = parser.parse_args()
    found = {label: s_beats(args.results / folder) for label, folder in MODELS.items()}
    totals = next(iter(found.values()))
    records = sorted(totals, key=lambda r: totals[r][0])
    y = np.arange(len(records))
    height = 0.8 / len(MODELS)
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(records) + 1.5))
    ax.barh(y, [totals[r][0] for r in records], 0.9, color="0.88", label="S beats (reference)")
    total = sum(n for n, _ in totals.values())
    shares = {label: sum(f for _, f in rows.values()) / total for label, rows in found.items()}
    rest = total - totals.get(DOMINANT_S, (0, 0))[0]
    rest_shares = {
        label: sum(f for r, (_, f) in rows.items() if r != DOMINANT_S) / rest for label, rows in found.items()
    }
    for k, (label, rows) in enumerate(found.items()):
        offset = ((len(MODELS) - 1) / 2 - k) * height  # the first model on top, as in the legend
        found_here = [rows.get(r, (0, 0))[1] for r in records]
        share = f"{shares[label]:.0%} of all, {rest_shares[label]:.0%} outside {DOMINANT_S}"
        ax.barh(y + offset, found_here, height, label=f"found: {label}, {share}")
    for r, n in zip(y, (totals[r][0] for r in records), strict=True):
        ax.text(n, r, f" {n}", va="center", fontsize=7, color="0.35")
    ax.set_yticks(y, records, fontsize=8)
    ax.set_ylabel("DS2 record")
    ax.set_xlabel("S beats (each model's seeds averaged, strict protocol)")
    ax.set_title(f"DS2's {total:,} S beats by record, and how many each model finds", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {len(records)} records, {total} S beats ({rest} outside {DOMINANT_S}); found:")
    for label in found:
        print(f"  {label}: {shares[label]:.3f} of all, {rest_shares[label]:.3f} outside {DOMINANT_S}")


if __name__ == "__main__":
    main()
