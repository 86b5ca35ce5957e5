"""Process group set-up for runs launched by torchrun (single process otherwise)."""

from __future__ import annotations

import atexit
import contextlib
import re
from typing import Any, Callable, Iterator

import torch
import torch.distributed as dist

from ..errors import GantkError, OptionError, first_sentence
from ..torchrun import ProcessInfo, process_from_environment
from .interrupt import TrainingInterrupted


def resolve_device(requested: str | torch.device, local_rank: int = 0) -> torch.device:
    """The device ``requested`` names: ``auto`` picks CUDA when available, ``cuda`` is the local GPU
    (under torchrun each process takes its own), ``cuda:N`` and ``torch.device`` objects are taken as
    given; anything but the CPU and CUDA is refused."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise OptionError(f"device {requested!r} is not a device name: use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise OptionError(f"device {requested!r}: gantk runs on the CPU or CUDA; use auto, cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise OptionError(f"--device {requested} was asked for but PyTorch sees no CUDA device; use --device cpu or auto.")
    index = local_rank if device.index is None else device.index
    if index >= torch.cuda.device_count():
        raise OptionError(f"device {requested!r}: PyTorch sees {torch.cuda.device_count()} CUDA device(s), numbered from 0.")
    return torch.device("cuda", index)


def init_process_group(device: str) -> ProcessInfo:
    """Join the process group described by torchrun's environment variables, if any (left at exit:
    :func:`leave_process_group`)."""
    info = process_from_environment()
    if not info.distributed:
        return info
    if ":" in str(device):
        raise OptionError(
            f"--device {device} names one GPU, but torchrun started {info.world_size} processes, each of which takes "
            "its own (cuda:LOCAL_RANK): use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs."
        )
    if not dist.is_initialized():
        if resolve_device(device, info.local_rank).type == "cuda":
            # Collectives (all_gather_object at checkpoints) and pinned memory use the current device.
            torch.cuda.set_device(info.local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
        atexit.register(leave_process_group)  # a group the caller joined is the caller's to leave
    return info


_a_run_failed = False  # whether a run of this process ended on an error


@contextlib.contextmanager
def process_group(device: str) -> Iterator[ProcessInfo]:
    """:func:`init_process_group` for one run. A run that fails (not one stopped by a signal, where every process
    stopped together) keeps a NCCL group from being left at exit (see :func:`leave_process_group`)."""
    global _a_run_failed
    info = init_process_group(device)
    try:
        yield info
    except TrainingInterrupted:
        raise
    except BaseException:
        _a_run_failed = True
        raise


def leave_process_group() -> None:
    """Leave the group gantk joined, at the process's exit while the interpreter is whole (the group outlives
    each run: a later Trainer in the process reuses it): a gloo group left to the interpreter's end can abort
    the process there ("terminate called without an active exception"). A NCCL group after a failed run is
    left to torch, since leaving it could wait on a collective that another process, gone, never joins."""
    if dist.is_initialized() and (dist.get_backend() == "gloo" or not _a_run_failed):
        dist.destroy_process_group()


def mean_over_processes(values: dict[str, float], info: ProcessInfo, device: torch.device) -> dict[str, float]:
    """Each value's mean over the processes of a run that have it (``values`` itself in a single
    process). Processes may hold other keys: one that a resumed run added carries no saved losses."""
    if not info.distributed:
        return values
    keys = list(dict.fromkeys(key for keys in gather_objects(list(values), info) for key in keys))  # rank 0's order first
    sums = torch.tensor([[values.get(key, 0.0), float(key in values)] for key in keys], dtype=torch.float64, device=device)
    dist.all_reduce(sums)
    return {key: total / count for key, (total, count) in zip(keys, sums.tolist())}


def gather_objects(value: object, info: ProcessInfo) -> list[object]:
    """``value`` from every rank (a one-element list when not distributed)."""
    if not info.distributed:
        return [value]
    gathered: list[object] = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


# Settings that name files or resources of each machine, which may differ between the machines of a job.
PER_MACHINE = ("data", "init_from", "lpips_weights", "inception_weights", "workers", "device")


def check_processes_agree(settings: dict[str, Any], items: int, info: ProcessInfo) -> None:
    """Under torchrun, refuse a run whose processes were given other settings (but :data:`PER_MACHINE`'s) or data
    of another number of training ``items``: the processes would step with different rates, or stop their
    collectives at different steps and abort."""
    if not info.distributed:
        return
    mine = {**{key: value for key, value in settings.items() if key not in PER_MACHINE}, "training items": items}
    everyone = gather_objects(mine, info)
    differing = [
        f"{key} ({', '.join(f'rank {rank}: {values.get(key)!r}' for rank, values in enumerate(everyone))})"
        for key in mine if any(values.get(key) != everyone[0].get(key) for values in everyone)
    ]
    if differing:
        raise OptionError(f"the {info.world_size} processes of this run differ in {'; '.join(differing)}: start every process "
                          "with the same settings, and give each machine the same training data.")


def stop_agreement(info: ProcessInfo) -> Callable[[int | None], int | None]:
    """A function from this process's stop signal (``None`` before one) to the one any process got, for
    every process to stop after the same step. It is called every step, so it runs on the CPU (its own
    gloo group beside NCCL), never waiting on the GPU."""
    if not info.distributed:
        return lambda signum: signum
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")

    def agreed(signum: int | None) -> int | None:
        seen = torch.tensor([signum or 0])
        dist.all_reduce(seen, op=dist.ReduceOp.MAX, group=group)
        return int(seen.item()) or None

    return agreed


# What gloo raises in a collective whose other end has exited: its source location, then one of these.
_GLOO_SOURCE = re.compile(r"^\[[^\]]*gloo[^\]]*\]\s*")
PEER_GONE = ("Connection closed by peer", "Connection reset by peer")


@contextlib.contextmanager
def peer_loss_explained(info: ProcessInfo, steps_done: Callable[[], int]) -> Iterator[None]:
    """Under torchrun, a collective that fails because another process ended (on an error of its own,
    which that process prints) is reported in one line saying so, instead of torch's traceback."""
    try:
        yield
    except RuntimeError as error:
        message = str(error).strip()
        from_gloo = _GLOO_SOURCE.match(message) and any(text in message for text in PEER_GONE)
        if not info.distributed or not (from_gloo or isinstance(error, dist.DistNetworkError)):
            raise
        torch_says = first_sentence(_GLOO_SOURCE.sub("", message)) or type(error).__name__
        raise GantkError(
            f"lost the connection to another process of this run, {steps_done()} step(s) into training (torch: {torch_says[:300]}): "
            "a process that stops on an error ends the others this way, and prints why; one killed (out of memory, "
            "say) prints nothing, and torchrun's summary names its signal."
        ) from None
