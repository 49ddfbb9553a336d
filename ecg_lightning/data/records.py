"""Reading WFDB records: each record's chosen leads, standardized, with its annotations; and the database folder."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.signal
import wfdb
import wfdb.processing
from tqdm.auto import tqdm

from ecg_lightning.errors import InputError

log = logging.getLogger(__name__)


class RecordError(InputError):
    """A record (or the database folder) cannot be used; the message names the file and what to do."""


# Lead names treated as the same lead (compared case-insensitively): MIT-BIH's modified limb lead II is lead II;
# the modified chest lead MCL1 is close to V1. Anything else must match by name.
LEAD_EQUIVALENTS = (("MLII", "II", "ML2"), ("V1", "MCL1"))

Lead = int | str


@dataclass(frozen=True)
class Record:
    """One record's chosen leads, each standardized over the whole record, and its annotations."""

    name: str
    signal: np.ndarray  # float32, (n_leads, n_samples)
    leads: tuple[str, ...]
    fs: float
    ann_sample: np.ndarray  # int64 sample index of each annotation
    ann_symbol: np.ndarray  # annotation symbols (str)
    source_fs: float | None = None  # the file's own rate, when resampled to ``fs``
    comments: tuple[str, ...] = ()  # the header's comment lines (INCART names the patient there)
    # annotations stop here (a sample at ``fs``) because the file was cut short or they end long before the signal
    # does (``annotation_end``); None: they cover the whole record
    ann_until: int | None = None


@dataclass(frozen=True)
class RecordSource:
    """Where one record is and how to read it: its database, folder, name, lead(s) and annotation extension."""

    database: str
    root: Path
    name: str
    lead: Lead | tuple[Lead, ...] = 0
    annotation: str = "atr"

    @property
    def path(self) -> Path:
        return Path(self.root) / self.name


def record_sources(
    database: str, root: Path, names: Sequence[str], lead: Lead | Sequence[Lead] = 0, annotation: str = "atr"
) -> list[RecordSource]:
    """The named records of one database folder, each read with ``lead`` and its ``annotation`` file."""
    return [RecordSource(database, Path(root), str(name), as_lead(lead), annotation) for name in names]


@dataclass(frozen=True)
class RecordSet:
    """All records of a database, leads concatenated into one array so a window is a single slice.

    Record ``i`` occupies ``signal[offsets[i]:offsets[i + 1]]``; annotation ``j`` belongs to record
    ``ann_record[j]`` at sample ``ann_sample[j]`` within it.
    """

    names: tuple[str, ...]
    leads: tuple[tuple[str, ...], ...]  # per record, the signal name read for each lead
    fs: float
    signal: np.ndarray  # float32, (n_leads, total_samples)
    offsets: np.ndarray  # int64, (n_records + 1,)
    ann_record: np.ndarray  # int32
    ann_sample: np.ndarray  # int64
    ann_symbol: np.ndarray  # <U2
    databases: tuple[str, ...] = ()  # per record, the database it came from (empty: not known)
    comments: tuple[tuple[str, ...], ...] = ()  # per record, its header's comment lines

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def from_records(cls, records: list[Record], databases: Sequence[str] = ()) -> RecordSet:
        if not records:
            raise RecordError("No records to build a database from")
        fs = {r.fs for r in records}
        if len(fs) != 1:
            raise RecordError(f"Records have different sampling rates {sorted(fs)}; resample them to one rate")
        n_leads = {r.signal.shape[0] for r in records}
        if len(n_leads) != 1:
            raise RecordError(f"Records have different numbers of leads {sorted(n_leads)}")
        lengths = np.array([r.signal.shape[1] for r in records], dtype=np.int64)
        n_ann = [len(r.ann_sample) for r in records]
        return cls(
            names=tuple(r.name for r in records),
            leads=tuple(tuple(r.leads) for r in records),
            fs=fs.pop(),
            signal=(  # one record (predict): its own array, no copy of a possibly 24-hour signal
                records[0].signal.astype(np.float32, copy=False)
                if len(records) == 1
                else np.concatenate([r.signal for r in records], axis=1).astype(np.float32, copy=False)
            ),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            ann_record=np.repeat(np.arange(len(records), dtype=np.int32), n_ann),
            ann_sample=np.concatenate([r.ann_sample for r in records]).astype(np.int64),
            ann_symbol=np.concatenate([r.ann_symbol for r in records]).astype("<U2"),
            databases=tuple(databases),
            comments=tuple(r.comments for r in records),
        )


def list_records(root: Path) -> list[str]:
    """Record names of a database folder: its RECORDS file, else every ``*.hea`` in name order."""
    records_file = root / "RECORDS"
    if records_file.is_file():
        return [line.strip() for line in records_file.read_text().splitlines() if line.strip()]
    return sorted(p.stem for p in root.glob("*.hea"))


def ensure_database(root: Path, download: bool, db_name: str | None = "mitdb", key: str | None = None) -> list[str]:
    """Return the folder's record names, downloading PhysioNet database ``db_name`` first when the folder has none.

    The record list comes from PhysioNet (``wfdb.get_record_list``); records are fetched one by one (with progress),
    and RECORDS is written last, so an interrupted download is resumed by the next call. ``key`` is the database's
    config entry (default ``data.catalog.<db_name>``), named in the messages.
    """
    key = key or f"data.catalog.{db_name}"
    names = list_records(root) if root.is_dir() else []
    if names:
        return names
    env = f"{db_name.upper()}_DIR" if db_name else None
    how_to = (
        f"Put the database's files (RECORDS, *.hea, *.dat and the annotation files) in {root}, or point {key}.root "
        f"at a folder that has them{f' (or set {env}=<folder>)' if env else ''}."
    )
    if db_name:
        how_to += (
            f" They can be fetched with wfdb.dl_database('{db_name}', '{root}') on a machine with internet access."
        )
    if not download or not db_name:
        why = f"{key}.download=false" if db_name else f"no PhysioNet name ({key}.physionet) to download it from"
        raise RecordError(f"No WFDB records in {root} and {why}. {how_to}")
    created = [p for p in (root, *root.parents) if not p.exists()]  # made here: removed again if nothing lands
    root.mkdir(parents=True, exist_ok=True)
    log.info(
        "%s %s: downloading %s from PhysioNet (if the database is elsewhere, set %s.root%s)",
        "No folder" if created else "No records in",
        root,
        db_name,
        key,
        f" or {env}" if env else "",
    )
    try:
        names = [str(n) for n in wfdb.get_record_list(db_name)]
        for name in tqdm(names, desc=f"Downloading {db_name}", unit="record"):
            wfdb.dl_database(db_name, str(root), records=[name])
    except Exception as err:  # wfdb raises bare requests/OS errors when offline
        for folder in created:  # innermost first: leave no empty folders behind
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        missing = f"{root} does not exist" if created else f"{root} has no records"
        raise RecordError(
            f"{missing}, and downloading {db_name} failed ({type(err).__name__}: {err}). {how_to}"
        ) from err
    (root / "RECORDS").write_text("\n".join(names) + "\n")
    return names


def unnamed_lead(name: str) -> bool:
    """A channel name that says no lead (SVDB's "ECG1", "ECG2"): asking for a lead by name falls back there."""
    return re.fullmatch(r"(ECG|EKG|CH|CHAN|CHANNEL|SIGNAL|SIG|LEAD)?[\s_]*\d*", str(name).strip().upper()) is not None


def lead_key(name: str) -> str:
    """A lead name as compared: upper case, and the first name of its LEAD_EQUIVALENTS group."""
    upper = str(name).strip().upper()
    return next((group[0] for group in LEAD_EQUIVALENTS if upper in group), upper)


def lead_list(lead: Lead | Sequence[Lead]) -> list[Lead]:
    """``data.lead`` as a list: one lead, or the listed ones (a list, tuple or OmegaConf list)."""
    return [lead] if isinstance(lead, (int, str)) else list(lead)


def as_lead(lead: Lead | Sequence[Lead]) -> Lead | tuple[Lead, ...]:
    """``data.lead`` in a fixed, hashable form: one lead as it is, several as a tuple."""
    return lead if isinstance(lead, (int, str)) else tuple(lead)


def select_leads(sig_names: list[str], leads: Lead | Sequence[Lead], record: str) -> list[int]:
    """Channel indices for ``leads``: indices, or names matched case-insensitively and through LEAD_EQUIVALENTS.

    A name the record lacks falls back, with a warning naming the record, to its first channel not chosen yet
    (MIT-BIH 102 and 104 have no MLII: channel 0, V5, is read instead).
    """
    wanted = lead_list(leads)
    keys = [lead_key(n) for n in sig_names]
    chosen: list[int] = []
    for lead in wanted:
        if isinstance(lead, int):
            if not 0 <= lead < len(sig_names):
                raise RecordError(f"{record}: has channels {sig_names}, no channel {lead}; choose data.lead in range")
            chosen.append(lead)
        elif lead_key(lead) in keys:
            chosen.append(keys.index(lead_key(lead)))
        else:
            free = [i for i in range(len(sig_names)) if i not in chosen]
            if not free:
                raise RecordError(f"{record}: no {lead} lead and no other channel left (signals {sig_names})")
            log.debug(  # the DataModule warns once about every record read this way; predict says so itself
                "%s: no %s lead (signals %s); using channel %d (%s) instead",
                record,
                lead,
                sig_names,
                free[0],
                sig_names[free[0]],
            )
            chosen.append(free[0])
    return chosen


def bandpass(
    x: np.ndarray,
    fs: float,
    band: tuple[float, float],
    order: int = 2,
    chunk_s: float = 600.0,
    margin_s: float = 30.0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Zero-phase Butterworth band-pass (removes baseline wander below and muscle noise above the band).

    Filtered in float64 over ``chunk_s``-second pieces, each with ``margin_s`` of signal on both sides: the
    filter's transients decay within seconds, so the result equals filtering the whole record at once (to
    ~1e-13), while a 24-hour lead needs a few MiB of scratch. ``out`` may be ``x`` itself (filtered in place).
    """
    sos = scipy.signal.butter(order, band, btype="bandpass", fs=fs, output="sos")
    x = np.asarray(x)
    if out is None:
        out = np.empty(x.shape, dtype=np.float32 if x.dtype == np.float32 else np.float64)
    n, chunk, margin = x.shape[-1], int(chunk_s * fs), int(margin_s * fs)
    before = x[..., 0:0].astype(np.float64)  # up to ``margin`` unfiltered samples just before the current piece
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        own = x[..., start:stop].astype(np.float64)  # a copy: ``out`` may overwrite x[start:stop] below
        after = x[..., stop : min(n, stop + margin)].astype(np.float64)  # not overwritten yet
        filtered = scipy.signal.sosfiltfilt(sos, np.concatenate([before, own, after], axis=-1), axis=-1)
        out[..., start:stop] = filtered[..., before.shape[-1] : before.shape[-1] + stop - start]
        before = np.concatenate([before, own], axis=-1)[..., max(0, before.shape[-1] + own.shape[-1] - margin) :]
    return out


def standardize(x: np.ndarray, piece: int = 1 << 20, out: np.ndarray | None = None) -> np.ndarray:
    """Zero mean, unit variance over the whole record, per lead (last axis), as float32. The statistics are summed
    in float64 a piece at a time, so a 24-hour lead needs no float64 copy of itself; ``out`` may be ``x``."""
    x = np.asarray(x)
    n = x.shape[-1]
    total = np.zeros(x.shape[:-1] + (1,))
    for lo in range(0, n, piece):
        total += x[..., lo : lo + piece].sum(axis=-1, keepdims=True, dtype=np.float64)
    mean = total / n
    squares = np.zeros_like(total)
    for lo in range(0, n, piece):
        squares += np.square(x[..., lo : lo + piece] - mean).sum(axis=-1, keepdims=True)
    std = np.sqrt(squares / n)
    if not np.isfinite(std).all() or (std == 0).any():
        raise ValueError("signal is flat (zero variance) and cannot be standardized")
    out = np.empty(x.shape, dtype=np.float32) if out is None else out
    for lo in range(0, n, piece):
        out[..., lo : lo + piece] = (x[..., lo : lo + piece] - mean) / std
    return out


def check_sampling_rate(header: Path) -> None:
    """Refuse a record line whose sampling-rate field is not a number (wfdb would silently read 250 Hz)."""
    fields = next(
        (
            line.split()
            for line in header.read_text(errors="replace").splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        ),
        [],
    )
    if len(fields) > 2:
        rate = fields[2].split("/")[0].split("(")[0]
        try:
            float(rate)
        except ValueError:
            raise RecordError(
                f"{header}: sampling rate {fields[2]!r} is not a number; fix the header's first line "
                "(record name, number of signals, sampling rate in Hz, ...)"
            ) from None


def read_lead(
    base: Path,
    meta: wfdb.Record,
    channel: int,
    name: str,
    band: tuple[float, float] | None,
    piece_s: float = 600.0,
    out: np.ndarray | None = None,
    standardize: bool = True,
) -> np.ndarray:
    """One lead of a record, checked (length, header checksum, missing samples), band-passed and standardized, as
    float32, into ``out`` when given. Read in ``piece_s``-second pieces so that a 24-hour recording needs little
    more memory than its float32 lead. The header's 16-bit checksum catches a swapped or damaged .dat file when
    the record is first read (it is cached afterwards). A lead with several samples per frame (a multi-rate record,
    header format ``212x4``) is read at its own rate, ``samples_per_frame(meta, channel)`` x the frame rate, and
    its checksum checked on those samples."""
    spf = samples_per_frame(meta, channel)
    n = meta.sig_len
    bounds = (
        [(None, None)]
        if not n
        else [(s, min(n, s + int(piece_s * meta.fs))) for s in range(0, n, int(piece_s * meta.fs))]
    )
    total = 0
    x = (np.empty(n * spf, dtype=np.float32) if out is None else out) if n else None
    for lo, hi in bounds:
        try:
            rec = wfdb.rdrecord(
                str(base),
                sampfrom=lo or 0,
                sampto=hi,
                channels=[channel],
                physical=False,
                return_res=16,
                smooth_frames=spf == 1,
            )
        except Exception as err:
            raise RecordError(
                f"{base}: could not read the signal ({type(err).__name__}: {err}); is the .dat file complete?"
            ) from err
        digital = rec.d_signal[:, 0] if spf == 1 else rec.e_d_signal[0]
        total += int(np.sum(digital, dtype=np.int64))
        physical = rec.dac(return_res=32)[:, 0] if spf == 1 else rec.dac(expanded=True, return_res=32)[0]  # float32
        if x is None:  # a header that leaves the length out: one piece, the whole file
            x = physical
        elif len(physical) < (hi - lo) * spf:
            raise RecordError(
                f"{base}.dat: truncated ({lo + len(physical) // spf} of {n} samples); download or copy it again"
            )
        else:
            x[lo * spf : hi * spf] = physical
    want = meta.checksum[channel] if meta.checksum else None
    if want is not None and total & 0xFFFF != want & 0xFFFF:
        raise RecordError(
            f"{base}.dat: samples of lead {name} do not match the header's checksum; the signal file is "
            "damaged or belongs to another record: download or copy it again"
        )
    return prepared_lead(x, float(meta.fs) * spf, band, f"{base}: lead {name}", standardize)


def prepared_lead(
    x: np.ndarray, fs: float, band: tuple[float, float] | None, where: str, unit_variance: bool = True
) -> np.ndarray:
    """One lead checked for missing samples, band-passed at its own rate ``fs`` and standardized, in place (``x`` is
    the caller's own float32 copy); ``where`` names the file and lead in the errors. The one preparation of a lead,
    whether it comes from a WFDB file or from memory (EDF, CSV, the NumPy-array API). ``unit_variance=False``
    (``data.standardize=false``) keeps the physical units (MIT-BIH: mV): a patient's amplitude is not divided away."""
    missing = int(np.isnan(x).sum())
    if missing:
        raise RecordError(f"{where} has {missing} missing (NaN) samples; interpolate or crop them before use")
    if band is not None:
        bandpass(x, fs, tuple(band), out=x)
    if not unit_variance:
        return x
    try:
        return standardize(x, out=x)
    except ValueError as err:
        raise RecordError(f"{where} {err}") from err


def samples_per_frame(meta: wfdb.Record, channel: int) -> int:
    """Samples of ``channel`` in each frame of the record (1 but in multi-rate records, e.g. 4 for ``212x4``)."""
    return int(meta.samps_per_frame[channel]) if meta.samps_per_frame else 1


def read_record(
    path: Path,
    lead: Lead | Sequence[Lead] = 0,
    annotation: str | None = "atr",
    fs: float | None = None,
    band: tuple[float, float] | None = None,
    standardize: bool = True,
) -> Record:
    """Read one WFDB record's lead(s), standardized, with its ``annotation`` file (None: no annotations).

    With ``fs`` set, a record at another sampling rate is resampled to it (annotations follow); with
    ``band`` set, the lead is band-pass filtered (Hz) before standardization.
    """
    path = Path(path)
    header = path.with_suffix(".hea") if path.suffix in {".hea", ".dat", ".atr"} else Path(f"{path}.hea")
    base = header.with_suffix("")
    if not header.is_file():
        raise RecordError(
            f"{header}: WFDB header not found; give the record path without extension (e.g. data/mitdb/100), "
            "or an .edf/.bdf file, or a .csv of samples with fs=<Hz>"
        )
    if not base.name.isascii():  # wfdb's header parser drops such characters and then looks for other files
        odd = "".join(dict.fromkeys(c for c in base.name if not c.isascii()))
        ascii_name = base.name.encode("ascii", "ignore").decode() or "rec"
        raise RecordError(
            f"{header}: the record name {base.name!r} has characters WFDB does not read ({odd}); rename the record's "
            f"files and the name on the header's first line to ASCII (e.g. {ascii_name})"
        )
    try:
        meta = wfdb.rdheader(str(base))
    except Exception as err:
        raise RecordError(f"{header}: unreadable WFDB header ({err})") from err
    check_sampling_rate(header)
    for dat in {f for f in (meta.file_name or []) if f}:
        if not (base.parent / dat).is_file():
            raise RecordError(
                f"{base.parent / dat}: signal file named in {header} is missing; copy it next to the header"
            )
    channels = select_leads(list(meta.sig_name), lead, str(base))
    names = tuple(meta.sig_name[c] for c in channels)
    rates = {samples_per_frame(meta, c) for c in channels}
    if len(rates) > 1:
        raise RecordError(
            f"{header}: the chosen leads {list(names)} have different sampling rates "
            f"({', '.join(f'{n} {samples_per_frame(meta, c) * meta.fs:g} Hz' for n, c in zip(names, channels))}); "
            "choose leads of one rate with lead=..."
        )
    spf = rates.pop()  # the chosen leads' samples per frame: they are read at spf x the frame rate
    # one lead at a time, each read straight into its row: a 24-hour recording's memory stays bounded
    signal = np.empty((len(channels), meta.sig_len * spf), dtype=np.float32) if meta.sig_len else None
    for i, (channel, name) in enumerate(zip(channels, names)):
        row = None if signal is None else signal[i]
        lead_signal = read_lead(base, meta, channel, name, band, out=row, standardize=standardize)
        if signal is None:  # a header without the length: the first lead tells it
            signal = np.empty((len(channels), len(lead_signal)), dtype=np.float32)
        signal[i] = lead_signal

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
        ann_sample = np.asarray(ann.sample, dtype=np.int64) * spf  # annotation times count frames
        ann_symbol = np.asarray(ann.symbol, dtype="<U2")
        outside = (ann_sample < 0) | (ann_sample >= signal.shape[1])
        if outside.any():
            log.warning(
                "%s: %d annotations lie outside the signal's %d samples (e.g. at %d); they are left out: "
                "is the annotation file of another record?",
                ann_path,
                int(outside.sum()),
                signal.shape[1],
                int(ann_sample[outside][0]),
            )
            ann_sample, ann_symbol = ann_sample[~outside], ann_symbol[~outside]
        ann_until = annotation_end(ann_path, ann_sample, signal.shape[1], float(meta.fs) * spf)
    else:
        ann_until = None

    comments = tuple(str(c) for c in (meta.comments or ()))
    record = Record(base.name, signal, names, float(meta.fs) * spf, ann_sample, ann_symbol, None, comments, ann_until)
    return at_rate(record, fs)


def at_rate(record: Record, fs: float | None) -> Record:
    """``record`` resampled to ``fs`` Hz (annotations follow; ``source_fs`` keeps the file's own rate)."""
    if fs is None or record.fs == fs:
        return dataclasses.replace(record, source_fs=record.fs)
    ratio = fs / record.fs
    signal = np.stack(
        [wfdb.processing.resample_sig(lead.astype(np.float64), record.fs, fs)[0] for lead in record.signal]
    ).astype(np.float32)
    log.info("%s: resampled from %g Hz to %g Hz", record.name, record.fs, fs)
    return dataclasses.replace(
        record,
        signal=signal,
        fs=float(fs),
        ann_sample=np.round(record.ann_sample * ratio).astype(np.int64),
        ann_until=None if record.ann_until is None else int(round(record.ann_until * ratio)),
        source_fs=record.fs,
    )


def record_from_array(
    name: str,
    signal: np.ndarray,
    fs: float,
    leads: Sequence[str],
    lead: Lead | Sequence[Lead] = 0,
    to_fs: float | None = None,
    band: tuple[float, float] | None = None,
    standardize: bool = True,
) -> Record:
    """A record from samples in memory (``signal`` (leads, samples), physical units, at ``fs`` Hz, one name per lead):
    the chosen leads band-passed and standardized as ``read_record`` does a file's, then resampled to ``to_fs``.
    The NumPy-array path of the Python API and the EDF and CSV readers."""
    signal = np.asarray(signal)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise RecordError(f"{name}: signal of shape {signal.shape} for {len(leads)} lead names; give (leads, samples)")
    if not fs > 0:
        raise RecordError(f"{name}: sampling rate {fs!r}; give the rate in Hz (> 0)")
    channels = select_leads(list(leads), lead, name)
    out = np.empty((len(channels), signal.shape[1]), dtype=np.float32)
    for i, channel in enumerate(channels):
        where = f"{name}: lead {leads[channel]}"
        out[i] = prepared_lead(signal[channel].astype(np.float32), float(fs), band, where, standardize)
    empty = np.empty(0, dtype=np.int64)
    names = tuple(str(leads[c]) for c in channels)
    return at_rate(Record(name, out, names, float(fs), empty, np.empty(0, dtype="<U2")), to_fs)


def read_edf(path: Path) -> tuple[np.ndarray, float, list[str]]:
    """The ECG-rate signals of an EDF/EDF+/BDF file (pyedflib): (leads, samples), their rate, their labels.
    Signals at another rate than the first one (e.g. accelerometer channels) are left out."""
    try:
        import pyedflib
    except ImportError as err:
        raise RecordError(f"{path}: reading EDF needs pyedflib: pip install 'ecg-lightning[edf]'") from err
    try:
        with pyedflib.EdfReader(str(path)) as edf:
            rates = [float(edf.getSampleFrequency(i)) for i in range(edf.signals_in_file)]
            keep = [i for i, r in enumerate(rates) if r == rates[0]]
            labels = [edf.getLabel(i).strip() for i in keep]
            signal = np.stack([edf.readSignal(i) for i in keep])
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: not a readable EDF/BDF file ({err})") from err
    return signal, rates[0], labels


def read_csv_samples(path: Path, fs: float | None) -> tuple[np.ndarray, float, list[str]]:
    """A CSV of samples, one column per lead with a header row of lead names (a ``time`` column is ignored), at
    ``fs`` Hz (required: a CSV does not say its rate)."""
    if fs is None:
        raise RecordError(f"{path}: a CSV of samples does not say its sampling rate; give fs=<Hz>")
    try:
        with path.open() as f:
            header = [h.strip() for h in f.readline().strip().split(",")]
        values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: not a CSV of numbers with a header row of lead names ({err})") from err
    if values.shape[1] != len(header):
        raise RecordError(f"{path}: {len(header)} names in the header row, {values.shape[1]} columns of numbers")
    keep = [i for i, h in enumerate(header) if h.lower() not in ("time", "time_s", "t")]
    return values[:, keep].T, float(fs), [header[i] for i in keep]


# files of samples that say nothing about beats (read into memory, then as an array); anything else is WFDB
SAMPLE_FILES = frozenset({".edf", ".bdf", ".csv"})


def read_any(
    path: Path,
    lead: Lead | Sequence[Lead] = 0,
    annotation: str | None = "atr",
    fs: float | None = None,
    band: tuple[float, float] | None = None,
    file_fs: float | None = None,
    standardize: bool = True,
) -> Record:
    """A WFDB record (path without extension), or an EDF/EDF+/BDF file, or a CSV of samples (``file_fs`` Hz),
    read as ``read_record`` reads WFDB: chosen leads, band-passed, standardized, at ``fs`` Hz."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAMPLE_FILES:
        return read_record(path, lead, annotation, fs, band, standardize)
    if not path.is_file():
        raise RecordError(f"{path}: file not found")
    signal, rate, labels = read_edf(path) if suffix != ".csv" else read_csv_samples(path, file_fs)
    return record_from_array(path.stem, signal, rate, labels, lead, fs, band, standardize)


# annotations ending more than this long before the signal does are reported (MIT-BIH's end within 2 s)
ANNOTATION_GAP_S = 60.0


def annotation_end(ann_path: Path, ann_sample: np.ndarray, n_samples: int, fs: float) -> int | None:
    """Where the annotations of a record stop covering it, or None when they cover it all (logged when not).

    A WFDB annotation file ends with a zero word (two zero bytes); a file without it was cut short (an interrupted
    copy or download), and wfdb reads what is there without a word. Annotations that stop more than
    ``ANNOTATION_GAP_S`` before the signal ends are reported too.
    """
    with ann_path.open("rb") as f:
        f.seek(max(0, ann_path.stat().st_size - 2))
        cut_short = f.read() != b"\x00\x00"
    last = int(ann_sample.max()) if len(ann_sample) else 0
    gap_s = (n_samples - last) / fs
    if not cut_short and gap_s <= ANNOTATION_GAP_S:
        return None
    why = (
        "the file ends without its end-of-file marker (cut short?)" if cut_short else f"none in the last {gap_s:.0f} s"
    )
    log.warning(
        "%s: %s; annotations stop at %.1f s of the record's %.1f s: beats after that are not annotated",
        ann_path,
        why,
        last / fs,
        n_samples / fs,
    )
    return last


def read_source(
    source: RecordSource, fs: float, band: tuple[float, float] | None = None, standardize: bool = True
) -> Record:
    """One record of a database, as its source says to read it, resampled to ``fs`` Hz."""
    return read_record(source.path, source.lead, source.annotation, fs, band, standardize)


def read_database(
    sources: Sequence[RecordSource], fs: float, band: tuple[float, float] | None = None, standardize: bool = True
) -> RecordSet:
    """Read every record (with progress) into one RecordSet in memory, resampled to ``fs`` Hz."""
    progress = tqdm(sources, desc="Reading records", unit="record", leave=False)
    records = [read_source(s, fs, band, standardize) for s in progress]
    return RecordSet.from_records(records, [s.database for s in sources])
