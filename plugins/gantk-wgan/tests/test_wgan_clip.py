"""The weight-clipped WGAN: the `wgan` objective and the `wgan-clip` recipe, as a user runs them."""

import pytest
import torch
from click.testing import CliRunner

from gantk import load_components
from gantk.cli import cli
from gantk.testing import ObjectiveConformance, SystemConformance
from gantk.train import checkpoint as ckpt
from gantk.train.config import read_config_file
from gantk_wgan import WGANGPLoss
from test_wgan_train import write_pairs

PLUGINS = ["gantk_wgan.plugin"]
TINY = ["--load-size", "32", "--crop-size", "32", "--batch-size", "2", "--workers", "0", "--gen-opt", "ngf=8",
        "--disc-opt", "ndf=8", "--log-every", "1", "--no-progress"]


class TestWGANConformance(ObjectiveConformance):
    name = "wgan"
    plugins = PLUGINS


class TestWeightClippedSystemConformance(SystemConformance):
    name = "wgan-clip"
    options = {"clip": 0.05}
    plugins = PLUGINS


def test_wgan_is_the_critic_loss_without_a_penalty():
    loss = load_components(autoload=False, plugins=PLUGINS).create("objective", "wgan")
    assert isinstance(loss, WGANGPLoss) and loss.lambda_gp == 0


def train(tmp_path, *flags):
    data = write_pairs(tmp_path / "pairs")
    args = ["train", "--recipe", "wgan-clip", "--data", data, "--out", tmp_path / "run", *TINY, *flags]
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_gantk_train_clips_the_critic_after_each_of_its_steps(tmp_path):
    result = train(tmp_path, "--recipe-opt", "clip=0.02", "--max-steps", "3", "--n-critic", "1")  # G steps too
    assert result.exit_code == 0, result.output
    assert read_config_file(tmp_path / "run" / "config.toml")["recipe_opt"] == {"clip": 0.02}
    system, payload = ckpt.system_from_checkpoint(tmp_path / "run")
    assert payload["step"] == 3 and system.clip == 0.02
    critic = torch.cat([p.flatten() for p in system.networks["D"].parameters()])
    generator = torch.cat([p.flatten() for p in system.networks["G"].parameters()])
    assert (critic.min().item(), critic.max().item()) == pytest.approx((-0.02, 0.02))  # clipped both ways; some weights needed it
    assert generator.abs().max() > 0.1  # the generator's weights, updated by its own steps, are left alone


def test_the_recipe_follows_the_paper_unless_told_otherwise(tmp_path):
    result = train(tmp_path, "--max-steps", "5")  # one generator step
    assert result.exit_code == 0, result.output
    config = read_config_file(tmp_path / "run" / "config.toml")
    assert config["recipe_opt"] == {"clip": 0.01} and config["n_critic"] == 5 and config["lr"] == 5e-5
    assert config["decay_start"] == 1.0  # a constant learning rate
    assert config["loss"] == "wgan+l1@100"


@pytest.mark.parametrize("clip", ["0", "-0.01", "nan", "inf"])
def test_a_clip_that_is_not_positive_is_refused(tmp_path, clip):
    result = CliRunner().invoke(cli, ["train", "--recipe", "wgan-clip", "--data", str(write_pairs(tmp_path / "pairs")),
                                      "--out", str(tmp_path / "run"), "--recipe-opt", f"clip={clip}", *TINY])
    assert result.exit_code != 0
    assert f"--recipe-opt clip must be a finite positive number (0.01 in the paper), got {clip}." in result.output


def test_a_spectral_norm_critic_is_refused(tmp_path):
    result = train(tmp_path, "--disc", "sn-patch70", "--max-steps", "1")
    assert result.exit_code != 0
    assert "clips the weights of discriminator 'sn-patch70', but it reparametrizes them" in result.output


def test_describe_shows_the_clip_option():
    result = CliRunner().invoke(cli, ["describe", "recipe", "wgan-clip"])
    assert result.exit_code == 0 and "clip = 0.01" in result.output and "options:" in result.output
