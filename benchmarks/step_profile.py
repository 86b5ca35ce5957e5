"""One benchmark path alone in its own process: the time of each of its first steps, torch.compile's
counters, and a profile of two steps (the top operators by self CPU time).

Unlike ``throughput.py``, which interleaves paths step by step in separate processes, nothing else runs
here: on a GPU, interleaved processes lengthen every step (most of all a CUDA-graph one), so this shows a
path's own step time, and where it goes. It prints them, and writes them as JSON with the machine
(date, CPU, GPU, load average) and the command (``--out``, by default under the git-ignored
``benchmarks/results/local/``).

    python benchmarks/step_profile.py gantk-cudagraphs                # pix2pix 256, batch 1, on CUDA where there is one
    python benchmarks/step_profile.py eager --case pix2pix-256-b16 --device cpu --out /tmp/eager-b16.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from torch._dynamo.utils import counters
from torch.profiler import ProfilerActivity, profile

from cases import CUDA_ONLY_PATHS, PATHS, parse_case
from gantk.train.distributed import resolve_device
from gantk.train.trainer import tuned_backends
from hardware import cuda_missing, recorded, write_json

LOCAL_RESULTS = Path(__file__).parent / "results" / "local"  # git-ignored


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", choices=list(PATHS), metavar="PATH",
                        help=f"the path to time, one of: {', '.join(PATHS)} (CUDA only: {', '.join(CUDA_ONLY_PATHS)})")
    parser.add_argument("--case", default="pix2pix-256-b1", help="RECIPE-SIZE-bBATCH, RECIPE one of pix2pix, seg, cyclegan "
                                                                 "(default: pix2pix-256-b1)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the path trains; auto: CUDA where PyTorch sees a GPU, else the CPU (default: auto)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps, the first ones included (compiling, recording)")
    parser.add_argument("--out", type=Path, help="JSON file for the results, the machine and the command "
                                                 "(default: results/local/step-profile-PATH-CASE-DEVICE.json, git-ignored)")
    args = parser.parse_args(argv)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if (missing := cuda_missing(device)):
        parser.error(f"{missing} or auto")
    if args.path in CUDA_ONLY_PATHS and device != "cuda":
        parser.error(f"{args.path} records the whole step as a CUDA graph (--cuda-graph) and runs only on a GPU; "
                     "use --device cuda on a machine with one, or another path")
    try:
        case = parse_case(args.case, device)
    except ValueError as error:
        parser.error(f"--case: {error}")
    if args.steps < 1:
        parser.error(f"--steps {args.steps}: expected at least 1 timed step")
    out = args.out or LOCAL_RESULTS / f"step-profile-{args.path}-{case.name}-{device}.json"
    result = recorded("step_profile.py", argv, path=args.path, case=case.name, device=device)  # the machine as the run starts
    cuda = device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tuned_backends(resolve_device(device)):
        step, batches = case.stepper(args.path), case.batches()
        times = []
        for i in range(args.steps):
            sync()
            start = time.perf_counter()
            step(batches[i % len(batches)])
            sync()
            times.append(time.perf_counter() - start)
        print(args.path, case.name, "step ms", [round(1000 * t, 1) for t in times], flush=True)
        compile_counters = {key: dict(counters[key]) for key in ("inductor", "stats", "graph_break", "recompiles")}
        for key, values in compile_counters.items():
            print(key, values, flush=True)
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
        with profile(activities=activities) as prof:
            for i in range(2):
                step(batches[i % len(batches)])
            sync()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60)
        print(table)
    result.update({
        "steps": args.steps,
        "step_s": times,
        "median_step_s_from_step_3": statistics.median(times[2:]) if len(times) > 2 else None,
        "compile_counters": {key: {str(k): v for k, v in values.items()} for key, values in compile_counters.items()},
        "profiled_steps": 2,
        "profile_table": table,
    })
    write_json(out, result)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
