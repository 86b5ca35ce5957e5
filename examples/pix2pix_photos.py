"""pix2pix on a folder of photos: derive edges -> photo pairs, train, translate the test edges.

    python examples/pix2pix_photos.py --photos ~/Pictures --out runs/photos
    python examples/pix2pix_photos.py --steps 2 --size 32 --out /tmp/tiny     # a smoke test

Pairs are random crops of the photos (B) and an input derived from each crop (A: edges by
default), split between train and test by photo. The model is the pix2pix recipe (U-Net,
conditional 70x70 PatchGAN, bce+l1@100, Adam 2e-4) with crops of --size pixels jittered from
--size * 286/256, as in the paper. Without --photos the repository's shared photo set
(../shared/data/photos) is used when present.

Writes to --out: pairs/ (the dataset), run/ (checkpoints, samples, metrics.csv, loss curves),
translated/ (the test inputs translated) and comparison.png (input | output | target rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gantk.data import derive_pairs, read_image
from gantk.data.derive import TASKS
from gantk.errors import GantkError
from gantk.train import TrainConfig, Trainer
from gantk.train.logs import save_sample_grid
from gantk.translate import translate

SHARED_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS, help="folder of photos (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("runs/pix2pix-photos"), help="new or empty output folder")
    parser.add_argument("--task", choices=TASKS, default="edges", help="what the input is derived as (default: edges)")
    parser.add_argument("--size", type=int, default=128, help="crop size in pixels, a multiple of 32 (default: 128)")
    parser.add_argument("--steps", type=int, default=5000, help="training steps (default: 5000)")
    parser.add_argument("--crops-per-photo", type=int, default=4, help="crops taken from each photo (default: 4)")
    parser.add_argument("--ngf", type=int, default=64, help="generator width (default: 64, the paper's)")
    parser.add_argument("--workers", type=int, default=None, help="data-loading processes (default: the trainer's, one per CPU less one, 2 to 16)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not args.photos.is_dir():
        parser.error(f"no photo folder at {args.photos}: pass one with --photos DIR")
    if args.size < 32 or args.size % 32:
        parser.error(f"--size must be a multiple of 32 of at least 32, got {args.size}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"{args.out} is not empty: choose a new --out folder")
    return args


def comparison(inputs: Path, outputs: Path, targets: Path, path: Path, count: int = 4) -> Path:
    """A grid with one row per test image: input | output | target."""
    names = sorted(p.name for p in outputs.glob("*.png"))[:count]
    rows = [[read_image(folder / name).float() / 127.5 - 1 for name in names] for folder in (inputs, outputs, targets)]
    rows = [torch.stack([image.expand(3, -1, -1) for image in row]) for row in rows]
    save_sample_grid(rows, path, max_samples=count)
    return path


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)

    pairs = derive_pairs(args.photos, args.out / "pairs", task=args.task, size=args.size,
                         crops_per_photo=args.crops_per_photo)
    print(f"dataset: {pairs}")

    config = TrainConfig(
        recipe="pix2pix",
        data=str(pairs.out_dir),
        out=str(args.out / "run"),
        crop_size=args.size,
        load_size=round(args.size * 286 / 256),  # the paper's 286 -> 256 jitter, scaled
        max_steps=args.steps,
        gen_opt={"ngf": args.ngf},
        workers=args.workers,
        sample_every=max(1, min(500, args.steps)),
    )
    trainer = Trainer(config, progress=not args.quiet)
    run_dir = trainer.fit()
    print(f"trained {trainer.step} steps: {run_dir}")

    test_inputs = pairs.out_dir / "test" / "A"
    written = translate(run_dir, test_inputs, args.out / "translated", progress=not args.quiet)
    grid = comparison(test_inputs, args.out / "translated", pairs.out_dir / "test" / "B", args.out / "comparison.png")
    print(f"translated {len(written)} test images into {args.out / 'translated'}; side by side: {grid}")
    return args.out


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
