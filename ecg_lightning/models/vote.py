"""Two trained networks as one: a deep network decides every class, a second model votes on one class only.

The linear floor finds supraventricular (S) beats by their prematurity, in patients whose morphology no network
learnt S from; it calls V poorly. ``ClassVote`` keeps the deep network's probabilities and replaces the voted
class's by the mean of both models' (then renormalizes), so the floor's prematurity evidence counts for S and
nothing else (docs/inter_patient.md, fifth round). Built from two trained checkpoints by
``python -m ecg_lightning.combine``, never trained as one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def class_vote(p: torch.Tensor, q: torch.Tensor, k: int) -> torch.Tensor:
    """Probabilities ``p`` with class ``k``'s replaced by the mean of ``p``'s and ``q``'s, renormalized."""
    voted = torch.cat([p[..., :k], (p[..., k : k + 1] + q[..., k : k + 1]) / 2, p[..., k + 1 :]], -1)
    return voted / voted.sum(-1, keepdim=True)


class ClassVote(nn.Module):
    """``network`` sees the windows and its RR columns; ``voter`` sees the channels ``voter_channels`` of the same
    windows and its RR columns. Returns log-probabilities (a classifier's softmax gives them back as they are)."""

    def __init__(
        self,
        network: nn.Module,
        voter: nn.Module,
        voted_class: int,
        network_rr: Sequence[int] = (),
        voter_rr: Sequence[int] = (),
        voter_channels: Sequence[int] = (0,),
    ) -> None:
        super().__init__()
        self.network, self.voter, self.voted_class = network, voter, int(voted_class)
        for name, index in (("network_rr", network_rr), ("voter_rr", voter_rr), ("voter_channels", voter_channels)):
            self.register_buffer(name, torch.as_tensor(list(index), dtype=torch.long), persistent=False)

    def _inputs(self, x: torch.Tensor, rr: torch.Tensor | None, columns: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (x,) if rr is None or len(columns) == 0 else (x, rr.index_select(-1, columns))

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        p = torch.softmax(self.network(*self._inputs(x, rr, self.network_rr)).float(), dim=-1)
        voter_x = x.index_select(1, self.voter_channels)
        q = torch.softmax(self.voter(*self._inputs(voter_x, rr, self.voter_rr)).float(), dim=-1)
        return torch.log(class_vote(p, q, self.voted_class).clamp_min(1e-12))
