"""Freed host memory kept for reuse while training or translating on the CPU (glibc's malloc).

A training step frees and allocates the same large activation buffers every step, and so does
each batch a model translates. By default glibc gives memory freed at the top of its heap back to
the kernel and serves large blocks with fresh mappings, so each step faults the same pages in
again: a fifth or more of a pix2pix batch-16 step's time on a 2-core CPU (docs/benchmarks.md).
Keeping freed memory, as PyTorch's CPU launcher does with jemalloc, removes most of those faults;
the process then holds the step's peak, which it reaches every step anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
from typing import Iterator

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD = 32 * 2**20  # the largest every glibc accepts (older versions refuse more)
NEVER_TRIM = -1  # glibc reads it as the largest size: trimming off
# A user's own choice of allocator or malloc settings, which gantk leaves alone.
PRELOADED_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")
MALLOC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    return libc


def _malloc_chosen_by_user() -> bool:
    preloaded = os.environ.get("LD_PRELOAD", "")
    return (any(name in preloaded for name in PRELOADED_ALLOCATORS) or any(os.environ.get(name) for name in MALLOC_VARIABLES)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def keep_freed_memory(device: torch.device) -> bool:
    """On the CPU with glibc, keep freed memory in the process for the next step's or batch's
    buffers: blocks under 32 MiB come from the heap, and its top is never given back to the kernel.

    The setting holds for the rest of the process. Returns whether it was made: not on CUDA, not
    where the C library is not glibc, and not where the environment already chooses the allocator
    or its settings (jemalloc, tcmalloc or mimalloc in ``LD_PRELOAD``, ``MALLOC_*_`` variables,
    ``GLIBC_TUNABLES=glibc.malloc.*``).
    """
    if device.type != "cpu" or _malloc_chosen_by_user():
        return False
    libc = _glibc()
    if libc is None:
        return False
    made = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD), libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
    return any(made)


def give_back_freed_memory() -> None:
    """Return the freed memory glibc holds to the kernel (after the loop: the kept memory does not outlive it)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextlib.contextmanager
def freed_memory_kept(device: torch.device) -> Iterator[None]:
    """Keep freed memory (:func:`keep_freed_memory`) for the block's loop, and give it back after."""
    kept = keep_freed_memory(device)
    try:
        yield
    finally:
        if kept:
            give_back_freed_memory()
