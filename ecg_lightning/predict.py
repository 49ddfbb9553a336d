"""Detect abnormal beats in any WFDB record with a trained checkpoint.

``python -m ecg_lightning.predict ckpt_path=<ckpt> record=<path/to/record>`` writes ``beats.csv`` (one row
per beat), ``summary.json`` and ``strip.png`` (the ECG with abnormal beats marked) into the run folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import wfdb
import wfdb.processing
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from ecg_lightning import report
from ecg_lightning.checkpoint import build_model, checkpoint_config, load_checkpoint
from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.data.labels import DROPPED, label_beats
from ecg_lightning.data.records import Record, RecordError, RecordSet, read_record
from ecg_lightning.data.windows import BeatWindowDataset, index_beats, passthrough_collate
from ecg_lightning.errors import exit_on_input_error

log = logging.getLogger(__name__)

BEAT_COLUMNS = ("sample", "time_s", "prob_abnormal", "predicted", "reference", "symbol")


@dataclass(frozen=True)
class Beats:
    """Beat positions (samples at the model's rate), with reference labels when annotated."""

    sample: np.ndarray
    reference: np.ndarray | None
    symbol: np.ndarray
    source: str


def find_beats(record: Record, data: DictConfig, annotated: bool) -> Beats:
    """Beats from the record's annotations, or from wfdb's XQRS detector when it has none."""
    if annotated:
        labels = label_beats(record.ann_symbol, data.normal, data.abnormal)
        is_beat = labels != DROPPED
        if not is_beat.any():
            raise RecordError(f"{record.name}: its annotation file has no beat annotations; "
                              "run with annotation=null to detect the beats instead")
        return Beats(record.ann_sample[is_beat], labels[is_beat], record.ann_symbol[is_beat], "annotation")
    xqrs = wfdb.processing.XQRS(sig=record.signal.astype(np.float64), fs=record.fs)
    xqrs.detect(verbose=False)
    found = np.asarray(xqrs.qrs_inds, dtype=np.int64)
    if len(found) == 0:
        raise RecordError(f"{record.name}: the QRS detector found no beats; check the lead (data.lead) and the signal")
    return Beats(found, None, np.full(len(found), "", dtype="<U2"), "xqrs")


def predict_record(cfg: DictConfig) -> dict[str, Any]:
    """Classify every beat of ``cfg.record``; write beats.csv, summary.json and strip.png; return the summary."""
    out_dir = Path(cfg.paths.output_dir)
    ckpt = load_checkpoint(cfg.ckpt_path)
    run = checkpoint_config(ckpt)
    model = build_model(ckpt, run, cfg.ckpt_path)
    data = run.data
    path = Path(cfg.record)
    base = path.with_suffix("") if path.suffix in {".hea", ".dat"} else path
    annotated = cfg.annotation is not None and Path(f"{base}.{cfg.annotation}").is_file()
    if cfg.annotation is not None and not annotated:
        log.info("%s.%s not found: detecting beats with XQRS", base, cfg.annotation)
    band = tuple(data.band) if data.get("band") else None
    record = read_record(base, lead=data.lead, annotation=cfg.annotation if annotated else None, fs=data.fs, band=band)
    half_width = int(round(data.window_s * data.fs))
    if len(record.signal) < 2 * half_width:
        raise RecordError(f"{base}: {len(record.signal) / record.fs:.1f} s long, shorter than one "
                          f"{2 * data.window_s:g} s window; the model needs longer recordings")
    beats = find_beats(record, data, annotated)

    labels = beats.reference if beats.reference is not None else np.zeros(len(beats.sample), dtype=np.int8)
    with_beats = Record(record.name, record.signal, record.lead, record.fs, beats.sample, beats.symbol)
    records = RecordSet.from_records([with_beats])
    index = index_beats(records, labels, half_width)
    dataset = BeatWindowDataset(records, index, half_width, data.get("rr_features", False))
    loader = DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=passthrough_collate)
    probs, _ = report.predict_proba(model, loader, f"Classifying {record.name}")
    threshold = cfg.threshold if cfg.threshold is not None else model.hparams.threshold
    predicted = probs >= threshold

    source_fs = record.source_fs
    rows = [
        {"sample": int(s), "time_s": round(s / record.fs, 4), "prob_abnormal": round(float(p), 5),
         "predicted": "abnormal" if a else "normal",
         "reference": "" if beats.reference is None else ("abnormal" if r else "normal"), "symbol": sym}
        for s, p, a, r, sym in zip(np.round(index.sample * source_fs / record.fs).astype(int), probs, predicted,
                                   index.label, index.symbol)
    ]
    summary: dict[str, Any] = {
        "record": str(base), "checkpoint": str(cfg.ckpt_path), "lead": record.lead, "fs": source_fs,
        "beat_source": beats.source, "beats": int(len(probs)), "abnormal": int(predicted.sum()),
        "abnormal_fraction": float(predicted.mean()) if len(probs) else 0.0,
        "skipped_near_edges": int(len(beats.sample) - len(probs)), "threshold": threshold,
    }
    if beats.reference is not None and len(probs):
        summary["reference"] = report.binary_report(probs, index.label.astype(np.int64), threshold)
    figure = strip_figure(record, index.sample, predicted, index.label if beats.reference is not None else None,
                          cfg.start_s, cfg.length_s)

    report.write_atomic(out_dir / "beats.csv", report.rows_to_csv(rows, BEAT_COLUMNS))
    report.write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    report.save_figure(figure, out_dir / "strip.png")
    report.plt.close(figure)
    log.info("%s: %d beats (%s), %d abnormal (%.1f%%); written to %s", base, summary["beats"], beats.source,
             summary["abnormal"], 100 * summary["abnormal_fraction"], out_dir)
    return summary


def strip_figure(record: Record, sample: np.ndarray, predicted: np.ndarray, reference: np.ndarray | None,
                 start_s: float, length_s: float) -> "report.plt.Figure":
    """The ECG from ``start_s`` for ``length_s`` seconds, each beat marked by its predicted class."""
    fs = record.fs
    lo = int(max(0.0, start_s) * fs)
    hi = min(len(record.signal), lo + int(length_s * fs))
    if hi <= lo:
        raise RecordError(f"{record.name}: start_s={start_s} is past the end of the record "
                          f"({len(record.signal) / fs:.1f} s)")
    t = np.arange(lo, hi) / fs
    fig, ax = report.plt.subplots(figsize=(max(8.0, length_s * 0.6), 3.2))
    ax.plot(t, record.signal[lo:hi], color="0.25", lw=0.8)
    shown = (sample >= lo) & (sample < hi)
    top = float(record.signal[lo:hi].max()) + 0.3
    for is_abnormal, color, label in ((False, "tab:green", "normal"), (True, "tab:red", "abnormal")):
        pick = shown & (predicted == is_abnormal)
        ax.scatter(sample[pick] / fs, np.full(pick.sum(), top), color=color, marker="v", s=40, label=f"predicted {label}")
    if reference is not None:
        wrong = shown & (predicted != reference.astype(bool))
        ax.scatter(sample[wrong] / fs, np.full(wrong.sum(), top + 0.4), facecolors="none", edgecolors="black",
                   marker="o", s=60, label="disagrees with annotation")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{record.lead} (standardized)")
    ax.set_ylim(top=top + 0.8)
    ax.set_title(f"{record.name}: {int((shown & predicted).sum())} of {int(shown.sum())} beats abnormal in view")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, ncol=3, frameon=False)
    ax.set_xlim(t[0], t[-1])
    fig.tight_layout()
    return fig


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    exit_on_input_error(lambda: predict_record(cfg))


if __name__ == "__main__":
    main()
