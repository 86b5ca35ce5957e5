"""Where a part comes from, named the same in every session: its plugin, the code of its factory, its package."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sys
import types
from typing import Any

from .registry import Entry


def plugin_name(plugin: Any) -> str:
    """The name a plugin given to ``load_components`` is known by, the same in every session: a
    module's name (a script's as it would be imported), or an object's class."""
    if isinstance(plugin, str):
        return plugin
    if isinstance(plugin, types.ModuleType):
        if plugin.__name__ != "__main__":
            return plugin.__name__
        spec, script = getattr(plugin, "__spec__", None), getattr(plugin, "__file__", None)
        if spec is not None:  # python -m package.script
            return spec.name
        return os.path.splitext(os.path.basename(script))[0] if script else plugin.__name__
    kind = plugin if isinstance(plugin, type) else type(plugin)
    return f"{module_name(kind.__module__)}.{kind.__qualname__}"


def module_name(name: str) -> str:
    """The module ``name`` as it would be imported: a script run as ``__main__`` by its own name."""
    return plugin_name(sys.modules["__main__"]) if name == "__main__" and "__main__" in sys.modules else name


def factory_name(factory: Any) -> str:
    """Where a component factory's code lives (``module.qualname``, a partial's function), the same in
    every session whatever name its plugin is loaded under."""
    function = getattr(factory, "func", factory)  # functools.partial
    qualname = getattr(function, "__qualname__", type(function).__qualname__)
    return f"{module_name(getattr(function, '__module__', None) or '?')}.{qualname}"


def package_of(plugin: Any) -> str | None:
    """The installed distribution holding a plugin's code (a module, or an object's class), with its version
    (``gantk-wgan 0.1.0``): the package that provides the parts the plugin registers, whoever wrote their code (a
    plugin may register gantk's own classes under new names); ``None`` for a plugin that no installed distribution
    holds (a script, a test)."""
    module = plugin.__name__ if isinstance(plugin, types.ModuleType) else getattr(plugin, "__module__", None)
    names = _distributions_of_modules().get((module or "").split(".")[0])
    return f"{names[0]} {importlib.metadata.version(names[0])}" if names else None


@functools.lru_cache(maxsize=1)
def _distributions_of_modules() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def same_provider(entry: Entry, recorded: dict[str, str]) -> bool:
    """Whether ``entry`` comes from the provider a checkpoint recorded (``{"plugin", "factory"}``; checkpoints
    of format 1 name the plugin only): the same plugin (an upgrade may move its code), or the same code
    (loaded under another plugin name)."""
    return entry.plugin == recorded["plugin"] or factory_name(entry.factory) == recorded.get("factory")
