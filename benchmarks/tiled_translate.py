"""Memory and time of translating one large image whole against in tiles of each ``--tiles`` side (``gantk translate
--tile``) on the CPU.

The model is pix2pix's generator as the recipe builds it at ``--crop`` (a U-Net of 8 levels at 256 px, ``--ngf``
64 as in the paper), trained for one step so that it is a real checkpoint; it runs in eval mode on one random
``--image``-px square image (with the demo set's channels). Each way runs in a process of its own, so that its peak resident memory is its own:
reported is that peak above the memory held once the model is loaded, and the median time of ``--runs`` runs.

    python benchmarks/tiled_translate.py                                   # 2048 px; tiles of 256 and 512 sharing 64
    python benchmarks/tiled_translate.py --image 1024 --tiles 256 --runs 1 --out /tmp/tiled.json
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gantk.inference import TrainedModel
from gantk.tiling import tile_starts

from hardware import recorded, write_json
from inference import trained_checkpoint


def resident_bytes() -> int:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def peak_resident_bytes() -> int:
    """This process's peak resident memory since it started or since :func:`forget_peak` (Linux)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def forget_peak() -> None:
    """Start measuring the peak resident memory afresh (Linux 4.0 and later)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure_one(checkpoint: str, image: int, tile: int | None, overlap: int, runs: int) -> dict:
    """In this process: the peak memory and median time of translating one ``image``-px image, whole or in tiles."""
    model = TrainedModel.load(checkpoint, device="cpu", eval_mode=True)
    channels = model.config["channels"]["A"]
    inputs = torch.rand(1, channels, image, image, generator=torch.Generator().manual_seed(0)) * 2 - 1
    before = resident_bytes()
    forget_peak()  # loading the checkpoint peaks higher than the loaded model holds
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.translate(inputs, tile=tile, overlap=overlap if tile else None)
        times.append(time.perf_counter() - start)
    peak = peak_resident_bytes()
    return {"way": f"tiles of {tile}, overlap {overlap}" if tile else "whole", "image": image, "tile": tile,
            "overlap": overlap if tile else None, "tiles": len(tile_starts(image, tile, overlap)) ** 2 if tile else 1,
            "runs": runs, "threads": torch.get_num_threads(), "median_s": statistics.median(times),
            "peak_above_loaded_mib": (peak - before) / 2**20}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crop", type=int, default=256, help="training crop, which sets the U-Net's depth (default: 256)")
    parser.add_argument("--ngf", type=int, default=64, help="the generator's base width (default: 64, the paper's)")
    parser.add_argument("--image", type=int, default=2048, help="side of the square image (default: 2048)")
    parser.add_argument("--tiles", default="256,512", help="comma-separated sides of the tiles (default: 256,512)")
    parser.add_argument("--tile", type=int, default=0, help=argparse.SUPPRESS)  # with --one: the way to measure (0: whole)
    parser.add_argument("--overlap", type=int, default=64, help="pixels neighbouring tiles share (default: 64)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each way (default: 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="JSON file for the results and the machine")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a checkpoint, to measure one way in this process
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.one:
        print(json.dumps(measure_one(args.one, args.image, args.tile or None, args.overlap, args.runs)))
        return []
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = trained_checkpoint(Path(tmp), args.crop, args.ngf)
        for tile in [0, *map(int, args.tiles.split(","))]:
            command = [sys.executable, __file__, "--one", str(run_dir), "--image", str(args.image), "--tile", str(tile),
                       "--overlap", str(args.overlap), "--runs", str(args.runs), "--threads", str(args.threads)]
            result = json.loads(subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout.splitlines()[-1])
            results.append(result)
            print(f"{args.image}px {result['way']:>24}: {result['tiles']:4d} tile(s), {result['median_s']:7.2f} s, "
                  f"peak {result['peak_above_loaded_mib']:7.0f} MiB above the loaded model", flush=True)
    if args.out:
        write_json(args.out, recorded("tiled_translate.py", argv, results=results))
    return results


if __name__ == "__main__":
    main()
