"""Training configuration: one flat set of keys shared by flags, TOML files and recipes."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import difflib
import functools
import json
import math
import os
import re
import shlex
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import OptionError, SpecError, UnknownNameError, extend_message
from ..nn import MAX_SIDE as MAX_SIDE  # also gantk.train.config's, where callers read it
from ..nn.diff_augment import parse_policy
from ..option_values import VALUE_TYPES, as_integer, plain, storable, type_mismatch

CHOICES = {
    "direction": ("AtoB", "BtoA"),
    "precision": ("fp32", "bf16", "fp16"),
    "augment_on": ("loader", "device"),
    "resize": ("square", "short-side", "none"),  # both sides to the load size, the shorter one (aspect kept), or none
    "compile_mode": ("default", "reduce-overhead", "max-autotune"),
    "lr_schedule": ("linear", "cosine"),
}

VALIDATION_PREFIX = "val/"  # of the validation scores' names in logs (validation.csv, TensorBoard)
# the least value of each count setting (None, where allowed, leaves it unset)
LEAST_COUNTS = {**dict.fromkeys(("epochs", "max_steps", "batch_size", "load_size", "crop_size", "n_critic", "log_every",
                                 "val_every", "sample_every", "checkpoint_every", "keep_checkpoints"), 1),
                **dict.fromkeys(("pool_size", "workers", "ignore_label", "warmup_steps"), 0)}
PATH_KEYS = ("data", "init_from", "lpips_weights", "inception_weights")  # settings naming files or folders
MOST_STEPS = 10**12  # --max-steps or --epochs beyond are slips (a trillion steps)

# Keys that change how a run is executed or reported, not what it computes (validation runs on a forked RNG;
# see COMPUTATION_KEYS for the exceptions in arithmetic).
EXECUTION_KEYS = frozenset({"out", "device", "workers", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                            "compile", "compile_mode", "cuda_graph", "val_every", "val_split", "val_lpips", "lpips_weights",
                            "val_fid", "inception_weights", "keep_best"})
# What a resumed run may change: how it is executed, the schedule's length, and where its dataset is now.
RESUMABLE_KEYS = (EXECUTION_KEYS - {"out"}) | {"epochs", "max_steps", "data"}
# Execution keys that change the arithmetic (kernels, their fusion and order), so not bit-exact results.
COMPUTATION_KEYS = frozenset({"device", "compile", "compile_mode", "cuda_graph"})


MOST_DEFAULT_WORKERS = 16  # beyond, more workers add start-up time and memory for little speed


def usable_cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpus_per_process(local_processes: int = 1) -> int:
    """The CPUs this process may use, shared among the ``local_processes`` training processes on this machine."""
    return usable_cpus() // local_processes


def default_workers(local_processes: int = 1) -> int:
    """Loader processes per training process when ``workers`` is not set: its share of the CPUs
    (:func:`cpus_per_process`) less one for itself; 2 to 16."""
    return min(MOST_DEFAULT_WORKERS, max(2, cpus_per_process(local_processes) - 1))


def is_device_name(name: Any) -> bool:
    """Whether ``name`` is a device setting: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    return isinstance(name, str) and re.fullmatch(r"auto|cpu|cuda(:(0|[1-9][0-9]{0,3}))?", name, re.ASCII) is not None


def flag(key: str) -> str:
    """The command-line flag of the setting ``key`` (``max_steps`` -> ``--max-steps``)."""
    return "--" + key.replace("_", "-")


def spelled(key: str, value: Any) -> str:
    """A setting as the command line gives it: ``--lr 0.0002``, ``--no-flip``, ``--gen-opt ngf=8,norm=batch``."""
    if isinstance(value, bool):
        if key == "conditional":
            return "--conditional" if value else "--unconditional"
        return flag(key) if value else "--no-" + flag(key)[2:]
    if isinstance(value, dict):
        if key == "loss_opt":  # one table per objective: NAME.KEY=VALUE
            value = {f"{name}.{option}": v for name, options in value.items() for option, v in options.items()}
        options = ",".join(f"{option}={_spelled_value(v)}" for option, v in value.items())
        return f"{flag(key)} " + (shlex.quote(options) if options else "(none)")
    return f"no {flag(key)}" if value is None else f"{flag(key)} {value}"


def _spelled_value(value: Any) -> str:
    """An option's value as the command line takes it: lists in brackets, without spaces."""
    return f"[{','.join(map(_spelled_value, value))}]" if isinstance(value, (list, tuple)) else str(value)


def same_setting(given: Any, saved: Any) -> bool:
    """Whether a setting given again agrees with a run's: an option table agrees when each option
    given has the run's value (the run's table also holds its recipe's and fitted options)."""
    if isinstance(given, dict) and isinstance(saved, dict):
        return all(key in saved and same_setting(value, saved[key]) for key, value in given.items())
    return given == saved


@dataclass
class TrainConfig:
    """Everything a training run needs. ``None`` means "take it from the recipe" (``disc="none"`` trains without a
    discriminator). Each field is the ``gantk train`` flag of its name, ``_`` written ``-`` (``crop_size`` is
    ``--crop-size``), described in docs/cli.md; messages name the flags.

    Precedence: command-line flags > ``--config`` file > demo settings (no ``--data``) >
    recipe defaults > ``FALLBACKS`` (``gantk.train.resolve``); a key that none of them sets keeps
    the default below.
    """

    recipe: str = "pix2pix"
    recipe_opt: dict[str, Any] = field(default_factory=dict)  # the recipe's own settings (Recipe.options)
    data: str | os.PathLike[str] | None = None  # paths are stored as text, however given
    data_format: str | None = None
    ignore_label: int | None = None  # mask value of pixels no loss term or score counts (segmentation data)
    direction: str = "AtoB"
    out: str | os.PathLike[str] = "runs/gantk"
    gen: str | None = None
    gen_opt: dict[str, Any] = field(default_factory=dict)
    disc: str | None = None  # "none" trains without a discriminator
    disc_opt: dict[str, Any] = field(default_factory=dict)
    init_from: str | os.PathLike[str] | None = None  # a checkpoint (or run directory) whose network weights the run starts from
    conditional: bool | None = None
    loss: str | None = None
    loss_opt: dict[str, dict[str, Any]] = field(default_factory=dict)  # objective name -> its options
    epochs: int | None = None
    max_steps: int | None = None  # overrides epochs when set
    decay_start: float | None = None  # fraction of the schedule after which the lr decays to 0
    lr_schedule: str = "linear"  # the shape of that decay: linear (pix2pix) or cosine
    warmup_steps: int = 0  # steps over which the lr rises linearly to its value at the start
    batch_size: int | None = None
    load_size: int | None = None
    resize: str = "square"  # to load_size x load_size, the shorter side to load_size (aspect kept), or not at all
    crop_size: int | None = None
    flip: bool | None = None
    augment_on: str = "loader"  # where the random crop and flip run: loader workers, or the training device
    lr: float | None = None
    disc_lr: float | None = None  # the discriminators' learning rate (two time-scale updates); None: lr
    beta1: float | None = None
    beta2: float | None = None
    grad_clip: float | None = None  # the largest norm of each step's gradients over a phase's networks; None: not clipped
    ema_decay: float | None = None  # an average of the generators' weights, which translation runs; None: none kept
    pool_size: int | None = None
    n_critic: int | None = None  # discriminator steps per generator step
    disc_augment: str | None = None  # DiffAugment policies of what the discriminator sees ("translation,cutout", ...)
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"  # torch.compile's mode; reduce-overhead and max-autotune also replay CUDA graphs
    cuda_graph: bool = False  # replay each whole training step as one recorded CUDA graph
    seed: int = 0
    workers: int | None = None  # None: default_workers() for this machine
    log_every: int = 10
    val_every: int | None = None  # steps between validations on val_split; None turns validation off
    val_split: str | None = None  # None: "val" where the data has that split, else "test"
    val_lpips: bool = False  # validation also scores LPIPS (the lpips package and AlexNet's ImageNet weights)
    lpips_weights: str | os.PathLike[str] | None = None  # AlexNet's weights file for val_lpips; None: torchvision's in torch's cache
    val_fid: bool = False  # validation on paired images also scores FID and KID (on unpaired data it always does)
    inception_weights: str | os.PathLike[str] | None = None  # InceptionV3 for validation's FID and KID; None: gantk.metrics.fid's default
    sample_every: int = 200
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    keep_best: str | None = None  # a validation score: the checkpoint that scored best on it is kept as best.pt

    def __post_init__(self) -> None:
        for key, value in vars(self).items():  # however given, stored as TOML and safe checkpoint loading take it
            setattr(self, key, plain(value))

    def merged(self, values: dict[str, Any], *, only_unset: bool = False) -> "TrainConfig":
        """A copy with ``values`` applied (dict options merge key by key; a length in epochs replaces one
        in steps, see :func:`layered`); ``only_unset`` fills ``None`` fields only."""
        values = plain(values)
        if not only_unset and "epochs" in values:
            values = {"max_steps": None, **values}
        check_setting_names(values)
        updates = {}
        for key, value in values.items():
            check_type(key, value)
            current = getattr(self, key)
            if isinstance(current, dict):
                updates[key] = merged_tables(value, current) if only_unset else merged_tables(current, value)
            elif not only_unset or current is None:
                updates[key] = value
        return dataclasses.replace(self, **updates)

    def validate(self) -> None:
        for key, choices in CHOICES.items():
            if getattr(self, key) not in choices:
                raise OptionError(f"{flag(key)} must be one of {', '.join(choices)}, got {getattr(self, key)!r}.")
        if not is_device_name(self.device):
            raise OptionError(f"--device must be auto, cpu, cuda or cuda:N (e.g. cuda:1), got {self.device!r}.")
        for key in (f.name for f in fields(self)):  # however it was built: a float count fails far from here otherwise
            check_type(key, getattr(self, key))
        for key, least in LEAST_COUNTS.items():
            value = getattr(self, key)
            if value is not None and value < least:
                raise OptionError(f"{flag(key)} must be an integer of at least {least}, got {value}.")
        for key in ("out", *PATH_KEYS):  # config.toml, in UTF-8, records them
            if (value := getattr(self, key)) is not None and not _utf8(os.fsencode(value)):
                raise OptionError(f"{flag(key)} {os.fsdecode(value)!a} holds bytes that are not UTF-8, which the run's "
                                  "config.toml cannot record: rename it (or a folder above it).")
        for key in ("max_steps", "epochs"):
            if (value := getattr(self, key)) is not None and value > MOST_STEPS:
                raise OptionError(f"{flag(key)} is {value}, more than gantk takes ({MOST_STEPS:.0e}); give a smaller one.")
        for key in ("lr", "disc_lr", "grad_clip"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise OptionError(f"{flag(key)} must be a positive number, got {value}.")
        if self.ema_decay is not None and not (math.isfinite(self.ema_decay) and 0 <= self.ema_decay < 1):
            raise OptionError(f"--ema-decay is the weight of the average's past at each generator step, in [0, 1) (such as "
                              f"0.999), got {self.ema_decay}.")
        if self.decay_start is not None and not 0 <= self.decay_start <= 1:
            raise OptionError(f"--decay-start is a fraction of the schedule in [0, 1], got {self.decay_start}.")
        for key in ("load_size", "crop_size"):
            if (value := getattr(self, key)) is not None and value > MAX_SIDE:
                raise OptionError(f"{flag(key)} is {value} px a side, more than the largest gantk takes ({MAX_SIDE}); give a smaller one.")
        if self.load_size and self.crop_size and self.crop_size > self.load_size and self.resize != "none":
            raise OptionError(
                f"--crop-size {self.crop_size} is larger than --load-size {self.load_size} (given, or the recipe's or the "
                f"demo set's defaults): images are resized to --load-size, then a --crop-size square is cut from them; "
                f"give a --crop-size of at most {self.load_size} or a --load-size of at least {self.crop_size}."
            )
        if self.resize != "square" and not self.crop_size:
            raise OptionError(f"--resize {self.resize} keeps each image's shape, so training needs --crop-size to cut "
                              "squares of one size: set --crop-size.")
        if self.resize != "square" and self.augment_on == "device":
            raise OptionError("--augment-on device batches images before cropping them, so they need one size, and "
                              f"--resize {self.resize} keeps each image's shape: use --augment-on loader or --resize square.")
        if self.augment_on == "device" and not self.load_size:
            raise OptionError("--augment-on device batches images before cropping them, so they need one size: set --load-size.")
        for key in ("gen_opt", "disc_opt"):
            reserved = sorted({"in_channels", "out_channels"} & set(getattr(self, key)))
            if reserved:
                raise OptionError(f"{', '.join(reserved)} in {flag(key)} is set from the data's channels; remove it.")
        for key in ("beta1", "beta2"):
            value = getattr(self, key)
            if value is not None and not 0 <= value < 1:
                raise OptionError(f"{flag(key)} is an Adam decay rate in [0, 1), got {value}.")
        check_seed(self.seed)
        if self.disc_augment is not None:
            self.disc_augment = None if self.disc_augment.lower() == "none" else ",".join(parse_policy(self.disc_augment))
        if self.keep_best is not None and self.keep_best.lower() == "none":  # turned off (on resuming, say)
            self.keep_best = None
        if self.keep_best is not None:
            self.keep_best = self.keep_best.removeprefix(VALIDATION_PREFIX)
            if not self.val_every:
                raise OptionError(f"--keep-best {self.keep_best} keeps the checkpoint with the best validation score, and "
                                  "there is no validation: add --val-every N (steps between validations), or drop --keep-best.")
        if self.keep_best == "lpips" and not self.val_lpips:
            raise OptionError("--keep-best lpips keeps the model of the best validation LPIPS, which validation scores with "
                              "--val-lpips: add it.")
        if self.lpips_weights is not None and not self.val_lpips:
            raise OptionError(f"--lpips-weights {self.lpips_weights} names AlexNet's weights for validation LPIPS, which is off: "
                              "add --val-lpips, or drop --lpips-weights.")
        if self.inception_weights is not None and not self.val_every:
            raise OptionError(f"--inception-weights {self.inception_weights} names InceptionV3's weights for validation's FID "
                              "and KID, and there is no validation: add --val-every N, or drop --inception-weights.")
        if self.val_fid and not self.val_every:
            raise OptionError("--val-fid adds FID and KID to validation, and there is no validation: add --val-every N (steps "
                              "between validations), or drop --val-fid.")
        if self.val_lpips and not self.val_every:
            raise OptionError("--val-lpips adds LPIPS to validation, and there is no validation: add --val-every N (steps "
                              "between validations), or drop --val-lpips.")
        if self.compile_mode != "default" and not self.compile:
            raise OptionError(f"--compile-mode {self.compile_mode} is a mode of torch.compile, which is off: add --compile.")
        if self.cuda_graph and self.compile_mode != "default":
            raise OptionError(f"--cuda-graph records the whole step as one CUDA graph, and --compile-mode {self.compile_mode} "
                              "records graphs of its own inside it: use --compile-mode default with --cuda-graph.")
        if self.cuda_graph and self.precision == "fp16":
            raise OptionError("--cuda-graph cannot record an fp16 step: its loss scaler checks every step on the CPU for "
                              "overflowed gradients; use --precision bf16 (no scaler) or fp32.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SETTING_NAMES = frozenset(f.name for f in fields(TrainConfig))


def _settings_named(init: Callable[..., None]) -> Callable[..., None]:
    """``TrainConfig.__init__`` refusing a keyword that is no setting with the closest ones (not a bare TypeError)."""
    @functools.wraps(init)
    def checked(self: TrainConfig, *args: Any, **kwargs: Any) -> None:
        check_setting_names(kwargs)
        init(self, *args, **kwargs)

    return checked


TrainConfig.__init__ = _settings_named(TrainConfig.__init__)  # type: ignore[method-assign]
SEEDS = (-2**63, 2**64 - 1)  # the seeds torch.manual_seed takes


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def check_seed(seed: int) -> int:
    """``seed`` as a Python integer; raise unless it is one torch can seed with."""
    number = as_integer(seed)  # a numpy integer too, as torch.manual_seed takes
    if number is None or not SEEDS[0] <= number <= SEEDS[1]:
        raise OptionError(f"seed must be an integer from {SEEDS[0]} to {SEEDS[1]}, got {seed!r}.")
    return number


def check_type(key: str, value: Any) -> None:
    """Raise unless ``value`` fits the type of the ``TrainConfig`` field ``key`` (an int is a float, a bool is no number)."""
    hint = typing.get_type_hints(TrainConfig)[key]
    allowed = [t for t in typing.get_args(hint) if t is not type(None) and typing.get_origin(t) is not os.PathLike] \
        if typing.get_origin(hint) is types.UnionType else [hint]
    if (value is None and type(None) in typing.get_args(hint)) or (key in ("out", *PATH_KEYS) and isinstance(value, os.PathLike)):
        return
    origins = [typing.get_origin(t) or t for t in allowed]
    for origin in origins:
        if origin in VALUE_TYPES and type_mismatch(key, origin, None, value) is None:
            return
        if origin is dict and isinstance(value, dict) and (key != "loss_opt" or all(isinstance(v, dict) for v in value.values())):
            if not storable(value):
                raise OptionError(
                    f"{key} holds {value!r}, with a value a checkpoint cannot hold: options are numbers, text, true/false, "
                    "none, and lists and tables of them; name a choice with text (e.g. act = \"relu\") and build the object from it."
                )
            return
    wanted = " or ".join(VALUE_TYPES[origin][1] if origin in VALUE_TYPES else "a table of options" for origin in origins)
    if key == "loss_opt":
        wanted = "a table of option tables, one per objective (e.g. bce.real_label = 0.9)"
    if key == "data":
        raise OptionError(f"data must be the path of a dataset directory, got a {type(value).__name__}: write the data "
                          "to a folder in one of the layouts of `gantk list data-formats`, or read another layout "
                          "through a data-format plugin (docs/writing-a-plugin.md in gantk's source).")
    raise OptionError(f"{key} must be {wanted}, got {value!r}.")


def layered(*tables: dict[str, Any]) -> dict[str, Any]:
    """Settings given in layers (a file, then flags): later values win, tables merge key by key, at
    every depth (``loss_opt`` holds a table per objective). The run's length is one setting: a layer
    that gives ``epochs`` without ``max_steps`` replaces an earlier ``max_steps``.

    Example:
        >>> layered({"lr": 1e-4, "gen_opt": {"ngf": 8, "norm": "batch"}}, {"gen_opt": {"ngf": 16}})
        {'lr': 0.0001, 'gen_opt': {'ngf': 16, 'norm': 'batch'}}
    """
    merged: dict[str, Any] = {}
    for table in tables:
        if "epochs" in table and "max_steps" not in table:
            merged.pop("max_steps", None)
        merged = merged_tables(merged, table)
    return merged


# Flags of `gantk train` that are no setting of the run, so a config file cannot hold them: how to give them.
COMMAND_LINE_ONLY = {
    "resume": "give --resume DIR on the command line (gantk train --resume DIR; Trainer.resume(DIR) in Python), which takes "
              "the run's own settings",
    "config": "a config file cannot name another; give one --config FILE on the command line",
    "progress": "give --progress/--no-progress on the command line",
}


def check_setting_names(values: dict[str, Any]) -> None:
    """Refuse keys of ``values`` that are not settings of :class:`TrainConfig`, suggesting the closest ones."""
    known = sorted(SETTING_NAMES)
    if unknown := sorted(set(values) - SETTING_NAMES):
        flags = [key for key in unknown if key in COMMAND_LINE_ONLY]
        if flags:
            raise OptionError(f"{', '.join(flags)} {'is' if len(flags) == 1 else 'are'} not a setting of the run: "
                              + "; ".join(COMMAND_LINE_ONLY[key] for key in flags) + ".")
        close = [match for key in unknown for match in difflib.get_close_matches(key, known, n=1)]
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise OptionError(f"unknown setting(s) {', '.join(unknown)}.{hint} Known settings: {', '.join(known)}.")


def merged_tables(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` with ``later``'s values, tables merged key by key at every depth."""
    merged = dict(earlier)
    for key, value in later.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = merged_tables(merged[key], value) if both else value
    return merged


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The contents of the TOML file ``path``; errors name it as ``what`` (e.g. "config file")."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, IsADirectoryError):
        raise OptionError(f"{what} {path} does not exist or is not a file.") from None
    except PermissionError as error:
        raise OptionError(f"cannot read {what} {path}: {error.strerror}; change its permissions (or its folder's) so that "
                          "this user may read it.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise OptionError(f"{what} {path} is not valid TOML: {error}.") from None
    except RecursionError:
        raise OptionError(f"{what} {path} nests its tables or lists too deeply to read.") from None


def setting_keys(table: dict[str, Any], where: str) -> dict[str, Any]:
    """``table`` with keys spelt as flags ('max-steps') turned into setting names ('max_steps'); a setting
    given under both spellings is refused, naming ``where`` the table is (e.g. "config file x.toml")."""
    names = collections.defaultdict(list)
    for key in table:
        names[key.replace("-", "_")].append(key)
    if twice := [" and ".join(keys) for keys in names.values() if len(keys) > 1]:
        raise OptionError(f"{where}: {'; '.join(twice)} are one setting given twice; keep one of them.")
    return {key.replace("-", "_"): value for key, value in table.items()}


def read_config_file(path: str | Path, chosen_weights: str | Path | None = None, *, caveat: str = "",
                     weights_replaced: bool = False) -> dict[str, Any]:
    """Keys of a TOML file (the same names as the flags, with '_' or '-'), checked to be known and of the right type;
    InceptionV3 weights it names must be a file the user chose, ``chosen_weights`` among them (see
    :func:`gantk.metrics.fid.vouched_weights`, whose refusal ends with ``caveat``), unless ``weights_replaced``: the
    caller's ``chosen_weights`` take their place, so they are dropped unread."""
    from ..metrics.fid import vouched_weights  # torch's import, for a file naming weights only

    values = setting_keys(read_toml(path, "config file"), f"config file {path}")
    if weights_replaced:
        values.pop("inception_weights", None)
    elif "inception_weights" in values:
        values["inception_weights"] = vouched_weights(values["inception_weights"], f"config file {path}", chosen_weights,
                                                      caveat=caveat)
    try:
        TrainConfig().merged(values)  # values are checked once layered with the flags, which may replace them
    except OptionError as error:
        raise OptionError(f"config file {path}: {error}") from None
    return values


@contextlib.contextmanager
def naming_config_file(path: str | Path | None, *also: type[Exception]) -> Iterator[None]:
    """Setting errors (and errors of the types ``also``) raised inside name the config file ``path``
    the settings were read from (errors name settings as flags, which a file may have set instead)."""
    try:
        yield
    except (OptionError, SpecError, UnknownNameError, *also) as error:
        if path is not None and not str(error).startswith(f"config file {path}"):
            extend_message(error, f" Settings were read from config file {path}, then from the flags.")
        raise


def to_toml(values: dict[str, Any]) -> str:
    """Flat TOML for a resolved configuration. ``None`` settings are left out; ``None`` component
    options (in the option tables) are written ``"none"``, which components read back as none."""
    lines, tables = [], []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict):
            tables.append(f"\n[{key}]\n" + "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in value.items()))
        else:
            lines.append(f"{key} = {_toml_value(value)}\n")
    return "".join(lines) + "".join(tables)


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:  # only inside option tables: TOML has no null
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if not isinstance(value, str):
        raise TypeError(f"{value!r} has no TOML form: settings hold numbers, text, true/false, lists and tables.")
    # JSON's string escapes are TOML's; TOML also escapes DEL
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
