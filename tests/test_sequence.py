"""Runs of beats (beat-sequence models) through the one data path, the sequence and linear networks, protocols."""

import numpy as np
import pytest
import torch
from conftest import THREE_RECORDS_HALF
from hypothesis import given, settings
from hypothesis import strategies as st

from ecg_lightning.classifier import beats_of_runs
from ecg_lightning.data.split import benchmark_split
from ecg_lightning.data.windows import BeatWindowDataset, beat_runs
from ecg_lightning.models import BeatLinear, BeatSequenceNet

HALF = THREE_RECORDS_HALF


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=6),
    length=st.integers(1, 12),
    data=st.data(),
)
def test_runs_stay_in_one_record_and_evaluation_runs_tile_every_beat_once_in_order(sizes, length, data):
    record = np.repeat(np.arange(len(sizes)), sizes)
    tiles = beat_runs(record, length, length)
    kept = tiles[tiles >= 0]
    np.testing.assert_array_equal(kept, np.arange(len(record)))  # every beat once, in order
    for run in tiles:
        real = run[run >= 0]
        assert len(set(record[real])) == 1  # one record per run
        assert np.all(np.diff(real) == 1) and (run[len(real) :] == -1).all()  # consecutive, padded at the end only
    stride = data.draw(st.integers(1, length))
    overlapping = beat_runs(record, length, stride)
    assert set(overlapping[overlapping >= 0].tolist()) == set(range(len(record)))  # training runs cover every beat
    firsts = record[overlapping[:, 0]]
    for i, run in enumerate(overlapping):
        real = run[run >= 0]
        assert len(set(record[real])) == 1 and np.all(np.diff(real) == 1)
        # padding only in a record's last run, which is its only run that reaches the record's end
        last_of_record = i == len(overlapping) - 1 or firsts[i + 1] != firsts[i]
        assert len(real) == length or last_of_record
        assert (real[-1] == np.flatnonzero(record == firsts[i])[-1]) == last_of_record


def test_bad_run_settings_are_refused():
    with pytest.raises(ValueError, match="stride"):
        beat_runs(np.zeros(5, int), 4, 5)


def test_a_run_is_the_single_beat_windows_of_its_beats(three_records):
    """Runs are cut by the same code as single beats: x, RR and labels of a run equal those of its beats."""
    db, index = three_records
    single = BeatWindowDataset(db, index, HALF, rr_columns=[0, 5, 8])
    runs = BeatWindowDataset(db, index, HALF, rr_columns=[0, 5, 8], run_beats=7)
    assert len(runs) == len(runs.runs) < len(single)
    x, rr, y = runs.__getitems__(list(range(len(runs))))
    assert x.shape[:2] == y.shape == rr.shape[:2] == (len(runs), 7) and x.shape[2:] == (2, 2 * HALF)
    x1, rr1, y1 = single.__getitems__(list(range(len(single))))
    keep = y.reshape(-1) >= 0
    torch.testing.assert_close(x.reshape(-1, 2, 2 * HALF)[keep], x1)
    torch.testing.assert_close(rr.reshape(-1, 3)[keep], rr1)
    torch.testing.assert_close(y.reshape(-1)[keep], y1)
    pad = ~keep
    assert pad.any() and (x.reshape(-1, 2, 2 * HALF)[pad] == 0).all() and (rr.reshape(-1, 3)[pad] == 0).all()


def test_beats_of_runs_flattens_in_run_order_and_drops_padding():
    logits = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    target = torch.tensor([[0, 1, 2], [3, -1, -1]])
    out, y = beats_of_runs(logits, target)
    torch.testing.assert_close(out, logits.reshape(6, 4)[[0, 1, 2, 3]])
    assert y.tolist() == [0, 1, 2, 3]
    binary, yb = beats_of_runs(torch.tensor([[0.5, -1.0], [2.0, 3.0]]), torch.tensor([[1, 0], [0, -1]]))
    assert binary.tolist() == [0.5, -1.0, 2.0] and yb.tolist() == [1, 0, 0]
    single = torch.randn(5, 3)
    assert beats_of_runs(single, torch.zeros(5, dtype=torch.long))[0] is single


def test_sequence_net_is_encoder_then_bidirectional_lstm_then_head():
    """The forward pass against a reference composed from its parts: each beat encoded alone, RR joined, both
    directions read, one score per beat; a later beat changes an earlier beat's score (context both ways)."""
    torch.manual_seed(0)
    net = BeatSequenceNet(
        input_length=180, fs=180.0, channels=(8, 8), embedding=6, hidden=5, n_rr=2, in_channels=2, n_outputs=3
    ).eval()
    x, rr = torch.randn(2, 4, 2, 180), torch.randn(2, 4, 2)
    out = net(x, rr)
    assert out.shape == (2, 4, 3)
    z = torch.stack([net.encoder(x[:, i]) for i in range(4)], dim=1)
    h, _ = net.rnn(torch.cat([z, rr], -1))
    torch.testing.assert_close(out, net.head(h))
    assert h.shape[-1] == 10  # both directions
    later = x.clone()
    later[:, 3] += 1.0
    assert not torch.allclose(net(later, rr)[:, 0], out[:, 0])
    with pytest.raises(ValueError, match="run_beats"):
        net(x[:, 0], rr[:, 0])


def test_the_transformer_across_beats_reads_the_run_with_sine_positions_in_place_of_the_lstm():
    """across=transformer: the same encoder and head around a projection, sine positions and a transformer encoder
    (composed here from its parts); order counts (the same beats in reverse are not the reverse scores), a later beat
    moves an earlier beat's score, and a width the heads do not divide or an unknown layer is refused by name."""
    from ecg_lightning.errors import ConfigError
    from ecg_lightning.models.sequence import sine_positions

    torch.manual_seed(4)
    kw = dict(input_length=180, fs=180.0, channels=(8, 8), embedding=6, n_rr=2, in_channels=2, n_outputs=3)
    net = BeatSequenceNet(**kw, hidden=4, layers=2, heads=2, across="transformer").eval()
    x, rr = torch.randn(2, 5, 2, 180), torch.randn(2, 5, 2)
    out = net(x, rr)
    assert out.shape == (2, 5, 3)
    z = torch.stack([net.encoder(x[:, i]) for i in range(5)], dim=1)
    h = net.rnn.project(torch.cat([z, rr], -1))
    codes = sine_positions(5, 8, h.device, h.dtype)
    assert torch.allclose(codes[1, :2], torch.tensor([np.sin(1.0), np.cos(1.0)], dtype=torch.float32))
    torch.testing.assert_close(out, net.head(net.rnn.norm(net.rnn.blocks(h + codes))))
    flipped = net(x.flip(1), rr.flip(1))
    assert not torch.allclose(flipped.flip(1), out, atol=1e-4)  # without positions it would be a bag of beats
    later = x.clone()
    later[:, 4] += 1.0
    assert not torch.allclose(net(later, rr)[:, 0], out[:, 0])
    assert net(x[:, :3], rr[:, :3]).shape == (2, 3, 3)  # a record's shorter last run
    with pytest.raises(ConfigError, match=r"model.net.heads=3 .* 2 \* model.net.hidden = 8"):
        BeatSequenceNet(**kw, hidden=4, heads=3, across="transformer")
    with pytest.raises(ConfigError, match="model.net.across='gru': give lstm or transformer"):
        BeatSequenceNet(**kw, across="gru")


def test_an_attention_block_is_torchs_pre_norm_transformer_layer():
    """The written-out block (written out so that ONNX graphs keep any run length) computes what
    nn.TransformerEncoderLayer(norm_first, GELU, feed-forward twice the width) computes with the same weights."""
    from ecg_lightning.models.sequence import AttentionBlock

    torch.manual_seed(5)
    block = AttentionBlock(8, 2, dropout=0.0).eval()
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, activation="gelu", batch_first=True,
                                             norm_first=True).eval()  # fmt: skip
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(block.qkv.weight)
        layer.self_attn.in_proj_bias.copy_(block.qkv.bias)
        pairs = [(block.out, layer.self_attn.out_proj), (block.feed[0], layer.linear1), (block.feed[3], layer.linear2)]
        for mine, theirs in [*pairs, (block.norm1, layer.norm1), (block.norm2, layer.norm2)]:
            theirs.load_state_dict(mine.state_dict())
    h = torch.randn(3, 7, 8)
    torch.testing.assert_close(block(h), layer(h))


def test_the_p_wave_path_reads_only_its_segment_averaged_and_joins_each_beats_embedding():
    """p_wave_s=[-0.3, -0.05] at 180 Hz in a ±1 s window: samples 126..171 of every channel, means of 4, one linear
    layer and a ReLU, then beside the beat's embedding and its RR into the LSTM; a change outside the segment leaves
    the path's features alone, one inside moves them; a segment outside the window is refused by name."""
    torch.manual_seed(1)
    kw = dict(input_length=360, fs=180.0, channels=(8, 8), embedding=6, hidden=5, n_rr=2, in_channels=2, n_outputs=3)
    net = BeatSequenceNet(**kw, p_wave_s=[-0.3, -0.05], p_wave_features=4).eval()
    x, rr = torch.randn(2, 3, 2, 360), torch.randn(2, 3, 2)
    lo, hi = 180 - 54, 180 - 9  # 45 samples: 11 means of 4 (the last sample left over)
    means = x[..., lo : lo + 44].reshape(2, 3, 2, 11, 4).mean(-1).reshape(2, 3, 22)
    linear = net.p_wave[2]
    wanted = torch.relu(means @ linear.weight.T + linear.bias)
    torch.testing.assert_close(net.p_wave_of(x), wanted)
    z = torch.stack([net.encoder(x[:, i]) for i in range(3)], dim=1)
    h, _ = net.rnn(torch.cat([z, wanted, rr], -1))
    torch.testing.assert_close(net(x, rr), net.head(h))
    outside, inside = x.clone(), x.clone()
    outside[..., lo - 1] += 5.0
    outside[..., hi:] += 5.0
    inside[..., lo + 20] += 5.0
    torch.testing.assert_close(net.p_wave_of(outside), wanted)
    assert not torch.allclose(net.p_wave_of(inside), wanted)
    with pytest.raises(ValueError, match=r"p_wave_s=\[-1.5, -0.05\].*±1 s"):
        BeatSequenceNet(**kw, p_wave_s=[-1.5, -0.05])
    with pytest.raises(ValueError, match=r"p_wave_s=\[-0.3\]: give \[start, end\]"):
        BeatSequenceNet(**kw, p_wave_s=[-0.3])


def test_template_difference_reads_each_beat_against_its_template_only():
    """template_difference=true: the encoder gets beat minus template (one channel per lead); a shape added alike to a
    beat and its template changes nothing, a change to either alone does; an input without templates is refused."""
    from ecg_lightning.errors import ConfigError

    torch.manual_seed(3)
    kw = dict(input_length=180, fs=180.0, channels=(8, 8), embedding=6, hidden=5, n_rr=2, n_outputs=3)
    net = BeatSequenceNet(**kw, in_channels=4, template_difference=True).eval()
    assert net.encoder(torch.randn(2, 2, 180)).shape == (2, 6)  # two leads in, not four
    x, rr = torch.randn(2, 3, 4, 180), torch.randn(2, 3, 2)
    base = net(x, rr)
    shared = x.clone()
    shared[:, :, 0] += torch.linspace(-2, 2, 180)
    shared[:, :, 2] += torch.linspace(-2, 2, 180)  # lead 0's template, the same shape added
    torch.testing.assert_close(net(shared, rr), base)
    alone = x.clone()
    alone[:, :, 2] += torch.linspace(-2, 2, 180)  # the template alone
    assert not torch.allclose(net(alone, rr), base)
    with pytest.raises(ConfigError, match="data.templates=true"):
        BeatSequenceNet(**kw, in_channels=3, template_difference=True)


def test_training_refuses_template_difference_without_templates(tiny_db, tmp_path):
    """Two leads without templates are an even number of channels too: training refuses the setting before any data
    loads, naming data.templates."""
    from conftest import compose_config, train_overrides
    from hydra.core.hydra_config import HydraConfig

    from ecg_lightning.errors import ConfigError
    from ecg_lightning.train import train

    overrides = [*train_overrides(tiny_db, tmp_path), "model=beat_sequence", "data.run_beats=4", "data.labels=aami",
                 "data.lead=[MLII,V1]"]  # fmt: skip
    cfg = compose_config("train", tmp_path / "run", [*overrides, "model.net.template_difference=true"])
    try:
        with pytest.raises(ConfigError, match="template_difference=true reads each beat.*data.templates=true"):
            train(cfg)
    finally:
        HydraConfig.instance().cfg = None


def test_beat_dropout_drops_whole_beats_embeddings_in_training_only_and_keeps_their_rr():
    """beat_dropout=0.5 in training: a beat's window then changes nothing at all (its whole embedding is zeroed) for
    about half the beats, and changes the scores for the rest; its RR features still do; in eval every beat counts.
    The encoder runs in eval here so that batch statistics do not tie the beats together."""
    torch.manual_seed(2)
    kw = dict(input_length=180, fs=180.0, channels=(8, 8), embedding=6, hidden=5, n_rr=2, in_channels=2, n_outputs=3)
    net = BeatSequenceNet(**kw, dropout=0.0, head_dropout=0.0, beat_dropout=0.5)
    x, rr = torch.randn(4, 8, 2, 180), torch.randn(4, 8, 2)

    def scores(x, rr, seed=5):
        torch.manual_seed(seed)
        return net(x, rr)

    def moved(i, seed=5):
        bumped, bumped_rr = x.clone(), rr.clone()
        bumped[:, i] += 3.0
        bumped_rr[:, i] += 3.0
        base = scores(x, rr, seed)
        return (~torch.isclose(scores(bumped, rr, seed), base)).any(-1).any(-1), (
            ~torch.isclose(scores(x, bumped_rr, seed), base)
        ).any(-1).any(-1)

    net.train()
    net.encoder.eval()
    by_window, by_rr = zip(*(moved(i) for i in range(8)))
    by_window, by_rr = torch.stack(by_window, 1), torch.stack(by_rr, 1)  # (runs, beats): did the beat move any score
    assert by_rr.all()  # a dropped beat's RR features still reach the LSTM
    assert 0.25 <= (~by_window).float().mean() <= 0.75  # about half the beats dropped, each one whole
    net.eval()
    assert torch.stack([moved(i)[0] for i in range(8)], 1).all()  # no dropout outside training
    assert BeatSequenceNet(**kw).beat_dropout is None  # off by default: the network is the one trained before


def test_linear_floor_is_one_linear_layer_on_block_means_and_rr():
    net = BeatLinear(
        input_length=360, fs=180.0, before_s=0.25, after_s=0.35, n_samples=9, n_rr=3, in_channels=2, n_outputs=5
    )
    x, rr = torch.randn(4, 2, 360), torch.randn(4, 3)
    lo, hi = 180 - 45, 180 + 63  # -0.25 s .. +0.35 s at 180 Hz: 108 samples, 9 blocks of 12
    means = x[..., lo:hi].reshape(4, 2, 9, 12).mean(-1).reshape(4, 18)
    expected = torch.cat([means, rr], 1) @ net.linear.weight.T + net.linear.bias
    torch.testing.assert_close(net(x, rr), expected)
    with pytest.raises(ValueError, match="window_s"):
        BeatLinear(input_length=100, fs=360.0)


def test_linear_floor_with_single_samples_takes_each_blocks_centre_sample():
    kw = dict(input_length=360, fs=180.0, before_s=0.25, after_s=0.35, n_samples=9, n_rr=3, in_channels=2)
    net = BeatLinear(**kw, n_outputs=5, pooling="sample")
    x, rr = torch.randn(4, 2, 360), torch.randn(4, 3)
    lo = 180 - 45  # 9 blocks of 12 samples from -0.25 s: the samples at 6, 18, ..., 102 past lo
    picked = x[..., lo + 6 : lo + 108 : 12].reshape(4, 18)
    expected = torch.cat([picked, rr], 1) @ net.linear.weight.T + net.linear.bias
    torch.testing.assert_close(net(x, rr), expected)
    with pytest.raises(ValueError, match="pooling"):
        BeatLinear(**kw, pooling="max")


def test_published_protocol_keeps_the_shared_subject_strict_leaves_it_out(caplog):
    names = ["101", "201", "100", "202"]
    subjects = np.array([0, 1, 2, 1])
    strict, test = benchmark_split(names, ["101", "201"], ["100", "202"], subjects)
    published, same = benchmark_split(names, ["101", "201"], ["100", "202"], subjects, keep_shared=True)
    assert strict == ["101"] and published == ["101", "201"] and test == same == ["100", "202"]
    assert "kept (the published protocol)" in caplog.text


def test_a_final_model_trains_on_every_ds1_subject_without_validation_and_tests_its_final_weights(
    compose_cfg, tmp_path
):
    import json
    import warnings

    from hydra.core.hydra_config import HydraConfig

    from ecg_lightning.train import train

    cfg = compose_cfg("experiment=aami_sequence", "data.run_beats=8", "data.batch_size=4", "data.inner_split=none",
                      "trainer.max_epochs=2", "trainer.limit_train_batches=3")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(cfg)
    HydraConfig.instance().cfg = None
    # no validation metric to choose a best checkpoint by: no callback waiting for one, no warning every epoch
    assert not [w for w in caught if "could not find the monitored key" in str(w.message)]
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "test/jk_index" in metrics and "val/jk_index" not in metrics
    assert report["finished"] is True
    assert report["test"]["test/accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    assert not list((tmp_path / "run").glob("val_*.png"))


@pytest.mark.parametrize(
    ("fmt", "extra"),
    [
        ("onnx", []),
        ("torchscript", []),
        ("onnx", ["model.net.p_wave_s=[-0.3,-0.05]"]),
        ("onnx", ["model.net.across=transformer", "model.net.layers=2"]),
    ],
)
def test_an_exported_sequence_model_gives_the_checkpoints_probabilities_on_runs_of_any_length(
    fmt, extra, compose_cfg, tiny_db, tmp_path
):
    from conftest import compose_config
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from ecg_lightning.checkpoint import build_model, checkpoint_config, load_checkpoint
    from ecg_lightning.export import export
    from ecg_lightning.train import train

    train(compose_cfg("experiment=aami_sequence", "data.run_beats=8", "data.batch_size=4", "trainer.max_epochs=1",
                      "trainer.limit_train_batches=3", "model.class_bias=[0,1.5,0,0,0]", *extra))  # fmt: skip
    HydraConfig.instance().cfg = None
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    path = export(compose_config("export", tmp_path / "export", [f"ckpt_path={ckpt}", f"format={fmt}"]))
    HydraConfig.instance().cfg = None
    blob = load_checkpoint(ckpt)
    run = checkpoint_config(blob)
    run.data.catalog.mitdb.root, run.data.cache_dir = str(tiny_db), str(tmp_path / "cache")
    dm = instantiate(run.data, _convert_="all")
    dm.setup()
    model = build_model(blob, run, ckpt)
    x, rr, _ = dm.data_test.__getitems__(list(range(6)))
    for beats in (8, 5):  # a whole run, and a shorter one (a record's last)
        xs, rrs = x[:, :beats], rr[:, :beats]
        expected = model.probabilities(model(xs, rrs)).detach().numpy()
        if fmt == "torchscript":
            got = torch.jit.load(str(path))(xs, rrs).detach().numpy()
        else:
            import onnxruntime

            got = onnxruntime.InferenceSession(str(path)).run(None, {"x": xs.numpy(), "rr": rrs.numpy()})[0]
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert got.shape == (6, beats, 5)
    assert model.class_bias.tolist() == [0, 1.5, 0, 0, 0]
    # the checkpoint rebuilds the path and the layer across the beats it was trained with
    assert (model.net.p_wave is not None) == any("p_wave_s" in o for o in extra)
    assert isinstance(model.net.rnn, torch.nn.LSTM) != any("transformer" in o for o in extra)


@pytest.mark.parametrize("weights", ["best", "last"])
def test_the_test_set_is_scored_with_the_weights_test_weights_names(compose_cfg, tmp_path, weights):
    import json

    from conftest import compose_config
    from hydra.core.hydra_config import HydraConfig

    from ecg_lightning.evaluate import evaluate
    from ecg_lightning.train import train

    metrics = train(compose_cfg("data.labels=aami", "data.split=ds1ds2", "data.pad_edges=true", "trainer.max_epochs=3",
                                "monitor=val/accuracy", f"test_weights={weights}", "seed=4"))  # fmt: skip
    HydraConfig.instance().cfg = None
    run = tmp_path / "run"
    tested = json.loads((run / "metrics.json").read_text())["test"]["checkpoint"]
    ckpt = run / "checkpoints" / "last.ckpt" if weights == "last" else tested
    assert (tested == "final weights") == (weights == "last")
    common = [f"ckpt_path={ckpt}", "side=test", f"paths.cache_dir={tmp_path / 'cache'}"]
    root = compose_cfg().data.catalog.mitdb.root
    scored = evaluate(compose_config("evaluate", tmp_path / "ev", [*common, f"data.catalog.mitdb.root={root}"]))
    HydraConfig.instance().cfg = None
    assert scored["accuracy"] == pytest.approx(metrics["test/accuracy"], abs=1e-6)


def test_saved_validation_predictions_are_each_validation_beat_with_its_record_and_label(compose_cfg, tmp_path):
    """val_predictions.npz (what pooled cross-validation and calibration read): one row per validation beat, in the
    validation set's order, with its record, its sample, its label and the final model's probabilities."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from ecg_lightning.callbacks import VAL_PREDICTIONS
    from ecg_lightning.train import train

    cfg = compose_cfg("data.labels=aami", "trainer.max_epochs=1", "seed=2")
    train(cfg)
    HydraConfig.instance().cfg = None
    saved = np.load(tmp_path / "run" / VAL_PREDICTIONS)
    dm = instantiate(cfg.data, _convert_="all")
    dm.setup()
    names = np.asarray(dm.records.names)[dm.data_val.beats.record]
    assert saved["record"].tolist() == names.tolist() and len(set(names)) > 1
    np.testing.assert_array_equal(saved["labels"], dm.data_val.labels)
    np.testing.assert_array_equal(saved["sample"], dm.data_val.beats.sample)  # each beat's RR can be read back
    assert saved["probs"].shape == (len(names), 5) and saved["classes"].tolist() == ["N", "S", "V", "F", "Q"]


def test_evaluated_validation_beats_pool_as_training_writes_them(compose_cfg, tmp_path):
    """A network deciding S relative to each record (``model.relative_s``): ``evaluate side=val`` writes the decided
    probabilities and those before the decision; a pool reads the latter, which are training's ``val_predictions``, so
    several networks are averaged before the record-relative decision is taken once (the seventy-eighth round)."""
    from conftest import compose_config
    from hydra.core.hydra_config import HydraConfig

    from ecg_lightning.aggregate import load_predictions
    from ecg_lightning.callbacks import VAL_PREDICTIONS
    from ecg_lightning.classifier import relative_to_records
    from ecg_lightning.evaluate import PREDICTIONS, evaluate
    from ecg_lightning.train import train

    decided = ["model.relative_s=true", "model.relative_s_quantile=0.1", "model.class_bias=null"]
    cfg = compose_cfg("data.labels=aami", "trainer.max_epochs=1", "seed=2", *decided)
    train(cfg)
    HydraConfig.instance().cfg = None
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    common = [f"ckpt_path={ckpt}", "side=val", f"paths.cache_dir={tmp_path / 'c'}",
              f"data.catalog.mitdb.root={cfg.data.catalog.mitdb.root}"]  # fmt: skip
    evaluate(compose_config("evaluate", tmp_path / "ev", common))
    HydraConfig.instance().cfg = None
    trained = load_predictions(tmp_path / "run" / VAL_PREDICTIONS)
    pooled = load_predictions(tmp_path / "ev" / PREDICTIONS)
    written = np.load(tmp_path / "ev" / PREDICTIONS)
    assert pooled["record"].tolist() == trained["record"].tolist()
    np.testing.assert_allclose(pooled["probs"], trained["probs"], atol=1e-5)
    classes = list(written["classes"])
    np.testing.assert_allclose(
        written["probs"], relative_to_records(trained["probs"], trained["record"], classes, quantile=0.1), atol=1e-5
    )
    assert np.abs(written["probs"] - trained["probs"]).max() > 1e-2  # the decision moved them: the test can tell
