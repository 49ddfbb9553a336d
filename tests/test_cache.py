import os

import numpy as np
import pytest

from ecg_lightning.data import cache
from ecg_lightning.data.records import read_database, read_record, read_source, record_sources

NAMES = ["100", "104", "108"]


def test_cold_then_warm_give_the_same_records(tiny_db, tmp_path):
    cold = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    warm = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    assert isinstance(warm.signal, np.memmap)
    for field in ("signal", "offsets", "ann_record", "ann_sample", "ann_symbol"):
        np.testing.assert_array_equal(getattr(warm, field), getattr(cold, field))
    assert (warm.names, warm.leads, warm.fs) == (cold.names, cold.leads, cold.fs)


def test_key_follows_the_settings_and_the_files(tiny_db, tmp_path):
    key = cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0)
    assert cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0) == key
    assert cache.cache_key(record_sources("db", tiny_db, NAMES, "MLII"), 360.0) != key
    assert cache.cache_key(record_sources("db", tiny_db, NAMES[:2], 0), 360.0) != key
    assert cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 250.0) != key
    header = tiny_db / "104.hea"
    stat = header.stat()
    os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0) != key
    finally:
        os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_interrupted_build_leaves_nothing(tiny_db, tmp_path, monkeypatch):
    """Interrupted after the first record was appended: no entry, no temporary folder; the next setup builds it."""
    reads = []

    def interrupted(source, *args):
        if reads:
            raise KeyboardInterrupt
        reads.append(source)
        return read_source(source, *args)

    monkeypatch.setattr(cache, "read_source", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    records = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    np.testing.assert_array_equal(records.signal, read_database(record_sources("db", tiny_db, NAMES, 0), 360.0).signal)


def test_unwritable_cache_still_returns_records(tiny_db, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(cache, "build", no_space)
    records = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    assert records.names == tuple(NAMES)


def test_key_changes_with_every_setting_that_shapes_the_cache(tiny_db):
    base = cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0)
    variants = [
        cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0, (0.5, 40.0)),
        cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0, (0.5, 45.0)),
        cache.cache_key(record_sources("db", tiny_db, NAMES, 1), 360.0),
        cache.cache_key(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0),
        cache.cache_key(record_sources("db", tiny_db, NAMES, ["V1", "MLII"]), 360.0),
        cache.cache_key(record_sources("db", tiny_db, list(reversed(NAMES)), 0), 360.0),
        cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0, standardize=False),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_band_passed_and_two_lead_entries_round_trip(tiny_db, tmp_path):
    cold = cache.load_or_read(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0, tmp_path, (0.5, 40.0))
    warm = cache.load_or_read(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0, tmp_path, (0.5, 40.0))
    assert warm.signal.shape == cold.signal.shape == (2, cold.offsets[-1])
    np.testing.assert_array_equal(warm.signal, cold.signal)
    assert warm.leads == cold.leads == (("MLII", "V1"),) * 3
    plain = cache.load_or_read(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0, tmp_path)
    assert not np.allclose(plain.signal, cold.signal) and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("damage", ["truncate signal", "truncate index", "cut meta", "same-size overwrite", "delete"])
def test_damaged_entries_are_rebuilt_with_a_warning(tiny_db, tmp_path, caplog, damage):
    good = np.array(
        cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path).signal
    )  # in memory: the file is damaged
    entry = next(tmp_path.iterdir())
    signal, index, meta = entry / "signal.bin", entry / "index.npz", entry / "meta.json"
    if damage == "truncate signal":
        signal.write_bytes(signal.read_bytes()[:5000])
    elif damage == "truncate index":
        index.write_bytes(index.read_bytes()[:100])
    elif damage == "cut meta":
        meta.write_text(meta.read_text()[:40])
    elif damage == "same-size overwrite":
        raw = bytearray(signal.read_bytes())
        raw[200:] = np.random.default_rng(0).integers(0, 255, len(raw) - 200, dtype=np.uint8).tobytes()
        signal.write_bytes(bytes(raw))
    else:
        signal.unlink()
    with caplog.at_level("WARNING"):
        again = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    assert "is damaged" in caplog.text and "reading the records again" in caplog.text
    np.testing.assert_array_equal(again.signal, good)
    caplog.clear()
    with caplog.at_level("WARNING"):  # rebuilt: the next load is clean
        cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path)
    assert "damaged" not in caplog.text


def test_the_store_is_appended_record_by_record_and_reopens_equal_to_an_in_memory_read(tiny_db, tmp_path):
    """signal.bin holds each record's samples, time-major, one after the other; reopened it equals a plain read."""
    plain = read_database(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0)
    stored = cache.load_or_read(record_sources("db", tiny_db, NAMES, ["MLII", "V1"]), 360.0, tmp_path)
    entry = next(tmp_path.iterdir())
    raw = np.fromfile(entry / "signal.bin", dtype=np.float32).reshape(-1, 2)  # independent of cache.load
    for i, name in enumerate(NAMES):
        one = read_record(tiny_db / name, lead=["MLII", "V1"])
        start = plain.offsets[i]
        np.testing.assert_array_equal(raw[start : start + one.signal.shape[1]], one.signal.T)
    np.testing.assert_array_equal(stored.signal, plain.signal)
    for field in ("offsets", "ann_record", "ann_sample", "ann_symbol"):
        np.testing.assert_array_equal(getattr(stored, field), getattr(plain, field))


def test_float16_store_halves_the_disk_and_rounds_only(tiny_db, tmp_path):
    full = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path / "a")
    half = cache.load_or_read(record_sources("db", tiny_db, NAMES, 0), 360.0, tmp_path / "b", dtype="float16")
    size = {p.parent.parent.name: p.stat().st_size for p in tmp_path.glob("*/*/signal.bin")}
    assert size["b"] * 2 == size["a"] and half.signal.dtype == np.float16
    np.testing.assert_allclose(half.signal.astype(np.float32), full.signal, rtol=1e-3, atol=1e-3)
    assert cache.cache_key(record_sources("db", tiny_db, NAMES, 0), 360.0, dtype="float16") != cache.cache_key(
        record_sources("db", tiny_db, NAMES, 0), 360.0
    )


def test_the_key_scans_the_folder_once_however_many_records(tmp_path, monkeypatch):
    """A folder of 3,000 records: one scandir, no glob per record, and only the named records' files count."""
    for i in range(3000):
        for ext in ("hea", "dat", "atr"):
            (tmp_path / f"r{i:05d}.{ext}").write_bytes(b"x" * (i % 7))
    scans = []
    real = os.scandir
    monkeypatch.setattr(cache.os, "scandir", lambda path: scans.append(path) or real(path))
    monkeypatch.setattr(type(tmp_path), "glob", lambda *a, **k: pytest.fail("globbed per record"))
    names = [f"r{i:05d}" for i in range(0, 3000, 2)]
    files = cache.record_files(tmp_path, names)
    assert len(scans) == 1 and len(files) == 3 * 1500
    assert files["r00004.dat"][0] == 4 and "r00001.hea" not in files
    assert cache.cache_key(record_sources("db", tmp_path, names, 0), 360.0) != cache.cache_key(
        record_sources("db", tmp_path, names[:-1], 0), 360.0
    )
