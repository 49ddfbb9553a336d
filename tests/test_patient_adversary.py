"""The patient adversary: its fit and confusion losses, patient codes served by the one data path, training."""

import numpy as np
import pytest
import torch
from conftest import THREE_RECORDS_HALF
from torch.nn import functional as F

from ecg_lightning.data.windows import BeatWindowDataset
from ecg_lightning.errors import ConfigError
from ecg_lightning.models.adversary import PatientAdversary, adversary_scale

HALF = THREE_RECORDS_HALF


def test_the_head_learns_from_its_fit_alone_and_the_encoder_from_the_confusion_alone():
    torch.manual_seed(0)
    adversary = PatientAdversary(embedding=4, patients=5, hidden=6)
    z = torch.randn(8, 4, requires_grad=True)
    who = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    fit, confusion = adversary.losses(z, who, present=3)
    guess = adversary(z.detach())[:, :3]
    torch.testing.assert_close(fit, F.cross_entropy(guess, who))  # the three present patients only
    torch.testing.assert_close(confusion, F.cross_entropy(guess, torch.full((3,), 1 / 3).expand(8, 3)))
    params = list(adversary.parameters())
    assert torch.autograd.grad(fit, z, allow_unused=True)[0] is None  # the fit never moves the embeddings
    assert all(g is None for g in torch.autograd.grad(confusion, params, allow_unused=True))  # nor the head
    assert torch.autograd.grad(confusion, z)[0].abs().sum() > 0
    flat = PatientAdversary(embedding=4, patients=5)
    torch.nn.init.zeros_(flat.head[2].weight), torch.nn.init.zeros_(flat.head[2].bias)
    uniform = float(flat.losses(z, who, 3)[1].detach())
    assert abs(uniform - np.log(3)) < 1e-6  # a uniform guess: the floor, log(patients)


def test_the_adversary_scale_rises_from_zero_to_its_weight_over_training():
    ramp = [adversary_scale(0.5, p) for p in np.linspace(0, 1, 11)]
    assert ramp[0] == 0.0 and np.all(np.diff(ramp) > 0)
    assert 0.49 < ramp[-1] <= 0.5 and 0.49 < adversary_scale(0.5, 0.5) < 0.5
    assert adversary_scale(0.5, 2.0) == ramp[-1] and adversary_scale(0.0, 0.7) == 0.0


def test_the_confusion_takes_the_patient_out_of_an_embedding_where_it_is_a_shortcut():
    """A linear encoder of (a noisy class signal, a clean patient offset), where the training patients' class rates
    differ (the shortcut DS1's few S patients offer): trained for the classes alone the encoder reads the patient
    offset; with the confusion loss it reads much less of it."""

    def patient_weight(weight: float) -> float:
        torch.manual_seed(1)
        encoder, classes = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
        adversary = PatientAdversary(2, 2, hidden=8)
        params = [*encoder.parameters(), *classes.parameters(), *adversary.parameters()]
        optimizer = torch.optim.Adam(params, lr=0.01)
        g = torch.Generator().manual_seed(2)
        late = []
        for step in range(600):
            who = torch.randint(0, 2, (64,), generator=g)
            y = torch.where(torch.rand(64, generator=g) < 0.6, who, torch.randint(0, 2, (64,), generator=g))
            noise = torch.tensor([1.5, 0.1]) * torch.randn(64, 2, generator=g)
            x = torch.stack([2.0 * y - 1, 2.0 * who - 1], 1) + noise
            z = encoder(x)
            fit, confusion = adversary.losses(z, who, 2)
            loss = F.cross_entropy(classes(z), y) + fit + weight * confusion
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step >= 300:
                late.append(float(encoder.weight[:, 1].detach().norm()))
        return float(np.mean(late))

    without, confused = patient_weight(0.0), patient_weight(1.0)
    assert without > 0.8 and confused < 0.6 * without


def test_patient_codes_are_each_windows_record_rank_and_change_nothing_else(three_records):
    db, index = three_records
    keep = index.record != 0  # two of the three records: codes are ranks among the dataset's records, not indices
    sub = index.subset(keep)
    plain = BeatWindowDataset(db, sub, HALF, rr_columns=[0, 5], run_beats=6)
    coded = BeatWindowDataset(db, sub, HALF, rr_columns=[0, 5], run_beats=6, patient_codes=True)
    every = list(range(len(plain)))
    x, rr, y = plain.__getitems__(every)
    x2, rr2, patient, y2 = coded.__getitems__(every)
    for a, b in ((x, x2), (rr, rr2), (y, y2)):
        torch.testing.assert_close(a, b)
    assert patient.dtype == torch.int64 and patient.shape == y.shape
    real = y >= 0
    expected = np.searchsorted(np.unique(sub.record), sub.record[coded.runs[real.numpy()].clip(0)])
    np.testing.assert_array_equal(patient[real].numpy(), expected)
    assert set(patient[real].tolist()) == {0, 1}
    assert all(len(set(run[ok].tolist())) == 1 for run, ok in zip(patient, real))  # one patient per run
    single = BeatWindowDataset(db, sub, HALF, patient_codes=True)
    _, codes, _ = single.__getitems__([0, len(single) - 1])
    assert codes.tolist() == [0, 1]
    with pytest.raises(ValueError, match="cut_on_device=false"):
        BeatWindowDataset(db, sub, HALF, plan_only=True, patient_codes=True)


def _train(tiny_db, tmp_path, extra):
    from conftest import compose_config, train_overrides
    from hydra.core.hydra_config import HydraConfig

    from ecg_lightning.train import train

    small = [] if "model=resnet" in extra else ["model.net.embedding=6", "model.net.hidden=4"]
    overrides = [*train_overrides(tiny_db, tmp_path), "model=beat_sequence", "data.run_beats=4", "data.labels=aami",
                 "data.rr_features=[log_pre_local,log_post_local]", "trainer.max_epochs=1", "score_test=false",
                 "model.net.channels=[4,4]", *small, *extra]  # fmt: skip
    cfg = compose_config("train", tmp_path / "run", overrides)
    try:
        return train(cfg)
    finally:
        HydraConfig.instance().cfg = None


@pytest.mark.parametrize(
    "extra, match",
    [
        (["model.patient_adversary=0.5"], "go together"),
        (["data.patient_codes=true"], "go together"),
        (["model.patient_adversary=-1", "data.patient_codes=true"], "patient_adversary=-1.*loss weight"),
        (["model=resnet", "data.run_beats=1", "model.patient_adversary=0.5", "data.patient_codes=true"], "embeddings"),
        (["model.patient_adversary=0.5", "data.patient_codes=true", "model.adversary_patients=1"], "adversary_pat"),
    ],
)
def test_training_refuses_an_adversary_without_its_codes_or_embeddings(tiny_db, tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        _train(tiny_db, tmp_path, extra)


def test_training_with_the_adversary_logs_the_confusion_and_keeps_the_head_in_the_checkpoint(tiny_db, tmp_path):
    """(Evaluate and predict on such a checkpoint: tests/test_train_serve.py, sequence_patient_adversary.)"""
    from ecg_lightning.checkpoint import load_checkpoint

    extra = ["model.patient_adversary=0.5", "data.patient_codes=true", "trainer.log_every_n_steps=1", "logger=csv"]
    _train(tiny_db, tmp_path, extra)
    metrics = next(tmp_path.rglob("metrics.csv")).read_text()
    assert "train/patient_confusion" in metrics.splitlines()[0]
    ckpt = next(tmp_path.rglob("last.ckpt"))
    state = load_checkpoint(ckpt)["state_dict"]
    assert any(k.startswith("patient_head.") for k in state)
