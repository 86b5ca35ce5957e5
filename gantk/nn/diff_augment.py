"""Differentiable augmentation of what the discriminator sees (DiffAugment, Zhao et al. 2020).

With little training data a discriminator memorises the real images and its feedback to the
generator degrades. DiffAugment transforms every image the discriminator is shown, real and
generated, in both phases, with operations the generator's gradient flows through, so the
discriminator never sees an unaugmented image and the generator is not taught the augmentation.
The policies are DiffAugment's:

- ``color``: per image, brightness ``+ U(-0.5, 0.5)``, saturation (the distance to the channels'
  mean scaled by ``U(0, 2)``) and contrast (the distance to the image's mean scaled by ``U(0.5, 1.5)``),
  in the [-1, 1] range the images have; on the image only, never on a conditional input;
- ``translation``: a shift by up to 1/8 of each side, whole pixels, the uncovered part zero;
- ``cutout``: a zeroed rectangle of half each side, its centre anywhere in the image.

A conditional discriminator's input and image are shifted and cut out together, so they stay
aligned. Each image of a step draws its own transform, shared by everything the discriminator
sees of it in that step's phase (its real and generated images, their features, a penalty's
interpolates), so that terms which compare two of them compare them alike.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ..errors import OptionError

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(text: str) -> tuple[str, ...]:
    """The policies named in ``text`` (comma-separated, in DiffAugment's order), checked.

    Example:
        >>> parse_policy("cutout,translation")
        ('translation', 'cutout')
    """
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise OptionError(f"--disc-augment takes policies separated by commas, from {', '.join(POLICIES)} (DiffAugment's "
                          f"choice for little data: all three), or none, got {text!r}.")
    return tuple(name for name in POLICIES if name in names)


def translated(images: Tensor, rows: Tensor, columns: Tensor) -> Tensor:
    """``images`` (``N x C x H x W``) moved down ``rows[i]`` and right ``columns[i]`` whole pixels, each
    image by its own (negative: up, left); pixels moved in from outside are 0."""
    n, c, height, width = images.shape
    source_rows = torch.arange(height, device=images.device) - rows[:, None]  # N x H: the row each output row reads
    source_columns = torch.arange(width, device=images.device) - columns[:, None]
    inside = (((source_rows >= 0) & (source_rows < height))[:, :, None]
              & ((source_columns >= 0) & (source_columns < width))[:, None, :])
    moved = images.gather(2, source_rows.clamp(0, height - 1)[:, None, :, None].expand(n, c, height, width))
    moved = moved.gather(3, source_columns.clamp(0, width - 1)[:, None, None, :].expand(n, c, height, width))
    return moved * inside[:, None].to(images.dtype)


def cut_out(images: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """``images`` with the ``height x width`` rectangle from (``top[i]``, ``left[i]``) of each image zeroed
    (the part inside the image)."""
    rows = torch.arange(images.shape[-2], device=images.device) - top[:, None]
    columns = torch.arange(images.shape[-1], device=images.device) - left[:, None]
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((columns >= 0) & (columns < width))[:, None, :]
    return images * (~inside)[:, None].to(images.dtype)


def recoloured(images: Tensor, brightness: Tensor, saturation: Tensor, contrast: Tensor) -> Tensor:
    """DiffAugment's colour change of ``images`` in [-1, 1], by per-image factors (each ``N``): ``brightness``
    added, the distance to the channels' mean times ``saturation``, the distance to the image's mean times
    ``contrast``."""
    images = images + brightness[:, None, None, None]
    mean = images.mean(dim=1, keepdim=True)
    images = (images - mean) * saturation[:, None, None, None] + mean
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - mean) * contrast[:, None, None, None] + mean


class DiffAugment:
    """The augmentation of the ``policy`` (see :func:`parse_policy`); :meth:`drawn` draws one step's."""

    def __init__(self, policy: tuple[str, ...]):
        self.policy = policy

    def drawn(self, images: int, height: int, width: int, image_channels: int, device: torch.device) -> Callable[[Tensor], Tensor]:
        """One transform per image of a batch of ``images`` of ``height x width``, drawn from torch's stream on
        ``device`` now: a function of the discriminator's ``N x C x H x W`` input, whose last ``image_channels``
        channels are the image (those before, a condition)."""
        def uniform() -> Tensor:
            return torch.rand(images, device=device)

        colour = (uniform() - 0.5, uniform() * 2, uniform() + 0.5) if "color" in self.policy else None
        if "translation" in self.policy:
            most_rows, most_columns = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
            rows = torch.randint(-most_rows, most_rows + 1, (images,), device=device)
            columns = torch.randint(-most_columns, most_columns + 1, (images,), device=device)
        if "cutout" in self.policy:
            box = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
            # the centre anywhere, as DiffAugment draws it (one place more for an even box)
            top = torch.randint(0, height + 1 - box[0] % 2, (images,), device=device) - box[0] // 2
            left = torch.randint(0, width + 1 - box[1] % 2, (images,), device=device) - box[1] // 2

        def augment(shown: Tensor) -> Tensor:
            if colour is not None:
                condition, image = shown[:, : shown.shape[1] - image_channels], shown[:, shown.shape[1] - image_channels:]
                shown = torch.cat([condition, recoloured(image, *colour)], dim=1)
            if "translation" in self.policy:
                shown = translated(shown, rows, columns)
            if "cutout" in self.policy:
                shown = cut_out(shown, top, left, *box)
            return shown

        return augment
