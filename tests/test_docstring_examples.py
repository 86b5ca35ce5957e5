"""Every example in gantk's docstrings runs and shows what it says."""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import gantk

MODULES = [info.name for info in pkgutil.walk_packages(gantk.__path__, "gantk.")]


def test_the_modules_are_found():
    assert {"gantk.nn", "gantk.registry", "gantk.data.transforms", "gantk.objectives.pixel"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module)  # failures are printed: pytest shows them
    assert result.failed == 0
    lines = inspect.getsource(module).splitlines()
    written = [line for line in lines if line.lstrip().startswith(">>> ") and "+SKIP" not in line]
    assert result.attempted == len(written)  # every example written is found and run
