"""How the pixels of a mask set divide among its classes, and class weights that balance them.

Median frequency balancing (Eigen & Fergus 2015): a class's frequency is its pixels over the pixels of
the images that hold it, and its weight the median frequency over its own, so that rare classes weigh
more and a class of median frequency weighs 1. Ignored pixels count for no class and no image.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from ..progress import ProgressBar
from .datasets import SegmentationDataset, mask_ids
from .io import read_mask


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
