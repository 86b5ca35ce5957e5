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
        sides = {key: self._prepare(key, batch[key]) for key in ("A", "B") if isinstance(batch.get(key), Tensor)}
        if self.sequence is not None:
            for keys in [list(sides)] if self.paired else [[key] for key in sides]:
                sides.update(self._augment({key: sides[key] for key in keys}))
        return {**batch, **sides}

    def _prepare(self, key: str, value: Tensor) -> Tensor:
        height, width = value.shape[-2:]
        if self.crop_size and (self.crop_size > height or self.crop_size > width):
            raise DataError(
                f"crop_size {self.crop_size} is larger than the {key} images ({width}x{height}); "
                "pass a smaller crop_size or a load_size of at least crop_size."
            )
        return normalize_image(value) if value.dtype == torch.uint8 else value

    def _augment(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """One draw of crop and flip per sample for all ``tensors`` (images N x C x H x W, masks N x H x W)."""
        masks = {key for key, value in tensors.items() if value.dim() == 3}
        inputs = [value[:, None] if key in masks else value for key, value in tensors.items()]
        results = self.sequence(*inputs, data_keys=["mask" if key in masks else "input" for key in tensors])
        results = results if isinstance(results, (list, tuple)) else [results]
        return {key: result[:, 0] if key in masks else result for key, result in zip(tensors, results)}
