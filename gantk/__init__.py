"""gantk: image-to-image translation with conditional GANs, built from pluggable parts."""

from __future__ import annotations

from typing import Any

from .errors import GantkError, GantkWarning
from .hookspecs import hookimpl
from .objectives.base import LossContext, Objective
from .plugins import default_components, load_components

__version__ = "0.10.0"


def create(kind: str, name: str, **options: Any) -> Any:
    """Build a registered component, e.g. ``create("generator", "unet", ngf=32)``."""
    return default_components().create(kind, name, **options)


def list_components(kind: str, pattern: str = "*") -> list[str]:
    """Registered names of ``kind`` matching a shell-style ``pattern``, e.g. ``list_components("discriminator", "patch*")``."""
    return default_components().registry(kind).names(pattern)


__all__ = [
    "GantkError",
    "GantkWarning",
    "LossContext",
    "Objective",
    "__version__",
    "create",
    "default_components",
    "hookimpl",
    "list_components",
    "load_components",
]
