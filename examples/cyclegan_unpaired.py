"""CycleGAN on unpaired data: grayscale renderings of some photos (A) against colour crops of other photos (B).

Derives the unpaired set from a folder of photos (``gantk.data.derive_pairs`` with the ``gray``
task, then A is kept only for one half of the photos and B only for the other half, so no pair
exists), trains ``recipe="cyclegan"``, translates the test images both ways with
``gantk.translate.translate`` and saves a grid whose rows read
``A | G_AB(A) | G_BA(G_AB(A)) | B | G_BA(B) | G_AB(G_BA(B))``.

Example:
    python examples/cyclegan_unpaired.py --steps 1200 --size 64 --out runs/cyclegan-unpaired
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF
from torchvision.utils import save_image

from gantk.data import derive_pairs, read_image, write_png
from gantk.data.io import list_images
from gantk.errors import GantkError
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate

DEFAULT_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"
MIN_PHOTOS = 8  # the fifth derive_pairs holds out for testing is then 2, one per side


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help=f"folder of at least {MIN_PHOTOS} photos")
    parser.add_argument("--out", type=Path, default=Path("runs/cyclegan-unpaired"), help="new or empty run directory")
    parser.add_argument("--data-dir", type=Path, help="new or empty folder to keep the derived unpaired set in (default: a temporary folder)")
    parser.add_argument("--grid", type=Path, help="where to save the sample grid (default: OUT/grid.png)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--size", type=int, default=64, help="training crop size (a multiple of 4 of at least 24)")
    parser.add_argument("--crops-per-photo", type=int, default=8)
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4, help="test images per direction in the grid")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    # The ResNet generator's two stride-2 levels want a multiple of 4; patch70's receptive field, 24 px.
    if args.size < 24 or args.size % 4:
        parser.error(f"--size must be a multiple of 4 of at least 24, got {args.size}")
    for flag, folder in (("--out", args.out), ("--data-dir", args.data_dir)):
        if folder is not None and folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            parser.error(f"{folder} is not empty: choose a new {flag} folder")
    if not args.photos.is_dir():
        parser.error(f"no photo folder at {args.photos}: pass one with --photos DIR")
    if (count := len(list_images(args.photos))) < MIN_PHOTOS:
        parser.error(f"{args.photos} holds {count} photo(s); the example needs at least {MIN_PHOTOS}: "
                     "a fifth of them test, and each split gives photos to both sides")
    return args


def make_unpaired(photos: Path, out: Path, size: int, crops_per_photo: int, seed: int) -> Path:
    """Write ``out/{train,test}{A,B}``: gray crops (as RGB) of one half of the photos, colour crops of the other."""
    pairs = derive_pairs(photos, out / "pairs", task="gray", size=size, crops_per_photo=crops_per_photo, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    unaligned = out / "unaligned"
    for split, names in (("train", pairs.train_photos), ("test", pairs.test_photos)):
        stems = [Path(names[i]).stem for i in torch.randperm(len(names), generator=generator).tolist()]
        half = (len(stems) + 1) // 2
        for side, group in (("A", stems[:half]), ("B", stems[half:])):
            folder = unaligned / f"{split}{side}"
            folder.mkdir(parents=True)
            for stem in group:
                for path in sorted((out / "pairs" / split / side).glob(f"{stem}_*.png")):
                    if side == "A":  # 3 channels like B, so the identity term applies
                        write_png(read_image(path).expand(3, -1, -1), folder / path.name)
                    else:
                        shutil.copy(path, folder / path.name)
    shutil.rmtree(out / "pairs")
    return unaligned


def train(data: Path, args: argparse.Namespace, load_size: int) -> Path:
    config = TrainConfig(
        recipe="cyclegan", data=str(data), out=str(args.out), gen="resnet6", gen_opt={"ngf": args.ngf},
        disc_opt={"ndf": args.ndf}, load_size=load_size, crop_size=args.size, max_steps=args.steps,
        workers=args.workers, seed=args.seed, log_every=max(1, min(20, args.steps)),
        sample_every=max(1, args.steps // 4), checkpoint_every=args.steps,
    )
    return Trainer(config).fit()


def translate_both_ways(run: Path, data: Path, out: Path) -> dict[str, list[Path]]:
    """Translate testA and testB, then map each result back; returns inputs, translations, reconstructions."""
    files = {}
    for direction, back, side in (("AtoB", "BtoA", "A"), ("BtoA", "AtoB", "B")):
        translated = translate(run, data / f"test{side}", out / direction, direction=direction, eval_mode=True)
        restored = translate(run, out / direction, out / f"{direction}-{back}", direction=back, eval_mode=True)
        files[direction] = [sorted((data / f"test{side}").glob("*.png")), sorted(translated), sorted(restored)]
    return files


def save_grid(files: dict[str, list[list[Path]]], path: Path, size: int, rows: int) -> Path:
    """One row per test image pair: the A triplet, then the B triplet, first crop of each test photo first."""
    def pick(paths: list[Path]) -> list[Path]:
        firsts = [p for p in paths if p.stem.endswith("_00")]
        return (firsts + [p for p in paths if p not in firsts])[:rows]

    def load(p: Path) -> torch.Tensor:
        image = TF.resize(read_image(p)[:3].expand(3, -1, -1), [size, size], antialias=True)
        return image.float() / 255

    chosen = {d: [pick(column) for column in columns] for d, columns in files.items()}
    count = min(len(chosen["AtoB"][0]), len(chosen["BtoA"][0]))
    tiles = [load(chosen[d][c][r]) for r in range(count) for d in ("AtoB", "BtoA") for c in range(3)]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(tiles), path, nrow=6, padding=2, pad_value=1.0)
    return path


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    load_size = args.size + args.size // 8  # pix2pix/CycleGAN's 286 -> 256 jitter, scaled
    with tempfile.TemporaryDirectory(prefix="gantk-unpaired-") as tmp:
        work = args.data_dir or Path(tmp)
        data = make_unpaired(args.photos, work, load_size, args.crops_per_photo, args.seed)
        counts = {d.name: len(list(d.iterdir())) for d in sorted(data.iterdir())}
        print("unpaired set:", ", ".join(f"{name} {n}" for name, n in counts.items()))
        run = train(data, args, load_size)
        files = translate_both_ways(run, data, args.out / "test")
        grid = save_grid(files, args.grid or args.out / "grid.png", args.size, args.rows)
    print(f"grid: {grid}")
    return grid


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
