"""Freed host memory kept for reuse while training on the CPU (glibc's malloc).

A training step frees and allocates the same large activation buffers every step. By default glibc
gives memory freed at the top of its heap back to the kernel and serves large blocks with fresh
mappings, so each step faults the same pages in again (10-25% of a 256 x 256 step on a 2-core CPU,
docs/benchmarks.md). Keeping freed memory, as PyTorch's CPU launcher does with jemalloc, removes
those faults; the process's memory then stays at the step's peak, which it reaches every step anyway.
"""

from __future__ import annotations

import ctypes
import functools
import platform

import torch

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
LARGEST_HEAP_BLOCK = 32 * 2**20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit systems
NEVER_TRIM = 2**31 - 1  # M_TRIM_THRESHOLD takes an int


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL("libc.so.6")


def keep_freed_memory(device: torch.device) -> bool:
    """When training on the CPU with glibc, keep freed memory in the process for the next step's
    buffers: blocks up to 32 MiB come from the heap, and its top is never given back to the kernel.

    The setting holds for the rest of the process. Returns whether it was made (False on CUDA, and
    where the C library is not glibc).
    """
    libc = _glibc()
    if device.type != "cpu" or libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGEST_HEAP_BLOCK) and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def give_back_freed_memory() -> None:
    """Return the memory glibc holds freed to the kernel (after training, so kept memory does not outlive it)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
