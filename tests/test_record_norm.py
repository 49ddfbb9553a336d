"""Each record scored with its networks' batch-norm statistics from its own beats (``evaluate record_norm=true``)."""

import numpy as np
import pytest
import torch
from torch import nn

from ecg_lightning import report
from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.data.records import Record, RecordSet
from ecg_lightning.data.windows import BeatWindowDataset, index_beats, passthrough_collate
from ecg_lightning.evaluate import mean_probabilities
from ecg_lightning.models import BeatSequenceNet
from ecg_lightning.models.record_norm import record_statistics, s_calls, with_classes_from

HALF = 90
CLASSES = ["N", "S", "V", "F", "Q"]


def record(name: str, n_beats: int, scale: float, seed: int) -> Record:
    """A record of ``n_beats`` beats every 300 samples, its own noise and beat shape, ``scale`` times as tall."""
    rng = np.random.default_rng(seed)
    beats = np.arange(150, 150 + 300 * n_beats, 300)
    signal = rng.normal(0, 0.3, (1, beats[-1] + 150))
    shape = np.hanning(40) * rng.uniform(1, 3)
    for b in beats:
        signal[0, b - 20 : b + 20] += shape
    return Record(name, (scale * signal).astype(np.float32), ("MLII",), 360.0, beats, np.array(["N"] * n_beats))


def loader_of(records: list[Record], run_beats: int = 4) -> torch.utils.data.DataLoader:
    db = RecordSet.from_records(records)
    index = index_beats(db, np.zeros(len(db.ann_sample), np.int8), HALF, pad_edges=True, rr=False)
    data = BeatWindowDataset(db, index, HALF, run_beats=run_beats)
    return torch.utils.data.DataLoader(data, batch_size=3, collate_fn=passthrough_collate)


@pytest.fixture(scope="module")
def model() -> BeatClassifier:
    torch.manual_seed(0)
    net = BeatSequenceNet(2 * HALF, channels=(4, 8), embedding=8, hidden=4, n_outputs=5, dropout=0.0)
    module = BeatClassifier(net, torch.optim.Adam, classes=CLASSES, monitor="val/jk_index")
    module.train()
    with torch.no_grad():  # training statistics that are not any one record's; scores that move with the input
        for _ in range(3):
            net(torch.randn(2, 4, 1, 2 * HALF) * 2 + 0.5)
        net.head[-1].weight.mul_(30)
    return module.eval()


def test_items_by_record_lists_each_records_runs_and_reads_statistics_from_unpadded_ones():
    data = loader_of([record("a", 10, 1, 0), record("b", 3, 1, 1)]).dataset
    (items_a, whole_a), (items_b, whole_b) = data.items_by_record()
    assert items_a.tolist() == [0, 1, 2] and whole_a.tolist() == [0, 1]  # 10 beats: runs of 4, 4 and 2 (+2 padding)
    assert items_b.tolist() == [3] and whole_b.tolist() == [3]  # its only run is padded: read it all the same
    single = loader_of([record("a", 5, 1, 0), record("b", 2, 1, 1)], run_beats=1).dataset
    assert [g[0].tolist() for g in single.items_by_record()] == [[0, 1, 2, 3, 4], [5, 6]]
    db = RecordSet.from_records([record("a", 5, 1, 0), record("b", 2, 1, 1)])
    index = index_beats(db, np.zeros(7, np.int8), HALF, pad_edges=True, rr=False)
    unordered = BeatWindowDataset(db, index.subset(np.array([0, 5, 1])), HALF)
    with pytest.raises(ValueError, match="ordered by record"):
        unordered.items_by_record()


def test_record_statistics_average_the_batches_and_give_the_layers_their_own_back():
    norm = nn.BatchNorm1d(2).eval()
    norm.running_mean.fill_(5.0)
    batches = [torch.randn(8, 2, 10) + 1, torch.randn(8, 2, 10) - 3]
    with record_statistics(norm, ((x,) for x in batches)):
        expected = torch.stack([x.mean((0, 2)) for x in batches]).mean(0)
        torch.testing.assert_close(norm.running_mean, expected)
        torch.testing.assert_close(
            norm(batches[0]), (batches[0] - expected[:, None]) / (norm.running_var[:, None] + 1e-5).sqrt()
        )
    assert norm.running_mean.eq(5.0).all() and norm.momentum == 0.1 and not norm.training
    with pytest.raises(RuntimeError), record_statistics(norm, [(batches[0],)]):
        raise RuntimeError("scoring failed")
    assert norm.running_mean.eq(5.0).all()  # back also after an error


def test_record_norm_scores_a_record_against_its_own_beats_whatever_its_scale(model):
    """With each record's own statistics a record's beats scored three times as tall score alike (the stem's
    convolution has no bias, so its batch norm takes the scale out), and a record's scores do not depend on the
    records scored beside it; with the training statistics they do depend on the scale."""
    a, b, b_tall = record("a", 10, 1, 0), record("b", 9, 1, 1), record("b", 9, 3, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain, _ = report.predict_proba(model, loader_of([a, b]))
    own, labels = report.predict_proba(model, loader_of([a, b]), record_norm=True)
    own_tall, _ = report.predict_proba(model, loader_of([a, b_tall]), record_norm=True)
    alone, _ = report.predict_proba(model, loader_of([a]), record_norm=True)
    plain_tall, _ = report.predict_proba(model, loader_of([a, b_tall]))
    assert own.shape == plain.shape == (19, 5) and len(labels) == 19
    np.testing.assert_allclose(own_tall, own, atol=1e-4)
    np.testing.assert_allclose(alone, own[:10], atol=1e-6)
    assert np.abs(own - plain).max() > 1e-2  # the record's statistics are not training's
    assert np.abs(plain_tall[10:] - plain[10:]).max() > 1e-2
    # record a's statistics come from its two whole runs, not from the zeros padding its last one
    data = loader_of([a]).dataset
    *whole, _ = data.__getitems__([0, 1])
    *every, y = data.__getitems__([0, 1, 2])
    with record_statistics(model, [tuple(whole)]), torch.no_grad():
        expected = torch.softmax(model(*every)[y >= 0], -1).numpy()
    np.testing.assert_allclose(alone, expected, atol=1e-6)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # training's statistics are back
    assert not model.training


def test_classes_from_the_records_statistics_leave_the_others_odds_as_trained():
    rng = np.random.default_rng(0)
    trained, adapted = (rng.dirichlet(np.ones(5), 50).astype(np.float32) for _ in range(2))
    mixed = with_classes_from(trained, adapted, [2])
    np.testing.assert_allclose(mixed[:, 2], adapted[:, 2])
    np.testing.assert_allclose(mixed.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.log(mixed[:, 1] / mixed[:, 0]), np.log(trained[:, 1] / trained[:, 0]), rtol=1e-4)
    np.testing.assert_allclose(mixed[:, 3] / mixed[:, 4], trained[:, 3] / trained[:, 4], rtol=1e-4)
    np.testing.assert_allclose(with_classes_from(trained, adapted, range(5)), adapted)


def test_evaluation_takes_only_the_named_classes_from_the_records_statistics(model):
    """``evaluate record_norm=true record_norm_classes=[V]``: V from the record's statistics, the rest as trained."""
    loader = loader_of([record("a", 10, 1, 0), record("b", 9, 2, 1)])
    trained, labels = mean_probabilities([model, model], loader, "as trained")
    adapted, _ = mean_probabilities([model], loader, "own", record_norm=True)
    v_only, same = mean_probabilities([model], loader, "V", record_norm=True, norm_columns=[2])
    np.testing.assert_array_equal(same, labels)
    np.testing.assert_allclose(v_only, with_classes_from(trained, adapted, [2]), atol=1e-6)
    assert np.abs(v_only - trained).max() > 1e-2 and np.abs(v_only - adapted).max() > 1e-2


def test_kept_beats_stay_as_trained_and_the_others_take_the_named_classes():
    rng = np.random.default_rng(1)
    trained, adapted = (rng.dirichlet(np.ones(5), 40).astype(np.float32) for _ in range(2))
    keep = rng.random(40) < 0.3
    mixed = with_classes_from(trained, adapted, [2], keep=keep)
    np.testing.assert_array_equal(mixed[keep], trained[keep])
    np.testing.assert_array_equal(mixed[~keep], with_classes_from(trained, adapted, [2])[~keep])
    every = with_classes_from(trained, adapted, [], keep=keep)  # no columns named: every class from the record's pass
    np.testing.assert_array_equal(every[~keep], adapted[~keep])
    np.testing.assert_array_equal(every[keep], trained[keep])


def test_s_calls_are_the_record_relative_decisions_s_beats():
    """A beat is called S where its S-vs-N log-odds stand above its own record's reference by more than the S offset
    asks and S then beats the other classes at their offsets; a record whose every beat has high S odds
    (fibrillation) gets no S call from them alone."""

    def beats(rows: list[list[float]]) -> np.ndarray:
        probs = np.array([[*row, 0.0, 0.0] for row in rows]) + 1e-6
        return probs / probs.sum(1, keepdims=True)

    usual, early = [0.9, 0.05, 0.05], [0.05, 0.45, 0.5]  # early: S 5.1 above its record in log-odds, V ahead of S
    probs = np.concatenate([beats([usual] * 4 + [early]), beats([early] * 5)])
    records = np.array(["a"] * 5 + ["b"] * 5)
    as_v = s_calls(probs, records, CLASSES, [0, -3.75, 0, 0, 0], quantile=0.1)
    assert not as_v.any()  # S's odds shifted by 5.1 - 3.75 fall short of V's
    called = s_calls(probs, records, CLASSES, [0, -3.75, -1.5, 0, 0], quantile=0.1)  # V's offset lets S win
    assert called.tolist() == [False] * 4 + [True] + [False] * 5
    assert not s_calls(probs, records, CLASSES, [0, -6.0, -1.5, 0, 0], quantile=0.1).any()  # 5.1 above < 6 asked


def test_evaluation_keeps_the_flagged_beats_as_trained(model):
    """``record_norm_keep_s``: beats the pass with training's statistics flags (its S calls) keep its probabilities,
    the flag read from that pass, the others take V from the record's statistics."""
    loader = loader_of([record("a", 10, 1, 0), record("b", 9, 2, 1)])
    trained, _ = mean_probabilities([model], loader, "as trained")
    v_only, _ = mean_probabilities([model], loader, "V", record_norm=True, norm_columns=[2])
    seen = []

    def keep(probs: np.ndarray) -> np.ndarray:
        seen.append(probs)
        return probs[:, 1] > np.median(probs[:, 1])

    kept, _ = mean_probabilities([model], loader, "V, S kept", record_norm=True, norm_columns=[2], keep=keep)
    flags = keep(trained)
    np.testing.assert_allclose(seen[0], trained, atol=1e-6)  # read from the pass as trained
    assert 0 < flags.sum() < len(flags)
    np.testing.assert_allclose(kept[flags], trained[flags], atol=1e-6)
    np.testing.assert_allclose(kept[~flags], v_only[~flags], atol=1e-6)


def test_record_norm_classes_are_checked_by_name_against_the_models_classes(model):
    from omegaconf import OmegaConf

    from ecg_lightning.errors import ConfigError
    from ecg_lightning.evaluate import record_norm_setting

    def setting(**keys):
        return record_norm_setting(OmegaConf.create({"ckpt_path": "run/last.ckpt", **keys}), [model])

    assert setting(record_norm=True, record_norm_classes=["V", "F"]) == (True, (2, 3), None)
    assert setting(record_norm=True) == (True, (), None)
    with pytest.raises(ConfigError, match=r"record_norm_classes=\['X'\]: give some of the classes .*run/last.ckpt"):
        setting(record_norm=True, record_norm_classes=["X"])
    with pytest.raises(ConfigError, match="set record_norm=true"):
        setting(record_norm_classes=["V"])
    with pytest.raises(ConfigError, match="record_norm_keep_s=-3.75 reads the record_norm pass: set record_norm=true"):
        setting(record_norm_keep_s=-3.75)
    with pytest.raises(ConfigError, match="needs the AAMI classes and model.relative_s"):  # no record-relative S
        setting(record_norm=True, record_norm_keep_s=-3.75)
    model.relative_s = True
    try:
        offsets = (0.0, -3.75, -0.75, 0.0, 0.0)
        kept = setting(record_norm=True, record_norm_classes=["V"], record_norm_keep_s=list(offsets))
        assert kept == (True, (2,), offsets)
        assert setting(record_norm=True, record_norm_keep_s=-3.75).keep_s == (0.0, -3.75, 0.0, 0.0, 0.0)
        with pytest.raises(ConfigError, match=r"give the S offset, or one offset per class \['N', 'S'"):
            setting(record_norm=True, record_norm_keep_s=[0, -3.75])
    finally:
        model.relative_s = False
