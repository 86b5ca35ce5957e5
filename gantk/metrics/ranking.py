"""Which way each score is better, and the names of the scores validation gives."""

from __future__ import annotations

import math

HIGHER_IS_BETTER = frozenset({
    "psnr", "ssim", "precision", "recall", "pixel_accuracy", "mean_class_accuracy", "mean_iou", "foreground_iou", "mean_dice",
    "foreground_dice", "density", "coverage",
})
IMAGE_SCORES = ("l1", "l2", "rmse", "psnr", "ssim")  # PixelScores
MASK_SCORES = ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "mean_dice", "rmse")  # SegmentationScores, all masks
BINARY_MASK_SCORES = ("foreground_iou", "foreground_dice")  # SegmentationScores, 2 classes
FEATURE_SCORES = ("fid", "kid")  # on InceptionV3's features: validation on unpaired data, or with --val-fid


def validation_score_names(num_classes: int | None) -> tuple[str, ...]:
    """The scores validation gives for image targets (``num_classes`` ``None``) or masks of ``num_classes`` classes."""
    if num_classes is None:
        return IMAGE_SCORES
    return MASK_SCORES + (BINARY_MASK_SCORES if num_classes == 2 else ())


def improves(name: str, value: float, best: float | None) -> bool:
    """Whether ``value`` of score ``name`` beats ``best`` (any finite value beats ``None``; NaN never does)."""
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if name in HIGHER_IS_BETTER else value < best
