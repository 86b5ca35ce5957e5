"""Freed host memory kept for reuse while training or translating on the CPU (glibc's malloc).

A training step frees and allocates the same large activation buffers every step, and so does
each batch a model translates. By default glibc gives memory freed at the top of its heap back to
the kernel and serves large blocks with fresh mappings, so each step faults the same pages in
again: a fifth or more of a pix2pix batch-16 step's time on a 2-core CPU (docs/benchmarks.md).
Keeping freed memory, as PyTorch's CPU launcher does with jemalloc, removes those faults; the
process then holds the step's peak, which it reaches every step anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
from typing import Iterator, NamedTuple

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # mallopt parameters, from glibc's malloc.h
LARGEST_DYNAMIC_THRESHOLD = 32 * 2**20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit systems


class Setting(NamedTuple):
    parameter: int
    kept: int | None  # the value while memory is kept (None: left as it is)
    after: int  # the value set after
    chosen_by: tuple[str, ...]  # the user's settings (as glibc's environment names them) it leaves alone


# Setting any of these (or M_TOP_PAD) turns glibc's dynamic mmap threshold off for good, leaving blocks over
# 128 KiB to be mapped afresh each time; after the loop, the most that threshold reaches is set, unless the
# environment set one of them (glibc then kept 128 KiB itself).
SETTINGS = (
    # every block from the heap, none from a mapping of its own (a threshold the user sets keeps mappings)
    Setting(M_MMAP_MAX, 0, 65536, ("mmap_max", "mmap_threshold")),
    Setting(M_MMAP_THRESHOLD, None, LARGEST_DYNAMIC_THRESHOLD,
            ("mmap_threshold", "mmap_max", "trim_threshold", "top_pad")),
    Setting(M_TRIM_THRESHOLD, -1, 2 * LARGEST_DYNAMIC_THRESHOLD, ("trim_threshold",)),  # the heap's top never given back
)


def _address(function: object) -> int | None:
    return ctypes.cast(function, ctypes.c_void_p).value


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """glibc, where it is the C library and its malloc the one the process uses (not one preloaded)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")
    if _address(ctypes.CDLL(None).malloc) != _address(libc.malloc):
        return None
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def _chosen_by_user(setting: Setting) -> bool:
    """Whether the environment sets one of ``setting.chosen_by`` (``MALLOC_<NAME>_`` or
    ``GLIBC_TUNABLES=glibc.malloc.<name>=``)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return any(os.environ.get(f"MALLOC_{name.upper()}_") or f"glibc.malloc.{name}=" in tunables for name in setting.chosen_by)


def _settings_to_make() -> list[Setting]:
    return [setting for setting in SETTINGS if not _chosen_by_user(setting)]


def keep_freed_memory(device: torch.device) -> bool:
    """On the CPU with glibc, keep freed memory in the process for the next step's or batch's
    buffers: every block comes from the heap, and its top is never given back to the kernel.

    The setting holds until :func:`give_back_freed_memory`; a value the environment sets
    (``MALLOC_MMAP_MAX_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or their
    ``GLIBC_TUNABLES``) is left as it is. Returns whether anything was set: not on CUDA, and not
    where malloc is not glibc's (another C library, or an allocator such as jemalloc preloaded).
    """
    libc = _glibc() if device.type == "cpu" else None
    if libc is None:
        return False
    made = [libc.mallopt(setting.parameter, setting.kept) for setting in _settings_to_make() if setting.kept is not None]
    return any(made)


def give_back_freed_memory() -> None:
    """Return the freed memory glibc holds to the kernel and set the most its dynamic thresholds reach in a
    process that frees large blocks (after the loop: the kept memory does not outlive it): blocks up to
    32 MiB from the heap, whose top over 64 MiB free is given back. ``mallopt`` turned the dynamic
    thresholds off; glibc's first ones (128 KiB) would map each larger block afresh, many times slower
    for the rest of the process."""
    libc = _glibc()
    if libc is not None:
        for setting in _settings_to_make():
            libc.mallopt(setting.parameter, setting.after)
        libc.malloc_trim(0)


_blocks_keeping = 0  # freed_memory_kept blocks running that set the setting (they may nest: eval inside training)


@contextlib.contextmanager
def freed_memory_kept(device: torch.device) -> Iterator[None]:
    """Keep freed memory (:func:`keep_freed_memory`) for the block's loop, and give it back after, once
    no enclosing block keeps it."""
    global _blocks_keeping
    kept = keep_freed_memory(device)
    _blocks_keeping += kept
    try:
        yield
    finally:
        _blocks_keeping -= kept
        if kept and not _blocks_keeping:
            give_back_freed_memory()
