"""The checkpoints a run writes: every process's state gathered, the file written by the main process, the oldest pruned."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
import torch.distributed as dist

from ..systems.base import System
from . import checkpoint as ckpt
from .config import TrainConfig
from .distributed import gather_objects
from .resume import computed_by

if TYPE_CHECKING:
    from .logs import RunLog
    from .trainer import TrainingParts


def save_run_checkpoint(parts: TrainingParts, run_dir: Path, step: int, model_entries: Callable[[], dict[str, Any]],
                        log: RunLog, inception_sha1: str | None, keep: int) -> None:
    """The checkpoint of ``step`` in ``run_dir``: the model (``model_entries``), the training state of ``parts``
    and of every process, ``log``'s rows synced first; all but the newest ``keep`` checkpoints are then removed.
    Every process calls it, and none goes on before the file is written."""
    system, process = parts.system, parts.process
    # The CUDA state of this process's GPU only: a run may resume on a machine with fewer GPUs.
    rng = {"cpu": torch.get_rng_state(), "cuda": [torch.cuda.get_rng_state(parts.device)] if parts.device.type == "cuda" else []}
    # system_state holds rank 0's module extra state; the others' is gathered only when there are several.
    extra_state = process_extra_state(system) if process.distributed else {}
    per_process = gather_objects({"rng": rng, "extra_state": extra_state, "loss_window": log.window.state()}, process)
    if process.is_main:
        payload = {
            **model_entries(),
            "optimizers": {name: opt.state_dict() for name, opt in parts.optimizers.items()},
            "schedulers": {name: sch.state_dict() for name, sch in parts.schedulers.items()},
            "scaler": parts.scaler.state_dict(),
            "rng": [state["rng"] for state in per_process],
            "process_extra_state": [state["extra_state"] for state in per_process] if process.distributed else [],
            "loss_windows": [state["loss_window"] for state in per_process],
            "validation_inception_sha1": inception_sha1,
            "computed_by": computed_by(parts.device),
            "logged_steps": log.logged_steps(),
        }
        log.sync()  # the rows up to this step reach the disk before the checkpoint that resumes after them
        ckpt.save_checkpoint(ckpt.checkpoint_path(run_dir, step), payload)
        prune_checkpoints(run_dir, keep)
    if process.distributed:  # no process goes on (or stops on a signal) before the checkpoint is written
        dist.barrier()


def model_entries(system: System, step: int, system_config: dict[str, Any], config: TrainConfig, train_items: int | None,
                  part_plugins: dict[str, dict[str, dict[str, str]]]) -> dict[str, Any]:
    """What a checkpoint holds of the model at ``step``: enough to translate with it (see ``MODEL_ENTRIES``)."""
    return {
        "system": system_config,
        "system_state": system.state_dict(),
        "step": step,
        "train_config": config.to_dict(),
        "train_items": train_items,
        "plugins": sorted({part["plugin"] for providers in part_plugins.values() for part in providers.values()}),
        "part_plugins": part_plugins,
    }


def process_extra_state(system: System) -> dict[str, Any]:
    """The modules' extra state (image pools), on the CPU.

    DDP keeps parameters and buffers equal across processes but not extra state, so a checkpoint
    holds this once per process.
    """
    return {
        key: value.cpu() if isinstance(value, torch.Tensor) else value
        for key, value in system.state_dict().items()
        if key.endswith("_extra_state")  # the suffix torch gives get_extra_state() entries
    }


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Remove all but the newest ``keep`` checkpoints of ``run_dir``."""
    for old in ckpt.list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
