"""Data-loader throughput: decode + paired augmentation of 256 x 256 JPEG pairs, as the trainer loads them.

The pairs (``A/`` blurred, ``B/`` photo, JPEG quality 92) are cut from ``../shared/data/photos`` when
it exists, else made of smooth synthetic images, in a temporary folder. The dataset comes from the
trainer's own ``open_data`` (286 -> random 256 crop + flip), the ``DataLoader`` gets the trainer's
settings (the default is the trainer's default worker count), and each batch goes through the
trainer's ``augmented_on_device``. Both ``--augment-on`` settings are measured: crop and flip in the loader
workers, or on ``--device`` in the training process.

    python benchmarks/loader.py [--pairs 128] [--workers N] [--device cuda] [--batch-size 16] [--out benchmarks/results/local/loader.json]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.io import write_jpeg
from torchvision.transforms.v2 import functional as TF

from gantk.data import ResumableSampler, derive_input, read_image
from gantk.data.io import list_images
from gantk.train import TrainConfig, Trainer
from gantk.train.config import default_workers
from gantk.train.distributed import resolve_device
from hardware import cuda_missing, load_average, machine

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def source_images(count: int, size: int, photo_dir: Path = PHOTOS, seed: int = 0) -> list[torch.Tensor]:
    """``count`` RGB uint8 ``size`` x ``size`` crops of the photos in ``photo_dir``, or smooth synthetic images."""
    generator = torch.Generator().manual_seed(seed)
    photos = list_images(photo_dir)
    crops = []
    for i in range(count):
        if photos:
            photo = read_image(photos[i % len(photos)])[:3]
            photo = TF.resize(photo, [int(1.5 * size)], antialias=True)
            top = int(torch.randint(photo.shape[-2] - size + 1, (), generator=generator))
            left = int(torch.randint(photo.shape[-1] - size + 1, (), generator=generator))
            crops.append(TF.crop(photo, top, left, size, size).contiguous())
        else:
            coarse = torch.rand(1, 3, 6, 6, generator=generator)
            image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
            crops.append((image[0].clamp(0, 1) * 255).to(torch.uint8))
    return crops


def write_jpeg_pairs(root: Path, count: int, size: int = 256, photo_dir: Path = PHOTOS) -> Path:
    for side in "AB":
        (root / side).mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(source_images(count, size, photo_dir)):
        write_jpeg(derive_input(photo, "blur"), str(root / "A" / f"{i:04d}.jpg"), quality=92)
        write_jpeg(photo, str(root / "B" / f"{i:04d}.jpg"), quality=92)
    return root


def loader_rate(root: Path, workers: int, augment_on: str = "loader", device: str = "cpu", batch_size: int = 1,
                epochs: int = 2, warmup: int = 8, load_size: int = 286, crop_size: int = 256) -> dict:
    """Images per second of the trainer's input pipeline over ``root``, after ``warmup`` batches.

    The pipeline is the trainer's own: ``open_data``, a ``DataLoader`` with ``Trainer.fit``'s
    arguments, then ``augmented_on_device`` (which crops and flips with ``augment_on="device"``).
    """
    config = TrainConfig(data=str(root), load_size=load_size, crop_size=crop_size, batch_size=batch_size, workers=workers,
                         augment_on=augment_on, device=device)
    trainer = Trainer(config, progress=False)
    dataset, _ = trainer.open_data()
    target = resolve_device(device)
    sync = torch.cuda.synchronize if target.type == "cuda" else (lambda: None)
    sampler = ResumableSampler(len(dataset), seed=0, shuffle=True)
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch_size, num_workers=workers, drop_last=True,
                        pin_memory=target.type == "cuda", persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    stamps = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for batch in loader:
            batch = trainer.augmented_on_device(batch, target)
            sync()
            assert batch["A"].shape[-1] == crop_size and batch["A"].dtype == torch.float32
            stamps.append(time.perf_counter())
    gaps = [b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:])]
    return {
        "augment_on": augment_on,
        "workers": workers,
        "batch_size": batch_size,
        "images": len(gaps) * batch_size,
        "images_per_s": len(gaps) * batch_size / (stamps[-1] - stamps[warmup]),
        "median_gap_s": statistics.median(gaps),
        "load_average": load_average(),
    }


def measure(pairs: int = 128, workers: int | None = None, device: str = "cpu", batch_size: int = 1,
            photo_dir: Path = PHOTOS) -> dict:
    """Rates with augmentation in the loader and on ``device``, at the default worker count (or ``workers``) and none."""
    workers = default_workers() if workers is None else workers
    counts = [workers, 0] if workers else [0]
    warmup = max(1, min(8, pairs // batch_size // 2))  # batches, out of two epochs
    with tempfile.TemporaryDirectory(prefix="gantk-loader-") as tmp:
        root = write_jpeg_pairs(Path(tmp) / "pairs", pairs, photo_dir=photo_dir)
        rates = [loader_rate(root, count, augment_on, device, batch_size, warmup=warmup)
                 for augment_on in ("loader", "device") for count in counts]
    return {
        "source": "shared photos" if list_images(photo_dir) else "synthetic",
        "pairs": pairs, "load_size": 286, "crop_size": 256, "default_workers": default_workers(),
        "device": device, "batch_size": batch_size, "rates": rates,
    }


def check_photos(parser: argparse.ArgumentParser, photos: Path) -> None:
    """Refuse a --photos folder without photos; say when the default one is missing, so synthetic images are read."""
    if list_images(photos):
        return
    if photos != PHOTOS:
        parser.error(f"--photos {photos}: no photos there; give a folder of photos.")
    print(f"no photos in {photos}: the loader reads synthetic images (--photos DIR takes a folder of photos)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=128, help="JPEG pairs to write and read, two epochs of them (default: 128)")
    parser.add_argument("--workers", type=int, default=None,
                        help="loader workers measured besides none (default: the trainer's default)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where batches go and where --augment-on device crops (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per batch (default: 1)")
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="folder of the shared photos (a copy, on a GPU machine)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "local" / "loader.json",
                        help="JSON file for the results (default: results/local/loader.json, git-ignored; the committed "
                             "files in results/ are records, not to be overwritten)")
    args = parser.parse_args()
    if (missing := cuda_missing(args.device)):
        parser.error(missing)
    check_photos(parser, args.photos)
    result = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
              "loader": measure(args.pairs, args.workers, args.device, args.batch_size, args.photos)}
    for rate in result["loader"]["rates"]:
        print(f"augment on {rate['augment_on']}, workers={rate['workers']}: {rate['images_per_s']:.1f} images/s "
              f"(load {rate['load_average']})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
