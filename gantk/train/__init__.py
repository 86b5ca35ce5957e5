"""The shared trainer and what it writes."""

from typing import TYPE_CHECKING

from .config import TrainConfig
from .interrupt import StopTraining, TrainingInterrupted

__all__ = ["StopTraining", "TrainConfig", "Trainer", "TrainingInterrupted"]

if TYPE_CHECKING:
    from .trainer import Trainer
else:  # hidden from type checkers, which would take any name of the module for what it returns

    def __getattr__(name: str):
        if name == "Trainer":  # imported on first use: the command line reads settings without loading the trainer
            from .trainer import Trainer

            return Trainer
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
