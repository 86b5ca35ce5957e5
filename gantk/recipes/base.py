"""A recipe: the system to build and the settings it starts from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import OptionError
from ..option_values import as_declared, close_options_hint, plain, type_mismatch, value_type, with_nones
from ..systems.base import System


@dataclass(frozen=True)
class Recipe:
    """Defaults for ``gantk train`` (any flag overrides them) and the system class they configure.

    Attributes:
        name: the registered name (``--recipe``; a recipe registered under another name goes by that one).
        system: the ``System`` subclass built from the resolved configuration.
        defaults: values for ``TrainConfig`` fields, e.g. ``{"gen": "unet", "loss": "bce+l1"}``.
        source: where the settings come from (paper, section).
        options: the system's own settings and their defaults (``--recipe-opt KEY=VALUE``); the
            system reads them, with the values given, from ``config["recipe_opt"]``.
    """

    name: str
    system: type[System]
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not (isinstance(self.system, type) and issubclass(self.system, System)):
            raise OptionError(
                f"recipe '{self.name}' has system={self.system!r}: give the System subclass it builds "
                "(gantk.systems.PairedSystem, CycleSystem or your own subclass), not an instance or another class."
            )

    def spelt(self, given: dict[str, Any]) -> dict[str, Any]:
        """``given`` options in plain values, ``none`` spelt as each option takes it (as for a component's
        options: TOML has no null)."""
        return with_nones(plain(given), self.options)

    def settings(self, given: dict[str, Any]) -> dict[str, Any]:
        """:attr:`options` with the ``given`` values (:meth:`spelt`), each checked to be one of them and
        of its default's type (an option whose default is ``None`` or not a plain value takes any)."""
        given = self.spelt(given)
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            takes = ", ".join(f"{key}={value!r}" for key, value in self.options.items()) or "none"
            raise OptionError(f"--recipe-opt: recipe '{self.name}' has no option {', '.join(unknown)} (its options: {takes})."
                              f"{close_options_hint(unknown, self.options)}")
        for key, value in given.items():
            default = self.options[key]
            wanted = value_type(default)
            given[key] = value = as_declared(wanted, value)
            if wanted and (problem := type_mismatch(key, wanted, default, value)):
                raise OptionError(f"--recipe-opt: recipe '{self.name}': {problem}.")
        return {**plain(self.options), **given}
