"""Paired random crop and flip of whole batches on the training device (``--augment-on device``), with kornia."""

from __future__ import annotations

from typing import Any

import kornia.augmentation as K
import torch
from torch import Tensor

from ..errors import DataError
from .transforms import normalize_image


class DeviceAugment:
    """The loader's pix2pix augmentation, run on a batch where it already is (a GPU, say).

    The loader then only decodes and resizes, and hands over uint8 images (4x fewer bytes to move)
    and int64 masks; here images become float in [-1, 1], and each sample gets a random
    ``crop_size`` crop and, with ``flip``, a horizontal flip with probability 1/2, the same for every
    image and mask of the sample. With ``paired=False`` (unaligned data, where A and B are different
    pictures) A and B get choices of their own. kornia draws the choices from torch's global CPU RNG,
    which checkpoints save, so a resumed run crops as the uninterrupted one would.

    Example:
        >>> augment = DeviceAugment(crop_size=32, flip=True)
        >>> batch = {"A": torch.zeros(2, 3, 36, 36, dtype=torch.uint8), "B": torch.zeros(2, 36, 36, dtype=torch.int64)}
        >>> out = augment(batch)
        >>> out["A"].shape, out["A"].dtype, out["B"].shape
        (torch.Size([2, 3, 32, 32]), torch.float32, torch.Size([2, 32, 32]))
    """

    def __init__(self, crop_size: int | None, flip: bool, paired: bool = True):
        self.crop_size = crop_size
        steps = ([K.RandomCrop((crop_size, crop_size))] if crop_size else []) + ([K.RandomHorizontalFlip()] if flip else [])
        self.sequence = K.AugmentationSequential(*steps) if steps else None
        self.paired = paired

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = dict(batch)
        sides = {key: value for key, value in batch.items() if key in ("A", "B") and isinstance(value, Tensor)}
        for key, value in sides.items():
            self._check_size(key, value)
            if value.dim() == 4 and value.dtype == torch.uint8:
                sides[key] = normalize_image(value)
        if self.sequence is None:
            return {**out, **sides}
        groups = [list(sides)] if self.paired else [[key] for key in sides]
        for keys in groups:
            inputs = [sides[key] if sides[key].dim() == 4 else sides[key][:, None] for key in keys]
            data_keys = ["input" if sides[key].dim() == 4 else "mask" for key in keys]
            results = self.sequence(*inputs, data_keys=data_keys)
            results = results if isinstance(results, (list, tuple)) else [results]
            for key, result in zip(keys, results):
                out[key] = result if sides[key].dim() == 4 else result[:, 0]
        return out

    def _check_size(self, key: str, value: Tensor) -> None:
        height, width = value.shape[-2:]
        if self.crop_size and (self.crop_size > height or self.crop_size > width):
            raise DataError(
                f"crop_size {self.crop_size} is larger than the {key} images ({width}x{height}); "
                "pass a smaller crop_size or a load_size of at least crop_size."
            )
