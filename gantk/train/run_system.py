"""The system a run trains: built from its settings (or its checkpoint's), checked, and warned of settings that miss."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from ..data.formats import SegmentationFormat
from ..data.opening import get_format
from ..data.validate import DatasetSummary
from ..errors import CheckpointError, GantkError, GantkWarning, OptionError, caller_stacklevel
from ..objectives.base import Objective
from ..objectives.spec import ObjectiveSet
from ..plugins import Components
from ..systems import ContrastiveSystem, CycleSystem, PairedSystem
from ..systems.base import System, check_phases
from . import checkpoint as ckpt
from .config import TrainConfig
from .crop_fit import check_crop_fits
from .init_from import start_from_weights
from .resolve import FALLBACKS


@dataclass
class RunSystem:
    """What :func:`build_run_system` built: the system, what checkpoints rebuild it from, each part's provider, and the
    run's settings (with --init-from, the file's hash recorded)."""

    system: System
    system_config: dict[str, Any]
    part_plugins: dict[str, dict[str, dict[str, str]]]
    config: TrainConfig


def build_run_system(config: TrainConfig, given_config: TrainConfig, components: Components, resume_from: dict[str, Any] | None,
                     dataset: Any, device: torch.device, summary: DatasetSummary | None) -> RunSystem:
    """The system ``config`` describes for ``dataset`` (or the checkpoint ``resume_from``'s), on ``device``, its
    objectives prepared. ``given_config`` is ``config`` as the user gave it; ``summary``, the data's check."""
    sys_config = ckpt.system_config(config, dataset, components)
    if resume_from is not None:
        refuse_another_system(resume_from, sys_config, config, components)
    torch.manual_seed(config.seed)
    resuming = ckpt.missing_plugin_errors(resume_from, components, rebuilding=True) if resume_from else None
    with resuming or contextlib.nullcontext(), recipe_options_named(config, given_config, components):
        if resume_from is not None:
            ckpt.check_weights_fit(sys_config, components, resume_from["system_state"], resume_from["path"])
        system = ckpt.system_from_config(sys_config, components, for_checkpoint=resume_from is not None).to(device)
    check_phases(system, config.recipe)
    if config.disc_augment and system.disc_augment is None:
        raise OptionError(f"--disc-augment {config.disc_augment}: the system of recipe '{config.recipe}' "
                          f"({type(system).__name__}) does not augment what its discriminators see (it sets no "
                          "disc_augment; see gantk.systems.base.disc_augmentation): drop --disc-augment.")
    if resume_from is None:  # warned once, when the run began
        warn_if_no_pool(system, config, given_config, components)
        warn_if_dropout_reaches_no_layer(system, config, given_config, components)
    prepare_objectives(system)
    part_plugins = ckpt.part_plugins(sys_config, components)
    unresized = config.resize == "none"
    smallest = summary.smallest_short_side(summary.training_split) if summary else None
    check_crop_fits(system, config.crop_size, None if unresized else config.load_size, smallest if unresized else None)
    if config.channels_last:
        system.to(memory_format=torch.channels_last)
    if config.init_from is not None and resume_from is None:
        config = dataclasses.replace(config, init_from=start_from_weights(system, config.init_from))
        system.reset_averages()  # an average starts from the weights the run starts from
    return RunSystem(system, sys_config, part_plugins, config)


def refuse_another_system(resume_from: dict[str, Any], sys_config: dict[str, Any], config: TrainConfig,
                          components: Components) -> None:
    """Raise unless ``sys_config`` describes the system of the checkpoint resumed: same parts, options and data."""
    saved = resume_from["system"]

    def recorded_default(key: str) -> bool:  # what the checkpoint's gantk recorded of its parts' defaults
        return key.endswith("_defaults") or key == "loss_weights"

    changed = sorted(k for k in set(saved) | set(sys_config) if saved.get(k) != sys_config.get(k)
                     and not (recorded_default(k) and saved.get(k) is None))  # None: not recorded
    if "num_classes" in changed and benchmark_classes(config, components) == sys_config["num_classes"]:
        raise CheckpointError(
            f"checkpoint {resume_from['path']} predicts {saved.get('num_classes')} classes, counted from the masks "
            f"of part of the {config.data_format} benchmark by a gantk that did not give that format the "
            f"benchmark's {sys_config['num_classes']} classes: the run cannot continue; start a new one (gantk "
            "translate runs its checkpoints)."
        )
    if changed:
        described = [change for k in changed for change in ckpt.setting_changes(k, saved.get(k), sys_config.get(k))]
        remedy = ("a default of its parts changed since: install the gantk or plugin versions it was trained with to resume it."
                  if any(map(recorded_default, changed)) else "resume with the data and options of the original run.")
        raise CheckpointError(
            f"checkpoint {resume_from['path']} was made with different settings ({'; '.join(described)}); {remedy}"
        )


def benchmark_classes(config: TrainConfig, components: Components) -> int | None:
    """The fixed class count of the run's data format (a benchmark's layout), if it has one."""
    layout = get_format(config.data_format, components) if config.data_format else None
    return layout.benchmark_classes(config.ignore_label) if isinstance(layout, SegmentationFormat) else None


@contextlib.contextmanager
def recipe_options_named(config: TrainConfig, given_config: TrainConfig, components: Components) -> Iterator[None]:
    """Add to a network's refusal of its options the ones the recipe gave it, which the user did not type."""
    try:
        yield
    except OptionError as error:
        defaults = components.create("recipe", config.recipe).defaults
        refusal = str(error)
        if " could not be built with " in refusal:  # it lists every option given: look only at what refused them
            refusal = refusal.split(" could not be built with ", 1)[1].partition(": ")[2]
        for kind, key, flag in (("generator", "gen_opt", "--gen-opt"), ("discriminator", "disc_opt", "--disc-opt")):
            used, typed = getattr(config, key), getattr(given_config, key)
            from_recipe = {k: v for k, v in (defaults.get(key) or {}).items()
                           if k in used and k not in typed and re.search(rf"\b{re.escape(k)}\b", refusal)}
            if str(error).startswith(f"{kind} ") and from_recipe:
                options = ", ".join(f"{k}={v!r}" for k, v in from_recipe.items())
                raise OptionError(f"{str(error).rstrip('.')}. Recipe '{config.recipe}' gives the {kind} {options} "
                                  f"unless {flag} sets {'it' if len(from_recipe) == 1 else 'them'}.") from None
        raise


def warn_if_no_pool(system: System, config: TrainConfig, given_config: TrainConfig, components: Components) -> None:
    """Warn of a --pool-size given for a built-in system that keeps no pool of past fakes (a plugin's may read it),
    other than the size the run's config.toml records unless given (the recipe's, else the fallback), which a run fed
    its own config.toml is given."""
    given = given_config.pool_size
    recorded = components.create("recipe", config.recipe).defaults.get("pool_size", FALLBACKS["pool_size"])
    keeps_none = isinstance(system, (PairedSystem, CycleSystem, ContrastiveSystem)) and not hasattr(system, "pools")
    if given not in (None, recorded) and keeps_none:
        warnings.warn(f"--pool-size {given} has no effect here: only CycleGAN's discriminators learn from a pool of past "
                      "fakes, and this run has none; drop --pool-size.", GantkWarning, stacklevel=caller_stacklevel())


def warn_if_dropout_reaches_no_layer(system: System, config: TrainConfig, given_config: TrainConfig,
                                     components: Components) -> None:
    """Warn when the generator's dropout option is set but the network built has no dropout layer (a U-Net too
    shallow for its dropout levels): its training and test-time outputs then have no dropout noise. The recipe's
    dropout (not another given) on crops under 64 px, which no U-Net depth gives dropout levels, is not warned of."""
    rate, depth = config.gen_opt.get("dropout"), config.gen_opt.get("num_downs")
    if not isinstance(rate, float) or rate <= 0:
        return
    recipes = components.create("recipe", config.recipe).defaults.get("gen_opt", {}).get("dropout")
    if depth and config.crop_size and config.crop_size < 64 and given_config.gen_opt.get("dropout", recipes) == recipes:
        return  # given as the recipe gives it too: a run's own config.toml, say
    generators = system.generators or [system]  # a system that adds its networks itself: all of them
    if not any(isinstance(module, torch.nn.modules.dropout._DropoutNd) for net in generators for module in net.modules()):
        unet = (f" (num_downs={depth}): a U-Net has dropout at levels 4 to num_downs - 2, which 64 px crops reach "
                "(docs/pix2pix.md)") if depth else ""
        warnings.warn(
            f"generator '{config.gen}' takes dropout={rate}, and as built it has no layer where dropout applies, "
            f"so it trains and translates without dropout noise{unet}.", GantkWarning, stacklevel=caller_stacklevel())


def prepare_objectives(system: System) -> None:
    """Let each objective of ``system`` read what it needs from files, before training; a plugin's failure is named."""
    terms = {id(term.objective): term for spec in system.modules() if isinstance(spec, ObjectiveSet) for term in spec.terms}
    for objective in (module for module in system.modules() if isinstance(module, Objective)):
        try:
            objective.prepare()
        except (GantkError, MemoryError):
            raise
        except Exception as error:  # a plugin's: named, as a factory's failure is
            term = terms.get(id(objective))
            named = type(objective).__name__ if term is None else f"{term.name!r} (plugin '{term.plugin}')"
            raise OptionError(f"the objective {named} could not prepare for training "
                              f"({type(error).__name__}: {error}).") from error
