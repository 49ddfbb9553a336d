"""The binary task across patients (subject-grouped 4-fold): each fold's seeds averaged into one model
(docs/study_reproduction.md, "A seed ensemble on the binary task"). For every fold, ``evaluate side=val`` with that
fold's final checkpoints of all seeds (the fold's held-out subjects); mean ± sd over the folds, beside the single
seeds' mean ± sd over the same folds.

    python benchmarks/binary_seed_ensemble.py outputs/binary_kfold4/seq_seeds \
        --out results/sequence_binary_kfold4_seed_ensemble.json
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.evaluate import evaluate

KEPT = ("accuracy", "balanced_accuracy", "auroc", "sensitivity", "specificity", "ppv")


def jobs_by_fold(sweep: Path) -> dict[int, list[Path]]:
    """Each fold's finished training jobs (any folder depth: a job folder may hold nested folders)."""
    folds: dict[int, list[Path]] = defaultdict(list)
    for overrides in sorted(sweep.rglob(".hydra/overrides.yaml")):
        job = overrides.parent.parent
        report = job / "metrics.json"
        if not report.is_file() or not json.loads(report.read_text()).get("finished", False):
            raise SystemExit(f"{job}: the training has not finished (no finished metrics.json); rerun or remove it")
        fold = next(int(o.split("=")[1]) for o in OmegaConf.load(overrides) if o.startswith("data.fold="))
        folds[fold].append(job)
    if not folds:
        raise SystemExit(f"{sweep}: no training jobs there; give the folder of the data.fold x seed multirun")
    return dict(sorted(folds.items()))


def ensemble_of(jobs: list[Path], out: Path) -> dict[str, float]:
    paths = ",".join(f"'{job / 'checkpoints' / 'last.ckpt'}'" for job in jobs)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("evaluate", [f"ckpt_path=[{paths}]", "side=val", f"paths.output_dir={out}"],
                      return_hydra_config=True)  # fmt: skip
    HydraConfig.instance().set_config(cfg)
    try:
        result = evaluate(cfg)
    finally:
        HydraConfig.instance().cfg = None
    return {k: float(result[k]) for k in KEPT}


def mean_sd(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    return {k: [round(float(np.mean([r[k] for r in rows])), 4), round(float(np.std([r[k] for r in rows], ddof=1)), 4)]
            for k in KEPT}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the training multirun: folds x seeds")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    folds = jobs_by_fold(args.sweep)
    ensembles = {k: ensemble_of(jobs, args.sweep.parent / f"{args.sweep.name}_ensemble" / f"fold{k}")
                 for k, jobs in folds.items()}  # fmt: skip
    singles = [{k: json.loads((j / "metrics.json").read_text())["final"][f"val/{k}"] for k in KEPT}
               for jobs in folds.values() for j in jobs]  # fmt: skip
    rows = {"seed ensemble, per fold": mean_sd(list(ensembles.values())), "single seeds": mean_sd(singles)}
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[k][0]:.3f} ± {row[k][1]:.3f}" for k in KEPT) + " |")
    if args.out:
        report = {"sweep": str(args.sweep), "folds": {str(k): [str(j) for j in v] for k, v in folds.items()},
                  "ensemble_by_fold": ensembles, **rows}  # fmt: skip
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
