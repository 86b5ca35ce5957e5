"""Whole training steps replayed as CUDA graphs (``gantk train --cuda-graph``).

At a small batch a GAN step launches hundreds of small kernels, and on a fast GPU launching them
(Python, autograd, the optimizers) takes the CPU longer than the GPU takes to run them. Recorded
once as a CUDA graph, the whole step (the generator's forward, every phase's losses, backward and
optimizer update) is launched as one.

A graph repeats the device work it recorded on the memory it recorded: the batch is copied into
inputs that stay in place, and the outputs it returns are overwritten by the next replay (the losses
are copied out). What the CPU decided while recording is fixed from then on, so one graph is
recorded per batch shape and set of phases due, and only a system that vouches for its step (see
:meth:`gantk.systems.base.System.cuda_graph_obstacle`) is recorded.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from ..errors import GantkError, OptionError
from ..systems.base import System

# Eager steps per graph before it is recorded: cuDNN's algorithm search, lazy initialisation and the
# optimizers' state (torch's CUDA-graph notes ask for a few).
WARMUP_STEPS = 3

Step = Callable[[dict[str, Any]], tuple[dict[str, Tensor], dict[str, Tensor]]]


def check_recordable(system: System, recipe: str, device: torch.device, distributed: bool) -> None:
    """Raise :class:`OptionError` unless the steps of ``system`` (built by ``recipe``) can be recorded here."""
    if device.type != "cuda":
        raise OptionError(f"--cuda-graph records steps on a GPU, and this run trains on the {device.type.upper()}: "
                          "train on CUDA (--device cuda), or drop --cuda-graph.")
    if distributed:
        raise OptionError("--cuda-graph records the steps of one process; under torchrun, drop it (or train in one process).")
    obstacle = system.cuda_graph_obstacle()
    if obstacle is not None:
        raise OptionError(f"--cuda-graph cannot record the steps of recipe '{recipe}': {obstacle}.")


@dataclass
class Recorded:
    """A recorded step: its graph, the inputs it reads, the names of its losses, their values stacked
    in one tensor, and its outputs."""

    graph: torch.cuda.CUDAGraph
    inputs: dict[str, Any]
    names: list[str]
    losses: Tensor
    outputs: dict[str, Tensor]


class StepGraphs:
    """Runs training steps on ``device`` (CUDA), eagerly for the first :data:`WARMUP_STEPS` of each
    kind of step, then as that kind's recorded graph.

    During a step the optimizers read their learning rates from tensors on the device, set to the
    schedule's rates of that step, so that a recorded update follows the schedule; between steps the
    rates are numbers again, as schedules and checkpoints expect.
    """

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], device: torch.device):
        self.groups = [group for optimizer in optimizers.values() for group in optimizer.param_groups]
        self.rates = [torch.zeros((), dtype=torch.float32, device=device) for _ in self.groups]  # float32: fused Adam's
        self.device = device
        self.stream = torch.cuda.Stream(device)  # warm-up and recording run beside the current stream
        self.recorded: dict[Any, Recorded] = {}
        self.eager_steps: collections.Counter = collections.Counter()

    def run(self, kind: Any, batch: dict[str, Any], step: Step) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``step(batch)``'s losses and outputs; ``kind`` names what the step does (the phases due), the
        batch's shapes, dtypes and strides are added to it. Outputs are valid until the next call."""
        key = (kind, tuple((name, tuple(value.shape), value.dtype, value.stride()) for name, value in batch.items()
                           if isinstance(value, Tensor)))
        recorded = self.recorded.get(key)
        with self._rates_on_device():
            if recorded is None and self.eager_steps[key] < WARMUP_STEPS:
                self.eager_steps[key] += 1
                with self._beside():
                    # Stacked as a replay's are: recording then runs no kernel the warm-up has not loaded.
                    losses, outputs = step(batch)
                    return dict(zip(losses, stacked(losses).unbind(), strict=True)), outputs
            if recorded is None:
                recorded = self.recorded[key] = self._record(batch, step)
            else:
                for name, value in recorded.inputs.items():
                    if isinstance(value, Tensor):
                        value.copy_(batch[name], non_blocking=True)
            recorded.graph.replay()
        return dict(zip(recorded.names, recorded.losses.clone().unbind(), strict=True)), recorded.outputs

    @contextlib.contextmanager
    def _rates_on_device(self) -> Iterator[None]:
        """Within the block, each optimizer group's ``lr`` is its tensor of :attr:`rates`, holding its current value."""
        numbers = [group["lr"] for group in self.groups]
        for group, rate, number in zip(self.groups, self.rates, numbers, strict=True):
            group["lr"] = rate.fill_(number)
        try:
            yield
        finally:
            for group, number in zip(self.groups, numbers, strict=True):
                group["lr"] = number

    @contextlib.contextmanager
    def _beside(self) -> Iterator[None]:
        """Run the block on this object's stream, ordered after and before the current stream's work."""
        current = torch.cuda.current_stream(self.device)
        self.stream.wait_stream(current)
        with torch.cuda.stream(self.stream):
            yield
        current.wait_stream(self.stream)

    def _record(self, batch: dict[str, Any], step: Step) -> Recorded:
        """Record ``step`` on a copy of ``batch`` (which it then holds) as a graph, not yet run."""
        inputs = {name: value.clone() if isinstance(value, Tensor) else value for name, value in batch.items()}
        graph = torch.cuda.CUDAGraph()
        for group in self.groups:
            group["capturable"] = True  # Adam refuses to be recorded otherwise; the fused update is the same
        current, failure = torch.cuda.current_stream(self.device), None
        try:
            # thread_local: the loader's pin-memory thread may call CUDA meanwhile.
            with torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                try:
                    losses, outputs = step(inputs)
                    values = stacked(losses)
                except RuntimeError as error:
                    failure = error
                    raise
        except RuntimeError as error:
            # An error in the step makes ending the recording fail too, which then leaves the graph's stream current.
            torch.cuda.set_stream(current)
            cause = failure or error
            raise GantkError(
                f"the training step could not be recorded as a CUDA graph ({cause}). Something in it waits for the "
                "GPU or reads a tensor's value on the CPU (.item(), a data-dependent shape, a Python branch on a "
                "tensor); train without --cuda-graph."
            ) from cause
        finally:
            for group in self.groups:
                group["capturable"] = False
        return Recorded(graph, inputs, list(losses), values, outputs)


def stacked(losses: dict[str, Tensor]) -> Tensor:
    """The values of ``losses`` (scalars) in one float32 tensor."""
    return torch.stack([value.float() for value in losses.values()])
