"""Classify every beat of any WFDB record with a trained checkpoint.

``python -m ecg_lightning.predict ckpt_path=<ckpt> record=<path/to/record>`` writes ``beats.csv`` (one row
per beat: its predicted class and each class's probability), ``summary.json`` and ``strip.png`` (the ECG
with each beat marked by its predicted class) into the run folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from ecg_lightning import report
from ecg_lightning.checkpoint import build_model, checkpoint_config, load_checkpoint
from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.data.labels import DROPPED, label_beats
from ecg_lightning.data.records import Record, RecordError, RecordSet, lead_key, read_record
from ecg_lightning.data.rr import RR_FEATURES, rr_feature_names
from ecg_lightning.data.windows import (
    BeatWindowDataset,
    beat_templates,
    index_beats,
    passthrough_collate,
)
from ecg_lightning.detect import detect_beats
from ecg_lightning.errors import exit_on_input_error

log = logging.getLogger(__name__)

# beats.csv: then prob_<class> per class; padded: the beat's window ran past the record's edge and was zero-padded
BEAT_COLUMNS = ("sample", "time_s", "predicted", "reference", "symbol", "padded")
# strip colours, by class index (normal first)
CLASS_COLORS = ("tab:green", "tab:red", "tab:orange", "tab:purple", "tab:blue", "tab:brown", "tab:pink")


@dataclass(frozen=True)
class Beats:
    """Beat positions (samples at the model's rate), with reference labels when annotated."""

    sample: np.ndarray
    reference: np.ndarray | None
    symbol: np.ndarray
    source: str


def as_list(lead: Any) -> list:
    lead = OmegaConf.to_object(lead) if OmegaConf.is_config(lead) else lead
    return list(lead) if isinstance(lead, (list, tuple)) else [lead]


def lead_mismatch(trained: list, read: tuple[str, ...]) -> list[str]:
    """"trained->read" for every lead read under another name than the model was trained on (by name, through
    records.LEAD_EQUIVALENTS; a lead trained by channel index has no name to compare and is never flagged)."""
    return [f"{want}->{got}" for want, got in zip(trained, read) if isinstance(want, str) and lead_key(want) != lead_key(got)]


def find_beats(record: Record, classes: dict[str, list[str]], annotated: bool) -> Beats:
    """Beats from the record's annotations, or from our QRS detector (detect.py) when it has none."""
    if annotated:
        labels = label_beats(record.ann_symbol, classes)
        is_beat = labels != DROPPED
        if not is_beat.any():
            raise RecordError(f"{record.name}: its annotation file has no beat annotations; "
                              "run with annotation=null to detect the beats instead")
        return Beats(record.ann_sample[is_beat], labels[is_beat], record.ann_symbol[is_beat], "annotation")
    found = detect_beats(record.signal[0], record.fs)  # the first lead (MLII by default): see benchmarks/qrs_detection.py
    if len(found) == 0:
        raise RecordError(f"{record.name}: the QRS detector found no beats; check the lead (data.lead) and the signal")
    return Beats(found, None, np.full(len(found), "", dtype="<U2"), "detector")


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
        log.info("%s.%s not found: detecting the beats", base, cfg.annotation)
    band = tuple(data.band) if data.get("band") else None
    trained = as_list(data.lead)
    requested = trained if cfg.get("lead") is None else as_list(cfg.lead)
    if len(requested) != len(trained):
        raise RecordError(f"lead={requested}: the model takes {len(trained)} lead(s) ({trained}); give as many")
    record = read_record(base, lead=requested, annotation=cfg.annotation if annotated else None, fs=data.fs, band=band)
    other_leads = lead_mismatch(trained, record.leads)
    if other_leads:
        message = (f"{base}: the model was trained on {trained} but reads {list(record.leads)} here "
                   f"({', '.join(other_leads)}); on a lead it never saw its output is meaningless")
        if not cfg.allow_other_lead:
            raise RecordError(f"{message}. Choose the lead with lead=<name>, or pass allow_other_lead=true to "
                              "classify anyway")
        log.warning("%s (allow_other_lead=true)", message.upper())
    half_width = int(round(data.window_s * data.fs))
    if record.signal.shape[1] < 2 * half_width:
        raise RecordError(f"{base}: {record.signal.shape[1] / record.fs:.1f} s long, shorter than one "
                          f"{2 * data.window_s:g} s window; the model needs longer recordings")
    classes = dict(data.label_sets[data.labels])
    names = list(classes)
    beats = find_beats(record, classes, annotated)

    labels = beats.reference if beats.reference is not None else np.zeros(len(beats.sample), dtype=np.int8)
    with_beats = Record(record.name, record.signal, record.leads, record.fs, beats.sample, beats.symbol)
    records = RecordSet.from_records([with_beats])
    index = index_beats(records, labels, half_width, pad_edges=True)  # every beat gets a row
    rr_columns = [RR_FEATURES.index(n) for n in rr_feature_names(data.get("rr_features", False))]
    templates = beat_templates(records, index, half_width) if data.get("templates", False) else None
    dataset = BeatWindowDataset(records, index, half_width, rr_columns, templates=templates)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, collate_fn=passthrough_collate)
    probs, _ = report.predict_proba(model, loader, f"Classifying {record.name}")
    threshold = cfg.threshold if cfg.threshold is not None else model.hparams.threshold
    predicted = report.predicted_class(probs, threshold)
    class_probs = report.class_probabilities(probs)

    source_fs = record.source_fs
    prob_columns = {f"prob_{c}": np.round(class_probs[:, k], 5) for k, c in enumerate(names)}
    columns = {
        "sample": np.round(index.sample * source_fs / record.fs).astype(int),  # in the file's own rate
        "time_s": np.round(index.sample / record.fs, 4),
        "predicted": np.asarray(names)[predicted],
        "reference": np.asarray(names)[index.label] if beats.reference is not None else np.full(len(probs), ""),
        "symbol": index.symbol,
        "padded": dataset.padded.astype(int),
        **prob_columns,
    }
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    counts = np.bincount(predicted, minlength=len(names))
    summary: dict[str, Any] = {
        "record": str(base), "checkpoint": str(cfg.ckpt_path), "leads": list(record.leads), "fs": source_fs,
        "trained_leads": trained, "other_lead_than_trained": other_leads,
        "beat_source": beats.source, "beats": int(len(probs)), "classes": names,
        "predicted": {c: int(n) for c, n in zip(names, counts)},
        "abnormal": int((predicted != 0).sum()),
        "abnormal_fraction": float((predicted != 0).mean()) if len(probs) else 0.0,
        "padded_near_edges": int(dataset.padded.sum()), "threshold": threshold,
    }
    if beats.reference is not None and len(probs):
        summary["reference"] = report.metrics_report(probs, index.label.astype(np.int64), names, threshold)
    figure = strip_figure(record, index.sample, predicted, index.label if beats.reference is not None else None,
                          names, cfg.start_s, cfg.length_s)

    report.save_figure(figure, out_dir / "strip.png")
    report.plt.close(figure)
    report.write_atomic(out_dir / "beats.csv", report.rows_to_csv(rows, (*BEAT_COLUMNS, *prob_columns)))
    report.write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))
    log.info("%s: %d beats (%s), %d abnormal (%.1f%%): %s; written to %s", base, summary["beats"], beats.source,
             summary["abnormal"], 100 * summary["abnormal_fraction"], summary["predicted"], out_dir)
    return summary


def strip_figure(record: Record, sample: np.ndarray, predicted: np.ndarray, reference: np.ndarray | None,
                 classes: list[str], start_s: float, length_s: float) -> "report.plt.Figure":
    """The first lead from ``start_s`` for ``length_s`` seconds, each beat marked in the colour of its predicted class."""
    fs = record.fs
    lo = int(max(0.0, start_s) * fs)
    hi = min(record.signal.shape[1], lo + int(length_s * fs))
    if hi <= lo:
        raise RecordError(f"{record.name}: start_s={start_s} is past the end of the record "
                          f"({record.signal.shape[1] / fs:.1f} s)")
    t = np.arange(lo, hi) / fs
    lead = record.signal[0, lo:hi]
    fig, ax = report.plt.subplots(figsize=(max(8.0, min(length_s, 60.0) * 0.6), 3.2))
    ax.plot(t, lead, color="0.25", lw=0.8)
    shown = (sample >= lo) & (sample < hi)
    top = float(lead.max()) + 0.3
    for k, name in enumerate(classes):
        pick = shown & (predicted == k)
        ax.scatter(sample[pick] / fs, np.full(pick.sum(), top), color=CLASS_COLORS[k % len(CLASS_COLORS)], marker="v",
                   s=40, label=f"predicted {name}")
    if reference is not None:
        wrong = shown & (predicted != reference)
        ax.scatter(sample[wrong] / fs, np.full(wrong.sum(), top + 0.4), facecolors="none", edgecolors="black",
                   marker="o", s=60, label="disagrees with annotation")
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{record.leads[0]} (standardized)")
    ax.set_ylim(top=top + 0.8)
    ax.set_title(f"{record.name}: {int((shown & (predicted != 0)).sum())} of {int(shown.sum())} beats "
                 f"not {classes[0]} in view")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, ncol=min(len(classes) + 1, 6), frameon=False)
    ax.set_xlim(t[0], t[-1])
    fig.tight_layout()
    return fig


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    exit_on_input_error(lambda: predict_record(cfg))


if __name__ == "__main__":
    main()
