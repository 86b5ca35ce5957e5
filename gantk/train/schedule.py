"""Learning-rate schedule: an optional linear warm-up, constant, then a decay to zero, linear
(pix2pix / CycleGAN) or cosine."""

from __future__ import annotations

import math
from typing import Callable


def lr_factor(total_steps: int, decay_start: float, shape: str = "linear", warmup: int = 0) -> Callable[[int], float]:
    """Multiplier for ``LambdaLR`` at step ``s`` (from 0): ``(s + 1) / warmup`` over the first ``warmup`` steps, times 1
    until ``decay_start * total_steps``, then falling to 0 at the end, linearly or along a half cosine (``shape``).

    Example:
        >>> f = lr_factor(100, 0.5)
        >>> f(0), f(50), f(75), f(100)
        (1.0, 1.0, 0.5, 0.0)
        >>> g = lr_factor(100, 0.0, "cosine", warmup=4)
        >>> round(g(0), 3), round(g(50), 3), g(100)
        (0.25, 0.5, 0.0)
    """
    start = int(total_steps * decay_start)
    span = max(1, total_steps - start)

    def factor(step: int) -> float:
        done = max(0, step - start) / span
        decay = 1.0 - done if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * min(done, 1.0)))
        return decay * min(1.0, (step + 1) / warmup if warmup else 1.0)

    return factor
