"""Continuing a run from its checkpoint: the settings it may change, and the state it restores."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .. import __version__
from ..errors import CheckpointError, GantkWarning, OptionError, caller_stacklevel
from ..files import user_path
from ..metrics.fid import vouched_weights
from ..metrics.lpips_distance import weights_path
from ..plugins import Components
from . import checkpoint as ckpt
from . import run_files
from .config import (COMPUTATION_KEYS, RESUMABLE_KEYS, SETTING_NAMES, TrainConfig, check_setting_names, check_type, flag, same_setting, spelled,
                     to_toml)

# Settings no resume changes, which tell a run's own checkpoints from another run's: the option tables are left
# out (a resumed run drops starting-weight options; a recipe's options change between gantk versions).
IDENTITY_KEYS = tuple(field.name for field in dataclasses.fields(TrainConfig)
                      if field.name not in RESUMABLE_KEYS | {"out"} and not field.name.endswith("_opt"))
# Each setting's default: what a file without its key holds.
DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
# What validation scores and keeps, set back to their defaults when a resume turns validation off.
VALIDATION_EXTRAS = {key: DEFAULTS[key] for key in ("val_lpips", "lpips_weights", "val_fid", "inception_weights", "keep_best")}

if TYPE_CHECKING:
    from .trainer import TrainingParts


def resumed_config(run_dir: str | Path, overrides: dict[str, Any] | None, components: Components) -> tuple[TrainConfig, dict[str, Any]]:
    """The settings of the run in ``run_dir`` with ``overrides``, and its newest checkpoint.

    ``overrides`` may change the schedule's length (``epochs`` or ``max_steps``), the dataset's
    path (``data``, for a dataset that moved) and how the run is executed (``RESUMABLE_KEYS``:
    device, workers, compile, logging, validation and checkpoint intervals; a new device or
    compile setting warns that the arithmetic changes; ``val_every`` ``None`` turns validation
    off, with what it scores and keeps). Other settings may be given only with the run's own
    values.
    """
    if not isinstance(overrides, dict | None):
        raise OptionError(f"overrides is a dict of the settings to change (such as {{'max_steps': 1000}}), not a "
                          f"{type(overrides).__name__}.")
    overrides, run_dir = dict(overrides or {}), Path(user_path(run_dir, "run_dir (--resume)"))
    check_setting_names(overrides)
    if not run_dir.exists():
        raise OptionError(f"run directory {run_dir} does not exist; resume the --out directory of a run gantk train wrote.")
    if run_dir.is_file():
        older = ("it holds the model alone (--keep-best); to train on from its weights, start a new run with --init-from "
                 f"{run_dir}" if run_dir.name == run_files.BEST
                 else "to continue from an older checkpoint, move the newer ones out of the directory")
        raise OptionError(
            f"--resume takes a run directory and continues from its newest checkpoint, not the file {run_dir}; {older}."
        )
    if (run_dir / run_files.CONFIG).is_file() and not ckpt.list_checkpoints(run_dir):
        if run_files.training_elsewhere(run_dir):
            raise OptionError(f"another process is training in {run_dir}, and has written no checkpoint yet; wait for it "
                              "to end, then resume it if it stops early.")
        kept = (f" Its {run_files.BEST} is a model to translate, score or start from (--init-from); move it out before "
                "starting again." if (run_dir / run_files.BEST).is_file() else "")
        raise OptionError(f"the run in {run_dir} stopped before its first checkpoint, so there is nothing to resume: start "
                          f"it again with the same --out (and its other settings, in its config.toml).{kept}")
    payload = ckpt.load_checkpoint(run_dir)
    ckpt.check_entries(payload, ckpt.RUN_ENTRIES)
    if unknown := sorted(set(payload["train_config"]) - SETTING_NAMES):
        raise CheckpointError(
            f"checkpoint {payload['path']} was written by gantk {payload.get('gantk_version', '(version unknown)')} with "
            f"settings this gantk {__version__} does not know ({', '.join(unknown)}); upgrade gantk to resume the run."
        )
    try:
        for key, value in payload["train_config"].items():
            check_type(key, value)
    except OptionError as error:
        raise CheckpointError(f"checkpoint {payload['path']} holds settings gantk cannot take ({str(error).rstrip('.')}): the file is "
                              "damaged or was edited; use another checkpoint of the run.") from None
    settings = run_files.read_settings(run_dir)  # the run's config.toml: None where missing, unreadable or empty
    _check_checkpoint_is_the_runs(run_dir, payload, settings)
    with ckpt.missing_plugin_errors(payload, components):
        recipe = components.create("recipe", payload["system"]["recipe"])
    options = ckpt.recipe_options(payload["system"]["recipe_opt"], recipe)
    payload["system"]["recipe_opt"], payload["train_config"]["recipe_opt"] = options, dict(options)
    saved = payload["train_config"]
    saved["data_format"] = saved.get("data_format") or payload["system"].get("data_format")  # as detected then
    if saved.get("ignore_label") is None:  # the data format's own (voc, cityscapes: 255; ade20k: 0)
        saved["ignore_label"] = payload["system"].get("ignore_label")
    if "recipe_opt" in overrides:  # none spelt as the run's options hold it
        overrides["recipe_opt"] = recipe.spelt(overrides["recipe_opt"])
    if overrides.get("out") is not None and Path(overrides["out"]).resolve() == run_dir.resolve():
        del overrides["out"]
    fixed = sorted(key for key, value in overrides.items() if key not in RESUMABLE_KEYS and not same_setting(value, saved.get(key)))
    if fixed:
        raise OptionError(
            f"--resume continues a run with its own settings; it cannot change {', '.join(map(flag, fixed))} "
            f"(the run has {'; '.join(spelled(key, saved.get(key)) for key in fixed)}); "
            f"it may change {', '.join(flag(key) for key in sorted(RESUMABLE_KEYS))}."
        )
    _warn_of_settings_left_unsaved(run_dir, payload, settings, overrides)
    if "val_every" in overrides and overrides["val_every"] is None:  # validation turned off, with what it scores and keeps
        overrides = {**VALIDATION_EXTRAS, **overrides}
    if overrides.get("val_lpips") is False and "lpips_weights" not in overrides:
        overrides["lpips_weights"] = None  # the run's weights file goes with its LPIPS
    elif saved.get("val_lpips") and overrides.get("lpips_weights") is not None and \
            weights_path(overrides["lpips_weights"]).absolute() != weights_path(saved.get("lpips_weights")).absolute():
        warnings.warn(f"the run scored validation LPIPS with {weights_path(saved.get('lpips_weights'))} and goes on with "
                      f"{overrides['lpips_weights']}: the LPIPS of validation.csv after step {payload['step']} may be of "
                      "another network than those before.", GantkWarning, stacklevel=caller_stacklevel())
    if overrides.get("val_fid") is False and saved.get("val_fid") and "inception_weights" not in overrides:
        overrides["inception_weights"] = None  # the run's weights file goes with its --val-fid (unpaired data keeps its FID)
    if saved.get("val_every") and saved.get("val_split") not in (None, overrides.get("val_split", saved.get("val_split"))):
        warnings.warn(f"the run validated on split {saved['val_split']} and goes on with {overrides['val_split']}: the rows "
                      f"of validation.csv after step {payload['step']} score other images than those before.", GantkWarning,
                      stacklevel=caller_stacklevel())
    for key in sorted(COMPUTATION_KEYS & set(overrides)):
        if _runs_on(overrides[key]) != _runs_on(saved.get(key)):
            warnings.warn(
                f"the run had {spelled(key, saved.get(key))}: changing it changes the arithmetic, so the resumed run "
                "continues, but not bit for bit as an uninterrupted one would.",
                GantkWarning,
                stacklevel=caller_stacklevel(),
            )
    if "inception_weights" not in overrides:  # the file chosen, loaded whatever the named path points at later
        saved["inception_weights"] = vouched_weights(saved.get("inception_weights"), f"the run's checkpoint {payload['path']}")
    _warn_if_computed_otherwise(payload, _runs_on(overrides.get("device", saved.get("device"))))
    return TrainConfig(**payload["train_config"]).merged({"out": str(run_dir), **overrides}), payload


def _check_checkpoint_is_the_runs(run_dir: Path, payload: dict[str, Any], settings: dict[str, Any] | None) -> None:
    """Refuse a newest checkpoint that is not this run's own: its step is not the one its file name
    says, or its settings are not those of the run's ``config.toml`` (a file copied from another run,
    whose steps would replace this run's checkpoints and logs)."""
    path, step = Path(payload["path"]), payload["step"]
    named = int(ckpt.CHECKPOINT_FILE.search(path.name).group(1))
    if named != step:
        raise CheckpointError(
            f"checkpoint {path} holds step {step}, not the step {named} its name says: it was renamed or copied from "
            f"another run; move it out of {run_dir} to resume from the run's own checkpoints."
        )
    if settings is None:
        return  # no settings of the run to compare with
    saved = payload["train_config"]
    # Compared as the file writes them (None left out). A setting the checkpoint leaves unset is not: its gantk did
    # not have it, or the resumed run filled it in (the data format as detected, the format's ignore label).
    differing = [key for key in IDENTITY_KEYS
                 if saved.get(key) is not None and to_toml({key: settings.get(key)}) != to_toml({key: saved[key]})]
    if differing:
        raise CheckpointError(
            f"checkpoint {path} differs from the run's {run_files.CONFIG} in {run_dir}: it has "
            f"{'; '.join(spelled(key, saved.get(key)) for key in differing)}, where {run_files.CONFIG} has "
            f"{'; '.join(spelled(key, settings[key]) if key in settings else f'no {flag(key)}' for key in differing)}. "
            f"If {run_files.CONFIG} was edited, restore it or delete it (resuming writes it again from the checkpoint); "
            f"if the checkpoint was copied from another run, move it out of {run_dir} to resume from the run's own."
        )


def computed_by(device: torch.device | str) -> dict[str, Any]:
    """What, besides the settings, decides a step's arithmetic on ``device``: its kind, torch's version and, on the CPU,
    its thread count."""
    return {"device": torch.device(device).type, "torch": str(torch.__version__), "threads": torch.get_num_threads()}


def _warn_if_computed_otherwise(payload: dict[str, Any], device: Any) -> None:
    """Warn where this process, on ``device``, computes otherwise than the one that wrote checkpoint ``payload`` did
    (on another kind of device, with another torch, or on the CPU with another thread count, which orders its sums
    otherwise)."""
    then, now = payload["computed_by"], computed_by(device)
    if then is None:
        return
    changed = [f"{key} {then.get(key)}, now {now[key]}" for key in ("device", "torch") if then.get(key) != now[key]]
    if not changed and now["device"] == "cpu" and then.get("threads") != now["threads"]:
        changed.append(f"{then.get('threads')} CPU threads, now {now['threads']} (OMP_NUM_THREADS sets them)")
    if changed:
        warnings.warn(f"the run was computed with {'; '.join(changed)}: the resumed run continues, but not bit for bit as an "
                      "uninterrupted one would.", GantkWarning, stacklevel=caller_stacklevel())


def _runs_on(value: Any) -> Any:
    """What a setting value means on this machine: ``auto`` as the device it picks, ``cuda`` as the GPU
    one process takes (the first; a numbered GPU is refused under torchrun), others as they are."""
    if value == "auto":
        value = "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda:0" if value == "cuda" else value


def restore(payload: dict[str, Any], parts: TrainingParts, seed: int) -> int:
    """Put the weights and training state of checkpoint ``payload`` into ``parts``; returns its step."""
    ckpt.load_system_state(parts.system, payload["system_state"], payload["path"])
    try:
        return _restore_training_state(payload, parts, seed)
    except torch.OutOfMemoryError:
        raise  # the machine's limit, not the file's fault
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as error:  # entries of the right kind, wrong contents
        raise CheckpointError(
            f"checkpoint {payload['path']} holds training state gantk cannot restore ({type(error).__name__}: {error}); "
            "it may be damaged or edited: try another checkpoint of the run."
        ) from error  # the cause kept: an error of torch's own shows in the chain


def _restore_training_state(payload: dict[str, Any], parts: TrainingParts, seed: int) -> int:
    """Optimizers, schedules, the gradient scaler, module state and random streams of ``payload``; its step."""
    system, process = parts.system, parts.process
    for name, opt in parts.optimizers.items():
        _check_optimizer_state(name, opt, payload["optimizers"][name])
        opt.load_state_dict(payload["optimizers"][name])
    risen, fallen = [], []
    for name, sch in parts.schedulers.items():
        sch.load_state_dict(payload["schedulers"][name])
        # The saved rate follows the saved schedule; take it from this run's, which may be longer or shorter.
        for group, base_lr, factor in zip(sch.optimizer.param_groups, sch.base_lrs, sch.lr_lambdas, strict=True):
            saved, group["lr"] = group["lr"], base_lr * factor(sch.last_epoch)
            if group["lr"] > saved * (1 + 1e-6):
                risen.append(f"{name}'s from {saved:.3g} to {group['lr']:.3g}")
            elif group["lr"] < saved * (1 - 1e-6):
                fallen.append(f"{name}'s from {saved:.3g} to {group['lr']:.3g}")
    if fallen and process.is_main:
        warnings.warn(f"on resuming, the learning rate falls ({'; '.join(dict.fromkeys(fallen))}): it follows the schedule as "
                      "set now, whose decay is pressed into a shorter run.", GantkWarning, stacklevel=caller_stacklevel())
    if risen and process.is_main:
        warnings.warn(f"on resuming, the learning rate rises ({'; '.join(dict.fromkeys(risen))}): it follows the schedule as "
                      "set now, whose decay is stretched over a longer run (or, for a run begun before gantk 0.3, whose "
                      "warm-up now ends before the decay starts), and falls to 0 again at its end.", GantkWarning,
                      stacklevel=caller_stacklevel())
    parts.scaler.load_state_dict(payload["scaler"])
    step = int(payload["step"])
    extra_states = payload["process_extra_state"]
    if process.rank < len(extra_states):
        system.load_state_dict(extra_states[process.rank], strict=False)
    if process.rank < len(payload["rng"]):
        rng = payload["rng"][process.rank]
        torch.set_rng_state(rng["cpu"])
        restore_cuda_rng(rng["cuda"], parts.device)
    else:  # a process the run did not have: a stream of its own, as in a new run
        torch.manual_seed(seed + process.rank)
    return step


def _check_optimizer_state(name: str, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless the saved groups hold Adam's betas (a pair of numbers) and amsgrad flag, and
    each parameter's saved state is what an Adam step reads: a one-element step and moments that are float
    tensors of the parameter's shape (the fused step reads them without checking)."""
    for group in state["param_groups"]:
        betas = group.get("betas")
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2 and all(isinstance(b, (int, float)) for b in betas)):
            raise ValueError(f"optimizer {name}'s betas are {betas!r}, not a pair of numbers")
        if not isinstance(group.get("amsgrad"), bool):
            raise ValueError(f"optimizer {name}'s amsgrad is {group.get('amsgrad')!r}, not true or false")
    saved = [(index, group) for group in state["param_groups"] for index in group["params"]]
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    for (index, group), parameter in zip(saved, parameters, strict=True):
        moments = state["state"].get(index)
        if moments is None:
            continue
        needed = {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if group["amsgrad"] else set())
        if missing := sorted(needed - set(moments)):
            raise ValueError(f"optimizer {name}'s state of parameter {index} lacks {', '.join(missing)}")
        if not (isinstance(moments["step"], torch.Tensor) and moments["step"].numel() == 1):
            raise ValueError(f"optimizer {name}'s step of parameter {index} is not one number")
        for key, value in moments.items():
            if key != "step" and not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.shape == parameter.shape):
                got = f"{value.dtype} of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"optimizer {name}'s {key} of parameter {index} is {got}, not a float of shape {tuple(parameter.shape)}")


def restore_cuda_rng(states: list[torch.Tensor], device: torch.device) -> None:
    """Give ``device`` the CUDA random state a checkpoint saved for it: the one state of the process's
    GPU (checkpoints before it hold every visible GPU's, by index). A CPU run has none to restore."""
    if not states or device.type != "cuda":
        return
    index = device.index or 0
    state = states[min(index, len(states) - 1)]
    torch.cuda.set_rng_state(state, device)


def _warn_of_settings_left_unsaved(run_dir: Path, payload: dict[str, Any], settings: dict[str, Any] | None,
                                   overrides: dict[str, Any]) -> None:
    """Warn of settings a resume may change that ``config.toml`` (``settings``) holds and the checkpoint does not: a
    resume that changed them stopped before its first checkpoint (or the file was edited), and they would be lost unseen."""
    if settings is None:
        return
    written, saved = ({key: source.get(key, DEFAULTS[key]) for key in DEFAULTS} for source in (settings, payload["train_config"]))
    kept = RESUMABLE_KEYS - COMPUTATION_KEYS - {"workers"} - set(overrides)  # the machine's own are chosen again
    unsaved = sorted(key for key in kept if not same_setting(written[key], saved[key]))
    if unsaved:
        warnings.warn(
            f"{run_dir / run_files.CONFIG} holds {'; '.join(spelled(key, written[key]) for key in unsaved)}, and the newest "
            f"checkpoint (step {payload['step']}) {'; '.join(spelled(key, saved[key]) for key in unsaved)}: a resume that "
            "set them stopped before its first checkpoint (or the file was edited). The run goes on with the checkpoint's; "
            "to keep the others, give them again.", GantkWarning, stacklevel=caller_stacklevel())


def warn_if_the_data_changed(payload: dict[str, Any], train_items: int, data: str | None) -> None:
    """Warn when the dataset (``data``, now holding ``train_items``) is not the one the run trained on."""
    trained_on = payload["train_items"]
    if trained_on is not None and trained_on != train_items:
        warnings.warn(
            f"the run trained on {trained_on} items and its dataset now holds {train_items}: the resumed run "
            "continues, but it is not the run an uninterrupted one would have been.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    elif trained_on is None and payload["train_config"].get("data") != data:
        warnings.warn(
            f"the checkpoint predates item counts, so whether {data} holds the items the run "
            "trained on cannot be checked.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )


def check_resumed_length(payload: dict[str, Any], run_dir: Path, total_steps: int, world_size: int, config: TrainConfig) -> None:
    """Refuse a schedule of ``total_steps`` that ends before the run's step; warn when the run resumes with another
    number of processes (``world_size``) than it trained with."""
    trained_with = len(payload["rng"])  # one RNG state per process
    if total_steps < payload["step"]:
        fewer = config.max_steps is None and world_size > trained_with
        raise OptionError(
            f"the run in {run_dir} is at step {payload['step']}, past the {total_steps} steps asked for"
            + (f" (with {world_size} processes instead of the {trained_with} it trained with, an epoch has fewer "
               "steps)" if fewer else "")
            + "; resume with a longer --max-steps or --epochs" + (f", or with {trained_with} process(es)." if fewer else ".")
        )
    if trained_with != world_size:
        warnings.warn(
            f"the run trained with {trained_with} process(es) and resumes with {world_size}: a step now takes "
            f"{config.batch_size * world_size} image(s) instead of {config.batch_size * trained_with}, the epochs are dealt "
            f"out anew and the run ends at step {total_steps}. It continues, but not as an uninterrupted run would have; "
            f"resume with {trained_with} process(es) for that.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
