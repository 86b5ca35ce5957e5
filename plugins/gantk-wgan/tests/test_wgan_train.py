"""WGAN-GP trained as the plugin's README says: `gantk train` with a spectral-norm critic and --n-critic."""

import csv

import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.data.io import write_png


def write_pairs(root, count=4, size=32):
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    for i in range(count):
        image = (torch.rand(3, size, size) * 255).to(torch.uint8)
        write_png(image, root / "A" / f"{i}.png")
        write_png(image.flip(-1), root / "B" / f"{i}.png")
    return root


def test_gantk_train_with_n_critic(tmp_path):
    data = write_pairs(tmp_path / "pairs")
    args = ["train", "--data", data, "--out", tmp_path / "run", "--disc", "sn-patch16", "--loss", "wgan-gp+l1",
            "--n-critic", "2", "--lr", "1e-4", "--beta1", "0", "--beta2", "0.9", "--max-steps", "4", "--log-every", "1",
            "--load-size", "32", "--crop-size", "32", "--batch-size", "2", "--workers", "0",
            "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--no-progress"]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["1", "2", "3", "4"]
    assert all(row["D/wgan-gp"] != "" for row in rows)
    assert [row["G/wgan-gp"] != "" for row in rows] == [False, True, False, True]
