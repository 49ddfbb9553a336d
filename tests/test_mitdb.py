"""Integration tests on the real MIT-BIH database; they run where MITDB_DIR points at it (CI sets it)."""

import logging

import numpy as np
import pytest
from hydra.core.hydra_config import HydraConfig

from conftest import mitdb_dir
from ecg_lightning.data import MITBIHDataModule
from ecg_lightning.train import train

MITDB = mitdb_dir()
pytestmark = [pytest.mark.mitdb, pytest.mark.skipif(MITDB is None, reason="set MITDB_DIR to the MIT-BIH folder")]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mitdb-cache")


def test_full_database_setup_and_study_split(cache_dir, caplog):
    dm = MITBIHDataModule(MITDB, cache_dir=cache_dir)
    with caplog.at_level(logging.INFO):
        dm.setup()
    assert len(dm.records.names) == 48 and len(dm.train_records) == 36 and len(dm.val_records) == 12
    assert not set(dm.train_records) & set(dm.val_records)
    assert dm.window_length == 2160 and dm.records.signal.dtype == np.float32
    n_windows = len(dm.train_dataloader().dataset) + len(dm.val_dataloader().dataset)
    assert 105_000 < n_windows <= 109_494  # beat labels in mitdb, less edge beats
    assert "train: 36 records" in caplog.text and "val: 12 records" in caplog.text
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (128, 1, 2160)


def test_patient_split_keeps_subject_201_202_together(cache_dir):
    dm = MITBIHDataModule(MITDB, cache_dir=cache_dir, split="patient", lead="MLII")
    dm.setup()
    assert ("201" in dm.train_records) == ("202" in dm.train_records)
    leads = dict(zip(dm.records.names, dm.records.leads))
    assert leads["114"] == "MLII" and leads["102"] == "V5" and leads["100"] == "MLII"


def test_one_batch_train_step(compose_cfg, cache_dir):
    try:
        metrics = train(compose_cfg("debug=fdr", f"paths.cache_dir={cache_dir}", root=MITDB, window_s=3))
    finally:
        HydraConfig.instance().cfg = None
    assert np.isfinite(metrics["train/loss_epoch"]) and "val/accuracy" in metrics
