"""The Python API: a checkpoint or the shipped model, a WFDB record, an EDF file, a CSV of samples or a NumPy array."""

import numpy as np
import pytest
import wfdb
from conftest import compose_config, train_overrides, write_record
from hydra.core.hydra_config import HydraConfig

from ecg_lightning import api
from ecg_lightning.data.records import RecordError
from ecg_lightning.train import train


@pytest.fixture(scope="module")
def model(tiny_db, tmp_path_factory) -> api.Model:
    tmp = tmp_path_factory.mktemp("api")
    overrides = [*train_overrides(tiny_db, tmp), "trainer.max_epochs=2", "seed=1", "data.labels=aami",
                 "data.split=ds1ds2", "data.pad_edges=true", "data.lead=[MLII,V1]", "monitor=val/accuracy"]  # fmt: skip
    train(compose_config("train", tmp / "run", overrides))
    HydraConfig.instance().cfg = None
    return api.load_model(tmp / "run" / "checkpoints" / "last.ckpt")


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """A 60 s two-lead recording written as WFDB (without annotations), EDF and CSV; and its samples."""
    root = tmp_path_factory.mktemp("rec")
    write_record(root, "r", 0.3, np.random.default_rng(3), duration_s=60)
    (root / "r.atr").unlink()
    physical = wfdb.rdrecord(str(root / "r")).p_signal.T  # (leads, samples), mV
    import pyedflib

    headers = pyedflib.highlevel.make_signal_headers(["MLII", "V1"], sample_frequency=360, physical_min=-20,
                                                     physical_max=20)  # fmt: skip
    pyedflib.highlevel.write_edf(str(root / "r.edf"), physical, headers)
    t = np.arange(physical.shape[1]) / 360
    np.savetxt(root / "r.csv", np.column_stack([t, physical.T]), delimiter=",", header="time,MLII,V1", comments="")
    return root, physical


def test_every_input_format_gives_the_same_beats_and_probabilities(model, recording):
    root, physical = recording
    wfdb_beats = model.classify(root / "r")
    assert wfdb_beats.summary["beat_source"] == "detector" and len(wfdb_beats) == 75  # 60 s: 0.3 s, then every 0.8 s
    for other in (model.classify(root / "r.edf"), model.classify(root / "r.csv", fs=360),
                  model.classify_array(physical, fs=360, leads=["MLII", "V1"])):  # fmt: skip
        np.testing.assert_array_equal(other["sample"], wfdb_beats["sample"])
        np.testing.assert_allclose(other.probabilities, wfdb_beats.probabilities, atol=2e-3)  # EDF: 16-bit samples
        assert list(other["predicted"]) == list(wfdb_beats["predicted"])
    assert wfdb_beats.classes == ["N", "S", "V", "F", "Q"] and wfdb_beats.probabilities.shape == (75, 5)
    np.testing.assert_allclose(wfdb_beats.probabilities.sum(1), 1.0, atol=1e-5)


def test_the_table_is_a_dataframe_and_leads_are_matched_by_name(model, recording):
    root, physical = recording
    frame = model.classify_array(physical[::-1], fs=360, leads=["V1", "MLII"]).to_dataframe()  # leads swapped
    straight = model.classify_array(physical, fs=360, leads=["MLII", "V1"])
    assert list(frame.columns[:8]) == [
        "sample",
        "time_s",
        "predicted",
        "reference",
        "symbol",
        "padded",
        "source",
        "noisy",
    ]
    np.testing.assert_allclose(frame[[f"prob_{c}" for c in straight.classes]].to_numpy(), straight.probabilities)
    assert model.leads == ["MLII", "V1"]


def test_unreadable_inputs_name_the_file_and_what_to_do(model, recording, tmp_path):
    root, physical = recording
    with pytest.raises(RecordError, match="fs=<Hz>"):
        model.classify(root / "r.csv")
    (tmp_path / "bad.edf").write_bytes(b"not an edf file")
    with pytest.raises(RecordError, match="bad.edf: not a readable EDF"):
        model.classify(tmp_path / "bad.edf")
    with pytest.raises(RecordError, match=r"give \(leads, samples\)"):
        model.classify_array(physical.T, fs=360, leads=["MLII", "V1"])
