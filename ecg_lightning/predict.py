"""Classify every beat of any WFDB record with a trained checkpoint.

``python -m ecg_lightning.predict ckpt_path=<ckpt> record=<path/to/record>`` writes ``beats.csv`` (one row
per beat: its predicted class and each class's probability), ``summary.json`` and ``strip.png`` (the ECG
with each beat marked by its predicted class) into the run folder; ``record=<folder>`` or a glob does so
for every record, one folder each, plus ``records.csv``.
"""

from __future__ import annotations

import glob
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from omegaconf import DictConfig, open_dict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ecg_lightning import html_report, report
from ecg_lightning.checkpoint import (
    LEADS_KEY,
    build_model,
    checkpoint_config,
    input_setting,
    load_checkpoint,
)
from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.data.databases import configured_lead
from ecg_lightning.data.labels import DROPPED, label_beats
from ecg_lightning.data.records import (
    SAMPLE_FILES,
    Record,
    RecordError,
    RecordSet,
    lead_key,
    lead_list,
    read_any,
)
from ecg_lightning.data.rr import rr_columns
from ecg_lightning.data.windows import (
    BeatIndex,
    BeatWindowDataset,
    beat_templates,
    index_beats,
    passthrough_collate,
)
from ecg_lightning.detect import detect_beats_in_chunks
from ecg_lightning.errors import ConfigError, check_command_line, check_threshold, exit_on_input_error
from ecg_lightning.signal_quality import Quality, signal_quality

log = logging.getLogger(__name__)

# beats.csv: then prob_<class> per class; padded: the beat's window ran past the record's edge and was zero-padded
BEAT_COLUMNS = ("sample", "time_s", "predicted", "reference", "symbol", "padded", "source", "noisy")


@dataclass(frozen=True)
class Beats:
    """Beat positions (samples at the model's rate), with reference labels when annotated; ``annotated`` says which
    beats come from the annotations (the others from the detector, where annotations do not reach)."""

    sample: np.ndarray
    reference: np.ndarray | None
    symbol: np.ndarray
    source: str
    annotated: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.annotated is None:
            object.__setattr__(self, "annotated", np.full(len(self.sample), self.reference is not None))


def lead_mismatch(trained: list, read: tuple[str, ...], seen: list[list[str]] | None = None) -> list[str]:
    """ "trained->read" for every lead read under a name the model never saw there in training: the names its
    training records gave (``seen``, kept in the checkpoint), else the configured name; compared through
    records.LEAD_EQUIVALENTS. A lead trained by channel index with nothing recorded is never flagged."""
    flagged = []
    for i, (want, got) in enumerate(zip(trained, read)):
        known = seen[i] if seen else ([want] if isinstance(want, str) else [])
        if known and lead_key(got) not in {lead_key(k) for k in known}:
            flagged.append(f"{want}->{got}")
    return flagged


def find_beats(record: Record, classes: dict[str, list[str]], annotated: bool) -> Beats:
    """Beats from the record's annotations, or from our QRS detector (detect.py) when it has none."""
    if annotated:
        labels = label_beats(record.ann_symbol, classes)
        is_beat = labels != DROPPED
        if not is_beat.any():
            raise RecordError(
                f"{record.name}: its annotation file has no beat annotations; "
                "run with annotation=null to detect the beats instead"
            )
        beats = Beats(record.ann_sample[is_beat], labels[is_beat], record.ann_symbol[is_beat], "annotation")
        return beats if record.ann_until is None else beats_past_annotations(record, beats)
    # the first lead (MLII by default): see benchmarks/qrs_detection.py; in chunks, so a Holter fits in memory
    found = detect_beats_in_chunks(record.signal[0], record.fs)
    if len(found) == 0:
        raise RecordError(f"{record.name}: the QRS detector found no beats; check the lead (data.lead) and the signal")
    return Beats(found, None, np.full(len(found), "", dtype="<U2"), "detector")


def beats_past_annotations(record: Record, beats: Beats) -> Beats:
    """Where the annotations stop short of the record's end (``Record.ann_until``), the detector finds the rest of
    the beats, so the whole record is classified; ``Beats.annotated`` says which beats came from where."""
    start = record.ann_until + int(0.3 * record.fs)  # past the last annotated beat's QRS
    found = (
        start + detect_beats_in_chunks(record.signal[0, start:], record.fs) if start < record.signal.shape[1] else []
    )
    found = np.asarray(found, dtype=np.int64)
    log.warning(
        "%s: beats up to %.1f s from the annotations, %d beats after that found by the QRS detector (no reference)",
        record.name,
        record.ann_until / record.fs,
        len(found),
    )
    return Beats(
        np.concatenate([beats.sample, found]),
        np.concatenate([beats.reference, np.zeros(len(found), beats.reference.dtype)]),
        np.concatenate([beats.symbol, np.full(len(found), "", dtype=beats.symbol.dtype)]),
        "annotation+detector",
        np.r_[np.ones(len(beats.sample), bool), np.zeros(len(found), bool)],
    )


@dataclass
class Prediction:
    """One record's beats (samples at the model's rate) with their predicted classes and probabilities."""

    record: Record
    beats: Beats
    index: BeatIndex
    padded: np.ndarray
    probs: np.ndarray
    predicted: np.ndarray
    classes: list[str]
    threshold: float
    trained_leads: list
    leads_seen: list[list[str]] | None
    other_leads: list[str]
    quality: Quality
    seconds: dict[str, float] = field(default_factory=dict)


class Laps:
    """Seconds each stage of classifying a record took (``summary.json``'s "seconds"): ``lap("read")`` ends one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.clock = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self.clock, 3)
        self.clock = now


def data_band(data: DictConfig) -> tuple[float, float] | None:
    """The band-pass (Hz) a run's data config applies, or None."""
    return tuple(data.band) if data.get("band") else None


def classify_record(
    model: BeatClassifier,
    data: DictConfig,
    base: Path,
    annotation: str | None,
    lead: Any = None,
    allow_other_lead: bool = False,
    threshold: float | None = None,
    batch_size: int = 512,
    leads_seen: list[list[str]] | None = None,
    file_fs: float | None = None,
) -> Prediction:
    """Read ``base`` (WFDB, EDF/BDF or a CSV of samples at ``file_fs`` Hz), find its beats (annotations, or the
    detector when ``annotation`` is None or absent) and classify every one of them with ``model`` (whose run's data
    config is ``data``)."""
    lap = Laps()
    wfdb_record = Path(base).suffix.lower() not in SAMPLE_FILES
    annotated = wfdb_record and annotation is not None and Path(f"{base}.{annotation}").is_file()
    if annotation is not None and wfdb_record and not annotated:
        log.info("%s.%s not found: detecting the beats", base, annotation)
    band = data_band(data)
    trained = lead_list(configured_lead(data))
    requested = trained if lead is None else lead_list(lead)
    if len(requested) != len(trained):
        raise RecordError(f"lead={requested}: the model takes {len(trained)} lead(s) ({trained}); give as many")
    record = read_any(
        base,
        lead=requested,
        annotation=annotation if annotated else None,
        fs=data.fs,
        band=band,
        file_fs=file_fs,
        standardize=input_setting(data, "standardize"),
    )
    lap("read")
    return classify_loaded(model, data, record, annotated, allow_other_lead, threshold, batch_size, leads_seen, lap)


def classify_loaded(
    model: BeatClassifier,
    data: DictConfig,
    record: Record,
    annotated: bool,
    allow_other_lead: bool = False,
    threshold: float | None = None,
    batch_size: int = 512,
    leads_seen: list[list[str]] | None = None,
    lap: Laps | None = None,
) -> Prediction:
    """Classify every beat of a record already read (standardized, at the model's rate): its annotated beats when
    ``annotated``, else those our detector finds. Shared by files of every format and the NumPy-array API."""
    lap = lap or Laps()
    base = record.name
    trained = lead_list(configured_lead(data))
    other_leads = lead_mismatch(trained, record.leads, leads_seen)
    if other_leads:
        message = (
            f"{base}: the model was trained on {leads_seen or trained} but reads {list(record.leads)} here "
            f"({', '.join(other_leads)}); on a lead it never saw its output is meaningless"
        )
        if not allow_other_lead:
            raise RecordError(
                f"{message}. Choose the lead with lead=<name>, or pass allow_other_lead=true to classify anyway"
            )
        log.warning("%s (allow_other_lead=true)", message.upper())
    half_width = int(round(data.window_s * data.fs))
    if record.signal.shape[1] < 2 * half_width:
        raise RecordError(
            f"{base}: {record.signal.shape[1] / record.fs:.1f} s long, shorter than one "
            f"{2 * data.window_s:g} s window; the model needs longer recordings"
        )
    classes = dict(data.label_sets[data.labels])
    beats = find_beats(record, classes, annotated)
    lap("beats")

    labels = beats.reference if beats.reference is not None else np.zeros(len(beats.sample), dtype=np.int8)
    records = RecordSet.from_records(
        [Record(record.name, record.signal, record.leads, record.fs, beats.sample, beats.symbol)]
    )
    reference = data.get("reference_beats", "all")
    columns = rr_columns(data.get("rr_features", False))
    index = index_beats(records, labels, half_width, True, columns, reference)  # every beat gets a row
    templates = beat_templates(records, index, half_width, reference=reference) if data.get("templates") else None
    runs = int(data.get("run_beats", 1))  # a beat-sequence model classifies runs of beats, tiling every beat once
    dataset = BeatWindowDataset(records, index, half_width, columns, templates=templates, run_beats=runs)
    loader = DataLoader(dataset, batch_size=max(1, batch_size // runs), collate_fn=passthrough_collate)
    threshold = check_threshold(threshold if threshold is not None else model.hparams.threshold)
    probs, _ = report.predict_proba(model, loader, f"Classifying {record.name}")
    probs = model.decide_per_record(probs, np.full(len(probs), record.name))  # a decision over the whole record
    lap("classify")
    quality = signal_quality(records.signal[0], index.sample, records.fs)  # one record: beats in time order
    if quality.noisy.any():
        log.warning(
            "%s: %.0f%% of the recording looks like noise (its beats do not resemble each other): its %d beats are "
            "marked noisy=1 in beats.csv and counted as noisy, not as a class, in summary.json",
            record.name,
            100 * quality.noisy_share,
            int(quality.noisy.sum()),
        )
    return Prediction(
        record,
        beats,
        index,
        dataset.padded,
        probs,
        report.predicted_class(probs, threshold),
        list(classes),
        threshold,
        trained,
        leads_seen,
        other_leads,
        quality,
        lap.seconds,
    )


def beat_arrays(p: Prediction) -> dict[str, np.ndarray]:
    """One row per beat, column by column: the table of ``beats.csv`` and of the Python API (``api.BeatTable``).

    sample: at the file's own rate; time_s; predicted and reference class names (reference "" where no annotation
    says); symbol; padded (the window ran past the record's edge); source (annotation or detector); noisy (in a
    stretch that looks like noise, ``signal_quality``: its class is the model's call on noise); prob_<class>."""
    names = np.asarray(p.classes)
    class_probs = report.class_probabilities(p.probs)
    return {
        "sample": np.round(p.index.sample * p.record.source_fs / p.record.fs).astype(np.int64),
        "time_s": p.index.sample / p.record.fs,
        "predicted": names[p.predicted],
        "reference": np.where(p.beats.annotated, names[p.index.label], ""),
        "symbol": p.index.symbol,
        "padded": p.padded,
        "source": np.where(p.beats.annotated, "annotation", "detector"),
        "noisy": p.quality.noisy,
        **{f"prob_{c}": class_probs[:, k] for k, c in enumerate(p.classes)},
    }


def beat_columns(p: Prediction) -> dict[str, np.ndarray]:
    """beats.csv, column by column (one row per beat), formatted as text."""
    columns = beat_arrays(p)
    text = {k: v.astype(str) for k, v in columns.items()}
    text["time_s"] = np.char.mod("%.4f", columns["time_s"])
    text["padded"] = columns["padded"].astype(np.int8).astype(str)
    text["noisy"] = columns["noisy"].astype(np.int8).astype(str)
    for c in p.classes:
        text[f"prob_{c}"] = np.char.mod("%.5f", columns[f"prob_{c}"])
    return text


def summarize(p: Prediction, base: Path, ckpt_path: str) -> dict[str, Any]:
    clean = ~p.quality.noisy  # beats in stretches that look like noise are counted as noise, not as a class
    counts = np.bincount(p.predicted[clean], minlength=len(p.classes))
    summary: dict[str, Any] = {
        "record": str(base),
        "checkpoint": str(ckpt_path),
        "leads": list(p.record.leads),
        "fs": p.record.source_fs,
        "trained_leads": p.trained_leads,
        "leads_seen_in_training": p.leads_seen,
        "other_lead_than_trained": p.other_leads,
        "beat_source": p.beats.source,
        "beats": int(len(p.probs)),
        "classes": p.classes,
        "predicted": {c: int(n) for c, n in zip(p.classes, counts)},
        "abnormal": int((p.predicted[clean] != 0).sum()),
        "abnormal_fraction": float((p.predicted[clean] != 0).mean()) if clean.any() else 0.0,
        "padded_near_edges": int(p.padded.sum()),
        # share of the recording's 10-s stretches that look like noise, and the beats in them (signal_quality)
        "noisy_share": round(p.quality.noisy_share, 4),
        "noisy_beats": int(p.quality.noisy.sum()),
        "threshold": p.threshold,
        "seconds": p.seconds,
    }
    if p.record.ann_until is not None:
        summary["annotated_until_s"] = round(p.record.ann_until / p.record.fs, 3)
        summary["detected_beats"] = int((~p.beats.annotated).sum())
    known = p.beats.annotated
    if p.beats.reference is not None and known.any():
        # against the annotations, on the beats they cover
        summary["reference"] = report.metrics_report(
            p.probs[known], p.index.label[known].astype(np.int64), p.classes, p.threshold
        )
    return summary


def write_prediction(p: Prediction, summary: dict[str, Any], out_dir: Path, start_s: float, length_s: float) -> None:
    """strip.png, beats.csv and summary.json of one record (the figure first: a failure there writes nothing)."""
    clock = time.perf_counter()
    figure = strip_figure(
        p.record,
        p.index.sample,
        p.predicted,
        np.where(p.beats.annotated, p.index.label, -1) if p.beats.reference is not None else None,
        p.classes,
        start_s,
        length_s,
    )
    report.save_figure(figure, out_dir / "strip.png")
    report.plt.close(figure)
    report.write_atomic(out_dir / "beats.csv", report.columns_to_csv(beat_columns(p)))
    data = html_report.report_data(
        p.record.signal[0], p.record.fs, p.index.sample / p.record.fs, p.predicted, list(p.classes), p.record.name
    )
    data["noisy_share"] = summary["noisy_share"]
    html_report.write_report(data, out_dir / "report.html")
    summary["seconds"]["write"] = round(time.perf_counter() - clock, 3)
    report.write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2))


def record_paths(spec: str) -> list[Path]:
    """The records ``record=`` names: one record path (no extension), a folder of records, or a glob."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(h.with_suffix("") for h in path.glob("*.hea"))
        found += sorted(f for f in path.iterdir() if f.suffix.lower() in SAMPLE_FILES)
    elif any(ch in spec for ch in "*?["):
        found = sorted({Path(f).with_suffix("") for f in glob.glob(spec) if Path(f).with_suffix(".hea").is_file()})
    else:
        return [path.with_suffix("") if path.suffix in {".hea", ".dat"} else path]
    if not found:
        raise RecordError(
            f"record={spec}: no WFDB records (*.hea), EDF/BDF or CSV files there; give a record, a folder or a glob"
        )
    return found


RECORDS_COLUMNS = (
    "record",
    "beats",
    "abnormal",
    "abnormal_fraction",
    "leads",
    "beat_source",
    "padded_near_edges",
    "noisy_share",
    "error",
)


class RecordsFailed(RecordError):
    """Some records of a folder run could not be classified (the others were; records.csv lists every one)."""


def predict_record(cfg: DictConfig) -> dict[str, Any]:
    """Classify every beat of ``cfg.record`` (a record, a folder of records or a glob); write beats.csv,
    summary.json and strip.png (into one folder per record when there are several, plus records.csv); return
    the summary (of the one record, or {"records": [...]})."""
    out_dir = Path(cfg.paths.output_dir)
    if not (isinstance(cfg.batch_size, int) and cfg.batch_size >= 1):
        raise ConfigError(f"batch_size={cfg.batch_size}: must be a whole number >= 1 (beats per batch)")
    paths = record_paths(str(cfg.record))
    if cfg.ckpt_path is None:  # the model shipped with the package
        from ecg_lightning.pretrained import shipped_checkpoint

        with open_dict(cfg):
            cfg.ckpt_path = str(shipped_checkpoint())
        log.info("Using the shipped model %s (MODEL_CARD.md)", cfg.ckpt_path)
    ckpt = load_checkpoint(cfg.ckpt_path)
    run = checkpoint_config(ckpt)
    model = build_model(ckpt, run, cfg.ckpt_path)
    many = len(paths) > 1 or Path(str(cfg.record)).is_dir()
    summaries, failed = [], []
    for base in tqdm(paths, desc="Records", unit="record", disable=not many):
        try:
            summaries.append(classify_and_write(cfg, model, run, ckpt, base, out_dir / base.name if many else out_dir))
        except RecordError as err:
            if not many:
                raise
            # one bad record of a folder must not stop the rest: it gets its row in records.csv, with the error
            log.error("%s", err)
            failed.append({"record": base.name, "error": " ".join(str(err).split())})
    if not many:
        log.info("Written to %s", out_dir)
        return summaries[0]
    rows = [
        {
            **{k: s[k] for k in RECORDS_COLUMNS if k in s},
            "record": Path(s["record"]).name,
            "leads": "+".join(s["leads"]),
        }
        for s in summaries
    ]
    report.write_atomic(out_dir / "records.csv", report.rows_to_csv(rows + failed, RECORDS_COLUMNS))
    html_report.index_page([{**s, "record": Path(s["record"]).name} for s in summaries], out_dir / "index.html")
    log.info("%d records written to %s (records.csv: one row each)", len(rows), out_dir)
    if failed:
        raise RecordsFailed(
            f"{len(failed)} of {len(paths)} records could not be classified "
            f"({', '.join(f['record'] for f in failed)}); the other {len(rows)} were: see {out_dir / 'records.csv'}"
        )
    return {"records": summaries}


def classify_and_write(
    cfg: DictConfig, model: BeatClassifier, run: DictConfig, ckpt: dict, base: Path, out_dir: Path
) -> dict[str, Any]:
    """Classify one record and write its beats.csv, summary.json and strip.png into ``out_dir``; its summary."""
    p = classify_record(
        model,
        run.data,
        base,
        cfg.annotation,
        cfg.get("lead"),
        cfg.allow_other_lead,
        cfg.threshold,
        cfg.batch_size,
        ckpt.get(LEADS_KEY),
        cfg.get("fs"),
    )
    summary = summarize(p, base, cfg.ckpt_path)
    write_prediction(p, summary, out_dir, cfg.start_s, cfg.length_s)
    log.info(
        "%s: %d beats (%s), %d abnormal (%.1f%%): %s",
        base,
        summary["beats"],
        p.beats.source,
        summary["abnormal"],
        100 * summary["abnormal_fraction"],
        summary["predicted"],
    )
    return summary


def strip_figure(
    record: Record,
    sample: np.ndarray,
    predicted: np.ndarray,
    reference: np.ndarray | None,
    classes: list[str],
    start_s: float,
    length_s: float,
) -> report.plt.Figure:
    """The first lead from ``start_s`` for ``length_s`` seconds, each beat marked in its predicted class's colour."""
    if not length_s > 0:
        raise RecordError(f"length_s={length_s}: the strip's length must be a positive number of seconds")
    fs = record.fs
    lo = int(max(0.0, start_s) * fs)
    hi = min(record.signal.shape[1], lo + int(length_s * fs))
    if hi <= lo:
        raise RecordError(
            f"{record.name}: start_s={start_s} is past the end of the record ({record.signal.shape[1] / fs:.1f} s)"
        )
    t = np.arange(lo, hi) / fs
    lead = record.signal[0, lo:hi]
    fig, ax = report.plt.subplots(figsize=(max(8.0, min(length_s, 60.0) * 0.6), 3.2))
    ax.plot(t, lead, color="0.25", lw=0.8)
    shown = (sample >= lo) & (sample < hi)
    top = float(lead.max()) + 0.3
    for k, name in enumerate(classes):
        pick = shown & (predicted == k)
        ax.scatter(
            sample[pick] / fs,
            np.full(pick.sum(), top),
            color=report.CLASS_COLORS[k % len(report.CLASS_COLORS)],
            marker="v",
            s=40,
            label=f"predicted {name}",
        )
    if reference is not None:
        wrong = shown & (reference >= 0) & (predicted != reference)
        ax.scatter(
            sample[wrong] / fs,
            np.full(wrong.sum(), top + 0.4),
            facecolors="none",
            edgecolors="black",
            marker="o",
            s=60,
            label="disagrees with annotation",
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{record.leads[0]} (standardized)")
    ax.set_ylim(top=top + 0.8)
    ax.set_title(
        f"{record.name}: {int((shown & (predicted != 0)).sum())} of {int(shown.sum())} beats not {classes[0]} in view"
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8, ncol=min(len(classes) + 1, 6), frameon=False)
    ax.set_xlim(t[0], t[-1])
    fig.tight_layout()
    return fig


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def run(cfg: DictConfig) -> None:
    exit_on_input_error(lambda: predict_record(cfg))


def main() -> None:
    """The console command: checks what Hydra would fail on with a traceback, then runs."""
    check_command_line(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
