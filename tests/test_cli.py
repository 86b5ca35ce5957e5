"""The gantk command line as a user runs it (click's runner, no subprocess)."""

import errno
import importlib.metadata
import json
import platform
import re

import pytest
import torch
from click.testing import CliRunner
from torchvision.io import decode_image, write_png

from gantk import __version__
from gantk.cli import cli
from gantk.files import file_error_text
from gantk.cli_options import parse_value
from gantk.errors import OptionError
from gantk.train import TrainConfig
from gantk.train.config import to_toml
from helpers import components_with_generator, write_paired

TINY_FLAGS = ["--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--workers", "0", "--gen-opt", "ngf=8",
              "--disc-opt", "ndf=8", "--no-progress"]


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_list_every_kind_and_json(run):
    result = run("list")
    assert result.exit_code == 0
    for heading in ("generators:", "discriminators:", "objectives:", "data formats:", "recipes:"):
        assert heading in result.output
    assert "[gantk.discriminators]" in result.output
    listing = json.loads(run("list", "discriminators", "--json").output)
    builtin = [e["name"] for e in listing["components"]["discriminator"] if e["plugin"] == "gantk.discriminators"]
    assert builtin == ["image", "patch", "patch16", "patch286", "patch70", "pixel"]
    assert set(listing["plugins"]) >= {"gantk.generators", "gantk.discriminators", "gantk.objectives"}


def test_list_json_gives_each_plugin_failure_as_plugin_and_error(monkeypatch):
    import gantk.cli
    from gantk import hookimpl, load_components

    class Broken:
        @hookimpl
        def gantk_register_objectives(self, registry):
            raise RuntimeError("missing dependency xyz")

    monkeypatch.setattr(gantk.cli, "default_components", lambda: load_components(autoload=False, plugins=[Broken()]))
    listing = json.loads(CliRunner().invoke(cli, ["list", "--json"]).stdout)  # stderr: the failure warned of as well
    assert [(f["plugin"], "missing dependency xyz" in f["error"]) for f in listing["plugin_failures"]] == [
        (f"{__name__}.test_list_json_gives_each_plugin_failure_as_plugin_and_error.<locals>.Broken", True)]


def test_describe_shows_options_parameters_and_receptive_field(run):
    info = json.loads(run("describe", "discriminator", "patch70", "--json").output)
    assert info["parameters"] == 2_768_705 and info["receptive_field"] == 70
    assert info["options"]["ndf"] == 64 and info["plugin"] == "gantk.discriminators"
    text = run("describe", "generator", "unet").output
    assert "parameters: 54,413,955" in text and "num_downs = 8" in text and "size multiple: 256" in text
    built = json.loads(run("describe", "generator", "unet", "--opt", "num_downs=5", "--opt", "ngf=8", "--json").output)
    assert (built["built with"], built["size_multiple"], built["options"]["num_downs"]) == ({"num_downs": 5, "ngf": 8}, 32, 8)
    assert "built with: n_layers=1" in run("describe", "discriminator", "patch", "--opt", "n_layers=1").output
    assert "built with: norm='none'" in run("describe", "generator", "unet", "--opt", "norm=none").output  # as the factory takes it
    assert json.loads(run("describe", "discriminator", "patch", "--opt", "n_layers=1", "--json").output)["receptive_field"] == 16
    wrong = CliRunner().invoke(cli, ["describe", "generator", "unet", "--opt", "ngff=8"])
    assert wrong.exit_code == 1 and "its options (set with --opt KEY=VALUE) are:" in wrong.output and "'ngf' instead" in wrong.output
    recipe = CliRunner().invoke(cli, ["describe", "recipe", "cyclegan", "--opt", "weight_A=2"])
    assert recipe.exit_code == 1 and "a recipe is shown as it is (its own options, listed here, are given to gantk train with " \
                                     "--recipe-opt): drop --opt" in recipe.output
    assert "whole image" in run("describe", "discriminator", "image").output
    assert "min input size: 8" in run("describe", "generator", "resnet9").output
    formats = {name: json.loads(run("describe", "data_format", name, "--json").output)
               for name in ("segmentation", "single", "voc", "ade20k")}
    assert formats["voc"]["ignores"] == "mask value 255 unless --ignore-label names another"
    assert formats["ade20k"]["ignores"] == "mask value 0 unless --ignore-label names another"
    assert "ignores" not in formats["segmentation"]
    assert formats["segmentation"]["targets"] == "masks paired with each input"
    assert formats["single"]["targets"].startswith("none") and formats["single"]["detected"] == "only when no other format matches"
    assert formats["segmentation"]["detected"] == "by its layout"
    assert "scores: class masks (segmentation data)" in run("describe", "objective", "lovasz").output
    assert "scores: images or masks" in run("describe", "objective", "l1").output
    assert "adversarial: True" in run("describe", "objective", "bce").output  # a bool, not 1
    needs = {name: json.loads(run("describe", "objective", name, "--json").output) for name in ("l1", "cycle", "bce")}
    assert [(needs[n]["needs_pairs"], needs[n]["needs_unpaired"]) for n in ("l1", "cycle", "bce")] == [
        (True, False), (False, True), (False, False)]


def test_inputs_alone_are_refused_before_their_sizes_are_judged(tmp_path):
    data = write_paired(tmp_path / "pairs")  # small images, which the default --load-size would enlarge
    enlarged = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "1",
                                        "--gen-opt", "ngf=4", "--disc-opt", "ndf=4", "--workers", "0", "--no-progress"])
    assert "enlarges half the training images" in enlarged.output and "no --data" not in enlarged.output, enlarged.output
    alone = CliRunner().invoke(cli, ["train", "--data", str(data / "A"), "--out", str(tmp_path / "alone")])
    assert "holds inputs only" in alone.output and "enlarges" not in alone.output


def test_training_without_data_says_it_trains_on_the_demo_set_and_where_it_is(tmp_path):
    from gantk.data import demo_dataset_dir

    args = ["--out", str(tmp_path / "run"), "--crop-size", "32", "--load-size", "36", "--gen-opt", "ngf=4", "--disc-opt",
            "ndf=4", "--workers", "0", "--no-progress"]
    trained = CliRunner().invoke(cli, ["train", *args, "--max-steps", "1"])
    assert trained.exit_code == 0, trained.output
    assert (f"no --data: training on the embedded demo set (edges to photos, 64 px pairs cut from matplotlib's sample "
            f"photograph) in {demo_dataset_dir()}; give --data DIR to train on your own.") in trained.output
    resumed = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run"), "--max-steps", "2", "--no-progress"])
    assert resumed.exit_code == 0 and "no --data" not in resumed.output, resumed.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["describe", "generator", "unett"], "Did you mean 'unet'?"),
        (["describe", "widget", "x"], "unknown component kind 'widget'"),
        (["train", "--data", "{data}", "--loss", "bce+l3", "--out", "{out}"], "unknown objective 'l3'"),
        (["train", "--data", "{data}", "--gen-opt", "ngf", "--out", "{out}"], "expected KEY=VALUE"),
        (["train", "--data", "{data}", "--gen-opt", "depth=3", "--out", "{out}"], "no option 'depth'"),
        (["train", "--data", "{missing}", "--out", "{out}"], "missing"),
        (["train", "--data", "{data}", "--gen-opt", "ngf=abc", "--out", "{out}"], "generator 'unet' (plugin 'gantk.generators'): option ngf must be an integer (default 64), got 'abc'"),
        (["train", "--data", "{data}", "--gen-opt", "in_channels=5", "--out", "{out}"], "in_channels in --gen-opt is set from the data"),
        (["train", "--data", "{data}", "--config", "{config}", "--out", "{out}"], "run.toml: flip must be true or false, got 'no'"),
        (["ablate", "--grid", "table1", "--data", "{data}", "--config", "{config}", "--out", "{out}"], "run.toml: flip must be"),
        (["train", "--data", "{data}", "--beta1", "1.5", "--out", "{out}"], "1.5 is not in the range 0<=x<1"),
        (["train", "--data", "{data}/A", "--out", "{out}"], "which holds inputs only; training needs inputs and targets"),
        (["train", "--data", "{data}/A", "--out", "{out}"], "PAIRS --task edges` (or gray, blur, downscale) makes pairs"),
        (["train", "--data", "{data}/A/000.png", "--out", "{out}"], "`gantk data derive PHOTOS PAIRS --task edges` (or gray, blur, "
                                                                    "downscale) makes pairs to train on, from a folder PHOTOS of them."),
        (["train", "--recipe", "seg", "--data", "{data}", "--out", "{out}"], "the lovasz term scores class masks"),
    ],
)
def test_errors_are_one_clear_line_without_traceback(tmp_path, args, message):
    data = write_paired(tmp_path / "pairs")
    (tmp_path / "run.toml").write_text('flip = "no"\n')
    args = [a.format(data=data, out=tmp_path / "run", missing=tmp_path / "missing", config=tmp_path / "run.toml") for a in args]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_train_translate_plot_and_resume(tmp_path, run):
    data = write_paired(tmp_path / "pairs")
    out = tmp_path / "run"
    result = run("train", "--gen", "unet", "--disc", "patch70", "--loss", "bce+l1", "--data", data, "--out", out,
                 "--max-steps", 2, "--log-every", 1, *TINY_FLAGS)
    assert result.exit_code == 0, result.output
    assert (out / "checkpoint-00000002.pt").is_file()
    result = run("train", "--resume", out, "--max-steps", 3, "--no-progress")
    assert result.exit_code == 0 and "done: 3 steps" in result.output
    again = run("train", "--gen", "unet", "--disc", "patch70", "--loss", "bce+l1", "--data", data, "--out", out,  # the first
                "--max-steps", 4, "--log-every", 1, *TINY_FLAGS, "--resume", out)  # command again, with --resume
    assert again.exit_code == 0 and "done: 4 steps" in again.output, again.output
    finished = run("train", "--resume", out, "--no-progress")
    assert finished.exit_code == 0 and "nothing to train: the run in" in finished.output and "done" not in finished.output
    refused = CliRunner().invoke(cli, ["train", "--resume", str(out), "--gen", "resnet9"])
    assert refused.exit_code != 0 and "cannot change --gen (the run has --gen unet)" in refused.output
    (tmp_path / "other.toml").write_text("max_steps = 9\n")
    refused = CliRunner().invoke(cli, ["train", "--resume", str(out), "--config", str(tmp_path / "other.toml")])
    assert refused.exit_code != 0 and "cannot take --config" in refused.output
    (data / "A" / "notes.txt").write_text("not an image")
    (data / "A" / "more").mkdir()
    (data / "A" / "photo.ppm").write_bytes(b"P6 1 1 255 abc")  # an image gantk does not read: warned of once
    result = run("translate", "--checkpoint", out, data / "A", tmp_path / "translated")
    assert result.exit_code == 0 and len(list((tmp_path / "translated").glob("*.png"))) == 6
    assert "skipped 1 file(s) that are not .png, .jpg, .jpeg, .jpe, .jfif, .webp, .bmp, .tif, .tiff, .gif images and 1 subfolder(s) (notes.txt, more/)" in result.output
    assert result.output.count("photo.ppm") == 1 and "1 image(s) in formats gantk does not read are left out (photo.ppm)" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["translate", "--checkpoint", str(out), str(tmp_path / "empty"), str(tmp_path / "none")])
    assert result.exit_code == 1 and f"Error: cannot translate {tmp_path / 'empty'}:\n  - {tmp_path / 'empty'}: holds no images" in result.output
    assert "data check" not in result.output  # a check of a dataset: not what was run
    assert decode_image(str(tmp_path / "translated" / "000.png")).shape == (3, 32, 32)  # the crop size
    result = run("translate", "--checkpoint", out, "--size", "original", data / "A", tmp_path / "full")
    assert result.exit_code == 0 and decode_image(str(tmp_path / "full" / "000.png")).shape == (3, 40, 40)
    before = (data / "A" / "000.png").read_bytes()
    in_place = run("translate", "--checkpoint", out, data / "A", data / "A")
    assert in_place.exit_code != 0 and "would overwrite the input image(s)" in in_place.output
    assert (data / "A" / "000.png").read_bytes() == before
    assert run("plot", out).exit_code == 0 and (out / "loss_curves.png").is_file()
    assert run("plot", out).exit_code == 0  # its own curves are redrawn
    mistyped = run("plot", out, "--out", data / "A" / "000.png")
    assert mistyped.exit_code != 0 and "000.png already exists; pass --overwrite to replace it" in mistyped.output
    assert (data / "A" / "000.png").read_bytes() == before
    assert run("plot", out, "--out", tmp_path / "curves.png").exit_code == 0
    assert run("plot", out, "--out", tmp_path / "curves.png", "--overwrite").exit_code == 0


def test_objective_options_reach_the_objective(tmp_path, run):
    data = write_paired(tmp_path / "pairs")
    result = run("train", "--data", data, "--out", tmp_path / "run", "--loss", "bce+l1", "--loss-opt", "bce.real_label=0.9",
                 "--max-steps", 1, *TINY_FLAGS)
    assert result.exit_code == 0, result.output
    from gantk.train.checkpoint import system_from_checkpoint
    from gantk.train.config import read_config_file

    assert read_config_file(tmp_path / "run" / "config.toml")["loss_opt"] == {"bce": {"real_label": 0.9}}

    system, _ = system_from_checkpoint(tmp_path / "run")
    assert system.objective.adversarial.objective.real_label == 0.9
    bad = CliRunner().invoke(cli, ["train", "--data", str(data), "--loss-opt", "lambda=3"])
    assert bad.exit_code != 0 and "NAME.KEY=VALUE" in bad.output


def test_a_replacement_network_keeps_the_recipe_options_it_takes(tmp_path):
    from gantk.plugins import default_components
    from gantk.train import TrainConfig
    from gantk.train.resolve import resolve_config

    components = default_components()
    own = resolve_config(TrainConfig(data="x"), components)
    assert own.disc == "patch70" and own.disc_opt == {"norm": "batch"}
    cycle = resolve_config(TrainConfig(recipe="cyclegan", data="x", disc="patch16", gen="unet"), components)
    assert cycle.disc_opt == {"norm": "instance"} and cycle.gen_opt == {"norm": "instance", "dropout": 0.0}
    pix = resolve_config(TrainConfig(data="x", disc="pixel", gen="resnet6", gen_opt={"norm": "instance"}), components)
    assert pix.disc_opt == {"norm": "batch"} and pix.gen_opt == {"norm": "instance", "dropout": 0.5}
    demo = resolve_config(TrainConfig(gen="smp"), components)  # smp takes neither norm nor dropout
    assert demo.gen_opt == {} and demo.disc_opt == {"ndf": 32, "norm": "batch"}
    # A grid's common disc_opt reaches a cell without a discriminator: dropped, as the recipe's are.
    alone = resolve_config(TrainConfig(recipe="cyclegan", data="x", disc="none", disc_opt={"ndf": 8}, loss="l1"), components)
    assert alone.disc == "none" and alone.disc_opt == {}


def test_a_replacement_network_leaves_out_recipe_options_of_another_type(tmp_path):
    from gantk.train import TrainConfig
    from gantk.train.resolve import resolve_config

    def switched(in_channels=3, out_channels=3, dropout: bool = False, norm: str = "batch"):
        """Dropout on or off."""
        return torch.nn.Conv2d(in_channels, out_channels, 1)

    config = resolve_config(TrainConfig(data="x", gen="switched"), components_with_generator("switched", switched))
    assert config.gen_opt == {"norm": "batch"}  # pix2pix's dropout=0.5 is no bool


def test_train_from_toml_config_with_flag_override(tmp_path, run):
    data = write_paired(tmp_path / "pairs")
    config = tmp_path / "run.toml"
    config.write_text(f'data = "{data}"\nloss = "lsgan+l1@10"\nmax-steps = 1\nload_size = 36\ncrop_size = 32\n'
                      'batch_size = 2\nworkers = 0\n[gen_opt]\nngf = 8\n[disc_opt]\nndf = 8\n')
    result = run("train", "--config", config, "--out", tmp_path / "run", "--max-steps", 2, "--no-progress")
    assert result.exit_code == 0, result.output
    written = (tmp_path / "run" / "config.toml").read_text()
    assert 'loss = "lsgan+l1@10"' in written and "max_steps = 2" in written
    assert written.startswith(f"# written by gantk {__version__} (torch {torch.__version__}, Python {platform.python_version()}); ")


def test_a_runs_config_toml_trains_the_run_again_without_a_warning_of_its_own(tmp_path, run):
    data = write_paired(tmp_path / "pairs")
    args = ["--max-steps", 1, "--load-size", 36, "--crop-size", 32, "--workers", 0, "--no-progress"]
    for recipe in ("pix2pix", "cyclegan"):
        first = run("train", "--recipe", recipe, "--data", data, "--out", tmp_path / recipe, "--gen-opt", "ngf=8",
                    "--disc-opt", "ndf=8", *args)
        assert first.exit_code == 0, first.output
        again = run("train", "--config", tmp_path / recipe / "config.toml", "--out", tmp_path / f"{recipe}-again", "--no-progress")
        warned = [[line for line in result.output.splitlines() if line.startswith("warning")] for result in (first, again)]
        assert again.exit_code == 0 and warned[1] == warned[0], again.output  # the small crops' own warnings alone
        written = [[line for line in (tmp_path / name / "config.toml").read_text().splitlines() if not line.startswith("out =")]
                   for name in (recipe, f"{recipe}-again")]
        assert written[0] == written[1] and "pool_size = 50" in written[0]  # every run's: pix2pix, given it, is not warned


def test_a_config_file_nested_too_deeply_is_refused_in_a_line(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")  # deeper than Python's recursion limit
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and f"config file {config} nests its tables or lists too deeply to read." in result.output


@pytest.mark.parametrize("setting, named", [
    ("decay_start = 2.0", "--decay-start is a fraction"),  # a value TrainConfig checks itself
    ('gen = "nope"', "unknown generator 'nope'"),  # a value checked when the run is built
    ("crop_size = 31\nload_size = 33", "odd --crop-size (31)"),
    ("[gen_opt]\nngff = 3", "has no option 'ngff'"),  # checked when the networks are built, in fit
])
def test_train_setting_errors_name_the_config_file(tmp_path, setting, named):
    config = tmp_path / "run.toml"
    config.write_text("max_steps = 1\n" + setting + "\n")
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 1 and named in result.output and "Traceback" not in result.output
    assert f"Settings were read from config file {config}, then from the flags." in " ".join(result.output.split())


def test_a_setting_given_under_both_spellings_is_refused(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("max_steps = 2\nmax-steps = 3\n")  # one of them would win unseen
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"config file {config}: max_steps and max-steps are one setting given twice; keep one of them." in " ".join(result.output.split())
    grid = tmp_path / "grid.toml"
    grid.write_text('[common]\ncrop_size = 32\ncrop-size = 64\n[[cells]]\nname = "a"\nloss = "l1"\n')
    result = CliRunner().invoke(cli, ["ablate", "--list", "--grid", str(grid)])
    assert result.exit_code == 1 and f"grid file {grid}, [common]: crop_size and crop-size are one setting given twice" in " ".join(result.output.split())


def test_a_config_value_that_a_flag_replaces_is_not_checked(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("crop_size = 32\nload_size = 30\n")  # crop > load, but --load-size replaces it
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--load-size", "36", "--max-steps", "1",
                                      "--out", str(tmp_path / "run"), "--no-progress", "--workers", "0"])
    assert result.exit_code == 0, result.output


def test_data_commands(tmp_path, run):
    data = write_paired(tmp_path / "pairs")
    check = run("data", "check", data)
    assert check.exit_code == 0 and "paired" in check.output
    combined = run("data", "combine", data / "A", data / "B", tmp_path / "aligned")
    assert combined.exit_code == 0 and "--data-format aligned" not in combined.output  # square pairs: detected
    assert len(list((tmp_path / "aligned").iterdir())) == 6
    checked = json.loads(run("data", "check", tmp_path / "aligned", "--json").output)
    assert checked["format"] == "aligned" and checked["problems"] == []  # as a failed check's, empty
    (data / "B" / "000.png").unlink()
    broken = CliRunner().invoke(cli, ["data", "check", str(data), "--json"])
    assert broken.exit_code == 1 and "000" in json.loads(broken.stdout)["problems"][0]
    wide = tmp_path / "wide"
    for side in "AB":
        png_dir = wide / side
        png_dir.mkdir(parents=True)
        for name in ("a", "b"):
            write_png(torch.full((3, 6, 10), 128, dtype=torch.uint8), str(png_dir / f"{name}.png"))
    combined = run("data", "combine", wide / "A", wide / "B", tmp_path / "wide-aligned")
    assert combined.exit_code == 0 and (f"its pairs are not square, so no shape tells the aligned format: pass --data-format "
                                        f"aligned to the commands that read {tmp_path / 'wide-aligned'}") in combined.output
    assert json.loads(run("data", "check", tmp_path / "wide-aligned", "--data-format", "aligned", "--json").output)["problems"] == []
    (tmp_path / "empty").mkdir()
    unknown = CliRunner().invoke(cli, ["data", "check", str(tmp_path / "empty"), "--json"])
    assert unknown.exit_code == 1 and "matches no known layout" in json.loads(unknown.stdout)["problems"][0]


@pytest.mark.parametrize("text, value", [("32", 32), ("0.5", 0.5), ("true", True), ("None", None), ("null", None), ("resnet34", "resnet34")])
def test_option_values(text, value):
    assert parse_value(text) == value


def test_option_lists_take_stray_commas_and_name_an_item_without_its_key():
    import click

    from gantk.cli_options import parse_objective_options, parse_options

    assert parse_options(None, None, ("ngf=32,", "a=1,,b=x")) == {"ngf": 32, "a": 1, "b": "x"}
    assert parse_objective_options(None, None, ("wgan-gp.lambda_gp=5",)) == {"wgan-gp": {"lambda_gp": 5}}
    assert parse_objective_options(None, None, ("my.loss.weight=2",)) == {"my.loss": {"weight": 2}}  # a plugin's dotted name
    assert parse_objective_options(None, None, ("ce.class_weights=[0.5, 2],ce.x=[],focal.gamma=1",)) == {
        "ce": {"class_weights": [0.5, 2], "x": []}, "focal": {"gamma": 1}}  # lists keep their commas
    for parse, item, wanted in [(parse_options, "=5", "expected KEY=VALUE"), (parse_objective_options, ".lambda_gp=5", "expected NAME.KEY"),
                                (parse_objective_options, "bce.=1", "expected NAME.KEY")]:
        with pytest.raises(click.BadParameter, match=wanted):
            parse(None, None, (item,))
    with pytest.raises(click.BadParameter, match=r"ngf is given twice \(ngf=8 and 'ngf=16'\); give it once"):
        parse_options(None, None, ("ngf=8", "norm=batch,ngf=16"))


def test_describe_components_that_cannot_say_everything():
    import torch

    from gantk import hookimpl, load_components
    from gantk.describe import describe, jsonable

    def deep(in_channels=3, out_channels=3, *, depth):
        """A generator that needs its depth."""
        return torch.nn.Identity()

    def open_ended(in_channels=3, out_channels=3, width=8, **opts):
        """A generator that takes any option."""
        return torch.nn.Identity()

    def silent(in_channels=6):
        """A discriminator without a receptive_field."""
        return torch.nn.Conv2d(in_channels, 1, 3)

    def broken(in_channels=3, out_channels=3):
        """A generator whose optional dependency is missing."""
        raise RuntimeError("libfoo is not installed")

    class Unscored:
        """A loss that is no gantk.Objective."""

    class Plugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("deep", deep)
            registry.add("broken", broken)
            registry.add("open-ended", open_ended)

        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("unscored", Unscored)

        @hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("silent", silent)

    components = load_components(autoload=False, plugins=[Plugin()])
    described = describe("generator", "deep", components)
    assert described["default instance"] == "none: options without a default (depth); give them with --opt" and described["options"]["depth"] == "<required>"
    assert describe("objective", "unscored", components)["adversarial"] is False
    assert describe("generator", "open-ended", components)["other options"] == (
        "any (its factory takes **opts): a misspelt option reaches it unrefused")
    assert "other options" not in describe("generator", "unet", components)
    assert describe("data_format", "unaligned", components)["targets"].startswith(
        "none paired with inputs: gantk eval gives an image model's distribution metrics only")
    assert jsonable({"sizes": (1, (2, 3)), "kind": torch.nn.Identity}) == {"sizes": [1, [2, 3]], "kind": repr(torch.nn.Identity)}
    assert describe("discriminator", "silent", components)["receptive_field"].startswith("unknown")
    assert describe("discriminator", "patch70", components)["receptive_field"] == 70
    with pytest.raises(OptionError, match="generator 'broken' .* could not be built with no options: RuntimeError: libfoo"):
        describe("generator", "broken", components)


def test_a_failed_run_leaves_no_folder_and_a_foreign_folder_is_refused(tmp_path):
    data = write_paired(tmp_path / "pairs")
    failed = CliRunner().invoke(cli, ["train", "--data", str(data), "--loss", "l1@-1", "--out", str(tmp_path / "run")])
    assert failed.exit_code != 0 and not (tmp_path / "run").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(mine), *TINY_FLAGS, "--max-steps", "1"])
    assert refused.exit_code != 0 and "holds files that are not a gantk run's (notes.txt)" in refused.output
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    killed = tmp_path / "killed"  # a run killed while writing metrics.csv, before its first checkpoint
    killed.mkdir()
    (killed / ".metrics.csv.writing+host+1+x.tmp").write_text("step,")
    started = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(killed), *TINY_FLAGS, "--max-steps", "1"])
    assert started.exit_code == 0, started.output


def test_a_run_reusing_a_folder_left_before_a_checkpoint_keeps_none_of_its_outputs(tmp_path):
    data = write_paired(tmp_path / "pairs")
    left = tmp_path / "left"  # what a run killed after step 560, before its first checkpoint, wrote
    (left / "samples").mkdir(parents=True)
    (left / "samples" / "step-00000550.png").write_bytes(b"old")
    (left / "samples" / "mine.png").write_bytes(b"a file gantk did not write")
    (left / "validation.csv").write_text("step,val/l1\n560,0.3\n")
    (left / "eval.json").write_text("{}")
    (left / "config.toml").write_text(to_toml(TrainConfig(max_steps=1000).to_dict()))  # written as the run started
    started = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(left), *TINY_FLAGS, "--max-steps", "1",
                                       "--sample-every", "1"])
    assert started.exit_code == 0, started.output
    assert sorted(p.name for p in (left / "samples").iterdir()) == ["mine.png", "step-00000001.png"]
    assert not (left / "validation.csv").exists() and not (left / "eval.json").exists()
    linked, elsewhere = tmp_path / "linked", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "step-00000099.png").write_bytes(b"not the run's")
    linked.mkdir()
    (linked / "samples").symlink_to(elsewhere)
    started = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(linked), *TINY_FLAGS, "--max-steps", "1"])
    assert started.exit_code == 1 and "samples/ is a link to another folder" in started.output  # refused, nothing written
    assert [(p.name, p.read_bytes()) for p in elsewhere.iterdir()] == [("step-00000099.png", b"not the run's")]


def test_files_named_as_a_runs_without_its_settings_are_not_replaced(tmp_path):
    data = write_paired(tmp_path / "pairs")
    mine = tmp_path / "mine"  # a project of the user's, whose files have a run's names
    (mine / "samples").mkdir(parents=True)
    (mine / "samples" / "step-1.png").write_bytes(b"my figure")
    (mine / "metrics.csv").write_text("my numbers")
    for config in (None, "title = 'my project'\n", "not toml [", "recipe = 'pix2pix'\nlr = 0.001\n"):
        if config is not None:
            (mine / "config.toml").write_text(config)
        refused = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(mine), *TINY_FLAGS, "--max-steps", "1"])
        assert refused.exit_code != 0 and "holds files named as a gantk run's" in refused.output, refused.output
        assert "but no config.toml of the settings gantk writes" in " ".join(refused.output.split())
        assert (mine / "metrics.csv").read_text() == "my numbers" and (mine / "samples" / "step-1.png").read_bytes() == b"my figure"
    (mine / "config.toml").unlink()
    (mine / "config.toml").symlink_to(mine / "config.toml")  # a config.toml that cannot be read: a link to itself
    refused = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(mine), *TINY_FLAGS, "--max-steps", "1"])
    assert refused.exit_code == 1 and "holds files named as a gantk run's" in refused.output, refused.output


def test_a_runs_settings_are_read_only_from_a_config_toml_as_gantk_writes_it(tmp_path):
    import tomllib

    from gantk.train import run_files

    settings = TrainConfig(max_steps=1000).to_dict()
    assert run_files.WRITTEN_KEYS <= set(tomllib.loads(to_toml(settings)))  # none of them left out as None
    (tmp_path / "config.toml").write_text(to_toml(settings))
    assert run_files.read_settings(tmp_path)["max_steps"] == 1000
    for key in ("recipe", "out", "seed", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints"):  # each run's
        (tmp_path / "config.toml").write_text(to_toml({name: value for name, value in settings.items() if name != key}))
        assert run_files.read_settings(tmp_path) is None, key
    (tmp_path / "config.toml").write_bytes(to_toml(settings).encode() + b"# \xff\n")  # not UTF-8
    assert run_files.read_settings(tmp_path) is None
    (tmp_path / "config.toml").unlink()
    (tmp_path / "config.toml").symlink_to(tmp_path / "config.toml")  # unreadable
    assert run_files.read_settings(tmp_path) is None


def test_a_config_of_gantks_settings_and_one_of_its_own_is_not_taken_for_a_run_left_behind(tmp_path):
    import tomllib

    from gantk.train.run_files import WRITTEN_KEYS

    data = write_paired(tmp_path / "pairs")
    mine = tmp_path / "mine"  # a project of the user's, whose config.toml holds every key gantk writes, and a title
    (mine / "samples").mkdir(parents=True)
    (mine / "samples" / "step-1.png").write_bytes(b"my figure")
    (mine / "metrics.csv").write_text("my numbers")
    settings = to_toml(TrainConfig(max_steps=1000).to_dict())
    config = 'title = "x"\n' + settings  # before the tables, so a key of the file itself
    (mine / "config.toml").write_text(config)
    assert WRITTEN_KEYS < set(tomllib.loads(config)) and "title" in tomllib.loads(config)
    refused = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(mine), *TINY_FLAGS, "--max-steps", "1"])
    assert refused.exit_code != 0 and "holds files named as a gantk run's" in refused.output, refused.output
    assert "but no config.toml of the settings gantk writes" in " ".join(refused.output.split())
    assert (mine / "metrics.csv").read_text() == "my numbers" and (mine / "samples" / "step-1.png").read_bytes() == b"my figure"
    assert (mine / "config.toml").read_text() == config
    assert sorted(p.name for p in mine.iterdir()) == ["config.toml", "metrics.csv", "samples"]
    (mine / "config.toml").write_text(settings)  # the same settings without the title: a run left behind, replaced
    started = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(mine), *TINY_FLAGS, "--max-steps", "1"])
    assert started.exit_code == 0, started.output
    assert (mine / "metrics.csv").read_text() != "my numbers"


def test_an_unknown_setting_of_a_config_file_is_named_with_the_closest_one(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("max_step = 1\n")
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit) and "Traceback" not in result.output, result.output
    assert "unknown setting(s) max_step. Did you mean max_steps?" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()
    config.write_text(f"resume = '{tmp_path / 'run'}'\n")
    result = CliRunner().invoke(cli, ["train", "--config", str(config), "--no-progress"])
    assert "resume is not a setting of the run: give --resume DIR on the command line" in " ".join(result.output.split())


def test_a_file_system_error_on_a_given_path_is_one_line(run, tmp_path):
    from gantk.data.io import write_png

    for side in ("A", "B"):
        write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), tmp_path / side / "x.png")
    (tmp_path / "notes.txt").write_text("a file")
    result = run("data", "combine", tmp_path / "A", tmp_path / "B", tmp_path / "notes.txt" / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "notes.txt: File exists; it is in the way (a file where a folder is needed?)" in result.output
    error = NotADirectoryError(errno.ENOTDIR, "Not a directory", "notes.txt/out")
    assert file_error_text(error) == "notes.txt/out: Not a directory; a part of that path is a file, not a folder; move that file, or choose another path."
    refused = PermissionError(errno.EACCES, "Permission denied", "runs/a/config.toml")  # reading, writing, resuming alike
    assert file_error_text(refused) == ("runs/a/config.toml: Permission denied; change its permissions (or its folder's) so "
                                        "that this user may use it, or choose another location.")


def test_list_takes_a_kind_in_any_documented_spelling(run):
    for kind, header in [("data_format", "data formats:"), ("data-format", "data formats:"),
                         ("data-formats", "data formats:"), ("Generators", "generators:")]:
        assert run("list", kind).output.startswith(header), kind
    unknown = run("list", "decoder")
    assert unknown.exit_code == 1 and "unknown component kind 'decoder'" in unknown.output


def test_network_options_named_none_reach_the_networks(tmp_path):
    data = write_paired(tmp_path / "pairs")
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY_FLAGS, "--max-steps", "1", "--disc-opt", "norm=none"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert '[disc_opt]\nnorm = "none"\nndf = 8\n' in (tmp_path / "run" / "config.toml").read_text()


def test_under_torchrun_errors_name_their_process_and_only_the_first_shows_warnings(tmp_path, monkeypatch):
    import warnings

    from gantk.cli import _show_warning
    from gantk.errors import GantkWarning

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    result = CliRunner().invoke(cli, ["data", "check", str(tmp_path)])  # an empty folder
    assert result.exit_code == 1 and result.output.startswith("Error: [rank 1] cannot tell the format of dataset ")

    shown = []
    monkeypatch.setattr("click.echo", lambda message, err=False: shown.append(message))
    for rank in ("1", "0"):
        monkeypatch.setenv("RANK", rank)
        _show_warning(warnings.showwarning, set(), "slow", GantkWarning, "f.py", 1)
    assert shown == ["warning: slow"]


def test_the_cli_starts_without_importing_the_heavy_parts():
    """`gantk --help` and `gantk list` stay quick: training, data and smp are imported by the commands that use them."""
    import subprocess
    import sys

    heavy = ("gantk.train.trainer", "torchvision", "segmentation_models_pytorch", "matplotlib")
    code = f"import gantk.cli, sys; print([m for m in {heavy!r} if m in sys.modules])"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_python_m_gantk_is_the_command():
    import subprocess
    import sys

    listed = subprocess.run([sys.executable, "-m", "gantk", "list", "recipes"], capture_output=True, text=True, check=True)
    assert "pix2pix" in listed.stdout


def test_translate_passes_its_options_to_the_library(tmp_path, monkeypatch):
    import gantk.translate

    given = {}
    monkeypatch.setattr(gantk.translate, "translate", lambda *args, **options: given.update(options) or [])
    result = CliRunner().invoke(cli, ["translate", "--checkpoint", str(tmp_path), "--seed", "3", "--size", "native",
                                      "--no-progress", str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert given["seed"] == 3 and given["size"] == "native" and given["progress"] is False


def _choices(command, name: str) -> tuple[str, ...]:
    return tuple(next(param for param in command.params if param.name == name).type.choices)


def test_cli_choices_are_the_librarys():
    """The choices the commands offer are the ones the library takes."""
    from gantk.data.derive import TASKS
    from gantk.train.config import CHOICES
    from gantk.translate import TRANSLATE_SIZES

    assert _choices(cli.commands["translate"], "size") == TRANSLATE_SIZES
    assert _choices(cli.commands["data"].commands["derive"], "task") == TASKS
    for key, choices in CHOICES.items():
        assert _choices(cli.commands["train"], key) == choices, key
    assert _choices(cli.commands["translate"], "direction") == CHOICES["direction"]


@pytest.mark.parametrize("command", ["train", "translate", "eval", "ablate"])
def test_every_device_option_takes_a_gpu_number_and_names_a_wrong_device(command):
    option = next(param for param in cli.commands[command].params if param.name == "device")
    assert option.type.convert("cuda:1", option, None) == "cuda:1"
    assert [option.type.convert(name, option, None) for name in ("CPU", "Cuda:1")] == ["cpu", "cuda:1"]  # as the help spells them
    for wrong in ("gpu", "cuda:01", "cuda:\u0663"):  # the last, an Arabic-Indic digit
        result = CliRunner().invoke(cli, [command, "--device", wrong])
        assert result.exit_code == 2 and f"{wrong!r} is not one of auto, cpu, cuda or cuda:N (e.g. cuda:1)" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_training_on_a_numbered_gpu_without_cuda_is_a_clear_error(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--device", "cuda:1", *TINY_FLAGS])
    assert result.exit_code == 1 and "--device cuda:1 was asked for but PyTorch sees no CUDA device" in result.output


def test_a_compile_mode_without_compile_is_a_clear_error(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"),
                                      "--compile-mode", "reduce-overhead", *TINY_FLAGS])
    assert result.exit_code == 1 and "--compile-mode reduce-overhead is a mode of torch.compile, which is off: add --compile." in result.output
    assert not (tmp_path / "run").exists()


def test_derive_refuses_a_test_fraction_of_one(tmp_path):
    result = CliRunner().invoke(cli, ["data", "derive", str(tmp_path), str(tmp_path / "out"), "--task", "gray",
                                      "--test-fraction", "1"])
    assert result.exit_code == 2 and "--test-fraction" in result.output and "0<=x<1" in result.output


def test_an_interrupted_run_says_how_to_continue_it(tmp_path, monkeypatch):
    import signal

    from gantk.train import Trainer
    from gantk.train.interrupt import TrainingInterrupted

    def interrupted(self):
        raise TrainingInterrupted(7, signal.SIGTERM)

    monkeypatch.setattr(Trainer, "fit", interrupted)
    out = tmp_path / "my run"
    result = CliRunner().invoke(cli, ["train", "--out", str(out), "--max-steps", "1"])
    assert result.exit_code == 128 + signal.SIGTERM
    assert f"interrupted: checkpoint saved at step 7; continue with gantk train --resume '{out}'" in result.output


def test_ctrl_c_outside_training_exits_with_the_shells_code_for_it(tmp_path, monkeypatch):
    import signal

    from gantk.train import Trainer

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", interrupted)
    result = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert result.exit_code == 128 + signal.SIGINT and "Aborted." in result.output


@pytest.mark.parametrize("parsed", ["group", "command"])  # the group's arguments; the command's, parsed inside invoke
def test_ctrl_c_while_the_command_line_is_parsed_exits_with_the_shells_code_for_it(monkeypatch, parsed):
    import signal

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli if parsed == "group" else cli.commands["list"], "parse_args", interrupted)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 128 + signal.SIGINT and result.output == "\nAborted.\n", result.output


def test_a_training_stopped_in_another_command_exits_with_its_signals_code():
    import signal

    import click

    from gantk.cli import GantkGroup
    from gantk.train.interrupt import TrainingInterrupted

    @click.command("trains")
    def trains():  # a plugin's command that trains, as `gantk train` does not catch the stop for it
        raise TrainingInterrupted(3, signal.SIGTERM)

    result = CliRunner().invoke(GantkGroup(commands={"trains": trains}), ["trains"])
    assert result.exit_code == 128 + signal.SIGTERM and "Aborted." in result.output, result.output


def test_a_usage_error_of_a_subcommand_names_the_whole_command(tmp_path):
    result = CliRunner().invoke(cli, ["data", "check", str(tmp_path / "missing")], prog_name="gantk")
    assert result.exit_code == 2 and "Usage: gantk data check [OPTIONS] ROOT" in result.output, result.output


def test_sigterm_ends_a_command_with_its_exit_status_and_failed_plugins_are_reported(monkeypatch, capsys):
    import signal
    import sys

    import gantk.cli
    from gantk import hookimpl, load_components

    with pytest.raises(SystemExit) as stop:
        gantk.cli.exit_on_sigterm(signal.SIGTERM, None)
    assert stop.value.code == 128 + signal.SIGTERM

    class Broken:
        @hookimpl
        def gantk_register_generators(self, registry):
            raise RuntimeError("broken on purpose")

    components = load_components(autoload=False, plugins=[Broken()])
    monkeypatch.setattr(gantk.cli, "default_components", lambda: components)
    monkeypatch.setattr(gantk.cli.cli, "failed_plugins", ())  # main() sets them on the process's command group
    monkeypatch.setattr(sys, "argv", ["gantk", "--version"])
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    with pytest.raises(SystemExit):
        gantk.cli.main()
    assert f"warning: {components.failures[0]}" in capsys.readouterr().err and "broken on purpose" in str(components.failures[0])


def test_a_missing_command_names_the_plugins_that_failed_to_add_theirs(monkeypatch, capsys):
    import signal
    import sys

    import click

    import gantk.cli
    from gantk import hookimpl, load_components

    class Broken:
        @hookimpl
        def gantk_register_commands(self, cli):
            cli.add_command(click.Command("mine", callback=lambda: None))
            raise RuntimeError("broken on purpose")

    components = load_components(autoload=False, plugins=[Broken()])
    monkeypatch.setattr(gantk.cli, "default_components", lambda: components)
    monkeypatch.setattr(gantk.cli.cli, "failed_plugins", ())
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    monkeypatch.setattr(sys, "argv", ["gantk", "mine"])
    with pytest.raises(SystemExit) as stop:
        gantk.cli.main()
    plugin = components.failures[0].plugin
    assert "broken on purpose" in str(components.failures[0])
    assert stop.value.code == 2 and "mine" not in gantk.cli.cli.commands
    assert (f"No such command 'mine'. Plugin(s) {plugin} failed to load or to register all they provide, and may provide it: "
            "the warnings above say why.") in " ".join(capsys.readouterr().err.split())
    for argv, said in ((["lst"], "No such command 'lst'."), (["--", "-x"], "No such option")):  # a misspelling; an option
        monkeypatch.setattr(sys, "argv", ["gantk", *argv])
        with pytest.raises(SystemExit) as stop:
            gantk.cli.main()
        error = capsys.readouterr().err
        assert stop.value.code == 2 and said in error and "Plugin(s)" not in error, error
    monkeypatch.setattr(sys, "argv", ["gantk", "--version"])  # the commands there run as before
    with pytest.raises(SystemExit) as stop:
        gantk.cli.main()
    assert stop.value.code == 0


def test_a_missing_command_names_no_plugins_where_none_failed():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2 and "No such command 'frobnicate'." in result.output and "Plugin(s)" not in result.output


def test_version_is_the_one_gantk_reports(run, monkeypatch):
    import gantk

    # an editable install's code may be newer than its installed metadata: the code's version is the one
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.0.0")
    assert run("--version").output == f"gantk, version {gantk.__version__}\n"


def test_messages_show_control_characters_as_escapes():
    import warnings

    import click

    from gantk.cli import GantkGroup
    from gantk.errors import GantkError, GantkWarning

    @click.group(cls=GantkGroup)
    def group():
        pass

    @group.command()
    def quoting():  # a file name or checkpoint value that would clear the screen
        warnings.warn("file \x1b[2Jname", GantkWarning)
        raise GantkError("bad \x1b[31mred\x07 value\nsecond line")

    result = CliRunner().invoke(group, ["quoting"])
    assert result.output == "warning: file \\x1b[2Jname\nError: bad \\x1b[31mred\\x07 value\nsecond line\n"

    @group.command()
    def usage():  # a usage error naming a given path
        raise click.BadParameter("folder \x1b[31mred is a folder", param_hint="--json")

    assert "folder \\x1b[31mred is a folder" in CliRunner().invoke(group, ["usage"]).output


def test_printable_escapes_separators_isolates_and_every_control_character_but_newline_and_tab():
    from gantk.cli_output import REORDERING, printable

    # line and paragraph separators, bidi isolates, DEL and the C1 controls CSI and NEL escaped; a tab kept
    assert printable("a\u2028b\u2029c\u2066d\u2069\te\x7f\x9b[31m\x85") == "a\\u2028b\\u2029c\\u2066d\\u2069\te\\x7f\\x9b[31m\\x85"
    bidi_and_separators = {chr(c) for c in (0x061c, 0x200e, 0x200f, *range(0x202a, 0x202f), *range(0x2066, 0x206a), 0x2028, 0x2029)}
    assert REORDERING >= bidi_and_separators


def test_command_output_escapes_what_would_drive_the_terminal(tmp_path):
    from gantk.commands_eval import ablate_command

    grid = tmp_path / "grid.toml"  # names and a description that would set the title, colour and reorder the text
    grid.write_text('description = "a \\u001b]0;title\\u0007grid"\n[[cells]]\nname = "L1 \\u202eevil"\nloss = "l1"\n'
                    '[[cells]]\nname = "L2 \\U0001f469\\u200d\\U0001f4bb"\nloss = "l2"\n')  # an emoji joined by U+200D, kept
    result = CliRunner().invoke(ablate_command, ["--list", "--grid", str(grid)])
    assert result.exit_code == 0 and "\x1b" not in result.output and "\u202e" not in result.output
    assert "grid: a \\x1b]0;title\\x07grid" in result.output and "L1 \\u202eevil: loss=l1" in result.output
    assert "L2 \U0001f469\u200d\U0001f4bb: loss=l2" in result.output


def test_commands_show_each_warning_once_and_file_errors_in_one_line():
    import warnings

    import click

    from gantk.cli import GantkGroup
    from gantk.errors import GantkWarning

    @click.group(cls=GantkGroup)
    def group():
        pass

    @group.command()
    def warn():
        warnings.simplefilter("always")  # every warning reaches the command's display
        for _ in range(3):
            warnings.warn("same thing", GantkWarning)
        warnings.warn("other thing", GantkWarning)

    @group.command()
    @click.argument("kind")
    def fail(kind):
        raise {"bug": OSError(errno.EIO, "I/O error"), "rename": OSError(errno.EEXIST, "File exists", "/a", None, "/b")}[kind]

    assert CliRunner().invoke(group, ["warn"]).output == "warning: same thing\nwarning: other thing\n"
    assert isinstance(CliRunner().invoke(group, ["fail", "bug"]).exception, OSError)  # not about a given path: in full
    renamed = CliRunner().invoke(group, ["fail", "rename"])
    assert renamed.exit_code == 1 and "/a -> /b: File exists; it is in the way" in renamed.output


@pytest.mark.parametrize("command", [["train"], ["translate", "--checkpoint", "{d}", "{d}", "out"], ["eval", "--checkpoint", "{d}", "--data", "{d}"],
                                     ["ablate", "--grid", "table1", "--data", "{d}", "--eval-seed"], ["data", "derive", "{d}", "o", "--task", "gray"]])
def test_a_seed_torch_cannot_take_is_a_usage_error(command, tmp_path):
    flag = [] if command[-1] == "--eval-seed" else ["--seed"]
    result = CliRunner().invoke(cli, [*(part.format(d=tmp_path) for part in command), *flag, str(2**64)])
    assert result.exit_code == 2 and f"{2**64} is not a seed torch takes: use an integer from -{2**63} to {2**64 - 1}." in result.output
    assert "18446744073709551615" not in CliRunner().invoke(cli, [part.format(d=tmp_path) for part in command[:1]] + ["--help"]).output


def test_translate_refuses_a_seed_torch_cannot_take(tmp_path):
    from gantk.inference import TrainedModel

    model = TrainedModel.__new__(TrainedModel)
    with pytest.raises(OptionError, match=f"seed must be an integer from {-2**63} to {2**64 - 1}, got {-2**63 - 1}"):
        with model.seeded(-2**63 - 1):
            pass


def test_class_weights_from_data_check_train_and_resume_a_segmentation_run(run, tmp_path):
    from helpers import write_segmentation

    from gantk.inference import TrainedModel

    data, out = write_segmentation(tmp_path / "data", num_classes=3), tmp_path / "run"
    checked = run("data", "check", data)
    weights = re.search(r"--loss-opt '(ce\.class_weights=\[[0-9.,e-]+\])'", checked.output).group(1)
    trained = run("train", "--recipe", "seg", "--data", data, "--out", out, "--loss", "focal", "--disc", "none",
                  "--loss-opt", weights.replace("ce.", "focal."), "--max-steps", 1, *TINY_FLAGS)
    assert trained.exit_code == 0, trained.output
    assert run("train", "--resume", out, "--max-steps", 2, "--no-progress").exit_code == 0
    model = TrainedModel.load(out, device="cpu")
    expected = [float(w) for w in weights.split("[")[1].rstrip("]").split(",")]
    assert model.step == 2 and model.system.objective.terms[0].objective.class_weights.tolist() == pytest.approx(expected)


def test_a_model_of_rgba_targets_translates_to_rgba_files(tmp_path):
    from gantk.data.io import read_image, write_png

    data = write_paired(tmp_path / "pairs", count=4)
    for path in (data / "B").iterdir():  # targets with a transparent border
        image = read_image(path)
        alpha = torch.zeros_like(image[:1])
        alpha[:, 4:-4, 4:-4] = 255
        write_png(torch.cat([image, alpha]), path)
    trained = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "1", *TINY_FLAGS])
    assert trained.exit_code == 0, trained.output
    translated = CliRunner().invoke(cli, ["translate", "--checkpoint", str(tmp_path / "run"), str(data / "A"), str(tmp_path / "out")])
    assert translated.exit_code == 0, translated.output
    assert read_image(tmp_path / "out" / "000.png").shape == (4, 32, 32)


def test_translate_refuses_an_output_folder_named_as_an_image_file(tmp_path, run):
    data = write_paired(tmp_path / "pairs", count=2)
    assert run("train", "--data", data, "--out", tmp_path / "run", "--max-steps", 1, *TINY_FLAGS).exit_code == 0
    result = run("translate", "--checkpoint", tmp_path / "run", data / "A" / "000.png", tmp_path / "result.png")
    assert result.exit_code != 0 and not (tmp_path / "result.png").exists()
    assert (f"output_dir (OUTPUT_DIR) {tmp_path / 'result.png'} is named as an image file, but translate writes into a folder, a file named "
            f"after each input (000.png): give a folder, such as {tmp_path / 'result'} (or {tmp_path / 'result.png'}/)."
            ) in " ".join(result.output.split())
    folder = run("translate", "--checkpoint", tmp_path / "run", data / "A", f"{tmp_path / 'result.png'}/")  # a folder, as asked
    assert folder.exit_code == 0 and (tmp_path / "result.png" / "000.png").is_file()


def test_compile_reaches_the_settings(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--compile",
                                      "--compile-mode", "reduce-overhead", "--cuda-graph", *TINY_FLAGS])
    assert result.exit_code == 1 and "--cuda-graph records the whole step as one CUDA graph, and --compile-mode reduce-overhead" in result.output


def test_every_option_of_every_command_has_help():
    import click

    from gantk.ablate.grids import BUILTIN_GRIDS

    def commands(group, path=()):
        for name, command in group.commands.items():
            yield (*path, name), command
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))

    bare = [f"gantk {' '.join(path)} {param.opts[0]}" for path, command in commands(cli) for param in command.params
            if isinstance(param, click.Option) and not param.help]
    assert not bare
    grid_help = next(param.help for param in cli.commands["ablate"].params if param.name == "grid_spec")
    assert all(name in grid_help for name in BUILTIN_GRIDS)


@pytest.mark.parametrize("command", [["translate", "--checkpoint", "run", "in", "out"], ["export", "--checkpoint", "run", "a.onnx"],
                                     ["eval", "--checkpoint", "run", "--data", "pairs"]])
def test_jobs_of_one_process_are_refused_under_torchrun(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    for name in ("run", "in", "pairs"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1
    assert (f"Error: [rank 1] gantk {command[0]} runs in one process, and torchrun started 2, each of which would do the "
            "whole job (and write the same files): run it without torchrun.") in " ".join(result.output.split())


def test_a_ctrl_c_while_the_command_starts_ends_it_without_a_traceback():
    import subprocess
    import sys

    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["gantk"] == "gantk.__main__:main"
    # Ctrl-C as torch is imported: gantk's import must not import it, so that the entry point is running to answer
    interrupted = ("import builtins, sys\nimported = builtins.__import__\n"
                   "def interrupt(name, *args, **kwargs):\n"
                   "    if name == 'torch':\n        raise KeyboardInterrupt\n"
                   "    return imported(name, *args, **kwargs)\n"
                   "builtins.__import__ = interrupt\n"
                   "from gantk.__main__ import main\nsys.argv = ['gantk', 'list']\nmain()\n")
    ran = subprocess.run([sys.executable, "-c", interrupted], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 130 and ran.stderr == "\nAborted.\n", ran.stderr
    as_module = interrupted.replace("from gantk.__main__ import main\nsys.argv = ['gantk', 'list']\nmain()\n",
                                    "import runpy\nsys.argv = ['gantk', 'list']\n"
                                    "runpy.run_module('gantk.cli', run_name='__main__', alter_sys=True)\n")
    ran = subprocess.run([sys.executable, "-c", as_module], capture_output=True, text=True, timeout=120)
    assert as_module != interrupted and ran.returncode == 130 and ran.stderr == "\nAborted.\n", ran.stderr
    # python -m gantk.cli, Ctrl-C as plugins load
    as_module = ("import runpy, sys\nimport gantk.plugins\n"
                 "def interrupt():\n    raise KeyboardInterrupt\n"
                 "gantk.plugins.default_components = interrupt\nsys.argv = ['gantk', 'list']\n"
                 "runpy.run_module('gantk.cli', run_name='__main__', alter_sys=True)\n")
    ran = subprocess.run([sys.executable, "-c", as_module], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 130 and ran.stderr == "\nAborted.\n", ran.stderr


def test_the_demo_set_notice_goes_to_stderr_once_from_the_main_process(tmp_path, monkeypatch):
    import signal

    import gantk.cli
    from gantk.torchrun import ProcessInfo
    from gantk.train import Trainer

    def stopped(self):  # the notice comes before training
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", stopped)
    args = ["train", "--out", str(tmp_path / "run"), "--crop-size", "32", "--load-size", "36", "--no-progress"]
    main = CliRunner().invoke(cli, args)
    assert main.exit_code == 128 + signal.SIGINT and "no --data: training on the embedded demo set" in main.stderr, main.output
    assert "no --data" not in main.stdout
    monkeypatch.setattr(gantk.cli, "process_from_environment", lambda: ProcessInfo(1, 2, 1, 2))  # torchrun's rank 1
    other = CliRunner().invoke(cli, args)
    assert other.exit_code == 128 + signal.SIGINT and "no --data" not in other.output, other.output
