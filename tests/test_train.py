import json
import logging
import os
import subprocess
import sys

import lightning as L
import numpy as np
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ecg_lightning.classifier import BeatClassifier
from ecg_lightning.errors import ConfigError, instantiate_checked
from ecg_lightning.train import train


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    HydraConfig.instance().cfg = None


BINARY = ["val/accuracy", "val/balanced_accuracy", "val/auroc", "val/f1", "val/sensitivity", "val/specificity"]
AAMI_METRICS = ["val/accuracy", "val/macro_f1", "val/kappa", "val/se_S", "val/ppv_V", "val/spec_F", "val/jk_index"]


@pytest.mark.parametrize(
    "choice",
    [
        "model=cnn",
        "model=cnn_lstm",
        "model=resnet",
        "experiment=resnet_rr",
        "experiment=aami_ds1ds2",
        "experiment=resnet_templates",
        "experiment=aami_linear",
        "experiment=aami_sequence",
        "experiment=aami_template_swap",
        "experiment=aami_longest_rr_local_rr_no_irregularity",
        "experiment=aami_sequence_template_swap",
    ],
)
def test_fast_dev_run_through_the_real_config(compose_cfg, tmp_path, choice):
    # the benchmark experiments train final models on every DS1 subject: validate on some here, as their CV does
    cfg = compose_cfg(choice, "debug=fdr", *(["data.inner_split=patient"] if "aami" in choice else []))
    metrics = train(cfg)
    assert set(AAMI_METRICS if "aami" in choice else BINARY) <= set(metrics)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["monitor"] == cfg.monitor
    assert report["final"]["val/accuracy"] == pytest.approx(metrics["val/accuracy"])
    assert report["environment"]["torch"] == torch.__version__ and report["environment"]["wfdb"] != "absent"
    assert ("test" in report) == ("aami" in choice)  # the benchmark split scores its test set


@pytest.mark.parametrize("labels, how", [("study", "balanced"), ("aami", "balanced"), ("aami", "sqrt_balanced")])
def test_balanced_class_weights_are_set_from_the_training_windows(compose_cfg, labels, how):
    cfg = compose_cfg("model=resnet", "debug=fdr", f"data.labels={labels}", f"model.class_weight={how}")
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
    trainer.fit(model, datamodule=datamodule)
    counts = np.bincount(datamodule.data_train.labels, minlength=len(model.hparams.classes)).astype(float)
    expected = counts[0] / np.maximum(counts, 1)  # n / (k * count_c), scaled so the normal class weighs 1
    expected = np.sqrt(expected) if how == "sqrt_balanced" else expected
    np.testing.assert_allclose(model.class_weight.numpy(), expected, rtol=1e-5)
    if labels == "study":  # BCE's pos_weight is normal / abnormal windows
        assert (model.class_weight[1] / model.class_weight[0]).item() == pytest.approx(counts[0] / counts[1], rel=1e-5)


def test_class_weight_changes_the_loss_as_expected(compose_cfg):
    module = instantiate(compose_cfg("data.labels=aami", "model.class_weight=[1,2,3,4,5]").model)
    logits, target = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 4])
    weights = torch.tensor([1.0, 2, 3, 4, 5])[target]
    nll = -torch.log_softmax(logits, 1)[torch.arange(6), target]
    torch.testing.assert_close(module.loss(logits, target), (weights * nll).sum() / weights.sum())
    binary = instantiate(compose_cfg("model.class_weight=[1,3]").model)
    logit, y = torch.tensor([0.3, -1.2]), torch.tensor([1, 0])
    expected = -(3 * torch.log(torch.sigmoid(logit[0])) + torch.log(1 - torch.sigmoid(logit[1]))) / 2
    torch.testing.assert_close(binary.loss(logit, y), expected)


def test_bad_monitor_and_class_weight_are_named(compose_cfg):
    with pytest.raises(ConfigError, match="monitor=.val/se_S.; choose val/<metric>"):
        instantiate_checked(compose_cfg("monitor=val/se_S").model)  # a binary model has no per-class S metric
    with pytest.raises(ConfigError, match="class_weight=.inverse."):
        instantiate_checked(compose_cfg("model.class_weight=inverse").model)
    with pytest.raises(ConfigError, match="3 weights for 5 classes"):
        instantiate_checked(compose_cfg("data.labels=aami", "model.class_weight=[1,2,3]").model)


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.window_s=0", r"data.window_s=0.*must be > 0 s"),
        ("data.window_s=-1", r"data.window_s=-1"),
        ("data.batch_size=0", r"data.batch_size=0: must be >= 1"),
        ("data.fs=0", r"data.fs=0"),
        ("data.split=kfold data.n_folds=40", r"data.n_folds=40 is more than the 11 subjects"),
        ("data.split=kfold data.fold=4", r"data.fold=4 is outside 0..3"),
        ("data.cache_dtype=float64", r"data.cache_dtype='float64'; choose one of \('float32', 'float16'\)"),
        ("reuse_freed_memory=yes", r"reuse_freed_memory='yes': use true or false"),
        ("data.standardize=no", r"data.standardize='no'; give true \(the study\) or false"),
        ("experiment=aami_linear model.net.pooling=max", r"model.net.pooling='max'; choose one of"),
    ],
)
def test_bad_config_values_name_the_key(compose_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        train(compose_cfg(*override.split(), "debug=fdr"))


def test_default_split_is_by_subject(compose_cfg):
    assert compose_cfg().data.split == "patient"


@pytest.mark.parametrize("experiment", ["study_cnn", "study_cnn_lstm"])
def test_study_experiments_pin_the_studys_settings(compose_cfg, experiment):
    cfg = compose_cfg(f"experiment={experiment}")
    assert cfg.seed == 42 and cfg.trainer.max_epochs == 15  # (batch 128 is overridden to 32 by the fixture)
    assert cfg.data.split == "seed" and cfg.data.lead == 0 and cfg.data.val_fraction == 0.25
    assert cfg.model.optimizer.lr == 0.001 and cfg.model.class_weight is None
    assert cfg.data.labels == "study" and cfg.data.pad_edges is False and cfg.model.classes == ["normal", "abnormal"]
    module = instantiate(cfg.model)
    assert isinstance(module, BeatClassifier)
    optimizer = module.configure_optimizers()["optimizer"]
    assert type(optimizer).__name__ == "Adam" and optimizer.defaults["lr"] == 0.001
    assert compose_cfg("data.window_s=3").model.net.input_length == 2160
    if experiment == "study_cnn":
        assert sum(p.numel() for p in instantiate(compose_cfg("data.window_s=3").model.net).parameters()) == 17_321


def test_one_epoch_run_writes_checkpoints_metrics_and_hparams(compose_cfg, tmp_path):
    cfg = compose_cfg("trainer.max_epochs=2", "trainer.limit_train_batches=4")
    metrics = train(cfg)
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "checkpoints").glob("epoch_*.ckpt"))) == 1
    report = json.loads((run / "metrics.json").read_text())
    assert report["final"]["epoch"] == 1 and report["best"]["epoch"] in (0, 1)
    assert report["best"]["val/balanced_accuracy"] == pytest.approx(metrics["val/balanced_accuracy_best"])
    assert 0 < report["final"]["time/epoch_s"] < 600 and report["mode"] == "max"
    events = EventAccumulator(str(run))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"val/accuracy", "train/loss_epoch", "hparams/accuracy", "hparams/balanced_accuracy_best"} <= scalars
    assert events.Scalars("hparams/accuracy")[-1].value == pytest.approx(metrics["val/accuracy"], abs=1e-6)


@pytest.mark.slow
def test_multirun_gives_one_tensorboard_run_per_job(tiny_db, tmp_path):
    env = {**os.environ, "MITDB_DIR": str(tiny_db), "ECG_LIGHTNING_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "ecg_lightning.train",
        "-m",
        "model=cnn,cnn_lstm",
        "seed=0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "data.window_s=0.5",
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 2
    for num, (job, model) in enumerate(zip(jobs, ["cnn", "cnn_lstm"])):  # named by job number and overrides
        assert job.name.startswith(f"{num}_") and f"model-{model}__seed-0" in job.name
    for job in jobs:
        assert list(job.glob("events.out.tfevents.*")), job
        events = EventAccumulator(str(job))
        events.Reload()
        assert "hparams/accuracy" in events.Tags()["scalars"]
        assert json.loads((job / "metrics.json").read_text())["final"]["val/accuracy"] > 0


@pytest.mark.slow
def test_hparams_search_grid_sweeps_real_config_keys(tiny_db, tmp_path):
    env = {**os.environ, "MITDB_DIR": str(tiny_db), "ECG_LIGHTNING_CACHE": str(tmp_path / "cache")}
    cmd = [
        sys.executable,
        "-m",
        "ecg_lightning.train",
        "-m",
        "hparams_search=lr_grid",
        "debug=fdr",
        "data.window_s=0.5",
        "callbacks.progress_bar.refresh_rate=0",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 6 and any("model.optimizer.lr-0.003" in j and "class_weight-balanced" in j for j in jobs)


def test_test_stage_without_checkpoints_scores_the_final_weights(compose_cfg, tmp_path):
    cfg = compose_cfg(
        "data.labels=aami",
        "data.split=ds1ds2",
        "trainer.max_epochs=1",
        "~callbacks.model_checkpoint",
        "~callbacks.last_checkpoint",
        "trainer.enable_checkpointing=false",
    )
    metrics = train(cfg)
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["test"]["checkpoint"] == "final weights"
    assert {k for k in report["test"] if k != "checkpoint"} == {k for k in metrics if k.startswith("test/")}
    assert report["test"]["test/accuracy"] == pytest.approx(metrics["test/accuracy"])
    assert report["test"]["test/loss"] > 0 and "val/loss" in report["final"]
    assert not list((tmp_path / "run").glob("checkpoints/*.ckpt"))
    # the test set's figures beside the validation ones, in TensorBoard too
    for name in ("val_confusion_matrix", "test_confusion_matrix", "test_roc"):
        assert (tmp_path / "run" / f"{name}.png").stat().st_size > 0, name
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    assert {"test/confusion_matrix", "val/confusion_matrix"} <= set(events.Tags()["images"])


@pytest.mark.parametrize("weights", ["best", "last"])
def test_weight_averaging_tests_and_serves_the_averaged_weights(compose_cfg, tiny_db, tmp_path, weights):
    """With ``callbacks=ema`` the checkpoints serve the averaged weights (and keep the raw ones for resuming); the
    run's test score must be the one ``evaluate`` gives the checkpoint it names (Lightning's own callback restores
    the raw weights when the trainer loads the best checkpoint to test it)."""
    from conftest import compose_config

    from ecg_lightning.evaluate import evaluate

    cfg = compose_cfg("callbacks=ema", "data.split=ds1ds2", "trainer.max_epochs=2", f"test_weights={weights}")
    metrics = train(cfg)
    HydraConfig.instance().cfg = None
    ckpts = tmp_path / "run" / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    raw, averaged = last["current_model_state"], last["state_dict"]
    assert any(not torch.equal(raw[k], averaged[k]) for k in averaged)  # the average is not the raw weights
    tested = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["checkpoint"]
    served = ckpts / "last.ckpt" if weights == "last" else tested
    assert (tested == "final weights") == (weights == "last")
    common = [f"data.catalog.mitdb.root={tiny_db}", f"paths.cache_dir={tmp_path / 'cache'}", "side=test"]
    result = evaluate(compose_config("evaluate", tmp_path / "eval", [f"ckpt_path={served}", *common]))
    assert result["auroc"] == pytest.approx(metrics["test/auroc"], abs=1e-5)
    assert result["balanced_accuracy"] == pytest.approx(metrics["test/balanced_accuracy"], abs=1e-5)


def test_a_benchmark_run_ends_with_its_test_result(compose_cfg, caplog):
    with caplog.at_level(logging.INFO, logger="ecg_lightning.train"):
        metrics = train(compose_cfg("data.labels=aami", "data.split=ds1ds2", "trainer.max_epochs=1"))
    last = caplog.records[-1].getMessage()
    assert last.startswith("Test set (") and f"'test/accuracy': {round(metrics['test/accuracy'], 4)}" in last


def test_cosine_scheduler_sets_each_epochs_learning_rate(compose_cfg, tmp_path):
    train(
        compose_cfg(
            "experiment=resnet_rr",
            "trainer.max_epochs=3",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
        )
    )
    events = EventAccumulator(str(tmp_path / "run"))
    events.Reload()
    tag = next(t for t in events.Tags()["scalars"] if t.startswith("lr-"))
    lrs = [e.value for e in sorted(events.Scalars(tag), key=lambda e: e.step)]
    expected = [1e-3 * (1 + np.cos(np.pi * epoch / 3)) / 2 for epoch in range(3)]  # CosineAnnealingLR, T_max=3
    np.testing.assert_allclose(lrs, expected, rtol=1e-5)


def test_a_limited_validation_sees_every_class(compose_cfg, tmp_path):
    cfg = compose_cfg("trainer.max_epochs=1", "trainer.limit_val_batches=2", "data.batch_size=16")
    metrics = train(cfg)
    assert metrics["val/auroc"] > 0.0  # defined: both classes among the windows validated (0.0 with one class)
    dm = instantiate(cfg.data)
    dm.setup()
    from ecg_lightning.data.windows import EpochShuffle

    first = list(EpochShuffle(len(dm.data_val), seed=0))[:32]  # the 2 batches of 16 a limited validation sees
    labels = dm.data_val.labels[first]
    assert 0 < labels.sum() < 32  # both classes, where the first 32 windows in order come from one record
    assert len(set(dm.data_val.beats.record[first])) > 1


def test_rr_features_off_sizes_the_network_to_match(compose_cfg):
    """experiment=resnet_rr data.rr_features=false: the network is built without its RR input, no mismatch."""
    cfg = compose_cfg("experiment=resnet_rr", "data.rr_features=false", "debug=fdr")
    assert cfg.model.net.n_rr == 0 and compose_cfg("experiment=resnet_rr").model.net.n_rr == 5
    assert np.isfinite(train(cfg)["train/loss_epoch"])


def test_every_offered_model_runs(compose_cfg):
    from ecg_lightning.config import CONFIG_DIR

    offered = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))
    # the shared classifier config is not a model to choose
    assert offered == ["beat_sequence", "cnn", "cnn_lstm", "linear", "resnet"]
    for name in offered:
        assert isinstance(instantiate(compose_cfg(f"model={name}").model), BeatClassifier)


def test_metrics_json_keeps_the_best_in_either_direction(tmp_path):
    from ecg_lightning.callbacks import MetricsJson

    highest = MetricsJson(tmp_path / "a.json", "val/balanced_accuracy")  # default: higher is better
    highest.best = {"val/balanced_accuracy": 0.5}
    assert highest._improved(0.6) and not highest._improved(0.4)
    lowest = MetricsJson(tmp_path / "b.json", "val/loss", mode="min")
    lowest.best = {"val/loss": 0.5}
    assert lowest._improved(0.4) and not lowest._improved(0.6)


def test_metrics_json_says_whether_training_finished(tmp_path):
    """Written after every validation with finished=false, and true only when fit ends (aggregate skips the rest)."""
    from types import SimpleNamespace

    import torch

    from ecg_lightning.callbacks import MetricsJson

    report = MetricsJson(tmp_path / "m.json", "val/accuracy")
    trainer = SimpleNamespace(
        sanity_checking=False, current_epoch=3, callback_metrics={"val/accuracy": torch.tensor(0.7)}
    )
    report.on_validation_end(trainer, None)
    assert json.loads((tmp_path / "m.json").read_text())["finished"] is False
    report.on_fit_end(trainer, None)
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["finished"] is True and saved["final"]["epoch"] == 3


def test_training_loss_is_logged_every_n_steps_and_as_the_epochs_window_weighted_mean(compose_cfg):
    """train/loss_step on the steps the loggers write (log_every_n_steps), train/loss_epoch the mean over the
    epoch's windows (a short last batch weighs less), both from the losses training_step returned."""
    from lightning.pytorch.loggers import Logger

    class Recorder(Logger):
        name, version = "recorder", 0
        logged: list[tuple[int, dict]] = []

        def log_metrics(self, metrics, step=None):
            self.logged.append((step, dict(metrics)))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    class Losses(L.Callback):
        steps: list[tuple[float, int]] = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            self.steps.append((float(outputs["loss"]), len(batch[-1])))

    cfg = compose_cfg("trainer.max_epochs=1", "trainer.log_every_n_steps=2", "trainer.limit_val_batches=1")
    module = instantiate(cfg.model, _convert_="all")
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    n = len(datamodule.data_train)
    datamodule.hparams.batch_size = next(size for size in range(n // 4, 1, -1) if n % size)  # a short last batch
    recorder, losses = Recorder(), Losses()
    trainer = instantiate(cfg.trainer, logger=recorder, callbacks=[losses], enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    sizes = [n for _, n in losses.steps]
    assert len(sizes) >= 3 and sizes[-1] < sizes[0]  # a short last batch
    step_logs = {step: m["train/loss_step"] for step, m in recorder.logged if "train/loss_step" in m}
    assert sorted(step_logs) == list(range(1, len(sizes), 2))  # after optimizer steps 2, 4, ... (0-based 1, 3, ...)
    for step, value in step_logs.items():
        assert value == pytest.approx(losses.steps[step][0])
    expected = sum(loss * n for loss, n in losses.steps) / sum(sizes)
    epoch = [m["train/loss_epoch"] for _, m in recorder.logged if "train/loss_epoch" in m]
    assert epoch == [pytest.approx(expected, rel=1e-5)]
    assert float(trainer.callback_metrics["train/loss_epoch"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_bf16_mixed_precision_trains_on_cpu(compose_cfg, model):
    """trainer.precision=bf16-mixed: the network really runs in bfloat16, the loss and metrics stay finite."""
    cfg = compose_cfg(f"model={model}", "trainer.precision=bf16-mixed", "trainer.max_epochs=1",
                      "trainer.limit_train_batches=3", "trainer.limit_val_batches=2")  # fmt: skip
    dtypes = set()
    module = instantiate(cfg.model, _convert_="all")
    module.net.register_forward_hook(lambda net, args, out: dtypes.add(out.dtype))
    datamodule = instantiate(cfg.data, _convert_="all")
    before = {k: v.clone() for k, v in module.state_dict().items()}
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(module, datamodule=datamodule)
    assert dtypes == {torch.bfloat16}
    assert all(torch.isfinite(v).all() for v in module.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in module.state_dict().items())
    assert 0.0 <= float(trainer.callback_metrics["val/balanced_accuracy"]) <= 1.0


@pytest.mark.parametrize("experiment", ["study_cnn", "aami_ds1ds2"])
def test_training_with_windows_cut_on_the_device(compose_cfg, experiment):
    """data.cut_on_device=true through Lightning: batches are cut in on_after_batch_transfer (the CPU here)."""
    metrics = train(compose_cfg(f"experiment={experiment}", "data.cut_on_device=true", "debug=fdr"))
    assert np.isfinite(metrics["train/loss_step"])


@pytest.mark.parametrize("limit, shuffled", [(1, True), (3, True), (0.5, True), (1.0, False)])
def test_a_validation_limited_by_a_batch_count_is_shuffled_even_to_one_batch(compose_cfg, limit, shuffled):
    """fast_dev_run and debug=fdr set limit_val_batches to the whole number 1: a count, not the whole set."""
    from types import SimpleNamespace

    dm = instantiate(compose_cfg().data)
    dm.setup()
    dm.trainer = SimpleNamespace(limit_val_batches=limit, global_rank=0, world_size=1)
    order = list(dm.val_dataloader().sampler)
    assert (order != list(range(len(dm.data_val)))) == shuffled
    assert sorted(order) == list(range(len(dm.data_val)))


@pytest.mark.parametrize("extra", [[], ["experiment=aami_ds1ds2"]])
def test_every_setting_the_optuna_search_varies_exists_in_the_config_it_searches(compose_cfg, extra):
    from omegaconf import OmegaConf

    cfg = compose_cfg("hparams_search=optuna", *extra)
    missing = [k for k in cfg.hydra.sweeper.params if OmegaConf.select(cfg, k, default="MISSING") == "MISSING"]
    assert cfg.hydra.sweeper.params and not missing


@pytest.mark.parametrize(
    "monitor, mode, direction", [("val/jk_index", "max", "maximize"), ("val/specificity", "min", "minimize")]
)
def test_a_sweep_optimizes_the_monitored_metric_in_its_direction(compose_cfg, monitor, mode, direction):
    """What a sweep optimizes: Optuna's direction follows monitor_mode, the objective is the best value of the
    monitored metric, and the model tracks that best in the same direction."""
    from torchmetrics import MaxMetric, MinMetric

    extra = ["data.labels=aami"] if "jk" in monitor else []
    cfg = compose_cfg("hparams_search=optuna", f"monitor={monitor}", f"monitor_mode={mode}", *extra)
    assert cfg.hydra.sweeper.direction == direction
    assert cfg.optimized_metric == f"{monitor}_best"
    model = instantiate(cfg.model)
    assert isinstance(model.val_best, MaxMetric if mode == "max" else MinMetric)
    assert model.hparams.monitor == monitor and model.hparams.mode == mode
    for value in (0.5, 0.2, 0.7):
        model.val_best(torch.tensor(value))
    assert float(model.val_best.compute()) == pytest.approx(0.7 if mode == "max" else 0.2)


def test_several_loggers_at_once_each_get_the_run(compose_cfg, tmp_path):
    """logger=[tensorboard,csv]: TensorBoard events and a metrics.csv with every epoch's validation metrics."""
    import csv

    cfg = compose_cfg("logger=[tensorboard,csv]", "trainer.max_epochs=2")
    train(cfg)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    epochs = {r["epoch"] for r in rows if r.get("val/balanced_accuracy")}
    assert epochs == {"0", "1"}
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))


def test_a_multirun_jobs_folder_passes_back_as_a_checkpoint_path_override():
    """A job folder of a sweep over a list (``data.rr_features=[...]``), short or cut with a hash, is a plain override
    value: ``evaluate -m ckpt_path=<folder>/checkpoints/last.ckpt,<another>`` parses into one path per job."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from ecg_lightning.config import folder_name

    short = "data.rr_features-[log_pre_post,log_pre_local]__model.class_bias-null__seed-3"
    long = "data.fold-0__data.rr_features-[" + ",".join(["log_pre_post", "local_irregularity"] * 12) + "]__seed-4"
    nested = "data.labels-study__monitor-val/balanced_accuracy__seed-0"  # a value with a "/": one folder, not two
    texts = (short, long, nested)
    paths = [f"outputs/cv/{n}_{folder_name(text)}/checkpoints/last.ckpt" for n, text in enumerate(texts)]
    assert [p.count("/") for p in paths] == [4, 4, 4]
    override = OverridesParser.create().parse_overrides([f"ckpt_path={','.join(paths)}"])[0]
    assert list(override.sweep_iterator()) == paths
    assert folder_name("model-cnn__seed-0") == "model-cnn__seed-0"  # nothing to change: left as it is


def test_a_multirun_jobs_folder_name_is_cut_short_and_kept_apart_by_a_hash(compose_cfg):
    """A sweep over a list of RR features makes overrides longer than a file name may be (255 bytes): the job
    folder keeps the start of its overrides and a hash of all of them; short ones are left as they are."""
    from omegaconf import OmegaConf, open_dict, read_write

    from ecg_lightning.config import MAX_FOLDER_NAME, folder_name

    features = ",".join(["log_pre_post", "log_pre_local", "log_post_local", "local_irregularity"] * 4)
    long = f"data.fold-0__data.rr_features-[{features}]__experiment-aami_ds1ds2"
    other = long.replace("fold-0", "fold-1")
    assert len(long) > 255 and folder_name("model-cnn__seed-0") == "model-cnn__seed-0"
    assert len(folder_name(long)) == MAX_FOLDER_NAME and folder_name(long) != folder_name(other)
    assert folder_name(long).startswith("data.fold-0__data.rr_features-log_pre_post+log_pre_local+")
    cfg = OmegaConf.create({"hydra": OmegaConf.to_container(compose_cfg().hydra)})  # a plain, writable copy
    with read_write(cfg), open_dict(cfg):
        cfg.hydra.job.num, cfg.hydra.job.override_dirname = 3, long
    assert cfg.hydra.sweep.subdir == f"3_{folder_name(long)}"
