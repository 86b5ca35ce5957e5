"""R1 regularisation (Mescheder et al. 2018): a penalty on the discriminator's gradient at real images.

``γ/2 · E ||∇_x D(x)||²`` over the real images x keeps the discriminator from growing steep around
the data (the paper proves local convergence for losses such as BCE; StyleGAN trains with it). The
term is the ``1/2 · E ||∇_x D(x)||²`` part; its weight is γ (10 by default, ``r1@1`` for γ = 1). A
patch discriminator has one logit per patch, each a discriminator of its own: the term is R1 of each
logit, averaged over the map (and over scales, for a multi-scale discriminator), so γ means the same
at every crop size and patch size. The gradient is taken with respect to the image only, not the
condition a conditional discriminator also sees; with ``--disc-augment`` the discriminator sees the real
images augmented, as in its other passes, and the gradient is at the images before augmentation.

The per-logit average is estimated with one backward pass: for random signs v (±1 per logit),
``E_v ||∇ Σ_p v_p D_p||² = Σ_p ||∇ D_p||²`` (Hutchinson's trick), so the term is exact for a
discriminator with one logit per image and unbiased, not exact, for a map of several.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import GantkWarning, OptionError, caller_stacklevel
from .base import LossContext, Logits, Objective, uncompiled


def signed_scores(logits: Logits) -> Tensor:
    """One value per image whose squared input gradient estimates the mean over its logits (and
    scales) of each logit's: every logit times a random sign, summed, each map scaled by
    ``1 / sqrt(scales · logits per image)``."""
    maps = [logits] if isinstance(logits, Tensor) else list(logits)
    scores = 0
    for logit_map in maps:
        signs = torch.randint(0, 2, logit_map.shape, device=logit_map.device).to(logit_map.dtype) * 2 - 1
        scores = scores + (logit_map * signs).flatten(1).sum(1) / math.sqrt(len(maps) * logit_map[0].numel())
    return scores


def r1_penalty(discriminator: Callable[[Tensor], Logits], real: Tensor, condition: Tensor | None = None) -> Tensor:
    """``1/2 · mean over images of ||∇_x D(x)||²`` at the real images ``real`` (``N x C x H x W``),
    ``||∇_x D(x)||²`` the mean over the discriminator's logits of each one's (see the module).

    ``condition``, where given, is concatenated before each image (a conditional discriminator's
    input) and takes no gradient. The gradient keeps its graph (``create_graph``), so the penalty
    trains the discriminator; it is computed with autocast off (fp16 gradients of an unscaled output
    underflow).

    Example:
        >>> w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)  # D(x) = 3 x_1 + 4 x_2: a gradient of norm 5
        >>> r1_penalty(lambda x: (x * w).sum(1, keepdim=True), torch.randn(4, 2, 1, 1)).item()  # 1/2 · 5²
        12.5
    """
    real = real.detach().float().requires_grad_(True)
    shown = real if condition is None else torch.cat([condition.float(), real], dim=1)
    with torch.autocast(real.device.type, enabled=False):
        (grad,) = torch.autograd.grad(signed_scores(discriminator(shown)).sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(1).mean()


def couples_images(discriminator: Any) -> bool:
    """Whether ``discriminator`` normalises with batch statistics (a batch norm layer in training mode)."""
    return isinstance(discriminator, nn.Module) and any(isinstance(m, _BatchNorm) and m.training for m in discriminator.modules())


class R1Penalty(Objective):
    """R1: half the discriminator's squared gradient norm at real images, per logit (weight γ = 10).

    A discriminator-side term beside an adversarial one (``hinge+l1+r1``, ``bce+l1+r1@1``); it runs
    the discriminator once more, on the real images, with a double backward. Batch norm in the
    discriminator mixes the images whose gradients are penalised (a warning says so): instance norm
    or none suits it better.

    Example:
        >>> ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 1, 8, 8),
        ...                   real=torch.ones(2, 1, 8, 8), discriminator=torch.nn.Conv2d(2, 1, 3))
        >>> R1Penalty().discriminator_loss(ctx).shape
        torch.Size([])
    """

    default_weight = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.warned = False

    def discriminator_loss(self, ctx: LossContext) -> Tensor:
        if ctx.discriminator is None:
            raise OptionError("r1 penalises the discriminator's gradient, and there is none: choose one with --disc.")
        discriminator = uncompiled(ctx.discriminator)
        if not self.warned and ctx.real.shape[0] > 1 and couples_images(discriminator):
            self.warned = True
            warnings.warn("r1 with batch norm in the discriminator and batches of 2 or more: batch norm couples the images "
                          "whose gradients are penalised. Use --disc-opt norm=instance (or none), or --batch-size 1.",
                          GantkWarning, stacklevel=caller_stacklevel())
        return r1_penalty(lambda shown: discriminator(ctx.augmented(shown)), ctx.real, ctx.input if ctx.conditional else None)
