"""A recipe's own options (``--recipe-opt``) and the system hook after each optimizer step."""

import enum
import fractions
import warnings

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gantk import create, hookimpl, load_components
from gantk.cli import cli
from gantk.describe import describe
from gantk.errors import GantkWarning, OptionError
from gantk.inference import TrainedModel
from gantk.recipes import pix2pix
from gantk.recipes.base import Recipe
from gantk.systems import PairedSystem
from gantk.systems.base import Phase
from gantk.train import TrainConfig, Trainer
from gantk.train import checkpoint as ckpt
from gantk.train.config import read_config_file, to_toml
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


def recipe_plugin(**options):
    """A plugin registering the recipe ``clipped`` with ``options``."""

    def clipped() -> Recipe:
        """pix2pix with a weight-clipped discriminator."""
        return Recipe(name="clipped", system=ClippedSystem, defaults=pix2pix().defaults, options=options)

    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("clipped", clipped)

    return load_components(autoload=False, plugins=[Plugin()])


@pytest.fixture(scope="module")
def components():
    return recipe_plugin(clip=0.01, note="x", bound=None)


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


def test_a_recipe_whose_phases_cannot_be_trained_is_refused_before_training(pairs, tmp_path, components, monkeypatch):
    built = ClippedSystem.__init__

    def with_a_phase_that_never_runs(self, config, components):
        built(self, config, components)
        self.phases = (self.phases[0], Phase("G", ("G",), frozen=("D",), every=0))

    monkeypatch.setattr(ClippedSystem, "__init__", with_a_phase_that_never_runs)
    with pytest.raises(OptionError, match="recipe 'clipped' built a ClippedSystem whose phase G has every=0"):
        Trainer(config(pairs, tmp_path / "run", max_steps=2), components=components, progress=False).fit()
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_a_network_a_system_adds_itself_is_named_by_its_class(pairs, tmp_path, components, monkeypatch):
    built = ClippedSystem.__init__

    class Strided(torch.nn.Conv2d):
        size_multiple = 3

    def with_a_network_of_its_own(self, config, components):
        built(self, config, components)
        self.networks["H"] = Strided(3, 3, 3, stride=3)

    monkeypatch.setattr(ClippedSystem, "__init__", with_a_network_of_its_own)
    with pytest.raises(OptionError, match=r"H \(Strided\) needs image sizes that are multiples of 3, but --crop-size is 32: "
                                          r"use --crop-size 96 --load-size 96, or another network\.$"):  # fits G too; no component to describe
        Trainer(config(pairs, tmp_path / "run", max_steps=1), components=components, progress=False).fit()


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
    ({"clp": 0.1}, r"--recipe-opt: recipe 'clipped' has no option clp \(its options: clip=0.01, note='x', bound=None\)\. "
                   r"Did you mean 'clip' instead of 'clp'\? The recipe comes from plugin '.*'\.$"),
    ({"clip": "big"}, r"--recipe-opt: recipe 'clipped': option clip must be a number \(default 0.01\), got 'big'"),
    ({"note": 0.5}, r"option note must be a string"),
])
def test_unknown_or_mistyped_recipe_options_are_named(pairs, tmp_path, components, given, message):
    with pytest.raises(OptionError, match=message):
        Trainer(config(pairs, tmp_path / "run", recipe_opt=given), components=components)


def test_a_whole_number_given_to_a_text_recipe_option_is_its_text(pairs, tmp_path, components):
    trainer = Trainer(config(pairs, tmp_path / "run", recipe_opt={"note": 2024}), components=components)
    assert trainer.config.recipe_opt["note"] == "2024"


def test_none_is_spelt_as_each_recipe_option_takes_it(pairs, tmp_path, components):
    """A config.toml writes None as "none" (TOML has no null); given back, it is None again, and a text option's none is "none"."""
    trainer = Trainer(config(pairs, tmp_path / "run", recipe_opt={"bound": "none", "note": None}), components=components)
    assert trainer.config.recipe_opt == {"clip": 0.01, "note": "none", "bound": None}


def test_a_recipe_without_options_refuses_any(pairs, tmp_path):
    with pytest.raises(OptionError, match=r"recipe 'pix2pix' has no option clip \(its options: none\)"):
        Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), recipe_opt={"clip": 1}, **TINY))


def test_a_recipe_without_a_network_or_loss_asks_for_the_flag(pairs, tmp_path):
    def bare() -> Recipe:
        return Recipe(name="bare", system=PairedSystem, defaults={"disc": "patch70", "loss": "bce+l1"})

    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("bare", bare)

    components = load_components(autoload=False, plugins=[Plugin()])
    with pytest.raises(OptionError, match=r"recipe 'bare' sets no --gen and none was given: pass --gen NAME \('gantk list generators'"):
        Trainer(TrainConfig(recipe="bare", data=str(pairs), out=str(tmp_path / "run"), **TINY), components=components)
    trainer = Trainer(TrainConfig(recipe="bare", gen="unet", data=str(pairs), out=str(tmp_path / "run"), **TINY), components=components)
    assert trainer.config.gen == "unet"

    class NoDiscriminator:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("l1-only", lambda: Recipe(name="l1-only", system=PairedSystem, defaults={"gen": "unet", "loss": "l1"}))

    trainer = Trainer(TrainConfig(recipe="l1-only", data=str(pairs), out=str(tmp_path / "l1"), max_steps=1, **TINY),
                      components=load_components(autoload=False, plugins=[NoDiscriminator()]), progress=False)
    trainer.fit()  # no discriminator is a choice, not a missing setting
    assert trainer.config.disc is None and list(trainer.system.networks) == ["G"]


def test_a_recipe_goes_by_the_name_it_is_registered_under(pairs, tmp_path):
    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("renamed", lambda: Recipe(name="pix2pix", system=PairedSystem, defaults=pix2pix().defaults))

    components = load_components(autoload=False, plugins=[Plugin()])
    assert components.create("recipe", "renamed").name == "renamed"
    with pytest.raises(OptionError, match=r"recipe 'renamed' has no option clip"):
        Trainer(TrainConfig(recipe="renamed", data=str(pairs), out=str(tmp_path / "run"), recipe_opt={"clip": 1}, **TINY),
                components=components)


def test_a_recipe_default_of_the_wrong_type_names_the_recipe(pairs, tmp_path):
    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("fast", lambda: Recipe(name="fast", system=PairedSystem, defaults={**pix2pix().defaults, "lr": "fast"}))

    components = load_components(autoload=False, plugins=[Plugin()])
    with pytest.raises(OptionError, match=r"^recipe 'fast' \(plugin '.*Plugin'\) has a default that is not a setting's value: lr must "
                                          r"be a number, got 'fast'. Fix the recipe's defaults.$"):
        Trainer(TrainConfig(recipe="fast", data=str(pairs), out=str(tmp_path / "run"), **TINY), components=components)


def test_a_recipe_names_its_system_class(components):
    with pytest.raises(OptionError, match=r"recipe 'x' has system='PairedSystem': give the System subclass"):
        Recipe(name="x", system="PairedSystem")
    with pytest.raises(OptionError, match="recipe 'x' has system=<class 'dict'>"):
        Recipe(name="x", system=dict)
    for kind, name in (("generator", None), (None, "unet")):
        with pytest.raises(OptionError, match="a generator name must be a string such as '.*', not None|a component kind must be a string such as 'generator', not None"):
            components.create(kind, name)


def test_describe_lists_a_recipes_options(components):
    assert describe("recipe", "clipped", components)["options"] == {"clip": 0.01, "note": "x", "bound": None}
    assert describe("recipe", "pix2pix")["options"] == {}


def test_the_cli_names_a_recipe_option_the_recipe_lacks(pairs, tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--recipe-opt", "clip=1,note=y"])
    assert result.exit_code != 0
    assert "recipe 'pix2pix' has no option clip, note (its options: none)" in result.output


def test_numbers_of_other_kinds_are_stored_as_plain_ones(pairs, tmp_path, components):
    """numpy and fractions numbers (from a sweep, say) become int and float: TOML and safe checkpoint loading take no others."""
    config = TrainConfig(recipe="clipped").merged({"lr": np.float32(0.5), "max_steps": np.int64(2), "decay_start": fractions.Fraction(1, 2),
                                                   "recipe_opt": {"clip": np.float64(0.05)}, "gen_opt": {"ngf": np.int32(8)}})
    assert [type(value) for value in (config.lr, config.max_steps, config.decay_start, config.gen_opt["ngf"])] == [float, int, float, int]
    assert type(components.create("recipe", "clipped").settings({"clip": np.float32(0.25)})["clip"]) is float
    built = TrainConfig(lr=np.float64(1e-4), flip=np.bool_(True), out=tmp_path / "out", gen_opt={"betas": (1, 2)})  # not through merged
    assert (type(built.lr), type(built.flip), built.out, built.gen_opt) == (float, bool, str(tmp_path / "out"), {"betas": [1, 2]})
    merged = TrainConfig().merged({"flip": np.bool_(False), "out": tmp_path / "out"})
    assert (type(merged.flip), merged.out) == (bool, str(tmp_path / "out"))
    with pytest.raises(TypeError, match="has no TOML form"):
        to_toml({"gen_opt": {"weights": object()}})
    trainer = Trainer(config.merged({"data": str(pairs), "out": str(tmp_path / "run"), **TINY, "lr": np.float32(2e-4)}),
                      components=components, progress=False)
    trainer.fit()
    assert read_config_file(tmp_path / "run" / "config.toml")["recipe_opt"]["clip"] == 0.05
    Trainer.resume(tmp_path / "run", {"max_steps": 3}, components=components, progress=False).fit()


class Norm(str, enum.Enum):
    BATCH = "batch"
    INSTANCE = "instance"


def test_text_enum_members_are_stored_as_their_text_and_the_run_loads(pairs, tmp_path):
    """A str enum's member is a global that safe checkpoint loading refuses: options, recipe defaults and network
    factory defaults hold its text."""

    def unet_with_enum(in_channels=3, out_channels=3, ngf=8, norm: Norm = Norm.INSTANCE):
        """U-Net whose norm default is an enum member."""
        return create("generator", "unet", in_channels=in_channels, out_channels=out_channels, ngf=ngf, num_downs=5,
                      norm=Norm(norm).value)  # text from the command line or a checkpoint

    class Plugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("enum-unet", unet_with_enum)

        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("enum", lambda: Recipe(name="enum", system=ClippedSystem, defaults={**pix2pix().defaults, "gen": "enum-unet", "gen_opt": {}},
                                                options={"clip": 0.01, "mode": Norm.BATCH}))

    components = load_components(autoload=False, plugins=[Plugin()])
    TINY_ENUM = {**TINY, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8, "norm": Norm.INSTANCE}}
    Trainer(TrainConfig(recipe="enum", data=str(pairs), out=str(tmp_path / "run"), max_steps=1, **TINY_ENUM),
            components=components, progress=False).fit()
    system = ckpt.load_checkpoint(tmp_path / "run")["system"]
    assert (system["recipe_opt"]["mode"], system["disc_opt"]["norm"], system["gen_defaults"]["norm"]) == ("batch", "instance", "instance")
    assert all(type(value) is str for value in (system["recipe_opt"]["mode"], system["gen_defaults"]["norm"]))
    TrainedModel.load(tmp_path / "run", components=components)


def test_a_recipe_default_a_checkpoint_cannot_hold_names_the_recipe_and_the_value(pairs, tmp_path):
    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("objects", lambda: Recipe(name="objects", system=PairedSystem,
                                                   defaults={**pix2pix().defaults, "gen_opt": {"act": torch.nn.ReLU}}))

    components = load_components(autoload=False, plugins=[Plugin()])
    with pytest.raises(OptionError, match=r"^recipe 'objects' \(plugin '.*Plugin'\) has a default that is not a setting's value: gen_opt "
                                          r"holds \{'act': <class 'torch.nn.modules.activation.ReLU'>\}, with a value a checkpoint cannot hold"):
        Trainer(TrainConfig(recipe="objects", data=str(pairs), out=str(tmp_path / "run"), **TINY), components=components)
    assert not (tmp_path / "run").exists()


def test_resume_takes_a_text_option_given_as_none(pairs, tmp_path, components):
    Trainer(config(pairs, tmp_path / "run", max_steps=1, recipe_opt={"note": None}), components=components, progress=False).fit()
    resumed = Trainer.resume(tmp_path / "run", {"recipe_opt": {"note": None, "bound": "none"}, "max_steps": 2},  # as the CLI and a TOML give them
                             components=components, progress=False)
    assert resumed.fit() and resumed.system.config["recipe_opt"] == {"clip": 0.01, "note": "none", "bound": None}


def test_a_run_resumes_and_loads_after_its_recipe_gained_and_lost_options(pairs, tmp_path, components):
    Trainer(config(pairs, tmp_path / "run", max_steps=1, recipe_opt={"clip": 0.05}), components=components, progress=False).fit()
    changed = recipe_plugin(clip=0.01, every=2)
    with pytest.warns(GantkWarning) as caught:
        resumed = Trainer.resume(tmp_path / "run", {"max_steps": 2}, components=changed, progress=False)
        resumed.fit()
    messages = " ".join(str(w.message) for w in caught)
    assert "no longer takes note='x', bound=None" in messages and "take their defaults: every=2" in messages
    assert resumed.system.config["recipe_opt"] == {"clip": 0.05, "every": 2}
    with pytest.warns(GantkWarning) as caught:  # the older checkpoint still holds the options as they were
        system, _ = ckpt.system_from_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[0], components=changed)
    assert [str(w.message).split(",")[0] for w in caught] == [
        "recipe 'clipped' no longer takes note='x'",
        "recipe 'clipped' has options the run was trained without; they take their defaults: every=2.",
    ]
    assert system.config["recipe_opt"] == {"clip": 0.05, "every": 2}
    with pytest.warns(GantkWarning) as caught:  # loaded to translate: told of what it lost only
        ckpt.system_from_checkpoint(ckpt.list_checkpoints(tmp_path / "run")[0], components=changed, to_translate=True)
    assert [str(w.message).split(",")[0] for w in caught] == ["recipe 'clipped' no longer takes note='x'"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the newest checkpoint holds the options as they are now
        ckpt.system_from_checkpoint(tmp_path / "run", components=changed)


def test_each_old_checkpoint_gets_its_own_tables(pairs, tmp_path):
    Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), max_steps=1, **TINY), progress=False).fit()
    path = ckpt.list_checkpoints(tmp_path / "run")[-1]
    payload = torch.load(path, weights_only=True)
    del payload["system"]["recipe_opt"]
    torch.save(payload, path)
    ckpt.load_checkpoint(path)["system"]["recipe_opt"]["changed"] = True
    assert ckpt.load_checkpoint(path)["system"]["recipe_opt"] == {} and ckpt.LATER_SYSTEM_KEYS["recipe_opt"] == {}
