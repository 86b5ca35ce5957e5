"""The example plugin packages under plugins/, installed: discovery, CLI command, and training with them."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json

import pytest
from click.testing import CliRunner

from gantk.cli import cli
from gantk.plugins import AUTOLOAD_ENV, default_components, load_components
from helpers import write_paired

PACKAGES = {"gantk-multiscale": "gantk_multiscale", "gantk-wgan": "gantk_wgan"}
MISSING = [dist for dist, module in PACKAGES.items() if importlib.util.find_spec(module) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"plugin packages not installed ({', '.join(MISSING)}): pip install -e plugins/gantk-multiscale -e plugins/gantk-wgan",
)

TINY = ["--gen-opt", "ngf=8", "--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--max-steps", "2",
        "--workers", "0", "--no-progress"]


@pytest.fixture
def components(monkeypatch):
    """Components loaded from entry points, as the gantk command loads them."""
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    default_components.cache_clear()
    yield default_components()
    default_components.cache_clear()


@pytest.mark.parametrize("distribution, module", [("gantk", "gantk"), ("gantk-wgan", "gantk_wgan"),
                                                  ("gantk-multiscale", "gantk_multiscale")])
def test_each_package_has_one_version_and_ships_its_licence(distribution, module):
    import importlib.metadata

    metadata = importlib.metadata.metadata(distribution)
    assert importlib.metadata.version(distribution) == importlib.import_module(module).__version__
    assert metadata["License-Expression"] == "MIT" and metadata.get_all("License-File") == ["LICENSE"]


def test_entry_points_register_the_components(components):
    assert not components.failures, [str(f) for f in components.failures]
    plugins = {
        ("discriminator", "multiscale"): "gantk-multiscale",
        ("objective", "feature-matching"): "gantk-multiscale",
        ("objective", "wgan-gp"): "gantk-wgan",
        **{("discriminator", name): "gantk-wgan" for name in ("sn-patch", "sn-patch16", "sn-patch70", "sn-patch286", "sn-pixel", "sn-image")},
    }
    for (kind, name), plugin in plugins.items():
        assert components.registry(kind).get(name).plugin == plugin


def test_plugin_command_runs():
    components = load_components(autoload=True)
    components.call_hook("gantk_register_commands", cli=cli)
    assert not components.failures
    result = CliRunner().invoke(cli, ["multiscale-info", "--num-scales", "2", "--ndf", "8", "--size", "64", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert [row["receptive_field"] for row in info["scales"]] == [70, 141]
    assert [row["logits"] for row in info["scales"]] == [[6, 6], [2, 2]]


@pytest.mark.parametrize(
    "disc, disc_opt, loss, columns",
    [
        ("multiscale", "ndf=8,num_scales=2,n_layers=2", "bce+feature-matching+l1", {"D/bce", "G/bce", "G/feature-matching", "G/l1"}),
        ("sn-patch70", "ndf=8", "wgan-gp+l1", {"D/wgan-gp", "G/wgan-gp", "G/l1"}),
        ("multiscale", "ndf=8,num_scales=2,n_layers=2,norm=instance", "wgan-gp+feature-matching+l1",
         {"D/wgan-gp", "G/wgan-gp", "G/feature-matching", "G/l1"}),
        ("sn-patch16", "ndf=8", "hinge+feature-matching@4+l1", {"D/hinge", "G/hinge", "G/feature-matching", "G/l1"}),
    ],
)
def test_gantk_train_with_plugin_components(components, tmp_path, disc, disc_opt, loss, columns):
    data, out = write_paired(tmp_path / "pairs"), tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--disc", disc, "--disc-opt", disc_opt, "--loss", loss, *TINY]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with (out / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert int(rows[-1]["step"]) == 2
    assert columns <= set(rows[-1]), sorted(rows[-1])
    assert all(float(rows[-1][column]) == float(rows[-1][column]) for column in columns)  # not NaN


def test_a_checkpoint_names_the_packages_its_plugin_parts_came_from(components, tmp_path):
    from gantk.errors import CheckpointError
    from gantk.train import checkpoint as ckpt

    data, out = write_paired(tmp_path / "pairs"), tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(out), "--disc", "sn-patch16", "--disc-opt", "ndf=8", *TINY]
    assert CliRunner().invoke(cli, args).exit_code == 0
    recorded = ckpt.load_checkpoint(out)["part_plugins"]
    version = importlib.import_module("gantk_wgan").__version__
    assert recorded["discriminator"]["sn-patch16"]["package"] == f"gantk-wgan {version}"
    assert recorded["generator"]["unet"]["package"] == f"gantk {importlib.import_module('gantk').__version__}"
    with pytest.raises(CheckpointError, match=rf"unknown discriminator 'sn-patch16'.* Install \(or load\) the plugin\(s\) the run "
                                              rf"was trained with: gantk-wgan \(package gantk-wgan {version}\)\.$"):
        ckpt.system_from_checkpoint(out, components=load_components(autoload=False))
