"""A training run's health: diverged losses or weights stop it with what to try; fp16 steps mostly skipped, loss
terms no gradient reaches and a loader that holds training back are warned of, each once."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from ..errors import GantkError, GantkWarning, OptionError, caller_stacklevel
from ..plugins import BUILTIN_PLUGINS
from ..systems.base import Phase
from . import checkpoint as ckpt
from .config import TrainConfig, cpus_per_process, usable_cpus

if TYPE_CHECKING:
    from .logs import RunLog
    from .trainer import TrainingParts


def and_joined(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


class RunHealth:
    """The checks of a run with the settings ``config`` (``resumed``: continued from a checkpoint, so its settings
    cannot change), and the warnings they gave."""

    def __init__(self, config: TrainConfig, resumed: bool):
        self.config = config
        self.resumed = resumed
        self.warned_of_data = False  # that the loader holds training back
        self.warned_of_skips: set[str] = set()  # phases whose fp16 steps were mostly skipped
        self.warned_of_untrained: set[str] = set()  # loss terms that no gradient reached at a step

    def warn_of_untrained_terms(self, step: int, phase: Phase, terms: dict[str, torch.Tensor]) -> None:
        """Warn once of each loss term that no gradient reaches (a constant) at ``step``: it trains nothing at such
        steps, and a term that takes no part in a step returns None; with no term reached, the step cannot train."""
        untrained = [key for key, value in terms.items() if isinstance(value, torch.Tensor) and not value.requires_grad]
        if len(untrained) == len(terms):
            raise OptionError(f"no gradient reaches any loss of the {phase.name} step ({', '.join(terms)}), so it cannot "
                              "train: each objective must compute its loss from the networks' outputs in the context "
                              "(ctx.fake, ctx.d_fake, ...), or return None to take no part in the step.")
        if new := [key for key in untrained if key not in self.warned_of_untrained]:
            self.warned_of_untrained.update(new)
            warnings.warn(f"no gradient reaches {', '.join(new)} at step {step}, so {'it trains' if len(new) == 1 else 'they train'} "
                          "nothing there: an objective computes its loss from the networks' outputs in the context, and "
                          "returns None at a step it takes no part in.", GantkWarning, stacklevel=caller_stacklevel())

    def stop_if_diverged(self, step: int, logged: dict[str, float], parts: TrainingParts,
                         part_plugins: dict[str, dict[str, dict[str, str]]]) -> None:
        """Raise when a logged loss (a mean over the processes, so every process sees it) is not finite, naming
        the plugins of ``part_plugins`` that provide such terms. Under fp16 the scaler skips such steps, so only
        once its scale has fallen below 1 (overflowing steps halved it again and again) is the run lost."""
        bad = [key for key, value in logged.items() if not math.isfinite(value)]
        if not bad:
            return
        scaler, not_finite = parts.scaler, f"{and_joined(bad)} {'is' if len(bad) == 1 else 'are'} not finite"
        if self.config.precision != "fp16":
            fix = self._divergence_advice(self._clip_advice() + (", or use --precision fp32" if self.config.precision != "fp32" else ""))
            if step == 1:  # barely trained: the learning rate is unlikely to be the cause
                fix = ("at the first step, check the networks' starting options (--gen-opt, --disc-opt), the loss options "
                       f"and the data before the learning rate ({fix})")
            raise GantkError(f"training diverged at step {step}: {not_finite}; {fix}{_plugin_terms(bad, part_plugins)}.")
        if scaler.get_scale() < 1:
            fix = self._divergence_advice("lower --lr or use --precision bf16 or fp32")
            raise GantkError(f"training diverged at step {step}: {not_finite} and the fp16 loss scale fell to "
                             f"{scaler.get_scale():.2g} as steps kept overflowing; {fix}.")

    def warn_if_steps_skipped(self, step: int, parts: TrainingParts) -> None:
        """Warn once per phase when, after 20 of its steps or more, fp16's loss scaler has skipped more than half of
        them (their gradients overflowed): that phase's networks barely train, though every logged loss is finite."""
        if self.config.precision != "fp16" or not parts.process.is_main:
            return
        for phase in parts.system.phases:
            runs = step // phase.every
            if phase.name in self.warned_of_skips or runs < 20:
                continue
            state = next(iter(parts.optimizers[phase.name].state.values()), {})
            skipped = runs - int(state.get("step", 0))  # Adam counts the steps it took
            if skipped > runs / 2:
                self.warned_of_skips.add(phase.name)
                warnings.warn(
                    f"fp16's loss scaler skipped {skipped} of the {runs} {phase.name} steps so far, as their gradients "
                    f"overflowed (loss scale now {parts.scaler.get_scale():.2g}): {phase.name} barely trains; "
                    f"{self._divergence_advice('lower the loss weights or --lr, or use --precision bf16 or fp32')}.",
                    GantkWarning, stacklevel=caller_stacklevel(),
                )

    def warn_if_waiting_for_data(self, log: RunLog, parts: TrainingParts, workers: int) -> None:
        """Warn once when, over 10 steps or more since the first log row (which also waits for the loader to
        start), the training process spent a quarter or more of the time waiting for batches from ``workers``."""
        if self.warned_of_data or log.steps_since_first < 10 or not parts.process.is_main:
            return
        share = log.waited_since_first / log.time_since_first
        if share < 0.25:
            return
        self.warned_of_data = True
        left = workers < cpus_per_process(parts.process.local_world_size) - 1  # as default_workers shares them
        advice = [f"raise --workers (now {workers}; this machine has {usable_cpus()} CPUs)"] if left else []
        if parts.device.type == "cuda" and self.config.augment_on == "loader":
            advice.append("crop and flip on the GPU with --augment-on device")
        advice = advice or [f"the loader has every CPU ({workers} workers): images stored at --load-size decode faster and need no resizing"]
        warnings.warn(
            f"the training process waited for its next batch {share:.0%} of the time over the last {log.steps_since_first} "
            f"steps (data_wait in metrics.csv): the data loader holds training back; {', or '.join(advice)}.",
            GantkWarning, stacklevel=caller_stacklevel(),
        )

    def stop_if_weights_diverged(self, step: int, parts: TrainingParts) -> None:
        """Raise, in every process when one sees it, when a network holds a weight that is not finite (see
        :func:`~gantk.train.checkpoint.diverged_networks`): no checkpoint is written of a run that cannot go on
        (the losses are checked only when logged)."""
        bad = ckpt.diverged_networks(parts.system)
        if parts.process.distributed:
            seen = torch.tensor([float(bool(bad))], device=parts.device)
            dist.all_reduce(seen, op=dist.ReduceOp.MAX)
            bad = bad or (["a network of another process"] if seen.item() else [])
        if bad:
            raise GantkError(
                f"training diverged at step {step}: {and_joined(bad)} {'holds' if len(bad) == 1 else 'hold'} weights "
                f"that are not finite, so no checkpoint is written for this step; {self._divergence_advice(self._clip_advice())}"
                + (", or log every step (--log-every 1) to see which loss went first." if self.config.log_every > 1 else ".")
            )

    def _clip_advice(self) -> str:
        """The first remedies for a run whose losses or weights diverged."""
        return "lower --lr or --grad-clip" if self.config.grad_clip is not None else "lower --lr or clip the gradients (--grad-clip)"

    def _divergence_advice(self, remedies: str) -> str:
        """``remedies`` for a run that diverged; a resumed run would diverge again with its settings, which it cannot change."""
        if not self.resumed:
            return remedies
        return ("resuming this run repeats it, as its settings cannot change: start a new run instead (--init-from an "
                f"earlier checkpoint of this one starts it from those weights), and {remedies}")


def _plugin_terms(losses: list[str], part_plugins: dict[str, dict[str, dict[str, str]]]) -> str:
    """A note naming the plugins outside gantk that provide the terms of ``losses`` (``G/tv``, ...), if any."""
    terms = {key.rpartition("/")[2] for key in losses}
    providers = part_plugins.get("objective", {})
    plugins = sorted({providers[t]["plugin"] for t in terms if t in providers and providers[t]["plugin"] not in BUILTIN_PLUGINS})
    return f"; or check the loss terms of plugin(s) {', '.join(plugins)}" if plugins else ""
