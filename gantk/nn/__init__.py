"""Layer helpers shared by the built-in networks.

``gantk.nn.norm`` builds normalisation layers and ``gantk.nn.init`` initialises weights; this
module holds what the networks share: option and input-size checks, padding to a network's size
multiple, the output activation, the paper's test-time mode, and the translation of batch norm's
one-value error.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import OptionError, did_you_mean
from ..option_values import as_integer

FINAL_ACTIVATIONS = ("tanh", "none")


def check_choice(option: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ``OptionError`` naming ``option``, ``value`` and the valid ``choices`` (the closest first, where one is
    close) unless ``value`` is one of them.

    Example:
        >>> check_choice("norm", "instanse", ("batch", "instance", "none"))
        Traceback (most recent call last):
        ...
        gantk.errors.OptionError: norm='instanse' is not valid; choose one of: batch, instance, none. Did you mean 'instance'?
    """
    choices = tuple(choices)
    if value not in choices:
        raise OptionError(f"{option}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}."
                          + did_you_mean(value, choices))


def check_count(option: str, value: Any, least: int) -> int:
    """``value`` as an int (a numpy integer too); raise ``OptionError`` unless it is an integer (not a bool) of at
    least ``least``."""
    number = as_integer(value)
    if number is None or number < least:
        raise OptionError(f"{option} must be an integer of at least {least}, got {value!r}.")
    return number


MAX_SIDE = 16384  # px: the largest image side gantk takes (--load-size, --crop-size; one such RGB image is 3 GiB in float)


def check_levels(option: str, levels: int) -> None:
    """Raise ``OptionError`` for more stride-2 levels than an image of :data:`MAX_SIDE` px a side passes through (each
    halves the sides), before a network that deep is built."""
    most = MAX_SIDE.bit_length() - 1
    if levels > most:
        raise OptionError(f"{option}={levels!r} is not valid: {levels} stride-2 levels need images of at least 2**{levels} px "
                          f"a side, and gantk takes at most {MAX_SIDE} px ({most} levels); typical values are 1 to 8.")


def check_width(option: str, value: int) -> None:
    """Raise ``OptionError`` unless ``value`` (filters of a network's first layer) is at least 1."""
    if value < 1:
        raise OptionError(f"{option}={value!r} is not valid: it is the number of filters of the first layer, at least 1 "
                          "(64 in the paper; 8 to 32 for small, fast models).")


def check_channels(**channels: int) -> None:
    """Raise ``OptionError`` unless each of ``channels`` (a network's image channels by option) is at least 1."""
    for option, value in channels.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"{option}={value!r} is not valid: it is a number of image channels, at least 1 (1 for gray, "
                              "3 for RGB; gantk sets it from the data).")


def check_probability(option: str, value: float) -> None:
    """Raise ``OptionError`` unless ``0 <= value < 1`` (a dropout probability)."""
    if not 0 <= value < 1:
        raise OptionError(f"{option}={value!r} is not a probability in [0, 1); use e.g. 0.5, or 0 to turn it off.")


def check_size(x: Tensor, multiple: int, *, model: str, fix: str | None = None) -> None:
    """Raise ``OptionError`` unless the height and width of ``x`` are multiples of ``multiple``.

    Args:
        x: a batch ``N x C x H x W``.
        multiple: what H and W must be multiples of.
        model: how the message names the network, e.g. ``"unet with num_downs=8"``.
        fix: a second remedy besides changing the crop size, e.g. ``"lower num_downs"``.
    """
    h, w = x.shape[-2:]
    if h % multiple or w % multiple:
        suggestion = f"{round_up(w, multiple)}x{round_up(h, multiple)}"  # width x height
        remedy = f"change the crop size to a multiple of {multiple} (e.g. {suggestion})"
        remedy += f" or {fix}" if fix else ""
        raise OptionError(f"{model} needs a width and height that are multiples of {multiple}, got {w}x{h}: {remedy}.")


def round_up(side: int, multiple: int) -> int:
    """The least multiple of ``multiple`` that is at least ``side``."""
    return -(-side // multiple) * multiple


def size_rules(networks: Iterable[nn.Module]) -> tuple[int, int]:
    """What image sides must be for every one of ``networks``: a multiple of each one's ``size_multiple``
    (their least common multiple) and at least each one's ``min_input_size`` (the largest)."""
    networks = list(networks)
    return (math.lcm(*(getattr(net, "size_multiple", 1) for net in networks)),
            max([getattr(net, "min_input_size", 1) for net in networks], default=1))


def padded_to_fit(images: Tensor, multiple: int, smallest: int) -> Tensor:
    """``images`` (``N x C x H x W``) padded at the bottom and right, repeating their edges, to sides that
    are multiples of ``multiple`` and at least ``smallest``; crop outputs back with ``[..., :H, :W]``.

    Example:
        >>> import torch
        >>> padded_to_fit(torch.zeros(1, 3, 30, 70), 16, 32).shape
        torch.Size([1, 3, 32, 80])
    """

    height, width = images.shape[-2:]
    fitting = [round_up(max(side, smallest), multiple) for side in (height, width)]
    return F.pad(images, (0, fitting[1] - width, 0, fitting[0] - height), mode="replicate")


def check_min_size(x: Tensor, smallest: int, *, model: str, fix: str) -> None:
    """Raise ``OptionError`` unless the height and width of ``x`` are at least ``smallest``.

    Args:
        x: a batch ``N x C x H x W``.
        smallest: the smallest side the network takes.
        model: how the message names the network.
        fix: what to change, e.g. ``"raise the crop size or lower n_layers"``.
    """
    h, w = x.shape[-2:]
    if min(h, w) < smallest:
        raise OptionError(f"{model} needs images of at least {smallest} px a side, got {w}x{h}: {fix}.")


def output_activation(name: str) -> nn.Module:
    """The generator's last layer: ``"tanh"`` for images in [-1, 1], ``"none"`` for raw logits."""
    check_choice("final_activation", name, FINAL_ACTIVATIONS)
    return nn.Tanh() if name == "tanh" else nn.Identity()


@contextlib.contextmanager
def buffers_kept(module: nn.Module) -> Iterator[None]:
    """Run the block, then put back ``module``'s buffers as they were before it (the running statistics that
    batch normalisation updates in training mode)."""
    kept = {name: buffer.clone() for name, buffer in module.named_buffers()}
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in module.named_buffers():
                buffer.copy_(kept[name])


def paper_test_mode(module: nn.Module) -> nn.Module:
    """``module`` in training mode, as the paper's test phase runs it (batch statistics, dropout), but for spectral
    normalisation, which keeps its trained estimate of each weight's norm: its power iteration is part of training,
    and would change the weights a little at every call."""
    module.train()
    for part in module.modules():
        parametrized = hasattr(part, "n_power_iterations") and hasattr(part, "_u")  # torch's spectral_norm parametrization
        hooked = hasattr(part, "weight_u") and hasattr(part, "weight_orig")  # a layer under the older torch.nn.utils.spectral_norm
        if parametrized or hooked:
            part.eval()
    return module


@contextlib.contextmanager
def one_value_per_channel(fix: str) -> Iterator[None]:
    """Turn torch's error for batch norm that sees one value per channel in training mode (a batch of
    one reduced to 1x1 features) into an ``OptionError`` that names ``fix``."""
    try:
        yield
    except ValueError as error:
        if "more than 1 value per channel" not in str(error):
            raise
        shape = str(error).rpartition("input size ")[2].replace("torch.Size(", "").rstrip(")")
        raise OptionError(
            f"batch norm in training mode needs more than one value per channel, but a network reduced its batch "
            f"to features of shape {shape}: {fix}."
        ) from None
