"""A misspelt name imported from gantk.train: type checkers must say it does not exist (see tests/test_typing.py)."""

from gantk.train import TrainConfg  # noqa: F401
