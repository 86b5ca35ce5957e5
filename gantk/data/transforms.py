"""Paired augmentation: the same resize, crop and flip for every image and mask of a sample."""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import DataError
from ..lazy_import import LazyModule
from ..nn import check_choice
from ..train.config import CHOICES

kornia = LazyModule("kornia")
tv_tensors = LazyModule("torchvision.tv_tensors")
F = LazyModule("torchvision.transforms.v2.functional")

RESIZE_MODES = CHOICES["resize"]


class ItemError(DataError):
    """A problem of one item's images that the transform finds; the dataset names the item's files."""


def check_enlarged_size(height: int, width: int, short_side: int) -> None:
    """Raise :class:`ItemError` when an image of ``height x width`` resized to ``short_side`` on its shorter side
    would have more pixels than gantk decodes (a thin strip of a few bytes would take gigabytes)."""
    from .io import MAX_PIXELS_ENV, max_pixels  # io imports this module

    scale = short_side / min(height, width)
    resized = (max(short_side, round(height * scale)), max(short_side, round(width * scale)))
    if resized[0] * resized[1] > (limit := max_pixels()):
        raise ItemError(
            f"{width}x{height} resized to {short_side} px on its shorter side would be {resized[1]}x{resized[0]}, "
            f"{resized[0] * resized[1]:,} pixels, more than the {limit:,} gantk decodes (a guard against decompression "
            f"bombs); crop the image to a less elongated shape, or set {MAX_PIXELS_ENV} higher if you trust it."
        )


class PairedTransform:
    """Resize, random crop and random horizontal flip shared by all tensors of a sample, as in pix2pix.

    With ``augment`` the tensors are resized to ``load_size`` x ``load_size``, cropped at a random
    ``crop_size`` x ``crop_size`` window and flipped with probability 1/2 (when ``flip``). Without
    it they are resized straight to ``crop_size`` (or ``load_size``) and never flipped. A size of
    ``None`` skips that step, so ``load_size=None, crop_size=None`` keeps the original size.
    ``resize="short-side"`` resizes the shorter side to that size and keeps the aspect ratio
    instead, and ``resize="none"`` does not resize (the random crop is taken from the image as it is):
    without ``augment`` the tensors then keep their image's shape.
    Images are resized bicubically, as in the reference implementation.
    Random parameters come from the generator passed in, never from the global RNG.

    Images (``tv_tensors.Image``, uint8) come out as float in [-1, 1], or stay uint8 without
    ``normalize``; masks (``tv_tensors.Mask``, resized by nearest pixel centres) come out as int64
    ``H x W``.

    Example:
        >>> t = PairedTransform(load_size=36, crop_size=32)
        >>> a = tv_tensors.Image(torch.zeros(3, 40, 50, dtype=torch.uint8))
        >>> out = t({"A": a, "B": a}, torch.Generator().manual_seed(0))
        >>> out["A"].shape, out["A"].min().item()
        (torch.Size([3, 32, 32]), -1.0)
    """

    def __init__(self, load_size: int | None = 286, crop_size: int | None = 256, augment: bool = True, flip: bool = True,
                 normalize: bool = True, resize: str = "square"):
        check_choice("resize", resize, RESIZE_MODES)
        self.load_size = load_size
        self.crop_size = crop_size
        self.augment = augment
        self.flip = flip
        self.normalize = normalize
        self.resize = resize

    def __call__(self, tensors: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        if self.augment:
            size, crop, flip = self.load_size, self.crop_size, self.flip
        else:
            size, crop, flip = self.crop_size or self.load_size, None, False
        for side, value in tensors.items():
            if not isinstance(value, Tensor) or (not isinstance(value, tv_tensors.Mask) and (value.dim() != 3 or value.dtype != torch.uint8)):
                got = f"a {value.dim()}-dimensional {value.dtype} tensor" if isinstance(value, Tensor) else f"a {type(value).__name__}"
                raise ItemError(f"side {side} is {got}, and the transform takes images "
                                "as tv_tensors.Image (uint8, C x H x W) and masks as tv_tensors.Mask (integer class ids, 1 x H x W): "
                                "the dataset must wrap what it reads so (see gantk.data.datasets).")
        out = dict(tensors)
        if size is not None and self.resize == "short-side":
            check_enlarged_size(*next(iter(out.values())).shape[-2:], size)
        if size is not None and self.resize != "none":
            out = {key: _resized(value, size if self.resize == "short-side" else [size, size]) for key, value in out.items()}
        if crop is not None:
            height, width = next(iter(out.values())).shape[-2:]
            if crop > height or crop > width:
                raise ItemError(
                    f"crop_size {crop} is larger than the image ({width}x{height}); pass a smaller crop_size or "
                    + ("resize the images (resize 'square' or 'short-side')." if self.resize == "none"
                       else "a load_size of at least crop_size.")
                )
            top, left = random_window(height, width, crop, generator)
            out = {key: F.crop(value, top, left, crop, crop) for key, value in out.items()}
        if flip and bool(torch.rand((), generator=generator) < 0.5):
            out = {key: F.horizontal_flip(value) for key, value in out.items()}
        return {key: self._finish(value) for key, value in out.items()}

    def _finish(self, value: Tensor) -> Tensor:
        if isinstance(value, tv_tensors.Mask):
            return value.as_subclass(Tensor).to(torch.int64).reshape(value.shape[-2:])
        image = value.as_subclass(Tensor)
        return normalize_image(image) if self.normalize else image.contiguous()


def random_window(height: int, width: int, size: int, generator: torch.Generator) -> tuple[int, int]:
    """The top and left of a random ``size`` x ``size`` window in a ``height`` x ``width`` image."""
    top = int(torch.randint(height - size + 1, (), generator=generator))
    left = int(torch.randint(width - size + 1, (), generator=generator))
    return top, left


def _resized(value: Tensor, size: int | list[int]) -> Tensor:
    """Resized to ``size`` (``[height, width]``, or one int for the shorter side): images bicubically, as in
    the reference; masks by the nearest pixel centre ("nearest-exact": torch's plain "nearest" would shift
    them up to half a pixel against their images)."""
    if isinstance(value, tv_tensors.Mask):
        return F.resize(value, size, interpolation=F.InterpolationMode.NEAREST_EXACT)
    return F.resize(value, size, interpolation=F.InterpolationMode.BICUBIC, antialias=True)


def normalize_image(image: Tensor) -> Tensor:
    """uint8 pixels to float in [-1, 1]."""
    return image.float().div(127.5).sub(1.0)


def to_unit(images: Tensor) -> Tensor:
    """Images in [-1, 1] as float images in [0, 1] (clamped), float32 or, for float64 images, float64."""
    images = images if images.dtype == torch.float64 else images.float()
    return ((images + 1) / 2).clamp(0, 1)


def to_uint8(images: Tensor) -> Tensor:
    """Images in [-1, 1] as uint8 pixels (clamped and rounded): the inverse of :func:`normalize_image`."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def match_channels(images: Tensor, channels: int) -> Tensor:
    """Convert normalised images to the channel count a model was trained on (gray <-> RGB, RGBA
    with an opaque alpha).

    Gray is ITU-R 601 luma, as ``gantk data derive`` makes it (the weights sum to 1, so it holds
    on [-1, 1] images as on [0, 1] ones).
    """
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return kornia.color.rgb_to_grayscale(images[:, :3])
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images[:, :3]
    if channels == 4:  # an opaque alpha channel
        return torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1)
    return rgb.contiguous()
