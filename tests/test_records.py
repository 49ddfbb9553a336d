import logging
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import FRACTIONS, write_record

from ecg_lightning.data import records as records_mod
from ecg_lightning.data.records import (
    RecordError,
    ensure_database,
    list_records,
    read_database,
    read_record,
    record_sources,
)


def test_read_record_standardizes_the_chosen_lead(tiny_db):
    raw = wfdb.rdrecord(str(tiny_db / "104")).p_signal
    for channel in (0, 1):
        rec = read_record(tiny_db / "104", lead=channel)
        expected = (raw[:, channel] - raw[:, channel].mean()) / raw[:, channel].std()
        assert rec.signal.dtype == np.float32 and rec.signal.shape == (1, len(raw))
        np.testing.assert_allclose(rec.signal[0], expected, atol=1e-5)
        assert abs(rec.signal.mean()) < 1e-5 and abs(rec.signal.std() - 1) < 1e-4
    assert read_record(tiny_db / "104", lead="V1").leads == ("V1",)


def test_two_leads_are_two_standardized_channels(tiny_db):
    raw = wfdb.rdrecord(str(tiny_db / "104")).p_signal
    rec = read_record(tiny_db / "104", lead=["V1", "MLII"])
    assert rec.leads == ("V1", "MLII") and rec.signal.shape == (2, len(raw))
    expected = (raw - raw.mean(0)) / raw.std(0)
    np.testing.assert_allclose(rec.signal, expected[:, [1, 0]].T, atol=1e-5)
    # standardize itself works per lead on a (leads, samples) array, in pieces shorter than the record
    both = raw.T * np.array([[3.0], [0.5]]) + np.array([[2.0], [-1.0]])
    np.testing.assert_allclose(
        records_mod.standardize(both, piece=1000),
        (both - both.mean(1, keepdims=True)) / both.std(1, keepdims=True),
        atol=1e-5,
    )
    # no annotation file asked for: empty annotation arrays, not None
    bare = read_record(tiny_db / "104", annotation=None)
    assert bare.ann_sample.shape == bare.ann_symbol.shape == (0,) and bare.ann_symbol.dtype.kind == "U"


def test_lead_names_match_case_insensitively_and_through_equivalents(tmp_path, caplog):
    rng = np.random.default_rng(8)
    write_record(tmp_path, "twelve", 0.1, rng, sig_name=("i", "ii"))
    write_record(tmp_path, "holter", 0.1, rng, sig_name=("CM5", "MCL1"))
    raw = wfdb.rdrecord(str(tmp_path / "twelve")).p_signal
    with caplog.at_level(logging.DEBUG, logger="ecg_lightning.data.records"):
        assert read_record(tmp_path / "twelve", lead="MLII").leads == ("ii",)  # MLII = II, any case
        assert read_record(tmp_path / "twelve", lead="II").leads == ("ii",)
        assert read_record(tmp_path / "holter", lead=["mlii", "V1"]).leads == ("CM5", "MCL1")  # V1 = MCL1
    np.testing.assert_allclose(
        read_record(tmp_path / "twelve", lead="MLII").signal[0],
        (raw[:, 1] - raw[:, 1].mean()) / raw[:, 1].std(),
        atol=1e-5,
    )
    assert "holter: no mlii lead" in caplog.text and "twelve" not in caplog.text


def test_out_of_range_channel_is_a_clear_error(tiny_db):
    with pytest.raises(RecordError, match=r"no channel 2; choose data.lead in range"):
        read_record(tiny_db / "100", lead=2)


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
    assert rec.leads == ("MLII",)
    np.testing.assert_allclose(rec.signal[0], (raw - raw.mean()) / raw.std(), atol=1e-5)
    assert read_record(tmp_path / "swapped", lead=["MLII", "V1"]).leads == ("MLII", "V5")  # V1 absent: the other one
    with caplog.at_level(logging.DEBUG, logger="ecg_lightning.data.records"):
        assert read_record(tmp_path / "nomlii", lead="MLII").leads == ("V5",)
        assert read_record(tmp_path / "nomlii", lead=["MLII", "V1"]).leads == ("V5", "V2")  # as MIT-BIH 102/104
    assert "no MLII lead" in caplog.text and "nomlii" in caplog.text


def test_other_sampling_rate_is_resampled(tmp_path):
    write_record(tmp_path, "r250", 0.2, np.random.default_rng(2), fs=250, duration_s=20)
    ann = wfdb.rdann(str(tmp_path / "r250"), "atr")
    rec = read_record(tmp_path / "r250", fs=360)
    assert rec.fs == 360 and rec.signal.shape == (1, 20 * 360)
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
    wfdb.wrsamp(
        "withnan", fs=360, units=["mV"], sig_name=["MLII"], p_signal=signal, fmt=["16"], write_dir=str(tmp_path)
    )
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
    db = read_database(record_sources("db", tiny_db, names, 0), 360)
    assert db.names == tuple(names)
    for i, name in enumerate(names):
        rec = read_record(tiny_db / name)
        np.testing.assert_array_equal(db.signal[:, db.offsets[i] : db.offsets[i + 1]], rec.signal)
        np.testing.assert_array_equal(db.ann_sample[db.ann_record == i], rec.ann_sample)


def test_empty_root_offline_fails_with_instructions(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(records_mod.wfdb, "get_record_list", offline)
    monkeypatch.setattr(records_mod.wfdb, "dl_database", offline)
    with pytest.raises(
        RecordError,
        match=r"empty/data does not exist, and downloading mitdb failed.*ConnectionError.*Put the database's files "
        r".* \(or set MITDB_DIR=<folder>\)",
    ):
        ensure_database(tmp_path / "empty" / "data", download=True)
    assert not (tmp_path / "empty").exists()  # the failed download leaves no folder behind, parents included
    (tmp_path / "mine").mkdir()  # a folder the user made stays, even empty
    with pytest.raises(RecordError, match="mine has no records, and downloading mitdb failed"):
        ensure_database(tmp_path / "mine", download=True)
    assert (tmp_path / "mine").is_dir()
    with pytest.raises(RecordError) as err:
        ensure_database(tmp_path / "empty", download=False)
    assert str(err.value) == (
        f"No WFDB records in {tmp_path / 'empty'} and data.catalog.mitdb.download=false. Put the database's files "
        f"(RECORDS, *.hea, *.dat and the annotation files) in {tmp_path / 'empty'}, or point data.catalog.mitdb.root "
        f"at a folder that has them (or set MITDB_DIR=<folder>). They can be fetched with "
        f"wfdb.dl_database('mitdb', '{tmp_path / 'empty'}') on a machine with internet access."
    )


def test_download_fetches_record_by_record(tmp_path, monkeypatch):
    calls = []

    def fake_dl(db, dl_dir, records):
        calls.append((db, records))
        write_record(Path(dl_dir), records[0], 0.1, np.random.default_rng(7), duration_s=3)

    listed = []
    monkeypatch.setattr(records_mod.wfdb, "get_record_list", lambda db: listed.append(db) or ["I01", "I02", "I03"])
    monkeypatch.setattr(records_mod.wfdb, "dl_database", fake_dl)
    assert ensure_database(tmp_path / "db", download=True, db_name="incartdb") == ["I01", "I02", "I03"]
    assert listed == ["incartdb"]  # the record list comes from PhysioNet, not from a list in the code
    assert calls == [("incartdb", ["I01"]), ("incartdb", ["I02"]), ("incartdb", ["I03"])]
    assert list_records(tmp_path / "db") == ["I01", "I02", "I03"]
    with pytest.raises(RecordError, match="no PhysioNet name"):
        ensure_database(tmp_path / "other", download=True, db_name=None)


def test_band_pass_reading_is_a_zero_phase_second_order_butterworth(tiny_db):
    """The spec (FIELD-NOTES): 2nd-order Butterworth band-pass, zero-phase, before standardization."""
    import scipy.signal

    raw = wfdb.rdrecord(str(tiny_db / "105")).p_signal[:, 0]
    sos = scipy.signal.butter(2, [0.5, 40.0], btype="bandpass", fs=360, output="sos")
    filtered = scipy.signal.sosfiltfilt(sos, raw)
    rec = read_record(tiny_db / "105", band=(0.5, 40.0))
    np.testing.assert_allclose(rec.signal[0], (filtered - filtered.mean()) / filtered.std(), atol=1e-5)
    chunked = records_mod.bandpass(raw, 360, (0.5, 40.0), chunk_s=4.0, margin_s=10.0)  # 30 s in many pieces
    np.testing.assert_allclose(chunked, filtered, rtol=0, atol=1e-8)
    assert (
        chunked.dtype == np.float64
        and records_mod.bandpass(raw.astype(np.float32), 360, (0.5, 40.0)).dtype == np.float32
    )
    in_place = raw.copy()
    assert records_mod.bandpass(in_place, 360, (0.5, 40.0), chunk_s=4.0, margin_s=10.0, out=in_place) is in_place
    np.testing.assert_allclose(in_place, filtered, rtol=0, atol=1e-8)  # margins kept before being overwritten
    t = np.arange(7200) / 360
    slow, beat_band, fast = np.sin(2 * np.pi * 0.05 * t), np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 150 * t)
    out = records_mod.bandpass(np.stack([slow, beat_band, fast]), 360, (0.5, 40.0))
    middle = slice(720, -720)
    assert out[0, middle].std() < 0.02 and out[2, middle].std() < 0.05  # baseline wander and noise removed
    np.testing.assert_allclose(out[1, middle], beat_band[middle], atol=0.02)  # zero phase: no shift


def test_unstandardized_reading_keeps_the_band_passed_millivolts(tiny_db):
    """``data.standardize=false``: the same preparation without the division by the record's spread, from a file
    and from memory alike."""
    import scipy.signal

    raw = wfdb.rdrecord(str(tiny_db / "105")).p_signal[:, 0]
    filtered = scipy.signal.sosfiltfilt(scipy.signal.butter(2, [0.5, 40.0], "bandpass", fs=360, output="sos"), raw)
    rec = read_record(tiny_db / "105", band=(0.5, 40.0), standardize=False)
    np.testing.assert_allclose(rec.signal[0], filtered, atol=1e-5)
    assert abs(rec.signal[0].std() - 1) > 0.05  # not standardized after all
    mem = records_mod.record_from_array("105", raw[None], 360.0, ["MLII"], band=(0.5, 40.0), standardize=False)
    np.testing.assert_allclose(mem.signal[0], filtered, atol=1e-5)


def test_record_sets_refuse_mixed_rates_leads_and_emptiness():
    one = records_mod.Record("a", np.zeros((1, 10), np.float32), ("MLII",), 360.0, np.array([5]), np.array(["N"]))
    other_rate = records_mod.Record(
        "b", np.zeros((1, 10), np.float32), ("MLII",), 250.0, np.array([5]), np.array(["N"])
    )
    two_leads = records_mod.Record(
        "c", np.zeros((2, 10), np.float32), ("MLII", "V1"), 360.0, np.array([5]), np.array(["N"])
    )
    with pytest.raises(RecordError, match=r"different sampling rates \[250.0, 360.0\]"):
        records_mod.RecordSet.from_records([one, other_rate])
    with pytest.raises(RecordError, match=r"different numbers of leads \[1, 2\]"):
        records_mod.RecordSet.from_records([one, two_leads])
    with pytest.raises(RecordError, match="^No records to build a database from$"):
        records_mod.RecordSet.from_records([])


def test_a_single_record_set_keeps_the_records_own_float32_array():
    """predict's one (possibly 24-hour) recording: the set views its signal, no copy; several are concatenated."""
    signal = np.arange(20, dtype=np.float32).reshape(1, 20)
    one = records_mod.Record("a", signal, ("MLII",), 360.0, np.array([5]), np.array(["N"]))
    single = records_mod.RecordSet.from_records([one])
    assert single.signal.dtype == np.float32 and np.shares_memory(single.signal, signal)
    two = records_mod.RecordSet.from_records([one, one], ["db", "db"])
    assert two.signal.dtype == np.float32 and not np.shares_memory(two.signal, signal)
    np.testing.assert_array_equal(two.signal, np.concatenate([signal, signal], axis=1))
    assert two.databases == ("db", "db") and two.offsets.tolist() == [0, 20, 40]


@pytest.mark.parametrize("fs", [128, 250, 257])
def test_resampling_keeps_every_beat_inside_the_record(tmp_path, fs):
    write_record(tmp_path, f"r{fs}", 0.3, np.random.default_rng(fs), fs=fs, duration_s=12)
    ann = wfdb.rdann(str(tmp_path / f"r{fs}"), "atr")
    rec = read_record(tmp_path / f"r{fs}", fs=360)
    assert len(rec.ann_sample) == len(ann.sample) and rec.signal.shape[1] == 12 * 360
    assert (rec.ann_sample >= 0).all() and (rec.ann_sample < rec.signal.shape[1]).all()
    np.testing.assert_allclose(rec.ann_sample / 360, ann.sample / fs, atol=0.5 / 360)  # same times, within a sample


def test_header_without_length_reads_and_a_non_numeric_rate_is_refused(tmp_path):
    write_record(tmp_path, "nolen", 0.1, np.random.default_rng(12), duration_s=5)
    header = (tmp_path / "nolen.hea").read_text().splitlines()
    (tmp_path / "nolen.hea").write_text("\n".join(["nolen 2 360", *header[1:]]) + "\n")  # valid WFDB: no length
    rec = read_record(tmp_path / "nolen")
    assert rec.signal.shape == (1, 5 * 360)
    for first in ("nolen 2 360/10", "nolen 2 360/10(0) 1800", "# a comment first\nnolen 2 360"):
        (tmp_path / "nolen.hea").write_text("\n".join([first, *header[1:]]) + "\n")
        assert read_record(tmp_path / "nolen").fs == 360  # counter frequency and base counter value allowed
    (tmp_path / "nolen.hea").write_bytes(
        ("# caf\xe9 latin-1\n" + "\n".join(["nolen 2 360", *header[1:]]) + "\n").encode("latin-1")
    )
    assert read_record(tmp_path / "nolen").fs == 360
    for first in ("nolen 2 fast 1800", "nolen 2 fast", "# 360 is not here\nnolen 2 fast"):
        (tmp_path / "nolen.hea").write_text("\n".join([first, *header[1:]]) + "\n")
        with pytest.raises(RecordError) as err:
            read_record(tmp_path / "nolen")
        assert str(err.value) == (
            f"{tmp_path / 'nolen.hea'}: sampling rate 'fast' is not a number; fix the header's first line "
            "(record name, number of signals, sampling rate in Hz, ...)"
        )


def test_a_swapped_signal_file_fails_the_header_checksum(tmp_path):
    rng = np.random.default_rng(13)
    write_record(tmp_path, "one", 0.1, rng, duration_s=5)
    write_record(tmp_path, "two", 0.1, rng, duration_s=5)
    read_record(tmp_path / "one")  # intact: the checksums match
    (tmp_path / "one.dat").write_bytes((tmp_path / "two.dat").read_bytes())  # same size, another record's samples
    with pytest.raises(RecordError, match=r"one.dat: samples of lead MLII do not match the header's checksum"):
        read_record(tmp_path / "one")


def test_annotations_past_the_signal_are_left_out_with_a_warning(tmp_path, caplog):
    write_record(tmp_path, "short", 0.1, np.random.default_rng(14), duration_s=5)
    ann = wfdb.rdann(str(tmp_path / "short"), "atr")
    wfdb.wrann(
        "short", "atr", np.r_[ann.sample, 5 * 360 + 10, 9000], symbol=[*ann.symbol, "N", "V"], write_dir=str(tmp_path)
    )
    with caplog.at_level(logging.WARNING):
        rec = read_record(tmp_path / "short")
    np.testing.assert_array_equal(rec.ann_sample, ann.sample)
    assert "short.atr: 2 annotations lie outside the signal's 1800 samples (e.g. at 1810)" in caplog.text


def test_reading_in_pieces_equals_reading_at_once(tmp_path):
    write_record(tmp_path, "long", 0.2, np.random.default_rng(15), duration_s=20)
    meta = wfdb.rdheader(str(tmp_path / "long"))
    whole = records_mod.read_lead(tmp_path / "long", meta, 1, "V1", (0.5, 40.0))
    pieces = records_mod.read_lead(tmp_path / "long", meta, 1, "V1", (0.5, 40.0), piece_s=3.0)  # 7 pieces
    np.testing.assert_allclose(pieces, whole, rtol=0, atol=1e-6)
    raw = wfdb.rdrecord(str(tmp_path / "long")).p_signal[:, 1]
    assert pieces.dtype == np.float32
    into = np.zeros(len(raw), dtype=np.float32)
    assert records_mod.read_lead(tmp_path / "long", meta, 1, "V1", None, piece_s=3.0, out=into) is into
    raw_std = (raw - raw.mean()) / raw.std()
    np.testing.assert_allclose(into, raw_std, atol=1e-5)  # every piece in its place, checksum summed over pieces
    dat = tmp_path / "long.dat"
    data = bytearray(dat.read_bytes())
    middle = len(data) // 2 // 3 * 3
    data[middle : middle + 3] = bytes(b ^ 0x5A for b in data[middle : middle + 3])  # a damaged frame, mid-file
    dat.write_bytes(bytes(data))
    with pytest.raises(RecordError, match="do not match the header's checksum"):
        records_mod.read_lead(tmp_path / "long", meta, 1, "V1", None, piece_s=3.0)


def test_two_field_headers_and_unreadable_signals(tmp_path, monkeypatch):
    write_record(tmp_path, "short2", 0.1, np.random.default_rng(16), duration_s=5, fs=250)
    header = (tmp_path / "short2.hea").read_text().splitlines()
    (tmp_path / "short2.hea").write_text("\n".join(["short2 2", *header[1:]]) + "\n")  # no rate: WFDB's 250 Hz
    assert read_record(tmp_path / "short2").fs == 250

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(records_mod.wfdb, "rdrecord", broken)
    with pytest.raises(RecordError) as err:
        read_record(tmp_path / "short2")
    assert str(err.value) == (
        f"{tmp_path / 'short2'}: could not read the signal (ValueError: boom); is the .dat file complete?"
    )


def test_two_leads_band_passed_in_many_pieces_equal_the_whole():
    import scipy.signal

    x = np.random.default_rng(17).normal(size=(2, 360 * 40))
    sos = scipy.signal.butter(2, [0.5, 40.0], btype="bandpass", fs=360, output="sos")
    expected = scipy.signal.sosfiltfilt(sos, x, axis=-1)
    np.testing.assert_allclose(
        records_mod.bandpass(x, 360, (0.5, 40.0), chunk_s=4.0, margin_s=10.0), expected, rtol=0, atol=1e-8
    )
