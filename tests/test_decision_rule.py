"""The multi-class decision rule (model.class_bias) and its choice on cross-validated predictions (calibrate)."""

import numpy as np
import pytest
import torch
from torch import nn

from ecg_lightning.calibrate import GRID, choose_bias, scores
from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.errors import ConfigError

CLASSES = ["N", "S", "V", "F", "Q"]


def classifier(**kwargs) -> BeatClassifier:
    return BeatClassifier(nn.Identity(), torch.optim.Adam, classes=CLASSES, monitor="val/jk_index", **kwargs)


def test_class_bias_is_a_log_prior_added_before_the_softmax():
    logits = torch.randn(6, 5)
    bias = [0.0, 1.5, -0.5, 0.0, 0.0]
    torch.testing.assert_close(classifier(class_bias=bias).probabilities(logits),
                               torch.softmax(logits + torch.tensor(bias), -1))  # fmt: skip
    torch.testing.assert_close(classifier().probabilities(logits), torch.softmax(logits, -1))
    with pytest.raises(ConfigError, match="one per class"):
        classifier(class_bias=[0.0, 1.0])
    assert "class_bias" not in classifier(class_bias=bias).state_dict()  # earlier checkpoints load as they are


def test_calibration_finds_the_offset_that_recovers_underpredicted_s_beats():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(900, int), np.ones(60, int), np.full(40, 2)]
    logits = rng.normal(0, 0.3, (1000, 5))
    logits[np.arange(1000), labels] += 1.0
    logits[labels == 1, 0] += 1.6  # S beats look a little more normal than S: most called N without an offset
    probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
    bias, before, after = choose_bias(probs, labels, CLASSES, ["S", "V"])
    assert (
        before["se_S"] < 0.3 and after["se_S"] > before["se_S"] + 0.2 and after["f1_S_plus_V"] > before["f1_S_plus_V"]
    )
    assert bias[1] > 0 and bias[1] in GRID and bias[0] == bias[3] == bias[4] == 0
    # the chosen offsets are the best of the grid for that metric
    for s_offset in GRID:
        trial = bias.copy()
        trial[1] = s_offset
        k = 5
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (labels, (np.log(probs) + trial).argmax(1)), 1)
        assert scores(confusion, CLASSES)["f1_S_plus_V"] <= after["f1_S_plus_V"] + 1e-9
    # the j-index can be gamed: calling almost nothing S gives S +P near 1 (why the rule maximizes F1)
    gamed = choose_bias(probs, labels, CLASSES, ["S", "V"], "j_index")[2]
    assert gamed["se_S"] < 0.1
