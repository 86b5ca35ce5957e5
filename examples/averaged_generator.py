"""pix2pix translating with a moving average of its generator's weights, against its last weights.

    python examples/averaged_generator.py                   # the demo set, 300 steps
    python examples/averaged_generator.py --decay 0.99 --data pairs --steps 2000

Averaging a generator's weights over training smooths out the noise of adversarial updates
(Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training"). ``--ema-decay``
(``TrainConfig.ema_decay``) keeps the average in the run's checkpoints; validation, ``gantk
translate``, ``gantk eval`` and ``gantk export`` run it, and the sample grids show the trained
generator. The script trains a run with one, then scores both networks on the test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from gantk.data import demo_dataset_dir, open_dataset
from gantk.errors import GantkError
from gantk.inference import TrainedModel
from gantk.train import TrainConfig, Trainer


def l1_on_test_split(model: TrainedModel, generator: torch.nn.Module, data: Path, size: int) -> float:
    """Mean L1 of ``generator``'s translations of the test split of ``data``, on [-1, 1] images."""
    pairs = open_dataset(data, split="test", load_size=size, crop_size=size, augment=False)
    errors = []
    with torch.no_grad():
        for index in range(len(pairs)):
            item = pairs[index]
            output = generator(model.inputs(item["A"], from_dataset=True))
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

    config = TrainConfig(ema_decay=args.decay, data=None if args.data is None else str(args.data), out=str(args.out),
                         max_steps=args.steps, crop_size=args.size, load_size=args.size + args.size // 8, workers=args.workers)
    run_dir = Trainer(config, progress=False).fit()

    model = TrainedModel.load(run_dir, eval_mode=True)
    averaged, last = (l1_on_test_split(model, net, data, args.size) for net in (model.system.averaged["G"], model.system.networks["G"]))
    print(f"step {model.step}, decay {args.decay}: test L1 of the averaged generator {averaged:.4f}, of the last weights {last:.4f}")
    return run_dir


if __name__ == "__main__":
    try:
        main()
    except GantkError as error:  # a setting gantk refuses: its message, without a traceback
        sys.exit(f"error: {error}")
