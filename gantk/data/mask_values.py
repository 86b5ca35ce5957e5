"""Mask values and the class ids they stand for: binary 0/255 masks, an ignored value, values outside a model's classes."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import DataError
from ..systems.targets import IGNORED


def mask_ids(mask: Tensor, num_classes: int, ignore_label: int | None = None) -> Tensor:
    """Class ids of mask values: a binary set's 0/255 give 0/1, ``ignore_label`` gives :data:`IGNORED`; with
    the ignore label 0, the values ``1..K`` give ``0..K-1``."""
    if ignore_label == 0:
        return mask - 1
    ids = torch.where(mask == 255, 1, mask) if binary_255(num_classes, ignore_label) else mask
    return torch.where(mask == ignore_label, IGNORED, ids) if ignore_label is not None else ids


class OutsideModelClasses(DataError):
    """A mask value outside the classes of a trained model: masks that may be sound, for another model."""


def mask_value(class_id: int, num_classes: int, ignore_label: int | None = None) -> int:
    """The mask value that :func:`mask_ids` reads as ``class_id``."""
    if ignore_label == 0:
        return class_id + 1
    return 255 if class_id == 1 and binary_255(num_classes, ignore_label) else class_id


def checked_ids(mask: Tensor, path: str | Path, num_classes: int, ignore_label: int | None, whose: str = "this dataset") -> Tensor:
    """The class ids of ``mask`` (see :func:`mask_ids`); a value outside the classes (``whose``) is an error naming ``path``
    (:class:`OutsideModelClasses` where they are a model's)."""
    ids = mask_ids(mask, num_classes, ignore_label)
    if ids.numel() and (int(ids.max()) >= num_classes or int(ids.min()) < IGNORED):
        outside = mask[(ids >= num_classes) | (ids < IGNORED)].unique().tolist()
        named = ", ".join(map(str, outside[:8])) + (f" ... ({len(outside)} values)" if len(outside) > 8 else "")
        binary = " (the object of a binary mask)" if outside == [255] and num_classes > 2 and ignore_label != 255 else ""
        fix = "fix the mask" if whose == "this dataset" else f"give masks of the classes {whose} was trained on, or fix this one"
        raise (DataError if whose == "this dataset" else OutsideModelClasses)(
            f"{path}: holds value{'s' if len(outside) > 1 else ''} {named}{binary}, outside "
            f"{mask_value_range(num_classes, ignore_label, whose)}; {fix}."
        )
    return ids


def mask_value_range(num_classes: int, ignore_label: int | None, whose: str = "this dataset") -> str:
    """The mask values :func:`mask_ids` takes, in words (``whose`` classes they are)."""
    if ignore_label == 0:
        return f"the values 1..{num_classes} of {whose}'s classes (0 is ignored)"
    binary = " (or 255 for binary masks)" if binary_255(num_classes, ignore_label) else ""
    ignored = f"; {ignore_label} is ignored" if ignore_label is not None else ""
    return f"the class ids 0..{num_classes - 1} of {whose}{binary}{ignored}"


def binary_255(num_classes: int, ignore_label: int | None) -> bool:
    """Whether a mask's 255 is the object of a binary set (read as id 1), not a value to ignore."""
    return num_classes == 2 and ignore_label != 255
