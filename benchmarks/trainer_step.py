"""gantk training steps for benchmarks, run by the trainer's own code on in-memory batches.

``TrainerStep`` builds the system and its training parts (optimizers, schedulers, gradient scaler and
network wrappers) with ``Trainer.fit``'s own methods and keeps freed host memory as ``fit`` does, then
each call runs the trainer's ``augmented_on_device`` and ``train_step``: the loop body of ``fit`` without the data
loader, logs and checkpoints.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch

from gantk.host_memory import keep_freed_memory
from gantk.train import TrainConfig, Trainer
from gantk.train.distributed import ProcessInfo, resolve_device


def data_info(channels: dict[str, int], num_classes: int | None = None, format: str = "paired") -> SimpleNamespace:
    """What the trainer reads from a dataset to build a system (channels, classes, format)."""
    return SimpleNamespace(channels=channels, num_classes=num_classes, format=format)


def build_system(config: TrainConfig, info: SimpleNamespace):
    """The system ``Trainer.fit`` would train for ``config`` on data described by ``info``, and the trainer."""
    trainer = Trainer(config, progress=False)
    device = resolve_device(trainer.config.device)
    return trainer, trainer.build_system(info, device), device


class TrainerStep:
    """Callable running one training step of ``config`` on a batch dict, as ``Trainer.fit`` does."""

    def __init__(self, config: TrainConfig, info: SimpleNamespace, total_steps: int = 1000):
        self.trainer, self.system, self.device = build_system(config, info)
        self.parts = self.trainer.training_parts(self.system, self.device, ProcessInfo(), total_steps)
        self.system.train()
        keep_freed_memory(self.device)

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        losses, _ = self.trainer.train_step(self.parts, self.trainer.augmented_on_device(batch, self.device))
        return losses
