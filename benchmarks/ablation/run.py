"""The documented ablation run (docs/ablation.md): pix2pix grids on edges -> photo pairs at 128 px.

Derives the pairs from ``../shared/data/photos`` (split by photo) unless they exist, runs
``gantk ablate`` for each grid with the same seed, steps and data, and copies the tables into
``benchmarks/ablation/results/`` and the plots into ``docs/images/ablation/`` (not with ``--trial``).
Re-running skips finished cells.

Usage: python benchmarks/ablation/run.py [--grids table1,table3,pixel-loss] [--steps 300] [--seeds 0,1,2] [--name NAME]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from PIL import Image

from gantk.commands_eval import ablate_command
from gantk.data import derive_pairs

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "ablation" / "results"
IMAGES = ROOT / "docs" / "images" / "ablation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "data" / "photos")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ablation", help="Pairs and run directories (not committed).")
    parser.add_argument("--grids", default="table1", help="Comma-separated built-in grids.")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=1, help="1, as the paper.")
    parser.add_argument("--width", type=int, default=32, help="ngf and ndf.")
    parser.add_argument("--crops-per-photo", type=int, default=8, help="Pairs cut from each photo when --work has none yet.")
    parser.add_argument("--seeds", help="Train each cell once per seed (e.g. 0,1,2) instead of with seed 0; "
                                        "the study and its files are named GRID-seeds.")
    parser.add_argument("--name", help="The study's name, of its folder in --work and its result files "
                                        "(default GRID, or GRID-seeds with --seeds); one grid only.")
    parser.add_argument("--trial", action="store_true",
                        help="Leave benchmarks/ablation/results/ and docs/images/ablation/ as they are (the study stays in --work).")
    args = parser.parse_args()

    if args.name and "," in args.grids:
        parser.error("--name names one study: pass one grid with it.")
    os.chdir(ROOT)  # relative paths in the results
    pairs = Path(os.path.relpath(args.work.resolve(), ROOT)) / "pairs"
    if not pairs.exists():
        if not args.photos.is_dir():
            raise SystemExit(f"{args.photos} not found: pass --photos, a folder of photos.")
        print(derive_pairs(args.photos, pairs, task="edges", size=128, crops_per_photo=args.crops_per_photo, test_fraction=0.2, seed=0))
    if not args.trial:
        RESULTS.mkdir(parents=True, exist_ok=True)
        IMAGES.mkdir(parents=True, exist_ok=True)
    for grid in args.grids.split(","):
        name = args.name or (f"{grid}-seeds" if args.seeds else grid)
        out = pairs.parent / name
        command = [
            "--grid", grid, "--data", str(pairs), "--out", str(out),
            "--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--load-size", "143", "--crop-size", "128",
            "--gen-opt", f"ngf={args.width}", "--disc-opt", f"ndf={args.width}",
            *(["--seeds", args.seeds] if args.seeds else ["--seed", "0"]), "--workers", "0", "--checkpoint-every", "100", "--no-progress",
        ]
        print("gantk ablate " + " ".join(command), flush=True)
        start = time.perf_counter()
        ablate_command.main(command, standalone_mode=False)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        if args.trial:
            continue
        shutil.copy(out / "results.json", RESULTS / f"{name}.json")
        shutil.copy(out / "results.md", RESULTS / f"{name}.md")
        for plot in ("metrics",) if args.seeds else ("metrics", "samples"):  # 256-colour copies keep the docs small
            Image.open(out / f"{plot}.png").convert("RGB").quantize(256).save(IMAGES / f"{name}-{plot}.png", optimize=True)


if __name__ == "__main__":
    main()
