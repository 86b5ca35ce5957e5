"""WGAN-GP, the weight-clipped WGAN and spectral-norm discriminators as a gantk plugin."""

from .clipping import WeightClippedSystem, wgan_clip
from .spectral import spectral_norm_convolutions, spectral_variant
from .wgan_gp import WGANGPLoss, critic_scores, gradient_penalty, wgan, wgan_discriminator_loss, wgan_generator_loss, wgan_gp

__version__ = "0.1.1"

__all__ = [
    "WGANGPLoss",
    "WeightClippedSystem",
    "__version__",
    "critic_scores",
    "gradient_penalty",
    "spectral_norm_convolutions",
    "spectral_variant",
    "wgan",
    "wgan_clip",
    "wgan_discriminator_loss",
    "wgan_generator_loss",
    "wgan_gp",
]
