"""R1 regularisation (Mescheder et al. 2018): a penalty on the discriminator's gradient at real images.

``γ/2 · E ||∇_x D(x)||²`` over the real images x keeps the discriminator from growing steep around
the data, which stabilises training with any adversarial loss (StyleGAN trains with it). The term
is the ``1/2 · E ||∇_x D(x)||²`` part; its weight is γ (10 by default, ``r1@1`` for γ = 1). A patch
discriminator's value for an image is the mean of its logit map (averaged over scales for a
multi-scale one), and the gradient is taken with respect to the image only, not the condition a
conditional discriminator also sees.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ..errors import OptionError
from .base import LossContext, Logits, Objective


def image_scores(logits: Logits) -> Tensor:
    """One value per image: the mean of its logit map, or of each map averaged over scales.

    Example:
        >>> image_scores([torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)])
        tensor([0.5000, 0.5000])
    """
    maps = [logits] if isinstance(logits, Tensor) else list(logits)
    return torch.stack([m.flatten(1).mean(1) for m in maps]).mean(0)


def r1_penalty(discriminator: Callable[[Tensor], Logits], real: Tensor, condition: Tensor | None = None) -> Tensor:
    """``1/2 · mean over images of ||∇_x D(x)||²`` at the real images ``real`` (``N x C x H x W``).

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
        (grad,) = torch.autograd.grad(image_scores(discriminator(shown)).sum(), real, create_graph=True)
    return 0.5 * grad.flatten(1).pow(2).sum(1).mean()


def uncompiled(discriminator: Any) -> Any:
    """The module under a ``torch.compile`` wrapper (compiled graphs have no double backward)."""
    return getattr(discriminator, "_orig_mod", discriminator)


class R1Penalty(Objective):
    """R1: the discriminator's squared gradient norm at real images, ``1/2 · E ||∇_x D(x)||²`` (weight γ = 10).

    A discriminator-side term beside an adversarial one (``hinge+l1+r1``, ``bce+l1+r1@1``); it runs
    the discriminator once more, on the real images, with a double backward. Batch norm in the
    discriminator mixes the images whose gradients are penalised: instance norm or none suits it better.

    Example:
        >>> ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 1, 8, 8),
        ...                   real=torch.ones(2, 1, 8, 8), discriminator=torch.nn.Conv2d(2, 1, 3))
        >>> R1Penalty().discriminator_loss(ctx).shape
        torch.Size([])
    """

    default_weight = 10.0

    def discriminator_loss(self, ctx: LossContext) -> Tensor:
        if ctx.discriminator is None:
            raise OptionError("r1 penalises the discriminator's gradient, and there is none: choose one with --disc.")
        return r1_penalty(uncompiled(ctx.discriminator), ctx.real, ctx.input if ctx.conditional else None)
