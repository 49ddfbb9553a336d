"""Evaluate a checkpoint: ``python -m ecg_lightning.evaluate ckpt_path=<ckpt>`` writes metrics.json,
predictions.npz (every beat's probabilities), per_record.csv, per_symbol.csv (per beat type), confusion-matrix
and ROC PNGs into the run folder, and logs them to TensorBoard."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, ListConfig

from ecg_lightning import report
from ecg_lightning.checkpoint import (
    CheckpointError,
    build_model,
    checkpoint_config,
    input_setting,
    load_checkpoint,
    used_settings,
)
from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.errors import (
    ConfigError,
    check_command_line,
    check_threshold,
    exit_on_input_error,
    instantiate_checked,
)
from ecg_lightning.models.record_norm import batch_norms, s_calls, with_classes_from

log = logging.getLogger(__name__)

MACHINE_KEYS = ("root", "download")  # where a database is on this machine (and whether to fetch it), not the run's
INPUT_KEYS = (
    "lead", "fs", "band", "standardize", "window_s", "templates", "reference_beats", "rr_features", "labels",
    "label_sets",
)  # fmt: skip


def data_overrides(cfg: DictConfig) -> list[str]:
    """The user's data.* command-line overrides (applied on top of the checkpoint's data config)."""
    try:
        task = HydraConfig.get().overrides.task
    except ValueError:  # called outside a Hydra run
        task = []
    return [o.lstrip("+") for o in task if o.lstrip("+~").startswith("data.")]  # "~data.x": a deletion


def use_local_data(run: DictConfig, local: DictConfig) -> None:
    """Point a checkpoint's data config at this machine's databases and cache (``local``: the composed config).

    Checkpoints of the earlier one-folder data config (``data.root``: MIT-BIH) take MIT-BIH's folder.
    """
    run.cache_dir = local.cache_dir
    if "catalog" not in run:
        for key in MACHINE_KEYS:
            run[key] = local.catalog.mitdb[key]
        return
    for name, spec in run.catalog.items():
        if name in local.catalog:
            for key in MACHINE_KEYS:
                spec[key] = local.catalog[name][key]


def leave_out_train_only(run: DictConfig) -> None:
    """Scoring the validation or test side needs none of a run's train-only databases (``data.train_only_databases``:
    their records are never validated or tested, and the other records split alike without them), so they are not
    read: a model trained with INCART and SVDB beside DS1 is scored on DS2 with MIT-BIH alone."""
    only = [str(name) for name in run.get("train_only_databases") or ()]
    if only:
        run.databases = [name for name in run.databases if str(name) not in only]
        run.train_only_databases = []


# data settings that do not change which records a run trained on
NOT_SPLIT_KEYS = (
    "seed",
    "batch_size",
    "num_workers",
    "augment",
    "cut_on_device",
    "cache_dir",
    "cache_dtype",
    "run_stride",
)


def trained_records(run: DictConfig) -> list[str]:
    """The records a run trained on, from its data config (the split is rebuilt: a cached store makes it quick)."""
    datamodule = instantiate_checked(run.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup()
    return list(datamodule.train_records)


def check_unseen(paths: list[str], runs: list[DictConfig], side: str, scored: list[str]) -> None:
    """Refuse to score, on the validation or test side, a record that any model of an ensemble trained on: the
    first checkpoint's split keeps its own training records out, but another's split may differ."""
    if side not in ("val", "test"):
        return
    split_of = lambda run: {k: v for k, v in run.data.items() if k not in NOT_SPLIT_KEYS}  # noqa: E731
    for path, run in zip(paths[1:], runs[1:]):
        if split_of(run) == split_of(runs[0]):
            continue
        seen = sorted(set(trained_records(run)) & set(scored))
        if seen:
            raise CheckpointError(
                f"{path} trained on {len(seen)} of the records scored here ({', '.join(seen[:10])}): an ensemble "
                f"scored on side={side} must not have seen them; use checkpoints of the same split "
                f"(data.split, data.fold, data.split_seed as {paths[0]})"
            )


def checkpoint_paths(cfg: DictConfig) -> list[str]:
    return [str(p) for p in cfg.ckpt_path] if isinstance(cfg.ckpt_path, ListConfig) else [str(cfg.ckpt_path)]


def load_models(cfg: DictConfig) -> tuple[list[DictConfig], list[BeatClassifier]]:
    """Every checkpoint's run config (with the user's data overrides) and model; the first's data is scored.

    Several checkpoints (an ensemble) must have been trained on the same inputs (lead, window, band, ...).
    """
    paths = checkpoint_paths(cfg)
    runs, models = [], []
    for path in paths:
        ckpt = load_checkpoint(path)
        run = checkpoint_config(ckpt, data_overrides(cfg))
        use_local_data(run.data, cfg.data)
        if cfg.get("side") in ("val", "test"):
            leave_out_train_only(run.data)
        if cfg.get("model") is not None:
            run.model = cfg.model
        models.append(build_model(ckpt, run, path))
        runs.append(run)
    for path, run in zip(paths[1:], runs[1:]):
        differ = [k for k in INPUT_KEYS if input_setting(run.data, k) != input_setting(runs[0].data, k)]
        if differ:
            raise CheckpointError(
                f"{path}: trained with other data.{', data.'.join(differ)} than {paths[0]}; "
                "an ensemble needs checkpoints trained on the same inputs"
            )
    return runs, models


class RecordNorm(NamedTuple):
    """How ``evaluate`` scores with each record's own batch-norm statistics (``conf/evaluate.yaml``)."""

    by_record: bool = False  # record_norm: each record scored with its networks' statistics from its own beats
    columns: tuple[int, ...] = ()  # record_norm_classes as column indices (empty: every class)
    keep_s: tuple[float, ...] | None = None  # record_norm_keep_s: the offsets at which the trained pass's S calls stay


def record_norm_setting(cfg: DictConfig, models: list[BeatClassifier]) -> RecordNorm:
    """``record_norm`` (each record scored with its networks' batch-norm statistics from its own beats), the class
    columns ``record_norm_classes`` takes from it (empty: every class) and ``record_norm_keep_s`` (the beats the
    training statistics' pass calls S at that S offset keep its probabilities), checked against the models."""
    by_record = bool(cfg.get("record_norm", False))
    names = list(cfg.get("record_norm_classes") or [])
    keep_s = cfg.get("record_norm_keep_s")
    where = ", ".join(checkpoint_paths(cfg))
    for key, value in (("record_norm_classes", names), ("record_norm_keep_s", keep_s)):
        if value not in (None, []) and not by_record:
            raise ConfigError(f"{key}={value} reads the record_norm pass: set record_norm=true")
    if by_record and not all(batch_norms(model) for model in models):
        raise ConfigError(
            f"record_norm=true takes each record's batch-norm statistics from its beats, and {where} holds a network "
            "without batch-norm layers: leave record_norm=false"
        )
    classes = list(models[0].hparams.classes)
    unknown = [n for n in names if n not in classes]
    if unknown or (names and len(classes) == 2):
        raise ConfigError(
            f"record_norm_classes={names}: give some of the classes {classes} of a model with more than two ({where})"
        )
    if keep_s is not None and not ("S" in classes and all(m.relative_s for m in models)):
        raise ConfigError(
            f"record_norm_keep_s={keep_s} keeps the beats a record-relative S decision calls S: {where} needs the "
            "AAMI classes and model.relative_s (or leave record_norm_keep_s=null)"
        )
    if isinstance(keep_s, (int, float)):  # the S offset alone
        keep_s = [float(keep_s) if c == "S" else 0.0 for c in classes]
    if keep_s is not None and len(keep_s) != len(classes):
        raise ConfigError(
            f"record_norm_keep_s={list(keep_s)}: give the S offset, or one offset per class {classes} ({where})"
        )
    columns = tuple(classes.index(n) for n in names)
    return RecordNorm(by_record, columns, None if keep_s is None else tuple(float(b) for b in keep_s))


def mean_probabilities(
    models: list[BeatClassifier],
    loader: Any,
    desc: str,
    record_norm: bool = False,
    norm_columns: Sequence[int] = (),
    keep: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The models' probabilities averaged (an ensemble), and the labels, in loader order; with ``record_norm`` each
    record's own batch-norm statistics, for the classes ``norm_columns`` only when given (``with_classes_from``),
    and where ``keep`` (of the probabilities as trained) flags a beat, that beat as trained."""
    predictions = [report.predict_proba(model, loader, desc, record_norm=record_norm) for model in models]
    probs, labels = np.mean([p for p, _ in predictions], axis=0), predictions[0][1]
    if record_norm and (norm_columns or keep is not None):  # some classes' or beats' odds as trained
        trained = mean_probabilities(models, loader, f"{desc} (as trained)")[0]
        probs = with_classes_from(trained, probs, norm_columns, None if keep is None else keep(trained))
    return probs, labels


PREDICTIONS = "predictions.npz"


def write_predictions(
    path: Path,
    data: Any,
    names: tuple[str, ...],
    probs: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    before_decision: np.ndarray,
) -> None:
    """Every scored beat: its record, sample (at the model's rate), reference class index and probabilities, for
    analyses beyond the report (and the check that ``predict`` gives a record's beats the same probabilities); and
    the probabilities before the whole-record decision (``probs_before_decision``: the record-relative S moves
    ``probs`` per record), which pooled cross-validation reads, as training writes them, so that several networks are
    averaged before that decision is taken once, as in ``combine --mean``'s model (docs/inter_patient.md, the
    seventy-eighth round: averaging decided probabilities lost 207's SVT beats)."""
    report.save_npz(
        path,
        record=np.asarray(names)[data.beats.record],
        sample=data.beats.sample,
        label=labels,
        probs=probs,
        probs_before_decision=before_decision,
        classes=np.asarray(classes),
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Rebuild the checkpoint's data and model(s), predict one side of the split, write and return the report.

    With several checkpoints the models' probabilities are averaged (an ensemble, e.g. of seeds).
    """
    out_dir = Path(cfg.paths.output_dir)
    runs, models = load_models(cfg)
    run = runs[0]
    if cfg.get("class_bias") is not None:  # a decision rule chosen on cross-validation (ecg_lightning.calibrate)
        for model in models:
            model.class_bias = torch.tensor([float(b) for b in cfg.class_bias])
    decisions = {
        (m.relative_s, m.relative_s_quantile, None if m.class_bias is None else tuple(m.class_bias.tolist()))
        for m in models
    }
    if len(decisions) > 1 and any(m.relative_s for m in models):  # the record-relative step is taken once, for all
        raise CheckpointError(
            f"{', '.join(checkpoint_paths(cfg))}: an ensemble with a record-relative S decision (model.relative_s) "
            "needs every checkpoint to decide alike (the same model.class_bias and relative_s_quantile); average them "
            "with combine --mean --relative-s"
        )
    datamodule = instantiate_checked(run.data, _convert_="all")
    datamodule.prepare_data()
    datamodule.setup()
    data = datamodule.eval_dataset(cfg.side)
    scored = [datamodule.records.names[i] for i in np.unique(data.beats.record)]
    check_unseen(checkpoint_paths(cfg), runs, cfg.side, scored)  # before the work of predicting
    threshold = check_threshold(cfg.threshold) if cfg.threshold is not None else models[0].hparams.threshold
    loader = datamodule.loader(data, cfg.batch_size)
    norm = record_norm_setting(cfg, models)
    names = datamodule.records.names
    beat_records = np.asarray(names)[data.beats.record]
    keep = None
    if norm.keep_s is not None:  # the S calls of the pass with training's statistics
        classes, quantile = models[0].hparams.classes, models[0].relative_s_quantile
        keep = partial(s_calls, records=beat_records, classes=classes, offsets=norm.keep_s, quantile=quantile)
    probs, labels = mean_probabilities(models, loader, f"Evaluating {cfg.side}", norm.by_record, norm.columns, keep)
    before_decision, probs = probs, models[0].decide_per_record(probs, beat_records)  # e.g. the record-relative S

    classes = datamodule.class_names
    metrics = report.metrics_report(probs, labels, classes, threshold)
    databases = datamodule.records.databases
    rows = report.per_record(data.beats.record, names, probs, labels, classes, threshold, databases)
    records = sorted({r["record"] for r in rows})
    paths = [str(p) for p in cfg.ckpt_path] if isinstance(cfg.ckpt_path, ListConfig) else str(cfg.ckpt_path)
    result = {
        "checkpoint": paths,
        "side": cfg.side,
        "record_norm": norm.by_record,
        "record_norm_classes": list(cfg.get("record_norm_classes") or []),
        "record_norm_keep_s": None if norm.keep_s is None else list(norm.keep_s),
        "records": records,
        **metrics,
    }
    report.write_atomic(out_dir / "metrics.json", json.dumps(result, indent=2))
    write_predictions(out_dir / PREDICTIONS, data, names, probs, labels, classes, before_decision)
    report.write_atomic(
        out_dir / "per_record.csv", report.rows_to_csv(rows, report.per_record_columns(classes, bool(databases)))
    )
    symbols = report.per_symbol(data.beats.symbol, probs, labels, classes, threshold)
    report.write_atomic(out_dir / "per_symbol.csv", report.rows_to_csv(symbols, report.per_symbol_columns(classes)))
    logger = TensorBoardLogger(save_dir=str(out_dir), name="", version="", default_hp_metric=False)
    # what was scored, with what: hparams.yaml (and TensorBoard's HPARAMS tab) beside the scores
    logger.log_hyperparams(
        {
            "checkpoint": paths,
            "side": cfg.side,
            "class_bias": cfg.get("class_bias"),
            "record_norm": norm.by_record,
            "record_norm_classes": list(cfg.get("record_norm_classes") or []),
            "record_norm_keep_s": None if norm.keep_s is None else list(norm.keep_s),
            **used_settings(run, ("data",)),
        },
        {f"hparams/{k}": v for k, v in metrics.items() if isinstance(v, float)},
    )
    logger.log_metrics({f"{cfg.side}/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=0)
    for name, fig in report.figures(probs, labels, classes, threshold).items():
        report.save_figure(fig, out_dir / f"{name}.png")
        logger.experiment.add_figure(f"{cfg.side}/{name}", fig, close=True)
    logger.finalize("success")
    log.info(
        "%s side, %d records, %d beats: %s",
        cfg.side,
        len(records),
        len(labels),
        {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float) and k != "threshold"},
    )
    log.info("Report written to %s", out_dir)
    return result


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def run(cfg: DictConfig) -> None:
    exit_on_input_error(lambda: evaluate(cfg))


def main() -> None:
    """The console command: checks what Hydra would fail on with a traceback, then runs."""
    check_command_line(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
