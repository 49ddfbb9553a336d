"""Choose among inter-patient candidates over several training seeds (docs/inter_patient.md, eleventh round).

Each candidate is one DS1 cross-validation sweep holding the same five folds trained with seeds 0, 1, 2. Its
decision offsets are chosen on the seeds' pooled beats (F1(S) + F1(V), as ``calibrate``); with them, each seed's
pooled jκ (mean ± sd over seeds), the retention under the dominant-S stress test (the same checkpoints re-scored
with every record's reference beats taken from its S beats, pooled over the seeds), and, reported only, the seed
ensemble with its own offsets. Then the rule written before the runs picks. Run the stress sweeps first:

    for c in l6 r0 l; do
      python -m ecg_lightning.evaluate -m "ckpt_path=$(ls -d outputs/cv/$c/*/ | sed 's|/$|/checkpoints/last.ckpt|' \
        | paste -sd, -)" side=val data.reference_beats=annotated_S hydra.sweep.dir=outputs/stress/$c
    done
    python benchmarks/selection_over_seeds.py --out results/aami_ds1_cv5_three_seeds_selection.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ecg_lightning.aggregate import pooled, selected_predictions
from ecg_lightning.calibrate import choose_bias

# name: its cross-validation sweep (and stress sweep) folder name
CANDIDATES = {"L6": "l6", "R0": "r0", "L": "l"}
CURRENT = "L6"
KEPT = ("accuracy", "se_S", "ppv_S", "se_V", "ppv_V", "kappa", "jk_index")


def only(rows: dict[str, dict]) -> dict:
    if len(rows) != 1:
        raise SystemExit(f"expected one setting, found {sorted(rows)}")
    return next(iter(rows.values()))


def offsets(sweep: Path, seeds: bool = False) -> list[float]:
    """F1(S) + F1(V)-best offsets on the sweep's pooled beats (every seed's, or the seed ensemble's)."""
    probs, labels, classes, _ = only(selected_predictions([sweep], seeds=seeds))
    bias, _, _ = choose_bias(probs, labels, classes, ["S", "V"])
    return [float(b) for b in bias]


def candidate(cv: Path, stress: Path) -> dict:
    bias = offsets(cv)
    plain = only(pooled([cv], class_bias=bias))
    stressed = only(pooled([stress], class_bias=bias))
    if plain["beats"] != stressed["beats"]:
        raise SystemExit(f"{cv}: {plain['beats']} beats validated, {stressed['beats']} re-scored under the stress")
    ensemble_bias = offsets(cv, seeds=True)
    ensemble = only(pooled([cv], seeds=True, class_bias=ensemble_bias))
    return {
        "sweep": str(cv),
        "class_bias": bias,
        "seeds": {s: {k: round(v[k], 4) for k in KEPT} for s, v in plain["seeds"].items()},
        "over_seeds": {k: [round(x, 4) for x in plain["over_seeds"][k]] for k in KEPT},
        "pooled_seeds": {k: round(plain[k], 4) for k in KEPT},
        "stressed_se_S": round(stressed["se_S"], 4),
        "retention": round(stressed["se_S"] / plain["se_S"], 4) if plain["se_S"] else 0.0,
        "seed_ensemble": {"class_bias": ensemble_bias, **{k: round(ensemble[k], 4) for k in KEPT}},
    }


def choose(rows: dict[str, dict]) -> tuple[str, str]:
    """The rule: the current model stays unless a candidate with retention >= 0.5 beats its mean jκ by more than
    the standard error of the difference of the two means and by at least 0.01; of several such, the highest."""
    mean = {n: r["over_seeds"]["jk_index"][0] for n, r in rows.items()}
    sd = {n: r["over_seeds"]["jk_index"][1] for n, r in rows.items()}
    n_seeds = {n: len(r["seeds"]) for n, r in rows.items()}
    better = {}
    for name, row in rows.items():
        if name == CURRENT or row["retention"] < 0.5:
            continue
        margin = max(0.01, math.sqrt(sd[name] ** 2 / n_seeds[name] + sd[CURRENT] ** 2 / n_seeds[CURRENT]))
        if mean[name] - mean[CURRENT] > margin:
            better[name] = mean[name]
    if not better:
        return CURRENT, f"no candidate beats {CURRENT} ({mean[CURRENT]:.3f}) by more than the margin"
    winner = max(better, key=better.get)
    return winner, f"{winner} ({mean[winner]:.3f}) beats {CURRENT} ({mean[CURRENT]:.3f}) by more than the margin"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=Path, default=Path("outputs/cv"), help="the cross-validation sweeps")
    parser.add_argument("--stress", type=Path, default=Path("outputs/stress"), help="their stress-test sweeps")
    parser.add_argument("--out", type=Path, help="write the table and the choice as JSON here")
    args = parser.parse_args()
    rows = {name: candidate(args.cv / folder, args.stress / folder) for name, folder in CANDIDATES.items()}
    head = ("candidate", "offsets", "jκ, mean ± sd over seeds", "S Se", "S +P", "V Se", "V +P", "retention",
            "seed ensemble jκ")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        m, e = r["over_seeds"], r["seed_ensemble"]
        cells = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" for k in ("jk_index", "se_S", "ppv_S", "se_V", "ppv_V")]
        cells += [f"{r['retention']:.2f}", f"{e['jk_index']:.3f}"]
        print(f"| {name} | {r['class_bias']} | " + " | ".join(cells) + " |")
    chosen, why = choose(rows)
    print(f"chosen: {chosen} — {why}")
    if args.out:
        args.out.write_text(json.dumps({"rule": "docs/inter_patient.md, eleventh round", "candidates": rows,
                                        "chosen": chosen, "why": why}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
