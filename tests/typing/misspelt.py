"""Misspelt names: type checkers must say they do not exist (see tests/test_typing.py)."""

from pathlib import Path

from gantk.train import TrainConfg  # noqa: F401
from gantk.train import Trainer

Trainer.resume(Path("runs"), progres=False)
