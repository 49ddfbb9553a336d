"""On-disk cache of a read RecordSet, so every setup after the first skips the WFDB parsing.

The cache key covers everything that shapes the cached arrays (record files' sizes and mtimes, lead,
sampling rate, band-pass, format version); labelling, windows and splits are cheap and computed from it at setup.
Entries are written to a temporary folder and renamed into place, so an interrupted write leaves nothing; on
load each is checked against its metadata (file fingerprints, shapes), and a damaged one is rebuilt.
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

from ecg_lightning.data.records import Lead, RecordSet, read_database

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # 2: signal is (n_leads, samples); 3: file fingerprints in meta.json
_ARRAYS = ("offsets", "ann_record", "ann_sample", "ann_symbol")
_FILES = ("signal.npy", "index.npz")


def cache_key(
    root: Path, names: list[str], lead: Lead | list[Lead], fs: float, band: tuple[float, float] | None = None
) -> str:
    files = {}
    for name in names:
        for path in sorted(root.glob(f"{name}.*")):
            stat = path.stat()
            files[path.name] = (stat.st_size, stat.st_mtime_ns)
    spec = {
        "version": CACHE_VERSION,
        "root": str(root.resolve()),
        "names": names,
        "lead": lead,
        "fs": fs,
        "files": files,
    }
    if band is not None:
        spec["band"] = [float(f) for f in band]
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


def save(records: RecordSet, entry: Path) -> None:
    """Write ``records`` to ``entry`` atomically (temporary folder, then rename), with each file's fingerprint."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=f".{entry.name}-"))
    try:
        np.save(tmp / "signal.npy", records.signal)
        np.savez(tmp / "index.npz", **{k: getattr(records, k) for k in _ARRAYS})
        meta = {
            "names": records.names,
            "leads": records.leads,
            "fs": records.fs,
            "files": {name: fingerprint(tmp / name) for name in _FILES},
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, entry)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, OSError) and (entry / "meta.json").is_file():
            return  # another process cached the same records first; its entry is as good as ours
        raise


class DamagedEntry(Exception):
    """A cache entry that cannot be trusted; it is rebuilt."""


def load(entry: Path) -> RecordSet:
    """Load a cache entry after checking it against its metadata; the signal is memory-mapped (read-only)."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        changed = [name for name, expected in meta["files"].items() if fingerprint(entry / name) != expected]
        if changed:
            raise DamagedEntry(f"{', '.join(changed)} changed since it was written")
        with np.load(entry / "index.npz") as index:
            arrays = {k: index[k] for k in _ARRAYS}
        records = RecordSet(
            names=tuple(meta["names"]),
            leads=tuple(tuple(leads) for leads in meta["leads"]),
            fs=float(meta["fs"]),
            signal=np.load(entry / "signal.npy", mmap_mode="r"),
            **arrays,
        )
    except DamagedEntry:
        raise
    except Exception as err:  # cut JSON, a missing or truncated file, a format np.load rejects
        raise DamagedEntry(f"{type(err).__name__}: {err}") from err
    if records.signal.shape[1] != records.offsets[-1] or len(records.offsets) != len(records.names) + 1:
        raise DamagedEntry("the signal and the index do not agree")
    return records


def load_or_read(
    root: Path,
    names: list[str],
    lead: Lead | list[Lead],
    fs: float,
    cache_dir: Path | None,
    band: tuple[float, float] | None = None,
) -> RecordSet:
    """The RecordSet of ``names`` in ``root``: from the cache when valid, else read and cached."""
    if cache_dir is None:
        return read_database(root, names, lead, fs, band)
    entry = Path(cache_dir) / cache_key(root, names, lead, fs, band)
    if entry.is_dir():
        try:
            log.debug("Loading records from cache %s", entry)
            return load(entry)
        except DamagedEntry as err:
            log.warning("Record cache %s is damaged (%s); reading the records again", entry, err)
            shutil.rmtree(entry, ignore_errors=True)
    records = read_database(root, names, lead, fs, band)
    try:
        save(records, entry)
        log.info("Cached %d records in %s", len(names), entry)
    except OSError as err:  # a read-only cache must not stop training
        log.warning("Could not write the record cache %s (%s); continuing without it", entry, err)
    return records
