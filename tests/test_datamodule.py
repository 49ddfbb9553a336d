import logging

import numpy as np
import pytest
import torch

from conftest import FRACTIONS, TEST_WINDOW_S
from ecg_lightning.data import MITBIHDataModule
from ecg_lightning.data.labels import label_beats
from ecg_lightning.data.records import read_database


def make_dm(tiny_db, tmp_path, **kwargs):
    return MITBIHDataModule(tiny_db, window_s=TEST_WINDOW_S, cache_dir=tmp_path, batch_size=16, **kwargs)


def test_setup_serves_split_windows(tiny_db, tmp_path, caplog):
    dm = make_dm(tiny_db, tmp_path)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert not set(dm.train_records) & set(dm.val_records)
    assert sorted(dm.train_records + dm.val_records) == sorted(FRACTIONS)
    assert len(dm.val_records) == 3
    db = read_database(tiny_db, list(FRACTIONS), 0, 360.0)
    keep = (label_beats(db.ann_symbol) >= 0) & (db.ann_sample >= 180) & (db.ann_sample + 180 <= db.lengths[db.ann_record])
    in_train = np.isin(np.asarray(db.names)[db.ann_record], dm.train_records)
    assert len(dm.train_dataloader().dataset) == int((keep & in_train).sum())
    assert len(dm.val_dataloader().dataset) == int((keep & ~in_train).sum())
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (16, 1, 360) and y.shape == (16,) and set(y.tolist()) <= {0.0, 1.0}
    assert "train: 9 records" in caplog.text and "val: 3 records" in caplog.text and "abnormal" in caplog.text


def test_val_loader_is_ordered_and_complete(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path)
    dm.setup()
    ys = torch.cat([y for _, y in dm.val_dataloader()])
    torch.testing.assert_close(ys, torch.from_numpy(dm.data_val.labels))


def test_lead_by_name_and_patient_split(tiny_db, tmp_path):
    dm = make_dm(tiny_db, tmp_path, lead="V1", split="patient")
    dm.setup()
    assert set(dm.records.leads) == {"V1"}
    assert ("201" in dm.train_records) == ("202" in dm.train_records)


def test_bad_split_name(tiny_db, tmp_path):
    with pytest.raises(ValueError, match="data.split='random'"):
        make_dm(tiny_db, tmp_path, split="random")
