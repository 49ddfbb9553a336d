"""The dominant-S stress test over the DS1 cross-validation candidates (docs/inter_patient.md, seventh round).

Each candidate's pooled DS1 cross-validation is scored twice with its own decision offsets: as validated (the
folds' ``val_predictions.npz``) and re-scored with every record's reference beats taken from its S beats
(``evaluate side=val data.reference_beats=annotated_S`` over the same fold checkpoints, in outputs/stress/<sweep>).
Retention = S Se under the stress / S Se without it. Run the stress sweeps first:

    for s in resnet linear linear_local_rr resnet_longest_rr resnet_no_reference resnet_longest_rr_local_rr \
             c1 c2 c3 c4 c5 c6 c7 c8; do
      python -m ecg_lightning.evaluate -m "ckpt_path=$(ls -d outputs/cv/$s/*/ | sed 's|/$|/checkpoints/last.ckpt|' \
        | paste -sd, -)" side=val data.reference_beats=annotated_S hydra.sweep.dir=outputs/stress/$s
    done
    python benchmarks/dominant_s_stress.py --out results/aami_ds1_cv5_dominant_s_stress.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ecg_lightning.aggregate import pooled

# name: (cross-validation sweeps, how they combine, decision offsets chosen on the unstressed pooled beats)
CANDIDATES: dict[str, tuple[list[str], str | None, list[float]]] = {
    "R: BeatResNet + templates (aami_ds1ds2)": (["resnet"], None, [0, -1, -0.25, 0, 0]),
    "floor (aami_linear)": (["linear"], None, [0, -1.5, -0.5, 0, 0]),
    "V6's floor (record-independent RR)": (["linear_local_rr"], None, [0, -0.25, 0.25, 0, 0]),
    "L: R + longest-RR reference": (["resnet_longest_rr"], None, [0, -1.25, -0.75, 0, 0]),
    "E: R and the floor averaged": (["resnet", "linear"], "ensemble", [0, -0.25, 0.5, 0, 0]),
    "vote: R + the floor's vote on S (fifth round)": (["resnet", "linear"], "S", [0, 0.5, 0.5, 0, 0]),
    "V6: R + V6's floor's vote on S": (["resnet", "linear_local_rr"], "S", [0, 0, 0.25, 0, 0]),
    "LV6: L + V6's floor's vote on S (eighth round)": (
        ["resnet_longest_rr", "linear_local_rr"],
        "S",
        [0, -1, -1, 0, 0],
    ),
    "R0: R without record reference (ninth round)": (["resnet_no_reference"], None, [0, -2, -0.5, 0, 0]),
    "L6: L without record-normalized RR (ninth round)": (["resnet_longest_rr_local_rr"], None, [0, 1.75, -0.25, 0, 0]),
    "L6V6: L6 + V6's floor's vote on S (tenth round)": (
        ["resnet_longest_rr_local_rr", "linear_local_rr"],
        "S",
        [0, 0.5, 0, 0, 0],
    ),
    "C1: sequence": (["c1"], None, [0, -2, -2, 0, 0]),
    "C2: sequence, ten RR features": (["c2"], None, [0, -2, -2, 0, 0]),
    "C3: sequence, balanced weights": (["c3"], None, [0, -2, -0.5, 0, 0]),
    "C4: sequence + templates (aami_sequence)": (["c4"], None, [0, 4, 0.75, 0, 0]),
    "C5: sequence, contrast": (["c5"], None, [0, 4, 2.25, 0, 0]),
    "C6: sequence, rr_skip": (["c6"], None, [0, -2, -0.75, 0, 0]),
    "C7: sequence, rr_skip + contrast": (["c7"], None, [0, -0.5, -2, 0, 0]),
    "C8: sequence, templates + rr_skip": (["c8"], None, [0, 3, 1.25, 0, 0]),
}
KEPT = ("accuracy", "se_S", "ppv_S", "se_V", "ppv_V", "jk_index")


def score(folders: list[Path], how: str | None, bias: list[float]) -> dict[str, float]:
    ((_, row),) = pooled(folders, ensemble=how == "ensemble", vote=how if how not in (None, "ensemble") else None,
                         class_bias=bias).items()  # fmt: skip
    return {k: round(float(row[k]), 4) for k in KEPT} | {"beats": int(row["beats"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=Path, default=Path("outputs/cv"), help="the cross-validation sweeps")
    parser.add_argument("--stress", type=Path, default=Path("outputs/stress"), help="their stress-test sweeps")
    parser.add_argument("--out", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    rows = {}
    print("| candidate | jκ | S Se | S +P | V Se | V +P | S Se, stressed | retention |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (sweeps, how, bias) in CANDIDATES.items():
        plain = score([args.cv / s for s in sweeps], how, bias)
        stressed = score([args.stress / s for s in sweeps], how, bias)
        if plain["beats"] != stressed["beats"]:
            raise SystemExit(f"{name}: {plain['beats']} beats validated, {stressed['beats']} re-scored")
        retention = stressed["se_S"] / plain["se_S"] if plain["se_S"] else 0.0
        rows[name] = {"sweeps": sweeps, "combined": how, "class_bias": bias, "plain": plain, "stressed": stressed,
                      "retention": round(retention, 4)}  # fmt: skip
        p = plain
        print(f"| {name} | {p['jk_index']:.3f} | {p['se_S']:.3f} | {p['ppv_S']:.3f} | {p['se_V']:.3f} | "
              f"{p['ppv_V']:.3f} | {stressed['se_S']:.3f} | {retention:.2f} |")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"rule": "docs/inter_patient.md, seventh round", "candidates": rows}, indent=2))


if __name__ == "__main__":
    main()
