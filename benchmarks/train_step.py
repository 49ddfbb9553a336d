"""Training throughput: one epoch through Lightning vs a bare PyTorch loop over the same DataModule batches.

Both paths use the same composed config (data, network, optimizer, loss), the same DataModule and the same
thread count; the bare loop is forward, loss, backward, optimizer step and nothing else, Lightning adds what
a run really does (training metrics, logging, the epoch-seeding callback). Printed: windows/s of each and the
Lightning / bare time ratio (target <= 1.10).

    python benchmarks/train_step.py [--models cnn cnn_lstm resnet aami] [--threads 1 2] [--batches N] [--repeats 2]
        [--root $MITDB_DIR] [--out results/benchmark_train_step.txt] [--profile] [--compile]
        [--accelerator gpu --precision bf16-mixed --override data.batch_size=1024 data.cut_on_device=true]

Models: ``cnn`` / ``cnn_lstm`` are the study's (experiment=study_cnn / study_cnn_lstm: seed split, 82,873
training windows); ``resnet`` is BeatResNet on the same windows; ``aami`` is the AAMI benchmark's model and data
(experiment=aami_ds1ds2: two leads + templates, RR features, augmentation). ``--profile`` prints torch.profiler's
top operators of a few bare-loop steps per model (where the time goes); ``--compile`` runs the bare loop
with ``torch.compile`` (compile time printed). On a GPU (``--accelerator gpu``) only the Lightning epoch is
measured; ``--precision`` and ``--override`` (batch size, ``data.cut_on_device``) give the GPU comparisons.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import lightning as L
import torch
from common import compose_train, emit  # benchmarks/common.py (scripts run from the repo root)
from hydra.utils import instantiate
from torch.profiler import ProfilerActivity, profile

from ecg_lightning.callbacks import EpochSeed
from ecg_lightning.runtime import reuse_freed_memory

MODELS = {
    "cnn": ["experiment=study_cnn"],
    "cnn_lstm": ["experiment=study_cnn_lstm"],
    "resnet": ["experiment=study_cnn", "model=resnet", "model.class_weight=null"],
    "aami": ["experiment=aami_ds1ds2"],
}


def build(model: str, root: Path, overrides: list[str] = ()) -> tuple[L.LightningModule, L.LightningDataModule]:
    """The composed run's LightningModule and DataModule (set up for fit)."""
    cfg = compose_train([*MODELS[model], f"data.catalog.mitdb.root={root}", *overrides])
    if cfg.reuse_freed_memory:  # as a training run does (process-wide: compare in separate processes)
        reuse_freed_memory()
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.setup("fit")
    return instantiate(cfg.model, _convert_="all"), datamodule


def bare_epoch(
    module: L.LightningModule, datamodule: L.LightningDataModule, batches: int | None, repeats: int = 1
) -> float:
    """Seconds for one epoch (or ``batches`` batches) of forward, loss, backward, step, no framework: the fastest
    of ``repeats`` epochs."""
    optimizer = module.optimizer_factory(params=module.parameters())
    module.train()
    torch.manual_seed(0)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i, (*inputs, target) in enumerate(datamodule.train_dataloader()):
            if batches is not None and i == batches:
                break
            loss = module.loss(module(*inputs), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        best = min(best, time.perf_counter() - start)
    return best


class _EpochClock(L.Callback):
    """Wall time of the fastest training epoch alone (no setup, sanity check or teardown)."""

    seconds = float("inf")

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = min(self.seconds, time.perf_counter() - self.start)


def lightning_epoch(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    batches: int | None,
    repeats: int = 1,
    accelerator: str = "cpu",
    precision: str = "32-true",
) -> float:
    """Seconds for the same epoch through ``Trainer.fit`` (training metrics, logging, epoch seeding): the fastest
    of ``repeats`` epochs."""
    clock = _EpochClock()
    trainer = L.Trainer(
        max_epochs=repeats,
        accelerator=accelerator,
        precision=precision,
        limit_train_batches=batches,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock, EpochSeed(0)],
    )
    trainer.fit(module, datamodule=datamodule)
    return clock.seconds


def top_operators(module: L.LightningModule, datamodule: L.LightningDataModule, steps: int = 10) -> str:
    """torch.profiler's operators by self CPU time over ``steps`` bare training steps."""
    optimizer = module.optimizer_factory(params=module.parameters())
    module.train()
    loader = iter(datamodule.train_dataloader())
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            *inputs, target = next(loader)
            loss = module.loss(module(*inputs), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batches", type=int, help="batches per epoch (default: the whole epoch)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("MITDB_DIR", "../shared/data/mitdb")))
    parser.add_argument("--repeats", type=int, default=2, help="epochs per measurement; the fastest counts")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network (bare loop only)")
    parser.add_argument("--accelerator", default="cpu", help="Lightning's accelerator (gpu: the bare loop is skipped)")
    parser.add_argument("--precision", default="32-true", help="Lightning's precision, e.g. bf16-mixed")
    parser.add_argument("--override", nargs="*", default=[], help="more config overrides, e.g. data.batch_size=1024")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    lines = [
        f"torch {torch.__version__}, {os.cpu_count()} CPUs; fastest of {args.repeats} training epochs each; "
        f"{args.accelerator}, {args.precision} {' '.join(args.override)}"
    ]
    lines.append("model     threads  windows  bare w/s  Lightning w/s  Lightning/bare time")
    for model in args.models:
        for threads in args.threads:
            torch.set_num_threads(threads)
            module, datamodule = build(model, args.root, args.override)
            n_batches = len(datamodule.train_dataloader()) if args.batches is None else args.batches
            windows = min(len(datamodule.data_train), n_batches * datamodule.hparams.batch_size)
            if args.compile:
                module.net = torch.compile(module.net)
                start = time.perf_counter()
                bare_epoch(module, datamodule, 1)
                lines.append(f"{model}: torch.compile + first step {time.perf_counter() - start:.1f} s")
            on_cpu = args.accelerator == "cpu" and not datamodule.hparams.cut_on_device
            bare = bare_epoch(module, datamodule, args.batches, args.repeats) if on_cpu else float("nan")
            module, _ = build(model, args.root, args.override)  # fresh weights and optimizer for the Lightning epochs
            framed = lightning_epoch(module, datamodule, args.batches, args.repeats, args.accelerator, args.precision)
            lines.append(
                f"{model:9s} {threads:7d}  {windows:7d}  {windows / bare:8.0f}  {windows / framed:13.0f}"
                f"  {framed / bare:19.3f}"
            )
            print(lines[-1], flush=True)
            if args.profile and threads == args.threads[-1]:
                lines += [f"profile ({model}, {threads} threads, 10 bare steps):", top_operators(module, datamodule)]
    emit(lines, args.out)


if __name__ == "__main__":
    main()
