"""Reduced precision on a CPU without native kernels for it: one clear warning, in the library and the CLI."""

import warnings

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import GantkWarning
from gantk.train import precision
from helpers import write_paired


@pytest.fixture
def no_fast_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_kernels", lambda name: name == "fp32")


@pytest.mark.parametrize("name, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16), ("fp32", torch.float32)])
def test_autocast_computes_in_the_precision_asked_for(name, dtype):
    with precision.autocast(torch.device("cpu"), name):
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == dtype


def test_warns_for_slow_reduced_precision_on_cpu(no_fast_bf16):
    with pytest.warns(GantkWarning, match=r"--precision bf16: this CPU .* --precision fp32"):
        precision.warn_if_slow(torch.device("cpu"), "bf16")


@pytest.mark.parametrize("device, name", [("cpu", "fp32"), ("cuda", "bf16"), ("cuda", "fp16")])
def test_no_warning_where_the_precision_is_fast(no_fast_bf16, device, name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.warn_if_slow(torch.device(device), name)


def test_no_warning_on_a_cpu_with_native_kernels(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_fast_kernels", lambda name: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        precision.warn_if_slow(torch.device("cpu"), "bf16")


def test_cpu_has_fast_fp32_always():
    assert precision.cpu_has_fast_kernels("fp32")
    assert isinstance(precision.cpu_has_fast_kernels("bf16"), bool)


def test_train_prints_the_warning_as_one_line(no_fast_bf16, tmp_path):
    data = write_paired(tmp_path / "pairs", count=2, size=32)
    args = ["train", "--data", data, "--out", tmp_path / "run", "--precision", "bf16", "--max-steps", "1",
            "--load-size", "32", "--crop-size", "32", "--batch-size", "2", "--workers", "0",
            "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--no-progress"]
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0
    lines = [line for line in result.stderr.splitlines() if "--precision bf16" in line]
    assert lines and lines[0].startswith("warning: --precision bf16: this CPU")
    assert "Traceback" not in result.stderr and "warnings.warn" not in result.stderr
