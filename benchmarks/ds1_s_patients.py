"""DS1's S patients one by one: each candidate's S sensitivity per DS1 patient with S beats, in the pooled five-fold
cross-validation (its seeds averaged, at its operating point), from the selection file the twenty-third round's rule
writes (``selection_over_seeds.py --patient-gain``). Reads that file only; nothing is trained or scored.

    python benchmarks/ds1_s_patients.py results/aami_ds1_cv5_s_patients_selection.json --out docs/ds1_s_patients.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def per_patient(selection: dict) -> dict[str, dict]:
    """Candidate name -> its operating point (offsets, per-patient S Se, patient mean, pooled S +P)."""
    rows = {n: c["operating_point"] for n, c in selection["candidates"].items() if "operating_point" in c}
    if not rows:
        raise SystemExit("no candidate has an operating point; write the file with selection_over_seeds --patient-gain")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", type=Path, help="the JSON written by selection_over_seeds.py --patient-gain")
    parser.add_argument("--out", type=Path, default=Path("ds1_s_patients.png"))
    args = parser.parse_args()
    rows = per_patient(json.loads(args.selection.read_text()))
    patients = sorted(next(iter(rows.values()))["per_patient_se_S"])
    x = np.arange(len(patients))
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(1.0 * len(patients) + 2.5, 3.6))
    for k, (name, point) in enumerate(rows.items()):
        se = [point["per_patient_se_S"][p] for p in patients]
        label = (
            f"{name}: patient mean {point['patient_mean_se_S']:.2f}, pooled S +P {point['ppv_S']:.2f} "
            f"(S offset {point['class_bias'][1]:+g})"
        )
        ax.bar(x + (k - (len(rows) - 1) / 2) * width, se, width, label=label)
    ax.set_xticks(x, patients)
    ax.set_xlabel("DS1 record with at least 10 S beats")
    ax.set_ylabel("S Se (pooled 5-fold CV)")
    ax.set_ylim(0, 1.05)
    ax.set_title("DS1's S patients one by one: each candidate's seeds averaged, at its operating point", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {len(rows)} candidates, {len(patients)} patients")


if __name__ == "__main__":
    main()
