import logging
from pathlib import Path

import numpy as np
import pytest
import wfdb

from conftest import FRACTIONS, write_record
from ecg_lightning.data import records as records_mod
from ecg_lightning.data.records import RecordError, ensure_database, list_records, read_database, read_record


def test_read_record_standardizes_the_chosen_lead(tiny_db):
    raw = wfdb.rdrecord(str(tiny_db / "104")).p_signal
    for channel in (0, 1):
        rec = read_record(tiny_db / "104", lead=channel)
        expected = (raw[:, channel] - raw[:, channel].mean()) / raw[:, channel].std()
        assert rec.signal.dtype == np.float32
        np.testing.assert_allclose(rec.signal, expected, atol=1e-5)
        assert abs(rec.signal.mean()) < 1e-5 and abs(rec.signal.std() - 1) < 1e-4
    assert read_record(tiny_db / "104", lead="V1").lead == "V1"


def test_annotations_are_read(tiny_db):
    rec = read_record(tiny_db / "100")
    ann = wfdb.rdann(str(tiny_db / "100"), "atr")
    np.testing.assert_array_equal(rec.ann_sample, ann.sample)
    assert list(rec.ann_symbol) == ann.symbol


def test_lead_by_name_with_swapped_and_missing_leads(tmp_path, caplog):
    rng = np.random.default_rng(1)
    write_record(tmp_path, "swapped", 0.1, rng, sig_name=("V5", "MLII"))
    write_record(tmp_path, "nomlii", 0.1, rng, sig_name=("V5", "V2"))
    raw = wfdb.rdrecord(str(tmp_path / "swapped")).p_signal[:, 1]
    rec = read_record(tmp_path / "swapped", lead="MLII")
    assert rec.lead == "MLII"
    np.testing.assert_allclose(rec.signal, (raw - raw.mean()) / raw.std(), atol=1e-5)
    with caplog.at_level(logging.WARNING):
        assert read_record(tmp_path / "nomlii", lead="MLII").lead == "V5"
    assert "no MLII lead" in caplog.text and "nomlii" in caplog.text


def test_other_sampling_rate_is_resampled(tmp_path):
    write_record(tmp_path, "r250", 0.2, np.random.default_rng(2), fs=250, duration_s=20)
    ann = wfdb.rdann(str(tmp_path / "r250"), "atr")
    rec = read_record(tmp_path / "r250", fs=360)
    assert rec.fs == 360 and len(rec.signal) == 20 * 360
    np.testing.assert_allclose(rec.ann_sample, np.round(ann.sample * 360 / 250))


def test_missing_header_dat_and_nan_give_clear_errors(tmp_path, tiny_db):
    with pytest.raises(RecordError, match="header not found"):
        read_record(tmp_path / "nope")
    rng = np.random.default_rng(3)
    write_record(tmp_path, "nodat", 0.1, rng)
    (tmp_path / "nodat.dat").unlink()
    with pytest.raises(RecordError, match=r"nodat\.dat.*missing"):
        read_record(tmp_path / "nodat")
    signal = np.random.default_rng(4).normal(size=(3600, 1))
    signal[100:110] = np.nan
    wfdb.wrsamp("withnan", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"], write_dir=str(tmp_path))
    with pytest.raises(RecordError, match="NaN"):
        read_record(tmp_path / "withnan", annotation=None)


def test_truncated_dat_is_reported(tmp_path):
    write_record(tmp_path, "trunc", 0.1, np.random.default_rng(5))
    dat = tmp_path / "trunc.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(RecordError, match="trunc"):
        read_record(tmp_path / "trunc")


def test_list_records_uses_RECORDS_order_or_headers(tiny_db, tmp_path):
    assert list_records(tiny_db) == list(FRACTIONS)
    write_record(tmp_path, "b", 0.1, np.random.default_rng(6))
    write_record(tmp_path, "a", 0.1, np.random.default_rng(6))
    assert list_records(tmp_path) == ["a", "b"]


def test_read_database_concatenates_records(tiny_db):
    names = ["100", "105", "201"]
    db = read_database(tiny_db, names, lead=0, fs=360)
    assert db.names == tuple(names)
    for i, name in enumerate(names):
        rec = read_record(tiny_db / name)
        np.testing.assert_array_equal(db.signal[db.offsets[i] : db.offsets[i + 1]], rec.signal)
        np.testing.assert_array_equal(db.ann_sample[db.ann_record == i], rec.ann_sample)


def test_empty_root_offline_fails_with_instructions(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(records_mod.wfdb, "dl_database", offline)
    with pytest.raises(RecordError, match=r"Could not download mitdb.*Put the MIT-BIH files .* in "):
        ensure_database(tmp_path / "empty", download=True)
    assert not (tmp_path / "empty").exists()  # the failed download leaves no folder behind
    with pytest.raises(RecordError, match="data.download=false"):
        ensure_database(tmp_path / "empty", download=False)


def test_download_fetches_record_by_record(tmp_path, monkeypatch):
    calls = []

    def fake_dl(db, dl_dir, records):
        calls.append((db, records))
        write_record(Path(dl_dir), records[0], 0.1, np.random.default_rng(7), duration_s=3)

    monkeypatch.setattr(records_mod, "MITDB_RECORDS", ["100", "101", "102"])
    monkeypatch.setattr(records_mod.wfdb, "dl_database", fake_dl)
    assert ensure_database(tmp_path / "db", download=True) == ["100", "101", "102"]
    assert calls == [("mitdb", ["100"]), ("mitdb", ["101"]), ("mitdb", ["102"])]
    assert list_records(tmp_path / "db") == ["100", "101", "102"]
