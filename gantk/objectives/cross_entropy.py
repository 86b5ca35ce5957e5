"""Pixel-wise cross-entropy of mask logits against class ids (the standard segmentation loss), and its
focal form (Lin et al. 2017), which down-weights the pixels already classified well.

One output channel is a binary mask scored with the sigmoid (binary cross-entropy); K channels are
class scores scored with the softmax. Ignored pixels (class id -1) are left out of the mean. Class
weights (``class_weights``, one per class) scale each pixel's term by its true class's weight, the
mean then dividing by the sum of the pixels' weights, as ``torch.nn.functional.cross_entropy`` does.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import OptionError
from ..systems.targets import IGNORED
from .base import FLOAT32_MAX, FLOAT32_TINY, LossContext, Objective


def cross_entropy_loss(logits: Tensor, target: Tensor, gamma: float = 0.0, class_weights: Tensor | None = None) -> Tensor:
    """Mean cross-entropy over the pixels not ignored, of raw logits against class ids (float32).

    Args:
        logits: raw scores ``N x K x H x W``; ``K = 1`` for a binary mask (sigmoid).
        target: class ids ``N x H x W`` (0/1 for a binary mask); pixels of id -1 are left out.
        gamma: the focal loss's focusing exponent: each pixel's cross-entropy ``-log p`` is scaled by
            ``(1 - p)^gamma``, ``p`` the probability of its true class; 0 is plain cross-entropy.
        class_weights: one weight per class (2 for a binary mask): each pixel's term is scaled by its
            class's weight and the mean is over the weights of the pixels kept; ``None`` weighs all alike.

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
    classes = max(logits.shape[1], 2)
    if class_weights is not None and class_weights.numel() != classes:
        raise ValueError(f"class_weights holds {class_weights.numel()} weight(s) for {classes} classes")
    if logits.shape[1] == 1:
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0], ids.float(), reduction="none")
    else:
        per_pixel = F.cross_entropy(logits, ids, reduction="none")
    if gamma:  # (1 - p)^gamma, kept above 0 so that a gamma below 1 has a finite gradient where p is 1
        per_pixel = per_pixel * (-torch.expm1(-per_pixel)).clamp(min=torch.finfo(per_pixel.dtype).tiny).pow(gamma)
    # Scaled to a largest weight of 1, which leaves the weighted mean as it is: their sum over many pixels stays finite.
    weights = kept.float() if class_weights is None else (class_weights.float() / class_weights.max())[ids] * kept
    return (per_pixel * weights).sum() / weights.sum().clamp(min=torch.finfo(per_pixel.dtype).tiny)


def checked_class_weights(name: str, class_weights: Sequence[float] | None) -> Tensor | None:
    """``class_weights`` (a sequence of real numbers, or ``None``) as a float32 tensor; raises unless they
    are finite numbers of 0 or more, one above 0."""
    if class_weights is None:
        return None
    values = class_weights.tolist() if hasattr(class_weights, "tolist") else class_weights  # a tensor or an array
    valid = isinstance(values, (list, tuple)) and all(  # checked in Python: a network may be built on the meta device
        isinstance(w, numbers.Real) and not isinstance(w, bool) and 0 <= w <= FLOAT32_MAX for w in values) and any(
        w >= FLOAT32_TINY for w in values)  # one above 0 in float32 too
    if not valid:
        raise OptionError(
            f"{name}'s class_weights is one finite weight of 0 or more per class, one above 0 at least (e.g. --loss-opt "
            f"'{name}.class_weights=[0.6,3.5]'; gantk data check suggests some), got {class_weights!r}."
        )
    return torch.tensor(values, dtype=torch.float32)


class _ClassWeighted(Objective):
    """Base of the terms that take one weight per class (``class_weights``) and refuse another count."""

    spec_name = ""  # the name the objective spec gives the term, for messages

    def check_classes(self, num_classes: int) -> None:
        if self.class_weights is not None and self.class_weights.numel() != num_classes:
            raise OptionError(
                f"--loss-opt {self.spec_name}.class_weights gives {self.class_weights.numel()} weight(s), but the masks have "
                f"{num_classes} classes (ids 0..{num_classes - 1}): give one weight per class (gantk data check suggests some)."
            )


class CrossEntropyLoss(_ClassWeighted):
    """Pixel-wise cross-entropy of the generator's mask logits against class ids (sigmoid for binary masks).

    Reads ``ctx.fake_logits`` (``N x K x H x W``) and ``ctx.target`` (``N x H x W``).

    Args:
        class_weights: one weight per class (2 for binary masks), or ``None``: all alike.
    """

    needs_masks = True
    compares_pairs = True
    spec_name = "ce"

    def __init__(self, class_weights: Sequence[float] | None = None):
        super().__init__()
        self.register_buffer("class_weights", checked_class_weights(self.spec_name, class_weights), persistent=False)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return cross_entropy_loss(ctx.fake_logits, ctx.target, class_weights=self.class_weights)

    def extra_repr(self) -> str:
        return "" if self.class_weights is None else f"class_weights={self.class_weights.tolist()}"


class FocalLoss(_ClassWeighted):
    """Focal loss (Lin et al. 2017): pixel-wise cross-entropy scaled by (1 - p)^gamma, down-weighting pixels already right.

    Reads ``ctx.fake_logits`` (``N x K x H x W``) and ``ctx.target`` (``N x H x W``), as ``ce`` does.

    Args:
        gamma: the focusing exponent (2 in the paper; 0 is plain cross-entropy).
        class_weights: one weight per class (2 for binary masks; the paper's α balances the two), or
            ``None``: all alike.
    """

    needs_masks = True
    compares_pairs = True
    spec_name = "focal"

    def __init__(self, gamma: float = 2.0, class_weights: Sequence[float] | None = None):
        super().__init__()
        if isinstance(gamma, bool) or not (isinstance(gamma, (int, float)) and 0 <= gamma < float("inf")):
            raise OptionError(f"focal's gamma is a focusing exponent of 0 or more, got {gamma!r}.")
        self.gamma = float(gamma)
        self.register_buffer("class_weights", checked_class_weights(self.spec_name, class_weights), persistent=False)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return cross_entropy_loss(ctx.fake_logits, ctx.target, self.gamma, self.class_weights)

    def extra_repr(self) -> str:
        weights = "" if self.class_weights is None else f", class_weights={self.class_weights.tolist()}"
        return f"gamma={self.gamma}{weights}"
