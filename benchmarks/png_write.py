"""Time and size of the PNG files gantk writes at each zlib compression level, and what the level costs a translation.

Each photo of ``--photos`` (the shared photographs, long side 1024 px) is encoded as ``gantk.data.write_png`` encodes
it, whole and as a 256 px centre crop (the size of a ``--size crop`` output), at each level of ``--levels``: reported
are the median encoding time per image and the files' total size. Then ``gantk translate --size original`` translates
``--translate`` of the photos with a pix2pix generator (ngf ``--ngf``, trained one step: only its cost matters) with
gantk's PNG level and with zlib's default, 6, alternately ``--rounds`` times; reported is each level's median time.

    python benchmarks/png_write.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision.io as tvio
from torchvision.transforms.v2.functional import center_crop

import gantk.data.io as gantk_io
from gantk.translate import translate

from hardware import recorded, write_json
from inference import trained_checkpoint
from loader import PHOTOS

LOCAL_RESULTS = Path(__file__).parent / "results" / "local"
ZLIB_DEFAULT = 6


def encoding(images: list[torch.Tensor], level: int) -> dict:
    """The median time to encode one of ``images`` at ``level``, and the total size of their files."""
    times, size = [], 0
    for image in images:
        start = time.perf_counter()
        size += tvio.encode_png(image, compression_level=level).numel()
        times.append(time.perf_counter() - start)
    return {"level": level, "median_ms": 1000 * statistics.median(times), "total_mb": size / 1e6}


def translation_time(run: Path, photos: Path, out: Path, level: int) -> float:
    """Seconds ``gantk translate --size original`` takes for the photos in ``photos`` with PNGs of ``level``."""
    kept, gantk_io.PNG_COMPRESSION = gantk_io.PNG_COMPRESSION, level
    try:
        start = time.perf_counter()
        translate(run, photos, out, size="original", overwrite=True, progress=False)
        return time.perf_counter() - start
    finally:
        gantk_io.PNG_COMPRESSION = kept


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS, help="folder of photos (default: ../shared/data/photos)")
    parser.add_argument("--levels", default="1,2,3,6,9", help="comma-separated zlib levels to encode at (default: 1,2,3,6,9)")
    parser.add_argument("--translate", type=int, default=12, help="photos translated at each level (default: 12; 0: none)")
    parser.add_argument("--ngf", type=int, default=64, help="the translating generator's base width (default: 64, the paper's)")
    parser.add_argument("--rounds", type=int, default=3, help="translations at each level, alternating (default: 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=LOCAL_RESULTS / "png_write.json",
                        help="JSON file for the results (default: results/local/png_write.json, git-ignored)")
    args = parser.parse_args(argv)
    files = sorted(args.photos.glob("*.jpg")) if args.photos.is_dir() else []
    if not files:
        sys.exit(f"no photos (*.jpg) in {args.photos}: give --photos")
    torch.set_num_threads(args.threads)
    photos = [tvio.decode_image(str(path), mode=tvio.ImageReadMode.RGB) for path in files]
    result: dict = {"photos": len(photos), "long_sides_px": sorted({max(photo.shape[-2:]) for photo in photos}),
                    "gantk_level": gantk_io.PNG_COMPRESSION, "encoding": {}}
    for name, images in (("photo", photos), ("crop 256", [center_crop(photo, [256, 256]) for photo in photos])):
        result["encoding"][name] = [encoding(images, int(level)) for level in args.levels.split(",")]
        for row in result["encoding"][name]:
            print(f"{name}, level {row['level']}: {row['median_ms']:.1f} ms per image, {row['total_mb']:.1f} MB in all", flush=True)
    if args.translate:
        with tempfile.TemporaryDirectory() as tmp:
            chosen = Path(tmp) / "photos"
            chosen.mkdir()
            for path in files[: args.translate]:
                (chosen / path.name).symlink_to(path.resolve())
            run = trained_checkpoint(Path(tmp), 256, args.ngf)
            times: dict[int, list[float]] = {ZLIB_DEFAULT: [], gantk_io.PNG_COMPRESSION: []}
            for _ in range(args.rounds):
                for level in times:
                    times[level].append(translation_time(run, chosen, Path(tmp) / "out", level))
            result["translation"] = {"photos": len(list(chosen.iterdir())), "ngf": args.ngf, "rounds": args.rounds,
                                     "median_s": {str(level): statistics.median(runs) for level, runs in times.items()},
                                     "runs_s": {str(level): runs for level, runs in times.items()}}
            for level, runs in times.items():
                print(f"translate --size original of {result['translation']['photos']} photos, PNG level {level}: "
                      f"median {statistics.median(runs):.2f} s ({', '.join(f'{t:.2f}' for t in runs)})", flush=True)
    write_json(args.out, recorded("png_write.py", argv, **result))
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
