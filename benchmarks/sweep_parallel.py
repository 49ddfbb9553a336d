"""A 4-job sweep run one job after another (Hydra's basic launcher) vs two at a time (joblib launcher).

Both sweeps run the same jobs: ``experiment=study_cnn seed=0,1,2,3`` for ``--epochs`` epochs on the real
database. Serial jobs get every core (threads=auto); joblib's two workers one core's share each
(threads=auto: cores / n_jobs), so neither sweep runs more threads than cores. Printed: wall time of each sweep,
the speed-up, and the largest difference between the two sweeps' final validation metrics (the same runs; only
the thread count, hence floating-point summation order, differs).

    python benchmarks/sweep_parallel.py [--epochs 2] [--root $MITDB_DIR] [--out results/benchmark_sweep_parallel.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import emit  # benchmarks/common.py (scripts run from the repo root)

JOBS = ["experiment=study_cnn", "seed=0,1,2,3", "callbacks.progress_bar.refresh_rate=0"]
LAUNCHERS = {"serial (basic launcher)": [], "joblib, n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}


def sweep(overrides: list[str], out: Path, root: Path) -> tuple[float, list[dict]]:
    """Wall time of one multirun and its jobs' final metrics (in job order)."""
    env = {**os.environ, "MITDB_DIR": str(root)}
    env.pop("OMP_NUM_THREADS", None)
    cmd = [sys.executable, "-m", "ecg_lightning.train", "-m", *overrides, f"hydra.sweep.dir={out}"]
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    jobs = sorted((p for p in out.iterdir() if (p / "metrics.json").is_file()), key=lambda p: int(p.name.split("_")[0]))
    return seconds, [json.loads((j / "metrics.json").read_text())["final"] for j in jobs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "../shared/data/mitdb")))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [f"4 jobs: {' '.join(JOBS[:2])} trainer.max_epochs={args.epochs}; {os.cpu_count()} CPUs"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, launcher) in enumerate(LAUNCHERS.items()):
            results[name] = sweep(
                [*JOBS, f"trainer.max_epochs={args.epochs}", *launcher], Path(tmp) / str(i), args.root
            )
            lines.append(f"{name:24s} {results[name][0]:7.1f} s wall, {len(results[name][1])} jobs")
            print(lines[-1], flush=True)
    (serial, a), (parallel, b) = results.values()
    diff = max(abs(x[k] - y[k]) for x, y in zip(a, b) for k in x if k.startswith("val/"))
    lines.append(f"speed-up: {serial / parallel:.2f}x; largest difference in final val metrics: {diff:.4f}")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
