"""Segmentation scores of predicted masks: pixel and class accuracy, class IoU, Dice, RMSE of probabilities.

Confusion counts come from ``segmentation_models_pytorch.metrics.get_stats`` and are summed
over the whole set before any ratio is taken (dataset-level IoU, as in the FCN-score of
pix2pix and the Cityscapes benchmark), not averaged per image.
"""

from __future__ import annotations

import math
import warnings

import torch
from segmentation_models_pytorch.metrics import get_stats
from torch import Tensor

from ..errors import DataError, GantkWarning, caller_stacklevel
from ..systems import targets


class SegmentationScores:
    """Accumulates the confusion counts of a mask model over batches.

    ``update(probs, ids)`` takes the model's probabilities (``N x 1 x H x W`` for binary masks,
    ``N x K x H x W`` otherwise) and the true class ids (``N x H x W``; pixels of id -1, ignored,
    count in no score). ``compute()`` gives:

    - ``pixel_accuracy``: share of pixels whose predicted class is right;
    - ``class_accuracy`` (per class) and ``mean_class_accuracy``: TP / (TP + FN), i.e. recall;
    - ``class_iou`` and ``mean_iou``: TP / (TP + FP + FN);
    - ``class_dice`` and ``mean_dice``: 2 TP / (2 TP + FP + FN);
    - ``foreground_iou`` and ``foreground_dice`` for binary masks (class 1);
    - ``rmse``: root mean squared difference between the probabilities and the one-hot truth
      (the true mask itself for binary masks), over pixels and probability channels.

    A class absent from both the truth and the predictions has undefined ratios (``nan``) and is
    left out of the means; a class that is predicted but absent from the truth has an undefined
    accuracy, left out of ``mean_class_accuracy``, and an IoU and Dice of 0, which count in their means.

    Example:
        >>> scores = SegmentationScores(2)
        >>> _ = scores.update(torch.tensor([[[[0.9, 0.2]]]]), torch.tensor([[[1, 1]]]))
        >>> scores.compute()["pixel_accuracy"]
        0.5
    """

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.counts = torch.zeros(4, num_classes, dtype=torch.float64)  # tp, fp, fn, tn
        self.squared_error = 0.0
        self.values = 0

    def update(self, probs: Tensor, ids: Tensor) -> Tensor:
        """Add a batch; returns the per-image mean absolute error of the probabilities (for ranking).

        Raises:
            DataError: probabilities of another shape than ``ids`` call for, not finite, or class ids the model does
                not predict.
        """
        channels = 1 if self.num_classes == 2 else self.num_classes
        if probs.dim() != 4 or ids.dim() != 3 or probs.shape[1] != channels or (probs.shape[0], *probs.shape[2:]) != ids.shape:
            raise DataError(
                f"probs must be N x {channels} x H x W for a {self.num_classes}-class model "
                f"({'one channel, the probability of class 1' if channels == 1 else 'one channel per class'}) and ids "
                f"N x H x W of the same N, H and W, got probs {tuple(probs.shape)} and ids {tuple(ids.shape)}."
            )
        if not bool(probs.isfinite().all()):
            raise DataError("probs holds NaN or infinite values (a model whose training diverged?).")
        if ids.numel() and not targets.IGNORED <= int(ids.min()) <= int(ids.max()) < self.num_classes:
            raise DataError(
                f"true class ids must lie in 0..{self.num_classes - 1} for a {self.num_classes}-class model (or be -1 "
                f"where ignored), got ids {int(ids.min())}..{int(ids.max())}; map other labels to a class first, or "
                "ignore them (--ignore-label)."
            )
        predicted = targets.predicted_ids(probs)
        stats = get_stats(predicted.long(), ids.long(), mode="multiclass", num_classes=self.num_classes,
                          ignore_index=targets.IGNORED)
        self.counts += torch.stack([s.sum(0) for s in stats]).double().cpu()
        kept = targets.kept_pixels(ids)
        error = (probs.float() - targets.encode_mask(ids, self.num_classes)) * kept
        self.squared_error += error.double().square().sum().item()
        self.values += int(kept.sum().item()) * error.shape[1]
        return error.abs().flatten(1).sum(1) / (kept.flatten(1).sum(1) * error.shape[1]).clamp_min(1)

    def compute(self) -> dict[str, float | list[float]]:
        tp, fp, fn, _ = self.counts
        pixels = (tp + fn).sum()
        if not pixels:
            warnings.warn("no pixel was scored, as every true pixel is ignored (--ignore-label): the scores are NaN; "
                          "score on a split with labels.", GantkWarning, stacklevel=caller_stacklevel())
        accuracy = _ratio(tp, tp + fn)
        iou = _ratio(tp, tp + fp + fn)
        dice = _ratio(2 * tp, 2 * tp + fp + fn)
        scores: dict[str, float | list[float]] = {
            "pixel_accuracy": (tp.sum() / pixels).item(),
            "mean_class_accuracy": _nanmean(accuracy),
            "mean_iou": _nanmean(iou),
            "mean_dice": _nanmean(dice),
            "rmse": math.sqrt(self.squared_error / self.values) if self.values else math.nan,
            "class_accuracy": accuracy.tolist(),
            "class_iou": iou.tolist(),
            "class_dice": dice.tolist(),
        }
        if self.num_classes == 2:
            scores["foreground_iou"] = iou[1].item()
            scores["foreground_dice"] = dice[1].item()
        return scores


def _ratio(numerator: Tensor, denominator: Tensor) -> Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp_min(1), torch.full_like(numerator, math.nan))


def _nanmean(values: Tensor) -> float:
    return values.nanmean().item()
