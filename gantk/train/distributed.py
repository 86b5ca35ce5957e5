"""Process group set-up for runs launched by torchrun (single process otherwise)."""

from __future__ import annotations

import torch
import torch.distributed as dist

from ..errors import OptionError
from ..torchrun import ProcessInfo, process_from_environment


def resolve_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when available; under torchrun each process takes its local GPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise OptionError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu or auto.")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_process_group(device: str) -> ProcessInfo:
    """Join the process group described by torchrun's environment variables, if any."""
    info = process_from_environment()
    if not info.distributed:
        return info
    if not dist.is_initialized():
        if resolve_device(device, info.local_rank).type == "cuda":
            # Collectives (all_gather_object at checkpoints) and pinned memory use the current device.
            torch.cuda.set_device(info.local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    return info


def gather_objects(value: object, info: ProcessInfo) -> list[object]:
    """``value`` from every rank (a one-element list when not distributed)."""
    if not info.distributed:
        return [value]
    gathered: list[object] = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered
