"""Markdown tables of the benchmark results (``benchmarks/results/*.json``), for docs/benchmarks.md.

    python benchmarks/report.py [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from cases import EAGER_PATHS, PATHS


def _flags(path: str) -> str:
    if path in EAGER_PATHS:
        settings = EAGER_PATHS[path]
        return ("plain eager loop, fp32, " + ("fused Adam" if settings["fused"] else "default (foreach) Adam")
                + (", freed memory kept" if settings["keep_memory"] else "") + (", a second process" if path == "eager-twin" else ""))
    flags = PATHS[path]
    names = {"precision": lambda v: f"--precision {v}", "channels_last": lambda v: "--channels-last",
             "compile": lambda v: "--compile", "compile_mode": lambda v: f"--compile-mode {v}", "cuda_graph": lambda v: "--cuda-graph"}
    return " ".join(names[k](v) for k, v in flags.items()) or "(defaults: fp32)"


def machine_line(machine: dict) -> str:
    cpu = machine["cpu"]
    return (f"{machine['date']}, {cpu['model']} ({cpu['logical_cpus']} logical CPUs, torch threads {cpu['torch_threads']}, "
            f"flags {', '.join(cpu['flags'])}, torch CPU capability {cpu['torch_cpu_capability']}), torch {machine['torch']}, "
            f"gantk {machine['gantk_revision']}, GPU: {machine['cuda'] or 'none'}")


def cuda_memory(r: dict) -> str:
    allocated = r.get("cuda_max_allocated_bytes")
    return "" if allocated is None else f"; CUDA max allocated {allocated / 2**30:.2f} GiB"


def matmul_sizes(peaks: dict) -> str:
    fp32, bf16 = peaks["fp32"]["n"], peaks["bf16"]["n"]
    return f"{fp32}²" if fp32 == bf16 else f"fp32 at {fp32}², bf16 at {bf16}²"


def throughput_tables(result: dict) -> list[str]:
    start, end = result["matmul_peak_start"], result["matmul_peak_end"]
    lines = [
        f"- Machine: {machine_line(result['machine'])}",
        f"- Command: `{result['command']}`" + (f" ({result['wall_s'] / 60:.1f} min)" if "wall_s" in result else ""),
        "- Measured matmul rate ({}, best of 7): fp32 {:.1f} GFLOP/s, bf16 {:.1f} GFLOP/s at the start (load {}); "
        "fp32 {:.1f}, bf16 {:.1f} at the end (load {})".format(
            matmul_sizes(start), start["fp32"]["best"] / 1e9, start["bf16"]["best"] / 1e9, start["load_average"],
            end["fp32"]["best"] / 1e9, end["bf16"]["best"] / 1e9, end["load_average"]),
        "",
    ]
    for case in result["cases"]:
        faults = all("page_faults" in r for r in case["paths"].values())  # measured since the kept-memory runs
        lines += [
            f"**{case['case']}** — {case['steps']} timed round(s) after {case['warmup']} warm-up step(s)"
            f"{', each path alone' if case.get('alone') else ''}; "
            f"load average {case['load_average_start']} → {case['load_average_end']}; {case['wall_s'] / 60:.1f} min",
            "",
            "| path | flags | images/s | step (s, median) | × eager (median, range) | GFLOP/step | GFLOP/s "
            "| % of matmul rate | peak RSS (after set-up) |" + (" page faults / step (system s), median |" if faults else ""),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if faults else ""),
        ]
        for path, r in case["paths"].items():
            precision = (PATHS.get(path) or {}).get("precision", "fp32")
            peak = start[precision]["best"]
            ratio = "—"
            if r["vs_eager_median"] is not None:
                ratio = "{:.2f} ({:.2f}–{:.2f})".format(r["vs_eager_median"], *r["vs_eager_range"])
            lines.append(
                f"| {path} | {_flags(path)} | {r['images_per_s']:.3f} | {r['median_step_s']:.3g} | {ratio} | "
                f"{r['flops_per_step'] / 1e9:.1f} | {r['achieved_flop_s'] / 1e9:.1f} | "
                f"{100 * r['achieved_flop_s'] / peak:.1f}% ({precision}) | {r['peak_rss_bytes'] / 2**30:.2f} GiB "
                f"({r['rss_after_setup_bytes'] / 2**30:.2f}){cuda_memory(r)} |"
                + (f" {statistics.median(r['page_faults']):,.0f} ({statistics.median(r['system_s']):.2f}) |" if faults else "")
            )
        lines.append("")
    if "loader" in result:
        lines += loader_table(result["loader"], result["cases"])
    return lines


def loader_table(loader: dict, cases: list[dict]) -> list[str]:
    training = next((c for c in cases if c["case"].startswith("pix2pix-256-b1")), None)
    lines = [
        f"**Data loader** — {loader['pairs']} JPEG pairs ({loader['source']}), {loader['load_size']} → random "
        f"{loader['crop_size']} crop + flip, batch {loader.get('batch_size', 1)}, the trainer's DataLoader settings"
        + (f" and `to_device` ({loader['device']})" if "device" in loader else ""),
        "",
        "| augment on | workers | images/s | load average |" + (" × training (pix2pix-256-b1, per path) |" if training else ""),
        "|---|---:|---:|---|" + ("---|" if training else ""),
    ]
    for rate in loader["rates"]:
        default = " (default)" if rate["workers"] == loader["default_workers"] else ""
        row = f"| {rate.get('augment_on', 'loader')} | {rate['workers']}{default} | {rate['images_per_s']:.1f} | {rate['load_average']} |"
        if training:
            row += " " + ", ".join(f"{path} {rate['images_per_s'] / r['images_per_s']:.0f}×"
                                   for path, r in training["paths"].items() if path not in EAGER_PATHS) + " |"
        lines.append(row)
    return lines + [""]


def loader_tables(result: dict) -> list[str]:
    lines = [f"- Machine: {machine_line(result['machine'])}", f"- Command: `{result['command']}`", ""]
    return lines + loader_table(result["loader"], [])


def quality_tables(result: dict) -> list[str]:
    s = result["settings"]
    lines = [
        f"- Machine: {machine_line(result['machine'])}",
        f"- Command: `{result['command']}` ({result['wall_s'] / 60:.1f} min)",
        f"- Data: {result['data']['train_pairs']} train pairs from {len(result['data']['train_photos'])} photos, "
        f"{result['data']['test_pairs']} test pairs from {len(result['data']['test_photos'])} other photos; "
        f"{s['size']} px crops of a {s['load_size']} px resize, U-Net ngf {s['ngf']}, PatchGAN ndf {s['ndf']}, "
        f"{s['steps']} steps at batch 1",
        "- Lock-step check ({steps} steps, same batches, weights and RNG): largest relative loss difference "
        "{max_relative_loss_difference:.1e}, largest weight difference {max_weight_difference:.1e}, of batch-norm "
        "running statistics {max_running_statistics_difference:.1e}".format(**result["lockstep"]),
        "",
        "| seed | gantk L1 (paper mode) | plain L1 (paper mode) | gantk L1 (eval mode) | plain L1 (eval mode) "
        "| same initial weights | train time gantk / plain | load average |",
        "|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for run in result["runs"]:
        lines.append(
            f"| {run['seed']} | {run['paper_mode']['gantk']:.4f} | {run['paper_mode']['plain']:.4f} | "
            f"{run['eval_mode']['gantk']:.4f} | {run['eval_mode']['plain']:.4f} | {run['same_initial_weights']} | "
            f"{run['gantk_s']:.0f} s / {run['plain_s']:.0f} s | {run['load_average_start']} → {run['load_average_end']} |"
        )
    lines += ["", "| mode | gantk mean | plain mean | gantk − plain | standard error over seeds / test images | gantk no worse |",
              "|---|---:|---:|---:|---:|---|"]
    for mode, m in result["summary"].items():
        lines.append(
            f"| {mode.replace('_', ' ')} | {m['gantk_mean']:.4f} | {m['plain_mean']:.4f} | {m['mean_difference']:+.4f} | "
            f"{m['seed_standard_error']:.4f} / {m['image_standard_error']:.4f} | {'yes' if m['gantk_no_worse'] else 'no'} |"
        )
    lines.append(f"\nThe best constant guess (the mean training colour) scores {result['mean_colour_l1']:.4f}.")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    renderers = {"throughput": throughput_tables, "pix2pix_quality": quality_tables, "loader": loader_tables}
    for path in sorted(args.results.glob("*.json")):
        result = json.loads(path.read_text())
        kind = next((k for k in renderers if path.stem.startswith(k)), None)
        if kind:
            print(f"<!-- {path.name} -->")
            print("\n".join(renderers[kind](result)))


if __name__ == "__main__":
    main()
