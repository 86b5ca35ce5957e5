"""One benchmark path alone in its own process: the time of each of its first steps, torch.compile's
counters, and a profile of two steps (the top operators by self CPU time).

Unlike ``throughput.py``, which interleaves paths step by step in separate processes, nothing else runs
here: on a GPU, interleaved processes lengthen every step (most of all a CUDA-graph one), so this shows a
path's own step time, and where it goes.

    python benchmarks/step_profile.py gantk-cudagraphs                # pix2pix 256, batch 1, CUDA
    python benchmarks/step_profile.py eager --case pix2pix-256-b16 --device cpu
"""

from __future__ import annotations

import argparse
import time

import torch
from torch._dynamo.utils import counters
from torch.profiler import ProfilerActivity, profile

from cases import PATHS, parse_case
from gantk.train.distributed import resolve_device
from gantk.train.trainer import tuned_backends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", choices=list(PATHS))
    parser.add_argument("--case", default="pix2pix-256-b1", help="RECIPE-SIZE-bBATCH")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    parser.add_argument("--steps", type=int, default=8, help="timed steps, the first ones included (compiling, recording)")
    args = parser.parse_args()
    case = parse_case(args.case, args.device)
    cuda = args.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tuned_backends(resolve_device(args.device)):
        step, batches = case.stepper(args.path), case.batches()
        times = []
        for i in range(args.steps):
            sync()
            start = time.perf_counter()
            step(batches[i % len(batches)])
            sync()
            times.append(time.perf_counter() - start)
        print(args.path, case.name, "step ms", [round(1000 * t, 1) for t in times], flush=True)
        for key in ("inductor", "stats", "graph_break", "recompiles"):
            print(key, dict(counters[key]), flush=True)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            for i in range(2):
                step(batches[i % len(batches)])
            sync()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60))


if __name__ == "__main__":
    main()
