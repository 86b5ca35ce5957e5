"""A recipe of one's own: pix2pix translating with a moving average of its generator's weights.

    python examples/averaged_generator_recipe.py                   # the demo set, 300 steps
    python examples/averaged_generator_recipe.py --decay 0.99 --data pairs --steps 2000

Averaging a generator's weights over training smooths out the noise of adversarial updates
(Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"). The recipe shows
what a system of one's own can use: an option of the recipe (``decay``; ``--recipe-opt
decay=0.99`` on the command line), state that checkpoints keep (the averaged copy), the
trainer's hook after each optimizer step, and a translation by another network than the one
trained: validation, ``TrainedModel`` and, once the module is installed as a plugin (an entry
point, see docs/writing-a-plugin.md), ``gantk translate`` and ``gantk eval`` run the average; the
sample grids show the trained generator. Here the module is the plugin, handed to
``gantk.load_components(plugins=[...])``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import torch

import gantk
from gantk.data import demo_dataset_dir, open_dataset
from gantk.errors import GantkError, OptionError
from gantk.inference import TrainedModel
from gantk.plugins import Components
from gantk.recipes import pix2pix
from gantk.recipes.base import Recipe
from gantk.systems import PairedSystem
from gantk.systems.base import Phase
from gantk.train import TrainConfig, Trainer


class AveragedPairedSystem(PairedSystem):
    """pix2pix whose translations come from an exponential moving average of G's weights."""

    def __init__(self, config: dict[str, Any], components: Components):
        super().__init__(config, components)
        self.decay = config["recipe_opt"]["decay"]
        if not 0 <= self.decay < 1:
            raise OptionError(f"--recipe-opt decay must be in [0, 1), got {self.decay}.")
        self.averaged = copy.deepcopy(self.networks["G"]).requires_grad_(False)  # a submodule: checkpoints keep it
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def after_optimizer_step(self, phase: Phase) -> None:
        if "G" not in phase.trains:
            return
        # A shorter memory at first, so that the average soon forgets the random starting weights
        # (kept a tensor: no wait for the GPU).
        decay = ((1 + self.updates) / (10 + self.updates)).clamp(max=self.decay)
        trained = self.networks["G"]
        for average, weight in zip(self.averaged.parameters(), trained.parameters()):
            average.lerp_(weight, (1 - decay).to(average.dtype))
        for average, buffer in zip(self.averaged.buffers(), trained.buffers()):
            average.copy_(buffer)  # batch-norm statistics: the newest
        self.updates += 1

    def translation_generator(self) -> torch.nn.Module:
        return self.averaged


def pix2pix_ema() -> Recipe:
    """pix2pix translating with an exponential moving average of its generator's weights (decay 0.999)."""
    return Recipe(
        name="pix2pix-ema",
        system=AveragedPairedSystem,
        defaults=pix2pix().defaults,
        source="pix2pix (Isola et al. 2017) with generator weight averaging (Yazici et al. 2019)",
        options={"decay": 0.999},
    )


@gantk.hookimpl
def gantk_register_recipes(registry):
    registry.add("pix2pix-ema", pix2pix_ema)


def l1_on_test_split(model: TrainedModel, generator: torch.nn.Module, data: Path, size: int) -> float:
    """Mean L1 of ``generator``'s translations of the test split of ``data``, on [-1, 1] images."""
    pairs = open_dataset(data, split="test", load_size=size, crop_size=size, augment=False)
    errors = []
    with torch.no_grad():
        for index in range(len(pairs)):
            item = pairs[index]
            output = generator(model.inputs(item["A"]))
            errors.append((output.cpu() - item["B"]).abs().mean().item())
    return sum(errors) / len(errors)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decay", type=float, default=0.999, help="weight of the average's past per G step (default: 0.999)")
    parser.add_argument("--data", type=Path, help="paired dataset folder with a test split (default: the embedded demo set)")
    parser.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    parser.add_argument("--size", type=int, default=64, help="crop size in pixels (default: 64)")
    parser.add_argument("--out", type=Path, default=Path("runs/ema"), help="run directory (default: runs/ema)")
    parser.add_argument("--workers", type=int, default=None, help="data-loading processes (default: the trainer's, one per CPU less one, 2 to 16)")
    args = parser.parse_args(argv)
    data = args.data or demo_dataset_dir()
    try:  # the test split scores the run: a set without one is refused before training
        open_dataset(data, split="test", load_size=args.size, crop_size=args.size, augment=False)
    except GantkError as error:
        parser.error(f"--data {data}: {error}")

    components = gantk.load_components(plugins=[sys.modules[__name__]])
    for failure in components.failures:
        print(f"warning: {failure}", file=sys.stderr)
    config = TrainConfig(recipe="pix2pix-ema", recipe_opt={"decay": args.decay}, data=None if args.data is None else str(args.data),
                         out=str(args.out), max_steps=args.steps, crop_size=args.size, load_size=args.size + args.size // 8,
                         workers=args.workers)
    run_dir = Trainer(config, components=components, progress=False).fit()

    model = TrainedModel.load(run_dir, eval_mode=True, components=components)
    averaged, last = (l1_on_test_split(model, net, data, args.size) for net in (model.system.averaged, model.system.networks["G"]))
    print(f"step {model.step}, decay {args.decay}: test L1 of the averaged generator {averaged:.4f}, of the last weights {last:.4f}")
    return run_dir


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
