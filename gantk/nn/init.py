"""Weight initialisation schemes of the reference pix2pix/CycleGAN ``init_weights``."""

from __future__ import annotations

import math

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from ..errors import OptionError
from . import check_choice

INIT_SCHEMES = ("normal", "xavier", "kaiming", "orthogonal")


def init_weights(module: nn.Module, scheme: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise every convolution, linear and batch-norm layer of ``module`` in place.

    Convolution and linear weights get ``normal(0, gain)``, ``xavier_normal(gain)``,
    ``kaiming_normal(a=0, mode="fan_in")`` (``gain`` unused) or ``orthogonal(gain)``; their biases 0.
    Batch-norm weights get ``normal(1, gain)`` and biases 0.

    Args:
        module: the network.
        scheme: one of ``INIT_SCHEMES``.
        gain: standard deviation (``normal``) or scaling factor (``xavier``, ``orthogonal``).

    Returns:
        ``module``.

    Example:
        >>> conv = init_weights(nn.Conv2d(64, 64, 3), "normal", 0.02)
        >>> round(conv.weight.std().item(), 2)
        0.02
    """
    check_choice("init", scheme, INIT_SCHEMES)
    if not math.isfinite(gain) or gain < 0:  # inf trains NaNs; a negative gain is a torch error naming no option
        raise OptionError(f"init_gain={gain!r} is not valid: it is the spread of the initial weights, a finite number of "
                          "0 or more (0.02 in the paper).")
    for m in module.modules():
        if isinstance(m, (_ConvNd, nn.Linear)):
            if scheme == "normal":
                nn.init.normal_(m.weight, 0.0, gain)
            elif scheme == "xavier":
                nn.init.xavier_normal_(m.weight, gain=gain)
            elif scheme == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, _BatchNorm) and m.affine:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module
