"""gantk ablate: grids, a tiny two-cell study, and resuming it."""

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gantk.ablate import BUILTIN_GRIDS, AblationError, cell_config, load_grid, run_ablation, steps_text
from gantk.ablate.runner import check_study_dir
from gantk.cli import GantkGroup
from gantk.commands_eval import ablate_command
from gantk.errors import GantkError
from gantk.inference import TrainedModel
from gantk.metrics import fid as fid_module
from gantk.train import Trainer
from gantk.train.checkpoint import load_checkpoint
from gantk.train.interrupt import TrainingInterrupted
from helpers import write_paired, write_segmentation, write_stand_in_inception, write_unaligned

GRID = """
name = "tiny"
description = "L1 against L1+cGAN"
[common]
gen_opt = { ngf = 8 }
disc_opt = { ndf = 8 }
[[cells]]
name = "L1"
loss = "l1"
disc = "none"
[[cells]]
name = "L1+cGAN"
loss = "bce+l1"
"""
FLAGS = ["--max-steps", "2", "--batch-size", "2", "--load-size", "36", "--crop-size", "32", "--workers", "0", "--no-progress"]


@pytest.fixture
def study(tmp_path, monkeypatch):
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    return grid, write_paired(tmp_path / "pairs", count=4, size=40), tmp_path / "study"


def invoke(*args):
    return CliRunner().invoke(GantkGroup(commands={"ablate": ablate_command}), ["ablate", *map(str, args)])


def test_two_cell_study_then_rerun_skips(study, monkeypatch):
    grid, pairs, out = study
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 0, result.output
    assert result.output.count("has no splits, so its images serve every split") == 1  # checked for every cell, shown once
    for cell in ("l1", "l1+cgan"):
        saved = json.loads((out / cell / "eval.json").read_text())
        assert saved["step"] == 2 and (out / cell / "checkpoint-00000002.pt").is_file()
        assert saved["cell"]["train_config"]["batch_size"] == 2 and saved["batch_size"] == 1
    table = (out / "results.md").read_text()
    assert "| L1 | unet | none | `l1` |" in table and "patch70 (conditional)" in table and "unavailable fid" in table
    assert "; 2 training steps per cell;" in table
    assert "Settings of every cell: batch_size=2, crop_size=32, disc_opt={ndf=8}, gen_opt={ngf=8}, load_size=36, max_steps=2." \
        in table  # the grid's and the flags' (not how they run: --workers)
    assert [c["cell"]["name"] for c in json.loads((out / "results.json").read_text())["cells"]] == ["L1", "L1+cGAN"]
    assert (out / "metrics.png").is_file() and (out / "samples.png").is_file()

    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished cell was trained again"))
    again = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--log-every", "5", "--workers", "1")
    assert again.exit_code == 0, again.output  # how cells run (logging, workers) is not what they compute
    assert again.output.count("finished earlier, skipped") == 2


def test_a_cells_folder_is_its_name_made_a_safe_folder_name():
    from gantk.ablate.grids import Cell

    names = ("L1+cGAN", "lambda 100, instance norm", "../escape", "..")
    assert [Cell(name, {}).folder for name in names] == ["l1+cgan", "lambda-100-instance-norm", "escape", ""]


def test_cells_of_different_lengths_list_their_steps():
    results = [{"step": 300, "cell": {"name": "bce+l1"}}, {"step": 1500, "cell": {"name": "n_critic 5"}}]
    assert steps_text(results) == "training steps per cell: 300 (bce+l1), 1500 (n_critic 5)"
    assert steps_text([{"step": 1, "cell": {"name": "bce+l1"}}]) == "1 training step per cell"


def test_other_evaluation_settings_evaluate_again_without_training(study, monkeypatch):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a trained cell was trained again"))
    seeds = []
    seeded = TrainedModel.seeded
    monkeypatch.setattr(TrainedModel, "seeded", lambda self, seed, input_file: seeds.append((seed, input_file)) or seeded(self, seed, input_file))
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--eval-mode", "--eval-seed", "5")
    assert result.exit_code == 0, result.output
    assert result.output.count("trained earlier (step 2), scored with other evaluation settings or weights (or by an earlier gantk): evaluating again") == 2
    assert json.loads((out / "l1" / "eval.json").read_text())["mode"] == "eval"
    evaluated, sampled = [f"{i:03d}.png" for i in range(4)], ["000.png", "002.png", "003.png"]  # samples.png's rows
    assert [(seed, Path(name).name) for seed, name in seeds] == [(5, name) for name in evaluated * 2 + sampled * 2]  # each cell's
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--eval-mode", "--eval-seed", "5", "--eval-size",
                    "original")
    assert result.exit_code == 0 and result.output.count("evaluating again") == 2, result.output
    assert json.loads((out / "l1" / "eval.json").read_text())["size"] == "original"
    assert "evaluation mode: eval, scored at size original" in (out / "results.md").read_text()
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--eval-mode", "--eval-seed", "5")
    assert result.exit_code == 0 and result.output.count("evaluating again") == 2, result.output  # back at the crop size
    again = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--eval-mode", "--eval-seed", "5")
    assert again.output.count("finished earlier, skipped") == 2  # the crop size is not recorded: cells scored before keep theirs



def test_a_cell_evaluated_again_is_scored_at_its_studys_step_after_its_run_went_on(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    Trainer.resume(out / "l1", {"max_steps": 3}, progress=False).fit()  # gantk train --resume, outside the study
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--eval-mode")
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "l1" / "eval.json").read_text())
    assert saved["step"] == 2 and saved["checkpoint"].endswith("checkpoint-00000002.pt")


@pytest.mark.parametrize("scored_otherwise", [
    lambda evaluation: evaluation.pop("inception_resize"),  # as results of the earlier resize were saved
    lambda evaluation: evaluation.update(inception_sha1="0" * 40),  # as if scored with other weights (here: none)
    lambda evaluation: evaluation.pop("dropout_noise"),  # as results of noise drawn in order across the images were saved
])
def test_cells_scored_with_another_inception_network_or_noise_are_scored_again(study, monkeypatch, scored_otherwise):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    for cell in ("l1", "l1+cgan"):
        saved = json.loads((out / cell / "eval.json").read_text())
        assert saved["cell"]["evaluation"]["inception_sha1"] is None  # no weights: no FID
        scored_otherwise(saved["cell"]["evaluation"])
        (out / cell / "eval.json").write_text(json.dumps(saved))
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a trained cell was trained again"))
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 0 and result.output.count("evaluating again") == 2, result.output


def test_a_moved_study_reads_its_cells_where_they_are_now(study, monkeypatch):
    import shutil

    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    moved = out.with_name("moved")
    shutil.copytree(out, moved)
    shutil.rmtree(out)
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished cell was trained again"))
    result = invoke("--grid", grid, "--data", pairs, "--out", moved, *FLAGS)
    assert result.exit_code == 0 and result.output.count("finished earlier, skipped") == 2, result.output
    cells = json.loads((moved / "results.json").read_text())["cells"]
    assert [cell["checkpoint"] for cell in cells] == [str(moved / folder / "checkpoint-00000002.pt") for folder in ("l1", "l1+cgan")]


def test_changed_settings_of_a_finished_cell_are_refused(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    changed = [*FLAGS[:-1], "--lr", "0.001", "--no-progress"]
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *changed)
    assert result.exit_code == 1 and "other settings (--lr 0.0002 then, --lr 0.001 now)" in result.output
    other_data = write_paired(pairs.parent / "other", count=4, size=40)
    result = invoke("--grid", grid, "--data", other_data, "--out", out, *FLAGS)
    assert result.exit_code == 1 and f"other settings (--data {pairs} then, --data {other_data} now)" in result.output



def test_a_cell_saved_without_a_newer_setting_counts_it_as_its_default(study, monkeypatch):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("a finished cell was trained again"))
    for key in ("augment_on", "batch_size"):  # default-valued, then set by FLAGS
        for cell in ("l1", "l1+cgan"):  # as a version without the key would have saved it
            path = out / cell / "eval.json"
            saved = json.loads(path.read_text())
            del saved["cell"]["train_config"][key]
            path.write_text(json.dumps(saved))
        result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
        if key == "augment_on":
            assert result.exit_code == 0 and result.output.count("finished earlier, skipped") == 2, result.output
        else:
            assert result.exit_code == 1 and "other settings (no --batch-size then, --batch-size 2 now)" in result.output, result.output


class Interrupted(Exception):
    pass


def stop_at(step):
    def callback(trainer, current, logged):
        if current == step:
            raise Interrupted

    return callback


def interrupt_the_first_cell(study):
    """The study's grid, data, folder and common settings, with its first cell stopped after step 1."""
    grid, pairs, out = study
    loaded = load_grid(grid)
    common = {"max_steps": 2, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0, "checkpoint_every": 1}
    with pytest.raises(Interrupted):
        Trainer(cell_config(loaded, loaded.cells[0], pairs, out, common), progress=False, callbacks=[stop_at(1)]).fit()
    return loaded, pairs, out, common


def test_interrupted_cell_resumes(study):
    loaded, pairs, out, common = interrupt_the_first_cell(study)
    lines = []
    results = run_ablation(loaded, pairs, out, common=common, progress=False, log=lines.append)
    assert "[1/2] L1: continuing" in lines[0] and "step 1" in lines[0]
    assert [r["step"] for r in results] == [2, 2]


@pytest.mark.parametrize("stop, code", [(KeyboardInterrupt(), 130), (TrainingInterrupted(1, 15), 143)])
def test_an_interrupted_study_says_how_to_go_on(study, monkeypatch, stop, code):
    import gantk.ablate

    def interrupted(*args, **kwargs):
        raise stop

    monkeypatch.setattr(gantk.ablate, "run_ablation", interrupted)
    grid, pairs, out = study
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == code and "interrupted: run the same command again to go on with the study" in result.output


def test_a_cell_stopped_between_training_and_evaluation_is_said_to_be_so(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    (out / "l1" / "eval.json").unlink()
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 0 and "[1/2] L1: trained earlier (step 2), not evaluated yet" in result.output, result.output
    assert (out / "l1" / "eval.json").is_file()


def test_an_interrupted_cell_is_not_continued_with_other_settings(study):
    loaded, pairs, out, common = interrupt_the_first_cell(study)
    with pytest.raises(AblationError, match=r"^grid .*, cell 'L1' in .*l1 was run with other settings \(--lr 0.0002 then, --lr 0.001 now\); run the study with its "):
        run_ablation(loaded, pairs, out, common={**common, "lr": 1e-3}, progress=False)


def test_a_cell_finished_by_gantk_train_resume_is_evaluated_as_trained_by_the_study(study):
    loaded, pairs, out, common = interrupt_the_first_cell(study)
    Trainer.resume(out / "l1", progress=False).fit()  # records the data format it detected
    assert load_checkpoint(out / "l1")["train_config"]["data_format"] == "paired"
    lines = []
    run_ablation(loaded, pairs, out, common=common, progress=False, log=lines.append)
    assert lines[0] == "[1/2] L1: trained earlier (step 2), not evaluated yet"


def test_a_later_cell_trained_with_other_settings_stops_the_study_before_any_cell_trains(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    shutil.rmtree(out / "l1")
    (out / "l1").mkdir()
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS[:-1], "--lr", "0.001", "--no-progress")
    assert result.exit_code == 1 and "cell 'L1+cGAN'" in result.output and "(--lr 0.0002 then, --lr 0.001 now)" in result.output
    assert "training into" not in result.output and not any((out / "l1").iterdir())


def test_a_cell_whose_run_went_on_without_the_checkpoint_it_was_scored_at_is_refused(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    Trainer.resume(out / "l1", {"max_steps": 4, "checkpoint_every": 1, "keep_checkpoints": 1}, progress=False).fit()
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 1, result.output
    assert ("cell 'L1' in " in result.output and "was scored at step 2, and its run went on since (gantk train --resume, to "
            "step 4) without keeping the checkpoint of step 2" in result.output)


def test_an_interrupted_cell_with_a_damaged_checkpoint_is_refused_as_gantk_train_resume_refuses_it(study):
    loaded, pairs, out, common = interrupt_the_first_cell(study)
    (checkpoint,) = (out / "l1").glob("checkpoint-*.pt")
    payload = torch.load(checkpoint, weights_only=True)
    del payload["train_config"]
    torch.save(payload, checkpoint)
    with pytest.raises(AblationError, match=r"^grid .*, cell 'L1': checkpoint .*checkpoint-00000001.pt .*train_config"):
        run_ablation(loaded, pairs, out, common=common, progress=False)


def test_a_cell_whose_checkpoint_is_gone_trains_again(study):
    grid, pairs, out = study
    loaded = load_grid(grid)
    common = {"max_steps": 2, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0}
    run_ablation(loaded, pairs, out, common=common, progress=False)
    for checkpoint in (out / "l1").glob("checkpoint-*.pt"):
        checkpoint.unlink()
    lines = []
    run_ablation(loaded, pairs, out, common=common, progress=False, log=lines.append)
    assert lines[:2] == [f"[1/2] L1: training into {out / 'l1'}", "[1/2] L1: evaluating"]


@pytest.mark.parametrize("text, message", [
    ('[[cells]]\nname = "a"\nlos = "l1"', "grid grid \\(.*grid.toml\\), cell 'a': unknown setting\\(s\\) los; a cell takes: .*crop_size, cuda_graph, data_format, decay_start, .*, n_critic, pool_size,"),
    ('[[cells]]\nname = "a"\n[[cells]]\nname = "A"', "clashing: a"),
    ('[[cells]]\nname = ".."\n[[cells]]\nname = "a"', "cell name\\(s\\) '..' leave no ASCII letters or digits to name a folder with; give each cell a name"),
    ('[[cells]]\nname = "a"\ndata = "x"', "set by gantk ablate"),
    ('[[cells]]\nname = "Results.JSON"', "a cell's folder may not take the name of a study file \\(.*\\), as cell\\(s\\) results.json would"),
    ('name = "x"', "needs \\[\\[cells\\]\\]"),
    ('[[cell]]\nname = "a"', "unknown top-level key"),
    ('common = 5\n[[cells]]\nname = "a"', "common must be a \\[common\\] table of settings, got 5"),
    ('name = "x', "grid file .*grid.toml is not valid TOML"),
])
def test_bad_grid_files(tmp_path, text, message):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    with pytest.raises(GantkError, match=message):
        load_grid(path)


@pytest.mark.parametrize("text", [
    json.dumps({"step": 1, "metrics": {"l1": 0.5}}),  # as gantk eval --json writes
    '{"step": 1, "metr',  # cut short
    json.dumps({"checkpoint": "c.pt", "step": "1", "metrics": {}, "unavailable": {}, "cell": {"name": "L1"}}),
])
def test_a_cell_folder_with_another_or_a_damaged_eval_json_is_evaluated_by_the_study(study, text):
    grid, pairs, out = study
    loaded = load_grid(grid)
    common = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0}
    Trainer(cell_config(loaded, loaded.cells[0], pairs, out, common), progress=False).fit()
    (out / loaded.cells[0].folder / "eval.json").write_text(text)
    results = run_ablation(loaded, pairs, out, common=common, progress=False, log=lambda line: None)
    assert results[0]["cell"]["name"] == "L1" and results[0]["step"] == 1


def test_a_grid_file_this_user_may_not_read_says_so(tmp_path, monkeypatch):
    path = tmp_path / "grid.toml"
    path.write_text('[[cells]]\nname = "a"')

    def refused(self, *args, **kwargs):  # as chmod 000 refuses
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_text", refused)
    with pytest.raises(GantkError, match=f"^cannot read grid file {re.escape(str(path))}: Permission denied; change its "
                                         r"permissions \(or its folder's\) so that this user may read it.$"):
        load_grid(path)


def test_unknown_grid_name():
    with pytest.raises(AblationError, match="neither a built-in grid"):
        load_grid("nothing-like-a-grid")
    with pytest.raises(AblationError, match=r"nor a TOML file; pass one of them \(did you mean table1\?\)\.$"):
        load_grid("tabel1")


@pytest.mark.parametrize("name", sorted(BUILTIN_GRIDS))
def test_builtin_grid_cells_resolve(name, tmp_path):
    grid = BUILTIN_GRIDS[name]
    for cell in grid.cells:
        Trainer(cell_config(grid, cell, tmp_path, tmp_path / "out", {"crop_size": 128}), progress=False)


def test_list_builtin_grids():
    result = invoke("--list")
    assert result.exit_code == 0 and "table1" in result.output and "L1+cGAN: loss=bce+l1@100" in result.output
    assert "seg-losses: segmentation objectives" in result.output and "  every cell: recipe=seg\n" in result.output


def test_the_segmentation_grid_trains_and_scores_every_cell(tmp_path):
    data = tmp_path / "seg"
    for split in ("train", "test"):
        write_segmentation(data / split, count=2, size=40, num_classes=3)
    result = invoke("--grid", "seg-losses", "--data", data, "--out", tmp_path / "study", *FLAGS, "--gen-opt", "ngf=8",
                    "--disc-opt", "ndf=8")
    assert result.exit_code == 0, result.output
    table = (tmp_path / "study" / "results.md").read_text()
    for cell in BUILTIN_GRIDS["seg-losses"].cells:
        assert f"| {cell.name} |" in table
        assert load_checkpoint(tmp_path / "study" / cell.folder)["system"]["recipe"] == "seg"
    assert "mean_iou" in table


def test_list_with_a_grid_lists_that_grid(study):
    grid = study[0]
    result = invoke("--list", "--grid", grid)
    assert result.exit_code == 0, result.output
    assert "table1" not in result.output and result.output.splitlines()[0].startswith(f"{load_grid(grid).name}:")


def test_a_bad_cell_is_reported_before_any_cell_trains(study):
    grid, pairs, out = study
    grid.write_text(GRID + '[[cells]]\nname = "broken"\nloss = "bce+"\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 1 and "cell 'broken'" in result.output and "empty term" in result.output
    assert not out.exists()
    grid.write_text(GRID)
    weights = invoke("--grid", grid, "--data", pairs, "--out", out, "--inception-weights", out.with_name("junk.pt"), *FLAGS)
    assert weights.exit_code == 1 and "junk.pt" in weights.output and not out.exists()


def test_grid_and_config_files_naming_an_inception_file_of_their_own_are_refused(study, tmp_path):
    grid, pairs, out = study
    weights = write_stand_in_inception(tmp_path / "stand-in.pt")  # not the reference network: code run on loading
    grid.write_text(GRID + f'[[cells]]\nname = "validated"\nval_every = 1\ninception_weights = "{weights}"\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    refusal = " ".join(result.output.split())
    assert result.exit_code == 1 and f"grid file {grid}, cell 'validated', names {weights}" in refusal and not out.exists()
    assert refusal.endswith("for gantk ablate, either also makes it the network every cell is evaluated with.")
    listing = invoke("--list", "--grid", grid)  # loads nothing
    assert listing.exit_code == 0 and f"validated: val_every=1, inception_weights={weights}" in listing.output
    grid.write_text(GRID.replace("[common]\n", f'[common]\ninception_weights = "{weights}"\n'))
    settings = tmp_path / "settings.toml"
    settings.write_text(f'val_every = 1\nval_fid = true\ninception_weights = "{weights}"\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--config", settings, *FLAGS)
    assert result.exit_code == 1 and f"config file {settings} names {weights}" in result.output and not out.exists()
    assert " ".join(result.output.split()).endswith("for gantk ablate, either also makes it the network every cell is evaluated with.")
    plain = tmp_path / "plain.toml"
    plain.write_text("log_every = 1\n")
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--config", plain, *FLAGS)
    assert result.exit_code == 1 and f"grid file {grid}, [common], names {weights}" in result.output
    assert "Settings were read" not in result.output  # the config file is not blamed
    split = tmp_path / "split"  # validation's held-out split
    for name in ("train", "test"):
        write_paired(split / name, count=4, size=40)
    result = invoke("--grid", grid, "--data", split, "--out", out, "--config", settings, "--inception-weights", weights, *FLAGS)
    assert result.exit_code == 0, result.output  # named by the user: evaluation's network, and validation's (grid and file)
    assert all((out / cell / "validation.csv").is_file() for cell in ("l1", "l1+cgan"))


def test_evaluation_options_reach_every_cell(study, monkeypatch):
    import gantk.ablate

    grid, pairs, out = study
    seen = {}
    monkeypatch.setattr(gantk.ablate, "run_ablation", lambda *args, eval_options, **kwargs: seen.update(eval_options))
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--eval-seed", "7", "--eval-mode", "--split", "train")
    assert result.exit_code == 0, result.output
    assert (seen["seed"], seen["eval_mode"], seen["split"]) == (7, True, "train")


@pytest.mark.parametrize("bad_cell, message", [
    ('disc = "patch286"', r"D \(patch286\) needs images of at least 96 px"),
    ('loss = "l1"', "has no adversarial term"),
    ("batch_size = 50", "the dataset has 4 samples per process, fewer than --batch-size 50: give a --batch-size of at most 4, or more data"),
])
def test_a_cell_that_cannot_train_is_reported_before_any_cell_trains(study, bad_cell, message):
    grid, pairs, out = study
    grid.write_text(GRID + f'[[cells]]\nname = "bad"\n{bad_cell}\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 1 and f"Error: grid tiny ({grid}), cell 'bad': " in result.output
    assert re.search(message, result.output) and not out.exists()


def test_data_that_cannot_be_evaluated_is_reported_before_training(study, tmp_path):
    grid, _, out = study
    grid.write_text('[[cells]]\nname = "cycle"\nloss = "lsgan+cycle@10"\n')
    unaligned = write_unaligned(tmp_path / "unaligned")  # a train split only
    result = invoke("--grid", grid, "--data", unaligned, "--out", out, "--recipe", "cyclegan", *FLAGS)
    assert result.exit_code == 1 and "cell 'cycle': dataset" in result.output and "has no split 'test'" in result.output
    assert not out.exists()


def test_a_study_on_unpaired_data_without_inception_weights_is_refused_before_training(study, tmp_path, monkeypatch):
    grid, _, out = study
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    grid.write_text('[[cells]]\nname = "cycle"\nloss = "lsgan+cycle@10"\n')
    unaligned = write_unaligned(tmp_path / "unaligned", count_a=6, count_b=6)
    result = invoke("--grid", grid, "--data", unaligned, "--out", out, "--recipe", "cyclegan", "--split", "train", *FLAGS)
    assert result.exit_code == 1 and "cell 'cycle': unpaired data such as" in result.output and "need InceptionV3 weights" in result.output
    assert not out.exists()


def test_a_study_on_unpaired_data_compares_its_cells_by_their_outputs_distribution(study, tmp_path):
    grid, _, out = study
    grid.write_text('[[cells]]\nname = "cycle"\nloss = "lsgan+cycle@10"\n')
    unaligned = write_unaligned(tmp_path / "unaligned", count_a=6, count_b=6)
    weights = write_stand_in_inception(tmp_path / "stand-in.pt")
    result = invoke("--grid", grid, "--data", unaligned, "--out", out, "--recipe", "cyclegan", "--split", "train",
                    "--inception-weights", weights, *FLAGS)
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "cycle" / "eval.json").read_text())
    assert {"fid", "kid", "precision", "recall"} <= saved["metrics"].keys() and "l1" not in saved["metrics"]
    assert "| fid |" in (out / "results.md").read_text().replace("fid ↓", "fid") and (out / "samples.png").is_file()
    assert "(split train, 6 images, 6 of them trained on: not held-out scores)" in (out / "results.md").read_text()


def test_a_study_validates_its_data_once_before_training_and_evaluates_in_its_format(study, tmp_path, monkeypatch):
    import torch

    from gantk.ablate import run_ablation
    from gantk.data.io import write_png
    from gantk.train import run_data

    grid, _, out = study
    wide = tmp_path / "wide"  # A|B images of 40x32 halves: not 2:1, so the format must be named
    for split in ("train", "test"):
        for i in range(4):
            write_png(torch.full((3, 32, 80), 20 * i, dtype=torch.uint8), wide / split / f"{i}.png")
    checks = []
    check = run_data.check_dataset
    monkeypatch.setattr(run_data, "check_dataset", lambda *args, **kwargs: checks.append(args) or check(*args, **kwargs))
    common = {"data_format": "aligned", "max_steps": 1, "batch_size": 2, "load_size": 32, "crop_size": 32, "workers": 0,
              "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}}
    results = run_ablation(load_grid(str(grid)), wide, out, common=common, progress=False, log=lambda line: None)
    assert len(checks) == 3  # once before training, then once per cell's training
    assert [r["data_format"] for r in results] == ["aligned", "aligned"] and (out / "samples.png").is_file()


def test_each_cell_is_evaluated_on_the_training_device_and_config_tables_merge_with_flags(study, monkeypatch):
    import gantk.ablate.runner as runner

    grid, pairs, out = study
    seen, evaluate = [], runner.evaluate
    monkeypatch.setattr(runner, "evaluate", lambda *args, **options: seen.append(options["device"]) or evaluate(*args, **options))
    config = out.parent / "common.toml"
    config.write_text('[gen_opt]\nngf = 4\nnorm = "instance"\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--device", "cpu", "--config", config, "--gen-opt", "ngf=8",
                    "--decay-start", "0.25", "--lr-schedule", "cosine", "--warmup-steps", "1", *FLAGS)
    assert result.exit_code == 0, result.output
    assert seen == ["cpu", "cpu"]
    cells = json.loads((out / "results.json").read_text())["cells"]
    schedules = {(c["cell"]["train_config"]["decay_start"], c["cell"]["train_config"]["lr_schedule"],
                  c["cell"]["train_config"]["warmup_steps"]) for c in cells}
    assert schedules == {(0.25, "cosine", 1)}
    assert all(cell["cell"]["train_config"]["gen_opt"]["norm"] == "instance" for cell in cells)  # the file's, kept
    assert all(cell["cell"]["train_config"]["gen_opt"]["ngf"] == 8 for cell in cells)  # the flag's, over the file's


def test_shared_objective_options_reach_the_cells_whose_spec_has_their_term(tmp_path):
    grid = BUILTIN_GRIDS["seg-losses"]
    common = {"loss_opt": {"ce": {"class_weights": [0.5, 1.0, 2.0]}, "focal": {"gamma": 1.0}}}
    for cell in grid.cells:
        options = cell_config(grid, cell, tmp_path, tmp_path / "out", common).loss_opt
        assert ("ce" in options) == ("ce" in cell.settings["loss"].split("+")), cell.name
        assert ("focal" in options) == (cell.settings["loss"] == "focal"), cell.name
    gan = load_grid_text(tmp_path, GRID + '[cells.loss_opt.bce]\nreal_label = 0.9\n')  # a cell's own option stays
    assert cell_config(gan, gan.cells[1], tmp_path, tmp_path / "out", {"loss_opt": {"l1": {}}}).loss_opt == {
        "bce": {"real_label": 0.9}, "l1": {}}


def load_grid_text(tmp_path, text):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return load_grid(path)


def test_the_recipe_spec_of_a_cell_without_its_own_counts_for_shared_objective_options(tmp_path):
    grid = load_grid_text(tmp_path, '[[cells]]\nname = "recipe"\n[[cells]]\nname = "seg"\nrecipe = "seg"\n')
    common = {"loss_opt": {"bce": {"real_label": 0.9}, "lovasz": {}}}
    assert cell_config(grid, grid.cells[0], tmp_path, tmp_path / "out", common).loss_opt == {"bce": {"real_label": 0.9}}
    assert cell_config(grid, grid.cells[1], tmp_path, tmp_path / "out", common).loss_opt == {"lovasz": {}}


def test_class_weights_for_the_ce_cells_of_the_segmentation_grid(tmp_path):
    data = tmp_path / "seg"
    for split in ("train", "test"):
        write_segmentation(data / split, count=2, size=40, num_classes=3)
    result = invoke("--grid", "seg-losses", "--data", data, "--out", tmp_path / "study", *FLAGS, "--gen-opt", "ngf=8",
                    "--disc-opt", "ndf=8", "--loss-opt", "ce.class_weights=[1,2,3]")
    assert result.exit_code == 0, result.output
    for cell in BUILTIN_GRIDS["seg-losses"].cells:
        options = load_checkpoint(tmp_path / "study" / cell.folder)["system"]["loss_opt"]
        assert options == ({"ce": {"class_weights": [1, 2, 3]}} if "ce" in cell.settings["loss"] else {}), cell.name


def test_shared_objective_options_no_cell_uses_are_refused_before_training(study):
    grid, pairs, out = study
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS, "--loss-opt", "lsgan.real_label=0.9")
    assert result.exit_code != 0 and not out.exists()
    assert "objective options for 'lsgan' (--loss-opt or loss_opt), a term no cell's objective has (the cells use bce, l1)" in result.output


def test_a_cell_folder_of_other_files_and_unknown_evaluation_options_are_refused_before_any_cell_trains(study):
    grid, pairs, out = study
    (out / "l1+cgan").mkdir(parents=True)
    (out / "l1+cgan" / "notes.txt").write_text("mine")
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 1 and "cell 'L1+cGAN': --out" in result.output and "(notes.txt)" in result.output
    assert not (out / "l1").exists()
    with pytest.raises(AblationError, match=r"eval_options splt: not options of gantk.evaluate.evaluate"):
        run_ablation(load_grid(str(grid)), pairs, out, eval_options={"splt": "test"})
    config = out.with_name("run.toml")
    config.write_text(f'data = "{pairs}"\nmax_steps = 2\n')
    refused = invoke("--grid", grid, "--data", pairs, "--out", out, "--config", config)
    assert refused.exit_code == 1 and "data among the settings every cell shares: a study takes them as its data and out" \
        in refused.output and str(config) in refused.output


def test_a_study_folder_of_another_grid_is_not_written_over(study):
    grid, pairs, out = study
    assert invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS).exit_code == 0
    grid.write_text(GRID.replace('name = "tiny"', 'name = "other"'))
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code == 1 and f"--out {out} holds the study of grid tiny, whose results grid other would replace" \
        in " ".join(result.output.split())


def test_a_study_is_not_written_into_a_folder_of_other_files(study):
    grid, pairs, out = study
    out.mkdir()
    (out / "photo.jpg").write_bytes(b"jpeg")
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"--out {out} holds files that are not a gantk ablate study's (photo.jpg); choose a new" in result.output
    assert [p.name for p in out.iterdir()] == ["photo.jpg"]


def test_an_earlier_study_folder_is_recognised(tmp_path):
    loaded, out = load_grid("table1"), tmp_path / "study"
    check_study_dir(loaded, out)  # a new folder
    out.mkdir()
    for name in ("results.md", "results.json", "metrics.png", "samples.png", ".results.md.writing+h+1+x.tmp"):
        (out / name).write_text("")
    (out / loaded.cells[0].folder).mkdir()  # a cell not yet trained or interrupted
    (out / "old-cell").mkdir()  # another grid's cell, run into this folder
    (out / "old-cell" / "config.toml").write_text("")
    check_study_dir(loaded, out)
    (out / "photos").mkdir()
    with pytest.raises(AblationError, match=r"holds files that are not a gantk ablate study's \(photos\)"):
        check_study_dir(loaded, out)


def test_a_cell_too_short_for_its_generator_steps_stops_the_study_before_any_training(study, tmp_path):
    _, pairs, out = study
    grid = tmp_path / "critic.toml"
    grid.write_text(GRID + 'n_critic = 5\n')  # the second cell's G steps once in 5 steps, in a study of 2
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *FLAGS)
    assert result.exit_code != 0 and "cell 'L1+cGAN': the G step runs once every 5 steps" in result.output
    assert not (out / "l1").exists()  # the first cell did not train


def test_a_cell_error_names_the_config_file_of_the_common_settings(study, tmp_path):
    grid, pairs, out = study
    config = tmp_path / "common.toml"
    config.write_text('gen = "nope"\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--config", config, *FLAGS)
    assert result.exit_code != 0 and "unknown generator 'nope'" in result.output
    assert f"Settings were read from config file {config}, then from the flags." in " ".join(result.output.split())


def test_values_that_are_not_finite_read_as_in_results_json():
    from gantk.ablate import markdown_table

    def cell(name, ssim):
        return {"cell": {"name": name}, "task": "image", "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"},
                "metrics": {"l1": 0.1, "ssim": ssim}}

    fresh = markdown_table([cell("a", float("nan")), cell("b", 0.5), cell("c", float("inf"))])
    assert fresh == markdown_table([cell("a", None), cell("b", 0.5), cell("c", None)])  # as saved, then read back
    assert "| a | unet | none | `l1` | 0.1 | n/a |" in fresh
    assert "| b | unet | none | `l1` | 0.1 | 0.5 |" in fresh  # the only score of its column: nothing to beat


def test_the_table_bolds_the_highest_of_a_score_and_the_lowest_of_an_error():
    from gantk.ablate import markdown_table

    def cell(name, task, metrics):
        return {"cell": {"name": name}, "task": task, "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"},
                "metrics": metrics}

    images = markdown_table([cell("a", "image", {"l1": 0.1, "ssim": 0.3}), cell("b", "image", {"l1": 0.2, "ssim": 0.6})])
    assert images.splitlines()[0].endswith("| l1 ↓ | ssim ↑ |")
    assert "| a | unet | none | `l1` | **0.1** | 0.3 |" in images and "| b | unet | none | `l1` | 0.2 | **0.6** |" in images
    masks = markdown_table([cell("a", "segmentation", {"mean_iou": 0.4, "rmse": 0.5}),
                            cell("b", "segmentation", {"mean_iou": 0.7, "rmse": 0.3})])
    assert masks.splitlines()[0].endswith("| mean_iou ↑ | rmse ↓ |")
    assert "| a | unet | none | `l1` | 0.4 | 0.5 |" in masks and "| b | unet | none | `l1` | **0.7** | **0.3** |" in masks


def test_cells_that_differ_in_settings_the_columns_do_not_show_list_them():
    from gantk.ablate import markdown_table

    def cell(name, settings, group=None):
        return {"cell": {"name": name, "group": group or name, "settings": {"loss": "lsgan", **settings}}, "task": "image",
                "model": {"gen": "resnet9", "disc": "patch70", "conditional": False, "loss": "lsgan"}, "metrics": {"l1": 0.1}}

    table = markdown_table([cell("CUT", {}), cell("FastCUT", {"recipe_opt": {"nce_weight": 10.0, "flip_equivariance": True}})])
    assert table.splitlines()[0] == "| cell | generator | discriminator | objective | other settings | l1 ↓ |"
    assert "| CUT | resnet9 | patch70 (unconditional) | `lsgan` | - | 0.1 |" in table
    assert "| FastCUT | resnet9 | patch70 (unconditional) | `lsgan` | recipe_opt={nce_weight=10.0, flip_equivariance=True} |" in table
    seeded = markdown_table([cell("L1 seed=0", {"seed": 0}, "L1"), cell("L1 seed=1", {"seed": 1}, "L1")])
    assert "other settings" not in seeded  # the seeds --seeds gives are the spread, not a setting


def test_the_header_says_how_cells_were_scored_and_which_cells_objective_options_reach(tmp_path, monkeypatch):
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    grid = load_grid_text(tmp_path, GRID)
    common = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0, "loss_opt": {"bce": {"real_label": 0.9}}}
    run_ablation(grid, write_paired(tmp_path / "pairs", count=4, size=40), tmp_path / "study", common=common, progress=False,
                 eval_options={"batch_size": 2, "seed": 3}, log=lambda line: None)
    table = (tmp_path / "study" / "results.md").read_text()
    assert ", in batches of 2, evaluation seed 3." in table
    assert "Objective options, for the cells whose objective has the term: bce={real_label=0.9}." in table
    assert "Settings of every cell: batch_size=2, crop_size=32, disc_opt={ndf=8}, gen_opt={ngf=8}, load_size=36, max_steps=1." \
        in table


def test_the_header_counts_each_option_of_a_table_apart_as_cells_merge_them(tmp_path, monkeypatch):
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    grid = load_grid_text(tmp_path, 'name = "norms"\n[common]\ngen_opt = { ngf = 8 }\ndisc_opt = { ndf = 8 }\n'
                                    '[[cells]]\nname = "batch"\n[[cells]]\nname = "instance"\ngen_opt = { norm = "instance" }\n'
                                    '[cells.loss_opt.bce]\nreal_label = 0.8\n')
    common = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0, "loss_opt": {"bce": {"real_label": 0.9}}}
    run_ablation(grid, write_paired(tmp_path / "pairs", count=4, size=40), tmp_path / "study", common=common, progress=False,
                 log=lambda line: None)
    table = (tmp_path / "study" / "results.md").read_text()
    assert "Settings of every cell: batch_size=2, crop_size=32, disc_opt={ndf=8}, gen_opt={ngf=8}, load_size=36, max_steps=1." \
        in table  # the instance cell's table keeps ngf=8
    assert "Objective options, for the cells whose objective has the term: bce={real_label=0.9}." in table
    assert "Set otherwise by their cells: loss_opt.bce.real_label: instance." in table


def test_a_cell_name_stays_in_its_table_cell():
    from gantk.ablate import markdown_table

    row = {"cell": {"name": "a | b\n<img src=x>"}, "task": "image", "metrics": {"l1": 0.1},
           "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"}}
    table = markdown_table([row])
    assert table.splitlines()[2] == "| a \\| b &lt;img src=x&gt; | unet | none | `l1` | 0.1 |" and len(table.splitlines()) == 3


def test_a_study_builds_its_cells_from_the_components_given(study):
    from torch import nn

    from gantk.ablate.grids import Cell, Grid
    from helpers import components_with_generator

    def plain(in_channels=3, out_channels=3):
        """A one-convolution generator, of a plugin loaded without installing it."""
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())

    _, pairs, out = study
    grid = Grid("plugin", (Cell("plain L1", {"gen": "plain", "gen_opt": {}, "loss": "l1", "disc": "none"}),))
    common = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0}
    results = run_ablation(grid, pairs, out, common=common, progress=False, log=lambda line: None,
                           components=components_with_generator("plain", plain))
    assert results[0]["model"]["gen"] == "plain" and (out / "samples.png").is_file()


def test_a_cell_whose_objective_has_parameters_to_train_is_refused_before_any_cell_trains(study):
    from gantk.ablate.grids import Cell, Grid
    from helpers import learned_objective_components

    _, pairs, out = study
    grid = Grid("learned", (Cell("L1", {"loss": "l1", "disc": "none"}), Cell("learned", {"loss": "learned", "disc": "none"})))
    common = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0, "gen_opt": {"ngf": 8}}
    with pytest.raises(AblationError, match=r"cell 'learned': objective.objectives.learned.scale take gradients, but no phase"):
        run_ablation(grid, pairs, out, common=common, progress=False, log=lambda line: None,
                     components=learned_objective_components())
    assert not (out / "l1").exists()


def test_a_cell_length_in_epochs_wins_over_common_steps(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[common]\nmax_steps = 5\n[[cells]]\nname = "epochs"\nepochs = 1\n[[cells]]\nname = "steps"\n')
    loaded = load_grid(grid)
    configs = [cell_config(loaded, cell, tmp_path, tmp_path / "out", {"max_steps": 2}) for cell in loaded.cells]
    assert [(c.epochs, c.max_steps) for c in configs] == [(1, None), (None, 2)]


def test_cells_that_keep_image_shapes_get_their_samples_and_their_own_real_features(tmp_path, monkeypatch):
    from gantk.evaluate import evaluate
    from test_resize_modes import write_wide_pairs

    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    data = write_wide_pairs(tmp_path / "pairs", [(40, 70), (40, 70), (40, 40)])
    weights = write_stand_in_inception(tmp_path / "stand-in.pt")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID.replace('disc = "none"', 'disc = "none"\nresize = "short-side"').replace(
        'loss = "bce+l1"', 'loss = "l1"\ndisc = "none"'))
    out = tmp_path / "study"
    result = invoke("--grid", grid, "--data", data, "--out", out, "--inception-weights", weights, *FLAGS)
    assert result.exit_code == 0, result.output
    assert (out / "samples.png").is_file()
    for cell, resize in (("l1", "short-side"), ("l1+cgan", "square")):  # the second one scored after the first
        saved = json.loads((out / cell / "eval.json").read_text())
        assert saved["cell"]["train_config"]["resize"] == resize
        alone = evaluate(out / cell, data, inception_weights=weights, progress=False)
        assert saved["metrics"]["fid"] == pytest.approx(alone["metrics"]["fid"], rel=1e-6)


def test_a_study_with_seeds_trains_each_cell_once_per_seed_and_reports_their_spread(study):
    grid, pairs, out = study
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--seeds", "3,5", *FLAGS)
    assert result.exit_code == 0, result.output
    runs = {folder: json.loads((out / folder / "eval.json").read_text())
            for folder in ("l1-seed-3", "l1-seed-5", "l1+cgan-seed-3", "l1+cgan-seed-5")}
    assert [run["cell"]["train_config"]["seed"] for run in runs.values()] == [3, 5, 3, 5]
    assert {run["cell"]["group"] for run in runs.values()} == {"L1", "L1+cGAN"}
    saved = json.loads((out / "results.json").read_text())
    assert len(saved["cells"]) == 4 and [entry["cell"] for entry in saved["summary"]] == ["L1", "L1+cGAN"]
    psnr = [runs[f"l1-seed-{seed}"]["metrics"]["psnr"] for seed in (3, 5)]
    spread = saved["summary"][0]["metrics"]["psnr"]
    assert spread["n"] == 2 and spread["mean"] == pytest.approx(sum(psnr) / 2)
    assert spread["sd"] == pytest.approx(abs(psnr[0] - psnr[1]) / 2 ** 0.5) and spread["sd"] > 0
    table = (out / "results.md").read_text()
    assert "each cell trained with seeds 3, 5: mean ± sample standard deviation over them" in table
    assert re.search(rf"\| L1 \| unet \| none \| `l1` \| .*\b{spread['mean']:.4g} ± {spread['sd']:.2g}\b", table)
    again = invoke("--grid", grid, "--data", pairs, "--out", out, "--seeds", "3,5", *FLAGS)
    assert again.exit_code == 0 and again.output.count("finished earlier, skipped") == 4


@pytest.mark.parametrize("args, text, message", [
    (["--seeds", "0,1", "--seed", "2"], GRID, "--seeds gives each cell its seeds, and --seed (or seed in --config) sets one too"),
    (["--seeds", "0,1"], GRID.replace('loss = "l1"', 'loss = "l1"\nseed = 4'), "and cell 'L1' sets one too"),
    (["--seeds", "1,1"], GRID, "--seeds must list different seeds (e.g. --seeds 0,1,2), got 1, 1."),
    (["--seeds", "1,x"], GRID, "Invalid value for '--seeds': 'x' is not an integer."),
])
def test_seeds_that_cannot_be_used_are_refused_before_any_cell_trains(study, args, text, message):
    grid, pairs, out = study
    grid.write_text(text)
    result = invoke("--grid", grid, "--data", pairs, "--out", out, *args, *FLAGS)
    assert result.exit_code != 0 and message in " ".join(result.output.split()) and not out.exists()


def test_the_table_of_seeded_cells_shows_each_mean_and_spread_and_bolds_the_best_mean():
    from gantk.ablate import markdown_table

    def run(group, seed, psnr):
        return {"cell": {"name": f"{group} seed={seed}", "group": group, "train_config": {"seed": seed}}, "task": "image",
                "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"}, "metrics": {"psnr": psnr}}

    table = markdown_table([run("a", 0, 10.0), run("a", 1, 12.0), run("b", 0, 11.5), run("b", 1, None)])
    assert table.splitlines()[2:] == ["| a | unet | none | `l1` | 11 ± 1.4 |", "| b | unet | none | `l1` | **11.5 (1 of 2)** |"]
    alike = markdown_table([run("a", seed, 0.1) for seed in range(3)] + [run("b", 0, 0.2)])
    assert "| a | unet | none | `l1` | 0.1 ± 0 |" in alike  # not a rounding error's 1.7e-17


def test_a_metric_some_cells_could_not_score_names_them(study, monkeypatch):
    from gantk.ablate import outputs

    results = [{"cell": {"name": name}, "task": "image", "metrics": {"l1": 0.1}, "step": 2, "split": "test", "images": 3,
                "mode": "eval", "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"},
                "unavailable": {"ssim": "too small."} if name != "b" else {}} for name in ("a", "b", "c")]
    monkeypatch.setattr(outputs, "plot_metrics", lambda *args: None)
    monkeypatch.setattr(outputs, "comparison_grid", lambda *args, **kwargs: None)
    grid, pairs, out = study
    out.mkdir()
    outputs.write_outputs(load_grid(grid), results, pairs, out)
    assert "- unavailable ssim (a, c): too small." in (out / "results.md").read_text()


def test_a_study_run_with_one_seed_says_which():
    from gantk.ablate.outputs import seeds_text

    def run(group, seed):
        return {"cell": {"name": f"{group} seed={seed}", "group": group, "train_config": {"seed": seed}}}

    assert seeds_text([run("a", 5), run("b", 5)]) == "each cell trained with seed 5"
    assert seeds_text([{"cell": {"name": "a", "group": "a"}}]) == ""  # run without --seeds


def test_the_averaging_grid_compares_the_last_weights_with_their_average(study):
    _, pairs, out = study
    result = invoke("--grid", "averaging", "--data", pairs, "--out", out, "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", *FLAGS)
    assert result.exit_code == 0, result.output
    cells = {cell["cell"]["name"]: cell for cell in json.loads((out / "results.json").read_text())["cells"]}
    assert cells["L1+cGAN"]["model"]["ema_decay"] is None and cells["L1+cGAN, EMA 0.999"]["model"]["ema_decay"] == 0.999


def test_a_shared_setting_every_cell_sets_itself_is_refused_and_one_some_cells_set_is_listed_with_them(study, tmp_path):
    _, pairs, out = study
    refused = invoke("--grid", "averaging", "--data", pairs, "--out", out, "--ema-decay", "0.5", *FLAGS)
    assert refused.exit_code != 0 and "grid averaging: every cell sets --ema-decay itself, so the value given for every cell " \
        "reaches none; drop it." in refused.output
    grid = tmp_path / "mixed.toml"
    grid.write_text('[[cells]]\nname = "inherit"\nloss = "l1"\ndisc = "none"\n'
                    '[[cells]]\nname = "own"\nloss = "l1"\ndisc = "none"\nema_decay = 0.9\n')
    result = invoke("--grid", grid, "--data", pairs, "--out", out, "--ema-decay", "0.5", "--gen-opt", "ngf=8", *FLAGS)
    assert result.exit_code == 0, result.output
    table = (out / "results.md").read_text()
    assert "Settings of the cells without one of their own: ema_decay=0.5." in table
    assert "Set otherwise by their cells: ema_decay: own." in table


def test_a_broken_split_to_score_on_is_reported_before_any_cell_trains(study, tmp_path):
    from gantk.data.io import write_png

    grid, _, out = study
    data = tmp_path / "split"
    write_paired(data / "train", count=4, size=40)
    write_paired(data / "test", count=2, size=40)
    write_png(torch.zeros(3, 48, 48, dtype=torch.uint8), data / "test" / "B" / "001.png")  # found by reading both images
    result = invoke("--grid", grid, "--data", data, "--out", out, "--split", "test", *FLAGS)
    assert result.exit_code == 1 and "cell 'L1'" in result.output and "test/B/001.png (48x48)" in result.output, result.output
    assert not out.exists()
