"""``gantk train --cuda-graph``: whole training steps recorded once as CUDA graphs and replayed.

Without CUDA, the refusals run, and the trainer's use of ``StepGraphs`` (warm-up, recording per kind
of step, inputs, losses and learning rates) with the recording stood in for on the CPU; on CUDA,
graph-replayed runs are compared with eager ones of the same settings (the same kernels on the same
data, so they agree to rounding).
"""

import contextlib
import math
import re

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import GantkError, OptionError
from gantk.systems.base import System
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import load_checkpoint
from gantk.train.logs import read_metrics
from gantk.train import trainer as trainer_module
from gantk.train.step_graph import WARMUP_STEPS, Recorded, StepGraphs
from helpers import losses_and_gradients, train_interrupted_then_resumed, without_timings, write_paired, write_segmentation, write_unaligned

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TINY = dict(load_size=32, crop_size=32, batch_size=2, flip=False, workers=0, log_every=1, sample_every=1000,
            checkpoint_every=1000, gen_opt={"ngf": 4, "num_downs": 2}, disc_opt={"ndf": 4})


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return write_paired(tmp_path_factory.mktemp("graph") / "pairs", count=4, size=32)


@pytest.mark.parametrize("flags, message", [
    ({"compile": True, "compile_mode": "reduce-overhead"}, "use --compile-mode default with --cuda-graph"),
    ({"precision": "fp16"}, "use --precision bf16 (no scaler) or fp32"),
])
def test_settings_a_graph_cannot_hold_are_refused(flags, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        TrainConfig(cuda_graph=True, **flags).validate()


def test_a_graph_off_cuda_is_refused_before_the_run_folder_is_made(pairs, tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--device", "cpu",
                                      "--cuda-graph", "--max-steps", "1", "--workers", "0", "--crop-size", "32", "--load-size", "32"])
    assert result.exit_code == 1 and "--cuda-graph records steps on a GPU, and this run trains on the CPU" in result.output
    assert not (tmp_path / "run").exists()


def test_only_systems_that_vouch_for_their_step_are_recorded(tmp_path):
    def system(recipe, data, **flags):
        trainer = Trainer(TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), load_size=32, crop_size=32, **flags),
                          progress=False)
        return trainer.build_system(trainer.open_data()[0], torch.device("cpu"))

    pairs, unaligned = write_paired(tmp_path / "pairs"), write_unaligned(tmp_path / "unaligned")
    assert system("pix2pix", pairs).cuda_graph_obstacle() is None
    masks = write_segmentation(tmp_path / "masks")
    assert system("seg", masks, loss="l1", disc="none").cuda_graph_obstacle() is None
    assert system("seg", masks, loss="hinge+ce").cuda_graph_obstacle() is None
    assert "lovasz term reads on the CPU which classes" in system("seg", masks, loss="lovasz", disc="none").cuda_graph_obstacle()
    assert "add --pool-size 0" in system("cyclegan", unaligned).cuda_graph_obstacle()
    assert system("cyclegan", unaligned, pool_size=0).cuda_graph_obstacle() is None

    class Unsaid(System):
        forward = phase_losses = sample_images = translate = None

    assert "Unsaid does not say that its step can be replayed" in Unsaid({}).cuda_graph_obstacle()


class ReplayedOnCpu(StepGraphs):
    """StepGraphs with the CUDA part stood in for on the CPU: recording keeps the step without running
    it (as capture runs nothing), and each replay runs it on the recorded inputs."""

    def __init__(self, optimizers, device):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torch.cuda, "Stream", lambda device: None)
            super().__init__(optimizers, device)
        self.replays = 0

    def _beside(self):
        return contextlib.nullcontext()

    def _record(self, batch, step):
        inputs = {name: value.clone() if torch.is_tensor(value) else value for name, value in batch.items()}
        recorded = Recorded(None, inputs, [], torch.empty(0), {})

        class Graph:
            def replay(graph):
                self.replays += 1
                losses, recorded.outputs = step(inputs)
                recorded.names, recorded.losses = list(losses), torch.stack(list(losses.values()))

        recorded.graph = Graph()
        return recorded


def test_recorded_steps_replay_on_new_batches_with_the_schedule_s_rates(pairs, tmp_path, monkeypatch):
    """On the CPU, with recording stood in for: a run whose steps go through StepGraphs (warm-up, one
    recording per kind of step, the batch copied in, the losses copied out, the learning rates set
    for each replay) trains as an eager run does, to float32 rounding of the learning rate."""
    made = []
    monkeypatch.setattr(trainer_module, "StepGraphs", lambda *args: made.append(ReplayedOnCpu(*args)) or made[-1])
    monkeypatch.setattr(trainer_module, "check_recordable", lambda *args: None)
    steps = 2 * (WARMUP_STEPS + 3)
    flags = {**TINY, "max_steps": steps, "n_critic": 2, "decay_start": 0.0, "log_every": 2, "device": "cpu"}
    results = []
    for name, cuda_graph in (("eager", False), ("graphed", True)):
        Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / name), cuda_graph=cuda_graph, **flags), progress=False).fit()
        results.append((without_timings(read_metrics(tmp_path / name / "metrics.csv")), load_checkpoint(tmp_path / name)))
    (rows, eager), (graphed_rows, graphed) = results
    assert len(made) == 1 and made[0].replays == steps - 2 * WARMUP_STEPS and len(made[0].recorded) == 2
    assert graphed_rows == [pytest.approx(row, rel=1e-5) for row in rows]
    assert len({row["lr"] for row in rows}) == len(rows)  # the rate decays from step to step
    for key, value in eager["system_state"].items():
        assert torch.allclose(graphed["system_state"][key].float(), value.float(), rtol=1e-4, atol=1e-6), key
    assert type(graphed["optimizers"]["G"]["param_groups"][0]["lr"]) is float  # as a run without --cuda-graph saves it


def test_a_step_that_cannot_be_recorded_is_named_by_its_own_error(monkeypatch):
    """torch ends a failed recording with an error of its own, and leaves the recording stream current."""
    streams = []

    class FailingRecording:
        def __init__(self, graph, stream, capture_error_mode):
            pass

        def __enter__(self):
            streams.append("recording")

        def __exit__(self, *error):
            raise RuntimeError("operation failed due to a previous error during capture")

    monkeypatch.setattr(torch.cuda, "Stream", lambda device: "recording")
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device: "training")
    monkeypatch.setattr(torch.cuda, "set_stream", streams.append)
    monkeypatch.setattr(torch.cuda, "CUDAGraph", lambda: None)
    monkeypatch.setattr(torch.cuda, "graph", FailingRecording)

    def step(batch):
        raise RuntimeError("operation not permitted when stream is capturing")

    with pytest.raises(GantkError, match=r"could not be recorded as a CUDA graph \(operation not permitted when stream is capturing\)"):
        StepGraphs({}, torch.device("cuda"))._record({"A": torch.zeros(1)}, step)
    assert streams == ["recording", "training"]


def run(data, out, **flags):
    """The last step's logged losses, every network's gradients and the number of graph replays of a run."""
    replays = []
    replay = torch.cuda.CUDAGraph.replay

    def counted(graph):
        replays.append(graph)
        return replay(graph)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda.CUDAGraph, "replay", counted)
        logged, grads = losses_and_gradients(TrainConfig(data=str(data), out=str(out), device="cuda", **{**TINY, **flags}))
    return logged, grads, len(replays), len(set(map(id, replays)))


def assert_close(graphed, eager, rtol):
    (losses, grads, *_), (ref_losses, ref_grads, *_) = graphed, eager
    assert losses.keys() == ref_losses.keys()
    for key, value in losses.items():
        assert math.isfinite(value) and value == pytest.approx(ref_losses[key], rel=rtol), key
    for name, grad in grads.items():
        error = ((grad - ref_grads[name]).norm() / ref_grads[name].norm()).item()
        assert error < 10 * rtol, f"{name}: relative error {error:.2e}"


@cuda
@pytest.mark.parametrize("flags", [{}, {"precision": "bf16", "channels_last": True}, {"compile": True}], ids=["fp32", "bf16-cl", "compile"])
def test_replayed_steps_match_eager_ones(flags, pairs, tmp_path, monkeypatch):
    """Two steps after the warm-up: the first recorded and replayed, the second replayed."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    steps = WARMUP_STEPS + 2
    eager = run(pairs, tmp_path / "eager", max_steps=steps, **flags)
    graphed = run(pairs, tmp_path / "graphed", max_steps=steps, cuda_graph=True, **flags)
    assert graphed[2:] == (2, 1) and eager[2] == 0
    assert_close(graphed, eager, 1e-3 if flags.get("precision") != "bf16" else 2e-2)


@cuda
def test_replays_draw_dropout_masks_as_eager_steps_do(tmp_path, monkeypatch):
    """A U-Net deep enough for dropout (its levels 4 and deeper): each replay draws new masks, the ones an
    eager step draws from the same random state."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    pairs = write_paired(tmp_path / "pairs", count=4, size=64)
    flags = dict(load_size=64, crop_size=64, gen_opt={"ngf": 4, "num_downs": 6}, max_steps=WARMUP_STEPS + 2)
    eager = run(pairs, tmp_path / "eager", **flags)
    graphed = run(pairs, tmp_path / "graphed", cuda_graph=True, **flags)
    assert graphed[2:] == (2, 1)
    assert_close(graphed, eager, 1e-3)


@cuda
def test_each_set_of_phases_due_gets_its_own_graph(pairs, tmp_path):
    """With --n-critic 2 the steps alternate between D alone and D then G: two graphs, each replayed."""
    steps = 2 * (WARMUP_STEPS + 2)
    eager = run(pairs, tmp_path / "eager", max_steps=steps, n_critic=2)
    graphed = run(pairs, tmp_path / "graphed", max_steps=steps, n_critic=2, cuda_graph=True)
    assert graphed[2:] == (4, 2)
    assert_close(graphed, eager, 1e-3)


@cuda
def test_a_graphed_run_resumes_to_rounding(pairs, tmp_path):
    results = []
    for name, stop_at in (("straight", None), ("resumed", WARMUP_STEPS + 2)):
        config = TrainConfig(data=str(pairs), out=str(tmp_path / name), device="cuda", cuda_graph=True,
                             **{**TINY, "max_steps": 2 * WARMUP_STEPS + 3, "checkpoint_every": 2})
        train_interrupted_then_resumed(config, stop_at)
        results.append((without_timings(read_metrics(tmp_path / name / "metrics.csv")), load_checkpoint(tmp_path / name)))
    (rows, straight), (resumed_rows, resumed) = results
    assert resumed_rows == [pytest.approx(row, rel=1e-4) for row in rows]
    for key, value in straight["system_state"].items():
        if value.is_floating_point():
            assert ((value - resumed["system_state"][key]).norm() / value.norm().clamp_min(1e-12)).item() < 1e-3, key
