"""On-disk store of read records, built one record at a time, so memory does not grow with the database.

Records (of one database or several) are read one by one and appended to ``signal.bin``, a raw time-major
(samples, leads) array that is memory-mapped afterwards (float32, or float16 to halve the disk); annotations and
record offsets go to ``index.npz``; ``meta.json`` (names, databases, leads, header comments, rate, shape and file
fingerprints) is written last. Setup and training then touch only the pages they use. The store's key covers
everything that shapes it (every record's database, folder, lead and annotation file; the files' sizes and mtimes,
from one scan of each folder; sampling rate, band-pass, storage type, format version); labelling, windows and
splits are computed from it at setup. A store is built in a temporary folder and renamed into place, so an
interrupted build leaves nothing; on load it is checked against its metadata, and a damaged one is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ecg_lightning.data.records import RecordError, RecordSet, RecordSource, read_database, read_source

log = logging.getLogger(__name__)

CACHE_VERSION = 5  # 2: (n_leads, samples); 3: file fingerprints; 4: appended store; 5: several databases
_ARRAYS = ("offsets", "ann_record", "ann_sample", "ann_symbol")
_FILES = ("signal.bin", "index.npz")
DTYPES = ("float32", "float16")


def record_files(root: Path, names: list[str]) -> dict[str, tuple[int, int]]:
    """Size and mtime of every file of the named records (``<name>.*``), from one scan of ``root``.

    One ``os.scandir`` of the folder instead of a glob per record: linear in the folder's files, where a glob per
    record is records x files (11,000 records of Icentia11k: 33,000 files scanned once, not 11,000 times).
    Names with a sub-folder (``p00/p00001``) scan each sub-folder once.
    """
    wanted: dict[Path, set[str]] = {}
    for name in names:
        path = Path(name)
        wanted.setdefault(path.parent, set()).add(path.name)
    files = {}
    for folder, stems in wanted.items():
        with os.scandir(root / folder) as entries:
            for entry in entries:
                if entry.name.split(".", 1)[0] in stems and entry.is_file():
                    stat = entry.stat()
                    files[str(folder / entry.name)] = (stat.st_size, stat.st_mtime_ns)
    return files


def cache_key(
    sources: list[RecordSource],
    fs: float,
    band: tuple[float, float] | None = None,
    dtype: str = "float32",
    standardize: bool = True,
) -> str:
    """What shapes the store: every record's database, folder, name, lead(s) and annotation file; the files' sizes
    and mtimes (one scan per folder); the sampling rate, band-pass, standardization and storage type."""
    roots: dict[Path, list[str]] = {}
    for source in sources:
        roots.setdefault(Path(source.root), []).append(source.name)
    folder = {root: i for i, root in enumerate(roots)}
    spec = {
        "version": CACHE_VERSION,
        "records": [[s.database, folder[Path(s.root)], s.name, s.lead, s.annotation] for s in sources],
        "roots": [[str(root.resolve()), record_files(root, names)] for root, names in roots.items()],
        "fs": fs,
    }
    if band is not None:
        spec["band"] = [float(f) for f in band]
    if dtype != "float32":
        spec["dtype"] = dtype
    if not standardize:  # only when off: the stores of standardized records keep their keys
        spec["standardize"] = False
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def fingerprint(path: Path, blocks: int = 64, block_size: int = 4096) -> str:
    """A cheap content checksum: BLAKE2 of the size and ``blocks`` evenly spaced 4 KiB blocks (256 KiB read, ~1 ms,
    instead of hashing the whole signal at every setup). It catches truncation and overwrites touching a sampled
    block, not a change confined to unsampled bytes."""
    size = path.stat().st_size
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    with path.open("rb") as f:
        for offset in np.linspace(0, max(size - block_size, 0), blocks).astype(np.int64):
            f.seek(int(offset))
            digest.update(f.read(block_size))
    return digest.hexdigest()


def build(
    sources: list[RecordSource],
    fs: float,
    entry: Path,
    band: tuple[float, float] | None = None,
    dtype: str = "float32",
    standardize: bool = True,
) -> None:
    """Read the records one at a time into the store ``entry`` (atomically: temporary folder, then rename).

    Memory holds one record and the annotations, never the database's signal.
    """
    if dtype not in DTYPES:
        raise ValueError(f"cache dtype {dtype!r}; choose one of {DTYPES}")
    if not sources:
        raise RecordError("no records to build a database from")
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
    try:
        lengths, leads, samples, symbols, comments, rate, n_leads = [], [], [], [], [], None, None
        with (tmp / "signal.bin").open("wb") as out:
            for source in tqdm(sources, desc="Reading records", unit="record", leave=False):
                record = read_source(source, fs, band, standardize)
                if n_leads not in (None, record.signal.shape[0]):
                    raise RecordError(
                        f"{source.path}: {record.signal.shape[0]} leads where others have {n_leads}; "
                        f"give every database as many leads (data.catalog.{source.database}.lead)"
                    )
                rate, n_leads = record.fs, record.signal.shape[0]
                np.ascontiguousarray(record.signal.T, dtype=dtype).tofile(out)  # appended, time-major
                lengths.append(record.signal.shape[1])
                leads.append(record.leads)
                samples.append(record.ann_sample)
                symbols.append(record.ann_symbol)
                comments.append(record.comments)
        np.savez(
            tmp / "index.npz",
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            ann_record=np.repeat(np.arange(len(sources), dtype=np.int32), [len(a) for a in samples]),
            ann_sample=np.concatenate(samples).astype(np.int64),
            ann_symbol=np.concatenate(symbols).astype("<U2"),
        )
        meta = {
            "names": [s.name for s in sources],
            "databases": [s.database for s in sources],
            "comments": comments,
            "leads": leads,
            "fs": rate,
            "dtype": dtype,
            "shape": [int(sum(lengths)), n_leads],
            "files": {name: fingerprint(tmp / name) for name in _FILES},
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, entry)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and (entry / "meta.json").is_file():
            return  # another process built the same store first; its entry is as good as ours
        raise


class DamagedEntry(Exception):
    """A cache entry that cannot be trusted; it is rebuilt."""


def load(entry: Path) -> RecordSet:
    """Open a store after checking it against its metadata; the signal is memory-mapped (read-only), as a
    (leads, samples) view of the time-major file."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        changed = [name for name, expected in meta["files"].items() if fingerprint(entry / name) != expected]
        if changed:
            raise DamagedEntry(f"{', '.join(changed)} changed since it was written")
        with np.load(entry / "index.npz") as index:
            arrays = {k: index[k] for k in _ARRAYS}
        signal = np.memmap(entry / "signal.bin", dtype=meta["dtype"], mode="r", shape=tuple(meta["shape"]))
        records = RecordSet(
            names=tuple(meta["names"]),
            leads=tuple(tuple(leads) for leads in meta["leads"]),
            fs=float(meta["fs"]),
            signal=signal.T,
            **arrays,
            databases=tuple(meta["databases"]),
            comments=tuple(tuple(c) for c in meta["comments"]),
        )
    except DamagedEntry:
        raise
    except Exception as err:  # cut JSON, a missing or truncated file, a format np.load rejects
        raise DamagedEntry(f"{type(err).__name__}: {err}") from err
    if records.signal.shape[1] != records.offsets[-1] or len(records.offsets) != len(records.names) + 1:
        raise DamagedEntry("the signal and the index do not agree")
    return records


def load_or_read(
    sources: list[RecordSource],
    fs: float,
    cache_dir: Path | None,
    band: tuple[float, float] | None = None,
    dtype: str = "float32",
    standardize: bool = True,
) -> RecordSet:
    """The RecordSet of ``sources``: from the store when valid, else built (then opened) from the records.

    Without ``cache_dir`` (or where it cannot be written) the records are read into memory instead.
    """
    if cache_dir is None:
        return read_database(sources, fs, band, standardize)
    entry = Path(cache_dir) / cache_key(sources, fs, band, dtype, standardize)
    if entry.is_dir():
        try:
            log.debug("Loading records from cache %s", entry)
            return load(entry)
        except DamagedEntry as err:
            log.warning("Record cache %s is damaged (%s); reading the records again", entry, err)
            shutil.rmtree(entry, ignore_errors=True)
    try:
        build(sources, fs, entry, band, dtype, standardize)
    except OSError as err:  # a read-only or full cache must not stop training
        log.warning("Could not write the record cache %s (%s); reading the records into memory", entry, err)
        return read_database(sources, fs, band, standardize)
    log.info("Cached %d records in %s", len(sources), entry)
    return load(entry)
