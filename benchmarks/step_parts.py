"""Where the CPU training step's time went, part by part: the earlier way against the current one.

Each line times one part on synthetic data of the real shapes (no database needed), the earlier implementation
first, the current one second, in milliseconds (median of repeats) at each thread count:

- dropout multiplier over a study-CNN batch (128 x 17,280): torch's Bernoulli (``nn.Dropout``), the 8-bit
  threshold mask of the first ``FastDropout``, the byte table of multipliers (``scaled_keep_mask``);
- the batched-matmul convolution (``MatmulConv1d``) forward + backward on its strided window view vs contiguous;
- the study CNN's whole step (forward, loss, backward, Adam) with separate ReLU / dropout / linear modules vs the
  one ``ReluDropoutLinear`` node;
- that step with glibc's default malloc vs ``reuse_freed_memory`` (each in a fresh process);
- BeatResNet's AdamW step (AAMI shapes), per-parameter loop vs ``fused=True``;
- BeatResNet's whole step (AAMI shapes), its modules on (batch, channels, time) tensors vs channels-last
  (batch, channels, 1, time) ones (``TimeConv``);
- an AAMI batch's augmentation noise (128 x 2 x 720), numpy float64 vs torch (``add_noise``).

    python benchmarks/step_parts.py [--threads 1 2] [--out results/benchmark_step_parts.txt]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ecg_lightning.data.windows import add_noise
from ecg_lightning.models import BeatResNet, StudyCNN
from ecg_lightning.models.dropout import below_threshold, scaled_keep_mask
from ecg_lightning.runtime import reuse_freed_memory

BATCH, WINDOW = 128, 2160


def ms(fn: Callable[[], object], repeats: int = 7, number: int = 20) -> float:
    """Median over ``repeats`` of the mean milliseconds of ``number`` calls (after a warm-up)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number * 1e3)
    return statistics.median(times)


def threshold_mask(shape: tuple[int, ...], keep: float) -> torch.Tensor:
    """The first FastDropout: 8-bit lanes of random words compared with a threshold, then scaled."""
    n = int(np.prod(shape))
    draws = torch.empty(-(-n // 8), dtype=torch.int64).random_(-(2**63), None)
    return below_threshold(draws.view(torch.int8)[:n], keep).to(torch.float32).mul_(1 / keep).view(shape)


def conv_step(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, contiguous: bool) -> None:
    """MatmulConv1d(1->8, k=4)'s training computation, forward and backward."""
    windows = x.unfold(-1, 4, 1).transpose(-1, -2).reshape(len(x), -1, WINDOW)
    if contiguous:
        windows = windows.contiguous()
    out = torch.baddbmm(bias.view(1, -1, 1).expand(len(x), -1, WINDOW), weight.expand(len(x), -1, -1), windows)
    out.backward(torch.ones_like(out))


def cnn_step_ms(fused: bool) -> float:
    """One study-CNN training step on a fixed batch: forward, loss, backward, Adam."""
    torch.manual_seed(0)
    net = StudyCNN().train()
    x, y = torch.randn(BATCH, 1, WINDOW), (torch.rand(BATCH) > 0.5).float()
    optimizer = torch.optim.Adam(net.parameters(), 1e-3)

    def step() -> None:
        logits = net(x) if fused else net.head(net.features(x)).squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return ms(step, number=10)


def malloc_step_ms(threads: int, reuse: bool) -> float:
    """The fused study-CNN step in a fresh process, with or without ``reuse_freed_memory``."""
    args = [sys.executable, __file__, "--step-in-process", str(threads), "reuse" if reuse else "default"]
    return float(subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()[-1])


def adam_ms(fused: bool) -> float:
    net = BeatResNet(input_length=720, in_channels=4, n_rr=8, n_outputs=5)
    for p in net.parameters():
        p.grad = torch.randn_like(p)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, fused=fused)
    return ms(optimizer.step)


def resnet_step_ms(channels_last: bool) -> float:
    """One BeatResNet training step at AAMI shapes: its stages on channels-last (batch, channels, 1, time) tensors
    (the model's forward) or the same modules on (batch, channels, time) tensors (the earlier layout)."""
    torch.manual_seed(0)
    net = BeatResNet(input_length=720, in_channels=4, n_rr=8, n_outputs=5).train()
    x, rr, y = torch.randn(BATCH, 4, 720), torch.randn(BATCH, 8), torch.randint(0, 5, (BATCH,))
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, fused=True)

    def step() -> None:
        logits = net(x, rr) if channels_last else net.classify(net.stages(net.stem(x)), rr)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return ms(step, repeats=5, number=5)


def parts(threads: int) -> list[str]:
    torch.set_num_threads(threads)
    shape, lines = (BATCH, 8 * WINDOW), []

    def line(name: str, before: float, after: float) -> None:
        lines.append(f"{threads:7d}  {name:52s} {before:8.2f} {after:8.2f} {before / after:6.1f}x")
        print(lines[-1], flush=True)

    bernoulli = ms(lambda: torch.empty(shape).bernoulli_(0.5).div_(0.5))
    line("dropout multiplier: Bernoulli -> byte table", bernoulli, ms(lambda: scaled_keep_mask(shape, 0.5)))
    line("dropout multiplier: 8-bit threshold -> byte table", ms(lambda: threshold_mask(shape, 0.5)),
         ms(lambda: scaled_keep_mask(shape, 0.5)))  # fmt: skip
    x = torch.randn(BATCH, 1, WINDOW + 3)
    weight, bias = torch.randn(1, 8, 4, requires_grad=True), torch.randn(8, requires_grad=True)
    line("conv fwd+bwd: strided windows -> contiguous", ms(lambda: conv_step(x, weight, bias, False)),
         ms(lambda: conv_step(x, weight, bias, True)))  # fmt: skip
    line("study CNN step: separate modules -> ReluDropoutLinear", cnn_step_ms(False), cnn_step_ms(True))
    line("study CNN step: default malloc -> reuse_freed_memory", malloc_step_ms(threads, False),
         malloc_step_ms(threads, True))  # fmt: skip
    line("BeatResNet AdamW step: per-parameter -> fused", adam_ms(False), adam_ms(True))
    line("BeatResNet step (AAMI shapes): 1-D -> channels-last", resnet_step_ms(False), resnet_step_ms(True))
    rng, batch = np.random.default_rng(0), torch.zeros(BATCH, 2, 720)
    line("AAMI batch noise: numpy float64 -> torch",
         ms(lambda: batch + torch.from_numpy((0.05 * rng.standard_normal(batch.shape)).astype(np.float32))),
         ms(lambda: add_noise(batch, 0.05, 1234)))  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--step-in-process", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_in_process:
        threads, allocator = args.step_in_process
        torch.set_num_threads(int(threads))
        if allocator == "reuse":
            reuse_freed_memory()
        print(cnn_step_ms(fused=True))
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import emit

    lines = [
        f"torch {torch.__version__}; ms per call (median of 7 x 10-20 calls); earlier -> current",
        f"{'threads':7s}  {'part':52s} {'earlier':>8s} {'current':>8s} {'gain':>7s}",
    ]
    print("\n".join(lines))
    for threads in args.threads:
        lines += parts(threads)
    emit(lines, args.out)


if __name__ == "__main__":
    main()
