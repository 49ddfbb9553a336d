"""Dropout with the same Bernoulli keep mask and scaling as ``nn.Dropout``, drawn ~10x faster on the CPU."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_SIGNED = {8: torch.int8, 16: torch.int16, 32: torch.int32}


def mask_bits(keep: float) -> int:
    """Random bits per element: the fewest of 8 or 16 for which ``keep`` is a multiple of 2**-bits (0.5, 0.75:
    8; exact), else 32."""
    return next((bits for bits in (8, 16) if float(keep * 2**bits).is_integer()), 32)


def below_threshold(draws: torch.Tensor, keep: float) -> torch.Tensor:
    """True where uniform signed integers ``draws`` fall below the threshold that gives probability ``keep``:
    P = (threshold + 2**(bits-1)) / 2**bits, equal to ``keep`` when it is a multiple of 2**-bits."""
    bits = torch.iinfo(draws.dtype).bits
    return draws.lt(round(keep * 2**bits) - 2 ** (bits - 1))


def keep_mask(shape: torch.Size, keep: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean mask, each element True with probability ``keep``, from raw random integers.

    Signed integers of ``mask_bits(keep)`` bits are cut from full-range random int64 words (one word gives 8, 4
    or 2 elements) and compared with a threshold (``below_threshold``): exactly ``keep`` for 8 or 16 bits,
    within 2**-33 of it for 32.
    """
    bits = mask_bits(keep)
    n = 1
    for size in shape:
        n *= size
    words = -(-n * bits // 64)
    draws = torch.empty(words, dtype=torch.int64).random_(-(2**63), None, generator=generator)
    return below_threshold(draws.view(_SIGNED[bits])[:n], keep).view(shape)


class FastDropout(nn.Module):
    """``nn.Dropout`` (element kept with probability 1 - p, kept ones scaled by 1 / (1 - p)), faster on the CPU.

    Why: torch's CPU ``bernoulli_`` costs ~10 ns an element, ~70 % of a study-CNN training step (its dropout
    covers 128 x 17,280 activations); random integer words compared with a threshold draw the same mask in a
    tenth of the time. The mask comes from torch's default generator, so ``torch.manual_seed`` (and the
    per-epoch ``EpochSeed``) make runs repeat and resume exactly. Off the CPU it is ``F.dropout``, whose fused
    kernel is already fast there. No parameters: checkpoints are interchangeable with ``nn.Dropout``'s.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p={p}: must be in [0, 1)")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        keep = 1.0 - self.p
        return x * keep_mask(x.shape, keep).to(x.dtype).mul_(1.0 / keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"
