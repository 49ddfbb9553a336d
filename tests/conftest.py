"""Shared fixtures: a small WFDB database written with wfdb.wrsamp / wfdb.wrann, and composed Hydra configs."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest
import tqdm.std
import wfdb
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from ecg_lightning.config import CONFIG_DIR, configured_label_sets

# Progress bars take a per-process lock and no monitor thread: mutation testing (mutmut) runs each mutant in a
# process forked from the test session, and tqdm's default lock (a semaphore shared across processes, also taken by
# its monitor thread) deadlocks a forked child once another process died holding it.
tqdm.std.tqdm.set_lock(threading.RLock())
tqdm.std.tqdm.monitor_interval = 0

FS = 360
DURATION_S = 30
BEAT_EVERY = 288  # 0.8 s
# Target abnormal fractions: four records in each of the study's bins [0, .2], (.2, .6], (.6, 1].
FRACTIONS = {
    "100": 0.0,
    "101": 0.1,
    "102": 0.15,
    "103": 0.05,
    "104": 0.3,
    "105": 0.4,
    "106": 0.5,
    "107": 0.35,
    "108": 0.7,
    "109": 0.8,
    "201": 0.9,
    "202": 0.65,
}
# the label sets as configured (the config is the spec: tests/test_labels.py checks it against the study and AAMI)
LABEL_SETS = configured_label_sets()
STUDY, AAMI = LABEL_SETS["study"], LABEL_SETS["aami"]
TEST_WINDOW_S = 0.5  # 180 samples each side: fast tests, and beats near the edges get dropped


# Beat shapes by annotation symbol, so that every class is learnable in a few dozen steps (the test trainings
# must learn, or best-epoch, threshold and per-class code is only ever run on a model that calls every beat normal):
# (amplitude, width s, second bump's amplitude, its delay s) on lead 0; lead 1 shows the same beat inverted, smaller.
BEAT_SHAPES = {
    "N": (1.0, 0.012, 0.0, 0.0),  # narrow upright QRS
    "L": (1.0, 0.012, 0.9, 0.05),  # notched: bundle branch block (AAMI N, study abnormal)
    "A": (2.5, 0.012, 0.0, 0.0),  # tall and narrow (S)
    "V": (-2.0, 0.045, 0.0, 0.0),  # wide, inverted (V)
    "F": (1.5, 0.030, -1.0, 0.06),  # wide with an inverted second bump (F)
    "/": (0.5, 0.040, 2.0, -0.04),  # pacing spike before a wide complex (Q)
}
ABNORMAL_SYMBOLS = ("V", "A", "L", "/", "F")


def synthetic_signal(n: int, fs: float, beats: np.ndarray, symbols: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two leads: class-shaped QRS complexes at ``beats`` over baseline wander and noise, with offsets and gains far
    from zero-mean/unit-variance so that standardization shows."""
    t = np.arange(n) / fs
    qrs = np.zeros(n)
    offsets = np.arange(-int(0.25 * fs), int(0.25 * fs) + 1)
    for symbol, (height, width, bump, delay) in BEAT_SHAPES.items():
        kernel = height * np.exp(-0.5 * (offsets / (width * fs)) ** 2)
        if bump:
            kernel += bump * np.exp(-0.5 * ((offsets - delay * fs) / (0.012 * fs)) ** 2)
        impulses = np.zeros(n)
        impulses[beats[symbols == symbol]] = 1.0
        qrs += np.convolve(impulses, kernel, mode="same")
    lead0 = 5.0 + 0.5 * np.sin(2 * np.pi * 0.3 * t) + 3.0 * qrs + rng.normal(0, 0.05, n)
    lead1 = -1.0 + 0.2 * np.cos(2 * np.pi * 0.2 * t) - 1.0 * qrs + rng.normal(0, 0.05, n)
    return np.column_stack([lead0, lead1])


def write_record(
    root: Path,
    name: str,
    abnormal_fraction: float,
    rng: np.random.Generator,
    sig_name: tuple[str, str] = ("MLII", "V1"),
    fs: int = FS,
    duration_s: float = DURATION_S,
    abnormal_symbols: tuple[str, ...] = ABNORMAL_SYMBOLS,
) -> None:
    """One record with beats every 0.8 s (first at 0.3 s), abnormal beats of ``abnormal_symbols`` shaped as in
    BEAT_SHAPES, and a few non-beat annotations."""
    n = int(duration_s * fs)
    beats = np.arange(int(0.3 * fs), n, int(BEAT_EVERY * fs / FS))
    symbols = np.array(["N"] * len(beats), dtype=object)
    n_abnormal = int(round(abnormal_fraction * len(beats)))
    symbols[rng.choice(len(beats), n_abnormal, replace=False)] = rng.choice(list(abnormal_symbols), n_abnormal)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV", "mV"],
        sig_name=list(sig_name),
        p_signal=synthetic_signal(n, fs, beats, symbols.astype(str), rng),
        fmt=["212", "212"],
        write_dir=str(root),
    )
    extra = beats[1:4:2] + 20  # rhythm / noise annotations: not beats
    samples = np.concatenate([beats, extra])
    order = np.argsort(samples)
    all_symbols = np.concatenate([symbols, ["+", "~"][: len(extra)]])
    wfdb.wrann(name, "atr", samples[order], symbol=list(all_symbols[order]), write_dir=str(root))


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mitdb")
    rng = np.random.default_rng(0)
    for name, fraction in FRACTIONS.items():
        write_record(root, name, fraction, rng)
    (root / "RECORDS").write_text("\n".join(FRACTIONS) + "\n")
    return root


# the half window (samples) of the beats ``three_records`` indexes
THREE_RECORDS_HALF = 90


@pytest.fixture(scope="session")
def three_records(tiny_db):
    """Three tiny records (both leads, 360 Hz) and their AAMI beats, edge beats padded: for the cut of runs of beats."""
    from ecg_lightning.data.labels import label_beats
    from ecg_lightning.data.records import read_database, record_sources
    from ecg_lightning.data.windows import index_beats

    db = read_database(record_sources("db", tiny_db, ["100", "106", "201"], [0, 1]), 360.0)
    return db, index_beats(db, label_beats(db.ann_symbol, AAMI), THREE_RECORDS_HALF, pad_edges=True)


def database_spec(name: str, root: Path, **changes) -> dict:
    """A database's settings as configured in conf/data/database/<name>.yaml, at ``root``."""
    spec = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data" / "database" / f"{name}.yaml"))
    return {**spec, "root": str(root), **changes}


def beat_dm(root: Path, database: str = "mitdb", **kwargs):
    """A BeatDataModule over one database at ``root`` (configured as ``database``), with the configured label sets."""
    from ecg_lightning.data import BeatDataModule

    kwargs = {"label_sets": LABEL_SETS, **kwargs}
    return BeatDataModule(databases=[database], catalog={database: database_spec(database, root)}, **kwargs)


def compose_config(name: str, out_dir: Path, overrides: list[str]) -> DictConfig:
    """Compose one of the real configs (train, evaluate, predict) as a Hydra run into ``out_dir`` would."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(out_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def train_overrides(root: Path, tmp: Path, window_s: float = TEST_WINDOW_S) -> list[str]:
    """Small, quiet training on ``root`` with caches and logs under ``tmp``."""
    return [
        f"data.catalog.mitdb.root={root}",
        f"paths.cache_dir={tmp / 'cache'}",
        f"paths.log_dir={tmp / 'outputs'}",
        f"data.window_s={window_s}",
        "data.batch_size=32",
        "callbacks.progress_bar.refresh_rate=0",
    ]


@pytest.fixture
def compose_cfg(tiny_db: Path, tmp_path: Path):
    """Compose the real train config on the tiny database, with every output under tmp_path."""

    def make(*overrides: str, root: Path = tiny_db, window_s: float = TEST_WINDOW_S) -> DictConfig:
        return compose_config("train", tmp_path / "run", [*train_overrides(root, tmp_path, window_s), *overrides])

    return make


def mitdb_dir() -> Path | None:
    """The real MIT-BIH folder when MITDB_DIR points at one (CI sets it)."""
    path = os.environ.get("MITDB_DIR")
    return Path(path) if path and (Path(path) / "RECORDS").is_file() else None
