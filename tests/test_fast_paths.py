"""The fast training paths (bf16, fp16, channels_last, torch.compile) against the fp32 eager step, and
their resume.

Each path is one step of ``Trainer.fit`` with the ``TrainConfig`` flags ``gantk train`` sets, on
the same fixed batch (same seed, no flip; at 32 px the U-Net has 5 levels and no dropout level),
compared with the default fp32 eager step on the same device (CPU, and CUDA where there is one): the
logged losses, and every network's gradients (relative error of the flattened gradient and its
cosine with the fp32 one).

The half-precision tolerances are set from what autocast itself gives: on these networks and this
batch, a plain eager autocast step is off the float64 gradients by 13.6% (bf16) and 7.8% (fp16) for
G, cosine 0.991 and 0.997, and gantk's autocast steps are off by the same amounts.
"""

import math

import pytest
import torch

from gantk.train import TrainConfig, Trainer
from gantk.train import trainer as trainer_module
from gantk.train.checkpoint import load_checkpoint
from gantk.train.logs import read_metrics
from helpers import (
    DEVICES, losses_and_gradients, train_interrupted_then_resumed, without_timings, write_paired, write_segmentation, write_unaligned,
)

# These check results, not speed: the warning about slow half precision on some CPUs does not matter here.
pytestmark = pytest.mark.filterwarnings("ignore::gantk.errors.GantkWarning")

TINY = dict(load_size=32, crop_size=32, batch_size=2, flip=False, workers=0, max_steps=1, log_every=1,
            sample_every=1000, checkpoint_every=1000, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})

# flags -> (relative tolerance of the losses, of the gradients; smallest cosine of the gradients)
FAST_PATHS = {
    "channels_last": ({"channels_last": True}, 1e-4, 1e-3, 0.99999),
    "bf16": ({"precision": "bf16"}, 3e-2, 0.3, 0.98),
    "bf16+channels_last": ({"precision": "bf16", "channels_last": True}, 3e-2, 0.3, 0.98),
    "fp16": ({"precision": "fp16"}, 1e-2, 0.2, 0.99),
}


@pytest.mark.parametrize("recipe, precision", [("pix2pix", "bf16"), ("seg", "bf16"), ("cyclegan", "bf16"), ("cyclegan", "fp16"),
                                               ("cut", "bf16")])
def test_each_recipe_trains_and_draws_its_sample_grid_in_half_precision(tmp_path, recipe, precision):
    data = tmp_path / "data"
    if recipe in ("cyclegan", "cut"):
        write_unaligned(data, count_a=2, count_b=2, size=32)
    else:
        (write_segmentation if recipe == "seg" else write_paired)(data, count=2, size=32)
    config = TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), precision=precision, **{**TINY, "sample_every": 1})
    run = Trainer(config, progress=False).fit()
    assert (run / "samples" / "step-00000001.png").is_file()


def one_step(data, out, **flags):
    """Logged losses and per-network flattened gradients of one ``gantk train`` step with ``flags``."""
    return losses_and_gradients(TrainConfig(data=str(data), out=str(out), **{**TINY, **flags}))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_paired(tmp_path_factory.mktemp("fast") / "pairs", count=2, size=32)


@pytest.fixture(scope="module")
def fp32_step(pairs, tmp_path_factory):
    """The default fp32 step on a device, made once per device."""
    steps = {}

    def on(device):
        if device not in steps:
            steps[device] = one_step(pairs, tmp_path_factory.mktemp(f"fp32-{device}") / "run", device=device)
        return steps[device]

    return on


@pytest.fixture(autouse=True)
def _full_fp32(monkeypatch):
    """fp32 references in full fp32: on CUDA, cuDNN would otherwise run them in TF32."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def assert_close_step(step, reference, loss_rtol, grad_rtol, min_cosine):
    losses, grads = step
    ref_losses, ref_grads = reference
    assert losses.keys() == ref_losses.keys()
    for key, value in losses.items():
        assert math.isfinite(value) and value == pytest.approx(ref_losses[key], rel=loss_rtol), key
    for name, grad in grads.items():
        ref = ref_grads[name]
        assert torch.isfinite(grad).all(), name
        error = ((grad - ref).norm() / ref.norm()).item()
        cosine = torch.nn.functional.cosine_similarity(grad, ref, dim=0).item()
        assert error < grad_rtol and cosine > min_cosine, f"{name}: relative error {error:.2e}, cosine {cosine:.6f}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", FAST_PATHS)
def test_fast_path_step_matches_fp32(path, device, pairs, fp32_step, tmp_path, monkeypatch):
    flags, loss_rtol, grad_rtol, min_cosine = FAST_PATHS[path]
    # fp16: the default initial loss scale (2**16) overflows this step's gradients, so GradScaler would
    # skip it (as designed); start from 2**8 to compare an applied step.
    monkeypatch.setattr(trainer_module, "grad_scaler", lambda device, precision: torch.amp.GradScaler(
        device.type, init_scale=2.0**8, enabled=precision == "fp16"))
    step = one_step(pairs, tmp_path / "run", device=device, **flags)
    assert_close_step(step, fp32_step(device), loss_rtol, grad_rtol, min_cosine)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("path", FAST_PATHS)
def test_fast_path_resumes_exactly(path, device, pairs, tmp_path):
    """An interrupted and resumed run equals a straight one, bit for bit (fp16 restores its loss scale). On
    CUDA, to rounding: there two straight runs already differ in the last bits (cuDNN times its algorithms,
    some backward kernels add in a varying order)."""
    results = []
    for name, stop_at in (("straight", None), ("resumed", 3)):
        config = TrainConfig(data=str(pairs), out=str(tmp_path / name), device=device,
                             **{**TINY, "max_steps": 5, "checkpoint_every": 2, **FAST_PATHS[path][0]})
        train_interrupted_then_resumed(config, stop_at)
        rows = without_timings(read_metrics(tmp_path / name / "metrics.csv"))
        results.append((rows, load_checkpoint(tmp_path / name)))
    (rows, straight), (resumed_rows, resumed) = results
    assert len(rows) == 5
    if device == "cpu":
        assert resumed_rows == rows
    else:
        assert resumed_rows == [pytest.approx(row, rel=1e-4) for row in rows]
    assert resumed["scaler"] == straight["scaler"]
    for key, value in straight["system_state"].items():
        other = resumed["system_state"][key]
        if device == "cpu" or not value.is_floating_point():
            assert torch.equal(value, other), key
        else:
            assert ((value - other).norm() / value.norm().clamp_min(1e-12)).item() < 1e-3, key


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_step_matches_eager(device, pairs, tmp_path):
    """torch.compile (inductor) on a one-level U-Net and the pixel discriminator, the fewest layers to
    compile: on CPU inductor builds C++ kernels per layer, 20-30 s here even for these."""
    small = {"gen_opt": {"ngf": 4, "num_downs": 1}, "disc": "pixel", "disc_opt": {"ndf": 4}, "device": device}
    eager = one_step(pairs, tmp_path / "eager", **small)
    compiled = one_step(pairs, tmp_path / "compiled", compile=True, **small)
    assert_close_step(compiled, eager, 1e-4, 1e-3, 0.99999)


def test_the_compile_mode_reaches_torch_compile(pairs, tmp_path, monkeypatch):
    modes = []
    monkeypatch.setattr(torch, "compile", lambda net, mode=None: modes.append(mode) or net)
    one_step(pairs, tmp_path / "run", compile=True, compile_mode="max-autotune")
    assert modes == ["max-autotune", "max-autotune"]  # G and D


@pytest.mark.parametrize("device", DEVICES[1:])
def test_cuda_graph_steps_match_eager(device, pairs, tmp_path):
    """--compile-mode reduce-overhead over five steps (CUDA graphs are recorded on the second and replayed
    from the third) against eager: every network call runs as a graph, and the last step agrees."""
    from torch._dynamo.utils import counters

    small = {"gen_opt": {"ngf": 4, "num_downs": 1}, "disc": "pixel", "disc_opt": {"ndf": 4}, "device": device, "max_steps": 5}
    eager = one_step(pairs, tmp_path / "eager", **small)
    counters.clear()
    graphs = one_step(pairs, tmp_path / "graphs", compile=True, compile_mode="reduce-overhead", **small)
    assert counters["inductor"]["cudagraph_skips"] == 0, dict(counters["inductor"])
    assert_close_step(graphs, eager, 1e-3, 1e-2, 0.9999)


@pytest.mark.parametrize("distributed", [False, True])
def test_frozen_networks_run_compiled_without_ddp(pairs, tmp_path, distributed):
    """With --compile, a network frozen in a phase (D in the generator step) is still compiled; under
    DDP it is the bare module compiled, as it takes no part in the gradient sync."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from gantk.train.distributed import ProcessInfo

    trainer = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), compile=True, **TINY), progress=False)
    system = trainer.build_system(trainer.open_data()[0], torch.device("cpu"))
    if distributed:  # a one-process group stands in for torchrun's
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        nets, frozen = trainer._wrap(system, ProcessInfo(world_size=2 if distributed else 1), torch.device("cpu"))
    finally:
        if distributed:
            dist.destroy_process_group()
    for name, net in system.networks.items():
        assert isinstance(frozen[name], torch._dynamo.eval_frame.OptimizedModule) and frozen[name]._orig_mod is net
        assert isinstance(nets[name]._orig_mod, DistributedDataParallel) == distributed


def test_each_phase_calls_the_frozen_form_of_the_networks_it_freezes(pairs, tmp_path):
    """The generator step runs D as ``frozen_nets`` holds it (compiled, not DDP-wrapped); D's own step, as ``nets``."""
    calls = []

    class Recording(Trainer):
        def _wrap(self, system, process, device):
            nets, frozen = super()._wrap(system, process, device)

            def recorded(name, net, form):
                return lambda *args: calls.append((name, form)) or net(*args)

            return ({name: recorded(name, net, "trained") for name, net in nets.items()},
                    {name: recorded(name, net, "frozen") for name, net in frozen.items()})

    Recording(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), **TINY), progress=False).fit()
    assert ("D", "frozen") in calls and ("D", "trained") in calls and ("G", "frozen") not in calls
