"""The names of what a run directory holds besides its checkpoints (``checkpoint.checkpoint_path``), and
the claim of the process training in it."""

import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..errors import OptionError

CONFIG = "config.toml"  # the resolved settings
METRICS = "metrics.csv"  # losses, learning rate and speed, one row per --log-every steps
VALIDATION = "validation.csv"  # scores on the held-out split, one row per --val-every steps
LOSS_CURVES = "loss_curves.png"
SAMPLES = "samples"  # a folder of sample grids
TENSORBOARD = "tensorboard"  # a folder of event files
EVAL = "eval.json"  # a gantk ablate cell's scores

# A new run may reuse a folder that holds only these.
ALL = frozenset({CONFIG, METRICS, VALIDATION, LOSS_CURVES, SAMPLES, TENSORBOARD, EVAL})


def clear_outputs(run_dir: Path) -> None:
    """Remove what a run that stopped before its first checkpoint left in ``run_dir``, so that a new run
    there starts with logs, samples and scores of its own (files gantk did not write are left)."""
    for name in (METRICS, VALIDATION, LOSS_CURVES, EVAL):
        (run_dir / name).unlink(missing_ok=True)
    for folder, pattern in ((SAMPLES, "step-*.png"), (TENSORBOARD, "events.out.tfevents.*")):
        if (run_dir / folder).is_symlink():  # what it points to is not the run's
            continue
        for path in (run_dir / folder).glob(pattern):
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def claimed(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process while the block runs: another process claiming it meanwhile (a
    second ``gantk train`` with the same --out) is refused. An advisory lock on the folder, released
    when the process ends however it ends; where locks are not available, nothing is checked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionError(
                f"another process is training in {run_dir}; wait for it to end, or choose another --out directory."
            ) from None
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        os.close(fd)
