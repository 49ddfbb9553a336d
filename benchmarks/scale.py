"""Scale: a synthetic Icentia11k-shaped database at two sizes, to show how store build, setup and memory grow.

Writes a WFDB database shaped like Icentia11k (250 Hz, one lead, beat annotations N / S / V, ~75 beats a
minute) with ``--records`` records of ``--samples`` samples each (default 2,000 x 600,000 = 1.2 billion samples,
40 minutes a record), and a quarter of it, then for each size, every step in its own process (peak RSS is the
process's own, its imports included):

- cold setup: the DataModule reads the records one at a time into the memory-mapped store, then indexes the
  beats and splits the records by subject (build time, peak RSS);
- warm setup: the same from the store (time, peak RSS);
- batch cut: mean time to cut one training batch of 128 windows (1 s each side of the beat).

    python benchmarks/scale.py [--records 2000] [--samples 600000] [--dir /tmp/scale] [--keep]
        [--out results/benchmark_scale.txt]

Disk: ~2 bytes a sample for the WFDB files and 4 (float32 store) for the store: ~9 GB at the default size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import wfdb
from tqdm.auto import tqdm

FS = 250
SHAPES = {"N": (1.0, 0.010), "S": (1.6, 0.010), "V": (-1.8, 0.040)}  # amplitude, width (s)


def write_record(root: Path, name: str, samples: int, rng: np.random.Generator) -> int:
    """One synthetic record: beats every ~0.8 s (5 % V, 3 % S), each a Gaussian of its class's shape, on noise."""
    rr = np.clip(rng.normal(0.8 * FS, 0.08 * FS, samples // int(0.5 * FS)), 0.4 * FS, 1.5 * FS).astype(np.int64)
    beats = np.cumsum(rr)
    beats = beats[beats < samples - FS]
    symbols = rng.choice(list(SHAPES), len(beats), p=[0.92, 0.03, 0.05])
    signal = rng.normal(0.0, 0.05, samples) + 0.2 * np.sin(np.arange(samples) * (2 * np.pi * 0.25 / FS))
    offsets = np.arange(-int(0.15 * FS), int(0.15 * FS) + 1)
    for symbol, (height, width) in SHAPES.items():
        mine = beats[symbols == symbol]
        kernel = height * np.exp(-0.5 * (offsets / (width * FS)) ** 2)
        np.add.at(signal, (mine[:, None] + offsets).ravel(), np.tile(kernel, len(mine)))
    wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["ECG"], p_signal=signal[:, None], fmt=["16"], write_dir=str(root))
    wfdb.wrann(name, "atr", beats, symbol=list(symbols), write_dir=str(root))
    return len(beats)


def write_database(root: Path, n_records: int, samples: int) -> int:
    """The database (RECORDS included); returns its beats. Records already written are kept."""
    root.mkdir(parents=True, exist_ok=True)
    beats = 0
    names = [f"p{i:05d}" for i in range(n_records)]
    for i, name in enumerate(tqdm(names, desc=f"Writing {n_records} records", unit="record")):
        if (root / f"{name}.atr").is_file():
            beats += len(wfdb.rdann(str(root / name), "atr").sample)
            continue
        beats += write_record(root, name, samples, np.random.default_rng(i))
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    return beats


def datamodule(root: Path, cache_dir: Path):
    from ecg_lightning.config import configured_label_sets
    from ecg_lightning.data import BeatDataModule

    return BeatDataModule(
        databases=["icentia"], catalog={"icentia": {"root": root, "download": False}}, fs=FS, window_s=1.0,
        split="patient", cache_dir=cache_dir, label_sets=configured_label_sets(), labels="study",
    )  # fmt: skip


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(step: str, root: Path, cache_dir: Path) -> dict:
    """One measured step in this process: ``cold`` or ``warm`` setup (then ``batch`` cutting after warm)."""
    dm = datamodule(root, cache_dir)
    imports = peak_rss_mib()
    start = time.perf_counter()
    dm.setup("fit")
    result = {"seconds": time.perf_counter() - start, "peak_rss_mib": peak_rss_mib(), "imports_rss_mib": imports}
    if step == "warm":
        loader = dm.train_dataloader()
        batches = min(200, len(loader) - 1)
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        result["batch_ms"] = (time.perf_counter() - start) / batches * 1e3
        result["windows"] = len(dm.data_train) + len(dm.data_val)
        result["samples"] = int(dm.records.offsets[-1])
        result["store_mib"] = sum(f.stat().st_size for f in cache_dir.rglob("*") if f.is_file()) / 2**20
    return result


def measure(step: str, root: Path, cache_dir: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", step, str(root), str(cache_dir)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=600_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/ecg_lightning_scale"))
    parser.add_argument("--keep", action="store_true", help="keep the written databases (rerun faster)")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        step, root, cache_dir = args.worker
        print(json.dumps(worker(step, Path(root), Path(cache_dir))))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import emit

    lines = [f"synthetic Icentia11k-shaped database, {FS} Hz, 1 lead; {os.cpu_count()} CPUs; each step its own process"]
    lines.append(
        "records  samples        beats      windows     store MiB  cold setup s  cold peak MiB  "
        "warm setup s  warm peak MiB  (imports MiB)  batch ms"
    )
    for n in (args.records // 4, args.records):
        root, cache_dir = args.dir / f"db{n}", args.dir / f"cache{n}"
        beats = write_database(root, n, args.samples)
        shutil.rmtree(cache_dir, ignore_errors=True)
        cold = measure("cold", root, cache_dir)
        warm = measure("warm", root, cache_dir)
        lines.append(
            f"{n:7d}  {warm['samples']:13,d}  {beats:11,d}  {warm['windows']:11,d}  {warm['store_mib']:9.0f}"
            f"  {cold['seconds']:12.1f}  {cold['peak_rss_mib']:13.0f}  {warm['seconds']:12.2f}"
            f"  {warm['peak_rss_mib']:13.0f}  ({warm['imports_rss_mib']:11.0f})  {warm['batch_ms']:8.2f}"
        )
        print(lines[-1], flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(cache_dir, ignore_errors=True)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
