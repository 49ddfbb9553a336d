"""Data setup benchmark: cold and warm DataModule setup vs a bare wfdb read, memory, and batch-cutting cost.

python benchmarks/data_setup.py [--root ../shared/data/mitdb] [--repeats 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import wfdb

from ecg_lightning.config import configured_label_sets
from ecg_lightning.data import BeatDataModule
from ecg_lightning.data.records import list_records


def mitdb(root: Path, **kwargs) -> BeatDataModule:
    """MIT-BIH at ``root`` as configured by default (study settings)."""
    spec = {"root": root, "download": False, "same_subject": [["201", "202"]]}
    return BeatDataModule(catalog={"mitdb": spec}, label_sets=configured_label_sets(), **kwargs)


def timed(fn, repeats: int) -> tuple[float, object]:
    """Best wall time of ``repeats`` calls (and the last result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bare_wfdb_read(root: Path) -> None:
    for name in list_records(root):
        wfdb.rdrecord(str(root / name), channels=[0])
        wfdb.rdann(str(root / name), "atr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "../shared/data/mitdb")))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="where data.cut_on_device cuts (cuda on a GPU machine)")
    args = parser.parse_args()

    t_bare, _ = timed(lambda: bare_wfdb_read(args.root), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:

        def cold() -> BeatDataModule:
            for entry in Path(tmp).iterdir():  # empty cache each time
                for f in entry.iterdir():
                    f.unlink()
                entry.rmdir()
            dm = mitdb(args.root, cache_dir=tmp)
            dm.setup()
            return dm

        def warm() -> BeatDataModule:
            dm = mitdb(args.root, cache_dir=tmp)
            dm.setup()
            return dm

        t_cold, _ = timed(cold, args.repeats)
        t_warm, dm = timed(warm, args.repeats)
        n_windows = len(dm.data_train) + len(dm.data_val)
        loader = dm.train_dataloader()
        t_epoch, n_batches = timed(lambda: sum(1 for _ in loader), 1)
        # data.cut_on_device: plans from the loader, windows cut where the signals are (args.device)
        on_device = mitdb(args.root, cache_dir=tmp, cut_on_device=True)
        on_device.setup()
        device = torch.device(args.device)

        def device_epoch() -> int:
            n = 0
            for plan in on_device.train_dataloader():
                on_device.on_after_batch_transfer({k: v.to(device) for k, v in plan.items()}, 0)
                n += 1
            if device.type == "cuda":
                torch.cuda.synchronize()
            return n

        device_epoch()  # moves the signals to the device once
        t_device, _ = timed(device_epoch, 1)

    materialized = n_windows * dm.window_length * np.dtype(np.float32).itemsize
    print(
        f"records: {len(dm.records.names)}  windows: {n_windows} (train {len(dm.data_train)}, val {len(dm.data_val)})"
    )
    print(f"bare wfdb read (rdrecord ch0 + rdann, 48 records): {t_bare:.2f} s")
    print(f"cold setup (read + standardize + cache + split):    {t_cold:.2f} s")
    print(f"warm setup (from cache):                            {t_warm * 1000:.0f} ms")
    print(
        f"dataset memory: {dm.nbytes / 2**20:.0f} MiB "
        f"(signals {dm.records.signal.nbytes / 2**20:.0f} MiB, memory-mapped)"
        f" vs {materialized / 2**20:.0f} MiB for materialized windows"
    )
    print(
        f"cutting one epoch of train batches: {t_epoch:.2f} s for {n_batches} batches "
        f"({1000 * t_epoch / n_batches:.2f} ms per batch of {dm.hparams.batch_size})"
    )
    print(
        f"the same with data.cut_on_device on {args.device}: {t_device:.2f} s "
        f"({1000 * t_device / n_batches:.2f} ms per batch: plan, transfer, one gather)"
    )


if __name__ == "__main__":
    main()
