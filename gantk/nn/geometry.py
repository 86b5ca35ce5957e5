"""Side-length arithmetic of chains of convolutions and pools (square kernels): receptive fields,
output sizes and the smallest input a network takes."""

from __future__ import annotations

from typing import Iterable, NamedTuple

from torch import nn


class Window(NamedTuple):
    """The sliding window of one convolution or pooling layer.

    ``padding`` is the padding of each side, or ``(before, after)`` where they differ (as
    ``Conv2d(padding="same")`` pads an even kernel); ``ceil`` is a pool's ``ceil_mode``.
    """

    kernel: int
    stride: int
    padding: int | tuple[int, int]
    dilation: int = 1
    ceil: bool = False


def _first(value: int | tuple[int, ...]) -> int:
    return value if isinstance(value, int) else value[0]


def _conv_padding(conv: nn.Conv2d) -> int | tuple[int, int]:
    if conv.padding == "valid":
        return 0
    if conv.padding == "same":  # as PyTorch pads it: the odd pixel after
        total = conv.dilation[0] * (conv.kernel_size[0] - 1)
        return (total // 2, total - total // 2)
    return conv.padding[0]


def windows(module: nn.Module) -> list[Window]:
    """The windows of every ``Conv2d``, ``AvgPool2d`` and ``MaxPool2d`` in ``module``, in registration order."""
    found = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            found.append(Window(m.kernel_size[0], m.stride[0], _conv_padding(m), m.dilation[0]))
        elif isinstance(m, nn.AvgPool2d):
            found.append(Window(_first(m.kernel_size), _first(m.stride), _first(m.padding), ceil=m.ceil_mode))
        elif isinstance(m, nn.MaxPool2d):
            found.append(Window(_first(m.kernel_size), _first(m.stride), _first(m.padding), _first(m.dilation), m.ceil_mode))
    return found


def receptive_field(chain: Iterable[Window]) -> int:
    """Input pixels (per side) that one output unit of ``chain`` sees.

    Example:
        >>> receptive_field([Window(3, 2, 1), Window(4, 1, 1)])
        9
    """
    field = 1
    for w in reversed(list(chain)):
        field = (field - 1) * w.stride + (w.kernel - 1) * w.dilation + 1
    return field


def output_side(chain: Iterable[Window], side: int) -> int:
    """Output side length of ``chain`` for an input side of ``side`` (0 or less: too small).

    Example:
        >>> output_side([Window(4, 2, 1), Window(4, 1, 1)], 32)
        15
    """
    for w in chain:
        if side < 1:
            return side
        before, after = (w.padding, w.padding) if isinstance(w.padding, int) else w.padding
        span = side + before + after - w.dilation * (w.kernel - 1) - 1
        if w.ceil:  # the last window may hang over the end if it starts before the padding after
            out = (span + w.stride - 1) // w.stride + 1
            side = out - 1 if (out - 1) * w.stride >= side + before else out
        else:
            side = span // w.stride + 1
    return side


def min_input_side(chain: Iterable[Window]) -> int:
    """The smallest input side for which ``chain`` gives at least one output unit.

    Example:
        >>> min_input_side([Window(4, 2, 1), Window(4, 1, 1)])
        4
    """
    chain = list(chain)
    side = 1
    while output_side(chain, side) < 1:
        side += 1
    return side
