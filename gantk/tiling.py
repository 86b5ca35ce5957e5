"""Run a network on overlapping tiles of an image and blend their outputs, for images too large to run at once.

Each tile's output is weighted by a ramp that rises over ``overlap`` pixels from each side a tile shares
with another (sides on the image's border keep their full weight), and each pixel of the result is the
weighted mean of the tiles that cover it: seams fade across the overlap instead of showing as edges.
"""

from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import Tensor

from .errors import OptionError


def checked_tile_overlap(tile: int | None, overlap: int | None, multiple: int, smallest: int) -> int | None:
    """The overlap to use with square tiles of side ``tile`` (``None``: a quarter of the tile), after checking
    that the generators take such tiles (sides that are multiples of ``multiple``, at least ``smallest``) and that
    the overlap is at most half the tile (more covers each pixel with three tiles or more a side, for nothing);
    ``None`` without tiles, where no overlap may be given."""
    if tile is None:
        if overlap is not None:
            raise OptionError(f"tile overlap (--tile-overlap) {overlap!r} is the pixels tiles share, and no tile (--tile) is "
                              "given: give one, or drop the overlap.")
        return None
    if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or tile < 1:
        raise OptionError(f"tile (--tile) is the side of the square tiles in pixels, a positive integer, got {tile!r}.")
    tile = int(tile)
    if tile % multiple or tile < smallest:
        fitting = max(smallest + -smallest % multiple, tile + -tile % multiple)
        least = f" and at least {smallest} px" if smallest > multiple else ""
        raise OptionError(f"tile (--tile) {tile} does not fit the generators: they take sides that are multiples of "
                          f"{multiple}{least}; use --tile {fitting}, say.")
    overlap = tile // 4 if overlap is None else overlap
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Integral) or not 0 <= overlap <= tile // 2:
        raise OptionError(f"tile overlap (--tile-overlap) is the pixels neighbouring tiles share, from 0 to half the tile's "
                          f"{tile}, {tile // 2}, got {overlap!r}; the default is a quarter of the tile ({tile // 4}).")
    return int(overlap)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Where the fewest tiles of ``tile`` pixels start along a side of ``length`` so that they cover it, evenly spaced,
    neighbours sharing at least ``overlap`` pixels (one tile, at 0, if the side is no longer than a tile).

    Example:
        >>> tile_starts(600, 256, 64)
        [0, 172, 344]
    """
    if length <= tile:
        return [0]
    gaps = -(-(length - tile) // (tile - overlap))  # steps of at most tile - overlap from 0 to length - tile
    return [i * (length - tile) // gaps for i in range(gaps + 1)]


def ramp(start: int, size: int, length: int, overlap: int) -> Tensor:
    """The weights along one side of a tile of ``size`` pixels from ``start`` on a side of ``length``: rising over
    ``overlap`` pixels from each end that lies inside the image, 1 elsewhere (always above 0)."""
    position = torch.arange(size, dtype=torch.float32)
    weight = torch.ones(size)
    if start > 0:
        weight = torch.minimum(weight, (position + 1) / (overlap + 1))
    if start + size < length:
        weight = torch.minimum(weight, (size - position) / (overlap + 1))
    return weight


def translated_in_tiles(run: Callable[[Tensor], Tensor], inputs: Tensor, tile: int, overlap: int) -> Tensor:
    """``run`` (a map from ``N x C x h x w`` to outputs of the same height and width) applied to square tiles of
    ``inputs`` (``N x C x H x W``), its outputs blended where the tiles overlap; a side shorter than ``tile`` is
    one tile of that side's length, so ``run`` gets those as they are."""
    height, width = inputs.shape[-2:]
    total: Tensor | None = None
    weights = torch.zeros(height, width, device=inputs.device)
    for top in tile_starts(height, tile, overlap):
        for left in tile_starts(width, tile, overlap):
            rows, columns = slice(top, top + tile), slice(left, left + tile)
            output = run(inputs[..., rows, columns])
            if total is None:
                total = torch.zeros(*output.shape[:2], height, width, device=output.device)
                dtype = output.dtype
            weight = torch.outer(ramp(top, output.shape[-2], height, overlap),
                                 ramp(left, output.shape[-1], width, overlap)).to(output.device)
            total[..., rows, columns] += output.float() * weight
            weights[rows, columns] += weight
    assert total is not None  # a side of no pixels still makes one tile
    return (total / weights).to(dtype)
