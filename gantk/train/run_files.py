"""The names of what a run directory holds besides its checkpoints (``checkpoint.checkpoint_path``)."""

CONFIG = "config.toml"  # the resolved settings
METRICS = "metrics.csv"  # losses, learning rate and speed, one row per --log-every steps
VALIDATION = "validation.csv"  # scores on the held-out split, one row per --val-every steps
LOSS_CURVES = "loss_curves.png"
SAMPLES = "samples"  # a folder of sample grids
TENSORBOARD = "tensorboard"  # a folder of event files
EVAL = "eval.json"  # a gantk ablate cell's scores

# A new run may reuse a folder that holds only these.
ALL = frozenset({CONFIG, METRICS, VALIDATION, LOSS_CURVES, SAMPLES, TENSORBOARD, EVAL})
