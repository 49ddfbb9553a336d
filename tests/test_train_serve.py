"""Train/serve consistency: ``predict`` gives every beat of a record the probabilities that ``evaluate`` (the
DataModule's windows, RR features and templates) gives it, for each model family and its preprocessing."""

import csv

import numpy as np
import pytest
from conftest import compose_config, train_overrides
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.evaluate import PREDICTIONS, evaluate
from ecg_lightning.predict import predict_record
from ecg_lightning.train import train

QUICK = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "seed=5"]
SETUPS = {
    # the study CNN: one lead by index, raw signal, no RR features
    "study_cnn": ["model=cnn"],
    # the benchmark model: band-pass, two leads by name, record templates, eight RR features, edge padding
    "benchmark": ["experiment=aami_ds1ds2", "trainer.max_epochs=3", "trainer.limit_train_batches=null"],
    # the recommended model: its template from the beats with the longest preceding RR, RR features against the
    # neighbours and in seconds only
    "recommended": ["experiment=aami_longest_rr_local_rr", "trainer.max_epochs=3", "trainer.limit_train_batches=null"],
    # the beat-sequence model: runs of beats, RR features local and in seconds
    # (its calibrated S offset makes a barely trained model call every beat S: equality would be vacuous)
    "sequence": [
        "experiment=aami_sequence",
        "data.run_beats=8",
        "data.batch_size=4",
        "trainer.limit_train_batches=20",
        "model.class_bias=null",
    ],
    # the beat-sequence model trained with a patient adversary (training batches hold patient codes; served ones not)
    "sequence_patient_adversary": [
        "experiment=aami_sequence",
        "data.run_beats=8",
        "data.batch_size=4",
        "trainer.limit_train_batches=20",
        "model.class_bias=null",
        "model.patient_adversary=0.5",
        "data.patient_codes=true",
    ],
    # the linear floor: ten RR features, a decimated stretch of one lead
    "linear": ["experiment=aami_linear"],
    # the floor on the band-passed signal in millivolts (not standardized per record), single samples
    "linear_millivolts": ["experiment=aami_linear", "data.standardize=false", "model.net.pooling=sample"],
}


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


@pytest.mark.parametrize("setup", list(SETUPS))
def test_predict_gives_each_beat_the_probabilities_evaluate_gives_it(setup, tiny_db, tmp_path):
    run = tmp_path / "run"
    train(compose_config("train", run, [*train_overrides(tiny_db, tmp_path), *QUICK, *SETUPS[setup]]))
    HydraConfig.instance().cfg = None
    ckpt = run / "checkpoints" / "last.ckpt"
    common = [f"ckpt_path={ckpt}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    evaluate(compose_config("evaluate", tmp_path / "eval", [*common, "side=all"]))
    HydraConfig.instance().cfg = None
    scored = np.load(tmp_path / "eval" / PREDICTIONS)
    classes = [str(c) for c in scored["classes"]]
    for name in ("108", "201"):
        predict_record(compose_config("predict", tmp_path / name, [f"ckpt_path={ckpt}", f"record={tiny_db / name}"]))
        HydraConfig.instance().cfg = None
        rows = list(csv.DictReader((tmp_path / name / "beats.csv").open()))
        mine = scored["record"] == name
        samples = [int(r["sample"]) for r in rows]
        # predict classifies every beat (edge beats zero-padded); evaluate those the training config keeps
        rows = [r for r in rows if int(r["sample"]) in set(scored["sample"][mine].tolist())]
        assert [int(r["sample"]) for r in rows] == scored["sample"][mine].tolist()  # the same beats, in order
        assert len(samples) - len(rows) <= 2 and len(rows) > 20
        served = np.array([[float(r[f"prob_{c}"]) for c in classes] for r in rows])
        probs = scored["probs"][mine]
        evaluated = np.column_stack([1 - probs, probs]) if probs.ndim == 1 else probs
        assert evaluated.std(axis=0).max() > 1e-3  # a model whose output varies: equality is not vacuous
        np.testing.assert_allclose(served, evaluated, atol=2e-5)
        reference = [classes.index(r["reference"]) for r in rows]
        assert reference == scored["label"][mine].tolist()


def test_training_refuses_the_pause_stress(tiny_db, tmp_path):
    """data.pause_stress stresses the rhythm a model is evaluated on; a model trained on it would learn the stress."""
    from ecg_lightning.errors import ConfigError

    overrides = [*train_overrides(tiny_db, tmp_path), *QUICK, "experiment=aami_ds1ds2", "data.pause_stress=2.5"]
    with pytest.raises(ConfigError, match="data.pause_stress=2.5 is a stress for python -m ecg_lightning.evaluate"):
        train(compose_config("train", tmp_path / "run", overrides))
    HydraConfig.instance().cfg = None


def test_the_dominant_s_stress_test_changes_only_records_with_enough_s_beats(tiny_db, tmp_path):
    """``evaluate data.reference_beats=annotated_S`` (the stress test, docs/inter_patient.md): the template and the
    record-normalized RR of a record with at least 5 S beats come from its S beats, so its beats get other
    probabilities; a record with fewer keeps its own. Training refuses the reference (it reads the labels)."""
    from ecg_lightning.data.rr import MIN_ANNOTATED
    from ecg_lightning.errors import ConfigError

    run = tmp_path / "run"
    benchmark = [*train_overrides(tiny_db, tmp_path), *QUICK, "experiment=aami_ds1ds2"]
    with pytest.raises(ConfigError, match="reads the annotations: a diagnostic for python -m ecg_lightning.evaluate"):
        train(compose_config("train", run, [*benchmark, "data.reference_beats=annotated_S"]))
    HydraConfig.instance().cfg = None
    train(compose_config("train", run, benchmark))
    common = [f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "side=all", f"data.catalog.mitdb.root={tiny_db}",
              f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    scored = {}
    for reference in ("all", "annotated_S"):
        HydraConfig.instance().cfg = None
        evaluate(compose_config("evaluate", tmp_path / reference, [*common, f"data.reference_beats={reference}"]))
        scored[reference] = np.load(tmp_path / reference / PREDICTIONS)
    plain, stressed = scored["all"], scored["annotated_S"]
    np.testing.assert_array_equal(plain["label"], stressed["label"])
    s = list(plain["classes"]).index("S")
    changed = np.abs(plain["probs"] - stressed["probs"]).max(axis=1) > 1e-6
    for name in np.unique(plain["record"]):
        mine = plain["record"] == name
        if (plain["label"][mine] == s).sum() >= MIN_ANNOTATED:
            assert changed[mine].all(), name
        else:
            assert not changed[mine].any(), name
    assert changed.any() and not changed.all()
