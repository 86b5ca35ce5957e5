"""Learning-rate schedule: an optional linear warm-up, constant, then a decay to zero, linear
(pix2pix / CycleGAN) or cosine."""

from __future__ import annotations

import math
from typing import Callable


def lr_factor(total_steps: int, decay_start: float, shape: str = "linear", warmup: int = 0) -> Callable[[int], float]:
    """Multiplier for ``LambdaLR`` at step ``s`` (from 0): ``(s + 1) / warmup`` over the first ``warmup`` steps, then 1
    until ``decay_start * total_steps`` (or the warm-up's end, if later: the rate reaches its value before it falls),
    then falling to 0 at the end, linearly or along a half cosine (``shape``).

    Example:
        >>> f = lr_factor(100, 0.5)
        >>> f(0), f(50), f(75), f(100)
        (1.0, 1.0, 0.5, 0.0)
        >>> g = lr_factor(100, 0.0, "cosine", warmup=5)
        >>> g(0), g(4), round(g(52), 3), g(100)
        (0.2, 1.0, 0.5, 0.0)
    """
    start = max(int(total_steps * decay_start), warmup - 1)  # the last warm-up step reaches the full rate
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        done = max(0, step - start) / span
        return 1.0 - done if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))

    return factor
