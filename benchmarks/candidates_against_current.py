"""Every candidate weighed against the model in place, on the same seeds: its patient mean of S Se and its composed
patient mean minus the current model's, one point per candidate and seed set, beside the spread two seed sets of one
recipe show (CBMS over its seed sets). Whether any change of the recipe gained more than retraining it would, at a
glance. Reads the selection files that ``selection_over_seeds.py --patient-gain --composition-gain`` writes; nothing
is trained or scored.

    python benchmarks/candidates_against_current.py results/aami_ds1_cv5_mlii_*_selection.json \
        --spread CBMS --out docs/ds1_candidates_against_current.png --leave-out '*record_batch_norm_seeds_*' \
        '*batch_norm_by_record_*' '*v_from_record_statistics_seeds_*' '*v_from_record_statistics_s_calls_*'

(left out: the 72nd-77th rounds' candidates scored by ``evaluate`` alone, pooled after each network's record-relative
decision while the model in place was pooled before it; docs/inter_patient.md, the seventy-seventh round)
"""

from __future__ import annotations

import argparse
import json
import re
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from ds1_s_patients import per_patient

MEASURES = {"patient_mean_se_S": "patient mean of S Se", "composed_patient_mean_se_S": "composed patient mean"}


def gains(paths: list[Path]) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """Each candidate's gain over its file's current model (``current``) on each measure, ordered by the first seed of
    its set; and each model's own value per seed set (its spread between sets). Only models with the record-relative
    decision trained on the file's seeds count: a row recorded from an earlier round (the relative base) does not. A
    comparison that a later round reported again beside its own candidate (the same candidate, current model, seeds
    and gains) is one point."""
    points, own = [], {}
    for path in paths:
        selection = json.loads(path.read_text())
        if not isinstance(selection.get("candidates"), dict) or "current" not in selection:
            raise SystemExit(f"{path}: not a selection file (no 'candidates' or 'current'); give files that "
                             "selection_over_seeds.py --out wrote")  # fmt: skip
        seeds = re.search(r"seeds_(\d+)_(\d+)", path.name)
        label = f"{seeds[1]}–{seeds[2]}" if seeds else path.stem
        rows, current = per_patient(selection), selection["current"]
        raw = selection["candidates"]  # references are not among them: their rows are left out here
        for name, row in rows.items():
            if not raw.get(name, {}).get("relative_to_records"):
                continue
            own.setdefault(name, {})[label] = row["patient_mean_se_S"]
            if name == current or current not in rows:
                continue
            same_networks = raw[name].get("sweep") is not None and raw[name].get("sweep") == raw[current].get("sweep")
            point = {
                "candidate": name,
                "current": current,
                "seeds": label,
                "first_seed": int(seeds[1]) if seeds else 0,
                "no_training": same_networks,
                **{k: row.get(k, np.nan) - rows[current].get(k, np.nan) for k in MEASURES},
            }
            if not any(point == earlier for earlier in points):
                points.append(point)
    return sorted(points, key=lambda p: (p["first_seed"], p["candidate"])), own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selections", nargs="+", type=Path, help="selection files (selection_over_seeds --out)")
    parser.add_argument("--spread", help="the model whose patient mean over its seed sets shades the noise band")
    parser.add_argument("--margin", type=float, default=0.09, help="the rules' margin drawn (default 0.09)")
    parser.add_argument("--out", type=Path, help="the figure (PNG)")
    parser.add_argument("--leave-out", nargs="*", default=[], metavar="PATTERN",
                        help="selection files whose names match these patterns (fnmatch) are left out, e.g. "
                             "comparisons found void")  # fmt: skip
    args = parser.parse_args()
    kept = [p for p in args.selections if not any(fnmatch(p.name, pattern) for pattern in args.leave_out)]
    points, own = gains(kept)
    if not points:
        raise SystemExit("no candidate beside a current model in these files")
    sets = own.get(args.spread, {}) if args.spread else {}
    band = float(np.std(list(sets.values()), ddof=1) * np.sqrt(2)) if len(sets) > 1 else None
    print("| candidate | seeds | against | " + " | ".join(MEASURES.values()) + " |")
    print("|---|---|---|" + "---|" * len(MEASURES))
    for p in points:
        note = " (no training)" if p["no_training"] else ""
        cells = " | ".join(f"{p[k]:+.3f}" for k in MEASURES)
        print(f"| {p['candidate']}{note} | {p['seeds']} | {p['current']} | {cells} |")
    if band is not None:  # a spread needs two seed sets or more
        values = np.array(list(sets.values()))
        listed = ", ".join(f"{v:.3f}" for v in values)
        print(f"{args.spread} over {len(sets)} seed sets: {values.mean():.3f} ± {values.std(ddof=1):.3f} ({listed}); "
              f"two sets differ by ~{band:.3f} (sd × √2)")  # fmt: skip
    if args.out:
        draw(points, band, args.margin, args.spread, args.out)
        print(f"figure: {args.out}")


def draw(points: list[dict], band: float | None, margin: float, spread: str | None, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    y = np.arange(len(points))[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(points) + 2.4))
    if band:
        ax.axvspan(-band, band, color="0.88", label=f"±{band:.3f}: two seed sets of {spread} (sd × √2)")
    ax.axvline(0, color="0.4", lw=0.8)
    ax.axvline(margin, color="tab:red", ls="--", lw=1, label=f"the margin asked, +{margin:g}")
    for key, colour, marker in zip(MEASURES, ("tab:blue", "tab:orange"), ("o", "s")):
        values = np.array([p[key] for p in points])
        filled = np.array([not p["no_training"] for p in points])
        ax.scatter(values[filled], y[filled], color=colour, marker=marker, label=MEASURES[key], zorder=3)
        ax.scatter(values[~filled], y[~filled], facecolors="none", edgecolors=colour, marker=marker, zorder=3)
    ax.set_yticks(y, [f"{p['candidate']} vs {p['current']}, seeds {p['seeds']}" for p in points], fontsize=8)
    ax.set_xlabel("gain over the model in place, same seeds\n(hollow: the same networks, only the decision changed)")
    ax.set_title("DS1 cross-validation: each candidate against the model in place", fontsize=10, pad=36)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)  # above the rows, at any height
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
