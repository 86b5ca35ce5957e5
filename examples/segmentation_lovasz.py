"""Segmentation with the Lovász hinge: train the ``seg`` recipe on objects-seg, then write test masks and overlays.

``--adversarial hinge`` (or ``bce``, ``lsgan``) adds a conditional 70x70 PatchGAN to the Lovász
objective; the default trains the U-Net alone. Masks are written as 0/255 PNGs next to overlays
(``*_overlay.png``), and a grid ``image | overlay | ground truth`` of the first test images.

Example:
    python examples/segmentation_lovasz.py --steps 500 --size 128 --out runs/seg-lovasz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import save_image

from gantk.data import read_image, read_mask
from gantk.errors import GantkError
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "objects-seg"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="segmentation set with train/ and test/")
    parser.add_argument("--out", type=Path, default=Path("runs/seg-lovasz"), help="new or empty run directory")
    parser.add_argument("--grid", type=Path, help="where to save the grid (default: OUT/grid.png)")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--size", type=int, default=128, help="training crop and inference size (a power of 2)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--adversarial", choices=["none", "hinge", "bce", "lsgan"], default="none")
    parser.add_argument("--rows", type=int, default=4, help="test images in the grid")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"{args.out} is not empty: choose a new --out folder")
    if not args.data.is_dir():
        parser.error(f"no segmentation set at {args.data}: pass one (train/ and test/, each with images/ and masks/) with --data DIR")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    adversarial = args.adversarial != "none"
    config = TrainConfig(
        recipe="seg", data=str(args.data), data_format="segmentation", out=str(args.out),
        loss=f"{args.adversarial}+lovasz" if adversarial else "lovasz", disc="patch70" if adversarial else "none",
        gen_opt={"ngf": args.ngf}, disc_opt={"ndf": args.ngf} if adversarial else {},
        max_steps=args.steps, batch_size=args.batch_size, load_size=args.size + args.size // 8, crop_size=args.size,
        workers=args.workers, seed=args.seed, log_every=max(1, min(20, args.steps)),
        sample_every=max(1, args.steps // 4), checkpoint_every=args.steps,
    )
    run = Trainer(config).fit()

    # eval mode: running batch-norm statistics and no dropout, so the masks are deterministic
    written = translate(run, args.data / "test" / "images", args.out / "test", eval_mode=True, overlay=True)
    print(f"{len(written)} masks and overlays in {args.out / 'test'}")

    tiles = []
    for image_path in sorted((args.data / "test" / "images").iterdir())[: args.rows]:
        truth = (read_mask(args.data / "test" / "masks" / f"{image_path.stem}.png") > 0).to(torch.uint8) * 255
        for image in (read_image(image_path), read_image(args.out / "test" / f"{image_path.stem}_overlay.png"), truth[None]):
            image = TF.resize(image[:3].expand(3, -1, -1), [args.size, args.size], antialias=True)
            tiles.append(image.float() / 255)
    grid = args.grid or args.out / "grid.png"
    grid.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(tiles), grid, nrow=3, padding=2, pad_value=1.0)
    print(f"grid: {grid}")
    return grid


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
