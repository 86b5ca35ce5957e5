"""gantk: image-to-image translation with conditional GANs, built from pluggable parts."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, overload

from .errors import GantkError, GantkWarning
from .hookspecs import hookimpl
from .plugins import default_components, load_components

if TYPE_CHECKING:
    from torch import nn

    from .data.formats import DataFormat
    from .objectives.base import LossContext, Objective
    from .plugins import DataFormatKind, NetworkKind, ObjectiveKind, RecipeKind
    from .recipes.base import Recipe

__version__ = "0.16.0"

# Read from their module at first use, as are subpackages (gantk.objectives, gantk.nn...): importing gantk does not
# import torch, so the command line is running to answer a Ctrl-C while torch is imported (see gantk.__main__).
_LATER = {"LossContext": ".objectives.base", "Objective": ".objectives.base"}


def __getattr__(name: str) -> Any:
    if name in _LATER:
        return getattr(importlib.import_module(_LATER[name], __name__), name)
    try:
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as error:
        if error.name != f"{__name__}.{name}":  # a module the subpackage imports is missing
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LATER])


@overload
def create(kind: NetworkKind, name: str, **options: Any) -> nn.Module: ...
@overload
def create(kind: ObjectiveKind, name: str, **options: Any) -> Objective: ...
@overload
def create(kind: DataFormatKind, name: str, **options: Any) -> DataFormat: ...
@overload
def create(kind: RecipeKind, name: str, **options: Any) -> Recipe: ...
@overload
def create(kind: str, name: str, **options: Any) -> Any: ...


def create(kind: str, name: str, **options: Any) -> Any:
    """Build a registered component, e.g. ``create("generator", "unet", ngf=32)``: a ``torch.nn.Module`` for a
    generator or discriminator, an ``Objective``, a ``DataFormat`` or a ``Recipe``."""
    from .plugins import normalize_kind
    from .registry import options_set_with

    with options_set_with(normalize_kind(kind), "create's keyword arguments"):
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
