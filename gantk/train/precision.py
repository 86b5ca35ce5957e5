"""Mixed precision: an autocast context (a no-op for fp32) and a gradient scaler (active for fp16 only)."""

from __future__ import annotations

import contextlib
import warnings

import torch

from ..errors import GantkWarning, caller_stacklevel

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def cpu_has_fast_kernels(precision: str) -> bool:
    """Whether oneDNN has native kernels for ``precision`` on this CPU (AVX-512 or AMX for bf16/fp16)."""
    if precision == "bf16":
        return torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if precision == "fp16":
        return torch.ops.mkldnn._is_mkldnn_fp16_supported()
    return True


def warn_if_slow(device: torch.device, precision: str) -> None:
    """Warn when reduced precision on this CPU would run through slow fallback kernels."""
    if device.type == "cpu" and not cpu_has_fast_kernels(precision):
        warnings.warn(
            f"--precision {precision}: this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native "
            f"{precision} kernels, so convolutions and matrix products fall back to code that is much slower "
            "than fp32; train with --precision fp32 here.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
