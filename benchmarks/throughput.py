"""Training throughput of gantk against the plain eager reference loop, interleaved step by step.

Each path (see ``cases.PATHS``) trains in its own process on the same fixed batches with the same
networks; one round steps every path once, in a rotating order, so all paths see the same machine
load. The first warm-up step of each path is counted with ``FlopCounterMode``. Reported per path:
median step time and images/s, the median of the per-round speed ratios to ``eager``, FLOPs per step,
achieved FLOP/s against the matmul rate measured here (a reference, not a bound: convolutions can
exceed it), and peak RSS. Then the data loader. The JSON goes to ``--out``, by default
``benchmarks/results/local/throughput.json`` (git-ignored, so a run leaves the committed results as they are).

    python benchmarks/throughput.py                       # the default suite (DEFAULT_PLAN)
    python benchmarks/throughput.py --threads 1           # one thread per path: steadier on a shared machine
    python benchmarks/throughput.py --cases pix2pix-128-b1 --paths eager,gantk --steps 5
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
from gantk.train.precision import cpu_has_fast_kernels

import loader
from cases import CUDA_GRAPH_PATHS, CUDA_ONLY_PATHS, PATHS, Case, parse_case
from hardware import cuda_missing, load_average, machine, matmul_peaks
from worker import Worker

LOCAL_RESULTS = Path(__file__).parent / "results" / "local"  # git-ignored: runs that are not (yet) records
# case -> (paths, timed rounds, warm-up steps): about 18 minutes with one thread per path on this 2-core CPU.
# pix2pix b16 warms up for three steps: its first steps are still growing the heap.
DEFAULT_PLAN = {
    "pix2pix-256-b1": ("eager,eager-twin,eager-fused,eager-kept-memory,gantk,gantk-cl,gantk-bf16,gantk-bf16-cl", 5, 2),
    "seg-256-b1": ("eager,eager-twin,eager-kept-memory,gantk,gantk-bf16,gantk-bf16-cl", 4, 2),
    "pix2pix-256-b16": ("eager,eager-twin,eager-kept-memory,gantk,gantk-bf16,gantk-bf16-cl", 3, 3),
    "cyclegan-256-b1": ("eager,eager-twin,eager-kept-memory,gantk,gantk-bf16,gantk-bf16-cl", 3, 1),
}
FALLBACK_PLAN = ("eager,eager-twin,eager-kept-memory,gantk,gantk-bf16,gantk-bf16-cl", 3, 1)


def run_case(case: Case, paths: list[str], steps: int, warmup: int, threads: int | None = None, alone: bool = False) -> dict:
    """Time ``paths`` on ``case``: interleaved round by round, or with ``alone`` one after another, each
    path's process the only one (on a GPU, interleaved processes lengthen each other's steps)."""
    load_start = load_average()
    started = time.perf_counter()
    counted, memory, setup = {}, {}, {}
    times: dict[str, list[float]] = {path: [] for path in paths}
    faults: dict[str, list[int]] = {path: [] for path in paths}
    system_s: dict[str, list[float]] = {path: [] for path in paths}
    for group in ([path] for path in paths) if alone else [paths]:
        workers = [Worker(case, path, threads) for path in group]
        try:
            for worker in workers:
                worker.wait_ready()
            # Untimed, so all paths at once: each compiles (--compile) in parallel with the others.
            counted.update(zip(group, Worker.ask_all(workers, "flops")))
            for _ in range(warmup - 1):
                Worker.ask_all(workers, "step")
            Worker.ask_all(workers, "warmed-up")  # on CUDA, the timed steps' memory peak is measured apart
            for round_ in range(steps):
                shift = round_ % len(workers)
                for worker in workers[shift:] + workers[:shift]:
                    reply = worker.ask("step")
                    times[worker.path].append(reply["seconds"])
                    faults[worker.path].append(reply["page_faults"])
                    system_s[worker.path].append(reply["system_s"])
            if alone:  # in the log as it comes: a run cut short keeps the paths it timed
                print(f"{group[0]}: median step {statistics.median(times[group[0]]):.4g} s", flush=True)
            memory.update({w.path: w.ask("memory") for w in workers})
            setup.update({w.path: w.setup for w in workers})
        finally:
            for worker in workers:
                worker.stop()
    results = {}
    for path in paths:
        median = statistics.median(times[path])
        flops = counted[path]["flops"]
        ratios = [e / t for e, t in zip(times["eager"], times[path])] if "eager" in times else []
        results[path] = {
            "flags": PATHS[path],
            "step_s": times[path],
            "median_step_s": median,
            "images_per_s": case.batch / median,
            "vs_eager_median": statistics.median(ratios) if ratios else None,
            "vs_eager_range": [min(ratios), max(ratios)] if ratios else None,
            "flops_per_step": flops,
            "achieved_flop_s": flops / median,
            "flop_counted_step_s": counted[path]["seconds"],
            "page_faults": faults[path],
            "system_s": system_s[path],
            "peak_rss_bytes": memory[path]["peak_rss"],
            "cuda_max_allocated_bytes": memory[path]["cuda_max_allocated"],  # the whole process, warm-up included
            "cuda_max_allocated_timed_bytes": memory[path]["cuda_max_allocated_timed"],  # the timed steps alone
            "rss_after_setup_bytes": setup[path]["rss_after_setup"],
        }
    return {
        "case": case.name, "recipe": case.recipe, "size": case.size, "batch": case.batch,
        "steps": steps, "warmup": warmup, "alone": alone, "wall_s": time.perf_counter() - started,
        "load_average_start": load_start, "load_average_end": load_average(), "paths": results,
    }


def precision_of(path: str) -> str:
    return (PATHS[path] or {}).get("precision", "fp32")


def print_case(result: dict, peaks: dict) -> None:
    print(f"\n{result['case']}  ({result['steps']} timed rounds after {result['warmup']} warm-up"
          f"{', each path alone' if result['alone'] else ''}; "
          f"load {result['load_average_start']} -> {result['load_average_end']})")
    print(f"{'path':<26}{'img/s':>9}{'step s':>9}{'x eager':>9}{'  range':<14}{'GFLOP/step':>11}{'GFLOP/s':>9}"
          f"{'% matmul':>10}{'peak RSS':>10}{'faults/step':>13}{'sys s':>7}")
    for path, r in result["paths"].items():
        peak = peaks[precision_of(path)]["best"]
        ratio = "" if r["vs_eager_median"] is None else f"{r['vs_eager_median']:.2f}"
        spread = "" if r["vs_eager_range"] is None else "  {:.2f}-{:.2f}".format(*r["vs_eager_range"])
        print(f"{path:<26}{r['images_per_s']:>9.3f}{r['median_step_s']:>9.3g}{ratio:>9}{spread:<14}"
              f"{r['flops_per_step'] / 1e9:>11.1f}{r['achieved_flop_s'] / 1e9:>9.1f}"
              f"{100 * r['achieved_flop_s'] / peak:>9.1f}%{r['peak_rss_bytes'] / 2**30:>8.2f}GB"
              f"{statistics.median(r['page_faults']):>13.0f}{statistics.median(r['system_s']):>7.2f}"
              + ("" if r["cuda_max_allocated_bytes"] is None else
                 f"  CUDA {r['cuda_max_allocated_timed_bytes'] / 2**30:.2f}GB timed, {r['cuda_max_allocated_bytes'] / 2**30:.2f}GB"
                 " with warm-up"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(DEFAULT_PLAN),
                        help="comma-separated RECIPE-SIZE-bBATCH, RECIPE one of pix2pix, seg, cyclegan (pix2pix-256-b16; "
                             "default: the suite of DEFAULT_PLAN)")
    parser.add_argument("--paths", help=f"comma-separated, from: {', '.join(PATHS)} (default: per case, see DEFAULT_PLAN). "
                                        f"CUDA only: {', '.join(CUDA_ONLY_PATHS)}; {' and '.join(CUDA_GRAPH_PATHS)} record "
                                        "CUDA graphs only on CUDA (on a CPU they are plain compiled paths)")
    parser.add_argument("--steps", type=int, help="timed rounds per case (default: per case)")
    parser.add_argument("--warmup", type=int, help="warm-up steps per path, the first one FLOP-counted (default: per case)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where every path trains (default: cpu)")
    parser.add_argument("--threads", type=int, help="torch threads of every path and of the matmul rate (default: torch's)")
    parser.add_argument("--alone", action="store_true", help="time the paths one after another, not interleaved (for a GPU)")
    parser.add_argument("--no-loader", action="store_true", help="skip the data-loader measurement")
    parser.add_argument("--photos", type=Path, default=loader.PHOTOS, help="photos the loader measurement reads")
    parser.add_argument("--out", type=Path, default=LOCAL_RESULTS / "throughput.json",
                        help="JSON file for the results (default: results/local/throughput.json, git-ignored; the "
                             "committed files in results/ are records, not to be overwritten)")
    args = parser.parse_args()
    unknown = [p for p in (args.paths or "").split(",") if p and p not in PATHS]
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; choose from {', '.join(PATHS)}")
    if (missing := cuda_missing(args.device)):
        parser.error(missing)
    cuda_only = [p for p in (args.paths or "").split(",") if p in CUDA_ONLY_PATHS]
    if cuda_only and args.device != "cuda":
        parser.error(f"--paths {', '.join(cuda_only)}: these record the whole step as a CUDA graph (--cuda-graph) and run "
                     "only on a GPU; use --device cuda, or leave them out")
    try:
        cases = [parse_case(text, args.device) for text in args.cases.split(",")]
    except ValueError as error:
        parser.error(f"--cases: {error}")
    if not args.no_loader:
        loader.check_photos(parser, args.photos)

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
              "matmul_peak_start": matmul_peaks(args.device), "cases": []}
    print(f"machine: {result['machine']['cpu']['model']}, flags {result['machine']['cpu']['flags']}, "
          f"torch {result['machine']['torch']}, {result['machine']['cpu']['torch_threads']} threads")
    peaks = result["matmul_peak_start"]
    print("matmul peak (best): fp32 {:.1f} GFLOP/s at {}^2, bf16 {:.1f} GFLOP/s at {}^2 (load {})".format(
        peaks["fp32"]["best"] / 1e9, peaks["fp32"]["n"], peaks["bf16"]["best"] / 1e9, peaks["bf16"]["n"], peaks["load_average"]))
    for case in cases:
        paths, steps, warmup = DEFAULT_PLAN.get(case.name, FALLBACK_PLAN)
        if not args.paths and args.device == "cpu" and not cpu_has_fast_kernels("bf16"):
            print("this CPU has no native bf16 kernels: the default plan leaves out the bf16 paths (pass --paths for them)")
            paths = ",".join(path for path in paths.split(",") if (PATHS[path] or {}).get("precision") != "bf16")
        paths = (args.paths or paths).split(",")
        outcome = run_case(case, paths, args.steps or steps, max(1, args.warmup or warmup), args.threads, args.alone)
        result["cases"].append(outcome)
        print_case(outcome, peaks)
    result["matmul_peak_end"] = matmul_peaks(args.device)
    if not args.no_loader:
        result["loader"] = loader.measure(device=args.device, photo_dir=args.photos)
        for rate in result["loader"]["rates"]:
            print(f"\nloader, augment on {rate['augment_on']}, workers={rate['workers']}: {rate['images_per_s']:.1f} images/s "
                  f"(load {rate['load_average']})")
    result["wall_s"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {args.out} ({result['wall_s'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
