"""The example scripts run end to end at tiny sizes.

Each script runs in this process (``runpy``, as ``__main__``, with its own command line), which
spares an interpreter start-up and torch import per script; what runs is the file a user runs.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from gantk.train.logs import read_metrics

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SHARED_PHOTOS = ROOT.parent / "shared" / "data" / "photos"


def run_example(name: str, monkeypatch, cwd: Path, *args: str) -> None:
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / name), *args])
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")


@pytest.mark.skipif(not SHARED_PHOTOS.is_dir(), reason=f"the shared photo set {SHARED_PHOTOS} is absent (it is not part of the repository)")
def test_pix2pix_photos(tmp_path, monkeypatch, capsys):
    out = tmp_path / "photos-run"
    run_example("pix2pix_photos.py", monkeypatch, tmp_path,
                "--steps", "2", "--size", "32", "--crops-per-photo", "1", "--workers", "0", "--quiet", "--out", str(out))
    tests = sorted(p.name for p in (out / "pairs" / "test" / "A").glob("*.png"))
    assert tests and sorted(p.name for p in (out / "translated").glob("*.png")) == tests
    assert (out / "run" / "checkpoint-00000002.pt").is_file() and (out / "comparison.png").is_file()
    assert "translated" in capsys.readouterr().out


def test_pix2pix_photos_explains_a_missing_photo_folder(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_example("pix2pix_photos.py", monkeypatch, tmp_path, "--photos", str(tmp_path / "nowhere"))
    assert exit_info.value.code == 2 and "pass one with --photos DIR" in capsys.readouterr().err


def test_custom_objective_plugin(tmp_path, monkeypatch, capsys):
    run_example("custom_objective_plugin.py", monkeypatch, tmp_path,
                "--steps", "2", "--size", "32", "--workers", "0", "--out", "ssim-run")
    output = capsys.readouterr().out
    assert "objective 'ssim' from plugin" in output and "bce@1+l1@100+ssim@10" in output
    rows = read_metrics(tmp_path / "ssim-run" / "metrics.csv")
    assert rows[-1]["step"] == 2 and rows[-1]["G/ssim"] > 0
