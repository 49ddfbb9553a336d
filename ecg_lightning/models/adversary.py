"""A patient adversary: a small head that guesses each beat's patient from its embedding, and a confusion loss that
asks the encoder to leave it guessing.

Adversarial domain confusion (Tzeng et al. 2015): the head learns to tell the training patients apart from detached
embeddings; the encoder is trained, through the head's weights held fixed, towards embeddings on which the head's
guess is uniform over the training patients. Every change that hid a patient signature from the beat-sequence networks
(the second lead, the widths of the waves) found S beats in more of DS1's patients (docs/inter_patient.md, rounds 41
and 44); this asks the encoder to drop whatever signature is left rather than naming one at a time (the sixty-first
round). A reversed gradient (DANN) was not used: on a two-patient toy the encoder then fooled the head by feeding it
more of the patient, not less; the confusion loss took it out (the toy is tests/test_patient_adversary.py's). On DS1's
networks it does not: a linear probe reads the training patients from the embeddings as well as without it
(``benchmarks/patient_probe.py``): the encoder leaves this head guessing, not the patient hidden.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def adversary_scale(weight: float, progress: float) -> float:
    """The confusion loss's weight at ``progress`` (0..1) of training: ``weight`` * (2 / (1 + e^(-10 p)) - 1), the
    DANN schedule: near 0 while the head first learns who is who, ``weight`` (to 1 %) from a half of training on."""
    p = min(max(float(progress), 0.0), 1.0)
    return float(weight) * (2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0)


class PatientAdversary(nn.Module):
    """Guesses of each embedding's patient: (..., embedding) -> (..., patients) logits."""

    def __init__(self, embedding: int, patients: int, hidden: int = 32) -> None:
        super().__init__()
        self.patients = patients
        self.head = nn.Sequential(nn.Linear(embedding, hidden), nn.ReLU(), nn.Linear(hidden, patients))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def losses(self, z: torch.Tensor, who: torch.Tensor, present: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(fit, confusion) over rows ``z`` (beats, embedding) of patients ``who`` among ``present`` training patients:
        the head's cross-entropy on detached embeddings (it trains the head only), and the cross-entropy of its guess
        against the uniform guess over the present patients with the head's weights held fixed (it trains the
        encoder only); log(present) when the head cannot tell the patients apart, its floor."""
        fit = F.cross_entropy(self.head(z.detach())[:, :present].float(), who)
        fixed = {name: p.detach() for name, p in self.head.named_parameters()}
        guess = torch.func.functional_call(self.head, fixed, (z,))[:, :present].float()
        confusion = -F.log_softmax(guess, dim=-1).mean(dim=-1).mean()
        return fit, confusion
