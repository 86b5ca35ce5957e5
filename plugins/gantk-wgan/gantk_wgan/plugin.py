"""The gantk plugin: registers ``wgan-gp`` and the spectral-norm discriminators ``sn-*``."""

from gantk import hookimpl

from .spectral import VARIANTS, spectral_variant
from .wgan_gp import wgan_gp


@hookimpl
def gantk_register_discriminators(registry):
    for name, (base, description) in VARIANTS.items():
        registry.add(name, spectral_variant(base, description))


@hookimpl
def gantk_register_objectives(registry):
    registry.add("wgan-gp", wgan_gp)
