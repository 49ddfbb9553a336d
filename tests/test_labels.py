"""Labels: the label sets in conf/data/wfdb.yaml are the spec, checked against the values written out here."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from ecg_lightning.config import CONFIG_DIR
from ecg_lightning.data.labels import DROPPED, check_classes, label_beats

# The study, spelled out independently of the code and config.
STUDY_NORMAL = ["N", "."]
STUDY_ABNORMAL = ["L", "R", "B", "A", "a", "J", "S", "V", "r", "F", "e", "j", "n", "E", "/", "f", "Q", "?"]
# AAMI EC57 classes (de Chazal 2004).
AAMI = {"N": ["N", "L", "R", "e", "j"], "S": ["A", "a", "J", "S"], "V": ["V", "E"], "F": ["F"], "Q": ["/", "f", "Q"]}
NOT_BEATS = ["+", "~", "|", "x", "!", "[", "]", '"']


@pytest.fixture(scope="module")
def label_sets():
    return OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data" / "wfdb.yaml").label_sets)


def test_config_label_sets_are_the_studys_and_aamis(label_sets):
    assert label_sets["study"] == {"normal": STUDY_NORMAL, "abnormal": STUDY_ABNORMAL}
    assert list(label_sets["aami"]) == ["N", "S", "V", "F", "Q"]  # class order = label index
    assert label_sets["aami"] == AAMI


def test_study_labelling_of_every_symbol(label_sets):
    symbols = np.array([*STUDY_NORMAL, *STUDY_ABNORMAL, *NOT_BEATS])
    expected = [0] * 2 + [1] * len(STUDY_ABNORMAL) + [DROPPED] * len(NOT_BEATS)
    np.testing.assert_array_equal(label_beats(symbols, label_sets["study"]), expected)
    assert label_beats(symbols, label_sets["study"]).dtype == np.int8  # a byte a beat in the per-beat index


def test_aami_labelling_by_hand(label_sets):
    symbols = np.array(["N", "L", "A", "V", "E", "F", "/", "f", "Q", "j", "S", ".", "?", "B", "+", "R", "a", "J", "e"])
    expected = [0, 0, 1, 2, 2, 3, 4, 4, 4, 0, 1, -1, -1, -1, -1, 0, 1, 1, 0]  # "." "?" "B" are not AAMI beats
    np.testing.assert_array_equal(label_beats(symbols, label_sets["aami"]), expected)


def test_overlap_and_single_class_rejected():
    with pytest.raises(ValueError, match="'N' is listed in both class 'a' and 'b'"):
        check_classes({"a": ["N"], "b": ["V", "N"]})
    with pytest.raises(ValueError, match="at least two classes"):
        check_classes({"a": ["N"]})


def test_config_split_settings_are_the_studys():
    data = OmegaConf.load(CONFIG_DIR / "data" / "wfdb.yaml")
    assert list(data.bin_edges) == [0.0, 0.2, 0.6, 1.0] and data.val_fraction == 0.25 and data.split_seed == 42
    assert data.fs == 360 and data.window_s == 3 and data.lead == 0 and data.pad_edges is False
    assert data.labels == "study" and list(data.databases) == ["mitdb"] and list(data.test_databases) == []
    mitdb = OmegaConf.load(CONFIG_DIR / "data" / "database" / "mitdb.yaml")
    assert mitdb.physionet == "mitdb" and mitdb.annotation == "atr" and mitdb.lead is None
    assert OmegaConf.to_container(mitdb.same_subject) == [["201", "202"]]
