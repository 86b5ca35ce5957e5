"""--keep-best: the model of the best validation score kept as best.pt."""

from __future__ import annotations

import csv
import math
import shutil
import types
import warnings

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli

from gantk.errors import GantkWarning, OptionError
from gantk.evaluate import evaluate, warn_if_selected_on
from gantk.inference import TrainedModel
from gantk.metrics import PixelScores, SegmentationScores
from gantk.metrics.ranking import HIGHER_IS_BETTER, improves, validation_score_names
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import checkpoint_path, save_checkpoint
from helpers import write_paired, write_segmentation

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, gen_opt={"ngf": 8}, disc_opt={"ndf": 8},
            val_every=1, checkpoint_every=1, keep_checkpoints=10)


def split_data(root, write, **options):
    for split in ("train", "test"):
        write(root / split, count=4, **options)
    return root


def validation_rows(run):
    with open(run / "validation.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def best_of(rows, score):
    """The step of the first row with the best ``score`` (a later equal one is no improvement)."""
    values = [float(row[f"val/{score}"]) for row in rows]
    best = max(values) if score in HIGHER_IS_BETTER else min(values)
    return int(rows[values.index(best)]["step"]), best


@pytest.mark.parametrize("recipe, write, score", [("pix2pix", write_paired, "l1"), ("seg", write_segmentation, "val/mean_iou")])
def test_best_pt_is_the_checkpoint_of_the_best_validation(tmp_path, monkeypatch, recipe, write, score):
    data = split_data(tmp_path / "data", write)
    config = TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), max_steps=5, keep_best=score, **TINY)
    run = Trainer(config, progress=False).fit()
    score = score.removeprefix("val/")
    step, value = best_of(validation_rows(run), score)
    best = torch.load(run / "best.pt", weights_only=True)
    assert (best["step"], best["best"]) == (step, {"score": score, "value": value, "split": "test"})
    same_step = torch.load(checkpoint_path(run, step), weights_only=True)
    assert best["system_state"].keys() == same_step["system_state"].keys()
    assert all(torch.equal(best["system_state"][key], same_step["system_state"][key]) for key in best["system_state"])
    with pytest.warns(GantkWarning, match=rf"best.pt was kept as the best of its run by val/{score} on split test of .*data, the "
                                          "split scored: these scores are of the images the model was chosen on"):
        scored = evaluate(run / "best.pt", data, device="cpu", eval_mode=True, progress=False)  # validation runs in eval mode
    assert scored["step"] == step and scored["metrics"][score] == pytest.approx(value, rel=1e-5)
    assert TrainedModel.load(run / "best.pt", device="cpu").step == step
    shutil.copytree(data, tmp_path / "copy")
    with warnings.catch_warnings(record=True) as caught:  # neither the training split, the last checkpoint nor other data
        warnings.simplefilter("always")
        evaluate(run / "best.pt", data, split="train", device="cpu", eval_mode=True, progress=False)
        evaluate(run, data, device="cpu", eval_mode=True, progress=False)
        evaluate(run / "best.pt", tmp_path / "copy", device="cpu", eval_mode=True, progress=False)
    assert caught and not [warning for warning in caught if "kept as the best" in str(warning.message)]
    monkeypatch.chdir(tmp_path)
    with pytest.warns(GantkWarning, match="kept as the best"):  # the same data, spelt otherwise
        evaluate(run / "best.pt", "data", device="cpu", eval_mode=True, progress=False)


def test_a_best_pt_scored_on_its_validation_split_is_warned_of_however_its_data_is_spelt(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    best = types.SimpleNamespace(checkpoint="run/best.pt", selected_by={"score": "l1", "value": 0.1, "split": "test"},
                                 trained_on="data")  # trained with the data named relative to the working directory
    for data in (tmp_path / "data", "~/data"):
        with pytest.warns(GantkWarning, match="kept as the best of its run by val/l1 on split test"):
            warn_if_selected_on(best, data, "test")


def test_keep_best_needs_validation_and_one_of_its_scores(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    with pytest.raises(OptionError, match="--keep-best l1 keeps the checkpoint with the best validation score, and there is no "
                                          "validation: add --val-every N"):
        TrainConfig(data=str(data), out=str(tmp_path / "a"), keep_best="l1").validate()
    config = TrainConfig(data=str(data), out=str(tmp_path / "b"), max_steps=2, keep_best="mean_iou", **TINY)
    with pytest.raises(OptionError, match="--keep-best mean_iou: validation gives no such score here; it gives l1, l2, rmse, psnr, ssim"):
        Trainer(config, progress=False).fit()
    assert not list((tmp_path / "b").glob("checkpoint-*.pt"))


def test_a_resumed_run_keeps_the_bar_of_its_best_pt(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=2, keep_best="l1", **TINY)
    run = Trainer(config, progress=False).fit()
    best = torch.load(run / "best.pt", weights_only=True)
    save_checkpoint(run / "best.pt", {**best, "best": {**best["best"], "value": -1.0}})  # a score no validation beats
    Trainer.resume(run, {"max_steps": 4}, progress=False).fit()
    kept = torch.load(run / "best.pt", weights_only=True)
    assert (kept["step"], kept["best"]["value"]) == (best["step"], -1.0)
    save_checkpoint(run / "best.pt", {**best, "best": {**best["best"], "score": "psnr", "value": 1e9}})  # another score: replaced
    with pytest.warns(GantkWarning, match="best.pt holds the model of the best validation psnr; with --keep-best l1 it is "
                                          "replaced at the next validation"):
        Trainer.resume(run, {"max_steps": 6}, progress=False).fit()
    kept = torch.load(run / "best.pt", weights_only=True)
    assert kept["best"]["score"] == "l1" and kept["step"] in (5, 6)


def test_a_best_pt_of_another_split_is_replaced_and_none_turns_keeping_off(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    run = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=2, keep_best="l1", **TINY), progress=False).fit()
    assert torch.load(run / "best.pt", weights_only=True)["best"]["split"] == "test"
    with pytest.warns(GantkWarning, match="best.pt holds the model of the best l1 on the split test, and the run now validates "
                                          "on train: it is replaced at the next validation"):
        Trainer.resume(run, {"max_steps": 3, "val_split": "train"}, progress=False).fit()
    kept = torch.load(run / "best.pt", weights_only=True)
    assert (kept["step"], kept["best"]["split"]) == (3, "train")
    trainer = Trainer.resume(run, {"max_steps": 4, "keep_best": "none"}, progress=False)
    with pytest.warns(GantkWarning, match="best.pt is kept as it is and no longer updated without --keep-best"):
        trainer.fit()
    assert trainer.config.keep_best is None and torch.load(run / "best.pt", weights_only=True)["step"] == 3


def test_val_every_none_turns_a_resumed_runs_validation_off_with_its_keep_best(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    run = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=2, keep_best="l1", **TINY), progress=False).fit()
    runner = CliRunner()
    result = runner.invoke(cli, ["train", "--resume", str(run), "--max-steps", "3", "--val-every", "none", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert [row["step"] for row in validation_rows(run)] == ["1", "2"]
    resumed = torch.load(checkpoint_path(run, 3), weights_only=True)["train_config"]
    assert (resumed["val_every"], resumed["keep_best"]) == (None, None)
    assert torch.load(run / "best.pt", weights_only=True)["step"] in (1, 2)
    Trainer.resume(run, {"max_steps": 4}, progress=False).fit()  # off until turned on again
    assert [row["step"] for row in validation_rows(run)] == ["1", "2"]
    validated = runner.invoke(cli, ["train", "--resume", str(run), "--val-every", "3", "--no-progress"])  # to score the last step
    assert f"the end of its schedule; its validation at that step is in {run / 'validation.csv'}; resume" in validated.output
    assert [row["step"] for row in validation_rows(run)] == ["1", "2", "4"]
    refused = runner.invoke(cli, ["train", "--resume", str(run), "--val-every", "none", "--keep-best", "l1"])
    assert "--keep-best l1 keeps the checkpoint with the best validation score, and there is no validation" in refused.output
    refused = runner.invoke(cli, ["train", "--resume", str(run), "--val-every", "0"])
    assert refused.exit_code == 2 and "0 is not a number of steps: use 1 or more, or none" in refused.output


def test_a_best_pt_of_steps_trained_again_is_replaced(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=4, keep_best="l1", **{**TINY, "checkpoint_every": 2})
    run = Trainer(config, progress=False).fit()
    (run / "checkpoint-00000004.pt").unlink()  # as if killed after step 4's validation, before its checkpoint
    best = torch.load(run / "best.pt", weights_only=True)
    save_checkpoint(run / "best.pt", {**best, "step": 4, "best": {**best["best"], "value": -1.0}})
    with pytest.warns(GantkWarning, match="best.pt is of step 4, after the checkpoint resumed \\(step 2\\), whose steps are trained again"):
        Trainer.resume(run, progress=False).fit()
    kept = torch.load(run / "best.pt", weights_only=True)
    assert kept["best"]["value"] != -1.0 and kept["step"] in (3, 4)


def test_a_kept_best_pt_is_never_lost_to_a_new_run(tmp_path):
    data = split_data(tmp_path / "data", write_paired)
    run = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=1, keep_best="l1", **TINY), progress=False).fit()
    for checkpoint in run.glob("checkpoint-*.pt"):  # as a run killed before its first checkpoint leaves it
        checkpoint.unlink()
    with pytest.raises(OptionError, match="stopped before its first checkpoint, so there is nothing to resume: .* Its best.pt "
                                          "is a model to translate, score or start from \\(--init-from\\); move it out"):
        Trainer.resume(run, progress=False)
    with pytest.raises(OptionError, match="holds best.pt, the best model an earlier run kept \\(--keep-best\\), which a new "
                                          "run would replace: move it out of the folder"):
        Trainer(TrainConfig(data=str(data), out=str(run), max_steps=1, **TINY), progress=False).fit()
    assert (run / "best.pt").is_file()
    with pytest.raises(OptionError, match="not the file .*best.pt; it holds the model alone \\(--keep-best\\); to train on "
                                          "from its weights, start a new run with --init-from"):
        Trainer.resume(run / "best.pt", progress=False)


def test_a_score_that_is_not_a_number_is_warned_of(tmp_path, monkeypatch):
    import gantk.train.run_validation as run_validation

    data = split_data(tmp_path / "data", write_paired)
    monkeypatch.setattr(run_validation, "validation_scores", lambda *args: {"val/l1": math.nan})
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=2, keep_best="l1", **TINY)
    with pytest.warns(GantkWarning, match="--keep-best l1: validation at step 1 gives l1 nan, which keeps no model") as seen:
        Trainer(config, progress=False).fit()
    assert len([w for w in seen if "keeps no model" in str(w.message)]) == 1 and not (tmp_path / "run" / "best.pt").exists()
    tiny = TrainConfig(data=str(data), out=str(tmp_path / "tiny"), max_steps=1, keep_best="ssim",
                       **{**TINY, "load_size": 10, "crop_size": 8, "disc": "pixel"})
    with pytest.raises(OptionError, match="--keep-best ssim: SSIM needs images of at least 11 px .* at --crop-size 8"):
        Trainer(tiny, progress=False).fit()


def test_keep_best_ssim_takes_a_crop_size_as_large_as_its_window(tmp_path):
    from gantk.metrics.pixel import SSIM_WINDOW

    data = split_data(tmp_path / "data", write_paired)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), keep_best="ssim", gen="resnet6",  # no depth to fit to 11 px
                         **{**TINY, "load_size": SSIM_WINDOW + 2, "crop_size": SSIM_WINDOW})
    Trainer(config, progress=False).open_data()  # refused below the window alone


def test_the_command_says_where_the_best_is_and_ablate_refuses_it(tmp_path):
    from click.testing import CliRunner

    from gantk.ablate import AblationError, load_grid, run_ablation
    from gantk.cli import cli

    data = split_data(tmp_path / "data", write_paired)
    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "2",
                                      "--val-every", "1", "--keep-best", "l1", "--load-size", "36", "--crop-size", "32",
                                      "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--workers", "0", "--no-progress"])
    assert result.exit_code == 0, result.output
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert f"best validation l1: {best['best']['value']:.4g} at step {best['step']}, kept as {tmp_path / 'run' / 'best.pt'}" \
        in result.output
    with pytest.raises(AblationError, match="keep_best among a study's settings: gantk ablate scores each cell's last checkpoint"):
        run_ablation(load_grid("table1"), data, tmp_path / "study", common={"keep_best": "l1"}, progress=False)


def test_improves_knows_which_way_is_better_and_never_takes_nan():
    assert improves("l1", 0.1, 0.2) and not improves("l1", 0.2, 0.1) and not improves("l1", 0.1, 0.1)
    assert improves("mean_iou", 0.6, 0.5) and not improves("mean_iou", 0.4, 0.5)
    assert improves("psnr", 1.0, None) and not improves("psnr", math.nan, None) and not improves("l1", math.nan, 1.0)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_the_score_names_are_those_validation_gives(num_classes):
    images = PixelScores()
    images.update(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    assert tuple(images.compute()) == validation_score_names(None)
    masks = SegmentationScores(num_classes)
    masks.update(torch.full((1, 1 if num_classes == 2 else num_classes, 4, 4), 0.5), torch.zeros(1, 4, 4, dtype=torch.long))
    floats = tuple(name for name, value in masks.compute().items() if isinstance(value, float))
    assert sorted(floats) == sorted(validation_score_names(num_classes))


def test_callbacks_see_the_validation_scores_at_validation_steps(tmp_path):
    seen = {}
    config = TrainConfig(data=str(split_data(tmp_path / "data", write_paired)), out=str(tmp_path / "run"), max_steps=4,
                         log_every=2, **{**TINY, "val_every": 3})
    Trainer(config, callbacks=[lambda trainer, step, logged: seen.update({step: logged})], progress=False).fit()
    rows = {int(row["step"]): row for row in validation_rows(tmp_path / "run")}
    assert sorted(rows) == [3, 4]
    for step in (3, 4):  # validated (and at 4, logged too)
        scores = {key: value for key, value in seen[step].items() if key.startswith("val/")}
        assert scores and scores == pytest.approx({key: float(value) for key, value in rows[step].items() if key in scores})
    assert seen[1] == {} and not any(key.startswith("val/") for key in seen[2])
