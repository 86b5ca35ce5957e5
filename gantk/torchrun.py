"""Where this process stands in a torchrun job, read from the variables torchrun sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import OptionError


@dataclass(frozen=True)
class ProcessInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1  # processes of the job on this machine

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def refuse_under_torchrun(command: str) -> None:
    """Refuse ``gantk command``, a job of one process, when torchrun started several: each would do all of it."""
    process = process_from_environment()
    if process.distributed:
        raise OptionError(f"gantk {command} runs in one process, and torchrun started {process.world_size}, each of which "
                          "would do the whole job (and write the same files): run it without torchrun.")


def process_from_environment() -> ProcessInfo:
    """This process's place in a torchrun job, from the variables torchrun sets (one process without them)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return ProcessInfo()
    return ProcessInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")),
                       int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
