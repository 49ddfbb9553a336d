"""Trained networks as one model: a deep network deciding with a second model's vote on one class (``ClassVote``),
or several networks of one recipe averaged (``NetworkMean``).

The linear floor finds supraventricular (S) beats by their prematurity, in patients whose morphology no network
learnt S from; it calls V poorly. ``ClassVote`` keeps the deep network's probabilities and replaces the voted
class's by the mean of both models' (then renormalizes), so the floor's prematurity evidence counts for S and
nothing else (docs/inter_patient.md, fifth round). Built from two trained checkpoints by
``python -m ecg_lightning.combine``, never trained as one.

What a network learns about S beats depends on its training seed more than any setting tried changes it; the
average of several seeds' probabilities moves less (docs/inter_patient.md, sixteenth round). ``NetworkMean`` ships
such an average as one model, built by ``python -m ecg_lightning.combine --mean``.
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


class NetworkMean(nn.Module):
    """The mean of the class probabilities of ``networks`` (trained alike, e.g. seeds of one recipe), each given the
    same windows and RR features. Returns log-probabilities, as ``ClassVote`` does; with ``binary`` (one logit per
    beat) the logit of the mean probability."""

    def __init__(self, networks: Sequence[nn.Module], binary: bool = False) -> None:
        super().__init__()
        if len(networks) < 2:
            raise ValueError(f"NetworkMean averages several networks; got {len(networks)}")
        self.networks, self.binary = nn.ModuleList(networks), binary

    def forward(self, x: torch.Tensor, rr: torch.Tensor | None = None) -> torch.Tensor:
        inputs = (x,) if rr is None else (x, rr)
        outputs = torch.stack([net(*inputs).float() for net in self.networks])
        if self.binary:
            return torch.logit(torch.sigmoid(outputs).mean(0), eps=1e-7)
        return torch.log(torch.softmax(outputs, dim=-1).mean(0).clamp_min(1e-12))
