"""What the benchmark scripts share: printing their figures and keeping them in results/."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from ecg_lightning.config import CONFIG_DIR


def emit(lines: list[str], out: Path | None) -> None:
    """Print the figures and, with ``out``, write them there too (the file the README's numbers come from)."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def compose_train(overrides: list[str]) -> DictConfig:
    """The training config as ``python -m ecg_lightning.train <overrides>`` composes it (no run folder)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[*overrides, "paths.output_dir=."])
