"""Ablation studies: train a grid of compositions on one dataset with the same seed, steps and data,
evaluate each, and write a markdown table and plots (``gantk ablate``).

A grid is a list of cells; each cell is a set of training settings (the keys of
:class:`gantk.train.TrainConfig`) applied on top of the settings common to every cell. Built-in
grids follow the ablations of pix2pix (Isola et al. 2017), plus L1 against L2; others come from TOML files::

    name = "losses"                        # optional
    description = "L1 against L1+cGAN"    # optional
    [common]                               # optional, applied to every cell
    max_steps = 500
    gen_opt = { ngf = 32 }
    [[cells]]
    name = "L1"
    loss = "l1"
    disc = "none"
    [[cells]]
    name = "L1+cGAN"
    loss = "bce+l1"

Settings are applied in this order, later ones winning: recipe defaults, the grid's ``common``,
the command line, then the cell (option dicts such as ``gen_opt`` merge key by key). Each cell
trains into ``OUT/<cell>/``; a cell is finished when its final checkpoint and ``eval.json``
exist, and finished cells are skipped when the study runs again (with other evaluation settings
they are evaluated again, not retrained). An interrupted cell resumes from its newest checkpoint;
changed training settings of a cell already trained are an error. With ``seeds`` each cell trains
once per seed and the table shows the mean and standard deviation over them.
"""

from .grids import BUILTIN_GRIDS, AblationError, Cell, Grid, cell_config, load_grid
from .outputs import markdown_table, steps_text
from .runner import EVAL_FILE, run_ablation

__all__ = [
    "BUILTIN_GRIDS", "EVAL_FILE", "AblationError", "Cell", "Grid", "cell_config", "load_grid", "markdown_table",
    "run_ablation", "steps_text",
]
