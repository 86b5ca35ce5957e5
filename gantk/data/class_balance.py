"""How the pixels of a mask set divide among its classes, and class weights that balance them.

Median frequency balancing (Eigen & Fergus 2015): a class's frequency is its pixels over the pixels of
the images that hold it, and its weight the median frequency over its own, so that rare classes weigh
more and a class of median frequency weighs 1. Ignored pixels count for no class and no image.
"""

from __future__ import annotations

import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import GantkWarning, caller_stacklevel
from ..files import first_names
from ..progress import ProgressBar
from .datasets import SegmentationDataset
from .mask_values import mask_ids, mask_value
from .io import read_mask
from .layout import is_lossless_mask, mask_values_of


@dataclass(frozen=True)
class ClassPixels:
    """Per class id: its pixels (``pixels``), and the pixels of the images that hold it (``image_pixels``)."""

    pixels: list[int]
    image_pixels: list[int]

    def median_frequency_weights(self) -> list[float]:
        """One weight per class: the median frequency over the class's, 0 for a class no image holds.

        Example:
            >>> ClassPixels(pixels=[900, 100], image_pixels=[1000, 1000]).median_frequency_weights()
            [0.5555555555555556, 5.0]
        """
        frequencies = [p / i if i else None for p, i in zip(self.pixels, self.image_pixels)]
        held = [f for f in frequencies if f]
        median = statistics.median(held) if held else 0.0
        return [median / f if f else 0.0 for f in frequencies]


def count_class_pixels(dataset: SegmentationDataset, progress: bool = False) -> ClassPixels:
    """The :class:`ClassPixels` of every mask of ``dataset``, read as training reads them (class ids,
    ignored pixels left out); with ``progress``, the masks read are counted on a bar once it takes 2 s."""
    pixels = torch.zeros(dataset.num_classes, dtype=torch.long)
    image_pixels = torch.zeros(dataset.num_classes, dtype=torch.long)
    for path in ProgressBar(dataset.files["B"], desc="counting class pixels", unit="mask", disable=not progress, delay=2,
                     dynamic_ncols=True):
        ids = mask_ids(read_mask(path), dataset.num_classes, dataset.ignore_label)
        counts = torch.bincount(ids[ids >= 0], minlength=dataset.num_classes)
        pixels += counts
        image_pixels += (counts > 0) * counts.sum()
    return ClassPixels(pixels.tolist(), image_pixels.tolist())


def warn_of_unseen_classes(dataset: SegmentationDataset, root: str | Path, class_names: list[str] | None = None) -> None:
    """Warn of the classes of ``dataset`` (the training split) that none of its masks holds a pixel of: a model
    never learns to predict them, and a label model's weights that read them stay as they were initialised. The
    masks are read until every class is found (decoded once per file version, as their class count read them)."""
    classes, ignore_label = dataset.channels[dataset.mask_side], dataset.ignore_label
    masks = [mask for mask in dataset.files[dataset.mask_side] if is_lossless_mask(mask)]
    unseen = set(range(classes))
    for mask in masks:
        unseen -= set(mask_ids(torch.tensor(sorted(mask_values_of([mask])[mask])), classes, ignore_label).tolist())
        if not unseen:
            return
    if not masks:
        return
    named = []
    for class_id in sorted(unseen):
        value = mask_value(class_id, classes, ignore_label)
        said = [class_names[class_id]] if class_names and class_id < len(class_names) else []
        said += [f"mask value {value}"] if value != class_id else []
        named.append(f"{class_id} ({', '.join(said)})" if said else str(class_id))
    several = len(unseen) > 1
    effect = (f"{'their input channels are' if several else 'its input channel is'} never set, so the weights that read "
              f"{'them' if several else 'it'} stay as initialised and a mask holding {'them' if several else 'it'} gets an "
              "untrained response" if dataset.input_classes is not None
              else f"the model never learns to predict {'them' if several else 'it'}")
    warnings.warn(f"{root}: no training mask holds a pixel of class{'es' if several else ''} {first_names(named, 8)} "
                  f"({len(unseen)} of the {classes} classes): {effect}; add training masks that hold "
                  f"{'them' if several else 'it'}.", GantkWarning, stacklevel=caller_stacklevel())
