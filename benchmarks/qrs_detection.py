"""QRS detection benchmark on all MIT-BIH records: ecg_lightning.detect.detect_beats vs wfdb's XQRS.

    python benchmarks/qrs_detection.py [--root DIR] [--out results/benchmark_qrs_detection.txt]

Each channel is standardized over the record (zero mean, unit variance) and detections are matched to the
reference beat annotations with ``wfdb.processing.compare_annotations`` (150 ms window, as AAMI EC57).
Se = TP / (TP + FN), +P = TP / (TP + FP), pooled over records. Record 207's ventricular flutter episodes
(between ``[`` and ``]``) hold flutter waves that are not beat annotations; EC57 leaves such episodes out of
the evaluation, so the totals are given both with them (every detection there counts as a false positive) and
without them.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import wfdb
import wfdb.processing
from tqdm import tqdm

from ecg_lightning.detect import detect_beats

log = logging.getLogger("qrs_detection")

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
CLASSES = {"V": frozenset("V"), "S": frozenset("AaJS"), "F": frozenset("F")}
RESAMPLE_RECORD = "208"  # many (and multiform) V beats
RESAMPLE_FS = (250, 128)


def standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per channel (rows)."""
    return (x - x.mean(axis=-1, keepdims=True)) / x.std(axis=-1, keepdims=True)


def xqrs(x: np.ndarray, fs: float) -> np.ndarray:
    """Baseline as in predict today: XQRS on the standardized first channel."""
    det = wfdb.processing.XQRS(sig=x[0], fs=fs)
    det.detect(verbose=False)
    return np.asarray(det.qrs_inds, dtype=np.int64)


METHODS: dict[str, tuple[str, Callable[[np.ndarray, float], np.ndarray]]] = {
    "detect_beats, channels 0+1": ("detect2", lambda x, fs: detect_beats(x, fs)),
    "detect_beats, channel 0 (MLII)": ("detect1", lambda x, fs: detect_beats(x[0], fs)),
    "XQRS, channel 0 (baseline)": ("xqrs", xqrs),
}


@dataclass
class Tally:
    """Pooled counts of one method."""

    tp: int = 0
    fn: int = 0
    fp: int = 0
    fp_excluded: int = 0  # false positives inside excluded (flutter) episodes
    fn_excluded: int = 0
    seconds: float = 0.0
    found: dict[str, list[int]] = field(default_factory=lambda: {k: [0, 0] for k in CLASSES})

    def line(self, excluded: bool = False) -> str:
        fn = self.fn - (self.fn_excluded if excluded else 0)
        fp = self.fp - (self.fp_excluded if excluded else 0)
        return (
            f"Se {100 * self.tp / (self.tp + fn):7.3f} %  +P {100 * self.tp / (self.tp + fp):7.3f} %  "
            f"(TP {self.tp}, FN {fn}, FP {fp})"
        )


def excluded_intervals(ann: wfdb.Annotation) -> list[tuple[int, int]]:
    """Ventricular flutter/fibrillation episodes ``[`` ... ``]`` (EC57 excludes them)."""
    starts = [s for s, y in zip(ann.sample, ann.symbol) if y == "["]
    ends = [s for s, y in zip(ann.sample, ann.symbol) if y == "]"]
    return list(zip(starts, ends))


def inside(samples: np.ndarray, intervals: list[tuple[int, int]]) -> np.ndarray:
    """Boolean mask of ``samples`` within any of ``intervals``."""
    mask = np.zeros(len(samples), dtype=bool)
    for a, b in intervals:
        mask |= (samples >= a) & (samples <= b)
    return mask


def compare(ref: np.ndarray, test: np.ndarray, fs: float) -> wfdb.processing.Comparitor:
    """wfdb's beat-by-beat comparison with the EC57 150 ms window."""
    return wfdb.processing.compare_annotations(ref, test, window_width=int(0.15 * fs))


def resampled(root: Path, name: str, fs_new: int) -> str:
    """detect_beats (both channels) on ``name`` resampled to ``fs_new`` Hz."""
    rec = wfdb.rdrecord(str(root / name))
    ann = wfdb.rdann(str(root / name), "atr")
    beat = np.isin(ann.symbol, list(BEAT_SYMBOLS))
    ref = np.asarray(ann.sample)[beat]
    x = np.stack([wfdb.processing.resample_sig(rec.p_signal[:, k], rec.fs, fs_new)[0] for k in range(rec.n_sig)])
    ref_new = np.unique(np.round(ref * fs_new / rec.fs).astype(np.int64))
    ref_new = ref_new[ref_new < x.shape[-1]]
    start = time.perf_counter()
    test = detect_beats(standardize(x), fs_new)
    seconds = time.perf_counter() - start
    c = compare(ref_new, test, fs_new)
    return (
        f"  record {name} at {fs_new} Hz (channels 0+1): Se {100 * c.tp / (c.tp + c.fn):.3f} %  "
        f"+P {100 * c.tp / (c.tp + c.fp):.3f} %  (TP {c.tp}, FN {c.fn}, FP {c.fp}), {seconds:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "data/mitdb")))
    parser.add_argument("--out", type=Path, default=Path("results/benchmark_qrs_detection.txt"))
    parser.add_argument("--records", nargs="*", help="record names (default: all in --root)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    names = args.records or sorted(p.stem for p in args.root.glob("*.hea"))
    if not names:
        raise SystemExit(f"{args.root}: no WFDB records (*.hea); set --root or MITDB_DIR")
    tallies = {label: Tally() for label in METHODS}
    rows = []
    for name in tqdm(names, desc="records", unit="rec"):
        rec = wfdb.rdrecord(str(args.root / name))
        ann = wfdb.rdann(str(args.root / name), "atr")
        fs = float(rec.fs)
        x = standardize(rec.p_signal.T.astype(np.float64))
        symbols = np.asarray(ann.symbol)
        beat = np.isin(symbols, list(BEAT_SYMBOLS))
        ref, ref_sym = np.asarray(ann.sample, dtype=np.int64)[beat], symbols[beat]
        skip = excluded_intervals(ann)
        row = {"name": name, "beats": len(ref)}
        for label, (key, method) in METHODS.items():
            start = time.perf_counter()
            test = method(x, fs)
            seconds = time.perf_counter() - start
            c = compare(ref, test, fs)
            t = tallies[label]
            t.tp += c.tp
            t.fn += c.fn
            t.fp += c.fp
            t.seconds += seconds
            matched = np.zeros(len(ref), dtype=bool)
            matched[np.asarray(c.matched_ref_inds, dtype=np.int64)] = True
            unmatched_test = np.ones(len(test), dtype=bool)
            unmatched_test[np.asarray(c.matched_test_inds, dtype=np.int64)] = False
            t.fp_excluded += int(inside(test[unmatched_test], skip).sum())
            t.fn_excluded += int(inside(ref[~matched], skip).sum())
            for cls, syms in CLASSES.items():
                is_cls = np.isin(ref_sym, list(syms))
                t.found[cls][0] += int(matched[is_cls].sum())
                t.found[cls][1] += int(is_cls.sum())
            row[key] = (c.tp, c.fn, c.fp, seconds)
            row[key + "_V"] = (int(matched[ref_sym == "V"].sum()), int((ref_sym == "V").sum()))
        rows.append(row)

    out = [
        __doc__.strip().splitlines()[0],
        "",
        f"{len(names)} records from {args.root}; each channel standardized over the record; "
        "reference = beat annotations (" + " ".join(sorted(BEAT_SYMBOLS)) + "); match window 150 ms.",
        (
            "detect_beats is fed both channels (2-D array, MLII + V1/V2/V4/V5) and, separately, channel 0 "
            "alone (the single standardized MLII lead that predict passes)."
        ),
        "",
    ]
    out.append("Overall (pooled over records)")
    for label, t in tallies.items():
        out.append(f"  {label:32s} {t.line()}")
    out.append("")
    out.append("Overall without record 207's ventricular flutter episodes (EC57 exclusion)")
    for label, t in tallies.items():
        out.append(f"  {label:32s} {t.line(excluded=True)}")
    out.append("")
    out.append("Share of beats found by class (V = V; S = A a J S; F = F)")
    for label, t in tallies.items():
        parts = [f"{cls} {100 * f / max(total, 1):6.2f} % ({f}/{total})" for cls, (f, total) in t.found.items()]
        out.append(f"  {label:32s} " + "  ".join(parts))
    out.append("")
    out.append("Seconds per record (30 min at 360 Hz, this machine)")
    for label, t in tallies.items():
        out.append(f"  {label:32s} {t.seconds / len(names):.3f} s")
    out.append("")
    out.append("Per record (detect_beats on channels 0+1; then FN/FP of detect_beats on channel 0 and of XQRS)")
    out.append(
        f"{'rec':>4} {'beats':>6} {'TP':>6} {'FN':>4} {'FP':>4} {'Se %':>7} {'+P %':>7} {'V found':>9}"
        f" | {'ch0 FN':>6} {'FP':>4} {'V found':>9} | {'XQRS FN':>7} {'FP':>4} {'V found':>9}"
    )
    for r in rows:
        tp, fn, fp, _ = r["detect2"]
        se = 100 * tp / max(tp + fn, 1)
        pp = 100 * tp / max(tp + fp, 1)
        v2, v1, vx = (f"{a}/{b}" for a, b in (r["detect2_V"], r["detect1_V"], r["xqrs_V"]))
        out.append(
            f"{r['name']:>4} {r['beats']:6d} {tp:6d} {fn:4d} {fp:4d} {se:7.2f} {pp:7.2f} {v2:>9}"
            f" | {r['detect1'][1]:6d} {r['detect1'][2]:4d} {v1:>9} | {r['xqrs'][1]:7d} {r['xqrs'][2]:4d} {vx:>9}"
        )
    out.append("")
    worst = sorted(rows, key=lambda r: -(r["detect2"][1] + r["detect2"][2]))[:5]
    out.append(
        "Worst 5 records (FN + FP, channels 0+1): "
        + ", ".join(f"{r['name']} (FN {r['detect2'][1]}, FP {r['detect2'][2]})" for r in worst)
    )
    out.append("")
    if RESAMPLE_RECORD in names:
        out.append("Other sampling rates (wfdb.processing.resample_sig; reference samples scaled)")
        out.extend(resampled(args.root, RESAMPLE_RECORD, fs_new) for fs_new in RESAMPLE_FS)
    text = "\n".join(out) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
