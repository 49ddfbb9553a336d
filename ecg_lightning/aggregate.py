"""Summarize a multirun: mean ± sd of each job's metrics.json, grouped by everything but seed and fold.

    python -m ecg_lightning.aggregate outputs/train/multiruns/<date> [<more sweep dirs>] [--which final|best|test]
        [--out x.json]

``--which test`` summarizes the test set (e.g. DS2) scored at the end of each training, or by each job of an
``evaluate side=test`` sweep over checkpoints (``-m ckpt_path=a.ckpt,b.ckpt``).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

log = logging.getLogger(__name__)

METRICS = ("accuracy", "balanced_accuracy", "auroc", "sensitivity", "specificity", "ppv", "f1")
# the AAMI benchmark's columns (multi-class runs): EC57's S and V rows, kappa and the j/jk indices
AAMI_METRICS = (
    "accuracy",
    "se_S",
    "ppv_S",
    "spec_S",
    "se_V",
    "ppv_V",
    "spec_V",
    "se_F",
    "ppv_F",
    "kappa",
    "j_index",
    "jk_index",
    "macro_f1",
)
# what varies between repeats of one setting (an evaluate sweep's repeats are its checkpoints, e.g. seeds)
REPEAT_KEYS = ("seed", "data.fold", "ckpt_path")
IGNORED_KEYS = ("hydra.", "callbacks.progress_bar", "paths.", "data.root", "data.cache_dir")
IGNORED_SUFFIXES = (".root",)  # a database's folder (data.catalog.<name>.root) is where, not what


def ignored(key: str) -> bool:
    return key.startswith(REPEAT_KEYS + IGNORED_KEYS) or key.endswith(IGNORED_SUFFIXES)


def job_setting(job: Path) -> str:
    """The job's overrides minus repeats and paths: jobs with the same setting are pooled."""
    overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
    kept = [o for o in overrides if not ignored(o.split("=")[0].lstrip("+~"))]
    return " ".join(sorted(kept)) or "defaults"


def unfinished(job: Path) -> bool:
    """A training job whose metrics.json says it has not finished (still running, or stopped): its "final" epoch is
    not the last. Reports of evaluate and of older runs carry no flag and count as finished."""
    report = job / "metrics.json"
    return report.is_file() and json.loads(report.read_text()).get("finished", True) is False


def skip_unfinished(jobs: list[Path]) -> list[Path]:
    """``jobs`` (files inside job folders) without those of unfinished jobs, each named in a warning."""
    partial = [j for j in jobs if unfinished(j.parent)]
    for job in partial:
        log.warning("%s has not finished (still running, or stopped); not counted", job.parent)
    return [j for j in jobs if j not in partial]


def summarize(sweep_dirs: Path | list[Path], which: str = "final") -> dict[str, dict]:
    """{setting: {"jobs": n, metric: [mean, sd], ...}} over the jobs of the sweep folders that wrote metrics.json."""
    sweep_dirs = [sweep_dirs] if isinstance(sweep_dirs, Path) else sweep_dirs
    groups: dict[str, list[dict]] = defaultdict(list)
    for report in skip_unfinished(sorted(r for d in sweep_dirs for r in d.glob("*/metrics.json"))):
        saved = json.loads(report.read_text())
        if saved.get("side") == "test" and which == "test":  # an evaluate report: its metrics at the top level
            saved = {"test": {f"test/{k}": v for k, v in saved.items() if isinstance(v, (int, float))}}
        if which not in saved:
            log.warning("%s has no %r metrics; skipped", report, which)
            continue
        groups[job_setting(report.parent)].append(saved[which])
    if not groups:
        raise SystemExit(
            f"No <job>/metrics.json under {', '.join(map(str, sweep_dirs))}: "
            "is it a multirun folder (outputs/train/multiruns/...)?"
        )
    summary = {}
    side = "test" if which == "test" else "val"
    for setting, jobs in groups.items():
        row: dict = {"jobs": len(jobs)}
        for name in dict.fromkeys((*METRICS, *AAMI_METRICS, "loss")):
            values = [j[f"{side}/{name}"] for j in jobs if f"{side}/{name}" in j]
            if values:
                row[name] = [float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0]
        times = [j["time/epoch_s"] for j in jobs if "time/epoch_s" in j]
        if times:
            row["epoch_s"] = [float(np.mean(times)), float(np.std(times, ddof=1)) if len(times) > 1 else 0.0]
        summary[setting] = row
    return summary


def evaluated_setting(job: Path) -> str:
    """An ``evaluate`` job's setting: its checkpoint's training setting (``<run>/checkpoints/x.ckpt``), then its
    own overrides — so evaluate sweeps of different models stay apart when joined."""
    ckpt = OmegaConf.load(job / ".hydra" / "config.yaml").ckpt_path
    first = ckpt[0] if OmegaConf.is_list(ckpt) else ckpt  # an ensemble: named by its first member's run
    trained = Path(str(first)).parent.parent
    source = job_setting(trained) if (trained / ".hydra" / "overrides.yaml").is_file() else str(trained.parent)
    return f"{source} | evaluate {job_setting(job)}"


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    """A job's validation predictions: a training job's ``val_predictions.npz`` or an ``evaluate`` job's
    ``predictions.npz`` (side=val), as one dict (record, probs, labels, classes, threshold). Both give the
    probabilities before any whole-record decision (the record-relative S), as training writes them: a pool of several
    networks averages those and takes the decision once, as the averaged model does."""
    with np.load(path) as saved:
        part = dict(saved)
    if "labels" not in part:  # evaluate's file: "label", the model's threshold in its metrics.json
        part["labels"] = part.pop("label")
        part["threshold"] = json.loads((path.parent / "metrics.json").read_text()).get("threshold", 0.5)
    if "probs_before_decision" in part:  # evaluate's file since the seventy-eighth round; earlier ones hold decided
        part["probs"] = part.pop("probs_before_decision")
    return part


def holds_before_decision(path: Path) -> bool:
    """Whether an ``evaluate`` predictions file holds the probabilities before the whole-record decision."""
    with np.load(path) as saved:
        return "probs_before_decision" in saved.files


def job_seed(job: Path) -> str:
    """The training seed a job ran with (its saved config), "" when it has none saved. An ``evaluate`` job has no
    seed of its own: its checkpoint's training run's seed (the first member's, for an ensemble)."""
    config = job / ".hydra" / "config.yaml"
    if not config.is_file():
        return ""
    saved = OmegaConf.load(config)
    if "seed" not in saved and "ckpt_path" in saved:
        first = saved.ckpt_path[0] if OmegaConf.is_list(saved.ckpt_path) else saved.ckpt_path
        return job_seed(Path(str(first)).parent.parent)
    return str(saved.get("seed", ""))


def joined_predictions(sweep_dirs: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray, list[str], dict]]:
    """{setting: (probabilities, labels, classes, info)} over the joined validation predictions of its jobs
    (``load_predictions``); info holds the threshold, the records, each job's own arrays and its seed. Jobs of one
    seed must be the folds of one split (a record validated twice by one seed is refused); several seeds of the
    same folds are joined too, every beat then counted once per seed (``pooled`` reports each seed beside)."""
    from ecg_lightning.callbacks import VAL_PREDICTIONS
    from ecg_lightning.evaluate import PREDICTIONS

    groups: dict[str, list[Path]] = defaultdict(list)
    for d in sweep_dirs:
        for path in skip_unfinished(sorted(d.glob(f"*/{VAL_PREDICTIONS}"))):
            groups[job_setting(path.parent)].append(path)
        evaluated = sorted(d.glob(f"*/{PREDICTIONS}"))
        for path in evaluated:
            groups[evaluated_setting(path.parent)].append(path)
        older = [p for p in evaluated if not holds_before_decision(p)]
        if older:
            log.warning(
                "%s: %d evaluate jobs wrote only decided probabilities (before probs_before_decision); for a model "
                "deciding S relative to each record they pool after each network's decision, unlike training's pools "
                "(docs/inter_patient.md, seventy-seventh round): evaluate them again to pool alike",
                d,
                len(older),
            )
    if not groups:
        raise SystemExit(f"No <job>/{VAL_PREDICTIONS} or {PREDICTIONS} under {', '.join(map(str, sweep_dirs))}")
    joined = {}
    for setting, paths in groups.items():
        parts = [{**load_predictions(p), "seed": job_seed(p.parent)} for p in paths]
        seen = Counter((part["seed"], name) for part in parts for name in set(part["record"].tolist()))
        overlap = sorted({name for (_, name), jobs in seen.items() if jobs > 1})
        if overlap:
            raise SystemExit(
                f"{setting}: records {overlap} validated by several jobs of one seed; not folds of one split"
            )
        records = sorted({name for _, name in seen})
        probs = np.concatenate([part["probs"] for part in parts])
        labels = np.concatenate([part["labels"] for part in parts])
        info = {"threshold": float(parts[0]["threshold"]), "records": records, "parts": parts}
        joined[setting] = (probs, labels, [str(c) for c in parts[0]["classes"]], info)
    return joined


def ensemble_of(
    joined: dict[str, tuple[np.ndarray, np.ndarray, list[str], dict]], vote: str | None = None, network: str = ""
) -> dict[str, tuple]:
    """The settings' joined validation predictions as one ensemble: probabilities averaged beat by beat (as
    ``evaluate`` averages an ensemble's checkpoints), or with ``vote`` (a class), the ``network`` setting's
    probabilities with that class's averaged with the other's (``models.vote.class_vote``, as ``combine`` builds
    it). The settings must be cross-validated on the same folds: the same records per fold, the same beats and
    labels, the same classes — otherwise the ensemble is refused."""
    settings = list(joined)
    if vote is not None:
        if len(settings) != 2 or network not in settings:
            raise SystemExit(f"a vote needs two settings, the network's first; found {settings}")
        settings = [network, *(s for s in settings if s != network)]
    if len(settings) < 2:
        raise SystemExit(f"an ensemble needs at least two settings; found {settings}")
    first = joined[settings[0]]

    def folds(setting: str) -> list[list[str]]:
        return [[str(r) for r in np.unique(part["record"])] for part in joined[setting][3]["parts"]]

    for setting in settings[1:]:
        other = joined[setting]
        if other[2] != first[2] or folds(setting) != folds(settings[0]) or not np.array_equal(other[1], first[1]):
            raise SystemExit(
                f"{settings[0]!r} and {setting!r} were not validated on the same folds, beats and classes; "
                "an ensemble's members must be cross-validated on one split (the same data.n_folds and seed)"
            )
    if vote is None:
        combined, name = (lambda probs: np.mean(probs, axis=0)), "ensemble of: "
    else:
        from ecg_lightning.models.vote import class_vote

        k = first[2].index(vote)
        combined = lambda probs: class_vote(*map(torch.from_numpy, probs), k).numpy()  # noqa: E731
        name = f"vote on {vote}: "
    parts = [
        {**part, "probs": combined([joined[s][3]["parts"][i]["probs"] for s in settings])}
        for i, part in enumerate(first[3]["parts"])
    ]
    probs = combined([joined[s][0] for s in settings])
    name += " + ".join(f"({s})" for s in settings)
    return {name: (probs, first[1], first[2], {**first[3], "parts": parts})}


def seed_ensemble(joined: dict[str, tuple[np.ndarray, np.ndarray, list[str], dict]]) -> dict[str, tuple]:
    """Each setting trained with several seeds on the same folds as one ensemble of its seeds: every beat's
    probabilities averaged over the seeds (as ``evaluate`` averages an ensemble's checkpoints). A setting with one
    seed, or whose seeds did not validate the same folds and beats, is refused."""
    out = {}
    for setting, (_, _, classes, info) in joined.items():
        by_seed: dict[str, list[dict]] = defaultdict(list)
        for part in info["parts"]:
            by_seed[part["seed"]].append(part)
        if len(by_seed) < 2:
            raise SystemExit(f"{setting}: a seed ensemble needs several training seeds; found {sorted(by_seed)}")
        # each seed's folds in one order (by their records), so that beats line up across seeds
        ordered = [sorted(parts, key=lambda p: sorted(map(str, p["record"]))) for parts in by_seed.values()]
        first = ordered[0]
        for parts in ordered[1:]:
            if len(parts) != len(first) or not all(
                np.array_equal(a["record"], b["record"]) and np.array_equal(a["labels"], b["labels"])
                for a, b in zip(parts, first)
            ):
                raise SystemExit(f"{setting}: its seeds did not validate the same folds and beats")
        members = [{**part, "probs": np.mean([parts[i]["probs"] for parts in ordered], axis=0), "seed": "ensemble"}
                   for i, part in enumerate(first)]  # fmt: skip
        name = f"ensemble of seeds {', '.join(sorted(by_seed))}: {setting}"
        probs = np.concatenate([m["probs"] for m in members])
        labels = np.concatenate([m["labels"] for m in members])
        out[name] = (probs, labels, classes, {**info, "parts": members})
    return out


def selected_predictions(
    sweep_dirs: list[Path], ensemble: bool = False, vote: str | None = None, seeds: bool = False
) -> dict[str, tuple]:
    """The joined validation predictions (``joined_predictions``), each setting's seeds averaged first with
    ``seeds`` (``seed_ensemble``), then every setting averaged with ``ensemble`` or voting with ``vote``."""
    joined = joined_predictions(sweep_dirs)
    if seeds:
        joined = seed_ensemble(joined)
    if ensemble or vote:
        first = first_setting(sweep_dirs)
        network = next((name for name in joined if name.endswith(first)), first) if seeds else first
        joined = ensemble_of(joined, vote, network)
    return joined


def first_setting(sweep_dirs: list[Path]) -> str:
    """The setting of the first job of the first sweep folder (``--vote``: the network that decides)."""
    from ecg_lightning.callbacks import VAL_PREDICTIONS
    from ecg_lightning.evaluate import PREDICTIONS

    jobs = sorted(sweep_dirs[0].glob(f"*/{VAL_PREDICTIONS}"))
    if jobs:
        return job_setting(jobs[0].parent)
    evaluated = sorted(sweep_dirs[0].glob(f"*/{PREDICTIONS}"))
    return evaluated_setting(evaluated[0].parent) if evaluated else ""


def with_class_bias(probs: np.ndarray, bias: list[float] | None) -> np.ndarray:
    """Probabilities with a decision rule's log-prior offsets (``model.class_bias``) added before the softmax."""
    if bias is None:
        return probs
    if len(bias) != probs.shape[1]:
        raise SystemExit(f"--class-bias has {len(bias)} offsets for {probs.shape[1]} classes")
    from ecg_lightning.classifier import probabilities

    log_probs = torch.log(torch.from_numpy(probs).double().clamp_min(1e-12))
    return probabilities(log_probs, binary=False, bias=torch.tensor(bias)).numpy()


def pooled(
    sweep_dirs: list[Path],
    ensemble: bool = False,
    vote: str | None = None,
    class_bias: list[float] | None = None,
    seeds: bool = False,
) -> dict[str, dict]:
    """{setting: metrics over the concatenated validation beats of its jobs} (``joined_predictions``): for a
    subject-grouped k-fold, every beat of the pool is validated once, by the model that did not train on it;
    ``folds`` holds the per-fold means ± sd of the headline metrics beside it. With ``ensemble``, every setting
    found is averaged into one (``ensemble_of``); with ``seeds``, each setting's training seeds first
    (``seed_ensemble``); ``class_bias``: scored with those decision offsets."""
    from ecg_lightning.report import metrics_report

    summary = {}
    joined = selected_predictions(sweep_dirs, ensemble, vote, seeds)
    for setting, (probs, labels, classes, info) in joined.items():
        probs = with_class_bias(probs, class_bias)
        info = {
            **info,
            "parts": [{**part, "probs": with_class_bias(part["probs"], class_bias)} for part in info["parts"]],
        }
        threshold = info["threshold"]
        row = metrics_report(probs, labels, classes, threshold)
        per_job = [metrics_report(part["probs"], part["labels"], classes, threshold) for part in info["parts"]]
        row["folds"] = {
            name: [float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0]
            for name in (*METRICS, *AAMI_METRICS)
            if name in row
            for values in [[job[name] for job in per_job]]
        }
        row["jobs"] = len(info["parts"])
        row["records"] = info["records"]
        seeds = sorted({part["seed"] for part in info["parts"]})
        if len(seeds) > 1:  # the same folds trained with several seeds: each seed's pool, and their mean ± sd
            by_seed = {}
            for seed in seeds:
                mine = [part for part in info["parts"] if part["seed"] == seed]
                pool = metrics_report(np.concatenate([p["probs"] for p in mine]),
                                      np.concatenate([p["labels"] for p in mine]), classes, threshold)  # fmt: skip
                by_seed[seed] = {name: pool[name] for name in (*METRICS, *AAMI_METRICS) if name in pool}
            row["seeds"] = by_seed
            row["over_seeds"] = {
                name: [float(np.mean(values)), float(np.std(values, ddof=1))]
                for name in next(iter(by_seed.values()))
                for values in [[by_seed[seed][name] for seed in seeds]]
            }
        summary[setting] = row
    return summary


def pooled_per_record(
    sweep_dirs: list[Path],
    ensemble: bool = False,
    vote: str | None = None,
    class_bias: list[float] | None = None,
    seeds: bool = False,
) -> str:
    """One setting's pooled validation beats per record, as CSV (the columns ``evaluate`` writes for a test side):
    which patients a k-fold's pooled figure is made of — on DS1, most S beats are one patient's."""
    from ecg_lightning.report import per_record, per_record_columns, rows_to_csv

    joined = selected_predictions(sweep_dirs, ensemble, vote, seeds)
    if len(joined) != 1:
        raise SystemExit(f"--per-record needs one setting (or --ensemble / --seed-ensemble); found {sorted(joined)}")
    probs, labels, classes, info = next(iter(joined.values()))  # the beats in the order of info's parts
    records = np.concatenate([np.asarray(part["record"]).astype(str) for part in info["parts"]])
    names, index = np.unique(records, return_inverse=True)
    rows = per_record(index, tuple(names), with_class_bias(probs, class_bias), labels, classes, info["threshold"])
    return rows_to_csv(rows, per_record_columns(classes))


def pooled_markdown(summary: dict[str, dict]) -> str:
    """One row per setting: each metric over the pooled beats, then (mean ± sd over the folds)."""
    cols = [m for m in dict.fromkeys((*AAMI_METRICS, *METRICS)) if any(m in row for row in summary.values())]
    lines = ["| setting | jobs | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for setting, row in summary.items():
        cells = [f"{row[c]:.3f} ({row['folds'][c][0]:.3f} ± {row['folds'][c][1]:.3f})" for c in cols if c in row]
        lines.append(f"| {setting} | {row['jobs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(summary: dict[str, dict]) -> str:
    cols = [m for m in dict.fromkeys((*METRICS, *AAMI_METRICS, "epoch_s")) if any(m in row for row in summary.values())]
    lines = ["| setting | jobs | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
    for setting, row in summary.items():
        cells = [
            f"{row[c][0]:.3f} ± {row[c][1]:.3f}" if c != "epoch_s" else f"{row[c][0]:.0f} ± {row[c][1]:.0f}"
            for c in cols
            if c in row
        ]
        lines.append(f"| {setting} | {row['jobs']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Mean ± sd of a multirun's metrics, per setting.")
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="multirun folders; jobs of one setting are pooled")
    parser.add_argument(
        "--which",
        choices=("final", "best", "test", "pooled"),
        default="final",
        help="final epoch (default, not chosen on val), the best val epoch, the test set (scored "
        "with the best-on-validation checkpoint), or pooled: the final models' validation beats of all jobs of a "
        "setting joined (a k-fold: every beat validated once)",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="with --which pooled: average the probabilities of every setting found (cross-validated on the "
        "same folds) and score that ensemble",
    )
    parser.add_argument(
        "--seed-ensemble",
        action="store_true",
        help="with --which pooled: average each setting's training seeds (the same folds) beat by beat first",
    )
    parser.add_argument(
        "--vote",
        metavar="CLASS",
        help="with --which pooled and two settings: the first sweep's setting decides, the second votes on CLASS "
        "(as python -m ecg_lightning.combine builds it)",
    )
    parser.add_argument(
        "--class-bias",
        type=float,
        nargs="+",
        metavar="B",
        help="with --which pooled: score with these log-prior offsets per class (a decision rule calibrate chose)",
    )
    parser.add_argument(
        "--per-record",
        type=Path,
        metavar="CSV",
        help="with --which pooled and one setting: also write its pooled beats per record (per_record.csv columns)",
    )
    parser.add_argument("--out", type=Path, help="also write the summary as JSON here")
    args = parser.parse_args()
    pooled_only = args.ensemble or args.vote or args.class_bias or args.seed_ensemble or args.per_record
    if pooled_only and args.which != "pooled":
        parser.error("--ensemble, --seed-ensemble, --vote, --class-bias and --per-record need --which pooled")
    if args.which == "pooled":
        summary = pooled(args.sweep_dirs, args.ensemble, args.vote, args.class_bias, args.seed_ensemble)
        print(pooled_markdown(summary))
        if args.per_record:
            args.per_record.parent.mkdir(parents=True, exist_ok=True)
            table = pooled_per_record(args.sweep_dirs, args.ensemble, args.vote, args.class_bias, args.seed_ensemble)
            args.per_record.write_text(table)
    else:
        summary = summarize(args.sweep_dirs, args.which)
        print(markdown(summary))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        sweeps = [str(d) for d in args.sweep_dirs]
        args.out.write_text(json.dumps({"sweeps": sweeps, "which": args.which, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
