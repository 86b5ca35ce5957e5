"""gantk training steps for benchmarks, run by the trainer's own code on in-memory batches.

``TrainerStep`` builds the system, optimizers, schedulers, gradient scaler and network wrappers the
way ``Trainer.fit`` does, then each call runs the trainer's ``_to_device`` and ``_train_step`` and
steps the schedulers: the loop body of ``fit`` without the data loader, logs and checkpoints.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from gantk.train import TrainConfig, Trainer
from gantk.train.distributed import ProcessInfo, resolve_device
from gantk.train.precision import grad_scaler
from gantk.train.trainer import make_optimizers


def data_info(channels: dict[str, int], num_classes: int | None = None, format: str = "paired") -> SimpleNamespace:
    """What the trainer reads from a dataset to build a system (channels, classes, format)."""
    return SimpleNamespace(channels=channels, num_classes=num_classes, format=format)


def build_system(config: TrainConfig, info: SimpleNamespace):
    """The system ``Trainer.fit`` would train for ``config`` on data described by ``info``, and the trainer."""
    trainer = Trainer(config, progress=False)
    device = resolve_device(trainer.config.device)
    return trainer, trainer._build_system(info, device), device


class TrainerStep:
    """Callable running one training step of ``config`` on a batch dict, as ``Trainer.fit`` does."""

    def __init__(self, config: TrainConfig, info: SimpleNamespace, total_steps: int = 1000):
        self.trainer, self.system, self.device = build_system(config, info)
        config = self.trainer.config
        self.optimizers, schedulers = make_optimizers(self.system, config, total_steps)
        self.schedulers = list(schedulers.values())
        self.scaler = grad_scaler(self.device, config.precision)
        torch.manual_seed(config.seed)
        self.nets = self.trainer._wrap(self.system, ProcessInfo(), self.device)
        self.system.train()

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        batch = self.trainer._to_device(batch, self.device)
        losses, _ = self.trainer._train_step(self.system, self.nets, batch, self.optimizers, self.scaler, self.device)
        for scheduler in self.schedulers:
            scheduler.step()
        self.trainer.step += 1
        return losses
