"""Spectral-norm discriminators (Miyato et al. 2018): gantk's built-ins with every convolution normalised.

Each variant calls the built-in factory with ``norm="none"`` and puts
``torch.nn.utils.parametrizations.spectral_norm`` on every convolution, so it takes the same
options as its base except ``norm``, plus ``n_power_iterations``.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.utils.parametrizations import spectral_norm

from gantk.discriminators import image, patch
from gantk.errors import OptionError

Factory = Callable[..., nn.Module]

VARIANTS: dict[str, tuple[Factory, str]] = {
    "sn-patch": (patch.PatchDiscriminator, "PatchGAN (n_layers stride-2 convolutions)"),
    "sn-patch16": (patch.patch16, "16x16 PatchGAN"),
    "sn-patch70": (patch.patch70, "70x70 PatchGAN"),
    "sn-patch286": (patch.patch286, "286x286 PatchGAN"),
    "sn-pixel": (patch.PixelDiscriminator, "PixelGAN (1x1 convolutions)"),
    "sn-image": (image.ImageDiscriminator, "ImageGAN (one logit per image)"),
}


def spectral_norm_convolutions(module: nn.Module, n_power_iterations: int = 1) -> nn.Module:
    """Put spectral norm on the weight of every convolution of ``module``, in place.

    In training mode each forward pass runs ``n_power_iterations`` of the power method and
    divides the weight (as an ``out x in*k*k`` matrix) by its estimated largest singular value.

    Returns:
        ``module``.

    Example:
        >>> net = spectral_norm_convolutions(nn.Sequential(nn.Conv2d(3, 8, 4), nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4)))
        >>> type(net[0].parametrizations.weight[0]).__name__
        '_SpectralNorm'
    """
    for conv in [m for m in module.modules() if isinstance(m, _ConvNd)]:
        spectral_norm(conv, n_power_iterations=n_power_iterations)
    return module


def spectral_variant(base: Factory, description: str) -> Factory:
    """A factory building ``base(norm="none", ...)`` with spectral norm on every convolution.

    Its options are ``base``'s without ``norm`` plus ``n_power_iterations`` (default 1).
    """
    parameters = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(base).parameters.values()
        if p.name != "norm"
    ]
    parameters.append(inspect.Parameter("n_power_iterations", inspect.Parameter.KEYWORD_ONLY, default=1))

    def build(*, n_power_iterations: int = 1, **options: Any) -> nn.Module:
        if not isinstance(n_power_iterations, int) or n_power_iterations < 1:
            raise OptionError(f"n_power_iterations must be a positive integer, got {n_power_iterations!r}.")
        return spectral_norm_convolutions(base(norm="none", **options), n_power_iterations)

    build.__signature__ = inspect.Signature(parameters)
    build.__doc__ = (
        f"{description} with spectral norm on every convolution and no normalisation layers.\n\n"
        "Options are those of the built-in discriminator without ``norm``, plus ``n_power_iterations``\n"
        "(power-method steps per forward pass in training mode)."
    )
    return build
