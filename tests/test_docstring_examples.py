"""Every example in gantk's docstrings runs and shows what it says."""

import doctest
import importlib
import pkgutil

import pytest

import gantk

MODULES = [info.name for info in pkgutil.walk_packages(gantk.__path__, "gantk.")]


def test_the_modules_are_found():
    assert {"gantk.nn", "gantk.registry", "gantk.data.transforms", "gantk.objectives.pixel"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))  # failures are printed: pytest shows them
    assert result.failed == 0
