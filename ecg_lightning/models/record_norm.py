"""Batch-norm statistics taken from one record's own beats (AdaBN: Li et al. 2016, "Revisiting batch normalization
for practical domain adaptation").

Why: a network's batch-norm layers normalize every beat with statistics pooled over its training patients, so a new
patient whose beats sit elsewhere in feature space (another lead placement, a bundle-branch block) is read against
DS1's patients. With each record's own statistics the first layers see how the patient's beats vary about the
patient, much as the record template and the record-relative S decision do, using the record's beats only (no label).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ecg_lightning.classifier import relative_to_records


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


def with_classes_from(
    trained: np.ndarray, adapted: np.ndarray, columns: Sequence[int], keep: np.ndarray | None = None
) -> np.ndarray:
    """Class probabilities (beats, classes) whose ``columns`` come from ``adapted`` (the record's own statistics) and
    whose other classes share the rest in ``trained``'s proportions: the odds among the other classes stay as
    trained (the S-vs-N log-odds a record-relative S decision reads), only how much they leave to ``columns`` moves.
    Empty ``columns``: every class from ``adapted``. Beats flagged in ``keep`` (e.g. by ``s_calls``) stay as trained."""
    columns = list(columns) or list(range(trained.shape[1]))
    others = [c for c in range(trained.shape[1]) if c not in columns]
    left = trained[:, others].sum(1, keepdims=True)
    out = np.empty_like(trained)
    out[:, columns] = adapted[:, columns]
    share = 1 - adapted[:, columns].sum(1, keepdims=True)
    out[:, others] = trained[:, others] / np.maximum(left, np.finfo(trained.dtype).tiny) * share
    return out if keep is None else np.where(np.asarray(keep, dtype=bool)[:, None], trained, out)


def s_calls(
    probs: np.ndarray, records: np.ndarray, classes: Sequence[str], offsets: Sequence[float], quantile: float
) -> np.ndarray:
    """Which beats the record-relative decision at ``offsets`` (one log-prior offset per class, as
    ``model.class_bias``; S's measured from each record's ``quantile``, ``relative_to_records``) calls S: the beats a
    record's own statistics must not take from S (207's aberrant SVT, wide enough to look V-like against the record's
    statistics; docs/inter_patient.md, seventy-sixth and seventy-seventh rounds)."""
    s = list(classes).index("S")
    others = np.asarray(offsets, dtype=np.float64).copy()
    s_offset, others[s] = others[s], 0.0
    biased = np.asarray(probs, dtype=np.float64) * np.exp(others)
    decided = relative_to_records(biased / biased.sum(1, keepdims=True), records, classes, s_offset, quantile=quantile)
    return decided.argmax(1) == s
