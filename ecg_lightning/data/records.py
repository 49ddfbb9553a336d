"""Reading WFDB records: one standardized lead per record plus its annotations, and the database folder around them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import wfdb
import wfdb.processing
from tqdm.auto import tqdm

from ecg_lightning.errors import InputError

log = logging.getLogger(__name__)

# The 48 records of the MIT-BIH Arrhythmia Database, in PhysioNet's RECORDS order.
MITDB_RECORDS = (
    "100 101 102 103 104 105 106 107 108 109 111 112 113 114 115 116 117 118 119 121 122 123 124 "
    "200 201 202 203 205 207 208 209 210 212 213 214 215 217 219 220 221 222 223 228 230 231 232 233 234"
).split()


class RecordError(InputError):
    """A record (or the database folder) cannot be used; the message names the file and what to do."""


@dataclass(frozen=True)
class Record:
    """One record's chosen lead, standardized over the whole record, and its annotations."""

    name: str
    signal: np.ndarray  # float32, (n_samples,)
    lead: str
    fs: float
    ann_sample: np.ndarray  # int64 sample index of each annotation
    ann_symbol: np.ndarray  # annotation symbols (str)
    source_fs: float | None = None  # the file's own rate, when resampled to ``fs``


@dataclass(frozen=True)
class RecordSet:
    """All records of a database, leads concatenated into one array so a window is a single slice.

    Record ``i`` occupies ``signal[offsets[i]:offsets[i + 1]]``; annotation ``j`` belongs to record
    ``ann_record[j]`` at sample ``ann_sample[j]`` within it.
    """

    names: tuple[str, ...]
    leads: tuple[str, ...]
    fs: float
    signal: np.ndarray  # float32, (total_samples,)
    offsets: np.ndarray  # int64, (n_records + 1,)
    ann_record: np.ndarray  # int32
    ann_sample: np.ndarray  # int64
    ann_symbol: np.ndarray  # <U2

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_records(cls, records: list[Record]) -> "RecordSet":
        if not records:
            raise RecordError("No records to build a database from")
        fs = {r.fs for r in records}
        if len(fs) != 1:
            raise RecordError(f"Records have different sampling rates {sorted(fs)}; resample them to one rate")
        lengths = np.array([len(r.signal) for r in records], dtype=np.int64)
        n_ann = [len(r.ann_sample) for r in records]
        return cls(
            names=tuple(r.name for r in records),
            leads=tuple(r.lead for r in records),
            fs=fs.pop(),
            signal=np.concatenate([r.signal for r in records]).astype(np.float32, copy=False),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            ann_record=np.repeat(np.arange(len(records), dtype=np.int32), n_ann),
            ann_sample=np.concatenate([r.ann_sample for r in records]).astype(np.int64),
            ann_symbol=np.concatenate([r.ann_symbol for r in records]).astype("<U2"),
        )


def list_records(root: Path) -> list[str]:
    """Record names of a database folder: its RECORDS file, else every ``*.hea`` in name order."""
    records_file = root / "RECORDS"
    if records_file.is_file():
        return [line.strip() for line in records_file.read_text().splitlines() if line.strip()]
    return sorted(p.stem for p in root.glob("*.hea"))


def ensure_database(root: Path, download: bool, db_name: str = "mitdb") -> list[str]:
    """Return the folder's record names, downloading the database first when the folder has none."""
    names = list_records(root) if root.is_dir() else []
    if names:
        return names
    how_to = (
        f"Put the MIT-BIH files (RECORDS, *.hea, *.dat, *.atr) in {root}, or point data.root "
        f"(or the MITDB_DIR environment variable) at a folder that has them. They can be fetched with "
        f"wfdb.dl_database('{db_name}', '{root}') on a machine with internet access."
    )
    if not download:
        raise RecordError(f"No WFDB records in {root} and data.download=false. {how_to}")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    log.info("No records in %s: downloading %s from PhysioNet", root, db_name)
    try:
        for name in tqdm(MITDB_RECORDS, desc=f"Downloading {db_name}", unit="record"):
            wfdb.dl_database(db_name, str(root), records=[name])
    except Exception as err:  # wfdb raises bare requests/OS errors when offline
        if created and not any(root.iterdir()):
            root.rmdir()  # leave no empty folder behind
        raise RecordError(f"Could not download {db_name} into {root} ({type(err).__name__}: {err}). {how_to}") from err
    (root / "RECORDS").write_text("\n".join(MITDB_RECORDS) + "\n")
    return list(MITDB_RECORDS)


def select_lead(sig_names: list[str], lead: int | str, record: str) -> int:
    """Channel index for ``lead``: an index, or a signal name with a fall-back to channel 0 when absent."""
    if isinstance(lead, int):
        if not 0 <= lead < len(sig_names):
            raise RecordError(f"{record}: has channels {sig_names}, no channel {lead}; choose data.lead in range")
        return lead
    if lead in sig_names:
        return sig_names.index(lead)
    log.warning("%s: no %s lead (signals %s); using channel 0 (%s) instead", record, lead, sig_names, sig_names[0])
    return 0


def bandpass(x: np.ndarray, fs: float, band: tuple[float, float], order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-pass (removes baseline wander below and muscle noise above the band)."""
    sos = scipy.signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    return scipy.signal.sosfiltfilt(sos, x)


def standardize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance over the whole record, as float32."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std()
    if not np.isfinite(std) or std == 0:
        raise ValueError("signal is flat (zero variance) and cannot be standardized")
    return ((x - x.mean()) / std).astype(np.float32)


def read_record(
    path: Path,
    lead: int | str = 0,
    annotation: str | None = "atr",
    fs: float | None = None,
    band: tuple[float, float] | None = None,
) -> Record:
    """Read one WFDB record's lead, standardized, with its ``annotation`` file (None: no annotations).

    With ``fs`` set, a record at another sampling rate is resampled to it (annotations follow); with
    ``band`` set, the lead is band-pass filtered (Hz) before standardization.
    """
    path = Path(path)
    header = path.with_suffix(".hea") if path.suffix in {".hea", ".dat", ".atr"} else Path(f"{path}.hea")
    base = header.with_suffix("")
    if not header.is_file():
        raise RecordError(f"{header}: WFDB header not found; give the record path without extension (e.g. data/mitdb/100)")
    try:
        meta = wfdb.rdheader(str(base))
    except Exception as err:
        raise RecordError(f"{header}: unreadable WFDB header ({err})") from err
    for dat in {f for f in (meta.file_name or []) if f}:
        if not (base.parent / dat).is_file():
            raise RecordError(f"{base.parent / dat}: signal file named in {header} is missing; copy it next to the header")
    channel = select_lead(list(meta.sig_name), lead, str(base))
    try:
        rec = wfdb.rdrecord(str(base), channels=[channel], physical=True)
    except Exception as err:
        raise RecordError(f"{base}: could not read the signal ({type(err).__name__}: {err}); is the .dat file complete?") from err
    x = rec.p_signal[:, 0]
    if len(x) < meta.sig_len:
        raise RecordError(f"{base}.dat: truncated ({len(x)} of {meta.sig_len} samples); download or copy it again")
    if np.isnan(x).any():
        raise RecordError(
            f"{base}: lead {meta.sig_name[channel]} has {int(np.isnan(x).sum())} missing (NaN) samples; "
            "interpolate or crop them before use"
        )
    if band is not None:
        x = bandpass(x, float(meta.fs), tuple(band))
    try:
        signal = standardize(x)
    except ValueError as err:
        raise RecordError(f"{base}: lead {meta.sig_name[channel]} {err}") from err

    ann_sample = np.empty(0, dtype=np.int64)
    ann_symbol = np.empty(0, dtype="<U2")
    if annotation is not None:
        ann_path = Path(f"{base}.{annotation}")
        if not ann_path.is_file():
            raise RecordError(f"{ann_path}: annotation file not found; set annotation=null to detect beats instead")
        try:
            ann = wfdb.rdann(str(base), annotation)
        except Exception as err:
            raise RecordError(f"{ann_path}: unreadable annotation file ({err})") from err
        ann_sample = np.asarray(ann.sample, dtype=np.int64)
        ann_symbol = np.asarray(ann.symbol, dtype="<U2")

    source_fs = record_fs = float(meta.fs)
    if fs is not None and record_fs != fs:
        signal = wfdb.processing.resample_sig(signal.astype(np.float64), record_fs, fs)[0].astype(np.float32)
        ann_sample = np.round(ann_sample * (fs / record_fs)).astype(np.int64)
        log.info("%s: resampled from %g Hz to %g Hz", base, record_fs, fs)
        record_fs = float(fs)
    return Record(base.name, signal, meta.sig_name[channel], record_fs, ann_sample, ann_symbol, source_fs)


def read_database(
    root: Path, names: list[str], lead: int | str, fs: float, band: tuple[float, float] | None = None
) -> RecordSet:
    """Read every named record of ``root`` (with progress) into one RecordSet, resampled to ``fs`` Hz."""
    records = []
    for name in tqdm(names, desc=f"Reading {root}", unit="record", leave=False):
        records.append(read_record(root / name, lead=lead, fs=fs, band=band))
    return RecordSet.from_records(records)
