"""Classify heartbeats from Python: a model (the one shipped with the package, or a checkpoint), a recording (a
WFDB record, an EDF/BDF file, a CSV of samples, or a NumPy array with its rate and lead names), a row per beat.

    from ecg_lightning import api
    model = api.load_model()                              # the shipped model (or api.load_model("run/last.ckpt"))
    beats = model.classify("data/mitdb/100")              # WFDB, .edf, .bdf, or .csv with fs=...
    beats = model.classify_array(signal, fs=250, leads=["II", "V1"])   # signal: (leads, samples), in mV
    beats.to_dataframe()                                  # pandas, one row per beat; beats.summary: the record

``ecg-predict`` is the command-line layer over the same functions (``predict.classify_record``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecg_lightning.checkpoint import LEADS_KEY, build_model, checkpoint_config, input_setting, load_checkpoint
from ecg_lightning.data.databases import configured_lead
from ecg_lightning.data.records import lead_list, record_from_array
from ecg_lightning.predict import Prediction, beat_arrays, classify_loaded, classify_record, data_band, summarize


@dataclass
class BeatTable:
    """A record's beats, one row each (``columns``: see ``predict.beat_arrays``), and the record's ``summary``."""

    record: str
    classes: list[str]
    columns: dict[str, np.ndarray]
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.columns["sample"])

    def __getitem__(self, column: str) -> np.ndarray:
        return self.columns[column]

    @property
    def probabilities(self) -> np.ndarray:
        """(beats, classes) class probabilities, in ``classes`` order."""
        return np.column_stack([self.columns[f"prob_{c}"] for c in self.classes])

    def to_dataframe(self):
        """The table as a pandas DataFrame (pandas is not a dependency of the package: install it to use this)."""
        import pandas as pd

        return pd.DataFrame(self.columns)


def table(p: Prediction, source: str, ckpt_path: str) -> BeatTable:
    return BeatTable(p.record.name, list(p.classes), beat_arrays(p), summarize(p, Path(source), ckpt_path))


class Model:
    """A trained beat classifier with the data settings it was trained with (leads, rate, band, window, RR)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.checkpoint = load_checkpoint(path)
        self.run = checkpoint_config(self.checkpoint)
        self.module = build_model(self.checkpoint, self.run, path)

    @property
    def classes(self) -> list[str]:
        return list(self.module.hparams.classes)

    @property
    def leads(self) -> list:
        """The leads the model reads, by name or channel index (``data.lead`` of its training)."""
        return lead_list(configured_lead(self.run.data))

    def classify(
        self,
        path: str | Path,
        annotation: str | None = "atr",
        lead: Any = None,
        fs: float | None = None,
        threshold: float | None = None,
        allow_other_lead: bool = False,
    ) -> BeatTable:
        """Every beat of a recording file: annotated beats when ``<path>.<annotation>`` exists (WFDB), else those
        our QRS detector finds. ``fs``: the rate of a CSV of samples (other formats say theirs)."""
        p = classify_record(self.module, self.run.data, Path(path), annotation, lead, allow_other_lead, threshold,
                            leads_seen=self.checkpoint.get(LEADS_KEY), file_fs=fs)  # fmt: skip
        return table(p, str(path), self.path)

    def classify_array(
        self,
        signal: np.ndarray,
        fs: float,
        leads: Sequence[str],
        name: str = "array",
        threshold: float | None = None,
        allow_other_lead: bool = False,
    ) -> BeatTable:
        """Every beat of a signal in memory: ``signal`` (leads, samples) in physical units at ``fs`` Hz, one name per
        lead (the model's leads are chosen by name, as from a file). Beats are found by our QRS detector."""
        data = self.run.data
        standardize = input_setting(data, "standardize")
        lead = configured_lead(data)
        record = record_from_array(name, signal, fs, list(leads), lead, data.fs, data_band(data), standardize)
        p = classify_loaded(self.module, data, record, False, allow_other_lead, threshold,
                            leads_seen=self.checkpoint.get(LEADS_KEY))  # fmt: skip
        return table(p, name, self.path)


def load_model(path: str | Path | None = None) -> Model:
    """A model from a checkpoint (``<run>/checkpoints/*.ckpt``), or the one shipped with the package (None)."""
    if path is None:
        from ecg_lightning.pretrained import shipped_checkpoint

        path = shipped_checkpoint()
    return Model(path)
