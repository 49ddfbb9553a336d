"""Choose among inter-patient candidates over several training seeds (docs/inter_patient.md, rounds 11 and 12).

Each candidate is one DS1 cross-validation sweep holding the same five folds trained with several seeds. Its
decision offsets are chosen on the seeds' pooled beats (F1(S) + F1(V), as ``calibrate``); with them, each seed's
pooled jκ (mean ± sd over seeds), the retention under the dominant-S stress test (the same checkpoints re-scored
with every record's reference beats taken from its S beats, pooled over the seeds), and, reported only, the seed
ensemble with its own offsets. Then the rule written before the runs picks. Run the stress sweeps first:

    for c in l6 r0 l; do
      # each path quoted: folders of sweeps made before job folder names were made grammar-safe hold "[" or "~"
      python -m ecg_lightning.evaluate -m "ckpt_path=$(ls -d outputs/cv/$c/*/ \
        | sed "s|/$|/checkpoints/last.ckpt|; s|.*|'&'|" | paste -sd, -)" side=val data.reference_beats=annotated_S \
        hydra.sweep.dir=outputs/stress/$c
    done
    python benchmarks/selection_over_seeds.py --out results/aami_ds1_cv5_three_seeds_selection.json

The twelfth round (seeds 3, 4, 5 of L6 and R0; S stability weighed first):

    python benchmarks/selection_over_seeds.py --cv outputs/cv12 --stress outputs/stress12 --candidates L6=l6 R0=r0 \
        --stability 0.05 --out results/aami_ds1_cv5_fresh_seeds_s_stability_selection.json

The thirteenth round (W: L6 with callbacks=ema, the same seeds; the twelfth round's rule; outputs/cv13/l6 and
outputs/stress13/l6 link to the twelfth round's L6 folders):

    python benchmarks/selection_over_seeds.py --cv outputs/cv13 --stress outputs/stress13 --candidates L6=l6 W=w \
        --stability 0.05 --out results/aami_ds1_cv5_weight_averaging_selection.json

The sixteenth round (E3: L6 as three networks averaged, three instances of three fresh seeds each; an instance takes
the place of a seed):

    python benchmarks/selection_over_seeds.py --cv outputs/cv16 --stress outputs/stress16 --ensembles E3=e3a,e3b,e3c \
        --recorded L6=results/aami_ds1_cv5_weight_averaging_selection.json --stability 0.05 \
        --out results/aami_ds1_cv5_three_network_ensemble_selection.json

The seventeenth round (LT: L6 trained with template swap, seeds 3, 4, 5; the retention gain weighs first):

    python benchmarks/selection_over_seeds.py --cv outputs/cv17 --stress outputs/stress17 --candidates LT=lt \
        --recorded L6=results/aami_ds1_cv5_weight_averaging_selection.json --retention-gain 0.1 \
        --out results/aami_ds1_cv5_template_swap_half_selection.json

The eighteenth round (LT2: swap chance 0.2, the same rule):

    python benchmarks/selection_over_seeds.py --cv outputs/cv18 --stress outputs/stress18 --candidates LT2=lt2 \
        --recorded L6=results/aami_ds1_cv5_weight_averaging_selection.json --retention-gain 0.1 \
        --out results/aami_ds1_cv5_template_swap_fifth_selection.json

The nineteenth round (L6I: L6 without the local RR irregularity, seeds 3, 4, 5; an input that does not earn its
place on DS1 is dropped):

    python benchmarks/selection_over_seeds.py --cv outputs/cv19 --stress outputs/stress19 --candidates L6I=l6i \
        --recorded L6=results/aami_ds1_cv5_weight_averaging_selection.json --parsimony \
        --out results/aami_ds1_cv5_without_irregularity_selection.json

The twentieth round (SL6I: the beat-sequence model with L6I's inputs, seeds 3, 4, 5, against L6I's recorded row;
the seeds averaged weigh first, as the recommended model is three networks averaged):

    python benchmarks/selection_over_seeds.py --cv outputs/cv20 --stress outputs/stress20 --candidates SL6I=sl6i \
        --recorded L6I=results/aami_ds1_cv5_without_irregularity_selection.json --current L6I --ensemble-gain 0.01 \
        --out results/aami_ds1_cv5_sequence_without_irregularity_selection.json

The twenty-first round (SL6I on fresh seeds 6, 7, 8; the S Se under the stress, not its ratio, as the floor):

    python benchmarks/selection_over_seeds.py --cv outputs/cv21 --stress outputs/stress21 --candidates SL6I=sl6i \
        --recorded L6I=results/aami_ds1_cv5_without_irregularity_selection.json --current L6I --ensemble-gain 0.01 \
        --stressed-floor --out results/aami_ds1_cv5_sequence_without_irregularity_fresh_seeds_selection.json

The twenty-second round (SL6IT: SL6I trained with the template swap at 0.2, seeds 9, 10, 11; the same rule):

    python benchmarks/selection_over_seeds.py --cv outputs/cv22 --stress outputs/stress22 --candidates SL6IT=sl6it \
        --recorded L6I=results/aami_ds1_cv5_without_irregularity_selection.json --current L6I --ensemble-gain 0.01 \
        --stressed-floor --out results/aami_ds1_cv5_sequence_template_swap_selection.json

The twenty-third round (SL6IT, S1, S1T on fresh seeds 12, 13, 14; DS1's S patients one by one at a published
operating point):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r \
        --candidates SL6IT=sl6it S1=s1 S1T=s1t --current SL6IT --patient-gain 0.1 \
        --out results/aami_ds1_cv5_s_patients_selection.json

and beside it, as a diagnostic that chooses nothing, the linear floor on the same folds and seeds (``--reference``:
measured like a candidate, never eligible):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r \
        --candidates SL6IT=sl6it S1=s1 S1T=s1t --reference FLOOR=floor --current SL6IT --patient-gain 0.1 \
        --out results/aami_ds1_cv5_s_patients_with_floor_reference.json

The twenty-fourth round (SV: SL6IT's seeds averaged with the floor's voting on S; the twenty-third round's rule):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r --candidates SL6IT=sl6it \
        --votes SV=sl6it+floor --current SL6IT --patient-gain 0.1 --out results/aami_ds1_cv5_floor_vote_selection.json

The twenty-fifth round (SL6IT-R: SL6IT with the S decision relative to each record; the same rule):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r --candidates SL6IT=sl6it \
        --relative SL6IT-R=sl6it --current SL6IT --patient-gain 0.1 \
        --out results/aami_ds1_cv5_record_relative_s_selection.json

The twenty-seventh round (S1T-RL, trained for the record-relative decision, against S1T-R, the current model) and the
twenty-eighth (S1T-RL's decision measured from the median of the 33 or 129 beats around each beat):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r --candidates SL6IT=sl6it \
        --relative-base SL6IT --relative S1T-R=s1t S1T-RL=s1trl --current S1T-R --patient-gain 0.1 \
        --out results/aami_ds1_cv5_relative_s_loss_selection.json
    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r --candidates SL6IT=sl6it \
        --relative-base SL6IT --relative S1T-RL=s1trl S1T-RL-W33=s1trl:33 S1T-RL-W129=s1trl:129 --current S1T-RL \
        --patient-gain 0.1 --out results/aami_ds1_cv5_relative_s_window_selection.json

The thirtieth round (S1T-RL3 and S1T-RL-M2: the run-relative loss's weight 3 and margin -2; S1T-RL and SL6IT's
offsets as the twenty-ninth round recorded them, their sweeps on an earlier machine):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r \
        --recorded SL6IT=results/aami_ds1_cv5_relative_s_loss_long_runs_selection.json \
        S1T-RL=results/aami_ds1_cv5_relative_s_loss_long_runs_selection.json --relative-base SL6IT \
        --relative S1T-RL3=s1trl3 S1T-RL-M2=s1trlm2 --current S1T-RL --patient-gain 0.1 \
        --out results/aami_ds1_cv5_relative_s_loss_weight_margin_selection.json

The thirty-first round (a 10th-percentile reference for the record-relative decision, weighed by the composition
stress; S1T-RL's sweeps trained again with the twenty-seventh round's command):

    python benchmarks/selection_over_seeds.py --cv outputs/cv23r --stress outputs/stress23r \
        --recorded SL6IT=results/aami_ds1_cv5_relative_s_loss_long_runs_selection.json --relative-base SL6IT \
        --relative S1T-RL=s1trl S1T-RL-Q10=s1trl:q10 --current S1T-RL --patient-gain 0.1 --composition-gain 0.1 \
        --out results/aami_ds1_cv5_relative_s_low_quantile_selection.json

The fifteenth round (SL6: the beat-sequence model with L6's inputs, seeds 3, 4, 5; L6's row as the thirteenth round
recorded it, its sweeps not on this machine):

    python benchmarks/selection_over_seeds.py --cv outputs/cv15 --stress outputs/stress15 --candidates SL6=sl6 \
        --recorded L6=results/aami_ds1_cv5_weight_averaging_selection.json --stability 0.05 \
        --out results/aami_ds1_cv5_sequence_longest_rr_local_rr_selection.json

The fifty-sixth round (CBMSLR against CBMS trained beside it on seeds 57-59; the patient mean alone asked to gain,
the composed patient mean, stressed S Se and jκ within the tolerance; ``--ahead-on composed`` asks the composed one):

    python benchmarks/selection_over_seeds.py --cv outputs/cv56a/cv --stress outputs/cv56a/stress \
        --recorded SL6IT=results/aami_ds1_cv5_relative_s_loss_long_runs_selection.json --relative-base SL6IT \
        --relative CBMS=CBMS:q10 CBMSLR=CBMSLR:q10 --current CBMS --patient-gain 0.09 --composition-gain 0.09 \
        --either-gain --ahead-on patient --out results/aami_ds1_cv5_mlii_longest_rr_template_seeds_57_59_selection.json

The sixty-fourth round (CBMSPI against CBMSP: the share of record 203's N beats called S must fall by a quarter,
the patient mean, composed patient mean, stressed S Se and jκ within the tolerance):

    python benchmarks/selection_over_seeds.py --cv outputs/cv64/cv --stress outputs/cv64/stress \
        --recorded SL6IT=results/aami_ds1_cv5_relative_s_loss_long_runs_selection.json --relative-base SL6IT \
        --relative CBMSP=CBMSP:q10 CBMSPI=CBMSPI:q10 --current CBMSP --fewer-false-s 203 --false-s-cut 0.25 \
        --out results/aami_ds1_cv5_mlii_fibrillation_timing_seeds_69_71_selection.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from ecg_lightning.aggregate import ensemble_of, pooled, selected_predictions, with_class_bias
from ecg_lightning.calibrate import (
    GRID,
    MIN_S_BEATS,
    RELATIVE_GRID,
    choose_bias,
    choose_operating_point,
    patient_mean,
)
from ecg_lightning.classifier import relative_to_records
from ecg_lightning.data.rr import paused_timing, pre_post_rr, reference_mask
from ecg_lightning.report import metrics_report

# name: its cross-validation sweep (and stress sweep) folder name (the eleventh round's; --candidates overrides)
CANDIDATES = {"L6": "l6", "R0": "r0", "L": "l"}
CURRENT = "L6"
# the retention under the stress test below which a candidate cannot be chosen
MIN_RETENTION = 0.5
# the seventeenth round: how far below the current model's seed-ensemble jκ a candidate chosen for its retention may be
ENSEMBLE_TOLERANCE = 0.02
KEPT = ("accuracy", "se_S", "ppv_S", "se_V", "ppv_V", "kappa", "jk_index")
# the twenty-third round: how far below the current model a candidate chosen for DS1's S patients may be on the S Se
# under the stress and on jκ, and the gain in its own patient mean for which the current model takes that point
PATIENT_TOLERANCE = 0.05
OWN_POINT_GAIN = 0.05
# the thirty-first round's composition stress: the share of S among a record's S and N beats, record 232's (the issue)
COMPOSED_S_SHARE = 0.78
# --ahead-on: the means of which one must be ahead by the gain (the thirty-third round: either; the fifty-second on:
# the patient mean; the fifty-seventh: the composed patient mean)
AHEAD_ON = {
    "either": ("patient_mean_se_S", "composed_patient_mean_se_S"),
    "patient": ("patient_mean_se_S",),
    "composed": ("composed_patient_mean_se_S",),
}
AHEAD_WORDS = {
    AHEAD_ON["either"]: "either mean",
    AHEAD_ON["patient"]: "the patient mean",
    AHEAD_ON["composed"]: "the composed patient mean",
}


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


def operating_point(
    where: Path, probs: np.ndarray, labels: np.ndarray, records: np.ndarray, classes: list[str], base, grid=GRID
) -> tuple[list[float], dict]:
    """``calibrate.choose_operating_point`` from the offsets ``base``, ending in one message naming ``where`` when no
    S patient was validated."""
    try:
        bias, point = choose_operating_point(probs, labels, records, classes, np.asarray(base, dtype=float), grid=grid)
    except ValueError as error:  # no S patient among the validated records
        raise SystemExit(f"{where}: {error}; the patient mean needs DS1's S patients validated") from None
    return [float(b) for b in bias], point


def point_row(offsets: list[float], at: dict, point: dict, stressed: dict) -> dict:
    """An operating point as the selection file records it: the offsets, the scores there (``at``), the patient
    mean and each S patient's S Se, the S Se under the stress, the +P floor and the whole trade-off."""
    return {
        "class_bias": offsets,
        **{k: round(at[k], 4) for k in KEPT},
        "patient_mean_se_S": round(point["patient_mean_se_S"], 4),
        "per_patient_se_S": {r: round(v, 4) for r, v in point["per_patient_se_S"].items()},
        "stressed_se_S": round(stressed["se_S"], 4),
        "min_ppv_S": point["min_ppv_S"],
        "curve": [{k: round(v, 4) for k, v in step.items()} for step in point["curve"]],
    }


def at_operating_point(
    cv: Path | list[Path], stress: Path | list[Path], base: list[float], vote: str | None = None
) -> dict:
    """The seeds averaged at the operating point that weighs DS1's S patients one by one (``operating_point`` from
    the F1 offsets ``base``), the S Se under the stress at the same offsets, and the patient mean at ``base`` for
    comparison. With ``vote`` (a class), ``cv`` and ``stress`` are [network, voter] sweeps, each one's seeds
    averaged, the voter voting on that class (``combine --vote``)."""
    cvs, stresses = ([cv], [stress]) if isinstance(cv, Path) else (list(cv), list(stress))
    probs, labels, classes, info = only(selected_predictions(cvs, vote=vote, seeds=True))
    records = np.concatenate([np.asarray(part["record"]).astype(str) for part in info["parts"]])
    offsets, point = operating_point(cvs[0], probs, labels, records, classes, base)
    at = only(pooled(cvs, vote=vote, seeds=True, class_bias=offsets))
    stressed = only(pooled(stresses, vote=vote, seeds=True, class_bias=offsets))
    at_base = (np.log(np.clip(probs, 1e-12, None)) + np.asarray(base, dtype=float)).argmax(1)
    base_mean, _ = patient_mean(at_base, labels, records, classes.index("S"))
    return {**point_row(offsets, at, point, stressed), "patient_mean_se_S_at_f1_offsets": round(base_mean, 4)}


def vote_candidate(cv: Path, stress: Path, network: str, voter: str, vote: str = "S") -> dict:
    """A network's seeds averaged with a voter's seeds averaged voting on ``vote`` (the twenty-fourth round), both
    cross-validated on the same folds: its F1 offsets and its operating point on the voted probabilities. Only the
    seeds averaged are scored (the patient rule weighs nothing else)."""
    sweeps, stressed = [cv / network, cv / voter], [stress / network, stress / voter]
    probs, labels, classes, _ = only(selected_predictions(sweeps, vote=vote, seeds=True))
    bias = [float(b) for b in choose_bias(probs, labels, classes, ["S", "V"])[0]]
    at_f1 = only(pooled(sweeps, vote=vote, seeds=True, class_bias=bias))
    return {
        "sweeps": [str(p) for p in sweeps],
        "vote": vote,
        "class_bias": bias,
        "seed_ensemble": {"class_bias": bias, **{k: round(at_f1[k], 4) for k in KEPT}},
        "operating_point": at_operating_point(sweeps, stressed, bias, vote),
    }


def longest_rr_beats(records: np.ndarray, pre: np.ndarray) -> np.ndarray:
    """Each beat: whether it is among its record's fifth with the longest preceding RR (``data.rr.reference_mask``,
    the beats ``data.reference_beats=longest_rr`` takes as the record's normal ones; the thirty-sixth round)."""
    _, codes = np.unique(np.asarray(records).astype(str), return_inverse=True)
    return reference_mask(codes, pre, "longest_rr")


def preceding_rr(parts: list[dict], donors: list[dict], pause: float = 0.0) -> np.ndarray:
    """The preceding RR (samples) of every beat of the joined ``parts``, in their order, from the beats' samples:
    a part without them (a training job's ``val_predictions.npz`` before they were saved) takes them from the
    ``donors`` part that validated the same records and labels (the stress sweep's ``evaluate`` jobs). Each part's
    beats are in store order: by record, then sample. With ``pause`` (> 1: a sweep re-scored under
    ``data.pause_stress``) the RR are those of the paused timing the features were computed from
    (``rr.paused_timing`` over the part's beats, class 0 the normal one: every beat of a record, as a beat-sequence
    model's padded edges keep them), so the longest-RR fifth is the stressed record's."""
    out = []
    for part in parts:
        same = [
            d
            for d in donors
            if np.array_equal(d["record"], part["record"]) and np.array_equal(d["labels"], part["labels"])
        ]
        sample = part.get("sample", same[0]["sample"] if same and "sample" in same[0] else None)
        if sample is None:
            raise SystemExit(
                f"records {sorted(set(part['record'].tolist()))}: the longest-RR reference needs the beats' samples, "
                "and no predictions of these records hold them (evaluate them with side=val)"
            )
        _, codes = np.unique(np.asarray(part["record"]).astype(str), return_inverse=True)
        within = codes[1:] == codes[:-1]
        if np.any(np.diff(sample)[within] <= 0) or np.count_nonzero(~within) != codes.max(initial=-1):
            raise SystemExit("predictions not in store order (by record, then sample): the preceding RR is unknown")
        if pause:
            sample = paused_timing(codes, np.asarray(sample, dtype=np.float64), part["labels"] == 0, pause)
        out.append(pre_post_rr(codes, np.asarray(sample), 1.0)[0])
    return np.concatenate(out) if out else np.zeros(0)


def pause_factor(sweeps: list[Path]) -> float:
    """The ``data.pause_stress`` factor the ``evaluate`` jobs of these sweeps (one model's, pooled) ran with (their
    Hydra configs; one for all)."""
    from omegaconf import OmegaConf

    configs = [c for sweep in sweeps for c in sweep.glob("*/.hydra/config.yaml")]
    factors = {float(OmegaConf.load(c).data.get("pause_stress", 0.0)) for c in configs}
    if len(factors) != 1 or not next(iter(factors)) > 1:
        where = "+".join(map(str, sweeps))
        raise SystemExit(f"{where}: --pause-stress needs evaluate jobs run with one data.pause_stress > 1: {factors}")
    return factors.pop()


def composed_patient_mean(
    probs: np.ndarray,
    labels: np.ndarray,
    records: np.ndarray,
    classes: list[str],
    offsets: list[float],
    reference: dict,
    share: float = COMPOSED_S_SHARE,
    pre: np.ndarray | None = None,
) -> tuple[float, dict[str, float]]:
    """The composition stress (thirty-first round): each S patient's record (``calibrate.MIN_S_BEATS`` S beats or
    more) keeps its beats that are not N and a random subset of its N beats (generator seeded 0 per record) such that
    S beats are ``share`` of the kept S and N beats, as in record 232; the record-relative decision (``reference``:
    ``relative_to_records``' keywords) is measured over the kept beats, at ``offsets``. Returns the mean over the
    patients of their S Se, and each one's. The scores are the network's on the whole record: a stress of the decision.
    With ``pre`` (each beat's preceding RR) the reference is the kept beats' longest-RR fifth (``longest_rr_beats``).
    """
    s, n = classes.index("S"), classes.index("N")
    each = {}
    for name in np.unique(records):
        mine = np.flatnonzero(records == name)
        n_s = int(np.sum(labels[mine] == s))
        if n_s < MIN_S_BEATS:
            continue
        normal = mine[labels[mine] == n]
        wanted = min(len(normal), round(n_s * (1 - share) / share))
        kept = np.sort(np.r_[mine[labels[mine] != n], np.random.default_rng(0).choice(normal, wanted, replace=False)])
        among = None if pre is None else longest_rr_beats(records[kept], pre[kept])
        measured = relative_to_records(probs[kept], records[kept], classes, **reference, among=among)
        called = (np.log(np.clip(measured, 1e-12, None)) + np.asarray(offsets)).argmax(1)
        each[str(name)] = float(np.sum((called == s) & (labels[kept] == s)) / n_s)
    if not each:
        raise SystemExit(f"no record holds {MIN_S_BEATS} or more S beats: the composition stress needs S patients")
    return float(np.mean(list(each.values()))), each


def pool_of(sweeps: list[Path]) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The networks of one or several sweeps as one averaged model: one setting's seeds over all the folders, or, when
    the folders hold several settings (two recipes; the eighty-second round), each setting's seeds averaged and the
    settings averaged alike (with as many seeds each, the mean of every network)."""
    joined = selected_predictions(sweeps, seeds=True)
    return only(joined if len(joined) == 1 else ensemble_of(joined))


def relative_candidate(
    cv: Path | list[Path],
    stress: Path | list[Path],
    base: list[float],
    window: int | None = None,
    quantile: float = 0.5,
    longest_rr: bool = False,
    pause: Path | list[Path] | None = None,
) -> dict:
    """The sweep's seeds averaged with the S decision relative to each record (``classifier.relative_to_records``; the
    twenty-fifth round), or with ``window`` to the beats around each beat (the twenty-eighth), or with ``quantile``
    from that quantile of the record in place of its median (the thirty-first): the operating point is the relative S
    offset on ``RELATIVE_GRID``, the other offsets ``base``'s; the S Se under the stress with the same transform (each
    re-scored record's own reference) and under the composition stress (``composed_patient_mean``). With
    ``longest_rr`` the ``quantile`` is that of each record's longest-RR fifth (``longest_rr_beats``; the 36th). With
    ``pause`` (the sweep re-scored under ``data.pause_stress``), the S Se under it at the same offsets (66th). A list
    of sweeps in place of each is one model of all their networks (``pool_of``)."""
    reference = {"window": window, "quantile": quantile}
    cv, stress = (list(w) if isinstance(w, list) else [w] for w in (cv, stress))
    pause = None if pause is None else list(pause) if isinstance(pause, list) else [pause]
    sweeps = {"cv": cv, "stress": stress} | ({} if pause is None else {"pause": pause})
    joined = {kind: pool_of(folders) for kind, folders in sweeps.items()}  # each read once
    donors = joined["stress"][3]["parts"] if longest_rr else []  # the stress jobs (evaluate) hold the beats' samples

    factor = pause_factor(pause) if longest_rr and pause is not None else 0.0

    def relative(kind: str) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
        probs, labels, classes, info = joined[kind]
        records = np.concatenate([np.asarray(part["record"]).astype(str) for part in info["parts"]])
        pre = preceding_rr(info["parts"], donors, factor if kind == "pause" else 0.0) if longest_rr else None
        among = None if pre is None else longest_rr_beats(records, pre)
        measured = relative_to_records(probs, records, classes, **reference, among=among)
        return measured, labels, classes, {**info, "records": records, "raw": probs, "pre": pre}

    where = "+".join(map(str, cv))
    probs, labels, classes, info = relative("cv")
    offsets, point = operating_point(where, probs, labels, info["records"], classes, base, grid=RELATIVE_GRID)
    at = metrics_report(with_class_bias(probs, offsets), labels, classes, info["threshold"])
    s_probs, s_labels, _, s_info = relative("stress")
    if len(s_labels) != len(labels):
        raise SystemExit(f"{where}: {len(labels)} beats validated, {len(s_labels)} re-scored under the stress")
    stressed = metrics_report(with_class_bias(s_probs, offsets), s_labels, classes, s_info["threshold"])
    row = point_row(offsets, at, point, stressed)
    if pause is not None:
        p_probs, p_labels, _, p_info = relative("pause")
        if len(p_labels) != len(labels):
            raise SystemExit(f"{where}: {len(labels)} beats validated, {len(p_labels)} re-scored under the pauses")
        paused = metrics_report(with_class_bias(p_probs, offsets), p_labels, classes, p_info["threshold"])
        row["pause_stressed_se_S"] = round(paused["se_S"], 4)
    composed, each = composed_patient_mean(
        info["raw"], labels, info["records"], classes, offsets, reference, pre=info["pre"]
    )
    row |= {"composed_patient_mean_se_S": round(composed, 4),
            "composed_per_patient_se_S": {r: round(v, 4) for r, v in each.items()},
            "n_called_s_per_record": n_called_s(with_class_bias(probs, offsets), labels, info["records"],
                                                classes)}  # fmt: skip
    return {"sweep": where, "relative_to_records": True, "window": window, "quantile": quantile,
            "among": "longest_rr" if longest_rr else "all", "class_bias": offsets, "operating_point": row}  # fmt: skip


def n_called_s(probs: np.ndarray, labels: np.ndarray, records: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Per record with N beats, the share of them called S (the sixty-fourth round: the cost of calling early beats
    S in atrial fibrillation, 203 in DS1)."""
    n, s = classes.index("N"), classes.index("S")
    called = probs.argmax(1) == s
    return {
        str(r): round(float(called[(records == r) & (labels == n)].mean()), 4)
        for r in np.unique(records)
        if ((records == r) & (labels == n)).any()
    }


# the four measures a candidate weighed by one record's N beats called S must hold within PATIENT_TOLERANCE
FALSE_S_HELD = ("patient_mean_se_S", "composed_patient_mean_se_S", "stressed_se_S", "jk_index")
# ``--pauses-held``: the S Se under the pause stress held within the tolerance too (the eighty-first round on)
PAUSES_HELD = (*FALSE_S_HELD, "pause_stressed_se_S")


def record_points(
    rows: dict[str, dict], record: str, current: str, needs: str, flag: str, kept: tuple[str, ...] = FALSE_S_HELD
):
    """The operating points of the record-relative candidates that hold ``needs``, the share of ``record``'s N beats
    each calls S, whether a candidate holds the measures ``kept`` (the four of ``FALSE_S_HELD``, or with the pauses
    ``PAUSES_HELD``) against ``current``, and those differences as text; ``flag`` names the option in the errors."""
    point = {
        n: r["operating_point"]
        for n, r in rows.items()
        if needs in r["operating_point"] and "n_called_s_per_record" in r["operating_point"]
    }
    if current not in point:
        raise SystemExit(f"{flag} weighs record-relative models ({needs}): give {current} as a --relative one")
    if record not in point[current]["n_called_s_per_record"]:
        raise SystemExit(f"--fewer-false-s {record}: no N beat of that record was validated")
    if "pause_stressed_se_S" in kept and any("pause_stressed_se_S" not in p for p in point.values()):
        raise SystemExit("--pauses-held weighs the S Se under the pauses: give --pause-stress with the sweeps")
    mine = point[current]
    share = {n: p["n_called_s_per_record"][record] for n, p in point.items()}

    def held(name: str) -> bool:
        return all(mine[k] - point[name][k] <= PATIENT_TOLERANCE for k in kept)

    def differences(name: str) -> str:
        return ", ".join(f"{k} {point[name][k] - mine[k]:+.3f}" for k in kept)

    return point, share, held, differences


def choose_by_false_s(
    rows: dict[str, dict], record: str, cut: float, current: str, kept: tuple[str, ...] = FALSE_S_HELD
) -> tuple[str, list[float], str]:
    """The sixty-fourth round: a record-relative candidate replaces ``current`` if the share of ``record``'s N beats it
    calls S is below the current model's by at least ``cut`` of the current model's, and its patient mean and
    composed patient mean of S Se, its stressed S Se and its jκ (``kept``; with ``PAUSES_HELD`` the S Se under the
    pauses too: the eighty-second round) are each within ``PATIENT_TOLERANCE`` of the current model's or above; of
    the qualified, the one with the lowest share. Each at its own operating point."""
    point, share, held, differences = record_points(
        rows, record, current, "n_called_s_per_record", "--fewer-false-s", kept
    )
    others = [n for n in point if n != current]
    qualified = [n for n in others if share[n] <= (1 - cut) * share[current] and held(n)]
    text = ", ".join(f"{n} {share[n]:.3f} ({differences(n)})" for n in others)
    if qualified:
        top = min(qualified, key=share.get)
        return (
            top,
            point[top]["class_bias"],
            f"{top} calls {share[top]:.3f} of {record}'s N beats S against {current}'s {share[current]:.3f} (at most "
            f"{1 - cut:.2f} of it asked), the {len(kept)} measures within {PATIENT_TOLERANCE} or above: {text}",
        )
    why = f"{record}'s N beats called S: {current} {share[current]:.3f}; {text or 'no candidate'}"
    return current, point[current]["class_bias"], f"{current} stays at {point[current]['class_bias']}: {why}"


# the measure a --fewer-false-s candidate must gain under a ceiling on the record's N beats called S, by option
GAINED = {
    "pause_gain": "pause_stressed_se_S",
    "patient_mean_gain": "patient_mean_se_S",
    "composed_gain": "composed_patient_mean_se_S",
    "v_se_gain": "se_V",
}
GAINED_WORDS = {
    "pause_stressed_se_S": "S Se under the pauses",
    "patient_mean_se_S": "patient mean of S Se",
    "composed_patient_mean_se_S": "composed patient mean",
    "se_V": "V Se",
}
# what a gained measure must also hold within the tolerance, beside FALSE_S_HELD (a V gain: V +P)
ALSO_HELD = {"se_V": ("ppv_V",)}


def choose_with_ceiling(
    rows: dict[str, dict],
    record: str,
    measure: str,
    gain: float,
    ceiling: float,
    current: str,
    kept: tuple[str, ...] = FALSE_S_HELD,
) -> tuple[str, list[float], str]:
    """A record-relative candidate replaces ``current`` if its ``measure`` is above the current model's by at least
    ``gain`` — the sixty-sixth round: the S Se under the pause stress (``pause_stressed_se_S``, ``--pause-stress``);
    the sixty-eighth: the patient mean of S Se; the sixty-ninth: the composed patient mean; the seventy-fourth: V Se,
    its V +P held too (``ALSO_HELD``) — the share of
    ``record``'s N beats it calls S is at most ``1 + ceiling`` times the current model's (the fibrillation gain
    kept), and its patient mean and composed patient mean of S Se, its S Se under the dominant-S stress and its jκ are
    each within ``PATIENT_TOLERANCE`` of the current model's or above (``kept``; with ``PAUSES_HELD`` the S Se under
    the pauses too: the eighty-first round); of the qualified, the one with the highest ``measure``. Each at its own
    operating point."""
    flag = {v: f"--{k.replace('_', '-')}" for k, v in GAINED.items()}[measure]
    flag += " with --pause-stress" * (measure == GAINED["pause_gain"])
    point, share, held, differences = record_points(rows, record, current, measure, flag, kept)
    value = {n: p[measure] for n, p in point.items()}
    others = [n for n in point if n != current]
    also = ALSO_HELD.get(measure, ())

    def also_held(n: str) -> bool:
        return all(point[current][k] - point[n][k] <= PATIENT_TOLERANCE for k in also)

    qualified = [
        n
        for n in others
        if value[n] >= value[current] + gain and share[n] <= (1 + ceiling) * share[current] and held(n) and also_held(n)
    ]
    words = GAINED_WORDS[measure]

    def said(n: str) -> str:
        extra = "".join(f", {k} {point[n][k]:.3f}" for k in also)
        return f"{n} {words} {value[n]:.3f}{extra}, {record}'s N called S {share[n]:.3f}"

    text = "; ".join([said(current), *(f"{said(n)} ({differences(n)})" for n in others)])
    if qualified:
        top = max(qualified, key=value.get)
        return (
            top,
            point[top]["class_bias"],
            f"{top} is ahead on the {words} by at least {gain}, calls at most {1 + ceiling:.2f} times as "
            f"many of {record}'s N beats S, the four measures within {PATIENT_TOLERANCE} or above: {text}",
        )
    return current, point[current]["class_bias"], f"{current} stays at {point[current]['class_bias']}: {text}"


def over_instances(plain: dict[str, dict], stressed_se_s: dict[str, float]) -> dict:
    """An ensemble candidate's row from its instances' pooled metrics (instances in the place of seeds): each
    instance's figures, their mean ± sd, and the retention under the stress test. Every instance scores the same
    beats, so the instances' pooled S Se is their mean."""
    names = sorted(plain)
    if len(names) < 2:
        raise SystemExit(f"an ensemble candidate needs several instances; found {names}")
    over = {k: [float(np.mean(v)), float(np.std(v, ddof=1))] for k in KEPT for v in [[plain[n][k] for n in names]]}
    stressed = float(np.mean([stressed_se_s[n] for n in names]))
    return {
        "seeds": {n: {k: round(plain[n][k], 4) for k in KEPT} for n in names},
        "over_seeds": {k: [round(x, 4) for x in v] for k, v in over.items()},
        "stressed_se_S": round(stressed, 4),
        "retention": round(stressed / over["se_S"][0], 4) if over["se_S"][0] else 0.0,
    }


def ensemble_candidate(cv: Path, stress: Path, folders: list[str]) -> dict:
    """Each folder one instance (its seeds averaged beat by beat); offsets by F1(S) + F1(V) on the instances'
    pooled beats."""
    instances = [only(selected_predictions([cv / f], seeds=True)) for f in folders]
    classes = instances[0][2]
    probs = np.concatenate([i[0] for i in instances])
    labels = np.concatenate([i[1] for i in instances])
    bias = [float(b) for b in choose_bias(probs, labels, classes, ["S", "V"])[0]]
    plain, stressed = {}, {}
    for f in folders:
        plain[f] = only(pooled([cv / f], seeds=True, class_bias=bias))
        under_stress = only(pooled([stress / f], seeds=True, class_bias=bias))
        if plain[f]["beats"] != under_stress["beats"]:
            raise SystemExit(f"{cv / f}: {plain[f]['beats']} beats validated, {under_stress['beats']} under the stress")
        stressed[f] = under_stress["se_S"]
    return {"sweeps": [str(cv / f) for f in folders], "class_bias": bias, **over_instances(plain, stressed)}


def recorded(spec: str) -> tuple[str, dict]:
    """NAME=RESULTS_JSON: a candidate's row as an earlier run of this script wrote it (its sweeps may be gone; under
    the patient rule, its operating point as that run measured it)."""
    name, _, path = spec.partition("=")
    if not path:
        raise SystemExit(f"--recorded {spec}: give NAME=RESULTS_JSON, e.g. L6=results/<an earlier selection>.json")
    rows = json.loads(Path(path).read_text())["candidates"]
    if name not in rows:
        raise SystemExit(f"--recorded {spec}: {path} holds {sorted(rows)}, not {name}")
    return name, rows[name]


def margin(rows: dict[str, dict], name: str, current: str = CURRENT) -> float:
    """The standard error of the difference between a candidate's mean jκ over seeds and the current model's."""
    se2 = [rows[n]["over_seeds"]["jk_index"][1] ** 2 / len(rows[n]["seeds"]) for n in (name, current)]
    return math.sqrt(sum(se2))


def holds_up(rows: dict[str, dict], name: str, ensembles: bool = True, current: str = CURRENT) -> tuple[bool, str]:
    """Whether a candidate's mean jκ is within the standard error of the current model's (or above) and, with
    ``ensembles``, its seed ensemble's jκ within ``ENSEMBLE_TOLERANCE`` of the current one's (or above); and the
    sentence that says so."""
    mean = {n: rows[n]["over_seeds"]["jk_index"][0] for n in (name, current)}
    se = margin(rows, name, current)
    ok = mean[current] - mean[name] <= se
    why = (f"its mean jκ ({mean[name]:.3f}) is within the standard error ({se:.3f}) of {current}'s "
           f"({mean[current]:.3f}) or above")  # fmt: skip
    if ensembles:
        ensemble = {n: rows[n]["seed_ensemble"]["jk_index"] for n in (name, current)}
        ok = ok and ensemble[current] - ensemble[name] <= ENSEMBLE_TOLERANCE
        why += (f", its seed ensemble's ({ensemble[name]:.3f}) within {ENSEMBLE_TOLERANCE} of {current}'s "
                f"({ensemble[current]:.3f}) or above")  # fmt: skip
    return ok, why


def choose(
    rows: dict[str, dict],
    stability: float | None = None,
    retention_gain: float | None = None,
    parsimony: bool = False,
    ensemble_gain: float | None = None,
    current: str = CURRENT,
    stressed_floor: bool = False,
) -> tuple[str, str]:
    """The rule: the current model stays unless a candidate with retention >= 0.5 beats its mean jκ by more than
    the standard error of the difference of the two means and by at least 0.01; of several such, the highest.

    With ``stability`` (the twelfth round), a candidate whose S Se sd over seeds is within it, while the current
    model's is not, is chosen first if its retention is >= 0.5 and its mean jκ is not below the current model's by
    more than that standard error (of several such, the highest mean jκ).

    With ``retention_gain`` (the seventeenth round), a candidate whose retention is above the current model's by at
    least that much is chosen first if its mean jκ is not below the current model's by more than that standard
    error and its seed ensemble's jκ not below the current model's by more than ``ENSEMBLE_TOLERANCE`` (of several
    such, the highest retention).

    With ``parsimony`` (the nineteenth round: candidates that drop an input), a candidate with retention >= 0.5 that
    holds up on both jκ tolerances is chosen (of several such, the highest mean jκ): an input that does not earn its
    place on DS1 is dropped.

    With ``ensemble_gain`` (the twentieth round: the recommended model is three networks averaged, so the seeds
    averaged weigh first), a candidate with retention >= 0.5 whose seed ensemble's jκ (its own offsets) is above
    the current model's by at least that much, and whose mean jκ over single seeds is not below the current
    model's by more than that standard error, is chosen (of several such, the highest seed ensemble jκ).

    ``current`` names the model in place (default ``CURRENT``). With ``stressed_floor`` (the twenty-first round), a
    candidate is eligible if its S Se under the stress is not below the current model's, in place of retention >=
    0.5: a ratio penalizes a model for finding more S beats without the stress."""
    mean = {n: r["over_seeds"]["jk_index"][0] for n, r in rows.items()}
    s_sd = {n: r["over_seeds"]["se_S"][1] for n, r in rows.items()}
    if stressed_floor:
        eligible = [n for n, r in rows.items() if n != current and r["stressed_se_S"] >= rows[current]["stressed_se_S"]]
    else:
        eligible = [n for n, r in rows.items() if n != current and r["retention"] >= MIN_RETENTION]
    if retention_gain is not None:
        kept = {n: r["retention"] for n, r in rows.items()}
        robust = [
            n for n in eligible if kept[n] - kept[current] >= retention_gain and holds_up(rows, n, current=current)[0]
        ]
        if robust:
            winner = max(robust, key=kept.get)
            return winner, (
                f"{winner} keeps {kept[winner]:.2f} of its S Se under the stress ({current}: {kept[current]:.2f}, "
                f"gain >= {retention_gain}); {holds_up(rows, winner, current=current)[1]}"
            )
    if ensemble_gain is not None:
        averaged = {n: r["seed_ensemble"]["jk_index"] for n, r in rows.items()}
        ahead = [
            n
            for n in eligible
            if averaged[n] - averaged[current] >= ensemble_gain and holds_up(rows, n, False, current)[0]
        ]
        if ahead:
            winner = max(ahead, key=averaged.get)
            return winner, (
                f"{winner}'s seed ensemble ({averaged[winner]:.3f}) is above {current}'s ({averaged[current]:.3f}) by "
                f">= {ensemble_gain}; {holds_up(rows, winner, False, current)[1]}"
            )
    if parsimony:
        simpler = [n for n in eligible if holds_up(rows, n, current=current)[0]]
        if simpler:
            winner = max(simpler, key=mean.get)
            return winner, f"{winner} drops an input and holds up: {holds_up(rows, winner, current=current)[1]}"
    if stability is not None and s_sd[current] > stability:
        steady = [n for n in eligible if s_sd[n] <= stability and holds_up(rows, n, False, current)[0]]
        if steady:
            winner = max(steady, key=mean.get)
            return winner, (
                f"{winner}'s S Se sd over seeds ({s_sd[winner]:.3f}) is within {stability} and {current}'s "
                f"({s_sd[current]:.3f}) is not; {holds_up(rows, winner, False, current)[1]}"
            )
    better = {n: mean[n] for n in eligible if mean[n] - mean[current] > max(0.01, margin(rows, n, current))}
    if not better:
        return current, f"no candidate beats {current} ({mean[current]:.3f}) by more than the margin"
    winner = max(better, key=better.get)
    return winner, f"{winner} ({mean[winner]:.3f}) beats {current} ({mean[current]:.3f}) by more than the margin"


def leader(
    point: dict[str, dict], current: str, measure: str, tolerated: tuple[str, ...], gain: float
) -> tuple[str | None, bool]:
    """The candidate highest on ``measure`` at its operating point (None when the current model is alone), and whether
    it replaces the current model: above it by at least ``gain`` and within ``PATIENT_TOLERANCE`` of it or above on
    each of ``tolerated``."""
    others = [n for n in point if n != current]
    if not others:
        return None, False
    top = max(others, key=lambda n: point[n][measure])
    mine, theirs = point[current], point[top]
    held = all(mine[k] - theirs[k] <= PATIENT_TOLERANCE for k in tolerated)
    return top, theirs[measure] - mine[measure] >= gain and held


def choose_by_patients(rows: dict[str, dict], gain: float, current: str = CURRENT) -> tuple[str, list[float], str]:
    """The twenty-third round: the candidate with the highest patient mean of S Se at its operating point replaces the
    current model if that mean is above the current model's (at its own operating point) by at least ``gain``, and
    its stressed S Se and jκ are not below the current model's by more than ``PATIENT_TOLERANCE``. Otherwise the
    current model stays, at its operating point if that raises its own patient mean by ``OWN_POINT_GAIN`` or more,
    else at its F1 offsets. Returns the model, its offsets and why."""
    point = {n: r["operating_point"] for n, r in rows.items()}
    mine = point[current]
    top, wins = leader(point, current, "patient_mean_se_S", ("stressed_se_S", "jk_index"), gain)
    if wins:
        theirs = point[top]
        return (
            top,
            theirs["class_bias"],
            (
                f"{top}'s patient mean of S Se ({theirs['patient_mean_se_S']:.3f}) is above {current}'s "
                f"({mine['patient_mean_se_S']:.3f}) by >= {gain}; its stressed S Se ({theirs['stressed_se_S']:.3f}) "
                f"and jκ ({theirs['jk_index']:.3f}) within {PATIENT_TOLERANCE} of {current}'s "
                f"({mine['stressed_se_S']:.3f}, {mine['jk_index']:.3f}) or above"
            ),
        )
    if rows[current].get("relative_to_records"):  # its operating point is the decision it was chosen with
        return (
            current,
            mine["class_bias"],
            f"no candidate is ahead by the rule; {current} stays at {mine['class_bias']}",
        )
    own = mine["patient_mean_se_S"] - mine["patient_mean_se_S_at_f1_offsets"]
    if own >= OWN_POINT_GAIN:
        return (
            current,
            mine["class_bias"],
            (
                f"no candidate is ahead by the rule; {current} takes its operating point {mine['class_bias']} "
                f"(patient mean {mine['patient_mean_se_S']:.3f} vs {mine['patient_mean_se_S_at_f1_offsets']:.3f} "
                "at its F1 offsets)"
            ),
        )
    return (
        current,
        rows[current]["seed_ensemble"]["class_bias"],
        (
            f"no candidate is ahead by the rule, and {current}'s operating point raises its patient mean by "
            f"{own:.3f} < {OWN_POINT_GAIN}: it stays at its F1 offsets"
        ),
    )


def choose_by_composition(
    rows: dict[str, dict], gain: float, current: str = CURRENT, either: bool = False, ahead_on: str = "either"
) -> tuple[str, list[float], str]:
    """The thirty-first round: the record-relative candidate with the highest composed patient mean replaces the
    current model if that mean is above the current model's by at least ``gain`` and its patient mean of S Se, its
    S Se under the dominant-S stress and its jκ are each within ``PATIENT_TOLERANCE`` of the current model's or above.
    With ``either`` (the thirty-third round) a candidate qualifies when its patient mean **or** its composed patient
    mean is ahead by ``gain`` and all four are within the tolerance or above; the qualifying one with the highest sum
    of the two means is chosen; ``ahead_on`` "patient" or "composed" asks the gain of that mean alone (the
    fifty-second round on). Otherwise the current model stays at its operating point. Returns the model, its offsets
    and why."""
    point = {n: r["operating_point"] for n, r in rows.items() if "composed_patient_mean_se_S" in r["operating_point"]}
    if current not in point:
        raise SystemExit(f"--composition-gain weighs record-relative models: give {current} as a --relative one")
    if either:
        return choose_by_either_mean(point, gain, current, AHEAD_ON[ahead_on])
    mine = point[current]
    measure = "composed_patient_mean_se_S"
    top, wins = leader(point, current, measure, ("patient_mean_se_S", "stressed_se_S", "jk_index"), gain)
    if wins:
        theirs = point[top]
        return (
            top,
            theirs["class_bias"],
            f"{top}'s composed patient mean ({theirs[measure]:.3f}) is above {current}'s ({mine[measure]:.3f}) by >= "
            f"{gain}; its patient mean ({theirs['patient_mean_se_S']:.3f}), stressed S Se "
            f"({theirs['stressed_se_S']:.3f}) and jκ ({theirs['jk_index']:.3f}) within {PATIENT_TOLERANCE} of "
            f"{current}'s or above",
        )
    why = (
        "no other record-relative candidate"
        if top is None
        else (
            f"{top} is {point[top][measure] - mine[measure]:+.3f} on the composed patient mean; the rule needs +{gain} "
            f"and {PATIENT_TOLERANCE} on the patient mean, stressed S Se and jκ"
        )
    )
    return current, mine["class_bias"], f"{current} stays at {mine['class_bias']}: {why}"


def choose_by_either_mean(
    point: dict[str, dict], gain: float, current: str, ahead: tuple[str, ...] = AHEAD_ON["either"]
) -> tuple[str, list[float], str]:
    """``choose_by_composition(either=True)``: qualified if one of the means ``ahead`` (the patient mean or the
    composed patient mean of S Se, or the one named) is ahead of ``current``'s by ``gain``, and the patient mean,
    composed patient mean, stressed S Se and jκ are each within ``PATIENT_TOLERANCE`` of it or above; of the
    qualified, the highest sum of the two means."""
    means = ("patient_mean_se_S", "composed_patient_mean_se_S")
    tolerated = (*means, "stressed_se_S", "jk_index")
    mine = point[current]
    qualified = [
        name
        for name, theirs in point.items()
        if name != current
        and max(theirs[k] - mine[k] for k in ahead) >= gain
        and all(mine[k] - theirs[k] <= PATIENT_TOLERANCE for k in tolerated)
    ]
    if qualified:
        top = max(qualified, key=lambda n: sum(point[n][k] for k in means))
        theirs = point[top]
        return (
            top,
            theirs["class_bias"],
            f"{top}'s patient mean / composed patient mean ({theirs[means[0]]:.3f} / {theirs[means[1]]:.3f}) against "
            f"{current}'s ({mine[means[0]]:.3f} / {mine[means[1]]:.3f}): {AHEAD_WORDS[ahead]} ahead by >= {gain}, and "
            "the two, the "
            f"stressed S Se ({theirs['stressed_se_S']:.3f}) and jκ ({theirs['jk_index']:.3f}) within "
            f"{PATIENT_TOLERANCE} or above",
        )
    gaps = ", ".join(
        f"{n} {theirs[means[0]] - mine[means[0]]:+.3f} / {theirs[means[1]] - mine[means[1]]:+.3f}"
        for n, theirs in point.items()
        if n != current
    )
    why = (
        f"no candidate ahead by {gain} on {AHEAD_WORDS[ahead]} within {PATIENT_TOLERANCE} on the rest "
        f"(patient / composed: {gaps or 'none'})"
    )
    return current, mine["class_bias"], f"{current} stays at {mine['class_bias']}: {why}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cv", type=Path, default=Path("outputs/cv"), help="the cross-validation sweeps")
    parser.add_argument("--stress", type=Path, default=Path("outputs/stress"), help="their stress-test sweeps")
    parser.add_argument(
        "--candidates",
        nargs="+",
        metavar="NAME=FOLDER",
        help=f"the candidates and their sweep folders (default: the eleventh round's; {CURRENT} first)",
    )
    parser.add_argument(
        "--stability",
        type=float,
        help="the S Se sd over seeds that weighs first (the twelfth round: 0.05; default: jκ only)",
    )
    parser.add_argument(
        "--retention-gain",
        type=float,
        help="the gain in stress retention over the current model that weighs first (the seventeenth round: 0.1)",
    )
    parser.add_argument(
        "--parsimony",
        action="store_true",
        help="a candidate that drops an input is chosen if it holds up on both jκ tolerances (the nineteenth round)",
    )
    parser.add_argument(
        "--ensemble-gain",
        type=float,
        help="the gain in seed-ensemble jκ over the current model that weighs first (the twentieth round: 0.01)",
    )
    parser.add_argument(
        "--stressed-floor",
        action="store_true",
        help="eligible if the S Se under the stress is not below the current model's (the twenty-first round), "
        "in place of retention >= 0.5",
    )
    parser.add_argument(
        "--patient-gain",
        type=float,
        help="weigh DS1's S patients one by one at a published operating point (the twenty-third round: 0.1); "
        "candidates from sweeps only",
    )
    parser.add_argument(
        "--composition-gain",
        type=float,
        help="with --patient-gain's measures, weigh the record-relative candidates by the composition stress (S beats "
        f"{COMPOSED_S_SHARE:.0%}% of each S patient's S and N beats; the thirty-first round: 0.1)",
    )
    parser.add_argument(
        "--either-gain",
        action="store_true",
        help="with --composition-gain: the patient mean or the composed patient mean ahead by the gain, all four "
        "measures within the tolerance (the thirty-third round)",
    )
    parser.add_argument(
        "--ahead-on",
        choices=sorted(AHEAD_ON),
        default="either",
        help="with --either-gain: the mean that must be ahead by the gain, all four within the tolerance (either: the "
        "thirty-third round's; patient: the fifty-second round's; composed: the fifty-seventh round's)",
    )
    parser.add_argument(
        "--fewer-false-s",
        metavar="RECORD",
        help="weigh the --relative candidates by the share of RECORD's N beats they call S (the sixty-fourth round: "
        "203, DS1's fibrillation), the patient rule's four measures within the tolerance",
    )
    parser.add_argument(
        "--false-s-cut",
        type=float,
        default=0.25,
        help="with --fewer-false-s: the share must fall by at least this fraction of the current model's",
    )
    parser.add_argument(
        "--pause-stress",
        type=Path,
        help="the --relative candidates' sweeps re-scored under data.pause_stress (the sixty-sixth round): adds each "
        "one's S Se under the pauses at its operating point",
    )
    parser.add_argument(
        "--pause-gain",
        type=float,
        help="with --pause-stress and --fewer-false-s: the S Se under the pauses must rise by this much (the "
        "sixty-sixth round: 0.05), the record's N beats called S stay within --false-s-ceiling",
    )
    parser.add_argument(
        "--pauses-held",
        action="store_true",
        help="with --pause-stress and --fewer-false-s: the S Se under the pauses held within the tolerance too, beside "
        "the four measures (the eighty-first, eighty-second, eighty-fourth and eighty-fifth rounds)",
    )
    parser.add_argument(
        "--patient-mean-gain",
        type=float,
        help="with --fewer-false-s: the patient mean of S Se must rise by this much (the sixty-eighth round: 0.09), "
        "the record's N beats called S stay within --false-s-ceiling, the other three measures within the tolerance",
    )
    parser.add_argument(
        "--composed-gain",
        type=float,
        help="with --fewer-false-s: the composed patient mean must rise by this much (the sixty-ninth round: 0.09), "
        "the record's N beats called S stay within --false-s-ceiling, the other three measures within the tolerance",
    )
    parser.add_argument(
        "--v-se-gain",
        type=float,
        help="with --fewer-false-s: V Se must rise by this much (the seventy-fourth round: 0.02), V +P and the four "
        "measures stay within the tolerance, the record's N beats called S within --false-s-ceiling",
    )
    parser.add_argument(
        "--false-s-ceiling",
        type=float,
        default=0.25,
        help="with --pause-gain, --patient-mean-gain or --composed-gain: the share of the record's N beats called S "
        "may rise by at most this fraction",
    )
    parser.add_argument("--current", default=CURRENT, help=f"the model in place (default {CURRENT})")
    parser.add_argument(
        "--recorded",
        nargs="+",
        default=[],
        metavar="NAME=RESULTS_JSON",
        help="candidates read from an earlier selection's results file instead of their sweeps",
    )
    parser.add_argument(
        "--ensembles",
        nargs="+",
        default=[],
        metavar="NAME=FOLDER,FOLDER,...",
        help="ensemble candidates: each folder (under --cv and --stress) one instance, its seeds averaged",
    )
    parser.add_argument(
        "--votes",
        nargs="+",
        default=[],
        metavar="NAME=NETWORK+VOTER",
        help="vote candidates for --patient-gain: the NETWORK sweep's seeds averaged with the VOTER's voting on S "
        "(the twenty-fourth round)",
    )
    parser.add_argument(
        "--relative",
        nargs="+",
        default=[],
        metavar="NAME=FOLDER[:BEATS|:qPCT|:lrr]",
        help="candidates for --patient-gain whose S decision is relative to each record (the twenty-fifth round), "
        "with :BEATS to the median of that many beats around each beat (the twenty-eighth), with :qPCT to the "
        "record's PCT-th percentile in place of its median (the thirty-first), with :lrr to the median of the "
        "record's fifth of beats with the longest preceding RR (the thirty-sixth); "
        "FOLDER's seeds averaged, its other offsets those of the current model's F1 choice (or --relative-base's)",
    )
    parser.add_argument(
        "--relative-base",
        metavar="NAME",
        help="the --candidates model whose F1 offsets the --relative candidates take (default: the current model; "
        "the twenty-seventh round: SL6IT, whose V offset S1T-R took)",
    )
    parser.add_argument(
        "--reference",
        nargs="+",
        default=[],
        metavar="NAME=FOLDER",
        help="models measured like the candidates and reported beside them (under 'references'), never chosen",
    )
    parser.add_argument("--out", type=Path, help="write the table and the choice as JSON here")
    args = parser.parse_args()
    if args.pause_gain is not None and (args.pause_stress is None or args.fewer_false_s is None):
        raise SystemExit("--pause-gain weighs the S Se under --pause-stress beside --fewer-false-s's record: give both")
    if args.pauses_held and (args.pause_stress is None or args.fewer_false_s is None):
        raise SystemExit(
            "--pauses-held weighs the S Se under --pause-stress beside --fewer-false-s's record: give both"
        )
    gains = [f"--{option.replace('_', '-')}" for option in GAINED if getattr(args, option) is not None]
    if len(gains) > 1 or (gains and args.fewer_false_s is None):
        raise SystemExit(f"{' and '.join(gains)}: one gained measure at a time, beside --fewer-false-s's record")
    if args.either_gain and args.composition_gain is None:
        raise SystemExit("--either-gain weighs the composition rule's measures: give --composition-gain too")
    if args.ahead_on != "either" and not args.either_gain:
        raise SystemExit(f"--ahead-on {args.ahead_on} names the mean the --either-gain rule weighs: give --either-gain")
    for flag, specs in (("--candidates", args.candidates or ()), ("--reference", args.reference)):
        bad = [c for c in specs if "=" not in c]
        if bad:
            raise SystemExit(f"{flag} {' '.join(bad)}: give NAME=FOLDER, e.g. L6=l6 (FOLDER under --cv and --stress)")
    # without any candidate named, the eleventh round's
    named = args.candidates or args.ensembles or args.recorded
    folders = dict(c.split("=", 1) for c in args.candidates or ()) if named else CANDIDATES
    rows = dict(recorded(spec) for spec in args.recorded)
    relatives = {spec.partition("=")[0] for spec in args.relative}
    if args.current not in {*folders, *rows, *relatives}:
        raise SystemExit(f"--candidates, --recorded or --relative must include the current model, {args.current}")
    base_name = args.relative_base or args.current
    if args.relative and base_name not in folders and "seed_ensemble" not in rows.get(base_name, {}):
        raise SystemExit(
            f"--relative candidates take the F1 offsets of {base_name}: name it in --candidates or --recorded (and "
            "as --relative-base when the current model is itself a --relative one)"
        )
    rows.update({name: candidate(args.cv / folder, args.stress / folder) for name, folder in folders.items()})
    references = dict(spec.split("=", 1) for spec in args.reference)
    refs = {name: candidate(args.cv / folder, args.stress / folder) for name, folder in references.items()}
    weighs_points = args.patient_gain is not None or args.fewer_false_s is not None
    if weighs_points:
        unweighed = [name for name, row in rows.items() if name not in folders and "operating_point" not in row]
        if unweighed or args.ensembles:
            raise SystemExit(
                "--patient-gain weighs candidates from their sweeps, or as an earlier run of this rule recorded them "
                f"(with an operating point): drop --ensembles and {unweighed or 'none'} from --recorded"
            )
        for table, named in ((rows, folders), (refs, references)):
            for name, folder in named.items():
                base = table[name]["seed_ensemble"]["class_bias"]
                table[name]["operating_point"] = at_operating_point(args.cv / folder, args.stress / folder, base)
        for spec in args.votes:
            name, _, pair = spec.partition("=")
            network, plus, voter = pair.partition("+")
            if not (network and plus and voter):
                raise SystemExit(f"--votes {spec}: give NAME=NETWORK+VOTER (two folders under --cv and --stress)")
            rows[name] = vote_candidate(args.cv, args.stress, network, voter)
        for spec in args.relative:
            name, _, where = spec.partition("=")
            folder, colon, after = where.partition(":")
            longest_rr = after == "lrr"
            after = "q50" if longest_rr else after
            percent = after[1:] if after.startswith("q") else None
            if (
                not all(folder.split("+"))  # FOLDER, or FOLDER+FOLDER without an empty name
                or (colon and percent is None and not (after.isdigit() and int(after) % 2 == 1))
                or (percent is not None and not (percent.isdigit() and 0 <= int(percent) <= 100))
            ):
                raise SystemExit(
                    f"--relative {spec}: give NAME=FOLDER (or FOLDER+FOLDER, their networks as one model), "
                    "NAME=FOLDER:BEATS (BEATS an odd number), NAME=FOLDER:qPCT "
                    "(the reference the PCT-th percentile, 0-100) or NAME=FOLDER:lrr (the median of the record's "
                    "longest-RR fifth), FOLDER under --cv and --stress"
                )
            base = rows[base_name]["seed_ensemble"]["class_bias"]
            window = int(after) if colon and percent is None else None
            quantile = int(percent) / 100 if percent is not None else 0.5
            folders = folder.split("+")  # FOLDER+FOLDER: every network of those sweeps as one model
            pause = None if args.pause_stress is None else [args.pause_stress / f for f in folders]
            rows[name] = relative_candidate(
                [args.cv / f for f in folders], [args.stress / f for f in folders], base, window, quantile,
                longest_rr, pause,
            )  # fmt: skip
    elif args.votes or args.relative:
        raise SystemExit(
            "--votes and --relative are weighed by the patient rule: give --patient-gain (or --fewer-false-s)"
        )
    for spec in args.ensembles:
        name, _, instances = spec.partition("=")
        if not instances:
            raise SystemExit(f"--ensembles {spec}: give NAME=FOLDER,FOLDER,... (one folder per instance)")
        rows[name] = ensemble_candidate(args.cv, args.stress, instances.split(","))
    head = ("candidate", "offsets", "jκ, mean ± sd over seeds", "S Se", "S +P", "V Se", "V +P", "retention",
            "seed ensemble jκ")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|---|---|---|---|---|---|---|---|---|")
    shown = {**rows, **{f"{name} (reference)": r for name, r in refs.items()}}
    for name, r in shown.items():
        m, e = r.get("over_seeds"), r.get("seed_ensemble")
        keys = ("jk_index", "se_S", "ppv_S", "se_V", "ppv_V")
        cells = [f"{m[k][0]:.3f} ± {m[k][1]:.3f}" if m else "–" for k in keys]  # a vote: its seeds averaged only
        cells += [f"{r['retention']:.2f}" if "retention" in r else "–", f"{e['jk_index']:.3f}" if e else "–"]
        print(f"| {name} | {r['class_bias']} | " + " | ".join(cells) + " |")
    offsets = None
    if args.composition_gain is not None and args.patient_gain is None:
        raise SystemExit("--composition-gain weighs the measures of the patient rule: give --patient-gain too")
    gained = next((option for option in GAINED if getattr(args, option) is not None), None)
    kept = PAUSES_HELD if args.pauses_held else FALSE_S_HELD
    if gained is not None:
        chosen, offsets, why = choose_with_ceiling(
            rows, args.fewer_false_s, GAINED[gained], getattr(args, gained), args.false_s_ceiling, args.current, kept
        )
    elif args.fewer_false_s is not None:
        chosen, offsets, why = choose_by_false_s(rows, args.fewer_false_s, args.false_s_cut, args.current, kept)
    elif args.composition_gain is not None:
        chosen, offsets, why = choose_by_composition(
            rows, args.composition_gain, args.current, args.either_gain, args.ahead_on
        )
    elif args.patient_gain is not None:
        chosen, offsets, why = choose_by_patients(rows, args.patient_gain, args.current)
    if weighs_points:
        for name, r in shown.items():
            point = r["operating_point"]
            composed = point.get("composed_patient_mean_se_S")
            extra = "" if composed is None else f", composed {composed:.3f} ({point['composed_per_patient_se_S']})"
            if "pause_stressed_se_S" in point:
                extra += f", under pauses {point['pause_stressed_se_S']:.3f}"
            print(f"{name} at {point['class_bias']}: patient mean S Se {point['patient_mean_se_S']:.3f} "
                  f"({point['per_patient_se_S']}), S {point['se_S']:.3f} / {point['ppv_S']:.3f}, "
                  f"stressed {point['stressed_se_S']:.3f}, jκ {point['jk_index']:.3f}{extra}")  # fmt: skip
    else:
        chosen, why = choose(rows, args.stability, args.retention_gain, args.parsimony, args.ensemble_gain,
                             args.current, args.stressed_floor)  # fmt: skip
    print(f"chosen: {chosen} — {why}")
    if args.out:
        rule = "docs/inter_patient.md, " + (
            "sixty-ninth round" if args.composed_gain is not None
            else "sixty-eighth round" if args.patient_mean_gain is not None
            else "sixty-sixth round" if args.pause_gain is not None
            else "sixty-fourth round" if args.fewer_false_s is not None
            else "fifty-second round" if args.ahead_on == "patient"
            else "fifty-seventh round" if args.ahead_on == "composed"
            else "thirty-third round" if args.either_gain
            else "thirty-first round" if args.composition_gain is not None
            else "twenty-third round" if args.patient_gain is not None
            else "twenty-first round" if args.stressed_floor
            else "twentieth round" if args.ensemble_gain is not None
            else "nineteenth round" if args.parsimony
            else "seventeenth round" if args.retention_gain is not None
            else "twelfth round" if args.stability is not None else "eleventh round"
        ) + (", the pauses held (the eighty-first round on)" if args.pauses_held else "")  # fmt: skip
        weights = {"stability": args.stability, "retention_gain": args.retention_gain, "parsimony": args.parsimony,
                   "ensemble_gain": args.ensemble_gain, "current": args.current,
                   "stressed_floor": args.stressed_floor, "patient_gain": args.patient_gain,
                   "composition_gain": args.composition_gain, "either_gain": args.either_gain,
                   "ahead_on": args.ahead_on, "fewer_false_s": args.fewer_false_s,
                   "false_s_cut": args.false_s_cut, "pause_stress": str(args.pause_stress or ""),
                   "pause_gain": args.pause_gain, "patient_mean_gain": args.patient_mean_gain,
                   "composed_gain": args.composed_gain, "v_se_gain": args.v_se_gain,
                   "false_s_ceiling": args.false_s_ceiling, "pauses_held": args.pauses_held}  # fmt: skip
        result = {"rule": rule, **weights, "candidates": rows, "chosen": chosen, "why": why}
        if refs:
            result["references"] = refs
        if offsets is not None:
            result["class_bias"] = offsets
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
