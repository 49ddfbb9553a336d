"""Checkpoints that carry their run's config, so evaluation and prediction rebuild the exact data and model."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.data import BeatDataModule
from ecg_lightning.errors import InputError

CONFIG_KEY = "ecg_lightning_config"
LEADS_KEY = "ecg_lightning_leads_seen"  # per input lead, the signal names the training records gave
RUN_GROUPS = ("data", "model", "seed", "monitor", "monitor_mode")


class CheckpointError(InputError):
    """A checkpoint that is missing, unreadable, or does not fit the configured model."""


def run_config(cfg: DictConfig, groups: tuple[str, ...] = RUN_GROUPS) -> dict[str, Any]:
    """The resolved ``groups`` of a training config (default: what rebuilds its data and model)."""
    return {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in groups
        if k in cfg
    }


def used_settings(cfg: DictConfig, groups: tuple[str, ...]) -> dict[str, Any]:
    """``run_config`` without what the run did not use — the catalog entries of databases it did not read, the
    label sets it did not train on — for the settings people read (hparams.yaml, TensorBoard's HPARAMS tab)."""
    settings = run_config(cfg, groups)
    data = settings.get("data")
    if isinstance(data, dict):
        used = {*data.get("databases", ()), *data.get("test_databases", ())}
        if isinstance(data.get("catalog"), dict):
            data["catalog"] = {k: v for k, v in data["catalog"].items() if k in used}
        if isinstance(data.get("label_sets"), dict) and data.get("labels") in data["label_sets"]:
            data["label_sets"] = {data["labels"]: data["label_sets"][data["labels"]]}
    return settings


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; {checkpoints_there(path)}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch's own text advises weights_only=False and filing an issue: not for a wrong file
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else ""
        first = "" if "weights_only" in first else first
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}{f': {first}' if first else ''}); "
            "a file cut short by a full disk or an interrupted copy, or not a checkpoint at all: give a .ckpt that "
            "python -m ecg_lightning.train wrote (<run dir>/checkpoints/)"
        ) from err
    if not isinstance(ckpt, dict) or CONFIG_KEY not in ckpt:
        raise CheckpointError(
            f"{path}: not an ecg-lightning checkpoint (no run config inside); train one with "
            "python -m ecg_lightning.train"
        )
    return ckpt


def checkpoints_there(path: Path) -> str:
    """What to give instead of a missing checkpoint: the ``.ckpt`` files of its folder (or of ``<path>/checkpoints``
    when a run folder was given), the one best on validation named."""
    folder = path if path.is_dir() else path.parent
    if (folder / "checkpoints").is_dir():
        folder = folder / "checkpoints"
    found = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    if not found:
        return "give ckpt_path=<run dir>/checkpoints/<name>.ckpt (last.ckpt: the final weights)"
    names = ", ".join(p.name + (" (best on validation)" if p.name.startswith("epoch_") else "") for p in found)
    return f"{folder} has {names}: give ckpt_path={folder / found[0].name}, for example"


def checkpoint_config(ckpt: dict[str, Any], overrides: list[str] = ()) -> DictConfig:
    """The checkpoint's run config with ``key=value`` overrides (e.g. data.split=seed) applied; ``~key`` deletes
    the key (its default applies), as on a training command line."""
    cfg = OmegaConf.create(ckpt[CONFIG_KEY])
    for deletion in (o[1:].partition("=")[0] for o in overrides if o.startswith("~")):
        parent, _, key = deletion.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if node is None or key not in node:
            raise CheckpointError(f"~{deletion}: the checkpoint's config has no {deletion} to delete")
        node.pop(key)
    kept = [o for o in overrides if not o.startswith("~")]
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(kept)) if kept else cfg


def check_weights_fit(model: torch.nn.Module, ckpt: dict[str, Any], path: str | Path, hint: str) -> None:
    """Refuse a checkpoint whose weights do not fit ``model`` with one line naming both models and ``hint``, not
    torch's page of missing and unexpected keys."""
    target = ckpt.get(CONFIG_KEY, {}).get("model", {}).get("net", {}).get("_target_", "another model")
    theirs, ours = ckpt["state_dict"], model.state_dict()
    wrong = sorted(set(theirs) ^ set(ours)) or [k for k in ours if tuple(theirs[k].shape) != tuple(ours[k].shape)]
    if wrong:
        raise CheckpointError(
            f"{path}: weights do not fit the configured model {type(getattr(model, 'net', model)).__name__} "
            f"(the checkpoint is a {target}; e.g. {wrong[0]}); {hint}"
        )


def build_model(ckpt: dict[str, Any], cfg: DictConfig, path: str | Path) -> BeatClassifier:
    """Instantiate the configured model and load the checkpoint's weights into it, in eval mode."""
    model = instantiate(cfg.model, _convert_="all")
    check_weights_fit(model, ckpt, path, "drop the model.* overrides or choose the checkpoint trained with them")
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def input_setting(data: Mapping[str, Any], key: str) -> Any:
    """A run's data setting; one its checkpoint predates (e.g. ``standardize``) reads as the DataModule's default,
    which is what that run used."""
    if key in data:
        return data[key]
    parameter = inspect.signature(BeatDataModule).parameters.get(key)
    default = None if parameter is None else parameter.default
    return list(default) if isinstance(default, tuple) else default
