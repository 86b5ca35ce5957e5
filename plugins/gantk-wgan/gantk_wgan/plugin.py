"""The gantk plugin: registers ``wgan-gp``, ``wgan``, the spectral-norm discriminators ``sn-*`` and
the ``wgan-clip`` recipe."""

from gantk import hookimpl

from .clipping import wgan_clip
from .spectral import VARIANTS, spectral_variant
from .wgan_gp import wgan, wgan_gp


@hookimpl
def gantk_register_discriminators(registry):
    for name, (base, description) in VARIANTS.items():
        registry.add(name, spectral_variant(base, description))


@hookimpl
def gantk_register_objectives(registry):
    registry.add("wgan-gp", wgan_gp)
    registry.add("wgan", wgan)


@hookimpl
def gantk_register_recipes(registry):
    registry.add("wgan-clip", wgan_clip)
