"""Warnings name the caller's line, not gantk's: the first frame outside gantk and what it calls through."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path

import pytest

import gantk.errors
from gantk.errors import GantkWarning
from gantk.plugins import load_components
from gantk.train import TrainConfig
from gantk.train.resolve import fit_generator_depth

WARNS = '''
import contextlib
import warnings

import click
import pluggy
import torch

from gantk.errors import GantkWarning, caller_stacklevel


def warn():
    warnings.warn("from inside", GantkWarning, stacklevel=caller_stacklevel())


def through():  # a second frame inside
    warn()


@contextlib.contextmanager
def warns_on_exit():
    yield
    warn()


class Items(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, index):
        warn()
        return index


class Hooks:
    @pluggy.HookspecMarker("inside")
    def event(self):
        """A hook."""


class Plugin:
    @pluggy.HookimplMarker("inside")
    def event(self):
        warn()


def hook():
    manager = pluggy.PluginManager("inside")
    manager.add_hookspecs(Hooks)
    manager.register(Plugin())
    manager.hook.event()


@click.command()
def command():
    warn()
'''


@pytest.fixture
def inside(tmp_path, monkeypatch):
    """A package ``inside`` whose frames count as gantk's; its module ``calls`` warns in several ways."""
    package = tmp_path / "inside"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "calls.py").write_text(WARNS)
    (package / "on_import.py").write_text("from inside.calls import through\n\nthrough()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(gantk.errors, "_PASSED_THROUGH", (*gantk.errors._PASSED_THROUGH, "inside"))
    yield tmp_path
    for name in [name for name in sys.modules if name == "inside" or name.startswith("inside.")]:
        del sys.modules[name]


def _caller_lines(tmp_path: Path, body: str) -> tuple[Path, list[int]]:
    """A module of the caller's running ``body``, and the lines of ``body`` marked ``# here``."""
    path = tmp_path / "caller.py"
    text = "import torch\nimport inside.calls as calls\n\n\ndef run():\n" + textwrap.indent(textwrap.dedent(body), "    ")
    path.write_text(text)
    return path, [number for number, line in enumerate(text.splitlines(), 1) if line.endswith("# here")]


@pytest.mark.parametrize("body", [
    "calls.warn()  # here\n",
    "calls.through()  # here\n",
    "with calls.warns_on_exit():  # here\n    pass\n",
    "for _ in torch.utils.data.DataLoader(calls.Items()):  # here\n    pass\n",
    "import inside.on_import  # here\n",
    "calls.hook()  # here\n",
    "calls.command.main([], standalone_mode=False)  # here\n",
])
def test_a_warning_names_the_line_that_called_into_gantk(inside, body):
    path, (line,) = _caller_lines(inside, body)
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace["run"]()
    assert [(Path(w.filename), w.lineno) for w in caught] == [(path, line)]


def test_gantks_own_warnings_name_the_callers_line():
    components = load_components(autoload=False)
    with pytest.warns(GantkWarning, match="bottleneck") as caught:
        fit_generator_depth(TrainConfig(data="x", gen="unet", crop_size=36), components)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, sys._getframe().f_lineno - 1)]
