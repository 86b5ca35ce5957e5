"""Normalisation layers chosen by name, as in the reference pix2pix/CycleGAN code."""

from __future__ import annotations

from functools import partial
from typing import Callable

from torch import nn

from . import check_choice

NORMS = ("batch", "instance", "none")


def norm_layer(name: str) -> Callable[[int], nn.Module]:
    """A factory ``f(channels) -> nn.Module`` for the normalisation ``name``.

    ``"instance"`` is ``InstanceNorm2d(affine=False, track_running_stats=False)`` and ``"none"``
    an identity.

    Example:
        >>> norm = norm_layer("instance")(8)
        >>> type(norm).__name__, norm.affine, norm.track_running_stats
        ('InstanceNorm2d', False, False)
    """
    check_choice("norm", name, NORMS)
    if name == "batch":
        return nn.BatchNorm2d
    if name == "instance":
        return partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda channels: nn.Identity()


def conv_bias(name: str) -> bool:
    """Whether a convolution followed by the normalisation ``name`` has a bias.

    Not before batch norm, which cancels it. The reference implementation also drops it with no
    normalisation; here such a convolution keeps its bias.
    """
    check_choice("norm", name, NORMS)
    return name != "batch"
