"""Pixel-wise cross-entropy of mask logits against class ids (the standard segmentation loss), and its
focal form (Lin et al. 2017), which down-weights the pixels already classified well.

One output channel is a binary mask scored with the sigmoid (binary cross-entropy); K channels are
class scores scored with the softmax. Ignored pixels (class id -1) are left out of the mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import OptionError
from ..systems.targets import IGNORED
from .base import LossContext, Objective


def cross_entropy_loss(logits: Tensor, target: Tensor, gamma: float = 0.0) -> Tensor:
    """Mean cross-entropy over the pixels not ignored, of raw logits against class ids (float32).

    Args:
        logits: raw scores ``N x K x H x W``; ``K = 1`` for a binary mask (sigmoid).
        target: class ids ``N x H x W`` (0/1 for a binary mask); pixels of id -1 are left out.
        gamma: the focal loss's focusing exponent: each pixel's cross-entropy ``-log p`` is scaled by
            ``(1 - p)^gamma``, ``p`` the probability of its true class; 0 is plain cross-entropy.

    A batch of ignored pixels only has a loss of 0. The mean is taken on the device, without reading
    the number of pixels kept on the CPU.

    Example:
        >>> logits = torch.tensor([[[[0.0]], [[0.0]]]])  # two classes, equally likely
        >>> cross_entropy_loss(logits, torch.tensor([[[1]]]))  # ln 2
        tensor(0.6931)
        >>> cross_entropy_loss(logits, torch.tensor([[[1]]]), gamma=2.0)  # ln 2 / 4
        tensor(0.1733)
    """
    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"ce expects logits N x K x H x W and class ids N x H x W, got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    logits, kept = logits.float(), target != IGNORED
    ids = torch.where(kept, target, 0)
    if logits.shape[1] == 1:
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], ids.float(), reduction="none")
    else:
        per_pixel = F.cross_entropy(logits, ids, reduction="none")
    if gamma:  # (1 - p)^gamma, kept above 0 so that a gamma below 1 has a finite gradient where p is 1
        per_pixel = per_pixel * (-torch.expm1(-per_pixel)).clamp(min=torch.finfo(per_pixel.dtype).tiny).pow(gamma)
    return (per_pixel * kept).sum() / kept.sum().clamp(min=1)


class CrossEntropyLoss(Objective):
    """Pixel-wise cross-entropy of the generator's mask logits against class ids (sigmoid for binary masks).

    Reads ``ctx.fake_logits`` (``N x K x H x W``) and ``ctx.target`` (``N x H x W``).
    """

    needs_masks = True
    compares_pairs = True

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return cross_entropy_loss(ctx.fake_logits, ctx.target)


class FocalLoss(Objective):
    """Focal loss (Lin et al. 2017): pixel-wise cross-entropy scaled by (1 - p)^gamma, down-weighting pixels already right.

    Reads ``ctx.fake_logits`` (``N x K x H x W``) and ``ctx.target`` (``N x H x W``), as ``ce`` does.

    Args:
        gamma: the focusing exponent (2 in the paper; 0 is plain cross-entropy).
    """

    needs_masks = True
    compares_pairs = True

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        if isinstance(gamma, bool) or not (isinstance(gamma, (int, float)) and 0 <= gamma < float("inf")):
            raise OptionError(f"focal's gamma is a focusing exponent of 0 or more, got {gamma!r}.")
        self.gamma = float(gamma)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return cross_entropy_loss(ctx.fake_logits, ctx.target, self.gamma)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}"
