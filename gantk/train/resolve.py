"""Filling a configuration's unset keys: demo settings, the recipe's defaults, then fallbacks; and a
generator depth that fits the crop size."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import GantkWarning, OptionError, caller_stacklevel
from ..files import user_path
from ..nn import round_up
from ..objectives.spec import checked_spec
from ..plugins import Components
from ..option_values import type_mismatch
from .config import PATH_KEYS, TrainConfig, flag

# Settings of the embedded demo (no --data): small crops and nets so it ends in minutes on 2 CPU cores.
DEMO_SETTINGS = {
    "load_size": 72, "crop_size": 64, "batch_size": 4, "max_steps": 1500,
    "gen_opt": {"ngf": 32}, "disc_opt": {"ndf": 32},
}
# Values of the keys that neither the user nor the recipe set (the pix2pix paper's).
FALLBACKS = {"epochs": 200, "decay_start": 0.5, "batch_size": 1, "flip": True, "lr": 2e-4, "beta1": 0.5, "beta2": 0.999,
             "conditional": True, "pool_size": 50, "n_critic": 1}

WIDE_BOTTLENECK = 4  # px a side left by a fitted U-Net depth above which the trainer warns
NETWORK_KINDS = {"gen": "generator", "disc": "discriminator"}  # config key -> registry kind


def resolve_config(config: TrainConfig, components: Components) -> TrainConfig:
    """Fill unset keys from the demo settings (no data), the recipe, then the fallbacks.

    When another network replaces a recipe's, it keeps the recipe's options it accepts (as the
    reference's command-line flags do: ``--norm instance`` stays with any CycleGAN discriminator).
    """
    recipe = components.create("recipe", config.recipe)
    defaults = dict(recipe.defaults)
    for key, listing in (("gen", "generators"), ("loss", "objectives")):  # no discriminator is a choice
        if getattr(config, key) is None and defaults.get(key) is None:
            raise OptionError(
                f"recipe '{config.recipe}' sets no --{key} and none was given: pass --{key} NAME "
                f"('gantk list {listing}' shows them), or add \"{key}\" to the recipe's defaults."
            )
    for net, kind in NETWORK_KINDS.items():
        if getattr(config, net) not in (None, defaults.get(net)):
            defaults[f"{net}_opt"] = accepted_options(components, kind, getattr(config, net), defaults.get(f"{net}_opt", {}))
    if config.data is None:
        chosen = {net: getattr(config, net) or defaults.get(net) for net in ("gen", "disc")}
        settings = demo_settings(components, **chosen)
        if config.epochs is not None:  # a length in epochs replaces the demo's in steps
            del settings["max_steps"]
        config = config.merged(settings, only_unset=True)
    try:
        config = config.merged(defaults, only_unset=True)
    except OptionError as error:
        plugin = components.registry("recipe").get(config.recipe).plugin
        raise OptionError(f"recipe '{config.recipe}' (plugin '{plugin}') has a default that is not a setting's value: {error} "
                          "Fix the recipe's defaults.") from None
    config = config.merged(FALLBACKS, only_unset=True)
    try:
        config = dataclasses.replace(config, recipe_opt=recipe.settings(config.recipe_opt))
    except OptionError as error:
        plugin = components.registry("recipe").get(config.recipe).plugin
        raise OptionError(f"{error} The recipe comes from plugin '{plugin}'.") from None
    if config.disc == "none":  # kept as "none" so a resumed run does not fall back to the recipe's
        config = dataclasses.replace(config, disc_opt={})
    for key in PATH_KEYS:  # absolute, so the run resumes from any working directory
        if isinstance(path := getattr(config, key), (str, os.PathLike)):
            config = dataclasses.replace(config, **{key: str(Path(user_path(path, flag(key))).absolute())})
    if isinstance(config.out, (str, os.PathLike)):
        config = dataclasses.replace(config, out=user_path(config.out, flag("out")))
    config.validate()
    return config


def check_part_options(config: TrainConfig, components: Components) -> None:
    """Refuse an unknown objective, or an option the networks or objectives of ``config`` do not take (or of another
    type), before the data are read and checked; the parts are built, and checked whole, after."""
    for net, kind in NETWORK_KINDS.items():
        if getattr(config, net) not in (None, "none"):
            components.registry(kind).checked_options(getattr(config, net), getattr(config, f"{net}_opt"))
    checked_spec(config.loss, components.registry("objective"), config.loss_opt)


def demo_settings(components: Components, gen: str | None, disc: str | None) -> dict[str, Any]:
    """``DEMO_SETTINGS`` without the width options that the chosen networks do not take."""
    settings = dict(DEMO_SETTINGS)
    for net, name in (("gen", gen), ("disc", disc)):
        settings[f"{net}_opt"] = accepted_options(components, NETWORK_KINDS[net], name, settings[f"{net}_opt"])
    return settings


def accepted_options(components: Components, kind: str, name: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The part of ``options`` that component ``name`` of ``kind`` takes, with values of the types it
    takes (a recipe's ``dropout=0.5`` does not go to a network whose ``dropout`` is true or false)."""
    entry = None if name in (None, "none") else components.registry(kind).get(name)
    if entry is None:
        return {}
    types_ = entry.option_types()

    def fits(key: str, value: Any) -> bool:
        wanted, none_allowed = types_.get(key, (None, True))
        return wanted is None or (value is None and none_allowed) or type_mismatch(key, wanted, None, value) is None

    return {key: value for key, value in options.items() if entry.takes_option(key) and fits(key, value)}


def fit_generator_depth(config: TrainConfig, components: Components) -> TrainConfig:
    """Give a generator with a ``num_downs`` option the deepest depth the crop size allows, unless set.

    The paper's U-Net reaches a 1x1 bottleneck: 8 down-samplings at 256 px, 7 at 128 px.
    """
    entry = components.registry("generator").get(config.gen)
    default = entry.options().get("num_downs")
    if not isinstance(default, int) or "num_downs" in config.gen_opt or not config.crop_size:
        return config
    fitting = min(default, (config.crop_size & -config.crop_size).bit_length() - 1)
    if fitting < 1:
        raise OptionError(
            f"generator '{config.gen}' halves the image num_downs times, which an odd --crop-size "
            f"({config.crop_size}) does not allow: use a multiple of a power of two, e.g. "
            f"{' or '.join(str(side) for side in (config.crop_size // 16 * 16, round_up(config.crop_size, 16)) if side)} "
            "(no more than --load-size)."
        )
    if fitting == default:
        return config
    bottleneck = config.crop_size >> fitting
    if bottleneck > WIDE_BOTTLENECK:
        deeper = 1 << config.crop_size.bit_length() - 1  # the largest power of two below the crop size
        warnings.warn(
            f"generator '{config.gen}' takes num_downs={fitting} at --crop-size {config.crop_size} (its sides must be "
            f"multiples of 2 ** num_downs), leaving a {bottleneck}x{bottleneck} bottleneck: a crop size that is a multiple "
            f"of a larger power of two (e.g. {deeper}) gives a deeper network.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    return config.merged({"gen_opt": {"num_downs": fitting}})
