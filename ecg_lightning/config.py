"""Where the Hydra configs are and the OmegaConf resolvers they use."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

_PACKAGE = Path(__file__).resolve().parent
# Inside an installed wheel the configs ship as ecg_lightning/conf; in a source checkout they are ../conf.
CONFIG_DIR = next(p for p in (_PACKAGE / "conf", _PACKAGE.parent / "conf") if p.is_dir())


def window_samples(window_s: float, fs: float) -> int:
    """Samples in a window of ``window_s`` seconds on each side of the beat."""
    return 2 * int(round(float(window_s) * float(fs)))


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("window_samples", window_samples, replace=True)


register_resolvers()
