"""Colours of class ids, shared by the mask PNGs gantk writes and the masks it draws (sample grids, overlays)."""

from __future__ import annotations

import functools
import itertools

# Class 0 black, class 1 white (a binary mask's object), then hues far apart.
FIRST_COLOURS = (
    (0, 0, 0), (255, 255, 255), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128),
)
IGNORED_COLOUR = (128, 128, 128)  # pixels of no class: grey, which no class has


@functools.cache
def class_colours() -> tuple[tuple[int, int, int], ...]:
    """256 distinct RGB colours, one per class id of an 8-bit mask: :data:`FIRST_COLOURS`, then Pascal VOC's
    colour map (each id's bits spread over the channels' high bits) without the colours already taken.

    Example:
        >>> len(set(class_colours())), class_colours()[12]
        (256, (128, 0, 0))
    """
    colours = list(FIRST_COLOURS)
    for index in itertools.count(1):
        colour = _voc_colour(index)
        if colour not in colours and colour != IGNORED_COLOUR:
            colours.append(colour)
        if len(colours) == 256:
            return tuple(colours)


def _voc_colour(index: int) -> tuple[int, int, int]:
    rgb = [0, 0, 0]
    for bit in range(8):
        for channel in range(3):
            rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
    return rgb[0], rgb[1], rgb[2]
