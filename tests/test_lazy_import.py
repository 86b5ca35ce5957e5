"""Modules imported at first use: nothing before, the whole module for every thread after."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from gantk.lazy_import import LazyModule


def test_the_module_is_imported_at_the_first_attribute_read(tmp_path, monkeypatch):
    (tmp_path / "lazy_probe.py").write_text("VALUE = 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = LazyModule("lazy_probe")
    assert "lazy_probe" not in sys.modules
    assert module.VALUE == 3 and "lazy_probe" in sys.modules
    monkeypatch.setattr(sys.modules["lazy_probe"], "VALUE", 4)  # reads go to the module
    assert module.VALUE == 4


def test_a_thread_waits_for_the_module_another_thread_is_importing(tmp_path, monkeypatch):
    package = tmp_path / "slow_package"
    package.mkdir()  # its submodule is in sys.modules, whole, while the package itself is still being run
    (package / "__init__.py").write_text("import time\n\nfrom . import part\n\ntime.sleep(0.3)\nREADY = True\n")
    (package / "part.py").write_text("import slow_package\n\n\ndef ready():\n    return slow_package.READY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    part = LazyModule("slow_package.part")

    def ready_after(delay: float) -> bool:
        time.sleep(delay)  # the second thread reads once the first is inside the package's sleep
        return part.ready()

    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(ready_after, [0.0, 0.1])) == [True, True]


def test_the_command_line_starts_without_torchvision_or_kornia():
    script = ("import sys\nfrom gantk.cli import cli\nfrom gantk.plugins import default_components\n"
              "default_components().call_hook('gantk_register_commands', cli=cli)\n"
              "print(sorted(m for m in ('torchvision', 'kornia', 'matplotlib') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_importing_gantk_imports_torch_only_where_a_part_is_read():
    script = ("import sys\nimport gantk\nbefore = 'torch' in sys.modules\n"
              "print(before, gantk.objectives.PixelL1Loss.__name__, gantk.Objective.__name__, 'LossContext' in dir(gantk))")
    printed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert printed.split() == ["False", "PixelL1Loss", "Objective", "True"]
