"""A custom objective in a few lines, registered as a plugin and trained for a few steps.

    python examples/custom_objective_plugin.py                     # bce+l1+ssim on the demo set
    python examples/custom_objective_plugin.py --loss bce+ssim@50 --data pairs --steps 2000

The objective is SSIM (structural dissimilarity, computed by kornia). This module is itself the
plugin: its hook function carries ``@gantk.hookimpl`` and the module is handed to
``gantk.load_components(plugins=[...])``. An installed package would advertise the same module
in its ``[project.entry-points.gantk]`` table instead (see docs/writing-a-plugin.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kornia
from torch import Tensor

import gantk
from gantk.errors import GantkError
from gantk.train import TrainConfig, Trainer
from gantk.train.logs import read_metrics


class SSIMLoss(gantk.Objective):
    """Structural dissimilarity (1 - SSIM) / 2 between the fake and the real image (weight 10)."""

    default_weight = 10.0  # the weight of a spec term written without one: 'ssim' is 'ssim@10'

    def __init__(self, window_size: int = 11):
        super().__init__()
        self.window_size = window_size

    def generator_loss(self, ctx: gantk.LossContext) -> Tensor:
        # Images are in [-1, 1], a dynamic range of 2. The discriminator step ignores this term.
        return kornia.losses.ssim_loss(ctx.fake, ctx.real, self.window_size, max_val=2.0)


@gantk.hookimpl
def gantk_register_objectives(registry):
    registry.add("ssim", SSIMLoss)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", default="bce+l1+ssim", help="objective spec using 'ssim' (default: bce+l1+ssim)")
    parser.add_argument("--data", help="paired dataset folder (default: the embedded demo set)")
    parser.add_argument("--steps", type=int, default=100, help="training steps (default: 100)")
    parser.add_argument("--size", type=int, default=64, help="crop size in pixels (default: 64)")
    parser.add_argument("--out", type=Path, default=Path("runs/ssim"), help="run directory (default: runs/ssim)")
    parser.add_argument("--workers", type=int, default=None, help="data-loading processes (default: the trainer's, one per CPU less one, 2 to 16)")
    args = parser.parse_args(argv)

    components = gantk.load_components(plugins=[sys.modules[__name__]])
    for failure in components.failures:
        print(f"warning: {failure}", file=sys.stderr)
    entry = components.registry("objective").get("ssim")
    print(f"objective 'ssim' from plugin {entry.plugin!r}: {entry.summary}")

    config = TrainConfig(data=args.data, loss=args.loss, out=str(args.out), max_steps=args.steps,
                         crop_size=args.size, load_size=args.size + args.size // 8, workers=args.workers)
    trainer = Trainer(config, components=components, progress=False)
    run_dir = trainer.fit()

    last = read_metrics(run_dir / "metrics.csv")[-1]
    losses = ", ".join(f"{key} {value:.3f}" for key, value in last.items() if "/" in key)
    print(f"step {trainer.step} ({trainer.trained_system.objective.spec}): {losses}")
    return run_dir


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
