"""The gantk plugin: registers ``multiscale``, ``feature-matching`` and ``gantk multiscale-info``."""

from gantk import hookimpl

from .cli import multiscale_info
from .discriminator import MultiscaleDiscriminator
from .feature_matching import feature_matching


@hookimpl
def gantk_register_discriminators(registry):
    registry.add("multiscale", MultiscaleDiscriminator)


@hookimpl
def gantk_register_objectives(registry):
    registry.add("feature-matching", feature_matching)


@hookimpl
def gantk_register_commands(cli):
    cli.add_command(multiscale_info)
