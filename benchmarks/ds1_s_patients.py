"""DS1's S patients one by one: each candidate's S sensitivity per DS1 patient with S beats, in the pooled five-fold
cross-validation (its seeds averaged, at its operating point), and beside it the trade-off the operating point is
chosen on (per S offset: the patient mean of S Se against the pooled S +P, with the floor on +P), from the selection
file the twenty-third round's rule writes (``selection_over_seeds.py --patient-gain``). Reads that file only; nothing
is trained or scored.

    python benchmarks/ds1_s_patients.py results/aami_ds1_cv5_s_patients_with_floor_reference.json \
        results/aami_ds1_cv5_floor_vote_selection.json results/aami_ds1_cv5_record_relative_s_selection.json \
        results/aami_ds1_cv5_record_relative_s_other_networks_selection.json --out docs/ds1_s_patients.png

Several files are drawn together, each model once (the first file that holds it).
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
    """Candidate name -> its operating point (offsets, per-patient S Se, patient mean, pooled S +P); references
    (measured beside the candidates, never chosen) follow, named as such."""
    rows = {
        n: {**c["operating_point"], "relative": c.get("relative_to_records", False)}
        for n, c in selection["candidates"].items()
        if "operating_point" in c
    }
    refs = selection.get("references", {})
    rows |= {f"{n} (reference)": c["operating_point"] for n, c in refs.items() if "operating_point" in c}
    if not rows:
        raise SystemExit("no candidate has an operating point; write the file with selection_over_seeds --patient-gain")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "selections", type=Path, nargs="+", help="JSON files written by selection_over_seeds.py --patient-gain"
    )
    parser.add_argument("--out", type=Path, default=Path("ds1_s_patients.png"))
    args = parser.parse_args()
    rows: dict[str, dict] = {}
    for path in args.selections:
        rows |= {name: row for name, row in per_patient(json.loads(path.read_text())).items() if name not in rows}
    patients = sorted(next(iter(rows.values()))["per_patient_se_S"])
    x = np.arange(len(patients))
    width = 0.8 / len(rows)
    fig, (ax, trade) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    for k, (name, point) in enumerate(rows.items()):
        se = [point["per_patient_se_S"][p] for p in patients]
        label = (
            f"{name}: patient mean {point['patient_mean_se_S']:.2f}, pooled S +P {point['ppv_S']:.2f} "
            f"({'relative ' if point.get('relative') else ''}S offset {point['class_bias'][1]:+g})"
        )
        bars = ax.bar(x + (k - (len(rows) - 1) / 2) * width, se, width, label=label)
        curve = point["curve"]
        trade.plot(
            [c["ppv_S"] for c in curve], [c["patient_mean_se_S"] for c in curve], ".-", color=bars[0].get_facecolor()
        )
        trade.plot(point["ppv_S"], point["patient_mean_se_S"], "o", ms=9, mfc="none", color=bars[0].get_facecolor())
    floor = next(iter(rows.values()))["min_ppv_S"]
    trade.axvline(floor, color="0.5", ls="--", lw=1)
    trade.text(floor, 1.0, f" +P floor {floor:g}", fontsize=7, color="0.4", va="top")
    trade.set_xlim(0, 1)
    trade.set_ylim(0, 1.05)
    trade.set_xlabel("pooled S +P")
    trade.set_ylabel("patient mean of S Se")
    trade.set_title("each S offset on the grid (circled: the operating point)", fontsize=9)
    ax.set_xticks(x, patients)
    ax.set_xlabel("DS1 record with at least 10 S beats")
    ax.set_ylabel("S Se (pooled 5-fold CV)")
    ax.set_ylim(0, 1.05)
    ax.set_title("DS1's S patients one by one: each candidate's seeds averaged, at its operating point", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {len(rows)} models, {len(patients)} patients")


if __name__ == "__main__":
    main()
