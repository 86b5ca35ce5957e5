"""DistributedDataParallel through torchrun: 2 CPU processes on the gloo backend."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import write_paired, write_unaligned

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("recipe", ["pix2pix", "cyclegan"])
def test_two_process_replicas_stay_identical(tmp_path, recipe):
    if recipe == "pix2pix":
        data, extra = write_paired(tmp_path / "data", count=8), {}
    else:
        data, extra = write_unaligned(tmp_path / "data", 8, 6), {"gen": "resnet6", "gen_opt": {"ngf": 8}}
    config = {
        "recipe": recipe, "data": str(data), "out": str(tmp_path / "run"), "load_size": 36, "crop_size": 32,
        "batch_size": 2, "max_steps": 3, "workers": 0, "log_every": 1, "checkpoint_every": 3,
        "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}, **extra,
    }
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
        "--master-port", str(free_port()), str(WORKER), json.dumps(config), str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    replicas = [torch.load(tmp_path / f"replica-{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert replicas[0].keys() == replicas[1].keys()
    for name, value in replicas[0].items():
        assert torch.equal(value, replicas[1][name]), name
    run = tmp_path / "run"
    assert (run / "checkpoint-00000003.pt").is_file()
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3  # one writer: header + 3 steps
