"""The model that ships inside the package: ``ecg-predict record=<path>`` and ``api.load_model()`` use it when no
checkpoint is given. Nothing is downloaded at run time; the file's SHA-256 is checked before it is loaded.

Made from a training run's checkpoint (weights and run config kept, optimizer state dropped):

    python -m ecg_lightning.pretrained <run>/checkpoints/last.ckpt      # writes aami_ds1.ckpt and aami_ds1.sha256

MODEL_CARD.md (repository root) says how it was trained, what it scores on DS2, and what it is not.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ecg_lightning.checkpoint import CONFIG_KEY, LEADS_KEY, CheckpointError, load_checkpoint

HERE = Path(__file__).resolve().parent
NAME = "aami_ds1"
KEEP = (
    "state_dict",
    "hyper_parameters",
    CONFIG_KEY,
    LEADS_KEY,
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "members",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shipped_checkpoint(name: str = NAME) -> Path:
    """The shipped checkpoint's path, after checking its SHA-256 against the one shipped beside it."""
    path, digest = HERE / f"{name}.ckpt", HERE / f"{name}.sha256"
    if not path.is_file() or not digest.is_file():
        raise CheckpointError(f"{path}: the shipped model is missing from this installation; give ckpt_path=<ckpt>")
    if sha256(path) != digest.read_text().split()[0]:
        raise CheckpointError(f"{path}: SHA-256 differs from {digest.name}; the file is damaged: reinstall the package")
    return path


def make(source: str | Path, name: str = NAME) -> Path:
    """Write ``<name>.ckpt`` (the checkpoint without optimizer state) and its ``<name>.sha256`` here."""
    ckpt = load_checkpoint(source)
    slim = {k: v for k, v in ckpt.items() if k in KEEP}
    path = HERE / f"{name}.ckpt"
    torch.save(slim, path)
    (HERE / f"{name}.sha256").write_text(f"{sha256(path)}  {path.name}\n")
    return path
