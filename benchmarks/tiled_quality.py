"""How far translating in tiles (``gantk translate --tile``) moves the outputs of a trained edges -> photo model.

Each test photo of a set that ``gantk data derive --task edges`` made is read whole, resized as derive resized it
for its crops (short side 1.5 x the crop size, so at the scale the model trained at), and its edges derived as
derive derives them; the model then translates the edge map whole (as ``--size native`` does) and in tiles of
each ``--tiles`` side, in eval mode and in the paper's test mode (dropout and batch statistics, seed 0; there also
whole with dropout seed 1, to show how far the noise alone moves the outputs). Reported per way: the mean L1
distance to the photo and the mean absolute difference from the whole image's output (both on a 0..1 scale,
averaged over the photos).

    python benchmarks/tiled_quality.py --pairs runs/ablation/pairs --photos ../shared/data/photos \\
        runs/ablation/averaging-seeds/l1+cgan-seed-0 --out benchmarks/results/local/tiled_quality.json
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from gantk.data import read_image
from gantk.data.derive import derive_input, fit_short_side
from gantk.data.io import to_channels
from gantk.data.transforms import normalize_image
from gantk.inference import TrainedModel

from hardware import recorded, write_json


def test_photos(pairs: Path, photos: Path) -> list[Path]:
    """The photos whose crops are in the test split of ``pairs`` (crops are named ``<photo>_<k>.png``)."""
    stems = sorted({path.stem.rsplit("_", 1)[0] for path in (pairs / "test" / "B").iterdir()})
    found = {path.stem: path for path in photos.iterdir()}
    return [found[stem] for stem in stems]


def distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean absolute difference of two images in [-1, 1], on a 0..1 scale."""
    return (a - b).abs().mean().item() / 2


def measure(checkpoint: Path, photos: list[Path], tiles: list[int], overlap: int) -> list[dict]:
    results = []
    for eval_mode in (True, False):
        model = TrainedModel.load(checkpoint, device="cpu", eval_mode=eval_mode)
        short_side = round(1.5 * model.config["crop_size"])
        rows: dict[str, dict[str, list[float]]] = {}
        for path in photos:
            photo = fit_short_side(to_channels(read_image(path), 3), short_side)
            inputs, target = model.inputs(derive_input(photo, "edges")), normalize_image(photo[None])
            with model.seeded(0):
                whole = model.translate(inputs, pad=True)
            ways = {"whole": whole}
            if not eval_mode:  # how far dropout noise alone moves the outputs
                with model.seeded(1):
                    ways["whole, dropout seed 1"] = model.translate(inputs, pad=True)
            for tile in tiles:
                with model.seeded(0):
                    ways[f"tiles of {tile}, overlap {overlap}"] = model.translate(inputs, tile=tile, overlap=overlap)
            for way, output in ways.items():
                row = rows.setdefault(way, {"l1_to_photo": [], "from_whole": []})
                row["l1_to_photo"].append(distance(output, target))
                row["from_whole"].append(distance(output, whole))
        for way, row in rows.items():
            results.append({"checkpoint": str(checkpoint), "step": model.step, "mode": "eval" if eval_mode else "test",
                            "way": way, "photos": len(photos), "short_side": short_side,
                            "l1_to_photo": statistics.mean(row["l1_to_photo"]), "from_whole": statistics.mean(row["from_whole"])})
    return results


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint files or run directories of edges -> photo models")
    parser.add_argument("--pairs", type=Path, required=True, help="the derived set the models trained on (its test split is used)")
    parser.add_argument("--photos", type=Path, required=True, help="the photos it was derived from")
    parser.add_argument("--tiles", default="128", help="comma-separated sides of the tiles (default: 128)")
    parser.add_argument("--overlap", type=int, default=32, help="pixels neighbouring tiles share (default: 32)")
    parser.add_argument("--out", type=Path, help="JSON file for the results and the machine")
    args = parser.parse_args(argv)
    photos = test_photos(args.pairs, args.photos)
    results = []
    for checkpoint in args.checkpoints:
        for result in measure(checkpoint, photos, list(map(int, args.tiles.split(","))), args.overlap):
            results.append(result)
            print(f"{checkpoint.name} {result['mode']:>4} {result['way']:>24}: L1 to the photo {result['l1_to_photo']:.4f}, "
                  f"from the whole image's output {result['from_whole']:.4f}", flush=True)
    if args.out:
        write_json(args.out, recorded("tiled_quality.py", argv, results=results))
    return results


if __name__ == "__main__":
    main()
