"""The shared trainer and what it writes."""

from .config import TrainConfig

__all__ = ["TrainConfig", "Trainer"]


def __getattr__(name: str):
    if name == "Trainer":  # imported on first use: the command line reads settings without loading the trainer
        from .trainer import Trainer

        return Trainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
