"""Unpaired objectives of CycleGAN (Zhu et al. 2017): cycle consistency and identity mapping.

Weights follow the reference implementation: λ = 10 for the cycle term and 0.5·λ = 5 for identity.
Both weights are absolute: ``identity@W`` does not scale with the cycle weight.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import LossContext, Objective
from .pixel import check_distance, pixel_loss


def cycle_loss(reconstructed: Tensor, original: Tensor, distance: str = "l1") -> Tensor:
    """Cycle-consistency loss: distance between ``G_BA(G_AB(a))`` and ``a``.

    Example:
        >>> cycle_loss(torch.tensor([0.5, -1.0]), torch.tensor([0.0, 0.0]))
        tensor(0.7500)
    """
    return pixel_loss(reconstructed, original, distance)


def identity_loss(identity_output: Tensor, real: Tensor, distance: str = "l1") -> Tensor:
    """Identity-mapping loss: distance between ``G_AB(b)`` and ``b``.

    Example:
        >>> identity_loss(torch.tensor([0.5, -1.0]), torch.tensor([0.0, 0.0]), "l2")
        tensor(0.6250)
    """
    return pixel_loss(identity_output, real, distance)


class _DistanceTerm(Objective):
    """A term comparing two images by the L1 or L2 ``distance``."""

    def __init__(self, distance: str = "l1"):
        super().__init__()
        self.distance = check_distance(distance)

    def extra_repr(self) -> str:
        return f"distance={self.distance!r}"


class CycleLoss(_DistanceTerm):
    """Cycle consistency: the reverse generator must give back the input (weight 10).

    Args:
        distance: ``"l1"`` or ``"l2"``.

    Example:
        >>> a = torch.zeros(1, 3, 2, 2)
        >>> ctx = LossContext(input=a, fake=a, real=a, reconstruct=lambda: a + 0.5)
        >>> CycleLoss().generator_loss(ctx)
        tensor(0.5000)
    """

    default_weight = 10.0
    needs_unpaired = True
    gives_back = "input"

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return cycle_loss(ctx.reconstructed, ctx.input, self.distance)


class IdentityLoss(_DistanceTerm):
    """Identity mapping: the generator must leave images of its target domain unchanged (weight 5).

    Args:
        distance: ``"l1"`` or ``"l2"``.
    """

    default_weight = 5.0
    needs_unpaired = True
    gives_back = "output"

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return identity_loss(ctx.identity_output, ctx.real, self.distance)


def cycle_l2() -> CycleLoss:
    """Cycle consistency with the L2 distance (weight 10 by default)."""
    return CycleLoss(distance="l2")


def identity_l2() -> IdentityLoss:
    """Identity mapping with the L2 distance (weight 5 by default)."""
    return IdentityLoss(distance="l2")
