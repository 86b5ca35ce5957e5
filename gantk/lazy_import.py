"""Modules imported at their first use: torchvision and kornia take about two seconds to import on a
small CPU, which every command paid at start-up (``gantk --help`` included), though most never use them."""

from __future__ import annotations

import importlib
import threading
import types
from typing import Any

_IMPORTING = threading.Lock()  # a thread reading a module another thread is importing waits for all of it


class LazyModule(types.ModuleType):
    """Stands in for the module of its name, imported when an attribute is first read (each read goes
    to the module, so a test that patches the module itself is seen)."""

    def __getattr__(self, attribute: str) -> Any:
        module = self.__dict__.get("_module")
        if module is None:
            with _IMPORTING:
                module = importlib.import_module(self.__name__)
            self._module = module  # whole: later reads skip the lock and the import system
        return getattr(module, attribute)
