"""Pixel objectives: L1 and L2 distance between the fake and the real image.

Both default to weight 100, the λ of pix2pix, so ``bce+l1`` and ``bce+l2`` differ by one word. On
masks with ignored pixels (``--ignore-label``), the mean is over the pixels kept.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..nn import check_choice
from .base import LossContext, Objective

DISTANCES = {"l1": F.l1_loss, "l2": F.mse_loss}


def check_distance(distance: str) -> str:
    """``distance`` if it names one of :data:`DISTANCES`, else an ``OptionError`` naming them."""
    check_choice("distance", distance, DISTANCES)
    return distance


def pixel_loss(fake: Tensor, real: Tensor, distance: str = "l1", kept: Tensor | None = None) -> Tensor:
    """Mean absolute (``"l1"``) or mean squared (``"l2"``) error between two tensors of one shape.

    ``kept`` (``N x 1 x H x W``, 1 where a pixel counts and 0 where it is ignored) restricts the mean
    to the pixels kept, every channel of each; a batch without one has a loss of 0. The mean is taken on
    the device, without reading the count on the CPU.

    Example:
        >>> pixel_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 3.0]), "l2")
        tensor(2.5000)
    """
    if fake.shape != real.shape:
        raise ValueError(f"pixel losses compare tensors of one shape, got {tuple(fake.shape)} and {tuple(real.shape)}")
    if kept is None:
        return DISTANCES[check_distance(distance)](fake, real)
    per_value = DISTANCES[check_distance(distance)](fake, real, reduction="none")
    return (per_value * kept).sum() / (kept.sum() * fake.shape[1]).clamp(min=1)


class PixelL1Loss(Objective):
    """Mean absolute error between the fake and the real image (pix2pix, weight 100).

    Example:
        >>> ctx = LossContext(input=torch.zeros(1, 3, 2, 2), fake=torch.zeros(1, 3, 2, 2), real=torch.ones(1, 3, 2, 2))
        >>> PixelL1Loss().generator_loss(ctx)
        tensor(1.)
    """

    default_weight = 100.0
    compares_pairs = True

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return pixel_loss(ctx.fake, ctx.real, "l1", ctx.kept)


class PixelL2Loss(Objective):
    """Mean squared error between the fake and the real image (weight 100, as for l1)."""

    default_weight = 100.0
    compares_pairs = True

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return pixel_loss(ctx.fake, ctx.real, "l2", ctx.kept)
