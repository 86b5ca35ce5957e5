"""The grids of an ablation study: cells of training settings, the built-in grids and TOML grid files."""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import GantkError
from ..metrics.fid import vouched_weights
from ..objectives.spec import parse_spec
from ..plugins import Components, default_components
from ..train import TrainConfig
from ..train.config import SETTING_NAMES, check_seed, flag, merged_tables, read_toml, setting_keys


RUNNER_KEYS = frozenset({"data", "out"})  # settings gantk ablate gives every cell
STUDY_FILES = frozenset({"results.md", "results.json", "metrics.png", "samples.png"})  # what write_outputs writes


class AblationError(GantkError):
    """A grid that cannot be read or run."""


@dataclass(frozen=True)
class Cell:
    """One composition of a grid: a name and the training settings that define it; ``group`` names the cell
    of which it is one seed's run (see :func:`with_seeds`), empty for a cell trained once."""

    name: str
    settings: dict[str, Any]
    group: str = ""

    @property
    def folder(self) -> str:
        """The cell's run-directory name: lower case, runs of characters other than letters, digits and ``+._-``
        become ``-``, without leading or trailing ``-`` and ``.`` (so never ``.`` or ``..``)."""
        return re.sub(r"[^a-z0-9+._-]+", "-", self.name.lower()).strip("-.")


@dataclass(frozen=True)
class Grid:
    """A named list of cells and the settings they share; ``source`` is the file it was read from, if any."""

    name: str
    cells: tuple[Cell, ...]
    description: str = ""
    common: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def label(self) -> str:
        """How messages name the grid: its name, and its file."""
        return f"{self.name} ({self.source})" if self.source else self.name


L1_CGAN = {"loss": "bce+l1@100", "conditional": True}

BUILTIN_GRIDS = {
    grid.name: grid
    for grid in (
        Grid("table1", (
            Cell("L1", {"loss": "l1", "disc": "none"}),
            Cell("GAN", {"loss": "bce", "conditional": False}),
            Cell("cGAN", {"loss": "bce", "conditional": True}),
            Cell("L1+GAN", {"loss": "bce+l1@100", "conditional": False}),
            Cell("L1+cGAN", L1_CGAN),
        ), "pix2pix Table 1: objectives with the U-Net and the 70x70 PatchGAN (GAN: D sees the output only)"),
        Grid("generators", (
            Cell("encoder-decoder L1", {"gen": "encoder-decoder", "loss": "l1", "disc": "none"}),
            Cell("encoder-decoder L1+cGAN", {"gen": "encoder-decoder", **L1_CGAN}),
            Cell("U-Net L1", {"gen": "unet", "loss": "l1", "disc": "none"}),
            Cell("U-Net L1+cGAN", {"gen": "unet", **L1_CGAN}),
        ), "pix2pix generator ablation: encoder-decoder against U-Net, with L1 and L1+cGAN"),
        Grid("table3", (
            Cell("1x1 PixelGAN", {"disc": "pixel", **L1_CGAN}),
            Cell("16x16 PatchGAN", {"disc": "patch16", **L1_CGAN}),
            Cell("70x70 PatchGAN", {"disc": "patch70", **L1_CGAN}),
            Cell("286x286 ImageGAN", {"disc": "patch286", **L1_CGAN}),
        ), "pix2pix Table 3: discriminator receptive fields with L1+cGAN"),
        Grid("pixel-loss", (
            Cell("L1+cGAN", L1_CGAN),
            Cell("L2+cGAN", {"loss": "bce+l2@100", "conditional": True}),
            Cell("0.5 L1+0.5 L2+cGAN", {"loss": "bce+l1@50+l2@50", "conditional": True}),
        ), "reconstruction term with cGAN: L1, L2 and their half-half mix, all with total weight lambda = 100"),
        Grid("gan-losses", (
            Cell("bce+l1", L1_CGAN),
            Cell("lsgan+l1", {"loss": "lsgan+l1@100", "conditional": True}),
            Cell("hinge+l1", {"loss": "hinge+l1@100", "conditional": True}),
            Cell("hinge+l1+r1", {"loss": "hinge+l1@100+r1@10", "conditional": True}),
            Cell("hinge+l1+r1@1", {"loss": "hinge+l1@100+r1@1", "conditional": True}),
        ), "adversarial losses with L1 (lambda = 100) and the conditional 70x70 PatchGAN: BCE (the paper's), least "
           "squares, hinge, and hinge with R1 on the discriminator (gamma = 10 and 1)"),
        Grid("averaging", (
            Cell("L1+cGAN", {**L1_CGAN, "ema_decay": None}),
            Cell("L1+cGAN, EMA 0.999", {**L1_CGAN, "ema_decay": 0.999}),
        ), "pix2pix (L1+cGAN) translating with its generator's last weights, and with an exponential moving average of "
           "them (--ema-decay 0.999)"),
        Grid("disc-augment", (
            Cell("L1+cGAN", L1_CGAN),
            Cell("L1+cGAN, translation+cutout", {**L1_CGAN, "disc_augment": "translation,cutout"}),
            Cell("L1+cGAN, color+translation+cutout", {**L1_CGAN, "disc_augment": "color,translation,cutout"}),
        ), "pix2pix (L1+cGAN) with DiffAugment of what the discriminator sees (--disc-augment): none, translation and "
           "cutout, and with colour too"),
        Grid("seg-losses", (
            Cell("lovasz", {"loss": "lovasz", "disc": "none"}),
            Cell("ce", {"loss": "ce", "disc": "none"}),
            Cell("focal", {"loss": "focal", "disc": "none"}),
            Cell("ce+lovasz", {"loss": "ce+lovasz", "disc": "none"}),
            Cell("hinge+lovasz", {"loss": "hinge+lovasz"}),
            Cell("hinge+ce+lovasz", {"loss": "hinge+ce+lovasz"}),
        ), "segmentation objectives (seg recipe, mask data): Lovasz, cross-entropy and focal alone, Lovasz and "
           "cross-entropy together, without a discriminator and with the recipe's hinge term against the conditional "
           "70x70 PatchGAN", {"recipe": "seg"}),
    )
}


# What naming validation's InceptionV3 to gantk ablate does besides (its evaluation uses the same file).
ABLATE_CAVEAT = "; for gantk ablate, either also makes it the network every cell is evaluated with"


def load_grid(spec: str | Path) -> Grid:
    """A built-in grid by name (see :data:`BUILTIN_GRIDS`) or a grid from a TOML file (whose InceptionV3 weights
    :func:`vouched_grid` checks before a study runs)."""
    if str(spec) in BUILTIN_GRIDS:
        return BUILTIN_GRIDS[str(spec)]
    path = Path(spec).expanduser()
    if not path.is_file():
        close = difflib.get_close_matches(str(spec), list(BUILTIN_GRIDS), n=1)
        raise AblationError(f"'{spec}' is neither a built-in grid ({', '.join(BUILTIN_GRIDS)}) nor a TOML file; pass one of them"
                            + (f" (did you mean {close[0]}?)." if close else "."))
    document = read_toml(path, "grid file")
    unknown = sorted(set(document) - {"name", "description", "common", "cells"})
    if unknown:
        raise AblationError(
            f"grid file {path}: unknown top-level key(s) {', '.join(unknown)}; expected name, description, [common] and [[cells]]."
        )
    cells = document.get("cells")
    if not isinstance(cells, list) or not cells or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in cells):
        raise AblationError(f"grid file {path} needs [[cells]] tables, each with a name (e.g. name = \"L1\") and its settings.")
    common = document.get("common", {})
    if not isinstance(common, dict):
        raise AblationError(f"grid file {path}: common must be a [common] table of settings, got {common!r}.")
    grid = Grid(
        name=str(document.get("name", path.stem)),
        cells=tuple(Cell(c["name"], setting_keys({k: v for k, v in c.items() if k != "name"}, f"grid file {path}, cell {c['name']!r}"))
                    for c in cells),
        description=str(document.get("description", "")),
        common=setting_keys(common, f"grid file {path}, [common]"),
        source=str(path),
    )
    check_grid(grid)
    return grid


def vouched_grid(grid: Grid, inception_weights: str | Path | None = None) -> Grid:
    """``grid`` with the InceptionV3 weights its settings name made files the user chose (see
    :func:`gantk.metrics.fid.vouched_weights`; ``inception_weights``: ablate's, which they passed), before any is loaded."""
    def vouched(settings: dict[str, Any], label: str) -> dict[str, Any]:
        if "inception_weights" not in settings:
            return settings
        return {**settings, "inception_weights": vouched_weights(settings["inception_weights"], f"grid file {grid.source}, {label},",
                                                                 inception_weights, caveat=ABLATE_CAVEAT)}

    return dataclasses.replace(grid, common=vouched(grid.common, "[common]"), cells=tuple(
        dataclasses.replace(cell, settings=vouched(cell.settings, f"cell {cell.name!r}")) for cell in grid.cells))


def with_seeds(grid: Grid, seeds: Sequence[int], common: dict[str, Any] | None = None) -> Grid:
    """``grid`` with each cell trained once per seed: cell ``L1`` becomes ``L1 seed=0``, ``L1 seed=1``...
    (folders ``l1-seed-0``...), each of group ``L1``. A seed set by the grid or ``common`` is refused."""
    try:
        seeds = [check_seed(seed) for seed in seeds]
    except GantkError as error:
        raise AblationError(f"--seeds: {error}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise AblationError(f"--seeds must list different seeds (e.g. --seeds 0,1,2), got {', '.join(map(str, seeds)) or 'none'}.")
    setters = [label for label, settings in [("[common]", grid.common), ("--seed (or seed in --config)", common or {})]
               + [(f"cell '{c.name}'", c.settings) for c in grid.cells] if "seed" in settings]
    if setters:
        raise AblationError(f"grid {grid.label}: --seeds gives each cell its seeds, and {', '.join(setters)} sets one too; "
                            "drop one of them.")
    cells = tuple(Cell(f"{cell.name} seed={seed}", {**cell.settings, "seed": seed}, cell.name)
                  for cell in grid.cells for seed in seeds)
    return dataclasses.replace(grid, cells=cells)


def check_grid(grid: Grid) -> None:
    """Cell names unique as folders; every key a training setting; ``data`` and ``out`` left to the runner."""
    unnamed = [cell.name for cell in grid.cells if not cell.folder]
    if unnamed:
        raise AblationError(
            f"grid {grid.label}: cell name(s) {', '.join(map(repr, unnamed))} leave no ASCII letters or digits to name a folder with; "
            "give each cell a name such as 'L1+cGAN'."
        )
    folders = [cell.folder for cell in grid.cells]
    clashes = sorted({f for f in folders if folders.count(f) > 1})
    if clashes:
        raise AblationError(f"grid {grid.label}: cell names must differ as folder names (letters, digits, +._-), clashing: {', '.join(clashes)}.")
    taken = sorted(STUDY_FILES & set(folders))
    if taken:  # its folder would stand where the study writes that file, after every cell has trained
        raise AblationError(f"grid {grid.label}: a cell's folder may not take the name of a study file ({', '.join(sorted(STUDY_FILES))}), "
                            f"as cell(s) {', '.join(taken)} would; rename them.")
    for label, settings in [("[common]", grid.common)] + [(f"cell '{c.name}'", c.settings) for c in grid.cells]:
        reserved = sorted(RUNNER_KEYS & set(settings))
        if reserved:
            raise AblationError(f"grid {grid.label}, {label}: {', '.join(reserved)} is set by gantk ablate (--data, --out); remove it.")
        unknown = sorted(set(settings) - SETTING_NAMES)
        if unknown:
            known = sorted(SETTING_NAMES - RUNNER_KEYS)
            raise AblationError(f"grid {grid.label}, {label}: unknown setting(s) {', '.join(unknown)}; a cell takes: {', '.join(known)}.")
        try:
            TrainConfig().merged(settings)
        except GantkError as error:
            raise AblationError(f"grid {grid.label}, {label}: {error}") from None


def cell_config(grid: Grid, cell: Cell, data: str | Path, out: str | Path, common: dict[str, Any],
                components: Components | None = None) -> TrainConfig:
    """The training configuration of one cell (recipe defaults are filled in by the trainer). Objective
    options shared by every cell (the grid's ``[common]``, ``common``) go to the cells whose spec has the
    term they name: ``ce.class_weights`` reaches the ``ce`` cells of a grid that also has ``lovasz`` alone."""
    shared = TrainConfig().merged(grid.common).merged(common)
    config = dataclasses.replace(shared, loss_opt={}).merged(cell.settings)
    terms = set(cell_terms(config, components or default_components()))
    kept = {name: options for name, options in shared.loss_opt.items() if name in terms}
    return config.merged({"loss_opt": merged_tables(kept, config.loss_opt), "data": str(data),
                          "out": str(Path(out) / cell.folder)})


def cell_terms(config: TrainConfig, components: Components) -> list[str]:
    """The objective names of a cell's spec: its own ``loss``, else its recipe's (an unknown recipe or a
    spec that does not parse names none here: the cell's trainer reports it)."""
    try:
        loss = config.loss or components.create("recipe", config.recipe).defaults.get("loss")
        return [name for name, _ in parse_spec(loss)] if isinstance(loss, str) else []
    except GantkError:
        return []


def check_shared_settings_reach_a_cell(grid: Grid, common: dict[str, Any]) -> None:
    """Refuse a setting given for every cell that every cell sets for itself (it would reach none, silently);
    option tables merge with a cell's own, so they always reach it."""
    unused = sorted(key for key, value in common.items()
                    if not isinstance(value, dict) and all(key in cell.settings for cell in grid.cells))
    if unused:
        raise AblationError(f"grid {grid.label}: every cell sets {', '.join(map(flag, unused))} itself, so the value given "
                            "for every cell reaches none; drop it.")


def check_shared_loss_options(grid: Grid, common: dict[str, Any], components: Components) -> None:
    """Refuse shared objective options that name a term no cell's spec has (a typo would otherwise
    reach no cell, silently)."""
    shared = TrainConfig().merged(grid.common).merged(common)
    used = {name for cell in grid.cells for name in cell_terms(shared.merged(cell.settings), components)}
    unused = sorted(set(shared.loss_opt) - used)
    if unused:
        raise AblationError(
            f"grid {grid.label}: objective options for {', '.join(map(repr, unused))} (--loss-opt or loss_opt), a term no cell's "
            f"objective has (the cells use {', '.join(sorted(used))}); fix the name or drop the option."
        )
