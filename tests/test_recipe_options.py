"""A recipe's own options (``--recipe-opt``) and the system hook after each optimizer step."""

import pytest
import torch

from gantk import hookimpl, load_components
from click.testing import CliRunner

from gantk.cli import cli
from gantk.describe import describe
from gantk.errors import OptionError
from gantk.recipes import pix2pix
from gantk.recipes.base import Recipe
from gantk.systems import PairedSystem
from gantk.train import TrainConfig, Trainer
from gantk.train import checkpoint as ckpt
from gantk.train.config import read_config_file
from helpers import write_paired

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, log_every=1, sample_every=100, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


class ClippedSystem(PairedSystem):
    """pix2pix whose discriminator's weights are clipped to [-clip, clip] after each of its steps."""

    def __init__(self, config, components):
        super().__init__(config, components)
        self.clip = config["recipe_opt"]["clip"]
        self.calls = []

    def after_optimizer_step(self, phase):
        self.calls.append((phase.name, torch.is_grad_enabled()))
        if phase.name == "D":
            for parameter in self.networks["D"].parameters():
                parameter.clamp_(-self.clip, self.clip)


def clipped() -> Recipe:
    """pix2pix with a weight-clipped discriminator."""
    return Recipe(name="clipped", system=ClippedSystem, defaults=pix2pix().defaults, options={"clip": 0.01, "note": "x", "bound": None})


class Plugin:
    @hookimpl
    def gantk_register_recipes(self, registry):
        registry.add("clipped", clipped)


@pytest.fixture(scope="module")
def components():
    return load_components(autoload=False, plugins=[Plugin()])


@pytest.fixture
def pairs(tmp_path):
    return write_paired(tmp_path / "pairs")


def config(data, out, **overrides):
    return TrainConfig(recipe="clipped", data=str(data), out=str(out), **{**TINY, **overrides})


def test_the_hook_follows_each_optimizer_step_without_gradients(pairs, tmp_path, components):
    trainer = Trainer(config(pairs, tmp_path / "run", max_steps=3, n_critic=2), components=components, progress=False)
    trainer.fit()
    system = trainer.system
    assert system.calls == [("D", False), ("D", False), ("G", False), ("D", False)]  # G runs every second step
    weights = torch.cat([p.detach().flatten() for p in system.networks["D"].parameters()])
    assert weights.abs().max().item() == pytest.approx(0.01)  # clipped, and some weights needed it


def test_recipe_options_take_their_defaults_and_the_values_given(pairs, tmp_path, components):
    trainer = Trainer(config(pairs, tmp_path / "run", max_steps=2, recipe_opt={"clip": 0.05}), components=components, progress=False)
    trainer.fit()
    assert trainer.config.recipe_opt == {"clip": 0.05, "note": "x", "bound": None}
    assert trainer.system.clip == 0.05
    assert read_config_file(tmp_path / "run" / "config.toml")["recipe_opt"] == {"clip": 0.05, "note": "x", "bound": "none"}  # TOML has no null
    payload = ckpt.load_checkpoint(tmp_path / "run")
    assert payload["system"]["recipe_opt"] == {"clip": 0.05, "note": "x", "bound": None}
    system, _ = ckpt.system_from_checkpoint(tmp_path / "run", components=components)
    assert system.clip == 0.05
    with pytest.raises(OptionError, match=r"cannot change --recipe-opt \(the run has --recipe-opt clip=0.05,note=x,bound=None\)"):
        Trainer.resume(tmp_path / "run", {"recipe_opt": {"clip": 0.1}}, components=components)
    resumed = Trainer.resume(tmp_path / "run", {"recipe_opt": {"clip": 0.05}, "max_steps": 3}, components=components, progress=False)
    resumed.fit()
    assert resumed.system.clip == 0.05 and resumed.step == 3


@pytest.mark.parametrize("given, message", [
    ({"clp": 0.1}, r"--recipe-opt: recipe 'clipped' has no option clp \(its options: clip=0.01, note='x', bound=None\)"),
    ({"clip": "big"}, r"--recipe-opt: recipe 'clipped': option clip must be a number \(default 0.01\), got 'big'"),
    ({"note": 3}, r"option note must be a string"),
])
def test_unknown_or_mistyped_recipe_options_are_named(pairs, tmp_path, components, given, message):
    with pytest.raises(OptionError, match=message):
        Trainer(config(pairs, tmp_path / "run", recipe_opt=given), components=components)


def test_none_is_spelt_as_each_recipe_option_takes_it(pairs, tmp_path, components):
    """A config.toml writes None as "none" (TOML has no null); given back, it is None again, and a text option's none is "none"."""
    trainer = Trainer(config(pairs, tmp_path / "run", recipe_opt={"bound": "none", "note": None}), components=components)
    assert trainer.config.recipe_opt == {"clip": 0.01, "note": "none", "bound": None}


def test_a_recipe_without_options_refuses_any(pairs, tmp_path):
    with pytest.raises(OptionError, match=r"recipe 'pix2pix' has no option clip \(its options: none\)"):
        Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), recipe_opt={"clip": 1}, **TINY))


def test_describe_lists_a_recipes_options(components):
    assert describe("recipe", "clipped", components)["options"] == {"clip": 0.01, "note": "x", "bound": None}
    assert describe("recipe", "pix2pix")["options"] == {}


def test_the_cli_passes_recipe_options(pairs, tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--recipe-opt", "clip=1,note=y"])
    assert result.exit_code != 0
    assert "recipe 'pix2pix' has no option clip, note (its options: none)" in result.output
