"""Compositions of registered parts that the shared trainer runs."""

from .base import Nets, Phase, System
from .contrastive import ContrastiveSystem
from .cycle import CycleSystem
from .image_pool import ImagePool
from .paired import PairedSystem

__all__ = ["ContrastiveSystem", "CycleSystem", "ImagePool", "Nets", "PairedSystem", "Phase", "System"]
