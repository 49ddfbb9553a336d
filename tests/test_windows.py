import numpy as np
import torch
import wfdb

from ecg_lightning.data.labels import label_beats
from ecg_lightning.data.records import read_database
from ecg_lightning.data.windows import BeatWindowDataset, index_beats

HALF = 180


def test_index_keeps_labelled_beats_whose_window_fits(tiny_db):
    db = read_database(tiny_db, ["100", "106"], 0, 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol), HALF)
    for i, name in enumerate(db.names):
        ann = wfdb.rdann(str(tiny_db / name), "atr")
        n = db.lengths[i]
        sample, symbol = np.asarray(ann.sample), np.asarray(ann.symbol)
        expected = sample[np.isin(symbol, ["N", "V", "A", "L", "/"]) & (sample >= HALF) & (sample + HALF <= n)]
        np.testing.assert_array_equal(beats.sample[beats.record == i], expected)
        assert len(expected) < np.isin(symbol, ["N", "V", "A", "L", "/"]).sum()  # the first beat (0.3 s) is dropped
    assert set(beats.symbol) <= {"N", "V", "A", "L", "/"}
    np.testing.assert_array_equal(beats.label, (beats.symbol != "N").astype(np.int8))


def test_window_equals_the_slice_of_the_record_signal(tiny_db):
    db = read_database(tiny_db, ["100", "106", "201"], 0, 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol), HALF)
    data = BeatWindowDataset(db, beats, HALF)
    picks = [0, 5, len(data) // 2, len(data) - 1]
    x, y = data.__getitems__(picks)
    assert x.shape == (len(picks), 1, 2 * HALF) and x.dtype == torch.float32
    for row, i in enumerate(picks):
        raw = wfdb.rdrecord(str(tiny_db / db.names[beats.record[i]])).p_signal[:, 0]
        record = (raw - raw.mean()) / raw.std()
        c = beats.sample[i]
        np.testing.assert_allclose(x[row, 0].numpy(), record[c - HALF : c + HALF], atol=1e-5)
        assert y[row] == beats.label[i]
    single_x, single_y = data[picks[2]]
    torch.testing.assert_close(single_x, x[2])
    assert single_y == y[2]
