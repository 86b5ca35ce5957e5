"""Tiny datasets written on the fly, and other helpers shared by the tests."""

from __future__ import annotations

import signal
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from torchvision.io import write_png

from gantk.train.logs import TIMINGS

# Devices to run device-dependent tests on: CUDA ones skip, with the reason, on a machine without a GPU.
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


# gantk train flags of a tiny run (32 px crops, 8-filter networks), for CLI tests
TINY_FLAGS = ("--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--workers", "0", "--gen-opt", "ngf=8",
              "--disc-opt", "ndf=8", "--no-progress")


def without_timings(rows: list[dict]) -> list[dict]:
    """Metrics rows without the columns that differ between two runs of the same settings (images/s, ...)."""
    return [{key: value for key, value in row.items() if key not in TIMINGS} for row in rows]


def smooth_image(seed: int, size: int = 40, channels: int = 3) -> torch.Tensor:
    """A uint8 image of soft random blobs (learnable structure, unlike white noise)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, channels, 5, 5, generator=generator)
    image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)[0]
    return (image * 255).to(torch.uint8)


def write_paired(root: Path, count: int = 6, size: int = 40, channels_a: int = 3) -> Path:
    for side in ("A", "B"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        b = smooth_image(i, size)
        a = b.float().mean(0, keepdim=True).to(torch.uint8)
        write_png(a.expand(channels_a, -1, -1).contiguous() if channels_a != 1 else a, str(root / "A" / f"{i:03d}.png"))
        write_png(b, str(root / "B" / f"{i:03d}.png"))
    return root


def write_segmentation(root: Path, count: int = 6, size: int = 40, num_classes: int = 2) -> Path:
    for side in ("images", "masks"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = smooth_image(i, size)
        ids = (image.float().mean(0) * num_classes / 256).long().clamp(max=num_classes - 1)
        mask = (ids * 255 if num_classes == 2 else ids).to(torch.uint8)[None]
        write_png(image, str(root / "images" / f"{i:03d}.png"))
        write_png(mask, str(root / "masks" / f"{i:03d}.png"))
    return root


def write_unaligned(root: Path, count_a: int = 5, count_b: int = 4, size: int = 40, channels_a: int = 3) -> Path:
    for side, count, offset, channels in (("trainA", count_a, 0, channels_a), ("trainB", count_b, 100, 3)):
        (root / side).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            write_png(smooth_image(offset + i, size, channels), str(root / side / f"{i:03d}.png"))
    return root


class MeanFeatures(torch.nn.Module):
    """A stand-in for InceptionV3 (2048-d features), so FID/KID/precision/recall run in milliseconds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1)  # 3 * 64 values
        return pooled.repeat(1, 11)[:, :2048]


def write_stand_in_inception(path: Path) -> Path:
    """A TorchScript file of :class:`MeanFeatures`, taken where InceptionV3 weights are."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(MeanFeatures()).save(str(path))
    return path


def fit_recording_optimizer_steps(trainer):
    """Train, and per optimizer step record which networks' weights changed and the gradients before it."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    steps, state = [], {}

    def snapshot():
        nets = trainer.system.networks
        weights = {n: [p.detach().clone() for p in net.parameters()] for n, net in nets.items()}
        grads = {n: [None if p.grad is None else p.grad.clone() for p in net.parameters()] for n, net in nets.items()}
        return weights, grads

    def changed(before, after):
        def differs(a, b):
            return (a is None) != (b is None) or (a is not None and not torch.equal(a, b))

        return {n for n in before if any(differs(a, b) for a, b in zip(before[n], after[n]))}

    def pre(optimizer, args, kwargs):
        state["before"] = snapshot()

    def post(optimizer, args, kwargs):
        weights, grads = snapshot()
        steps.append((changed(state["before"][0], weights), state.get("grads")))
        state["grads"] = grads

    handles = [register_optimizer_step_pre_hook(pre), register_optimizer_step_post_hook(post)]
    try:
        trainer.fit()
    finally:
        for handle in handles:
            handle.remove()
    return steps


def train_interrupted_then_resumed(config, stop_at=None):
    """Train ``config``; when ``stop_at`` is given, stop after that step (as a crash would) and resume."""
    from gantk.train import Trainer

    class Interrupted(Exception):
        pass

    def interrupt(trainer, step, logged):
        if step == stop_at:
            raise Interrupted

    try:
        Trainer(config, progress=False, callbacks=[interrupt]).fit()
    except Interrupted:
        Trainer.resume(config.out, progress=False).fit()


def losses_and_gradients(config):
    """Train ``config``: the losses of its last log row and each network's gradients, flattened, after its last step."""
    from gantk.train import Trainer

    logged = {}
    trainer = Trainer(config, progress=False, callbacks=[lambda trainer, step, values: logged.update(values)])
    trainer.fit()
    return logged, {name: torch.cat([p.grad.flatten() for p in net.parameters()]) for name, net in trainer.system.networks.items()}


def exploding_components(name: str = "exploding", explodes: bool = True):
    """Components with the objective ``name``: L1 that turns into NaN from its second step on
    (when ``explodes``; a process of a multi-process run may be told it does not)."""
    from gantk import Objective, hookimpl, load_components

    class Exploding(Objective):
        """L1 that turns into NaN from the second step on."""

        def __init__(self):
            super().__init__()
            self.calls = 0

        def generator_loss(self, ctx):
            self.calls += 1
            loss = (ctx.fake - ctx.real).abs().mean()
            return loss * float("nan") if explodes and self.calls >= 2 else loss

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add(name, Exploding)

    return load_components(autoload=False, plugins=[Plugin()])


def learned_objective_components():
    """Components with the objective ``learned``: L1 times a parameter that takes gradients, which no phase trains."""
    from gantk import Objective, hookimpl, load_components

    class Learned(Objective):
        """L1 times a scale the user may think is learned."""

        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def generator_loss(self, ctx):
            return self.scale * (ctx.fake - ctx.real).abs().mean()

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("learned", Learned)

    return load_components(autoload=False, plugins=[Plugin()])


def components_with_generator(name: str, factory):
    """The built-in components and one plugin generator ``name`` built by ``factory``."""
    from gantk import hookimpl, load_components

    class Plugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add(name, factory)

    return load_components(autoload=False, plugins=[Plugin()])


def failed_tests(pytester, source: str):
    """Run the test file ``source`` in ``pytester``: its result and the sorted names of the tests that failed."""
    pytester.makepyfile(test_broken=source)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = sorted(report.nodeid.split("::", 1)[1] for report in result.reprec.getreports("pytest_runtest_logreport") if report.failed)
    return result, failed


def signalled_once_training(command: list[str], run_dir: Path, signum: int, env: dict | None = None) -> tuple[int, str]:
    """Run the training ``command`` in a session of its own, send ``signum`` to its whole process group
    (as a terminal's Ctrl-C or a job scheduler does) once ``run_dir`` logged 3 rows; its exit status and stderr."""
    import os
    import subprocess
    import time

    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
    try:
        metrics = run_dir / "metrics.csv"
        deadline = time.monotonic() + 180
        while not (metrics.is_file() and len(metrics.read_text().splitlines()) > 3) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.killpg(process.pid, signum)
        _, stderr = process.communicate(timeout=120)
    finally:  # a failed or killed test leaves no training behind
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, stderr


def flip_a_bit(path: Path, entry: str) -> None:
    """Flip the lowest bit of the middle byte of the zip entry of ``path`` whose name ends in ``entry``, as a failing
    disk might (a weight's last mantissa bit: nothing in the values shows it)."""
    with zipfile.ZipFile(path) as archive:
        info = next(info for info in archive.infolist() if info.filename.endswith(entry))
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length + info.file_size // 2] ^= 1
    path.write_bytes(bytes(data))
