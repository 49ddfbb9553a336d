"""Export a trained model to run without Lightning or Hydra: ``python -m ecg_lightning.export ckpt_path=<ckpt>
format=onnx|torchscript`` writes ``model.onnx`` (or ``model.pt``) and ``preprocessing.json`` into the run folder.

The exported module maps the network's inputs to class probabilities (P(abnormal) for a binary model):
``x`` (batch, channels, samples) — the leads, each standardized over the whole record (after the band-pass, at
``fs``), a window centred on the beat, zero beyond the record's edges, followed by the record's median-beat
templates when ``templates`` is true — and, when ``rr_features`` lists any, ``rr`` (batch, n) as computed by
``ecg_lightning.data.rr.rr_features``. ``preprocessing.json`` says all of that for the model at hand.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from ecg_lightning import report
from ecg_lightning.checkpoint import (
    LEADS_KEY,
    CheckpointError,
    build_model,
    checkpoint_config,
    input_setting,
    load_checkpoint,
)
from ecg_lightning.classifier import BeatClassifier, probabilities
from ecg_lightning.config import CONFIG_DIR, n_channels, n_rr, window_samples
from ecg_lightning.data.databases import configured_lead
from ecg_lightning.data.rr import rr_feature_names
from ecg_lightning.errors import check_command_line, exit_on_input_error

log = logging.getLogger(__name__)

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}


class Probabilities(nn.Module):
    """The network followed by the classifier's sigmoid (one logit) or softmax: what a deployment needs."""

    def __init__(self, module: BeatClassifier) -> None:
        super().__init__()
        self.net, self.binary = module.net, module.binary
        self.register_buffer("bias", module.class_bias if module.class_bias is not None else None)

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        return probabilities(self.net(x) if rr is None else self.net(x, rr), self.binary, self.bias)


def preprocessing(run: DictConfig, module: BeatClassifier, leads_seen: Any) -> dict[str, Any]:
    """Everything needed to build the exported model's inputs from a recording."""
    data = OmegaConf.to_container(run.data, resolve=True)
    rr = list(rr_feature_names(data.get("rr_features", False)))
    return {
        "inputs": ["x", "rr"] if rr else ["x"],
        "output": "P(abnormal) per beat" if module.binary else "class probabilities (batch[, beats], classes)",
        "run_beats": int(data.get("run_beats", 1)),
        "runs": "inputs are runs of consecutive beats of one record, (batch, beats, ...): each beat's window and RR"
        if data.get("run_beats", 1) > 1
        else "inputs are single beats",
        "classes": list(module.hparams.classes),
        "threshold": module.hparams.threshold,
        "fs": data["fs"],
        "leads": configured_lead(data),  # the lead predict reads: a database's own (INCART: II) before data.lead
        "leads_seen_in_training": leads_seen,
        "band_hz": data.get("band"),
        "standardize": "per lead, zero mean and unit variance over the whole record (after the band-pass)"
        if input_setting(data, "standardize")
        else "none: the physical units (mV), after the band-pass",
        "window_samples": window_samples(data["window_s"], data["fs"]),
        "window_centre": "the beat's sample",
        "edges": "samples beyond the record are 0",
        "templates": bool(data.get("templates", False)),
        "reference_beats": "the fifth of a record's beats with the longest preceding RR (template, RR normalization)"
        if data.get("reference_beats", "all") == "longest_rr"
        else "all beats of the record (template, RR normalization)",
        "channels": n_channels(data["lead"], data.get("templates", False)),
        "rr_features": rr,
        **(
            {
                "record_decision": "the S decision is relative to each record: over all the beats of one record, "
                "ecg_lightning.classifier.relative_to_records(probs, records, classes, s_offset, quantile=quantile) "
                "with s_offset the S entry of class_bias (each record's quantile of S-vs-N log-odds taken off); the "
                "graph alone decides beat by beat, without it",
                "class_bias": [float(b) for b in module.class_bias],
                "quantile": float(getattr(module, "relative_s_quantile", 0.5)),
            }
            if getattr(module, "relative_s", False)
            else {}
        ),
    }


def example_inputs(run: DictConfig, batch: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of the exported module: (batch, channels, window) [+ (batch, rr)]; a beat-sequence model takes runs
    of beats, (batch, beats, channels, window) [+ (batch, beats, rr)]."""
    data = run.data
    runs = (int(data.run_beats),) if data.get("run_beats", 1) > 1 else ()
    channels, width = n_channels(data.lead, data.get("templates", False)), window_samples(data.window_s, data.fs)
    x = torch.zeros(batch, *runs, channels, width)
    rr = n_rr(data.get("rr_features", False))
    return (x, torch.zeros(batch, *runs, rr)) if rr else (x,)


def export(cfg: DictConfig) -> Path:
    """Write the model in ``cfg.format`` and preprocessing.json into the run folder; return the model's path."""
    if cfg.format not in FORMATS:
        raise CheckpointError(f"format={cfg.format!r}; choose one of {list(FORMATS)}")
    out_dir = Path(cfg.paths.output_dir)
    ckpt = load_checkpoint(cfg.ckpt_path)
    run = checkpoint_config(ckpt)
    classifier = build_model(ckpt, run, cfg.ckpt_path)
    module = Probabilities(classifier).eval()
    inputs = example_inputs(run)
    names = ["x", "rr"][: len(inputs)]
    path = out_dir / FORMATS[cfg.format]
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        # the traced branches depend on fixed sizes (one logit or several), not on the data: the trace is exact
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # the LSTMs' initial states are zeros made per call, so any batch size runs (tests/test_sequence.py exports
        # at batch 2 and runs batch 6); the exporter's generic warning about it does not apply
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        if cfg.format == "onnx":
            torch.onnx.export(
                module,
                inputs,
                str(tmp),
                input_names=names,
                output_names=["probabilities"],
                # a beat-sequence model's runs may have any number of beats
                dynamic_axes={
                    n: {0: "batch", 1: "beats"} if inputs[0].dim() == 4 else {0: "batch"}
                    for n in [*names, "probabilities"]
                },
                dynamo=False,
            )
        else:
            torch.jit.save(torch.jit.trace(module, inputs), str(tmp))
    tmp.replace(path)
    spec = preprocessing(run, classifier, ckpt.get(LEADS_KEY))
    report.write_atomic(
        out_dir / "preprocessing.json", json.dumps({"checkpoint": str(cfg.ckpt_path), **spec}, indent=2)
    )
    log.info("Exported %s to %s (inputs %s; preprocessing.json beside it)", cfg.ckpt_path, path, names)
    if "record_decision" in spec:
        log.warning("%s decides S relative to each record: apply preprocessing.json's record_decision", cfg.ckpt_path)
    return path


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="export")
def run(cfg: DictConfig) -> None:
    exit_on_input_error(lambda: export(cfg))


def main() -> None:
    """The console command: checks what Hydra would fail on with a traceback, then runs."""
    check_command_line(sys.argv[1:])
    run()


if __name__ == "__main__":
    main()
