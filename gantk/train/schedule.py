"""Learning-rate schedule: constant, then linear decay to zero (pix2pix / CycleGAN)."""

from __future__ import annotations

from typing import Callable


def linear_decay(total_steps: int, decay_start: float) -> Callable[[int], float]:
    """Multiplier for ``LambdaLR``: 1 until ``decay_start * total_steps``, then linearly to 0 at the end.

    Example:
        >>> f = linear_decay(100, 0.5)
        >>> f(0), f(50), f(75), f(100)
        (1.0, 1.0, 0.5, 0.0)
    """
    start = int(total_steps * decay_start)
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        return 1.0 - max(0, step - start) / span

    return factor
