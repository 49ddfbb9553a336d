"""A network and a voter combined into one checkpoint (``ecg_lightning.combine``, ``models.ClassVote``): the combined
model gives every beat exactly the network's probabilities with the voted class's averaged with the voter's, through
``evaluate`` and ``predict`` alike, and refuses members that were not trained alike."""

import csv

import numpy as np
import pytest
import torch
from conftest import compose_config, train_overrides
from hydra.core.hydra_config import HydraConfig

from ecg_lightning.checkpoint import CheckpointError
from ecg_lightning.combine import combine
from ecg_lightning.evaluate import PREDICTIONS, evaluate
from ecg_lightning.predict import predict_record
from ecg_lightning.train import train

QUICK = ["trainer.limit_train_batches=null", "seed=3", "model.class_bias=null"]


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


def trained(tiny_db, tmp_path, name, overrides):
    run = tmp_path / name
    train(compose_config("train", run, [*train_overrides(tiny_db, tmp_path), *QUICK, *overrides]))
    HydraConfig.instance().cfg = None
    return run / "checkpoints" / "last.ckpt"


def scored(ckpt, tiny_db, tmp_path, name):
    common = [f"ckpt_path={ckpt}", f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}"]
    evaluate(compose_config("evaluate", tmp_path / name, [*common, "side=all"]))
    HydraConfig.instance().cfg = None
    return np.load(tmp_path / name / PREDICTIONS)


def assert_predict_serves_what_evaluate_scored(ckpt, scored_beats, tiny_db, tmp_path):
    """predict gives a record's beats the probabilities evaluate gave them (inputs served alike)."""
    predict_record(compose_config("predict", tmp_path / "p", [f"ckpt_path={ckpt}", f"record={tiny_db / '108'}"]))
    rows = {int(row["sample"]): row for row in csv.DictReader((tmp_path / "p" / "beats.csv").open())}
    mine = scored_beats["record"] == "108"
    classes = scored_beats["classes"]
    served = np.array([[float(rows[s][f"prob_{c}"]) for c in classes] for s in scored_beats["sample"][mine]])
    np.testing.assert_allclose(served, scored_beats["probs"][mine], atol=2e-5)


def test_the_combined_model_is_the_network_with_the_voters_say_on_one_class(tiny_db, tmp_path):
    # as in the benchmark, the network's windows (1 s each side) are wider than the voter's (0.5 s): the voter cuts its
    # stretch around the beat out of the network's window
    network = trained(
        tiny_db, tmp_path, "network", ["experiment=aami_ds1ds2", "trainer.max_epochs=3", "data.window_s=1.0"]
    )
    voter = trained(tiny_db, tmp_path, "voter", ["experiment=aami_linear", "trainer.max_epochs=3"])
    bias = [0.0, 0.5, 0.25, 0.0, 0.0]
    both = combine(network, voter, tmp_path / "both.ckpt", "S", bias)
    p, q, r = (scored(c, tiny_db, tmp_path, n) for c, n in ((network, "n"), (voter, "v"), (both, "b")))
    assert p["record"].tolist() == q["record"].tolist() == r["record"].tolist()  # the same beats, in order
    voted = p["probs"].copy()
    voted[:, 1] = (p["probs"][:, 1] + q["probs"][:, 1]) / 2
    expected = torch.softmax(torch.log(torch.from_numpy(voted / voted.sum(1, keepdims=True))) + torch.tensor(bias), 1)
    assert np.abs(q["probs"][:, 1] - p["probs"][:, 1]).max() > 0.05  # the members disagree: the vote shows
    np.testing.assert_allclose(r["probs"], expected.numpy(), atol=2e-5)
    # the voter's RR features and lead served alike by predict
    assert_predict_serves_what_evaluate_scored(both, r, tiny_db, tmp_path)


def test_members_trained_apart_are_refused(tiny_db, tmp_path):
    network = trained(tiny_db, tmp_path, "network", ["experiment=aami_ds1ds2", "trainer.max_epochs=1"])
    other = trained(
        tiny_db,
        tmp_path,
        "other",
        ["experiment=aami_linear", "trainer.max_epochs=1", "data.benchmark_protocol=published"],
    )
    with pytest.raises(
        CheckpointError, match=r"network.*last.ckpt with .*other.*last.ckpt: .*differ in data.benchmark_protocol"
    ):
        combine(network, other, tmp_path / "x.ckpt")
    wide = trained(tiny_db, tmp_path, "wide", ["experiment=aami_linear", "trainer.max_epochs=1", "data.window_s=1.5"])
    with pytest.raises(CheckpointError, match="wider than the network's"):
        combine(network, wide, tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_two_sweeps_of_seeds_are_combined_seed_by_seed(tiny_db, tmp_path):
    from ecg_lightning.checkpoint import checkpoint_config, load_checkpoint
    from ecg_lightning.combine import combine_sweeps

    for seed in (1, 2):  # jobs in another order in each sweep: paired by the seed in their configs
        num = {1: 0, 2: 1}[seed]
        trained(tiny_db, tmp_path, f"nets/{num}", ["experiment=aami_ds1ds2", "trainer.max_epochs=1", f"seed={seed}"])
        trained(
            tiny_db, tmp_path, f"floors/{1 - num}", ["experiment=aami_linear", "trainer.max_epochs=1", f"seed={seed}"]
        )
    written = combine_sweeps(tmp_path / "nets", tmp_path / "floors", tmp_path / "vote")
    assert [p.name for p in written] == ["seed1.ckpt", "seed2.ckpt"]
    for path, seed in zip(written, (1, 2)):
        members = load_checkpoint(path)["members"]
        assert f"nets/{seed - 1}/" in members["network"] and f"floors/{2 - seed}/" in members["voter"]
        assert checkpoint_config(load_checkpoint(path)).seed == seed
    trained(tiny_db, tmp_path, "floors/2", ["experiment=aami_linear", "trainer.max_epochs=1", "seed=7"])
    with pytest.raises(CheckpointError, match=r"seeds differ: \[1, 2\] in .*nets, \[1, 2, 7\]"):
        combine_sweeps(tmp_path / "nets", tmp_path / "floors", tmp_path / "vote2")


def test_networks_averaged_give_the_mean_of_their_probabilities_through_evaluate_and_predict(tiny_db, tmp_path):
    from ecg_lightning.checkpoint import load_checkpoint
    from ecg_lightning.combine import combine_mean

    for seed in (1, 2, 3):
        trained(tiny_db, tmp_path, f"seeds/{seed}", ["experiment=aami_linear", "trainer.max_epochs=2", f"seed={seed}"])
    bias = [0.0, 1.0, 0.5, 0.0, 0.0]
    mean = combine_mean([tmp_path / "seeds"], tmp_path / "mean.ckpt", bias)  # a sweep: every seed of it
    saved = load_checkpoint(mean)
    assert saved["members"]["seeds"] == [1, 2, 3] and saved["hyper_parameters"]["class_bias"] == bias
    members = [scored(tmp_path / f"seeds/{s}/checkpoints/last.ckpt", tiny_db, tmp_path, f"s{s}") for s in (1, 2, 3)]
    averaged = scored(mean, tiny_db, tmp_path, "mean")
    assert np.abs(members[0]["probs"] - members[1]["probs"]).max() > 0.01  # the seeds disagree: the mean shows
    expected = torch.softmax(
        torch.log(torch.from_numpy(np.mean([m["probs"] for m in members], 0))) + torch.tensor(bias), 1
    )
    np.testing.assert_allclose(averaged["probs"], expected.numpy(), atol=2e-5)
    assert_predict_serves_what_evaluate_scored(mean, averaged, tiny_db, tmp_path)
    # the S decision relative to each record: evaluate and predict both decide over the whole record
    from ecg_lightning.classifier import relative_to_records

    relative = combine_mean([tmp_path / "seeds"], tmp_path / "relative.ckpt", bias, relative_s=True)
    assert load_checkpoint(relative)["hyper_parameters"]["relative_s"] is True
    decided = scored(relative, tiny_db, tmp_path, "relative")
    wanted = relative_to_records(expected.numpy(), decided["record"], list(decided["classes"]), s_offset=bias[1])
    np.testing.assert_allclose(decided["probs"], wanted, atol=2e-5)
    assert np.abs(decided["probs"] - averaged["probs"]).max() > 0.01  # it changes the decision
    assert_predict_serves_what_evaluate_scored(relative, decided, tiny_db, tmp_path)
    with pytest.raises(CheckpointError, match="record-relative S decision .* needs every checkpoint to decide alike"):
        scored(f"[{relative},{mean}]", tiny_db, tmp_path, "mixed")
    # measured from a low quantile of each record (model.relative_s_quantile): evaluate and predict take it alike
    low = combine_mean([tmp_path / "seeds"], tmp_path / "low.ckpt", bias, relative_s=True, quantile=0.1)
    assert load_checkpoint(low)["hyper_parameters"]["relative_s_quantile"] == 0.1
    decided_low = scored(low, tiny_db, tmp_path, "low")
    wanted = relative_to_records(
        expected.numpy(), decided_low["record"], list(decided_low["classes"]), bias[1], quantile=0.1
    )
    np.testing.assert_allclose(decided_low["probs"], wanted, atol=2e-5)
    assert np.abs(decided_low["probs"] - decided["probs"]).max() > 0.01
    assert_predict_serves_what_evaluate_scored(low, decided_low, tiny_db, tmp_path)
    with pytest.raises(CheckpointError, match="the same model.class_bias and relative_s_quantile"):
        scored(f"[{relative},{low}]", tiny_db, tmp_path, "two_quantiles")


def test_networks_averaged_must_be_trained_alike_and_several(tiny_db, tmp_path):
    from ecg_lightning.combine import combine_mean

    one = trained(tiny_db, tmp_path, "one", ["experiment=aami_linear", "trainer.max_epochs=1"])
    other = trained(tiny_db, tmp_path, "other", ["experiment=aami_linear", "trainer.max_epochs=1", "data.band=[1,30]"])
    with pytest.raises(CheckpointError, match=r"one.*last.ckpt, .*other.*last.ckpt: member 1 differs .*data.band"):
        combine_mean([one, other], tmp_path / "x.ckpt")
    sampled = trained(
        tiny_db, tmp_path, "sampled", ["experiment=aami_linear", "trainer.max_epochs=1", "model.net.pooling=sample"]
    )
    with pytest.raises(CheckpointError, match="another network"):
        combine_mean([one, sampled], tmp_path / "x.ckpt")
    with pytest.raises(CheckpointError, match="several networks"):
        combine_mean([one], tmp_path / "x.ckpt")
    assert not (tmp_path / "x.ckpt").exists()


def test_a_binary_mean_is_the_logit_of_the_members_mean_probability():
    from ecg_lightning.models import NetworkMean

    class Fixed(torch.nn.Module):
        def __init__(self, logit: float) -> None:
            super().__init__()
            self.logit = logit

        def forward(self, x, rr=None):
            return torch.full(x.shape[:1], self.logit)

    mean = NetworkMean([Fixed(0.0), Fixed(2.0)], binary=True)(torch.zeros(4, 1, 10))
    expected = torch.logit(torch.tensor((0.5 + torch.sigmoid(torch.tensor(2.0)).item()) / 2))
    torch.testing.assert_close(mean, torch.full((4,), expected.item()))


def test_the_combine_command_refuses_a_decision_option_without_what_it_goes_with(monkeypatch, tmp_path, capsys):
    """A quantile without the record-relative decision, or that decision for a network and its voter, would be
    silently ignored: the command stops and says which option it needs."""
    from ecg_lightning import combine

    for argv, message in (
        (
            ["--mean", "a.ckpt", "b.ckpt", "--relative-s-quantile", "0.1"],
            "--relative-s-quantile goes with --relative-s",
        ),
        (["a.ckpt", "b.ckpt", "--relative-s"], "--relative-s goes with --mean"),
    ):
        monkeypatch.setattr("sys.argv", ["combine", *argv, "--out", str(tmp_path / "x.ckpt")])
        with pytest.raises(SystemExit):
            combine.main()
        assert message in capsys.readouterr().err
        assert not (tmp_path / "x.ckpt").exists()
