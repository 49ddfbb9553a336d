"""Integration tests on the real MIT-BIH database; they run where MITDB_DIR points at it (CI sets it)."""

import logging

import numpy as np
import pytest
from conftest import LABEL_SETS, beat_dm, mitdb_dir
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.train import train

MITDB = mitdb_dir()
DS1 = "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
DS2 = "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()
pytestmark = [pytest.mark.mitdb, pytest.mark.skipif(MITDB is None, reason="set MITDB_DIR to the MIT-BIH folder")]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mitdb-cache")


def test_full_database_setup_and_study_split(cache_dir, caplog):
    dm = beat_dm(MITDB, cache_dir=cache_dir, label_sets=LABEL_SETS)
    with caplog.at_level(logging.INFO):
        dm.setup()
    assert len(dm.records.names) == 48 and len(dm.train_records) == 36 and len(dm.val_records) == 12
    assert not set(dm.train_records) & set(dm.val_records)
    assert dm.window_length == 2160 and dm.records.signal.dtype == np.float32
    # the study split and window counts measured before the multi-class work (README rows 1-3): unchanged
    assert len(dm.data_train) == 82_873 and len(dm.data_val) == 26_259
    assert (
        round(100 * float(dm.data_train.labels.mean()), 1) == 31.3
        and round(100 * float(dm.data_val.labels.mean()), 1) == 32.1
    )
    assert "train: 36 records" in caplog.text and "val: 12 records" in caplog.text
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (128, 1, 2160)


def test_ds1ds2_benchmark_scores_every_ds2_beat(cache_dir):
    dm = beat_dm(
        MITDB,
        cache_dir=cache_dir,
        label_sets=LABEL_SETS,
        labels="aami",
        split="ds1ds2",
        ds1=DS1,
        ds2=DS2,
        pad_edges=True,
        lead=["MLII", "V1"],
        window_s=1.0,
    )
    dm.setup()
    assert dm.test_records == DS2 and len(dm.data_test) == 49_712  # de Chazal's DS2 count
    assert np.bincount(dm.data_test.labels, minlength=5).tolist() == [44_259, 1_837, 3_221, 388, 7]
    assert sorted(dm.train_records + dm.val_records) == sorted(set(DS1) - {"201"})  # 201: same man as 202
    assert not set(dm.train_records + dm.val_records + dm.test_records) & {"102", "104", "107", "217"}
    leads = dict(zip(dm.records.names, dm.records.leads))
    assert leads["114"] == ("MLII", "V5") and leads["124"] == ("MLII", "V4") and leads["101"] == ("MLII", "V1")


def test_patient_split_keeps_subject_201_202_together(cache_dir):
    dm = beat_dm(MITDB, cache_dir=cache_dir, split="patient", lead="MLII", label_sets=LABEL_SETS)
    dm.setup()
    assert ("201" in dm.train_records) == ("202" in dm.train_records)
    leads = dict(zip(dm.records.names, dm.records.leads))
    assert leads["114"] == ("MLII",) and leads["102"] == ("V5",) and leads["100"] == ("MLII",)


def test_one_batch_train_step(compose_cfg, cache_dir):
    try:
        metrics = train(compose_cfg("debug=fdr", f"paths.cache_dir={cache_dir}", root=MITDB, window_s=3))
    finally:
        HydraConfig.instance().cfg = None
    assert np.isfinite(metrics["train/loss_epoch"]) and "val/accuracy" in metrics
