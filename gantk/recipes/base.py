"""A recipe: the system to build and the settings it starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..systems.base import System


@dataclass(frozen=True)
class Recipe:
    """Defaults for ``gantk train`` (any flag overrides them) and the system class they configure.

    Attributes:
        name: the registered name (``--recipe``).
        system: the ``System`` subclass built from the resolved configuration.
        defaults: values for ``TrainConfig`` fields, e.g. ``{"gen": "unet", "loss": "bce+l1"}``.
        source: where the settings come from (paper, section).
    """

    name: str
    system: type[System]
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""
