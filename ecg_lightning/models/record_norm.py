"""Batch-norm statistics taken from one record's own beats (AdaBN: Li et al. 2016, "Revisiting batch normalization
for practical domain adaptation").

Why: a network's batch-norm layers normalize every beat with statistics pooled over its training patients, so a new
patient whose beats sit elsewhere in feature space (another lead placement, a bundle-branch block) is read against
DS1's patients. With each record's own statistics the first layers see how the patient's beats vary about the
patient, much as the record template and the record-relative S decision do, using the record's beats only (no label).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every batch-norm layer of ``module`` (of each member of an averaged or voting model alike)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def record_statistics(module: nn.Module, batches: Iterable[tuple[torch.Tensor, ...]]) -> Iterator[None]:
    """Within the block, ``module`` (in eval mode) normalizes with the statistics of ``batches`` (input tuples, the
    labels left out): each batch-norm layer's running mean and variance are their average over the batches, computed
    without gradients and with every other layer (dropout) in eval mode. The layers' own statistics come back after
    the block, also on error."""
    norms = batch_norms(module)
    saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone(), m.momentum) for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the record's batches, not an exponential one
            m.train()
        with torch.no_grad():
            for inputs in batches:
                module(*inputs)
        for m in norms:
            m.eval()
        yield
    finally:
        for m, (mean, var, count, momentum) in zip(norms, saved):
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)
            m.momentum = momentum
            m.eval()
