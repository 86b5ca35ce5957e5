"""Small contracts that are easy to break silently: settings checks, TOML round trips, channels, colours, geometry."""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import TensorDataset

from gantk.ablate import Cell, Grid, cell_config, markdown_table
from gantk.cli_options import parse_value
from gantk.errors import GantkWarning, OptionError
from gantk.evaluate import json_ready
from gantk.data.transforms import match_channels
from gantk.nn.geometry import Window, receptive_field
from gantk.plugins import load_components
from gantk.option_values import with_nones
from gantk.recipes import cyclegan, pix2pix
from gantk.systems import targets
from gantk.train import TrainConfig
from gantk.train.config import check_type, spelled, to_toml
from gantk.train.distributed import ProcessInfo
from gantk.train.resolve import fit_generator_depth, resolve_config


@pytest.mark.parametrize("values, message", [
    ({"load_size": 32, "crop_size": 36}, "--crop-size 36 is larger than --load-size 32"),
    ({"gen_opt": {"in_channels": 4}}, "in_channels in --gen-opt is set from the data's channels"),
    ({"beta1": 1.0}, "--beta1 is an Adam decay rate in [0, 1), got 1.0"),
    ({"decay_start": 1.5}, "--decay-start is a fraction of the schedule in [0, 1], got 1.5"),
    ({"load_size": 1_000_000, "crop_size": 256}, "--load-size is 1000000 px a side, more than the largest gantk takes (16384); give a smaller one"),
])
def test_settings_out_of_range_are_refused(values, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        TrainConfig(**values).validate()
    TrainConfig(decay_start=1.0, beta1=0.0, load_size=16384, crop_size=16384).validate()  # the ends that are allowed


def test_settings_of_the_wrong_type_are_named():  # a bool is no number
    with pytest.raises(OptionError, match="lr must be a number, got True"):
        check_type("lr", True)
    with pytest.raises(OptionError, match="^max_steps must be an integer, got .big."):  # spelt as validate() spells settings
        check_type("max_steps", "big")
    with pytest.raises(OptionError, match=r"loss_opt must be a table of option tables, one per objective \(e\.g\. bce\.real_label = 0\.9\), "
                                          r"got \{'bce': 0\.9\}"):  # as `[loss_opt] bce = 0.9` in a config file gives it
        TrainConfig().merged({"loss_opt": {"bce": 0.9}})
    components = load_components(autoload=False)
    assert resolve_config(TrainConfig(data=Path("pairs")), components).data == str(Path("pairs").absolute())
    with pytest.raises(OptionError, match=r"data must be the path of a dataset directory, got a TensorDataset: write the data to a "
                                          "folder in one of the layouts of `gantk list data-formats`, or read another layout"):
        resolve_config(TrainConfig(data=TensorDataset(torch.zeros(2))), components)


def test_config_toml_round_trips_awkward_text():
    config = TrainConfig(data="C:\\data\\pairs \"quoted\"\n\t\x01\x7f é", loss_opt={"my.loss": {"real_label": 0.9}}, gen_opt={"ngf": 8})
    assert TrainConfig(**tomllib.loads(to_toml(config.to_dict()))) == config


def test_training_without_a_discriminator_keeps_no_discriminator_options():
    assert resolve_config(TrainConfig(data="x", disc="none"), load_components(autoload=False)).disc_opt == {}


def test_the_demo_takes_a_length_in_epochs():
    components = load_components(autoload=False)
    assert resolve_config(TrainConfig(), components).max_steps == 1500  # the demo's length
    resolved = resolve_config(TrainConfig(epochs=1), components)
    assert (resolved.epochs, resolved.max_steps) == (1, None)


def test_an_odd_crop_size_is_refused_naming_it():
    with pytest.raises(OptionError, match=r"odd --crop-size \(31\) does not allow: use .* e\.g\. 16 or 32 \(no more than --load-size\)\."):
        fit_generator_depth(TrainConfig(data="x", gen="unet", crop_size=31), load_components(autoload=False))


def test_a_crop_size_that_leaves_a_wide_bottleneck_is_warned_about():
    components = load_components(autoload=False)
    with pytest.warns(GantkWarning, match=r"generator 'unet' takes num_downs=2 at --crop-size 36 .* leaving a 9x9 bottleneck: "
                                          r"a crop size that is a multiple of a larger power of two \(e\.g\. 32\)"):
        assert fit_generator_depth(TrainConfig(data="x", gen="unet", crop_size=36), components).gen_opt == {"num_downs": 2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for crop, depth in ((96, 5), (48, 4), (32, 5)):  # bottlenecks of 3, 3 and 1 px
            assert fit_generator_depth(TrainConfig(data="x", gen="unet", crop_size=crop), components).gen_opt == {"num_downs": depth}


def test_recipes_keep_the_papers_settings():
    assert {k: pix2pix().defaults[k] for k in ("load_size", "crop_size", "batch_size", "loss")} == \
        {"load_size": 286, "crop_size": 256, "batch_size": 1, "loss": "bce+l1@100"}
    assert {k: cyclegan().defaults[k] for k in ("pool_size", "batch_size")} == {"pool_size": 50, "batch_size": 1}


@pytest.mark.parametrize("text, value", [("false", False), ("False", False), ("true", True)])
def test_option_booleans(text, value):
    assert parse_value(text) is value


def test_only_the_first_process_of_all_nodes_is_main():
    assert ProcessInfo(rank=0, world_size=4, local_rank=0).is_main
    assert not ProcessInfo(rank=2, world_size=4, local_rank=0).is_main  # first process of the second node


def test_channels_are_matched_to_what_a_model_takes():
    gray, rgb, rgba = (torch.rand(1, c, 2, 2) * 2 - 1 for c in (1, 3, 4))
    assert torch.equal(match_channels(gray, 3), gray.expand(1, 3, 2, 2))
    assert torch.equal(match_channels(rgba, 3), rgba[:, :3])
    for image, colour in ((rgb, rgb), (gray, gray.expand(1, 3, 2, 2))):  # RGBA: the colour, then an opaque alpha
        four = match_channels(image, 4)
        assert torch.equal(four[:, :3], colour) and torch.equal(four[:, 3], torch.ones(1, 2, 2))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)  # gray is ITU-R 601 luma: 0.299 of red
    torch.testing.assert_close(match_channels(red, 1), torch.full((1, 1, 1, 1), 0.299 * 2 - 1))


def test_gray_from_colour_is_the_gray_that_derived_training_inputs_have():
    from gantk.data.derive import derive_input

    photo = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    gray = match_channels(photo[None].float() / 127.5 - 1, 1)
    torch.testing.assert_close(gray, derive_input(photo, "gray")[None] / 127.5 - 1, atol=1 / 127.5, rtol=0)  # 8-bit rounding
    rgb = torch.tensor([0.9, -0.3, 0.0]).view(1, 3, 1, 1)
    torch.testing.assert_close(match_channels(rgb, 1), torch.tensor(0.299 * 0.9 - 0.587 * 0.3).view(1, 1, 1, 1))


def test_display_colours():
    many = targets.colorize(torch.arange(300).view(1, 1, 300))  # 256 colours, then they repeat
    assert many.shape == (1, 3, 1, 300) and len({tuple(many[0, :, 0, i].tolist()) for i in range(256)}) == 256
    assert torch.equal(many[..., 256:], many[..., :44])
    four = torch.arange(4.0).view(1, 4, 1, 1).expand(1, 4, 2, 2)
    assert targets.displayable(four)[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]  # the first three channels


def test_receptive_field_counts_dilation():
    from gantk.nn.geometry import windows

    assert receptive_field([Window(3, 1, 1, dilation=2)]) == 5
    assert receptive_field(windows(torch.nn.Conv2d(1, 1, 3, dilation=2))) == 5  # read from the layer
    assert receptive_field([Window(4, 2, 1), Window(4, 1, 1)]) == 10


def test_non_finite_numbers_become_null():
    assert json_ready({"a": [float("inf"), float("-inf"), float("nan"), 1.5]}) == {"a": [None, None, None, 1.5]}


def test_command_line_settings_win_over_the_grids_common_and_lose_to_the_cell():
    grid = Grid("g", (Cell("a", {"lr": 0.1}),), common={"max_steps": 5, "lr": 0.3})
    config = cell_config(grid, grid.cells[0], "data", "out", {"max_steps": 7, "lr": 0.2})
    assert (config.max_steps, config.lr) == (7, 0.1)


def test_the_best_value_of_each_column_is_bold():
    def result(name, l1, psnr):
        return {"cell": {"name": name}, "task": "image", "metrics": {"l1": l1, "psnr": psnr},
                "model": {"gen": "unet", "disc": "patch70", "conditional": True, "loss": "bce+l1"}}

    table = markdown_table([result("a", 0.2, 20.0), result("b", 0.1, 18.0)])
    row_a, row_b = (line for line in table.splitlines() if line.startswith(("| a", "| b")))
    assert "**20" in row_a and "**0.1" in row_b and "**0.2" not in row_a and "**18" not in row_b
    tied = markdown_table([result("a", 0.2, 20.0), result("b", 0.1, 20.0)])  # equal values: none is best
    assert "**20" not in tied and "**0.1" in tied


@pytest.mark.parametrize("task, metrics, arrows", [
    ("image", {"l1": 0.1, "rmse": 0.2, "psnr": 20.0, "ssim": 0.5, "fid": 9.0, "kid": 0.01, "precision": 0.4, "recall": 0.3},
     "l1 ↓ | rmse ↓ | psnr ↑ | ssim ↑ | fid ↓ | kid ↓ | precision ↑ | recall ↑"),
    ("segmentation", {"pixel_accuracy": 0.9, "mean_class_accuracy": 0.8, "mean_iou": 0.7, "foreground_iou": 0.6, "mean_dice": 0.5,
                      "rmse": 0.2, "l1": 0.1}, "pixel_accuracy ↑ | mean_class_accuracy ↑ | mean_iou ↑ | foreground_iou ↑ | mean_dice ↑ | rmse ↓"),
])
def test_each_column_of_a_study_says_which_way_is_better(task, metrics, arrows):
    results = [{"cell": {"name": name}, "task": task, "metrics": {key: value * scale for key, value in metrics.items()},
                "model": {"gen": "unet", "disc": None, "conditional": True, "loss": "l1"}} for name, scale in (("a", 1), ("b", 2))]
    header, _, row_a, row_b = markdown_table(results).splitlines()
    assert header == f"| cell | generator | discriminator | objective | {arrows} |"  # the task's columns only
    for name, arrow in (column.rsplit(" ", 1) for column in arrows.split(" | ")):  # b has the higher values
        assert f"**{metrics[name] * 2:.4g}**" in row_b if arrow == "↑" else f"**{metrics[name]:.4g}**" in row_a


def test_a_second_stop_signal_acts_at_once_unless_it_passes_on_the_first():
    import os
    import signal
    import time

    from gantk.train.interrupt import REPEAT_WINDOW_S, stop_after_step_on_interrupt

    with stop_after_step_on_interrupt() as stop_signal:
        os.kill(os.getpid(), signal.SIGINT)  # the first only asks for a stop
        deadline = time.monotonic() + 5  # the handler runs between bytecodes, soon after
        while stop_signal() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        assert stop_signal() == signal.SIGINT
        os.kill(os.getpid(), signal.SIGTERM)  # at once: the same request, passed on (by torchrun, say)
        time.sleep(0.1)
        assert stop_signal() == signal.SIGINT
        time.sleep(REPEAT_WINDOW_S)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
    with stop_after_step_on_interrupt() as stop_signal:  # the usual handlers are back once the window has passed
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + 5
        while stop_signal() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        time.sleep(REPEAT_WINDOW_S)
        stop_signal()  # polled after a step
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sample_grids_show_at_most_four_samples_mapped_to_pixels(tmp_path):
    from gantk.data.io import read_image
    from gantk.train.logs import save_sample_grid

    rows = [torch.full((6, 3, 4, 4), -1.0), torch.full((6, 3, 4, 4), 1.0)]  # black inputs, white outputs
    save_sample_grid(rows, tmp_path / "grid.png")
    grid = read_image(tmp_path / "grid.png")
    assert grid.shape[-2:] == (2 + 4 * (4 + 2), 2 + 2 * (4 + 2))  # 4 lines of 2 tiles, 2 px padding
    assert grid[:, 2, 2].tolist() == [0, 0, 0] and grid[:, 2, 8].tolist() == [255, 255, 255]


def test_sample_grids_take_rows_of_any_channel_count(tmp_path):
    from gantk.data.io import read_image
    from gantk.train.logs import save_sample_grid

    rows = [torch.full((2, 1, 4, 4), 1.0), torch.full((2, 3, 4, 4), -1.0), torch.full((2, 4, 4, 4), 1.0),  # gray, RGB, RGBA
            torch.full((2, 2, 4, 4), -1.0)]  # gray and alpha
    save_sample_grid(rows, tmp_path / "grid.png")
    grid = read_image(tmp_path / "grid.png")
    assert [grid[:, 2, 2 + 6 * tile].tolist() for tile in range(4)] == [[255] * 3, [0] * 3, [255] * 3, [0] * 3]


def test_report_lists_the_best_first_and_the_worst_first():
    from gantk.report import Extremes

    extremes = Extremes(2)
    for score, name in ((3.0, "c"), (1.0, "a"), (2.0, "b"), (1.0, "tie")):
        extremes.offer(score, name, dict)
    assert [name for _, name, _ in extremes.best()] == ["a", "tie"]
    assert [name for _, name, _ in extremes.worst()] == ["c", "b"]


def test_error_maps_saturate_at_the_stated_scale():
    from gantk.report import ERROR_SCALE, error_image

    full = error_image(torch.full((2, 2), ERROR_SCALE))
    assert torch.equal(full, error_image(torch.full((2, 2), 0.9)))
    assert not torch.equal(full, error_image(torch.full((2, 2), ERROR_SCALE / 2)))


def test_report_pages_escape_what_they_show_and_list_unavailable_metrics(tmp_path):
    from gantk.report import PANELS, Extremes, write_report

    extremes = Extremes(1)
    panels = {panel: torch.zeros(3, 4, 4) for panel in PANELS if panel != "error"} | {"error": torch.zeros(4, 4)}
    extremes.offer(0.1, "a<b>&.png", lambda: panels)
    result = {"checkpoint": "run/checkpoint-00000001.pt", "step": 1, "model": {"gen": "unet"}, "data": "pairs", "split": "test",
              "images": 1, "mode": "eval", "batch_size": 1, "seed": 0, "metrics": {"l1": 0.1}, "unavailable": {}}
    result.update(data="/d/a<b&c", unavailable={"fid": "no Inception weights <x>"}, classes={"iou": [0.5, 0.25]},
                  class_names=["back<ground>", "object"])
    page = write_report(result, extremes, tmp_path).read_text()
    assert "a&lt;b&gt;&amp;.png" in page and "a<b>" not in page and "/d/a&lt;b&amp;c" in page
    assert "<th>fid</th><td>unavailable: no Inception weights &lt;x&gt;</td>" in page
    assert ("<tr><th>class</th><th>iou</th></tr>\n<tr><th>0 back&lt;ground&gt;</th><td>0.5000</td></tr>\n"
            "<tr><th>1 object</th><td>0.2500</td></tr></table>") in page


def test_each_process_takes_its_local_gpu(monkeypatch):
    from gantk.train.distributed import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert resolve_device("cuda", 3) == torch.device("cuda", 3) and resolve_device("auto", 1) == torch.device("cuda", 1)


def test_a_device_is_the_one_asked_for_or_an_error(monkeypatch):
    from gantk.train.distributed import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for requested, message in [("cuda:2", "sees 2 CUDA device"), ("gpu", "not a device name"), ("mps", "the CPU or CUDA")]:
        with pytest.raises(OptionError, match=message):
            resolve_device(requested)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(OptionError, match="sees no CUDA device"):
        resolve_device("cuda:0")


def test_negative_indices_count_from_the_end(tmp_path):
    from gantk.data import open_dataset
    from helpers import write_paired

    dataset = open_dataset(write_paired(tmp_path / "pairs", count=3), load_size=None, crop_size=None, augment=False)
    assert dataset[-1]["A_path"] == dataset[2]["A_path"]
    with pytest.raises(IndexError, match="index -4 is out of range for a dataset of 3 items"):
        dataset[-4]


def test_none_component_options_survive_config_toml():
    config = TrainConfig(gen="smp", gen_opt={"encoder": "resnet18", "encoder_weights": None}, disc_opt={"norm": None},
                         loss_opt={"bce": {"real_label": None}})
    read = tomllib.loads(to_toml(config.to_dict()))
    assert read["gen_opt"]["encoder_weights"] == read["disc_opt"]["norm"] == read["loss_opt"]["bce"]["real_label"] == "none"
    components = load_components(autoload=False)
    assert components.create("discriminator", "patch70", in_channels=6, **read["disc_opt"]) is not None  # norm "none"
    smp = components.registry("generator").get("smp")
    assert with_nones(read["gen_opt"], smp.options()) == {"encoder": "resnet18", "encoder_weights": None}


def test_a_system_whose_phases_cannot_be_trained_is_named():
    from gantk.systems.base import Phase, System, check_phases

    class Bare(System):
        forward = phase_losses = sample_images = translate = None

    system = Bare({})
    system.networks["G"] = torch.nn.Linear(1, 1)
    for phases, message in [((), "recipe 'mine' built a Bare without phases"),
                            ((Phase("G", ("G",)), Phase("G", ("G",))), "share a name"),
                            ((Phase("G", ("G",), every=0),), "phase G has every=0; it takes a whole number of steps, 1 or more"),
                            ((Phase("G", ("G",), every=2.0),), "every=2.0"),
                            ((Phase("G", ("G",), every=True),), "every=True"),
                            ((Phase("G", ("G",), frozen=("D",)),), r"name the network\(s\) D, which it does not have \(its networks: G\)")]:
        system.phases = phases
        with pytest.raises(OptionError, match=message):
            check_phases(system, "mine")
    system.phases = (Phase("G", ("G",)),)
    check_phases(system, "mine")


def test_a_checkpoint_names_the_plugins_of_every_part():
    from gantk import Objective, hookimpl
    from gantk.discriminators.patch import PatchDiscriminator
    from gantk.train.checkpoint import part_plugins

    class Critic:
        @hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("critic", PatchDiscriminator)

    class Penalty:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("penalty", type("PenaltyTerm", (Objective,), {}))

    components = load_components(autoload=False, plugins=[Critic(), Penalty()])
    plugin = {kind: components.registry(kind).get(name).plugin for kind, name in [("discriminator", "critic"), ("objective", "penalty"),
                                                                                  ("generator", "unet")]}
    used = part_plugins({"recipe": "pix2pix", "gen": "unet", "disc": "critic", "loss": "bce+penalty"}, components)
    assert {kind: {name: part["plugin"] for name, part in parts.items()} for kind, parts in used.items()} == {
        "recipe": {"pix2pix": "gantk.recipes"}, "generator": {"unet": plugin["generator"]},
        "discriminator": {"critic": plugin["discriminator"]}, "objective": {"bce": "gantk.objectives", "penalty": plugin["objective"]}}
    assert used["discriminator"]["critic"]["factory"] == "gantk.discriminators.patch.PatchDiscriminator"
    assert len(set(plugin.values())) == 3
    assert "package" not in used["discriminator"]["critic"]  # gantk's class, but a plugin that no distribution holds


def test_a_part_is_named_with_the_package_of_the_plugin_that_registers_it():
    """A plugin's package is the one to install or remove for its parts, whoever wrote their code (here gantk)."""
    import importlib.metadata
    import types

    from gantk import hookimpl
    from gantk.objectives.pixel import PixelL1Loss
    from gantk.train.checkpoint import part_plugins

    module = types.ModuleType("click.gantk_alias")  # a plugin module inside the installed distribution "click"

    @hookimpl
    def gantk_register_objectives(registry):
        registry.add("l1-alias", PixelL1Loss)

    module.gantk_register_objectives = gantk_register_objectives
    components = load_components(autoload=False, plugins=[module])
    used = part_plugins({"recipe": "pix2pix", "gen": "unet", "disc": "patch70", "loss": "bce+l1-alias"}, components)
    assert used["objective"]["l1-alias"] == {"plugin": "click.gantk_alias", "factory": "gantk.objectives.pixel.PixelL1Loss",
                                             "package": f"click {importlib.metadata.version('click')}"}


def test_a_checkpoint_holds_option_defaults_in_lists_and_tables():
    from gantk.option_values import storable

    assert storable({"widths": (4, 8), "names": ["a", None, [2.0]]}) and not storable({"widths": [object()]})


def test_settings_are_spelt_as_the_command_line_gives_them():
    assert [spelled("conditional", True), spelled("conditional", False), spelled("flip", False), spelled("lr", 0.0002)] == [
        "--conditional", "--unconditional", "--no-flip", "--lr 0.0002"]
    assert spelled("loss_opt", {"bce": {"real_label": 0.9}, "l1": {"weight": 50}}) == "--loss-opt bce.real_label=0.9,l1.weight=50"
    assert spelled("gen_opt", {}) == "--gen-opt (none)"


@pytest.mark.parametrize("module", ["gantk", "gantk.inference", "gantk.translate", "gantk.evaluate"])
def test_the_public_names_of_a_module_exist(module):
    import importlib

    loaded = importlib.import_module(module)
    assert loaded.__all__ and all(hasattr(loaded, name) for name in loaded.__all__)


def test_path_settings_take_any_path_like_and_other_settings_none():
    class RunPath:  # an os.PathLike that is no pathlib.Path
        def __fspath__(self):
            return "runs/elsewhere"

    for key in ("out", "data", "init_from", "lpips_weights", "inception_weights"):
        for value in (Path("runs/x"), RunPath()):
            check_type(key, value)
    TrainConfig(out=Path("runs"), data=RunPath(), init_from=Path("first")).validate()
    for key, value in (("gen", Path("unet")), ("recipe", RunPath())):
        with pytest.raises(OptionError, match=f"^{key} must be a string, got "):
            check_type(key, value)
    with pytest.raises(OptionError, match=r"^out must be a string, got 5\.$"):  # no path type named as another choice
        check_type("out", 5)
