"""Adversarial objectives: vanilla (BCE), least-squares and hinge GAN losses.

Each loss is a pair of pure functions, one per step, and a thin :class:`Objective`.
The discriminator loss is the mean of its real and fake terms (the halved D loss of
pix2pix and CycleGAN). Logits may be one map or a list of maps from a multi-scale
discriminator: the loss is then the mean over scales.
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import OptionError
from .base import FLOAT32_MAX, LossContext, Logits, Objective


def _over_scales(loss: Callable[..., Tensor], *logits: Logits) -> Tensor:
    """Apply ``loss`` to one map per argument, or scale by scale to lists of maps, and average."""
    scales = [[x] if isinstance(x, Tensor) else list(x) for x in logits]
    count = len(scales[0])
    if count == 0 or any(len(s) != count for s in scales):
        lengths = [len(s) for s in scales]
        raise ValueError(f"expected a logit map or non-empty lists of maps of equal length, got lengths {lengths}")
    return sum(loss(*maps) for maps in zip(*scales)) / count


def _bce(logits: Tensor, label: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def _mse(logits: Tensor, label: float) -> Tensor:
    return F.mse_loss(logits, torch.full_like(logits, label))


def bce_discriminator_loss(real: Logits, fake: Logits, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    """Vanilla GAN discriminator loss: binary cross-entropy of the logits against 1 (real) and 0 (fake).

    Args:
        real: discriminator logits on real images.
        fake: discriminator logits on generated images, detached from the generator.
        real_label: target for real logits (e.g. 0.9 for one-sided label smoothing).
        fake_label: target for fake logits.

    Returns:
        ``0.5 * (BCE(real, real_label) + BCE(fake, fake_label))``, a scalar.

    Example:
        >>> bce_discriminator_loss(torch.tensor([2.0]), torch.tensor([-2.0]))
        tensor(0.1269)
    """
    return _over_scales(lambda r, f: 0.5 * (_bce(r, real_label) + _bce(f, fake_label)), real, fake)


def bce_generator_loss(fake: Logits) -> Tensor:
    """Non-saturating generator loss: binary cross-entropy of the fake logits against 1.

    Example:
        >>> bce_generator_loss(torch.tensor([0.0]))
        tensor(0.6931)
    """
    return _over_scales(lambda f: _bce(f, 1.0), fake)


def lsgan_discriminator_loss(real: Logits, fake: Logits, real_label: float = 1.0, fake_label: float = 0.0) -> Tensor:
    """Least-squares discriminator loss: ``0.5 * (mean((real - real_label)²) + mean((fake - fake_label)²))``.

    Example:
        >>> lsgan_discriminator_loss(torch.tensor([0.5]), torch.tensor([1.0]))
        tensor(0.6250)
    """
    return _over_scales(lambda r, f: 0.5 * (_mse(r, real_label) + _mse(f, fake_label)), real, fake)


def lsgan_generator_loss(fake: Logits) -> Tensor:
    """Least-squares generator loss: ``mean((fake - 1)²)``.

    Example:
        >>> lsgan_generator_loss(torch.tensor([0.5, 3.0]))
        tensor(2.1250)
    """
    return _over_scales(lambda f: _mse(f, 1.0), fake)


def hinge_discriminator_loss(real: Logits, fake: Logits) -> Tensor:
    """Hinge discriminator loss: ``0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))``.

    Example:
        >>> hinge_discriminator_loss(torch.tensor([0.5, 2.0]), torch.tensor([0.0, -3.0]))
        tensor(0.3750)
    """
    return _over_scales(lambda r, f: 0.5 * (F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()), real, fake)


def hinge_generator_loss(fake: Logits) -> Tensor:
    """Hinge generator loss: ``-mean(fake)``.

    Example:
        >>> hinge_generator_loss(torch.tensor([0.5, 2.0]))
        tensor(-1.2500)
    """
    return _over_scales(lambda f: -f.mean(), fake)


def _labels(name: str, real_label: float, fake_label: float, *, probabilities: bool) -> tuple[float, float]:
    """Check the discriminator targets of ``name``; BCE targets must also be probabilities."""
    low, high = (0.0, 1.0) if probabilities else (-FLOAT32_MAX, FLOAT32_MAX)
    if not low <= fake_label < real_label <= high:
        bounds = "0 <= fake_label < real_label <= 1" if probabilities else "finite labels with fake_label < real_label"
        raise OptionError(
            f"{name} needs {bounds}, got real_label={real_label}, fake_label={fake_label}; "
            "e.g. real_label=0.9 for one-sided label smoothing."
        )
    return float(real_label), float(fake_label)


class _LabelledGANLoss(Objective):
    """An adversarial loss whose discriminator targets are the labels ``real_label`` and ``fake_label``."""

    adversarial = True
    spec_name: ClassVar[str]  # how messages name the loss
    labels_are_probabilities: ClassVar[bool]
    _generator_loss: ClassVar[Callable[[Logits], Tensor]]
    _discriminator_loss: ClassVar[Callable[[Logits, Logits, float, float], Tensor]]

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        self.real_label, self.fake_label = _labels(self.spec_name, real_label, fake_label, probabilities=self.labels_are_probabilities)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return self._generator_loss(ctx.d_fake)

    def discriminator_loss(self, ctx: LossContext) -> Tensor:
        return self._discriminator_loss(*ctx.discriminator_step_logits(), self.real_label, self.fake_label)

    def extra_repr(self) -> str:
        return f"real_label={self.real_label}, fake_label={self.fake_label}"


class BCEGANLoss(_LabelledGANLoss):
    """Vanilla GAN loss (binary cross-entropy on logits), non-saturating for the generator.

    Args:
        real_label: the discriminator's target for real images (the generator always targets 1).
        fake_label: the discriminator's target for fakes.

    Example:
        >>> ctx = LossContext(input=torch.zeros(1, 1, 4, 4), fake=torch.zeros(1, 1, 4, 4),
        ...                   real=torch.ones(1, 1, 4, 4), discriminator=torch.nn.Conv2d(2, 1, 3))
        >>> BCEGANLoss(real_label=0.9).discriminator_loss(ctx).shape
        torch.Size([])
    """

    spec_name, labels_are_probabilities = "bce", True
    _generator_loss = staticmethod(bce_generator_loss)
    _discriminator_loss = staticmethod(bce_discriminator_loss)


class LSGANLoss(_LabelledGANLoss):
    """Least-squares GAN loss (Mao et al. 2017): squared distance of the logits to their targets.

    Args:
        real_label: the discriminator's target for real images (the generator always targets 1).
        fake_label: the discriminator's target for fakes.
    """

    spec_name, labels_are_probabilities = "lsgan", False
    _generator_loss = staticmethod(lsgan_generator_loss)
    _discriminator_loss = staticmethod(lsgan_discriminator_loss)


class HingeGANLoss(Objective):
    """Hinge GAN loss (Lim & Ye 2017; used by SAGAN and SPADE)."""

    adversarial = True

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return hinge_generator_loss(ctx.d_fake)

    def discriminator_loss(self, ctx: LossContext) -> Tensor:
        return hinge_discriminator_loss(*ctx.discriminator_step_logits())
