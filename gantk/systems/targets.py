"""What a generator's output means: an image, or mask logits over classes."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import class_colours as colours

IGNORED = -1  # the class id of mask pixels to ignore (``--ignore-label``): no loss term or score counts them

# Colours of class ids in sample grids and overlays, in [-1, 1]: those of the mask PNGs gantk writes.
PALETTE = torch.tensor(colours.class_colours(), dtype=torch.float32) / 127.5 - 1
IGNORED_COLOUR = torch.tensor(colours.IGNORED_COLOUR, dtype=torch.float32) / 127.5 - 1


def logit_channels(num_classes: int) -> int:
    """Generator output channels for ``num_classes`` mask classes: 1 logit for binary masks."""
    return 1 if num_classes == 2 else num_classes


def probabilities(logits: Tensor) -> Tensor:
    """Mask probabilities from logits (in float32, also under autocast): sigmoid for one channel,
    softmax over classes otherwise."""
    logits = logits.float()
    return torch.sigmoid(logits) if logits.shape[1] == 1 else logits.softmax(dim=1)


def encode_mask(ids: Tensor, num_classes: int) -> Tensor:
    """Class ids ``N x H x W`` as the float maps a discriminator sees (``N x C x H x W``); an
    :data:`IGNORED` pixel is 0 in every channel."""
    if num_classes == 2:
        return (ids * (ids >= 0)).unsqueeze(1).float()
    return encode_labels(ids, num_classes)


def encode_labels(ids: Tensor, num_classes: int) -> Tensor:
    """Class ids ``N x H x W`` as a generator's label-map input: one channel per class (binary masks too),
    1 in the pixel's class; an :data:`IGNORED` pixel is 0 in every channel."""
    kept = ids >= 0
    return (F.one_hot((ids * kept).long(), num_classes) * kept.unsqueeze(-1)).permute(0, 3, 1, 2).float()


def label_ids(labels: Tensor) -> Tensor:
    """Class ids ``N x H x W`` of label maps ``N x C x H x W`` (see :func:`encode_labels`); :data:`IGNORED` where
    no channel is set."""
    return torch.where(labels.amax(dim=1) > 0, labels.argmax(dim=1), IGNORED)


def kept_pixels(ids: Tensor) -> Tensor:
    """``N x 1 x H x W`` floats: 1 where the class ids ``N x H x W`` are scored, 0 where :data:`IGNORED`."""
    return (ids >= 0).unsqueeze(1).float()


def predicted_ids(probs: Tensor) -> Tensor:
    """Hard class ids ``N x H x W`` from probabilities."""
    return (probs[:, 0] > 0.5).long() if probs.shape[1] == 1 else probs.argmax(dim=1)


def colorize(ids: Tensor) -> Tensor:
    """Class ids ``N x H x W`` as RGB images in [-1, 1] (binary masks: black/white; :data:`IGNORED` pixels grey;
    ids from 256 on take the colours again)."""
    palette = torch.cat([PALETTE, IGNORED_COLOUR[None]]).to(ids.device)
    shown = torch.where(ids >= 0, ids.long() % len(PALETTE), len(PALETTE))
    return palette[shown].permute(0, 3, 1, 2)


def displayable(images: Tensor) -> Tensor:
    """Images in [-1, 1] with any number of channels as 3-channel images for a grid (the first as
    gray when there are fewer than 3)."""
    images = images.float()
    if images.shape[1] < 3:  # gray, or gray and alpha
        return images[:, :1].expand(-1, 3, -1, -1)
    return images[:, :3]


def shown_inputs(inputs: Tensor, input_classes: int | None) -> Tensor:
    """Generator inputs as RGB in [-1, 1] for a grid: images, or label maps (class ids or one-hot) in colour."""
    if input_classes is None:
        return displayable(inputs)
    return colorize(inputs if inputs.dim() == 3 else label_ids(inputs))


def shown(images: Tensor, num_classes: int | None) -> Tensor:
    """Images, or for a mask model class ids (``N x H x W``) or class probabilities, as RGB in [-1, 1] for a grid."""
    if num_classes is None:
        return displayable(images)
    return colorize(images if images.dim() == 3 else predicted_ids(images))
