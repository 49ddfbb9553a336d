"""Where the Hydra configs are and the OmegaConf resolvers they use to size models from the data config."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ecg_lightning.data.records import lead_list
from ecg_lightning.data.rr import rr_feature_names

_PACKAGE = Path(__file__).resolve().parent
# Inside an installed wheel the configs ship as ecg_lightning/conf; in a source checkout they are ../conf.
CONFIG_DIR = next(p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if p.is_dir())


def configured_label_sets(data: str = "wfdb") -> dict:
    """The label sets of a data config (``conf/data/<data>.yaml``), for building a DataModule outside Hydra."""
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data" / f"{data}.yaml").label_sets)


def window_samples(window_s: float, fs: float) -> int:
    """Samples in a window of ``window_s`` seconds on each side of the beat."""
    return 2 * int(round(float(window_s) * float(fs)))


def n_channels(lead: Any, templates: bool = False) -> int:
    """Input channels for ``data.lead``: one, or one per listed lead; twice that with the record templates."""
    leads = len(lead_list(lead))
    return 2 * leads if templates else leads


def class_names(label_sets: Any, labels: str) -> list[str]:
    """The class names of the chosen label set, in label order."""
    if labels not in label_sets:
        raise ValueError(f"data.labels={labels!r}; choose one of data.label_sets: {list(label_sets)}")
    return [str(c) for c in label_sets[labels]]


def n_outputs(label_sets: Any, labels: str) -> int:
    """Logits the network outputs: one for two classes (sigmoid), else one per class (softmax)."""
    k = len(class_names(label_sets, labels))
    return 1 if k == 2 else k


def n_rr(rr_features: Any) -> int:
    """RR features the data serves (``data.rr_features``)."""
    spec = OmegaConf.to_object(rr_features) if OmegaConf.is_config(rr_features) else rr_features
    return len(rr_feature_names(spec))


MAX_FOLDER_NAME = 200  # most file systems allow 255 bytes; the job number and a prefix come before it
# characters of an override's value that Hydra's override grammar refuses unquoted: a job folder holding them could
# not be passed back as a checkpoint path (``evaluate -m ckpt_path=<folder>/...``); a list's commas would split it;
# a value's "/" (monitor=val/balanced_accuracy) would make the job's folder two nested folders
_GRAMMAR = str.maketrans({",": "+", "[": None, "]": None, "{": None, "}": None, "(": None, ")": None, "'": None,
                          '"': None, " ": "_", "=": "-", "~": "-", "#": "-", "/": "-"})  # fmt: skip


def folder_name(text: str, limit: int = MAX_FOLDER_NAME) -> str:
    """``text`` (a multirun job's overrides) as a folder name that passes back as a plain override value: a list
    ``[a,b]`` becomes ``a+b``; longer than ``limit`` (a list of eight RR features is already 120 characters), cut
    short with a hash of the whole, so that jobs stay apart."""
    text = str(text)
    safe = text.translate(_GRAMMAR)
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    return f"{safe[: limit - len(digest) - 1]}_{digest}"


def optuna_direction(mode: str) -> str:
    """Optuna's study direction for a ``monitor_mode`` (max/min)."""
    return {"max": "maximize", "min": "minimize"}[str(mode)]


def register_resolvers() -> None:
    for name, fn in {
        "optuna_direction": optuna_direction,
        "window_samples": window_samples,
        "n_channels": n_channels,
        "class_names": class_names,
        "n_outputs": n_outputs,
        "n_rr": n_rr,
        "folder_name": folder_name,
    }.items():
        OmegaConf.register_new_resolver(name, fn, replace=True)


register_resolvers()
