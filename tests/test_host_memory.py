"""Freed host memory is kept for the next training step on the CPU, and given back when training ends."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
import torch

from gantk.train import Trainer, host_memory
from gantk.train import trainer as trainer_module
from helpers import write_paired
from test_train import tiny_config

# A step-like pattern: eight 4 MiB buffers alive at once, then all freed; the page faults of each round.
ROUNDS = """
import json, resource, sys, torch
from gantk.train.host_memory import keep_freed_memory
kept = sys.argv[1] == "keep" and keep_freed_memory(torch.device("cpu"))
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = [torch.ones(2**20) for _ in range(8)]
    del held
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def faults_per_round(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_kept_memory_serves_the_next_rounds_without_page_faults():
    pages = 8 * 2**22 // 4096
    plain, kept = faults_per_round("plain"), faults_per_round("keep")
    assert not plain["kept"] and kept["kept"]
    assert min(plain["faults"][3:]) > pages // 2  # by default each round faults its buffers in again
    assert sum(kept["faults"][3:]) < pages // 100


def test_nothing_is_set_on_cuda_or_without_glibc(monkeypatch):
    assert host_memory.keep_freed_memory(torch.device("cuda", 0)) is False
    monkeypatch.setattr(host_memory, "_glibc", lambda: None)
    assert host_memory.keep_freed_memory(torch.device("cpu")) is False
    host_memory.give_back_freed_memory()  # nothing to give back: no error


@pytest.mark.parametrize("fails", [False, True])
def test_training_on_the_cpu_keeps_memory_while_it_steps_and_gives_it_back_after(tmp_path, monkeypatch, fails):
    events = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda device: events.append(("keep", device.type)) or True)
    monkeypatch.setattr(trainer_module, "give_back_freed_memory", lambda: events.append("give back"))
    step = Trainer.train_step

    def recorded_step(self, parts, batch):
        events.append("step")
        if fails:
            raise RuntimeError("a failing step")
        return step(self, parts, batch)

    monkeypatch.setattr(Trainer, "train_step", recorded_step)
    trainer = Trainer(tiny_config(write_paired(tmp_path / "pairs"), tmp_path / "run", max_steps=2), progress=False)
    if fails:
        with pytest.raises(RuntimeError, match="a failing step"):
            trainer.fit()
    else:
        trainer.fit()
    assert events == [("keep", "cpu"), *["step"] * (1 if fails else 2), "give back"]
