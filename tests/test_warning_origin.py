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
    text = ("import importlib\n\nimport torch\nimport inside.calls as calls\n\n\ndef run():\n"
            + textwrap.indent(textwrap.dedent(body), "    "))
    path.write_text(text)
    return path, [number for number, line in enumerate(text.splitlines(), 1) if line.endswith("# here")]


def warned_at(path: Path) -> list[tuple[Path, int]]:
    """Where the warnings that the module at ``path`` raises in its ``run()`` are attributed."""
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace["run"]()
    return [(Path(w.filename), w.lineno) for w in caught]


@pytest.mark.parametrize("body", [
    "calls.warn()  # here\n",
    "calls.through()  # here\n",
    "with calls.warns_on_exit():  # here\n    pass\n",
    "for _ in torch.utils.data.DataLoader(calls.Items()):  # here\n    pass\n",
    "import inside.on_import  # here\n",
    "importlib.import_module('inside.on_import')  # here\n",
    "calls.hook()  # here\n",
    "calls.command.main([], standalone_mode=False)  # here\n",
])
def test_a_warning_names_the_line_that_called_into_gantk(inside, body):
    path, (line,) = _caller_lines(inside, body)
    assert warned_at(path) == [(path, line)]


def test_gantks_own_warnings_name_the_callers_line():
    components = load_components(autoload=False)
    with pytest.warns(GantkWarning, match="bottleneck") as caught:
        fit_generator_depth(TrainConfig(data="x", gen="unet", crop_size=36), components)
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, sys._getframe().f_lineno - 1)]


def test_a_plugins_warning_names_the_line_that_called_into_gantk(tmp_path, monkeypatch):
    """A plugin names its own package, whose frames are then passed through as gantk's are."""
    package = tmp_path / "outside"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "calls.py").write_text(WARNS.replace("caller_stacklevel()", 'caller_stacklevel("outside")'))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "caller.py"
    path.write_text("import outside.calls as calls\n\n\ndef run():\n    calls.through()  # here\n    calls.hook()  # here\n")
    try:
        assert warned_at(path) == [(path, 5), (path, 6)]
    finally:
        for name in [name for name in sys.modules if name == "outside" or name.startswith("outside.")]:
            del sys.modules[name]


def test_a_single_file_plugin_passes_through_its_own_file_only(tmp_path, monkeypatch):
    """A plugin module beside the caller's script: the script's frames are still the caller's."""
    (tmp_path / "lone.py").write_text(WARNS.replace("caller_stacklevel()", 'caller_stacklevel("lone")'))
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "caller.py"
    path.write_text("import lone\n\n\ndef run():\n    lone.through()  # here\n")
    try:
        assert warned_at(path) == [(path, 5)]
    finally:
        sys.modules.pop("lone", None)


def test_a_caller_beside_a_passed_through_package_is_no_frame_of_it(inside):
    """A folder whose name starts with a package's (``inside_scripts`` beside ``inside``, as torchvision is beside
    torch) holds no frame of that package."""
    (inside / "inside_scripts").mkdir()
    path = inside / "inside_scripts" / "caller.py"
    path.write_text("import inside.calls as calls\n\n\ndef run():\n    calls.warn()  # here\n")
    assert warned_at(path) == [(path, 5)]


def test_a_package_in_a_folder_named_importlib_is_counted_as_warnings_counts_it(tmp_path, monkeypatch):
    """Only importlib's bootstrap frames go uncounted: a path holding "importlib" alone (a virtual environment named
    so, say) is counted."""
    folder = tmp_path / "importlib_site"
    (folder / "inside").mkdir(parents=True)
    (folder / "inside" / "__init__.py").write_text("")
    (folder / "inside" / "calls.py").write_text(WARNS)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(gantk.errors, "_PASSED_THROUGH", (*gantk.errors._PASSED_THROUGH, "inside"))
    try:
        path, (line,) = _caller_lines(tmp_path, "calls.through()  # here\n")
        assert warned_at(path) == [(path, line)]
    finally:
        for name in [name for name in sys.modules if name == "inside" or name.startswith("inside.")]:
            del sys.modules[name]


def test_a_warning_from_a_scripts_top_level_names_its_line(inside):
    """The script's own frame is the outermost: a warning called from its top level names that line."""
    import os
    import subprocess

    script = inside / "script.py"
    script.write_text("import gantk.errors\n\ngantk.errors._PASSED_THROUGH += ('inside',)\nimport inside.calls as calls\n"
                      "calls.warn()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(inside), os.environ.get("PYTHONPATH", "")])}
    ran = subprocess.run([sys.executable, "-W", "always", str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0 and f"{script}:5: GantkWarning: from inside" in ran.stderr, ran.stderr
