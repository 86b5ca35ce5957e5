"""Paths as users give them: one that begins with ``~`` names the home folder, in every command (also where the shell
leaves the ``~``, as in ``--out=~/runs/a``) and in the Python functions that stand for them, and nothing is written to a
folder named ``~``; an empty one (an unset shell variable's) is refused, not taken as the working folder."""

import json
import re

import click
import pytest
from click.testing import CliRunner

from gantk.ablate import run_ablation
from gantk.ablate.grids import load_grid
from gantk.cli import cli
from gantk.cli_options import UserPath
from gantk.errors import GantkWarning, OptionError
from gantk.data.derive import combine_folders, derive_pairs
from gantk.evaluate import evaluate
from gantk.export import export_onnx
from gantk.inference import TrainedModel
from gantk.metrics import fid
from gantk.train import TrainConfig, Trainer
from gantk.train.plots import plot_losses
from gantk.translate import translate
from helpers import smooth_image, write_paired
from torchvision.io import write_jpeg

TINY = ["--crop-size", "32", "--load-size", "36", "--batch-size", "2", "--workers", "0", "--gen-opt", "ngf=8",
        "--disc-opt", "ndf=8", "--no-progress"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder of its own holding a paired set (``~/pairs``), the working folder beside it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)  # evaluation without FID's network
    monkeypatch.setattr(fid, "fid_helper_weights", lambda: None)
    monkeypatch.chdir((tmp_path / "work").mkdir() or tmp_path / "work")
    write_paired(tmp_path / "home" / "pairs", count=4)
    yield tmp_path / "home"
    assert not list((tmp_path / "work").iterdir())  # no literal ~ folder, nor anything else, where the commands ran


def command(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_commands_expand_a_tilde_the_shell_left(home):
    command("train", "--data=~/pairs", "--out=~/runs/a", "--max-steps=2", "--checkpoint-every=2", *TINY)
    assert (home / "runs" / "a" / "checkpoint-00000002.pt").is_file()
    command("train", "--resume=~/runs/a", "--max-steps=4", "--checkpoint-every=2", "--no-progress")
    assert (home / "runs" / "a" / "checkpoint-00000004.pt").is_file()
    command("translate", "--checkpoint=~/runs/a", "~/pairs/A", "~/translated", "--no-progress")
    assert len(list((home / "translated").iterdir())) == 4
    command("eval", "--checkpoint=~/runs/a", "--data=~/pairs", "--split=train", "--json=~/scores.json",
            "--report=~/report", "--outputs=~/outputs", "--no-progress")
    assert json.loads((home / "scores.json").read_text())["outputs"] == str(home / "outputs")
    assert (home / "report" / "index.html").is_file() and len(list((home / "outputs").iterdir())) == 4
    command("plot", "~/runs/a", "--out=~/curves.png")
    assert (home / "curves.png").is_file()
    command("data", "combine", "~/pairs/A", "~/pairs/B", "~/combined")
    assert len(list((home / "combined").iterdir())) == 4


@pytest.mark.filterwarnings("ignore:on resuming, the learning rate rises")  # a longer run
def test_the_python_functions_expand_a_tilde(home):
    config = TrainConfig(data="~/pairs", out="~/runs/p", load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2,
                         checkpoint_every=2, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})
    Trainer(config, progress=False).fit()
    Trainer.resume("~/runs/p", {"max_steps": 4}, progress=False).fit()
    assert TrainedModel.load("~/runs/p").checkpoint == str(home / "runs" / "p" / "checkpoint-00000004.pt")
    translate("~/runs/p", "~/pairs/A", "~/translated", progress=False)
    assert len(list((home / "translated").iterdir())) == 4
    with pytest.warns(GantkWarning, match=f"^{re.escape(str(home / 'pairs'))} has no splits"):
        result = evaluate("~/runs/p", "~/pairs", split="train", report_dir="~/report", outputs_dir="~/outputs", progress=False)
    assert result["data"] == str(home / "pairs")
    assert (home / "report" / "index.html").is_file() and len(list((home / "outputs").iterdir())) == 4
    export_onnx("~/runs/p", "~/model.onnx", eval_mode=True)
    assert (home / "model.onnx").is_file()
    plot_losses("~/runs/p/metrics.csv", "~/curves.png")
    assert (home / "curves.png").is_file()
    combine_folders("~/pairs/A", "~/pairs/B", "~/combined")
    assert len(list((home / "combined").iterdir())) == 4
    (home / "photos").mkdir()
    for i in range(2):
        write_jpeg(smooth_image(i, 48), str(home / "photos" / f"{i}.jpg"))
    derive_pairs("~/photos", "~/derived", size=16, crops_per_photo=1, test_fraction=0)
    assert len(list((home / "derived" / "train" / "A").iterdir())) == 2
    (home / "grid.toml").write_text('name = "mine"\n[[cells]]\nname = "l1"\nloss = "l1"\n')
    assert load_grid("~/grid.toml").name == "mine"


def commands(group: click.Group) -> list[click.Command]:
    found: list[click.Command] = []
    for command in group.commands.values():
        found += commands(command) if isinstance(command, click.Group) else [command]
    return found


def test_every_path_option_expands_a_tilde():
    params = [(command.name, param) for command in commands(cli) for param in command.params if isinstance(param.type, click.Path)]
    assert len(params) > 20  # those of every command
    assert [(name, param.name) for name, param in params if not isinstance(param.type, UserPath)] == []


EMPTY = re.escape("is an empty path (as an unset shell variable gives), which would name the working folder: give a path.")


@pytest.mark.parametrize("args", [["train", "--out", ""], ["train", "--data", ""], ["train", "--init-from", ""],
                                  ["translate", "--checkpoint", "run", "in", ""], ["data", "combine", "a", "b", ""],
                                  ["eval", "--checkpoint", "run", "--data", "in", "--json", ""]])
def test_an_empty_path_is_refused_by_the_commands(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in ("run", "in", "a", "b"):
        (tmp_path / folder).mkdir()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert re.search(EMPTY, " ".join(result.output.split())), result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b", "in", "run"]


@pytest.mark.parametrize("key", ["out", "data", "init_from"])
def test_an_empty_path_is_refused_by_the_trainer(key, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OptionError, match=f"--{key.replace('_', '-')} {EMPTY}"):
        Trainer(TrainConfig(**{"out": "run", key: ""}), progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("call, name", [
    (lambda: translate("run", "", "out"), "inputs (INPUT_PATH)"),
    (lambda: translate("run", "in", ""), "output_dir (OUTPUT_DIR)"),
    (lambda: evaluate("run", ""), "data (--data)"),
    (lambda: evaluate("run", "in", report_dir=""), "report_dir (--report)"),
    (lambda: evaluate("run", "in", outputs_dir=""), "outputs_dir (--outputs)"),
    (lambda: export_onnx("run", ""), "out (OUT)"),
    (lambda: run_ablation(load_grid("table1"), "in", ""), "out (--out)"),
    (lambda: combine_folders("in", "in", ""), "out_dir (OUT)"),
    (lambda: derive_pairs("in", ""), "out_dir (OUT)"),
    (lambda: plot_losses("in/metrics.csv", ""), "out_png (--out)"),
    (lambda: TrainedModel.load(""), "checkpoint"),
    (lambda: Trainer.resume(""), "run_dir (--resume)"),
])
def test_an_empty_path_is_refused_by_the_python_functions(call, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    with pytest.raises(OptionError, match=f"^{re.escape(name)} {EMPTY}$"):
        call()
    assert [path.name for path in tmp_path.iterdir()] == ["in"] and not list((tmp_path / "in").iterdir())
