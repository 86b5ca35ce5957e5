"""Freed host memory is kept for the next step or batch on the CPU, and given back when the loop ends."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys

import pytest
import torch

from gantk import host_memory
from gantk.errors import GantkWarning
from gantk.evaluate import evaluate
from gantk.inference import TrainedModel
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import write_paired

# Rounds like steps: eight 4 MiB blocks, one of 24 MiB and one of 48 MiB malloc'ed (as torch allocates tensors),
# written, then freed; the page faults of each round. Huge pages are off, so faults count pages of the
# system's size whatever the host's huge-page setting; "plain" holds glibc's default threshold fixed
# (its adaptive one depends on the heap's layout).
ROUNDS = """
import ctypes, json, resource, sys, torch
from gantk import host_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes, libc.memset.argtypes = [ctypes.c_void_p], [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
sizes = [4 * 2**20] * 8 + [24 * 2**20, 48 * 2**20]
if sys.argv[1] == "plain":
    kept = not libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
elif sys.argv[1] == "after":  # a loop that kept memory has ended
    with host_memory.freed_memory_kept(torch.device("cpu")):
        pass
    kept, sizes = False, sizes[:-1]  # blocks under 32 MiB
else:
    kept = host_memory.keep_freed_memory(torch.device("cpu"))
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [(libc.malloc(size), size) for size in sizes]
    for address, size in blocks:
        libc.memset(address, 1, size)
    for address, _ in reversed(blocks):
        libc.free(address)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""
PAGES = (8 * 4 + 24 + 48) * 2**20 // resource.getpagesize()


def unset_malloc_choices(env: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if key not in ("LD_PRELOAD", "GLIBC_TUNABLES") and not key.startswith("MALLOC_")}


def faults_per_round(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, env=unset_malloc_choices(os.environ))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


GLIBC_ONLY = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")


@GLIBC_ONLY
def test_kept_memory_serves_the_next_rounds_without_page_faults():
    plain, kept = faults_per_round("plain"), faults_per_round("keep")
    assert not plain["kept"] and kept["kept"]
    assert min(plain["faults"][1:]) > PAGES // 2, plain  # the control: each round faults its buffers in again
    assert sum(kept["faults"][1:]) < PAGES // 100, kept


@GLIBC_ONLY
def test_after_the_loop_blocks_under_32_mib_come_from_the_heap_again():
    """Without the thresholds set after the loop, glibc's first ones (128 KiB) would map each such block afresh
    for the rest of the process, as the control above shows."""
    after = faults_per_round("after")
    assert sum(after["faults"][1:]) < PAGES // 100, after


class RecordingLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, parameter, value):
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    recording = RecordingLibc()
    monkeypatch.setattr(host_memory, "_glibc", lambda: recording)
    for name in [name for name in os.environ if name == "GLIBC_TUNABLES" or name.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    return recording


NO_MMAP, NEVER_TRIM = ("mallopt", -4, 0), ("mallopt", -1, -1)
AFTER_MMAP, AFTER_THRESHOLD, AFTER_TRIM = ("mallopt", -4, 65536), ("mallopt", -3, 32 * 2**20), ("mallopt", -1, 64 * 2**20)
AFTER = [AFTER_MMAP, AFTER_THRESHOLD, AFTER_TRIM]


def test_the_cpu_keeps_memory_and_gives_it_back_with_the_thresholds_glibc_would_reach(libc):
    assert host_memory.keep_freed_memory(torch.device("cpu")) is True
    host_memory.give_back_freed_memory()
    assert libc.calls == [NO_MMAP, NEVER_TRIM, *AFTER, ("malloc_trim", 0)]


def test_a_block_inside_another_leaves_memory_kept_for_the_outer_one(libc):
    with host_memory.freed_memory_kept(torch.device("cpu")):
        with host_memory.freed_memory_kept(torch.device("cpu")):  # an evaluation inside a training run, say
            pass
        assert libc.calls == [NO_MMAP, NEVER_TRIM] * 2
    assert libc.calls == [NO_MMAP, NEVER_TRIM] * 2 + [*AFTER, ("malloc_trim", 0)]


@pytest.mark.parametrize("variable, value, made, restored", [
    ("MALLOC_TRIM_THRESHOLD_", "0", [NO_MMAP], [AFTER_MMAP]),  # glibc's threshold then stays 128 KiB: left so
    ("MALLOC_MMAP_MAX_", "8", [NEVER_TRIM], [AFTER_TRIM]),
    ("MALLOC_TOP_PAD_", "0", [NO_MMAP, NEVER_TRIM], [AFTER_MMAP, AFTER_TRIM]),
    ("MALLOC_MMAP_THRESHOLD_", "1048576", [NEVER_TRIM], [AFTER_TRIM]),  # mappings above it: left on
    ("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=1048576", [NEVER_TRIM], [AFTER_TRIM]),
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0:glibc.malloc.mmap_max=0", [], []),
    ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", [NO_MMAP, NEVER_TRIM], AFTER),  # another setting
    ("MALLOC_ARENA_MAX", "2", [NO_MMAP, NEVER_TRIM], AFTER),
])
def test_a_value_the_environment_sets_is_left_as_it_is(libc, monkeypatch, variable, value, made, restored):
    monkeypatch.setenv(variable, value)
    assert host_memory.keep_freed_memory(torch.device("cpu")) is bool(made)
    assert libc.calls == made
    libc.calls.clear()
    host_memory.give_back_freed_memory()
    assert libc.calls == [*restored, ("malloc_trim", 0)]


def test_one_setting_made_is_enough_to_give_memory_back(libc, monkeypatch):
    monkeypatch.setattr(libc, "mallopt", lambda parameter, value: int(parameter == -1))  # the mapping limit refused
    assert host_memory.keep_freed_memory(torch.device("cpu")) is True


def test_nothing_is_set_on_cuda_or_without_glibc(libc, monkeypatch):
    assert host_memory.keep_freed_memory(torch.device("cuda", 0)) is False
    assert libc.calls == []
    monkeypatch.setattr(host_memory, "_glibc", lambda: None)
    assert host_memory.keep_freed_memory(torch.device("cpu")) is False
    host_memory.give_back_freed_memory()


PRELOADED_MALLOC = """
#include <stddef.h>
extern void *__libc_malloc(size_t size);
void *malloc(size_t size) { return __libc_malloc(size); }
"""


@GLIBC_ONLY
@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler to build a preloaded malloc")
def test_a_preloaded_malloc_is_left_alone(tmp_path):
    (tmp_path / "malloc.c").write_text(PRELOADED_MALLOC)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / "malloc.so"), str(tmp_path / "malloc.c")], check=True)
    script = "import torch; from gantk import host_memory; print(host_memory.keep_freed_memory(torch.device('cpu')))"
    for preload, kept in [(None, "True"), (str(tmp_path / "malloc.so"), "False")]:
        env = unset_malloc_choices(os.environ) | ({"LD_PRELOAD": preload} if preload else {})
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == kept, preload


def tiny_config(data, out, **overrides):
    return TrainConfig(data=str(data), out=str(out), load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2,
                       gen_opt={"ngf": 8}, disc_opt={"ndf": 8}, **overrides)


@pytest.fixture
def events(monkeypatch):
    """What happens in order: keeping memory (and for which device), giving it back, and the steps between."""
    happened = []
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda device: happened.append(("keep", device.type)) or True)
    monkeypatch.setattr(host_memory, "give_back_freed_memory", lambda: happened.append("give back"))
    return happened


@pytest.mark.parametrize("kept", [True, False])
@pytest.mark.parametrize("fails", [False, True])
def test_training_on_the_cpu_keeps_memory_while_it_steps_and_gives_it_back_after(tmp_path, monkeypatch, events, fails, kept):
    monkeypatch.setattr(host_memory, "keep_freed_memory", lambda device: events.append(("keep", device.type)) or kept)
    step = Trainer.train_step

    def recorded_step(self, parts, batch):
        events.append("step")
        if fails:
            raise RuntimeError("a failing step")
        return step(self, parts, batch)

    monkeypatch.setattr(Trainer, "train_step", recorded_step)
    trainer = Trainer(tiny_config(write_paired(tmp_path / "pairs"), tmp_path / "run"), progress=False)
    if fails:
        with pytest.raises(RuntimeError, match="a failing step"):
            trainer.fit()
    else:
        trainer.fit()
    assert events == [("keep", "cpu"), *["step"] * (1 if fails else 2), *["give back"] * kept]


def test_translating_and_evaluating_keep_memory_for_their_batches_and_give_it_back_after(tmp_path, monkeypatch, events):
    pairs = write_paired(tmp_path / "pairs", count=4)
    run = Trainer(tiny_config(pairs, tmp_path / "run"), progress=False).fit()
    events.clear()
    batch = TrainedModel.translate

    def recorded_batch(self, inputs, *args, **kwargs):
        events.append("batch")
        return batch(self, inputs, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "translate", recorded_batch)
    translate(run, pairs / "A", tmp_path / "out", device="cpu", batch_size=2)
    assert events == [("keep", "cpu"), "batch", "batch", "give back"]
    events.clear()
    with pytest.warns(GantkWarning, match="has no splits, so its images serve every split"):  # the run's own training images: enough here
        evaluate(run, pairs, device="cpu", batch_size=2, progress=False)
    assert events == [("keep", "cpu"), "batch", "batch", "give back"]
