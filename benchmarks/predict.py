"""Holter-length prediction benchmark: a 24-hour recording through `predict` end to end.

The recording is all 48 MIT-BIH records joined (48 x 30 min 5 s at 360 Hz, ~31 M samples per lead), written
as one WFDB record (both leads, named MLII and V1) in a temporary folder. `python -m ecg_lightning.predict`
then reads it, detects the beats (annotation=null), classifies every one and writes beats.csv, summary.json,
the strip figure and report.html; this script prints the wall time, the peak memory of that process, the share of
each stage (from summary.json's "seconds"), report.html's size and the time headless Chromium takes to open it and
draw its overview.

    python benchmarks/predict.py [--ckpt <checkpoint>] [--root $MITDB_DIR] [--out results/benchmark_predict.txt]
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

import numpy as np
import wfdb
from common import emit  # benchmarks/common.py (scripts run from the repo root)

# `python -m ecg_lightning.predict`, writing its own peak resident memory (KiB) to the file named first
MEASURED = (
    "import atexit, resource, runpy, sys; out = sys.argv.pop(1); "
    "atexit.register(lambda: open(out, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); "
    "runpy.run_module('ecg_lightning.predict', run_name='__main__')"
)


def join_records(root: Path, out_dir: Path) -> tuple[Path, int, int]:
    """All records of ``root`` joined into one two-lead record ``holter24``; returns (path, samples, beats)."""
    names = [n.strip() for n in (root / "RECORDS").read_text().split() if n.strip()]
    signals, samples, symbols, offset = [], [], [], 0
    for name in names:
        rec = wfdb.rdrecord(str(root / name), channels=[0, 1])
        ann = wfdb.rdann(str(root / name), "atr")
        signals.append(rec.p_signal)
        samples.append(ann.sample + offset)
        symbols += ann.symbol
        offset += rec.sig_len
    signal = np.concatenate(signals)
    wfdb.wrsamp(
        "holter24",
        fs=360,
        units=["mV", "mV"],
        sig_name=["MLII", "V1"],
        p_signal=signal,
        fmt=["212", "212"],
        write_dir=str(out_dir),
    )
    wfdb.wrann("holter24", "atr", np.concatenate(samples), symbol=symbols, write_dir=str(out_dir))
    beats = sum(s in "NLRBAaJSVrFejnE/fQ?" for s in symbols)
    return out_dir / "holter24", len(signal), beats


def time_to_draw(html: Path) -> float | None:
    """Seconds from opening ``html`` in headless Chromium to its overview drawn (the page's ready mark)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        start = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        seconds = time.perf_counter() - start
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", help="an ecg-lightning checkpoint (default: the shipped model)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "data/mitdb")))
    parser.add_argument("--out", type=Path, help="also write the figures here")
    parser.add_argument("--join-into", type=Path, help=argparse.SUPPRESS)  # internal: the joining step
    args = parser.parse_args()
    if args.join_into:
        print(json.dumps(join_records(args.root, args.join_into)[1:]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        # joined in a child process: this one stays small, so the predict process's peak memory (its fork starts
        # as a copy of this one) is predict's own
        joined = subprocess.run(
            [sys.executable, __file__, "--root", str(args.root), "--join-into", tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        n_samples, n_beats = json.loads(joined.stdout.strip().splitlines()[-1])
        record = Path(tmp) / "holter24"
        run_dir = Path(tmp) / "run"
        start = time.perf_counter()
        peak_file = Path(tmp) / "peak_kib"
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURED,
                str(peak_file),
                *([f"ckpt_path={args.ckpt}"] if args.ckpt else []),
                f"record={record}",
                "annotation=null",
                f"hydra.run.dir={run_dir}",
            ],
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(done.stderr[-3000:])
        peak_mib = int(peak_file.read_text()) / 1024
        summary = json.loads((run_dir / "summary.json").read_text())
        html = run_dir / "report.html"
        html_mib = html.stat().st_size / 2**20
        opened = time_to_draw(html)
    seconds = summary["seconds"]
    staged = sum(seconds.values())
    lines = [
        f"24-hour recording: {n_samples:,} samples x 2 leads at 360 Hz ({n_samples / 360 / 3600:.1f} h), "
        f"{n_beats:,} annotated beats",
        f"checkpoint: {summary['checkpoint']} (leads {summary['trained_leads']}, {len(summary['classes'])} classes)",
        f"predict end to end (annotation=null): {wall:.1f} s wall, peak memory {peak_mib:.0f} MiB",
        f"beats found and classified: {summary['beats']:,} ({summary['beat_source']}), "
        f"{summary['abnormal_fraction']:.1%} not {summary['classes'][0]}",
        "stages: "
        + ", ".join(f"{k} {v:.1f} s ({v / staged:.0%})" for k, v in seconds.items())
        + f"; start-up and the rest {wall - staged:.1f} s",
        f"report.html: {html_mib:.1f} MiB; opened and overview drawn in headless Chromium in "
        + (f"{opened:.2f} s" if opened is not None else "(not measured: no Chromium/Playwright here)"),
    ]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
