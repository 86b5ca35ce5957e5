"""Lovász objective (Berman et al. 2018): a convex surrogate of the Jaccard (IoU) loss for masks.

One output channel is a binary mask trained with the Lovász hinge; K channels are class
scores trained with the Lovász-softmax. The computation is segmentation_models_pytorch's
``LovaszLoss``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..systems.targets import IGNORED
from .base import LossContext, Objective


def lovasz_loss(logits: Tensor, target: Tensor, per_image: bool = False) -> Tensor:
    """Lovász hinge (one channel) or Lovász-softmax (K channels) of raw logits against class ids.

    The multi-class loss is the mean over the classes present in ``target`` of the Lovász
    extension of ``1 - IoU``; a class absent from ``target`` adds no term of its own.
    smp computes in float32 only, so the logits are cast to float32 first (which also keeps
    the loss in full precision under autocast); the loss is float32.

    Args:
        logits: raw scores ``N x K x H x W``; ``K = 1`` for a binary mask.
        target: class ids ``N x H x W`` (0/1 for a binary mask); pixels of id -1 are left out.
        per_image: average the loss over images instead of computing it over the whole batch.

    An image of ignored pixels only is left out of the per-image average; a batch of them has a loss of 0.

    Example:
        >>> logits = torch.tensor([[[[1.0, 0.0], [-1.0, -1.0]]]])  # pixel (0, 1) is wrong
        >>> lovasz_loss(logits, torch.tensor([[[1, 1], [0, 0]]]))  # 1 - IoU = 1 - 1/2
        tensor(0.5000)
    """
    from segmentation_models_pytorch.losses import LovaszLoss as SMPLovaszLoss  # deferred: smp is slow to import

    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            "lovasz expects logits N x K x H x W and class ids N x H x W, "
            f"got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    loss = SMPLovaszLoss("binary" if logits.shape[1] == 1 else "multiclass", ignore_index=IGNORED, from_logits=True)
    logits = logits.float()
    scored = (target != IGNORED).flatten(1).any(1).tolist()  # images with a pixel that is not ignored
    if not any(scored):
        return logits.sum() * 0  # smp gives an empty tensor for no pixels
    if not per_image:
        return loss(logits, target)
    return torch.stack([loss(logits[i : i + 1], target[i : i + 1]) for i, kept in enumerate(scored) if kept]).mean()


class LovaszLoss(Objective):
    """Lovász hinge / Lovász-softmax on the generator's mask logits against class ids.

    Reads ``ctx.fake_logits`` (``N x K x H x W``) and ``ctx.target`` (``N x H x W``).

    Args:
        per_image: average the loss over images instead of computing it over the whole batch.
    """

    needs_masks = True
    compares_pairs = True
    cpu_decides = "reads on the CPU which classes each batch holds"

    def __init__(self, per_image: bool = False):
        super().__init__()
        self.per_image = bool(per_image)

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return lovasz_loss(ctx.fake_logits, ctx.target, self.per_image)

    def extra_repr(self) -> str:
        return f"per_image={self.per_image}"
