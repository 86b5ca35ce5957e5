"""Torch datasets over image files: items are dicts of image tensors (normalised, or uint8 when asked) and their source paths."""

from __future__ import annotations

import abc
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import DataError
from ..lazy_import import LazyModule
from .io import read_image, read_mask, to_channels
from .layout import odd_width_problem, size_mismatch_problem, size_text
from .mask_values import checked_ids
from .sampler import derive_seed
from .transforms import ItemError, PairedTransform, match_channels

tv_tensors = LazyModule("torchvision.tv_tensors")


class GanDataset(Dataset[dict[str, Any]], abc.ABC):
    """Base of the datasets :func:`gantk.data.open_dataset` returns.

    ``dataset[i]`` draws a fresh augmentation seed from torch's global RNG; ``dataset[(i, seed)]``
    is a pure function of ``(i, seed)``: the same crop, flip (and unaligned B image) in any worker
    or process.

    Attributes:
        format: name of the data format.
        channels: ``{"A": int, "B": int}`` channels of each side (for masks, ``B`` is the class count).
        num_classes: number of mask classes, or ``None`` when B is an image.
        input_classes: number of classes of label-map inputs (A holds class ids, which the system encodes one
            channel per class), or ``None`` when A is an image.
        ignore_label: the mask value whose pixels are ignored (given the id -1), or ``None``.
        files: the source files of each side, for summaries.
    """

    format = "?"
    num_classes: int | None = None
    input_classes: int | None = None
    ignore_label: int | None = None

    def __init__(self, files: dict[str, list[Path]], channels: dict[str, int], transform: PairedTransform):
        self.files = files
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return max(len(paths) for paths in self.files.values())

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        index = operator.index(index)
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} items.")
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()))
        try:
            return self.load(position, torch.Generator().manual_seed(derive_seed(position, seed)))
        except ItemError as error:  # from a dataset that calls transform, not transformed: each side's file at the index
            raise DataError(f"{', '.join(dict.fromkeys(str(files[position % len(files)]) for files in self.files.values()))}: "
                            f"{error}") from None

    def transformed(self, tensors: dict[str, Any], generator: torch.Generator, *paths: Path) -> dict[str, Any]:
        """:attr:`transform` of ``tensors``; a refusal of them (:class:`~gantk.data.transforms.ItemError`) names the
        files ``paths`` they were read from."""
        try:
            return self.transform(tensors, generator)
        except ItemError as error:
            raise DataError(f"{', '.join(dict.fromkeys(map(str, paths)))}: {error}") from None

    @abc.abstractmethod
    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        """Item ``index`` with random choices drawn from ``generator``."""


class AlignedDataset(GanDataset):
    """Files holding A and B side by side (A left, B right); ``swap`` serves the right half as A."""

    format = "aligned"

    def __init__(self, files: list[Path], channels: int, transform: PairedTransform, swap: bool = False):
        super().__init__({"A|B": files}, {"A": channels, "B": channels}, transform)
        self.swap = swap

    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        path = self.files["A|B"][index]
        image = to_channels(read_image(path), self.channels["A"], path)
        width = image.shape[-1]
        if width % 2:
            raise DataError(odd_width_problem(path, path, width))
        left, right = image[..., : width // 2], image[..., width // 2 :]
        a, b = (right, left) if self.swap else (left, right)
        out = self.transformed({"A": tv_tensors.Image(a), "B": tv_tensors.Image(b)}, generator, path)
        return {**out, "A_path": str(path), "B_path": str(path)}


class PairedDataset(GanDataset):
    """Pairs of files (A, B) of the same size."""

    format = "paired"

    def __init__(self, pairs: list[tuple[Path, Path]], channels: dict[str, int], transform: PairedTransform):
        super().__init__({"A": [a for a, _ in pairs], "B": [b for _, b in pairs]}, channels, transform)

    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        a_path, b_path = self.files["A"][index], self.files["B"][index]
        a = to_channels(read_image(a_path), self.channels["A"], a_path)
        b = to_channels(read_image(b_path), self.channels["B"], b_path)
        _same_size(a, b, a_path, b_path)
        out = self.transformed({"A": tv_tensors.Image(a), "B": tv_tensors.Image(b)}, generator, a_path, b_path)
        return {**out, "A_path": str(a_path), "B_path": str(b_path)}


class SegmentationDataset(GanDataset):
    """Images (A) with label masks (B, int64 class ids); with 2 classes, 0/255 masks give ids 0/1.
    ``labels_in`` swaps the sides: the masks are the inputs (A, class ids, ``input_classes`` set) and the
    images the targets (B), to translate label maps to images.

    Pixels holding ``ignore_label`` get the id :data:`~gantk.systems.targets.IGNORED` (-1), which no
    loss term or score counts (and, in a label-map input, no class channel marks).
    """

    format = "segmentation"
    classes_of = "this dataset"  # whose classes the mask values are read as, in errors ("the model" when scoring one)

    def __init__(self, pairs: list[tuple[Path, Path]], channels: int, num_classes: int, transform: PairedTransform,
                 ignore_label: int | None = None, labels_in: bool = False):
        self.image_side, self.mask_side = ("B", "A") if labels_in else ("A", "B")
        super().__init__({self.image_side: [image for image, _ in pairs], self.mask_side: [mask for _, mask in pairs]},
                         {self.image_side: channels, self.mask_side: num_classes}, transform)
        self.num_classes, self.input_classes = (None, num_classes) if labels_in else (num_classes, None)
        self.ignore_label = ignore_label

    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        image_path, mask_path = self.files[self.image_side][index], self.files[self.mask_side][index]
        image = to_channels(read_image(image_path), self.channels[self.image_side], image_path)
        mask = read_mask(mask_path)
        _same_size(image, mask, image_path, mask_path)
        ids = checked_ids(mask, mask_path, self.channels[self.mask_side], self.ignore_label, self.classes_of)
        out = self.transformed({self.image_side: tv_tensors.Image(image), self.mask_side: tv_tensors.Mask(ids[None])}, generator,
                               image_path, mask_path)
        return {**out, f"{self.image_side}_path": str(image_path), f"{self.mask_side}_path": str(mask_path)}


class UnalignedDataset(GanDataset):
    """Two unpaired sets; item ``i`` is A[i % |A|] with a B picked from the seed (length max(|A|, |B|))."""

    format = "unaligned"

    def __init__(self, a_files: list[Path], b_files: list[Path], channels: dict[str, int], transform: PairedTransform):
        super().__init__({"A": a_files, "B": b_files}, channels, transform)

    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        a_files, b_files = self.files["A"], self.files["B"]
        a_path = a_files[index % len(a_files)]
        b_path = b_files[int(torch.randint(len(b_files), (), generator=generator))]
        a = self.transformed({"A": tv_tensors.Image(to_channels(read_image(a_path), self.channels["A"], a_path))}, generator, a_path)
        b = self.transformed({"B": tv_tensors.Image(to_channels(read_image(b_path), self.channels["B"], b_path))}, generator, b_path)
        return {**a, **b, "A_path": str(a_path), "B_path": str(b_path)}


class SingleDataset(GanDataset):
    """Images on their own (A only), for inference; with ``input_classes`` (then also their ``channels``), label
    masks read as class ids. With ``each_converted``, each image is converted to ``channels`` from its own count
    once normalised (as :func:`~gantk.data.transforms.match_channels` converts a model's inputs)."""

    format = "single"

    def __init__(self, files: list[Path], channels: int, transform: PairedTransform, input_classes: int | None = None,
                 ignore_label: int | None = None, each_converted: bool = False):
        super().__init__({"A": files}, {"A": channels}, transform)
        self.input_classes = input_classes
        self.ignore_label = ignore_label
        self.each_converted = each_converted

    def load(self, index: int, generator: torch.Generator) -> dict[str, Any]:
        path = self.files["A"][index]
        if self.input_classes is not None:
            read = tv_tensors.Mask(checked_ids(read_mask(path), path, self.input_classes, self.ignore_label, "the model")[None])
        elif self.each_converted:
            item = self.transformed({"A": tv_tensors.Image(read_image(path))}, generator, path)
            return {"A": match_channels(item["A"][None], self.channels["A"])[0], "A_path": str(path)}
        else:
            read = tv_tensors.Image(to_channels(read_image(path), self.channels["A"], path))
        return {**self.transformed({"A": read}, generator, path), "A_path": str(path)}


@dataclass
class UnpairedSplit:
    """A split of unpaired data for scoring: each side's images on their own (as ``A`` items)."""

    format: str
    sides: dict[str, SingleDataset]

    @classmethod
    def of(cls, dataset: GanDataset) -> UnpairedSplit:
        """The sides of ``dataset`` (its ``files['A']`` and ``files['B']``), read as it reads them."""
        files = getattr(dataset, "files", None)
        if not (isinstance(files, dict) and {"A", "B"} <= files.keys()):
            raise DataError(f"the {dataset.format} dataset lists no two sides of unpaired images to score (files['A'] and "
                            "files['B'], as gantk.data.GanDataset lists them).")
        return cls(dataset.format, {side: SingleDataset(dataset.files[side], dataset.channels[side], dataset.transform)
                                    for side in "AB"})


def _same_size(a: Tensor, b: Tensor, a_path: Path, b_path: Path) -> None:
    if a.shape[-2:] != b.shape[-2:]:
        raise DataError(size_mismatch_problem(str(a_path), size_text(a), str(b_path), size_text(b)))
