import numpy as np
import torch

from ecg_lightning.data.labels import label_beats
from ecg_lightning.data.records import read_database
from ecg_lightning.data.rr import rr_features
from ecg_lightning.data.windows import Augment, BeatWindowDataset, index_beats


def test_rr_features_by_hand():
    record = np.array([0, 0, 0, 0, 1, 1])
    sample = np.array([100, 400, 600, 1000, 50, 410])
    f = rr_features(record, sample, fs=360.0, local_beats=2)
    pre = np.array([300, 300, 200, 400, 360, 360.0])
    post = np.array([300, 200, 400, 400, 360, 360.0])
    mean = np.array([1200 / 4] * 4 + [360.0] * 2)
    local = np.array([300, 300, 250, 300, 360, 360.0])
    np.testing.assert_allclose(f[:, 0], np.log(pre / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 1], np.log(post / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 2], np.log(local / mean), rtol=1e-6)
    np.testing.assert_allclose(f[:, 3], np.log(pre / post), rtol=1e-6)
    np.testing.assert_allclose(f[:, 4], mean / 360.0, rtol=1e-6)


def test_dataset_serves_rr_and_augments_only_when_asked(tiny_db):
    db = read_database(tiny_db, ["100", "108"], 0, 360.0)
    beats = index_beats(db, label_beats(db.ann_symbol), 180)
    plain = BeatWindowDataset(db, beats, 180, with_rr=True)
    x, rr, y = plain.__getitems__(list(range(20)))
    assert rr.shape == (20, 5) and torch.equal(rr, torch.from_numpy(beats.rr[:20]))
    torch.manual_seed(0)
    augmented = BeatWindowDataset(db, beats, 180, augment=Augment(jitter=36, scale=0.1, noise=0.05))
    xa, ya = augmented.__getitems__(list(range(20)))
    assert xa.shape == x.shape and torch.equal(ya, y)
    assert not torch.allclose(xa, x)
    assert (xa - x).abs().mean() < 1.5  # perturbed, not replaced
    last = len(augmented) - 1  # windows near the record end stay inside the record
    for _ in range(20):
        assert augmented.__getitems__([last])[0].shape == (1, 1, 360)
