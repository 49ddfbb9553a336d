import numpy as np
import pytest

from ecg_lightning.data.labels import ABNORMAL, DROPPED, NORMAL, STUDY_ABNORMAL, label_beats


def test_study_labelling_of_every_symbol():
    symbols = np.array(["N", ".", *STUDY_ABNORMAL, "+", "~", "|", "x", "!", "[", "]", '"'])
    labels = label_beats(symbols)
    assert list(labels[:2]) == [NORMAL, NORMAL]
    assert (labels[2 : 2 + len(STUDY_ABNORMAL)] == ABNORMAL).all()
    assert (labels[2 + len(STUDY_ABNORMAL) :] == DROPPED).all()


def test_custom_classes_and_overlap_rejected():
    labels = label_beats(np.array(["N", "V", "A"]), normal=["N", "A"], abnormal=["V"])
    assert list(labels) == [NORMAL, ABNORMAL, NORMAL]
    with pytest.raises(ValueError, match="both normal and abnormal"):
        label_beats(np.array(["N"]), normal=["N"], abnormal=["N"])
