"""The names of what a run directory holds besides its checkpoints (``checkpoint.checkpoint_path``)."""

from pathlib import Path

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
