"""Built-in objectives and objective specs.

Registered names: ``bce``, ``lsgan``, ``hinge`` (adversarial), ``l1``, ``l2`` (pixel),
``ce``, ``focal`` and ``lovasz`` (masks), ``cycle``, ``identity``, ``cycle-l2`` and ``identity-l2`` (unpaired),
``r1`` (a discriminator regulariser), ``vgg`` (perceptual, on VGG19 features).
Combine them in a spec such as ``"bce+l1"`` with :class:`ObjectiveSet`.
"""

from ..hookspecs import hookimpl
from .adversarial import (
    BCEGANLoss,
    HingeGANLoss,
    LSGANLoss,
    bce_discriminator_loss,
    bce_generator_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from .base import LossContext, Objective
from .cross_entropy import CrossEntropyLoss, FocalLoss, cross_entropy_loss
from .cycle import CycleLoss, IdentityLoss, cycle_l2, cycle_loss, identity_l2, identity_loss
from .lovasz import LovaszLoss, lovasz_loss
from .perceptual import PerceptualLoss
from .pixel import PixelL1Loss, PixelL2Loss, pixel_loss
from .r1 import R1Penalty, r1_penalty
from .spec import ObjectiveSet, ObjectiveTerm, parse_spec


@hookimpl
def gantk_register_objectives(registry):
    """Register the built-in objectives."""
    registry.add("bce", BCEGANLoss)
    registry.add("lsgan", LSGANLoss)
    registry.add("hinge", HingeGANLoss)
    registry.add("l1", PixelL1Loss)
    registry.add("l2", PixelL2Loss)
    registry.add("ce", CrossEntropyLoss)
    registry.add("focal", FocalLoss)
    registry.add("lovasz", LovaszLoss)
    registry.add("cycle", CycleLoss)
    registry.add("identity", IdentityLoss)
    registry.add("cycle-l2", cycle_l2)
    registry.add("identity-l2", identity_l2)
    registry.add("r1", R1Penalty)
    registry.add("vgg", PerceptualLoss)


__all__ = [
    "BCEGANLoss",
    "CrossEntropyLoss",
    "CycleLoss",
    "FocalLoss",
    "HingeGANLoss",
    "IdentityLoss",
    "LSGANLoss",
    "LossContext",
    "LovaszLoss",
    "Objective",
    "ObjectiveSet",
    "ObjectiveTerm",
    "PerceptualLoss",
    "PixelL1Loss",
    "PixelL2Loss",
    "R1Penalty",
    "bce_discriminator_loss",
    "bce_generator_loss",
    "cross_entropy_loss",
    "cycle_loss",
    "gantk_register_objectives",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "identity_loss",
    "lovasz_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "parse_spec",
    "pixel_loss",
    "r1_penalty",
]
