"""The machine a benchmark ran on: CPU, load, memory, and its measured matmul rate per dtype."""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

FLAGS_OF_INTEREST = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")


def cpu_description() -> dict:
    """Model name, cores, the SIMD / matrix flags that matter to bf16, torch's CPU capability."""
    info = {"model": platform.processor() or "unknown", "logical_cpus": os.cpu_count(), "flags": []}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                info["model"] = value.strip()
            elif key.strip() == "flags":
                present = set(value.split())
                info["flags"] = [flag for flag in FLAGS_OF_INTEREST if flag in present]
                break
    info["torch_cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    info["torch_threads"] = torch.get_num_threads()
    return info


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def matmul_rate(dtype: torch.dtype, device: str = "cpu", n: int = 2048, repeats: int = 7, budget_s: float = 2.0) -> dict:
    """Best and median FLOP/s of an ``n x n`` matmul in ``dtype`` (``repeats`` runs after a warm-up).

    ``n`` halves (down to 256) while one product takes over ``budget_s``: on a CPU without native
    bf16 kernels a 2048² bf16 product takes about a minute.
    """
    sync = torch.cuda.synchronize if device == "cuda" else lambda: None
    while True:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        if time.perf_counter() - start < budget_s or n <= 256:
            break
        n //= 2
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        a @ b
        sync()
        times.append(time.perf_counter() - start)
    return {"best": 2 * n**3 / min(times), "median": 2 * n**3 / statistics.median(times), "n": n}


def matmul_peaks(device: str = "cpu") -> dict:
    """Measured matmul FLOP/s in fp32 and bf16 on ``device``, now (8192² on a GPU, where 2048² is too small to fill it)."""
    n = 8192 if device == "cuda" else 2048
    return {"fp32": matmul_rate(torch.float32, device, n), "bf16": matmul_rate(torch.bfloat16, device, n),
            "device": device, "load_average": load_average()}


def git_revision(checkout: str | Path | None = None) -> str:
    """The commit of ``checkout`` (default: the checkout of the gantk imported, the code measured), ``+dirty``
    with uncommitted changes; ``unknown`` outside a git checkout (an installed package, an archive)."""
    if checkout is None:
        import gantk

        checkout = Path(gantk.__file__).parent
    git = ["git", "-C", str(checkout)]
    try:
        out = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measured_revision() -> str:
    """The commit of the gantk imported, or its version where it is no git checkout."""
    import gantk

    revision = git_revision()
    return revision if revision != "unknown" else f"{gantk.__version__} (not a git checkout)"


def machine() -> dict:
    """Everything recorded with a result: date, host, CPU, torch, load average."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": cpu_description(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gantk_revision": measured_revision(),
        "load_average": load_average(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def cuda_missing(device: str) -> str | None:
    """Why ``--device`` cannot run here (CUDA asked for, none seen), for a usage error before any work; None if it can."""
    if device == "cuda" and not torch.cuda.is_available():
        return "--device cuda: PyTorch sees no CUDA device on this machine; use --device cpu"
    return None


def recorded(script: str, argv: list[str] | None, **fields: object) -> dict:
    """``fields`` with the machine and the command that measured them (``script`` run with ``argv``, or this
    process's arguments)."""
    command = " ".join(["python", f"benchmarks/{script}", *(sys.argv[1:] if argv is None else argv)])
    return {"machine": machine(), "command": command, **fields}


def write_json(path: Path, result: dict) -> None:
    """``result`` in the JSON file ``path``, its folder made where missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
