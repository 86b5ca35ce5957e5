"""pix2pixHD's multi-scale discriminator and feature-matching loss as a gantk plugin."""

from .discriminator import MultiscaleDiscriminator
from .feature_matching import FeatureMatchingLoss, feature_matching_loss, features_module

__version__ = "0.1.2"

__all__ = [
    "FeatureMatchingLoss",
    "MultiscaleDiscriminator",
    "__version__",
    "feature_matching_loss",
    "features_module",
]
