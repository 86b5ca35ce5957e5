"""pix2pixHD discriminator feature matching: L1 between D's intermediate features on real and fake."""

from __future__ import annotations

from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gantk import LossContext, Objective
from gantk.objectives.base import discriminator_label, feature_extractor
from gantk.errors import OptionError

Features = Union[Sequence[Tensor], Sequence[Sequence[Tensor]]]  # one scale, or one list per scale


def per_scale(features: Features) -> list[list[Tensor]]:
    """``features(x)`` of a single-scale discriminator (a list of maps) as a one-scale list."""
    return [list(features)] if isinstance(features[0], Tensor) else [list(scale) for scale in features]


def feature_matching_loss(fake: Features, real: Features) -> Tensor:
    """Mean over scales of the mean over layers of ``L1(fake, real)``; each scale's last map (its logits) is left out.

    Args:
        fake: ``features(x)`` of the discriminator on the generated image: a list of maps ending
            with the logits, or one such list per scale.
        real: the same on the real image (detach it: only the fake's features are matched).

    Example:
        >>> fake = [torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 1, 1)]
        >>> real = [torch.ones(1, 2, 4, 4), torch.ones(1, 1, 2, 2), torch.ones(1, 1, 1, 1)]
        >>> feature_matching_loss(fake, real)
        tensor(0.5000)
    """
    fake, real = per_scale(fake), per_scale(real)
    if len(fake) != len(real) or any(len(f) != len(r) for f, r in zip(fake, real)):
        raise ValueError("fake and real features must have the same scales and layers")
    if any(len(scale) < 2 for scale in fake):
        raise OptionError("feature matching needs at least one feature map before the logits at every scale.")
    losses = [torch.stack([F.l1_loss(f, r) for f, r in zip(fs[:-1], rs[:-1])]).mean() for fs, rs in zip(fake, real)]
    return torch.stack(losses).mean()


def features_module(discriminator: Any) -> Any:
    """The module whose ``features`` to call: ``discriminator`` itself, or the one a ``torch.compile``
    or DDP wrapper holds (``gantk.objectives.base.feature_extractor``).

    Raises:
        OptionError: no discriminator, or none of the wrapped modules has ``features``.
    """
    module = feature_extractor(discriminator)
    if module is None:
        name = "there is no discriminator" if discriminator is None else f"{discriminator_label(discriminator)} has none"
        raise OptionError(
            f"feature-matching needs a discriminator with features(x), and {name}: use --disc multiscale "
            "or a built-in PatchGAN (e.g. patch70), with an adversarial term such as bce."
        )
    return module


class FeatureMatchingLoss(Objective):
    """pix2pixHD feature matching: the generator matches D's intermediate features on the real image.

    Works with any discriminator exposing ``features(x)``: a list of maps ending with the logits
    (gantk's PatchGANs) or one such list per scale (``multiscale``). Generator-side only; the
    discriminator is trained by the spec's adversarial term. Real features are computed without
    gradients. pix2pixHD weights each layer by ``4 / (n_layers + 1)``, i.e. four times this mean:
    ``feature-matching@40`` reproduces its ``lambda_feat = 10``. pix2pixHD sums its GAN loss over
    scales where gantk averages it, so its balance of the two terms is ``@40 / num_scales``.

    Example:
        >>> from gantk.discriminators.patch import patch16
        >>> ctx = LossContext(input=torch.zeros(1, 3, 16, 16), fake=torch.zeros(1, 3, 16, 16),
        ...                   real=torch.ones(1, 3, 16, 16), discriminator=patch16(6, ndf=4, norm="none"))
        >>> FeatureMatchingLoss().generator_loss(ctx).shape
        torch.Size([])
    """

    default_weight = 10.0
    reads_discriminator_features = True  # the adversarial term then takes its logits from the same pass on the fake

    def generator_loss(self, ctx: LossContext) -> Tensor:
        discriminator = features_module(ctx.discriminator)
        with torch.no_grad():
            real = discriminator.features(ctx.discriminator_input(ctx.real))
        return feature_matching_loss(ctx.d_fake_features, real)


def feature_matching() -> FeatureMatchingLoss:
    """pix2pixHD feature matching: L1 between D's intermediate features on real and fake (weight 10)."""
    return FeatureMatchingLoss()
