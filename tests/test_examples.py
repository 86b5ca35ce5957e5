"""The example scripts run end to end at tiny sizes.

Each script runs in this process (``runpy``, as ``__main__``, with its own command line), which
spares an interpreter start-up and torch import per script; what runs is the file a user runs.
"""

from __future__ import annotations

import re
import runpy
import sys
from pathlib import Path

import pytest
import torch

from gantk.train.checkpoint import load_checkpoint
from gantk.train.config import read_config_file
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
    shown = capsys.readouterr()
    assert "translated" in shown.out and "translating" not in shown.err  # --quiet: no progress bar


def test_pix2pix_photos_explains_a_missing_photo_folder(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_example("pix2pix_photos.py", monkeypatch, tmp_path, "--photos", str(tmp_path / "nowhere"))
    assert exit_info.value.code == 2 and "pass one with --photos DIR" in capsys.readouterr().err


def test_averaged_generator(tmp_path, monkeypatch, capsys):
    run_example("averaged_generator.py", monkeypatch, tmp_path,
                "--steps", "3", "--size", "32", "--workers", "0", "--decay", "0.5", "--out", "ema-run")
    assert re.fullmatch(r"step 3, decay 0.5: test L1 of the averaged generator 0\.\d{4}, of the last weights 0\.\d{4}\n",
                        capsys.readouterr().out)
    assert read_config_file(tmp_path / "ema-run" / "config.toml")["ema_decay"] == 0.5
    state = load_checkpoint(tmp_path / "ema-run")["system_state"]
    assert state["average_updates"] == 3  # one per generator step
    averaged = {key.removeprefix("averaged.G."): value for key, value in state.items() if key.startswith("averaged.G.")}
    trained = {key.removeprefix("networks.G."): value for key, value in state.items() if key.startswith("networks.G.")}
    assert averaged.keys() == trained.keys()
    assert any(value.is_floating_point() and not torch.equal(value, trained[key]) for key, value in averaged.items())


def test_the_averaging_example_refuses_data_without_a_test_split_before_training(tmp_path, monkeypatch, capsys):
    from helpers import write_paired

    pairs = write_paired(tmp_path / "pairs" / "train")
    with pytest.raises(SystemExit) as exit_info:
        run_example("averaged_generator.py", monkeypatch, tmp_path, "--data", str(tmp_path / "pairs"), "--out", "ema-run")
    assert exit_info.value.code == 2 and "has no split 'test' (found: train)" in capsys.readouterr().err
    assert pairs.is_dir() and not (tmp_path / "ema-run").exists()


def test_an_average_with_no_memory_is_the_last_weights(tmp_path, monkeypatch):
    run_example("averaged_generator.py", monkeypatch, tmp_path,
                "--steps", "2", "--size", "32", "--workers", "0", "--decay", "0", "--out", "ema-run")
    state = load_checkpoint(tmp_path / "ema-run")["system_state"]
    averaged = {key.removeprefix("averaged.G."): value for key, value in state.items() if key.startswith("averaged.G.")}
    for key, value in averaged.items():
        torch.testing.assert_close(value, state[f"networks.G.{key}"])


def test_custom_objective_plugin(tmp_path, monkeypatch, capsys):
    run_example("custom_objective_plugin.py", monkeypatch, tmp_path,
                "--steps", "2", "--size", "32", "--workers", "0", "--out", "ssim-run")
    output = capsys.readouterr().out
    assert "objective 'ssim' from plugin" in output and "bce@1+l1@100+ssim@10" in output
    rows = read_metrics(tmp_path / "ssim-run" / "metrics.csv")
    assert rows[-1]["step"] == 2 and rows[-1]["G/ssim"] > 0


@pytest.mark.parametrize("name", sorted(path.name for path in EXAMPLES.glob("*.py")))
def test_an_example_run_as_a_script_reports_a_refused_setting_without_a_traceback(tmp_path, monkeypatch, capsys, name):
    import gantk.train

    def refuse(self, *args, **kwargs):
        raise gantk.errors.OptionError("a setting gantk refuses")

    monkeypatch.setattr(gantk.train.Trainer, "__init__", refuse)
    monkeypatch.setattr(gantk.data, "derive_pairs", lambda *a, **k: refuse(None))
    if name in ("pix2pix_photos.py", "cyclegan_unpaired.py", "segmentation_lovasz.py") and not SHARED_PHOTOS.parent.is_dir():
        pytest.skip(f"the example reads the shared data set {SHARED_PHOTOS.parent}, which is absent (it is not part of the repository)")
    with pytest.raises(SystemExit) as exit_info:
        run_example(name, monkeypatch, tmp_path, "--out", str(tmp_path / "run"))
    assert exit_info.value.code == "error: a setting gantk refuses"
