import os

import numpy as np
import pytest

from ecg_lightning.data import cache
from ecg_lightning.data.records import read_database

NAMES = ["100", "104", "108"]


def test_cold_then_warm_give_the_same_records(tiny_db, tmp_path):
    cold = cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    entries = list(tmp_path.iterdir())
    assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
    warm = cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    assert isinstance(warm.signal, np.memmap)
    for field in ("signal", "offsets", "ann_record", "ann_sample", "ann_symbol"):
        np.testing.assert_array_equal(getattr(warm, field), getattr(cold, field))
    assert (warm.names, warm.leads, warm.fs) == (cold.names, cold.leads, cold.fs)


def test_key_follows_the_settings_and_the_files(tiny_db, tmp_path):
    key = cache.cache_key(tiny_db, NAMES, 0, 360.0)
    assert cache.cache_key(tiny_db, NAMES, 0, 360.0) == key
    assert cache.cache_key(tiny_db, NAMES, "MLII", 360.0) != key
    assert cache.cache_key(tiny_db, NAMES[:2], 0, 360.0) != key
    assert cache.cache_key(tiny_db, NAMES, 0, 250.0) != key
    header = tiny_db / "104.hea"
    stat = header.stat()
    os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert cache.cache_key(tiny_db, NAMES, 0, 360.0) != key
    finally:
        os.utime(header, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_interrupted_write_leaves_nothing(tiny_db, tmp_path, monkeypatch):
    records = read_database(tiny_db, NAMES, 0, 360.0)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cache.save(records, tmp_path / "entry")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_cache_still_returns_records(tiny_db, tmp_path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(cache, "save", no_space)
    records = cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    assert records.names == tuple(NAMES)


def test_key_changes_with_every_setting_that_shapes_the_cache(tiny_db):
    base = cache.cache_key(tiny_db, NAMES, 0, 360.0)
    variants = [
        cache.cache_key(tiny_db, NAMES, 0, 360.0, (0.5, 40.0)),
        cache.cache_key(tiny_db, NAMES, 0, 360.0, (0.5, 45.0)),
        cache.cache_key(tiny_db, NAMES, 1, 360.0),
        cache.cache_key(tiny_db, NAMES, ["MLII", "V1"], 360.0),
        cache.cache_key(tiny_db, NAMES, ["V1", "MLII"], 360.0),
        cache.cache_key(tiny_db, list(reversed(NAMES)), 0, 360.0),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_band_passed_and_two_lead_entries_round_trip(tiny_db, tmp_path):
    cold = cache.load_or_read(tiny_db, NAMES, ["MLII", "V1"], 360.0, tmp_path, (0.5, 40.0))
    warm = cache.load_or_read(tiny_db, NAMES, ["MLII", "V1"], 360.0, tmp_path, (0.5, 40.0))
    assert warm.signal.shape == cold.signal.shape == (2, cold.offsets[-1])
    np.testing.assert_array_equal(warm.signal, cold.signal)
    assert warm.leads == cold.leads == (("MLII", "V1"),) * 3
    plain = cache.load_or_read(tiny_db, NAMES, ["MLII", "V1"], 360.0, tmp_path)
    assert not np.allclose(plain.signal, cold.signal) and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("damage", ["truncate signal", "truncate index", "cut meta", "same-size overwrite", "delete"])
def test_damaged_entries_are_rebuilt_with_a_warning(tiny_db, tmp_path, caplog, damage):
    good = cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    entry = next(tmp_path.iterdir())
    signal, index, meta = entry / "signal.npy", entry / "index.npz", entry / "meta.json"
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
        again = cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    assert "is damaged" in caplog.text and "reading the records again" in caplog.text
    np.testing.assert_array_equal(again.signal, good.signal)
    caplog.clear()
    with caplog.at_level("WARNING"):  # rebuilt: the next load is clean
        cache.load_or_read(tiny_db, NAMES, 0, 360.0, tmp_path)
    assert "damaged" not in caplog.text
