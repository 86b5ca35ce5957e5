"""``gantk multiscale-info``, added to the gantk command group through the plugin hook."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gantk import load_components
from gantk.cli import cli
from gantk_multiscale import MultiscaleDiscriminator


@pytest.fixture(scope="module")
def runner():
    components = load_components(autoload=False, plugins=["gantk_multiscale.plugin"])
    components.call_hook("gantk_register_commands", cli=cli)
    assert not components.failures
    return CliRunner()


def test_lists_every_scale(runner):
    result = runner.invoke(cli, ["multiscale-info", "--num-scales", "3", "--size", "256"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "93x93" in lines[1]
    assert lines[3].split()[:4] == ["0", "256x256", "30x30", "70"]
    assert lines[4].split()[:4] == ["1", "128x128", "14x14", "141"]
    assert lines[5].split()[:4] == ["2", "64x64", "6x6", "283"]


def test_json_matches_the_model(runner):
    result = runner.invoke(cli, ["multiscale-info", "--num-scales", "2", "--n-layers", "2", "--ndf", "8", "--size", "48", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    model = MultiscaleDiscriminator(6, num_scales=2, n_layers=2, ndf=8)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert [row["logits"] for row in info["scales"]] == [list(s) for s in model.logit_sizes(48, 48)]
    assert [row["receptive_field"] for row in info["scales"]] == list(model.receptive_fields)
    assert info["min_input_size"] == model.min_input_size


def test_says_when_the_input_is_too_small(runner):
    result = runner.invoke(cli, ["multiscale-info", "--size", "64"])
    assert result.exit_code == 0
    assert "too small for these options, which need 93 px: train at a --crop-size of 93 or more" in result.output
    result = runner.invoke(cli, ["multiscale-info", "--num-scales", "12", "--size", "8"])
    assert "which need 47105 px: that is more than gantk trains at (16384 px a side): lower --num-scales" in result.output


def test_rejects_bad_options(runner):
    result = runner.invoke(cli, ["multiscale-info", "--norm", "group"])
    assert result.exit_code == 2 and "group" in result.output
