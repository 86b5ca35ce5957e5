"""The names of what a run directory holds besides its checkpoints (``checkpoint.checkpoint_path``), and
the claim of the process training in it."""

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

from ..errors import OptionError
from .config import SETTING_NAMES, read_toml

CONFIG = "config.toml"  # the resolved settings
METRICS = "metrics.csv"  # losses, learning rate and speed, one row per --log-every steps
VALIDATION = "validation.csv"  # scores on the held-out split, one row per --val-every steps
LOSS_CURVES = "loss_curves.png"
SAMPLES = "samples"  # a folder of sample grids
TENSORBOARD = "tensorboard"  # a folder of event files
EVAL = "eval.json"  # a gantk ablate cell's scores
BEST = "best.pt"  # the checkpoint with the best validation score (--keep-best)

# Settings that gantk writes into every run's config.toml (they are never None).
WRITTEN_KEYS = frozenset({"recipe", "out", "seed", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints"})

# A new run may reuse a folder that holds only these.
ALL = frozenset({CONFIG, METRICS, VALIDATION, LOSS_CURVES, SAMPLES, TENSORBOARD, EVAL, BEST})


def left_outputs(run_dir: Path) -> list[Path]:
    """What a run that stopped before its first checkpoint left in ``run_dir`` and a new run there
    replaces: settings, logs, samples and scores (not what a linked ``samples/`` points to)."""
    found = [run_dir / name for name in (CONFIG, METRICS, VALIDATION, LOSS_CURVES, EVAL) if os.path.lexists(run_dir / name)]
    for folder, pattern in ((SAMPLES, "step-*.png"), (TENSORBOARD, "events.out.tfevents.*")):
        if not (run_dir / folder).is_symlink():
            found += sorted((run_dir / folder).glob(pattern))
    return found


def clear_outputs(run_dir: Path) -> None:
    """Remove :func:`left_outputs`, so that a new run in ``run_dir`` starts with logs, samples and scores
    of its own (other files are left)."""
    for path in left_outputs(run_dir):
        path.unlink(missing_ok=True)


def read_settings(run_dir: Path) -> dict[str, Any] | None:
    """The settings in ``run_dir``'s ``config.toml``; ``None`` where it is missing, unreadable or not as gantk writes
    it (an empty file, as a crash may leave, holds none of :data:`WRITTEN_KEYS`)."""
    try:
        settings = read_toml(run_dir / CONFIG, "settings file")
    except (OSError, OptionError):  # read_toml's refusals, and the errors it lets through (a file that may not be read)
        return None
    return settings if WRITTEN_KEYS <= set(settings) <= SETTING_NAMES else None


def written_by_gantk(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run's settings as gantk writes them (``config.toml``), which tells a
    folder left by a run from one whose files only have a run's names."""
    return read_settings(run_dir) is not None


_CLAIMS: set[int] = set()  # the descriptors holding this process's claims


def _drop_claims_in_child() -> None:
    """A forked child (a data-loader worker) closes its copies of the claims' descriptors: the lock lasts
    while any copy is open, and workers outlive a killed trainer by seconds."""
    for fd in _CLAIMS:
        os.close(fd)
    _CLAIMS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_claims_in_child)


def training_elsewhere(run_dir: Path) -> bool:
    """Whether another process holds ``run_dir`` (:func:`claimed`). Asked with a shared lock, taken and let go at
    once, so that processes asking together (those of a torchrun job) do not see each other."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        return False
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks
        return False
    finally:
        os.close(fd)
    return False


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
    _CLAIMS.add(fd)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionError(
                f"another process is training in {run_dir}; wait for it to end (a new run may take another --out directory)."
            ) from None
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        _CLAIMS.discard(fd)
        os.close(fd)
