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
changed training settings of a cell already trained are an error.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .errors import GantkError
from .evaluate import evaluate, open_eval_split, save_result
from .inference import TrainedModel
from .metrics.fid import find_inception_weights
from .objectives.spec import ObjectiveSet
from .systems import targets
from .train import TrainConfig, Trainer
from .train import checkpoint as ckpt
from .train.config import EXECUTION_KEYS, read_toml, setting_keys

EVAL_FILE = "eval.json"
# Evaluation settings a finished cell was evaluated with; changing one re-evaluates without retraining.
EVALUATION_DEFAULTS = {"split": "test", "eval_mode": False, "batch_size": 1, "seed": 0}
IMAGE_COLUMNS = ("l1", "rmse", "psnr", "ssim", "fid", "kid", "precision", "recall")
MASK_COLUMNS = ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "foreground_iou", "mean_dice", "rmse")
HIGHER_IS_BETTER = {
    "psnr", "ssim", "precision", "recall", "pixel_accuracy", "mean_class_accuracy", "mean_iou", "foreground_iou", "mean_dice",
}


class AblationError(GantkError):
    """A grid that cannot be read or run."""


@dataclass(frozen=True)
class Cell:
    """One composition of a grid: a name and the training settings that define it."""

    name: str
    settings: dict[str, Any]

    @property
    def folder(self) -> str:
        """The cell's run-directory name: lower case, runs of characters other than letters, digits and ``+._-``
        become ``-``, without leading or trailing ``-`` and ``.`` (so never ``.`` or ``..``)."""
        return re.sub(r"[^a-z0-9+._-]+", "-", self.name.lower()).strip("-.")


@dataclass(frozen=True)
class Grid:
    """A named list of cells and the settings they share."""

    name: str
    cells: tuple[Cell, ...]
    description: str = ""
    common: dict[str, Any] = field(default_factory=dict)


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
    )
}


def load_grid(spec: str | Path) -> Grid:
    """A built-in grid by name (see :data:`BUILTIN_GRIDS`) or a grid from a TOML file."""
    if str(spec) in BUILTIN_GRIDS:
        return BUILTIN_GRIDS[str(spec)]
    path = Path(spec)
    if not path.is_file():
        raise AblationError(f"'{spec}' is neither a built-in grid ({', '.join(BUILTIN_GRIDS)}) nor a TOML file; pass one of them.")
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
        cells=tuple(Cell(c["name"], setting_keys({k: v for k, v in c.items() if k != "name"})) for c in cells),
        description=str(document.get("description", "")),
        common=setting_keys(common),
    )
    check_grid(grid, str(path))
    return grid


def check_grid(grid: Grid, source: str) -> None:
    """Cell names unique as folders; every key a training setting; ``data`` and ``out`` left to the runner."""
    folders = [cell.folder for cell in grid.cells]
    clashes = sorted({f for f in folders if folders.count(f) > 1 or not f})
    if clashes:
        raise AblationError(
            f"grid {source}: cell names must differ as folder names (letters, digits, +._-), clashing: {', '.join(clashes) or 'empty'}."
        )
    for label, settings in [("[common]", grid.common)] + [(f"cell '{c.name}'", c.settings) for c in grid.cells]:
        reserved = sorted({"data", "out"} & set(settings))
        if reserved:
            raise AblationError(f"grid {source}, {label}: {', '.join(reserved)} is set by gantk ablate (--data, --out); remove it.")
        try:
            TrainConfig().merged(settings)
        except GantkError as error:
            raise AblationError(f"grid {source}, {label}: {error}") from None


def cell_config(grid: Grid, cell: Cell, data: str | Path, out: str | Path, common: dict[str, Any]) -> TrainConfig:
    """The training configuration of one cell (recipe defaults are filled in by the trainer)."""
    base = TrainConfig().merged(grid.common).merged(common)
    return base.merged(cell.settings).merged({"data": str(data), "out": str(Path(out) / cell.folder)})


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved configuration without the keys that only change how a run executes."""
    return {key: value for key, value in config.items() if key not in EXECUTION_KEYS}


def run_ablation(
    grid: Grid,
    data: str | Path,
    out: str | Path,
    *,
    common: dict[str, Any] | None = None,
    eval_options: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Train and evaluate every cell of ``grid`` (skipping finished ones), then write the study's outputs.

    Writes ``OUT/<cell>/`` (run directory and ``eval.json``), ``OUT/results.json``,
    ``OUT/results.md`` (markdown table), ``OUT/metrics.png`` and ``OUT/samples.png`` (three test
    images through every cell).

    Args:
        grid: the cells (see :func:`load_grid`).
        data: the dataset every cell trains and is evaluated on.
        out: the study's folder.
        common: training settings for every cell (e.g. ``{"max_steps": 500, "gen_opt": {"ngf": 32}}``).
        eval_options: keyword arguments of :func:`gantk.evaluate.evaluate` (``split``, ``inception_weights``...).
        progress: progress bars of training and evaluation.
        log: receives one line per cell and stage.

    Returns:
        The evaluation result of every cell, in grid order, each with a ``cell`` entry.
    """
    out = Path(out)
    common, eval_options = dict(common or {}), dict(eval_options or {})
    check_grid(grid, grid.name)
    evaluation = {key: eval_options.get(key, default) for key, default in EVALUATION_DEFAULTS.items()}
    feature_cache: dict = {}
    results = []
    trainers = [_checked_trainer(grid, cell, data, out, common, progress) for cell in grid.cells]  # every cell before any trains
    if eval_options.get("inception_weights") is not None:
        find_inception_weights(eval_options["inception_weights"])  # a wrong file is reported now, not after training
    for number, (cell, trainer) in enumerate(zip(grid.cells, trainers), 1):
        label = f"[{number}/{len(grid.cells)}] {cell.name}"
        run_dir, settings = trainer.run_dir, comparable(trainer.config.to_dict())
        finished = _finished_result(run_dir, settings, evaluation, cell)
        if finished is not None:
            log(f"{label}: finished earlier, skipped ({run_dir / EVAL_FILE})")
            results.append(finished)
            continue
        if ckpt.list_checkpoints(run_dir):
            payload = ckpt.load_checkpoint(run_dir)
            _check_same(comparable(payload["train_config"]), settings, run_dir, cell)
            log(f"{label}: continuing {run_dir} from its checkpoint at step {payload['step']}")
            trainer = Trainer(cell_config(grid, cell, data, out, common), progress=progress, resume_from=payload)
        else:
            log(f"{label}: training into {run_dir}")
        trainer.fit()
        log(f"{label}: evaluating")
        result = evaluate(run_dir, data, feature_cache=feature_cache, **{"progress": progress, **eval_options})
        result["cell"] = {"name": cell.name, "settings": cell.settings, "train_config": settings, "evaluation": evaluation}
        save_result(result, run_dir / EVAL_FILE)
        results.append(result)
    write_outputs(grid, results, data, out, eval_options)
    log(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'metrics.png'} and {out / 'samples.png'}")
    return results


def _checked_trainer(grid: Grid, cell: Cell, data: str | Path, out: str | Path, common: dict[str, Any], progress: bool) -> Trainer:
    """The cell's trainer, its settings resolved and its objective spec built."""
    try:
        trainer = Trainer(cell_config(grid, cell, data, out, common), progress=progress)
        ObjectiveSet.from_spec(trainer.config.loss, trainer.components.registry("objective"), trainer.config.loss_opt)
    except GantkError as error:
        raise AblationError(f"grid {grid.name}, cell '{cell.name}': {error}") from None
    return trainer


def _finished_result(run_dir: Path, settings: dict[str, Any], evaluation: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The saved result of a finished cell; ``None`` when it must train or be evaluated (again)."""
    path = run_dir / EVAL_FILE
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    if not isinstance(result.get("cell"), dict) or not ckpt.checkpoint_path(run_dir, result["step"]).is_file():
        return None  # not written by gantk ablate, or its checkpoint is gone
    _check_same(result["cell"]["train_config"], settings, run_dir, cell)
    return result if result["cell"].get("evaluation") == evaluation else None


def _check_same(saved: dict[str, Any], wanted: dict[str, Any], run_dir: Path, cell: Cell) -> None:
    """Raise unless two resolved configurations agree (a key only one of them has counts when it is not the default)."""
    defaults = TrainConfig().to_dict()
    changed = sorted(
        k for k in set(saved) | set(wanted)
        if saved.get(k, defaults.get(k)) != wanted.get(k, defaults.get(k))
    )
    if changed:
        raise AblationError(
            f"cell '{cell.name}' in {run_dir} was run with other settings ({', '.join(changed)}); "
            "run the study with its original settings, choose a new --out, or delete that cell's folder."
        )


# -- outputs ------------------------------------------------------------------------------------


def metric_columns(results: list[dict[str, Any]]) -> list[str]:
    """Metric columns of the table: those of the task that at least one cell has."""
    wanted = MASK_COLUMNS if results and results[0]["task"] == "segmentation" else IMAGE_COLUMNS
    return [name for name in wanted if any(name in r["metrics"] for r in results)]


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The study as a markdown table, one row per cell; the best value of each column in bold (unless all are equal)."""
    names = metric_columns(results)
    best = {}
    for name in names:
        values = [r["metrics"][name] for r in results if r["metrics"].get(name) is not None]
        if values:
            best[name] = max(values) if name in HIGHER_IS_BETTER else min(values)
    arrows = {name: "↑" if name in HIGHER_IS_BETTER else "↓" for name in names}
    contested = {name for name in best if len({r["metrics"].get(name) for r in results}) > 1}
    lines = [
        "| cell | generator | discriminator | objective | " + " | ".join(f"{n} {arrows[n]}" for n in names) + " |",
        "|---|---|---|---|" + "---:|" * len(names),
    ]
    for r in results:
        model = r["model"]
        disc = "none" if not model["disc"] else f"{model['disc']} ({'conditional' if model['conditional'] else 'unconditional'})"
        cells = []
        for name in names:
            value = r["metrics"].get(name)
            text = "n/a" if value is None else f"{value:.4g}"
            cells.append(f"**{text}**" if value is not None and value == best.get(name) and name in contested else text)
        lines.append(f"| {r['cell']['name']} | {model['gen']} | {disc} | `{model['loss']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def steps_text(results: list[dict[str, Any]]) -> str:
    """The training steps of the cells: one number when they all took the same."""
    if len({r["step"] for r in results}) == 1:
        return f"{results[0]['step']} training steps per cell"
    return "training steps per cell: " + ", ".join(f"{r['step']} ({r['cell']['name']})" for r in results)


def write_outputs(grid: Grid, results: list[dict[str, Any]], data: str | Path, out: Path, eval_options: dict[str, Any]) -> None:
    first = results[0]
    header = [
        f"# Ablation: {grid.name}",
        "",
        grid.description,
        "",
        f"Data: `{data}` (split {first['split']}, {first['images']} images); {steps_text(results)}; "
        f"evaluation mode: {first['mode']}.",
        "",
    ]
    reasons = sorted({f"{name}: {reason}" for r in results for name, reason in r["unavailable"].items()})
    footer = ["", *(f"- unavailable {reason}" for reason in reasons)] if reasons else []
    (out / "results.md").write_text("\n".join(header) + "\n" + markdown_table(results) + "\n".join(footer) + ("\n" if footer else ""))
    save_result({"grid": grid.name, "description": grid.description, "cells": results}, out / "results.json")
    plot_metrics(results, out / "metrics.png")
    comparison_grid(results, data, out / "samples.png", eval_options)


def plot_metrics(results: list[dict[str, Any]], path: Path) -> Path:
    """One bar chart per metric column, cells on the x axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = metric_columns(results)
    labels = [r["cell"]["name"] for r in results]
    fig, axes = plt.subplots(1, len(names), figsize=(2.6 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names):
        values = [r["metrics"].get(name) for r in results]
        axis.bar(range(len(values)), [v if v is not None else 0 for v in values], color="#4c72b0")
        axis.set_title(f"{name} {'↑' if name in HIGHER_IS_BETTER else '↓'}", fontsize=10)
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def comparison_grid(results: list[dict[str, Any]], data: str | Path, path: Path, eval_options: dict[str, Any], count: int = 3) -> Path:
    """``count`` test images spread over the split, one row each: input, target, then every cell's output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    split = eval_options.get("split", "test")
    eval_mode, seed = eval_options.get("eval_mode", False), eval_options.get("seed", 0)
    titles: list[str] = []
    image_columns: list[list[torch.Tensor]] = []
    for result in results:
        model = TrainedModel.load(result["checkpoint"], device="cpu", eval_mode=eval_mode)
        dataset = open_eval_split(data, model.config, split)
        picks = torch.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().long().unique().tolist()
        items = [dataset[i] for i in picks]
        if not image_columns:
            titles += ["input", "target"]
            image_columns.append([targets.displayable(it["A"][None])[0] for it in items])
            image_columns.append([targets.shown(it["B"][None], model.num_classes)[0] for it in items])
        with model.seeded(seed):
            outputs = [model.translate(model.inputs(it["A"][None])) for it in items]
        titles.append(result["cell"]["name"])
        image_columns.append([targets.shown(o, model.num_classes)[0] for o in outputs])
    rows = len(image_columns[0])
    fig, axes = plt.subplots(rows, len(image_columns), figsize=(1.3 * len(image_columns), 1.3 * rows + 0.3), squeeze=False)
    for col, (title, images) in enumerate(zip(titles, image_columns)):
        axes[0][col].set_title(textwrap.fill(title, 18), fontsize=8)  # long cell names wrap within the column
        for row, image in enumerate(images):
            axes[row][col].imshow((image.float().permute(1, 2, 0) * 0.5 + 0.5).clamp(0, 1).numpy())
            axes[row][col].axis("off")
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
