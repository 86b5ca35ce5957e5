"""WGAN-GP (Gulrajani et al. 2017): a Wasserstein critic kept 1-Lipschitz by a gradient penalty.

A patch discriminator gives a map of logits per image; the critic's value for an image is the
mean of that map, averaged over scales for a multi-scale discriminator. The losses and the
gradient penalty all use this per-image value, so the penalty constrains exactly the function
whose differences the discriminator loss estimates.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from gantk import LossContext, Objective
from gantk.errors import GantkWarning, OptionError, caller_stacklevel
from gantk.objectives.base import Logits, uncompiled


def critic_scores(logits: Logits) -> Tensor:
    """One critic value per image: the mean of its logit map, or of each map averaged over scales.

    Example:
        >>> critic_scores([torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 2, 2)])
        tensor([0.5000, 0.5000])
    """
    maps = [logits] if isinstance(logits, Tensor) else list(logits)
    if not maps:
        raise ValueError("expected a logit map or a non-empty list of maps")
    return torch.stack([m.flatten(1).mean(1) for m in maps]).mean(0)


def wgan_discriminator_loss(real: Logits, fake: Logits) -> Tensor:
    """The critic's loss ``mean(D(fake)) - mean(D(real))``, the negated Wasserstein estimate.

    Example:
        >>> wgan_discriminator_loss(torch.tensor([[2.0]]), torch.tensor([[-1.0]]))
        tensor(-3.)
    """
    return critic_scores(fake).mean() - critic_scores(real).mean()


def wgan_generator_loss(fake: Logits) -> Tensor:
    """The generator's loss ``-mean(D(fake))``.

    Example:
        >>> wgan_generator_loss(torch.tensor([[0.5], [1.5]]))
        tensor(-1.)
    """
    return -critic_scores(fake).mean()


def gradient_penalty(
    critic: Callable[[Tensor], Logits], real: Tensor, fake: Tensor, alpha: Tensor | None = None
) -> Tensor:
    """``mean((||grad critic(x_hat)||_2 - 1)^2)`` at ``x_hat = alpha * real + (1 - alpha) * fake``.

    The gradient is taken per image with respect to ``x_hat`` only (not a condition the critic
    adds), with ``create_graph=True`` so the penalty trains the critic. It is computed with
    autocast off: fp16 gradients of an unscaled output underflow.

    Args:
        critic: maps a batch of images ``N x C x H x W`` to logits (one map or a list per scale).
        real: real images; detached.
        fake: generated images; detached.
        alpha: interpolation weights, shape ``N``; uniform in [0, 1) when omitted.

    Example:
        >>> w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1) / 5  # a critic with unit gradient
        >>> penalty = gradient_penalty(lambda x: (x * w).sum(1, keepdim=True), torch.randn(4, 2, 1, 1), torch.randn(4, 2, 1, 1))
        >>> round(penalty.item(), 6)
        0.0
    """
    if alpha is None:
        alpha = torch.rand(real.shape[0], device=real.device)
    alpha = alpha.view(-1, *[1] * (real.dim() - 1))
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    with torch.autocast(x_hat.device.type, enabled=False):
        scores = critic_scores(critic(x_hat))
        (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
        norm = grad.flatten(1).pow(2).sum(1).add(1e-12).sqrt()  # finite gradient at a zero norm
        return (norm - 1).pow(2).mean()


def warn_on_batch_norm(discriminator: Any) -> None:
    """Warn when ``discriminator`` has batch norm, which mixes the images whose gradients are penalised."""
    if isinstance(discriminator, nn.Module) and any(isinstance(m, _BatchNorm) for m in discriminator.modules()):
        warnings.warn(
            "wgan-gp with batch norm in the discriminator: the gradient penalty is per image, batch norm "
            "couples the images of a batch. Use --disc-opt norm=instance (or none), or an sn-* discriminator.",
            GantkWarning,
            stacklevel=caller_stacklevel("gantk_wgan"),
        )


class WGANGPLoss(Objective):
    """WGAN-GP: Wasserstein critic loss plus ``lambda_gp`` times the gradient penalty; ``-mean(D(fake))`` for G.

    The penalty runs the discriminator a third time, on interpolates between real and fake images
    (with the condition when conditional). Avoid batch norm in the discriminator (a warning says
    so): use instance norm, no norm or the ``sn-*`` discriminators.

    Args:
        lambda_gp: weight of the gradient penalty (10 in the paper); 0 gives the plain Wasserstein loss.

    Example:
        >>> ctx = LossContext(input=torch.zeros(2, 1, 8, 8), fake=torch.zeros(2, 1, 8, 8),
        ...                   real=torch.ones(2, 1, 8, 8), discriminator=torch.nn.Conv2d(2, 1, 3))
        >>> WGANGPLoss().discriminator_loss(ctx).shape
        torch.Size([])
    """

    adversarial = True

    def __init__(self, lambda_gp: float = 10.0):
        super().__init__()
        if not (math.isfinite(lambda_gp) and lambda_gp >= 0):
            raise OptionError(f"wgan-gp needs a finite lambda_gp >= 0 (10 in the paper), got {lambda_gp}.")
        self.lambda_gp = float(lambda_gp)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return wgan_generator_loss(ctx.d_fake)

    def discriminator_loss(self, ctx: LossContext) -> Tensor:
        loss = wgan_discriminator_loss(*ctx.discriminator_step_logits())
        if self.lambda_gp == 0:
            return loss
        warn_on_batch_norm(ctx.discriminator)
        critic = uncompiled(ctx.discriminator)
        penalty = gradient_penalty(lambda image: critic(ctx.discriminator_input(image)), ctx.real, ctx.fake)
        return loss + self.lambda_gp * penalty

    def extra_repr(self) -> str:
        return f"lambda_gp={self.lambda_gp}"


def wgan() -> WGANGPLoss:
    """Wasserstein loss without a penalty, for a critic kept Lipschitz otherwise (clipped weights, spectral norm)."""
    return WGANGPLoss(lambda_gp=0.0)


def wgan_gp(lambda_gp: float = 10.0) -> WGANGPLoss:
    """WGAN-GP loss: Wasserstein critic with a gradient penalty (Gulrajani et al. 2017).

    Args:
        lambda_gp: weight of the gradient penalty; 0 gives the plain Wasserstein loss.
    """
    return WGANGPLoss(lambda_gp)
