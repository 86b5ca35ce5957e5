"""The hook contracts every gantk plugin implements, built-in or third-party.

A plugin is a module or object with functions marked ``@gantk.hookimpl`` whose names are the
hooks below. Packages advertise plugins in the ``gantk`` entry-point group::

    [project.entry-points.gantk]
    myplugin = "my_package.plugin"

Each ``register`` hook receives a registry view whose ``add(name, factory, override=False)``
records the plugin as the provider. A factory is any callable taking keyword options.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from .registry import PluginRegistry

hookspec = pluggy.HookspecMarker("gantk")
hookimpl = pluggy.HookimplMarker("gantk")


@hookspec
def gantk_register_generators(registry: PluginRegistry) -> None:
    """Add generator factories ``f(in_channels, out_channels, **options) -> nn.Module``.

    The module maps ``N x in_channels x H x W`` to ``N x out_channels x H x W``. It may expose
    ``size_multiple`` (H and W must be multiples of it) and ``min_input_size`` (the smallest H and W
    it takes); training and translation check crop and input sizes against both. A generator
    that can be trained on masks (``--recipe seg``) takes ``final_activation``: ``"tanh"`` (its
    default, for images) or ``"none"`` (raw logits).
    """


@hookspec
def gantk_register_discriminators(registry: PluginRegistry) -> None:
    """Add discriminator factories ``f(in_channels, **options) -> nn.Module``.

    The module maps ``N x in_channels x H x W`` to logits ``N x 1 x h x w`` (or a list of such maps
    for multi-scale models) and exposes ``receptive_field`` (pixels, or ``None`` for the whole
    image). It may expose ``features(x) -> list[Tensor]`` (one list per scale for multi-scale
    models) for feature-matching objectives, and ``size_multiple`` and ``min_input_size`` as
    generators do. A conditional discriminator's ``in_channels`` counts both images.
    """


@hookspec
def gantk_register_objectives(registry: PluginRegistry) -> None:
    """Add objective factories ``f(**options) -> gantk.Objective`` usable in specs like ``bce+l1``."""


@hookspec
def gantk_register_data_formats(registry: PluginRegistry) -> None:
    """Add dataset formats: factories ``f() -> gantk.data.DataFormat``."""


@hookspec
def gantk_register_recipes(registry: PluginRegistry) -> None:
    """Add recipes: factories ``f() -> gantk.recipes.base.Recipe`` (defaults, the system they build and its own options)."""


@hookspec
def gantk_register_commands(cli: click.Group) -> None:
    """Add click commands to the ``gantk`` command group ``cli`` (``cli.add_command(...)``)."""
