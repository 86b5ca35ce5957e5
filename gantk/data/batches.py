"""Batches of evaluated and translated images: which files share a batch, and images of one size only."""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import default_collate

from ..errors import DataError, OptionError
from ..files import first_names
from .datasets import UnpairedSplit
from .io import probe
from .layout import size_text


class MixedSizes(DataError):
    """Images of different sizes asked to share a batch: a batch size to lower, not data to fix."""


def refuse_outputs_of_several_sizes(inputs: list[Path], resize: str, batch_size: int, option: str = "--batch-size") -> None:
    """Refuse a ``batch_size`` above 1 where the model's ``resize`` gives the outputs of ``inputs`` several sizes (each
    input's aspect ratio kept, or its size), which cannot share a batch; before anything is written."""
    if batch_size == 1 or resize == "square":
        return
    shapes = {}
    for path in inputs:
        with contextlib.suppress(DataError):  # an unreadable input is named with the others later
            info = probe(path)
            shapes.setdefault(Fraction(info.width, info.height) if resize == "short-side" else (info.width, info.height),
                              f"{path.name} {info.width}x{info.height}")
    if len(shapes) > 1:
        kept = "aspect ratio" if resize == "short-side" else "size"
        raise OptionError(
            f"{option} {batch_size}: the model was trained with --resize {resize}, so each output keeps its input's "
            f"{kept}, and the inputs have {len(shapes)} {kept}s ({first_names(list(shapes.values()))}), whose outputs cannot "
            f"share a batch: use {option} 1."
        )


def refuse_mixed_sizes(shapes: list[str], size: str, batch_size: int, split: str,
                       options: tuple[str, str] = ("--size", "--batch-size")) -> None:
    """Refuse a ``batch_size`` above 1 for scoring at each image's own ``size`` a split whose images have several of
    the ``shapes`` (``WxH``): they cannot share a batch. ``options`` name the size and the batch size."""
    shapes = sorted(set(shapes))
    if size != "crop" and batch_size > 1 and len(shapes) > 1:
        raise OptionError(f"{options[0]} {size} scores each image at its own size, and split {split} holds images of "
                          f"{len(shapes)} sizes ({', '.join(shapes[:3])}{', ...' if len(shapes) > 3 else ''}), which "
                          f"cannot share a batch: use {options[1]} 1.")


def scored_inputs(dataset: Any) -> list[list[Path]]:
    """The files of each batched stream of an evaluated ``dataset``: the inputs of pairs (their partners share their
    sizes), or each side of an unpaired split; none for a dataset that lists no files."""
    if isinstance(dataset, UnpairedSplit):
        return [side.files["A"] for side in dataset.sides.values()]
    files = getattr(dataset, "files", None)
    return [next(iter(files.values()))] if isinstance(files, dict) and files else []


def collate_same_size(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch of ``items`` (``default_collate``); items whose images differ in size (as images kept in
    shape by ``resize="short-side"`` may) are refused (:class:`MixedSizes`), naming the two files and the fix."""
    first = items[0]
    for key, value in first.items():
        for item in items[1:]:
            if isinstance(value, Tensor) and item[key].shape != value.shape:
                name = f"{key}_path"
                raise MixedSizes(
                    f"{first.get(name, key)} and {item.get(name, key)} come out in different sizes ({size_text(value)} and "
                    f"{size_text(item[key])}), so they cannot share a batch: use a batch size of 1 (--batch-size 1; "
                    "--eval-batch-size 1 in gantk ablate)."
                )
    return default_collate(items)
