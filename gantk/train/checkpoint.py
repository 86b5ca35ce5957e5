"""Checkpoints: written atomically, read without executing code, enough to rebuild the model alone."""

from __future__ import annotations

import collections
import contextlib
import copy
import errno
import math
import re
import shlex
import warnings
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import torch

from .. import __version__
from ..errors import CheckpointError, GantkWarning, OptionError, SpecError, UnknownNameError, caller_stacklevel, first_sentence
from ..files import REFUSED_WRITES, WRITE_FAILURES, file_error_text, remove_abandoned, replacing, user_path
from ..objectives.spec import ObjectiveSet, parse_spec
from ..plugins import BUILTIN_PLUGINS, Components, default_components
from ..provenance import factory_name, same_provider
from ..recipes.base import Recipe
from ..option_values import plain, storable
from ..registry import Entry
from ..systems.base import System
from ..torch_files import DamagedEntry, InflatingEntries, read_weights_only, unreadable_reason
from . import stand_ins
from .config import CHOICES, MAX_SIDE, TrainConfig

FORMAT_VERSION = 2  # 2: part_plugins records each part's provider as a table (format 1: the plugin's name)
READABLE_FORMATS = (1, 2)
CHECKPOINT_FILE = re.compile(r"checkpoint-(\d+)\.pt$")
_READ_FAILURES = (errno.EACCES, errno.EPERM, errno.EIO)  # no fault of the file's
PRUNED_TRIES = 5  # newest checkpoints of a run directory tried, when a trainer prunes each before it is opened

# Entries added to the format after its first checkpoints, with the value those checkpoints were made
# with (None: unknown); load_checkpoint fills them in, so readers never meet a payload without them.
LATER_KEYS = {"plugins": [], "part_plugins": {}, "process_extra_state": [], "train_items": None, "loss_windows": [],
              "validation_inception_sha1": None, "computed_by": None, "logged_steps": None}
LATER_SYSTEM_KEYS = {"n_critic": 1, "load_size": None, "crop_size": None, "resize": "square", "gen_defaults": None, "disc_defaults": None,
                     "recipe_opt": {}, "loss_opt": {}, "ignore_label": None, "loss_weights": None, "loss_defaults": None,
                     "ema_decay": None, "disc_augment": None}


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / f"checkpoint-{step:08d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Checkpoints of a run directory, oldest first."""
    found = [(int(m.group(1)), p) for p in Path(run_dir).glob("checkpoint-*.pt") if (m := CHECKPOINT_FILE.search(p.name))]
    return [p for _, p in sorted(found)]


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest checkpoint of a run directory."""
    path = Path(path)
    if path.is_dir():
        found = list_checkpoints(path)
        if not found:
            runs = sorted(f"{run.name}/" for run in path.iterdir() if run.is_dir() and list_checkpoints(run))
            inside = f"; its folders {', '.join(runs[:3])}{' ...' if len(runs) > 3 else ''} do (a study's cells?): pass one of them" \
                if runs else ": pass a run directory that gantk train wrote checkpoints to (or, except to resume, a checkpoint file)"
            raise CheckpointError(f"{path} holds no checkpoint (checkpoint-*.pt){inside}.")
        return found[-1]
    if path.is_file():
        return path
    if path.exists():
        raise CheckpointError(f"checkpoint {path} is not a file (a device or pipe); pass a .pt file or a run directory.")
    if path.is_symlink():
        raise CheckpointError(f"checkpoint {path} is a link that leads to no file (its target is gone, or it loops); "
                              "pass a .pt file or a run directory.")
    raise CheckpointError(f"checkpoint {path} does not exist; pass a .pt file or a run directory.")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename: a crash leaves the old file intact.

    Temporary files of any checkpoint that a killed process left in the folder are removed first.
    """
    remove_abandoned(Path(path).parent, "checkpoint-*.pt" if CHECKPOINT_FILE.search(Path(path).name) else Path(path).name)
    payload = {"format": FORMAT_VERSION, "gantk_version": __version__, **payload}
    try:
        with replacing(path, binary=True, durable=True) as handle:
            torch.save(payload, handle)
    except (OSError, RuntimeError) as error:  # torch's zip writer reports a failed write as a RuntimeError
        failed = error if isinstance(error, OSError) else error.__context__
        if not (isinstance(failed, OSError) and failed.errno in (*WRITE_FAILURES, *REFUSED_WRITES)):
            raise
        room = failed.errno in WRITE_FAILURES
        when = "once there is room" if room else "once the folder may be written"
        then = (f"The checkpoints written before it are intact: {when}, resume from the newest with "
                f"`gantk train --resume {shlex.quote(str(Path(path).parent))}`" if list_checkpoints(Path(path).parent)
                else f"{when.capitalize()}, start the run again, as it has no checkpoint")
        needs = room and CHECKPOINT_FILE.search(Path(path).name)  # best.pt replaces itself
        raise CheckpointError(
            f"cannot write checkpoint {file_error_text(OSError(failed.errno, failed.strerror, str(path)))} {then}"
            + (" (each write needs room for one more checkpoint than --keep-checkpoints keeps)." if needs else ".")
        ) from None
    return Path(path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no code from the file runs).

    The file is opened once and every check reads that handle, so a trainer that prunes it meanwhile
    does not take it away; a run directory's newest checkpoint pruned before it was opened is
    replaced by the newest again.
    """
    given = Path(user_path(path, "checkpoint"))
    for _ in range(PRUNED_TRIES):
        path = resolve_checkpoint(given)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            if given.is_dir():
                continue  # pruned between listing and opening: the newest is another file now
            raise CheckpointError(f"checkpoint {path} does not exist (it was removed while it was being read).") from None
        except OSError as error:
            raise _read_failure(path, error) from error
        with handle:
            payload = _read_payload(path, handle, map_location)
        break
    else:
        raise CheckpointError(f"each of the {PRUNED_TRIES} newest checkpoints of {given} was removed before it could be read "
                              "(a trainer keeping fewer checkpoints than it writes?); try again, or pass a checkpoint file.")
    return _checked_payload(path, payload)


def _read_payload(path: Path, handle: BinaryIO, map_location: str | torch.device) -> Any:
    """What torch.load reads from the open checkpoint ``path``, refusing what it should not inflate."""
    try:
        return read_weights_only(handle, map_location)
    except InflatingEntries as refused:
        if refused.entry is None:
            raise CheckpointError(
                f"cannot read checkpoint {path} (the file is cut short or damaged: its zip directory cannot be read): it is "
                f"not a complete gantk checkpoint{_unreadable_hint(path)}."
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path}: it holds entries ({refused.entry}...) that would unpack to more memory than the "
            "file's size (compressed, or sharing stored bytes), which torch.save never writes; it is not a gantk "
            "checkpoint: pass a checkpoint-*.pt file that gantk train wrote, or its run directory."
        ) from None
    except DamagedEntry as damaged:
        older = CHECKPOINT_FILE.fullmatch(path.name) and _unreadable_hint(path)
        raise CheckpointError(
            f"cannot read checkpoint {path}: its entry {damaged.entry} differs from the checksum written with it, so the file "
            f"was damaged after it was written (on a disk, or in a copy){older or ': restore it from a sound copy'}."
        ) from None
    except (MemoryError, torch.OutOfMemoryError):
        raise  # the machine's limit, not the file's fault
    except Exception as error:
        if isinstance(error, OSError) and error.errno in _READ_FAILURES:  # the file itself may be whole
            raise _read_failure(path, error) from error
        raise CheckpointError(
            f"cannot read checkpoint {path} ({unreadable_reason(handle, error)}): it is not a complete gantk "
            f"checkpoint{_unreadable_hint(path)}."
        ) from None


def _read_failure(path: Path, error: OSError) -> CheckpointError:
    fix = {errno.EISDIR: "it is a folder named as a checkpoint: move it out of the run directory, or pass a checkpoint file",
           errno.EACCES: "change its permissions so that this user may read it",
           errno.EPERM: "change its permissions so that this user may read it"}.get(error.errno)
    return CheckpointError(f"cannot read checkpoint {path}: {error.strerror}" + (f"; {fix}." if fix else "."))


def _checked_payload(path: Path, payload: Any) -> dict[str, Any]:
    """``payload`` as a gantk checkpoint of a format this gantk reads, with the entries added since filled in."""
    if not isinstance(payload, dict) or payload.get("format") not in READABLE_FORMATS or not isinstance(payload.get("system"), dict):
        if isinstance(payload, dict) and isinstance(payload.get("format"), int) and payload["format"] > FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint {path} was written by gantk {payload.get('gantk_version', '(version unknown)')} in checkpoint "
                f"format {payload['format']}, newer than the format {FORMAT_VERSION} this gantk {__version__} reads; upgrade gantk."
            )
        raise CheckpointError(
            f"{path} is not a gantk checkpoint; pass a checkpoint-*.pt file that gantk train "
            "wrote, or its run directory."
        )
    later, later_system = copy.deepcopy(LATER_KEYS), copy.deepcopy(LATER_SYSTEM_KEYS)  # each payload its own lists and tables
    payload = {**later, **payload, "system": {**later_system, **payload["system"]}}
    if payload["format"] == 1 and isinstance(payload["part_plugins"], dict):  # providers by plugin name only
        payload["part_plugins"] = {kind: {name: {"plugin": then} if isinstance(then, str) else then for name, then in providers.items()}
                                   for kind, providers in payload["part_plugins"].items() if isinstance(providers, dict)}
    payload["path"] = str(path)
    return payload


_MISSING = object()


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_channels(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(side), int) for side in ("A", "B"))


def _is_options(value: Any) -> bool:
    return isinstance(value, dict) and storable(value)


def _is_weights(value: Any) -> bool:
    """A state dict: names to dense tensors (a module's extra state, ``*._extra_state``, may be any value)."""
    return isinstance(value, dict) and all(
        isinstance(key, str) and (key.endswith("_extra_state") or (isinstance(tensor, torch.Tensor) and tensor.layout == torch.strided))
        for key, tensor in value.items()
    )


def _is_providers(value: Any) -> bool:
    """``part_plugins``: per kind, each part's provider, a table naming its plugin."""
    return isinstance(value, dict) and all(
        isinstance(parts, dict) and all(isinstance(then, dict) and isinstance(then.get("plugin"), str) for then in parts.values())
        for parts in value.values()
    )


# What a payload must hold to rebuild its model ("system." entries are in its system description), and to
# resume its run; checked where they are needed, so that a damaged file is named rather than a KeyError raised.
MODEL_ENTRIES = {
    "step": lambda value: _is_whole(value) and value >= 0,
    "system_state": _is_weights,
    "plugins": lambda value: isinstance(value, list) and all(isinstance(name, str) for name in value),
    "part_plugins": _is_providers,
    "system.recipe": lambda value: isinstance(value, str), "system.gen": lambda value: isinstance(value, str),
    "system.loss": lambda value: isinstance(value, str), "system.channels": _is_channels,
    **{f"system.{key}": lambda value: value is None or (isinstance(value, int) and 0 < value <= MAX_SIDE)
       for key in ("load_size", "crop_size")},
    **{f"system.{key}": lambda value: value is None or (_is_whole(value) and value >= 2) for key in ("num_classes", "input_classes")},
    "system.conditional": lambda value: isinstance(value, bool),
    "system.direction": lambda value: value in CHOICES["direction"],
    "system.resize": lambda value: value in CHOICES["resize"],
    "system.data_format": lambda value: value is None or isinstance(value, str),
    "system.ignore_label": lambda value: value is None or _is_whole(value),
    **{f"system.{key}": _is_options for key in ("gen_opt", "disc_opt", "loss_opt", "recipe_opt")},
    **{f"system.{key}": lambda value: value is None or _is_options(value) for key in ("gen_defaults", "disc_defaults")},
    "system.loss_defaults": lambda value: value is None or (_is_options(value) and all(map(_is_options, value.values()))),
    "system.loss_weights": lambda value: value is None or (_is_options(value) and all(
        isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight > 0
        for weight in value.values())),
    "system.ema_decay": lambda value: value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                                        and 0 <= value < 1),
}


def _is_loss_windows(value: Any) -> bool:
    """Each process's losses since its last log row: ``[{"G/l1": [0.5, ...], ...}, ...]``."""
    def is_numbers(values: Any) -> bool:
        return isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    return isinstance(value, list) and all(
        isinstance(window, dict) and all(isinstance(key, str) and is_numbers(values) for key, values in window.items())
        for window in value
    )


RUN_ENTRIES = {
    **MODEL_ENTRIES, "train_config": _is_options, "loss_windows": _is_loss_windows,
    **{key: lambda value: isinstance(value, dict) for key in ("optimizers", "schedulers", "scaler")},
    "rng": lambda value: isinstance(value, list) and len(value) > 0 and all(isinstance(state, dict) for state in value),
    "train_items": lambda value: value is None or (_is_whole(value) and value >= 0),
    "validation_inception_sha1": lambda value: value is None or isinstance(value, str),  # the SHA-1 of validation's InceptionV3
    "computed_by": lambda value: value is None or isinstance(value, dict),  # torch's version and threads (resume.computed_by)
    "logged_steps": lambda value: value is None or (isinstance(value, dict) and all(  # the newest row of each CSV (RunLog)
        key in ("metrics", "validation") and (step is None or _is_whole(step)) for key, step in value.items())),
}


def check_entries(payload: dict[str, Any], entries: dict[str, Any]) -> None:
    """Raise naming the ``entries`` a checkpoint lacks, or holds as something else (a damaged or hand-edited file)."""
    def value(key: str) -> Any:
        where, _, name = key.rpartition(".")
        return (payload.get(where) if where else payload).get(name, _MISSING)

    wrong = [key for key, fits in entries.items() if value(key) is _MISSING or not fits(value(key))]
    if wrong:
        raise CheckpointError(
            f"checkpoint {payload['path']} is incomplete or damaged ({', '.join(wrong)} missing or of another kind than "
            "gantk writes); use another checkpoint of the run."
        )


def _unreadable_hint(path: Path) -> str:
    """What to do about an unreadable file: for a run's checkpoint (a write cut short), use the older
    ones; for any other file, pass a checkpoint instead."""
    if not CHECKPOINT_FILE.fullmatch(path.name):
        return "; pass a checkpoint-*.pt file or the run directory"
    older = [p.name for p in list_checkpoints(path.parent) if p != path]
    return f"; {path.parent} also holds {', '.join(older)}: delete the unreadable file to use those" if older else ""


@contextlib.contextmanager
def missing_plugin_errors(payload: dict[str, Any], components: Components, kinds: tuple[str, ...] | None = None, *,
                          rebuilding: bool = False) -> Iterator[None]:
    """Turn a part of a checkpoint that no plugin of ``components`` provides into an error naming the
    checkpoint and the plugins its run was trained with that are not loaded; a part of ``kinds`` (default:
    all) that another provider gives now (a plugin that overrides it, say) is an error too (see
    :func:`gantk.provenance.same_provider`). ``rebuilding``: the system is built from the settings the
    checkpoint holds, so an option a part refuses is a part that changed since the run."""
    now = {(kind, name): components.registry(kind).get(name) for kind, providers in payload["part_plugins"].items()
           for name in providers if name in components.registry(kind) and (kinds is None or kind in kinds)}
    changed = [(kind, name, then) for kind, providers in payload["part_plugins"].items() for name, then in providers.items()
               if (kind, name) in now and not same_provider(now[kind, name], then)]
    moved = [f"{kind} '{name}' came from plugin '{then['plugin']}' and now comes from '{now[kind, name].plugin}'"
             + _installed_as(now[kind, name], components) for kind, name, then in changed]
    if moved:
        absent = sorted({then["plugin"] for _, _, then in changed
                         if then["plugin"] not in BUILTIN_PLUGINS and not components.manager.has_plugin(then["plugin"])})
        renamed = ", ".join(f"{name!r}: ..." for name in absent)
        raise CheckpointError(
            f"checkpoint {payload['path']} was trained with parts that other plugins provide now: {'; '.join(moved)}. "
            "Load the plugin(s) the run was trained with, and not one that overrides their parts. A plugin is known by "
            "the module that defines it: one defined in a script or notebook is the same plugin only where it is imported "
            "from that module" + (f"; if its code has moved into another module since, load it in Python under the name the "
                                  f"run recorded: gantk.load_components(plugins={{{renamed}}})." if absent else ".")
        )
    try:
        yield
    except (UnknownNameError, SpecError) as error:
        plugins = [name for name in payload["plugins"] if not components.manager.has_plugin(name)]
        packages = _packages(payload, plugins)
        which = f"the plugin(s) the run was trained with: {', '.join(plugins)}" if plugins else "the plugin the run was trained with"
        which += f" (package {', '.join(packages)})" if packages else ""
        raise CheckpointError(
            f"checkpoint {payload['path']} uses a part that no loaded plugin provides: {error} Install (or load) {which}."
        ) from None
    except OptionError as error:
        if not rebuilding:
            raise
        packages = _packages(payload)
        raise CheckpointError(
            f"checkpoint {payload['path']} was trained with settings that its parts do not take now: {str(error).rstrip('.')}. "
            "The run's command line or recipe gave them: install the version of the part's plugin the run was trained with"
            + (f" (the run's parts came from {', '.join(packages)})." if packages else ".")
        ) from None


def _installed_as(entry: Entry, components: Components) -> str:
    """`` (package NAME VERSION: pip uninstall NAME)`` for a plugin's part that an installed distribution holds, else ""."""
    package = None if entry.plugin in BUILTIN_PLUGINS else components.package(entry.plugin)
    return f" (package {package}: pip uninstall {package.split()[0]})" if package else ""


def _packages(payload: dict[str, Any], plugins: Iterable[str] | None = None) -> list[str]:
    """The packages (with versions) a checkpoint records for the parts of ``plugins`` (default: all)."""
    recorded = (then for providers in payload["part_plugins"].values() for then in providers.values())
    return sorted({then["package"] for then in recorded if "package" in then and (plugins is None or then["plugin"] in plugins)})


def part_plugins(system_config: dict[str, Any], components: Components) -> dict[str, dict[str, dict[str, str]]]:
    """Per kind, the plugin, factory (:func:`gantk.provenance.factory_name`) and, when an installed
    distribution holds it, package (:meth:`gantk.plugins.Components.package`) of each part of ``system_config``:
    recipe, networks, objective terms, data format."""
    parts = [("recipe", system_config["recipe"]), ("generator", system_config["gen"])]
    parts += [("discriminator", system_config["disc"])] if system_config.get("disc") else []
    parts += [("objective", name) for name, _ in parse_spec(system_config["loss"])]
    parts += [("data_format", system_config["data_format"])] if system_config.get("data_format") else []
    providers: dict[str, dict[str, dict[str, str]]] = {}
    for kind, name in parts:
        entry = components.registry(kind).get(name)
        provider = {"plugin": entry.plugin, "factory": factory_name(entry.factory)}
        if package := components.package(entry.plugin):
            provider["package"] = package
        providers.setdefault(kind, {})[name] = provider
    return providers


NETWORK_KEYS = (("generator", "gen", "gen_opt"), ("discriminator", "disc", "disc_opt"))  # kind, name key, options key


def system_config(config: TrainConfig, dataset: Any, components: Components) -> dict[str, Any]:
    """What a checkpoint needs to rebuild the system: component names, options (with the defaults of
    those not given, :func:`network_defaults`, :func:`objective_defaults`), channels."""
    described = {
        "recipe": config.recipe, "recipe_opt": dict(config.recipe_opt),
        "gen": config.gen, "gen_opt": dict(config.gen_opt),
        "disc": None if config.disc == "none" else config.disc, "disc_opt": dict(config.disc_opt),
        "conditional": config.conditional, "loss": config.loss, "loss_opt": dict(config.loss_opt),
        "pool_size": config.pool_size, "n_critic": config.n_critic, "disc_augment": config.disc_augment,
        "channels": dict(dataset.channels), "num_classes": dataset.num_classes,
        "input_classes": getattr(dataset, "input_classes", None),
        "ignore_label": getattr(dataset, "ignore_label", None),
        "data_format": dataset.format, "direction": config.direction,
        "load_size": config.load_size, "crop_size": config.crop_size, "resize": config.resize, "ema_decay": config.ema_decay,
    }
    return {**described, **network_defaults(described, components), **objective_defaults(described, components)}


def objective_defaults(system_config: dict[str, Any], components: Components) -> dict[str, dict[str, Any]]:
    """The weight each term of the spec trains with (``loss_weights``: its objective's default where the spec
    gives none) and, per term, the factory defaults of the options not given (``loss_defaults``): a resume
    after a default changed is refused rather than trained with another objective."""
    registry = components.registry("objective")
    terms = ObjectiveSet.from_spec(system_config["loss"], registry, system_config["loss_opt"]).terms
    given = system_config["loss_opt"]
    return {
        "loss_weights": {term.name: float(term.weight) for term in terms},
        "loss_defaults": {term.name: {key: plain(value) for key, value in registry.get(term.name).options().items()
                                      if key not in given.get(term.name, {}) and storable(plain(value)) and value == value}
                          for term in terms},  # value == value: a NaN default, which no resume would find equal, is left out
    }


def network_defaults(system_config: dict[str, Any], components: Components) -> dict[str, dict[str, Any]]:
    """Per network (``gen_defaults``, ``disc_defaults``), the factory defaults of the options not given
    (the channels aside): a checkpoint keeps them, so a model rebuilt after a default changed is the
    one trained. Defaults that are not plain values (a class, a function) cannot be stored safely."""
    found = {}
    for kind, name_key, options_key in NETWORK_KEYS:
        name, given = system_config.get(name_key), system_config.get(options_key) or {}
        options = components.registry(kind).get(name).options() if name in components.registry(kind) else {}
        found[f"{name_key}_defaults"] = {
            key: plain(value) for key, value in options.items()
            if key not in ("in_channels", "out_channels") and key not in given and storable(plain(value))
        }
    return found


def recipe_options(saved: dict[str, Any], recipe: Recipe, *, warn_added: bool = True) -> dict[str, Any]:
    """A checkpoint's options of ``recipe`` as the recipe takes them now: options it gained since the
    run take their defaults (with a warning, unless not ``warn_added``), options it dropped are left out (with one)."""
    gone = [f"{key}={value!r}" for key, value in saved.items() if key not in recipe.options]
    added = {key: plain(value) for key, value in recipe.options.items() if key not in saved}
    if gone:
        warnings.warn(
            f"recipe '{recipe.name}' no longer takes {', '.join(gone)}, which the run was trained with: "
            "the rebuilt system may compute something else than the trained one.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    if added and warn_added:
        warnings.warn(
            f"recipe '{recipe.name}' has options the run was trained without; they take their defaults: "
            f"{', '.join(f'{key}={value!r}' for key, value in added.items())}.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    return {**{key: value for key, value in saved.items() if key in recipe.options}, **added}


def system_from_config(system_config: dict[str, Any], components: Components | None = None, *, for_checkpoint: bool = False,
                       warn_added: bool = True) -> System:
    """Rebuild the system described by a checkpoint's ``system`` entry (weights not loaded).

    With ``for_checkpoint`` the weights will come from a checkpoint: each network is built with the
    defaults it was trained with (see :func:`network_defaults`), the options a component lists
    in its factory's ``starting_weight_options`` (such as smp's pretrained ``encoder_weights``)
    keep their defaults: no pretrained file is needed to load a trained model; and the recipe's
    options are those it takes now (see :func:`recipe_options`, which warns of those added unless not ``warn_added``).
    """
    components = components or default_components()
    recipe = components.create("recipe", system_config["recipe"])
    if for_checkpoint:
        system_config = {**system_config, "recipe_opt": recipe_options(system_config["recipe_opt"], recipe, warn_added=warn_added)}
        for kind, name_key, options_key in NETWORK_KEYS:
            if system_config.get(name_key) in components.registry(kind):
                entry = components.registry(kind).get(system_config[name_key])
                defaults = system_config.get(f"{name_key}_defaults") or {}
                if gone := [f"{key}={value!r}" for key, value in defaults.items() if not entry.takes_option(key)]:
                    warnings.warn(
                        f"{kind} '{entry.name}' was trained with {', '.join(gone)}, which it no longer takes: "
                        "the rebuilt network may compute something else than the trained one.",
                        GantkWarning,
                        stacklevel=caller_stacklevel(),
                    )
                options = {**{k: v for k, v in defaults.items() if entry.takes_option(k)}, **system_config[options_key]}
                system_config[options_key] = {k: v for k, v in options.items() if k not in entry.starting_weight_options}
    system = recipe.system(system_config, components)
    if system_config.get("ema_decay") is not None:
        system.keep_averages(system_config["ema_decay"])
    return system


def check_weights_fit(system_config: dict[str, Any], components: Components, state: dict[str, Any], source: str) -> None:
    """Refuse weights that do not fit the networks ``system_config`` describes, before any network is built:
    the networks are first built on the meta device, which allocates nothing (a damaged or hostile file
    could otherwise describe networks too large for the machine's memory, or so deep that describing them
    takes minutes: see :func:`_tensors_fit`), and weights of another kind of number than the networks'
    are refused. A part that cannot be built there is checked when its weights are loaded."""
    try:
        with torch.device("meta"), warnings.catch_warnings(), torch.random.fork_rng(devices=[]), _tensors_fit(state, source):
            warnings.simplefilter("ignore")  # the real build warns
            described = system_from_config(system_config, components, for_checkpoint=True)
    except (RuntimeError, NotImplementedError):  # an operation the meta device lacks; a real failure recurs in the build
        return
    except OptionError as error:  # the same, met inside a part's factory
        if isinstance(error.__cause__, (RuntimeError, NotImplementedError)):
            return
        raise
    checked = collections.OrderedDict(stand_ins.without_stand_in_state(described, state))
    checked._metadata = copy.deepcopy(getattr(state, "_metadata", {}))  # torch marks the metadata it loads with for assigning
    kinds = [(key, checked[key].dtype, built.dtype) for key, built in described.state_dict().items()
             if isinstance(checked.get(key), torch.Tensor) and _number_kind(checked[key]) != _number_kind(built)]
    if kinds:
        key, saved, built = kinds[0]
        raise CheckpointError(
            f"checkpoint {source} holds weights of another kind of number than the networks its settings describe "
            f"({len(kinds)} weight(s), e.g. {key}: {saved} in the checkpoint, {built} here): the file is damaged or was "
            "edited; use another checkpoint of the run."
        )
    try:
        described.load_state_dict(checked, assign=True)  # no copy
    except RuntimeError as error:
        raise CheckpointError(
            f"checkpoint {source} holds weights that do not fit the networks its settings describe "
            f"({state_mismatch(str(error))}): the file is damaged or was edited; use another checkpoint of the run."
        ) from None


def _number_kind(tensor: torch.Tensor) -> str:
    return "complex" if tensor.is_complex() else "float" if tensor.is_floating_point() else "integer"


@contextlib.contextmanager
def _tensors_fit(state: dict[str, Any], source: str) -> Iterator[None]:
    """Stop the modules built inside once they register far more parameters and buffers than ``state`` holds
    (a hostile depth option would otherwise build for minutes); some are replaced while they are built."""
    most, count = 2 * len(state) + 20_000, 0  # backbones such as timm's are built whole, then cut to the depth used

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1
        if count > most:
            raise CheckpointError(
                f"checkpoint {source} describes networks of more than {most} weight tensors but holds {len(state)}: "
                "the file is damaged or was edited; use another checkpoint of the run."
            )

    hooks = [torch.nn.modules.module.register_module_parameter_registration_hook(counted),
             torch.nn.modules.module.register_module_buffer_registration_hook(counted)]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def setting_changes(key: str, then: Any, now: Any) -> list[str]:
    """How a setting differs between a checkpoint and now, entry by entry for tables (``loss_weights.l1: 100 then,
    10 now``); a value too long to show is named only."""
    if isinstance(then, dict) and isinstance(now, dict):
        return [change for k in sorted(set(then) | set(now), key=str) if then.get(k) != now.get(k)
                for change in setting_changes(f"{key}.{k}", then.get(k), now.get(k))]
    shown = all(isinstance(v, (str, int, float, type(None))) for v in (then, now))
    return [f"{key}: {then!r} then, {now!r} now" if shown else key]


def load_system_state(system: System, state: dict[str, Any], source: str) -> None:
    """Load weights, turning a mismatch or a weight that is not finite into an error that names the checkpoint
    (a NaN would only turn every output black)."""
    try:
        system.load_state_dict(state)
    except RuntimeError as error:
        details = state_mismatch(str(error))
        raise CheckpointError(
            f"checkpoint {source} was made for another architecture than the one configured ({details}); "
            "use the same --gen/--disc/--loss and options as the run that wrote it, or start a new run directory."
        ) from None
    bad = diverged_networks(system)
    if bad:
        raise CheckpointError(
            f"checkpoint {source} holds weights that are not finite (NaN or infinity) in {', '.join(bad)}; gantk does not "
            "write such checkpoints, so this one was damaged, edited or written by an older gantk after the run diverged: "
            "use an earlier checkpoint of the run."
        )


def diverged_networks(system: System) -> list[str]:
    """The networks of ``system`` (and the averages of its generators' weights) holding a parameter or normalisation
    running statistic that is not finite, or a NaN in another float buffer (which may hold -inf on purpose: a mask,
    a running maximum)."""
    def diverged(net: torch.nn.Module) -> bool:
        statistics = [buffer for module in net.modules() if isinstance(module, torch.nn.modules.batchnorm._NormBase)
                      for buffer in (module.running_mean, module.running_var) if buffer is not None]
        return (not all(bool(t.isfinite().all()) for t in (*net.parameters(), *statistics))
                or any(bool(b.isnan().any()) for b in net.buffers() if b.is_floating_point()))

    averaged = getattr(system, "averaged", {})
    return [*(name for name, net in system.networks.items() if diverged(net)),
            *(f"the average of {name}" for name, net in averaged.items() if diverged(net))]


def state_mismatch(text: str) -> str:
    """torch's ``load_state_dict`` complaint in short: how many keys differ and how, with the first of each."""
    parts = []
    for kind, pattern in (("missing key", r"Missing key\(s\) in state_dict: (.*)"), ("unexpected key", r"Unexpected key\(s\) in state_dict: (.*)")):
        for match in re.finditer(pattern, text):
            if keys := re.findall(r'"([^"]+)"', match[1]):
                parts.append(f"{len(keys)} {kind}{'s' if len(keys) != 1 else ''}, e.g. {keys[0]}")
    sizes = re.findall(r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from checkpoint, "
                       r"the shape in current model is torch\.Size\((\[.*?\])\)", text)
    if sizes:
        name, saved, built = sizes[0]
        parts.append(f"{len(sizes)} size mismatch{'es' if len(sizes) != 1 else ''}, e.g. {name}: {saved} in the checkpoint, {built} here")
    return "; ".join(parts) or first_sentence(text)


def system_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu", components: Components | None = None, *,
                           to_translate: bool = False) -> tuple[System, dict[str, Any]]:
    """The trained system of a checkpoint, with its weights, and the checkpoint payload (the caller's random
    state is left as it was: the weights the networks are built with are replaced). ``to_translate``:
    a discriminator or loss term that no loaded plugin provides is stood in for (translating runs neither;
    see :mod:`gantk.train.stand_ins`), and recipe options added since the run keep their defaults unwarned
    (their defaults keep what the model computes; a resumed run is told)."""
    payload = load_checkpoint(path, map_location)
    check_entries(payload, MODEL_ENTRIES)
    components = components or default_components()
    with missing_plugin_errors(payload, components, stand_ins.RUN_PARTS if to_translate else None, rebuilding=True):
        built_from = stand_ins.with_stand_ins(payload, components) if to_translate else components
        check_weights_fit(payload["system"], built_from, payload["system_state"], payload["path"])
        with torch.random.fork_rng(devices=[]):  # networks are built on the CPU
            system = system_from_config(payload["system"], built_from, for_checkpoint=True, warn_added=not to_translate)
    load_system_state(system, stand_ins.without_stand_in_state(system, payload["system_state"]), payload["path"])
    return system, payload
