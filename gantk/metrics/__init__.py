"""Evaluation metrics: pixel fidelity, LPIPS, segmentation scores, FID/KID and precision/recall."""

from .fid import InceptionFeatures, InceptionWeightsError, find_inception_weights, frechet_distance, kernel_inception_distance
from .lpips_distance import LpipsScores
from .pixel import PixelScores, l1_per_image, mse_per_image, psnr_per_image, ssim_per_image, to_unit
from .prdc import density_coverage, precision_recall
from .segmentation import SegmentationScores

__all__ = [
    "InceptionFeatures",
    "InceptionWeightsError",
    "LpipsScores",
    "PixelScores",
    "SegmentationScores",
    "density_coverage",
    "find_inception_weights",
    "frechet_distance",
    "kernel_inception_distance",
    "l1_per_image",
    "mse_per_image",
    "precision_recall",
    "psnr_per_image",
    "ssim_per_image",
    "to_unit",
]
