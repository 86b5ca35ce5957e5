"""A study's outputs: the results table, a bar chart per metric and a grid of sample outputs."""

from __future__ import annotations

import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

import torch

from ..data.transforms import to_unit
from ..data.datasets import UnpairedSplit
from ..evaluate import json_ready, open_eval_split, save_result
from ..files import replacing
from ..inference import TrainedModel
from ..metrics.ranking import HIGHER_IS_BETTER
from ..plugins import Components
from ..report import trained_text
from ..systems import targets
from ..train.config import EXECUTION_KEYS
from ..train.plots import figure, save_png
from .grids import Grid

IMAGE_COLUMNS = ("l1", "rmse", "psnr", "ssim", "lpips", "fid", "kid", "precision", "recall")
MASK_COLUMNS = ("pixel_accuracy", "mean_class_accuracy", "mean_iou", "foreground_iou", "mean_dice", "rmse")
SAMPLE_ROWS = 3  # test images samples.png shows
TABLE_COLUMNS = frozenset({"gen", "disc", "conditional", "loss"})  # settings the table shows in columns of their own


def metric_columns(results: list[dict[str, Any]]) -> list[str]:
    """Metric columns of the table: those of the task that at least one cell has."""
    wanted = MASK_COLUMNS if results and results[0]["task"] == "segmentation" else IMAGE_COLUMNS
    return [name for name in wanted if any(name in r["metrics"] for r in results)]


def grid_cell(result: dict[str, Any]) -> str:
    """The grid cell a result is a run of: its group (one seed's run, with ``--seeds``), else its own name."""
    return result["cell"].get("group") or result["cell"]["name"]


def seeded(results: list[dict[str, Any]]) -> bool:
    """Whether the study ran its cells with ``--seeds`` (each result is one seed's run of its grid cell)."""
    return any(grid_cell(r) != r["cell"]["name"] for r in results)


def seed_groups(results: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The results by the grid cell they are runs of (one run per seed with ``--seeds``), in grid order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        groups.setdefault(grid_cell(result), []).append(result)
    return list(groups.values())


def spread(runs: list[dict[str, Any]], name: str) -> dict[str, float | int | None] | None:
    """Mean and sample standard deviation (``None`` for one value) of metric ``name`` over a cell's runs
    (those that have it: ``n``)."""
    values = [value for r in runs if (value := json_ready(r["metrics"]).get(name)) is not None]
    if not values:
        return None
    sd = statistics.stdev(values) if len(values) > 1 else None  # exact: equal values give 0
    return {"mean": statistics.fmean(values), "sd": sd, "n": len(values)}


def run_seeds(runs: list[dict[str, Any]]) -> list[int | None]:
    """The training seed of each of a cell's runs."""
    return [r["cell"].get("train_config", {}).get("seed") for r in runs]


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per grid cell: its seeds and the spread of each metric over them (see :func:`spread`)."""
    names = metric_columns(results)
    return [{"cell": grid_cell(runs[0]), "seeds": run_seeds(runs),
             "metrics": {name: found for name in names if (found := spread(runs, name)) is not None}}
            for runs in seed_groups(results)]


def heading(name: str) -> str:
    """A metric's name with the direction that is better: ``fid ↓``, ``psnr ↑``."""
    return f"{name} {'↑' if name in HIGHER_IS_BETTER else '↓'}"


def markdown_table(results: list[dict[str, Any]]) -> str:
    """The study as a markdown table, one row per grid cell; a cell run with several seeds shows the mean and
    standard deviation over them. The best value (mean) of each column in bold (unless all are equal)."""
    names = metric_columns(results)
    groups = seed_groups(results)
    # A value that is not finite reads as n/a, as results.json (and so a study run again) holds it: null.
    spreads = [{name: cell["metrics"].get(name) for name in names} for cell in summary(results)]  # in the order of groups
    best = {}
    for name in names:
        means = [found[name]["mean"] for found in spreads if found[name] is not None]
        if means:
            best[name] = max(means) if name in HIGHER_IS_BETTER else min(means)
    contested = {name for name in best if len({found[name]["mean"] for found in spreads if found[name] is not None}) > 1}
    others = [settings_text(own_settings(runs[0])) for runs in groups]  # what the table's other columns do not show
    shown = any(others)
    lines = [
        "| cell | generator | discriminator | objective | " + "other settings | " * shown + " | ".join(map(heading, names)) + " |",
        "|---|---|---|---|" + "---|" * shown + "---:|" * len(names),
    ]
    for runs, found, other in zip(groups, spreads, others):
        first, model = runs[0], runs[0]["model"]
        disc = "none" if not model["disc"] else f"{model['disc']} ({'conditional' if model['conditional'] else 'unconditional'})"
        cells = []
        for name in names:
            value = found[name]
            text = "n/a" if value is None else f"{value['mean']:.4g}"
            if value is not None and len(runs) > 1:
                text += (f" ± {value['sd']:.2g}" if value["sd"] is not None else "") + (
                    f" ({value['n']} of {len(runs)})" if value["n"] < len(runs) else "")
            bold = value is not None and value["mean"] == best.get(name) and name in contested
            cells.append(f"**{text}**" if bold else text)
        setting = f"{table_text(other) or '-'} | " if shown else ""
        lines.append(f"| {table_text(grid_cell(first))} | {model['gen']} | {disc} | `{model['loss']}` | {setting}"
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def own_settings(result: dict[str, Any]) -> dict[str, Any]:
    """The settings a cell of the grid sets itself, but those the table shows in columns of their own (and the
    seed --seeds gives each run of a cell)."""
    cell = result["cell"]
    seeded = cell.get("group", cell["name"]) != cell["name"]
    return {key: value for key, value in cell.get("settings", {}).items()
            if key not in TABLE_COLUMNS and not (seeded and key == "seed")}


def seeds_text(results: list[dict[str, Any]]) -> str:
    """The seeds each cell ran with, when a study ran them with ``--seeds``; empty otherwise."""
    if not seeded(results):
        return ""
    seeds = run_seeds(seed_groups(results)[0])
    if len(seeds) == 1:
        return f"each cell trained with seed {seeds[0]}"
    return f"each cell trained with seeds {', '.join(map(str, seeds))}: mean ± sample standard deviation over them"


def table_text(text: str) -> str:
    """``text`` as one markdown table cell shows it as written: its own ``|``, line breaks and tags do not
    end the cell, start a row or become HTML."""
    return " ".join(text.split()).replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def steps_text(results: list[dict[str, Any]]) -> str:
    """The training steps of the cells: one number when they all took the same."""
    if len({r["step"] for r in results}) == 1:
        step = results[0]["step"]
        return f"{step} training step{'s' if step != 1 else ''} per cell"
    return "training steps per cell: " + ", ".join(f"{r['step']} ({r['cell']['name']})" for r in results)


def write_outputs(grid: Grid, results: list[dict[str, Any]], data: str | Path, out: Path,
                  components: Components | None = None, common: dict[str, Any] | None = None) -> None:
    """The study's files (see :func:`~gantk.ablate.run_ablation`); ``common``: the settings given for every cell."""
    first = results[0]
    # Option tables merge key by key, so each option counts apart; how a run executes changes no score.
    shared = {path: value for path, value in flat_settings({**grid.common, **(common or {})}).items() if path[0] not in EXECUTION_KEYS}
    cell_settings = {cell.name: flat_settings(cell.settings) for cell in grid.cells}
    own = {path: [name for name, settings in cell_settings.items() if path in settings] for path in shared}
    every, partly = ({path: value for path, value in shared.items() if bool(own[path]) == some and path[0] != "loss_opt"}
                     for some in (False, True))
    objective_options = {path[1:]: value for path, value in shared.items() if path[0] == "loss_opt"}  # for the cells with the term
    overridden = sorted(path for path in shared if own[path])
    header = [
        f"# Ablation: {grid.name}",
        "",
        *([grid.description, ""] if grid.description else []),
        f"Data: `{data}` (split {first['split']}, {first['images']} images{trained_text(first)}"
        + (f", pixels of mask value {first['ignore_label']} ignored" if first.get("ignore_label") is not None else "")
        + f"); {steps_text(results)}; evaluation mode: {first['mode']}"
        + (f", scored at size {first['size']}" if first.get("size", "crop") != "crop" else "")
        + (f", in batches of {first['batch_size']}" if first.get("batch_size", 1) != 1 else "")
        + (f", evaluation seed {first['seed']}" if first.get("seed", 0) != 0 else "")
        + (f"; {seeds}." if (seeds := seeds_text(results)) else "."),
        "",
        *([f"Settings of every cell: {table_text(settings_text(nested(every)))}.", ""] if every else []),
        *([f"Settings of the cells without one of their own: {table_text(settings_text(nested(partly)))}.", ""] if partly else []),
        *([f"Objective options, for the cells whose objective has the term: "
           f"{table_text(settings_text(nested(objective_options)))}.", ""] if objective_options else []),
        *([table_text("Set otherwise by their cells: " + "; ".join(f"{'.'.join(path)}: {', '.join(own[path])}"
                                                                      for path in overridden)) + ".", ""] if overridden else []),
    ]
    unscored: dict[tuple[str, str], list[str]] = {}  # metric and reason -> the runs it holds for
    for r in results:
        for name, reason in r["unavailable"].items():
            unscored.setdefault((name, reason), []).append(r["cell"]["name"])  # with --seeds, the seed's run
    footer = [""] * bool(unscored) + [
        f"- unavailable {name}" + ("" if len(cells) == len(results) else f" ({table_text(', '.join(dict.fromkeys(cells)))})")
        + f": {reason}" for (name, reason), cells in sorted(unscored.items())]
    with replacing(out / "results.md") as handle:
        handle.write("\n".join(header) + "\n" + markdown_table(results) + "\n".join(footer) + ("\n" if footer else ""))
    save_result({"grid": grid.name, "description": grid.description, "cells": results,
                 **({"summary": summary(results)} if seeded(results) else {})}, out / "results.json")
    plot_metrics(results, out / "metrics.png")
    comparison_grid([runs[0] for runs in seed_groups(results)], data, out / "samples.png", components=components)


def flat_settings(settings: dict[str, Any], within: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Settings by their path: an option of a table (``gen_opt``, a term's options in ``loss_opt``) is one entry
    (``("gen_opt", "ngf")``), as a cell's own table merges with the shared one key by key."""
    flat: dict[tuple[str, ...], Any] = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            flat.update(flat_settings(value, (*within, key)))
        else:
            flat[(*within, key)] = value
    return flat


def nested(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """The settings of :func:`flat_settings` as tables again."""
    settings: dict[str, Any] = {}
    for path, value in flat.items():
        table = settings
        for key in path[:-1]:
            table = table.setdefault(key, {})
        table[path[-1]] = value
    return settings


def settings_text(settings: dict[str, Any]) -> str:
    """Settings as ``key=value`` pairs, option tables as ``key={option=value, ...}``."""
    def shown(value: Any) -> str:
        return "{" + ", ".join(f"{k}={shown(v)}" for k, v in value.items()) + "}" if isinstance(value, dict) else str(value)

    return ", ".join(f"{key}={shown(value)}" for key, value in sorted(settings.items()))


def plot_metrics(results: list[dict[str, Any]], path: Path) -> Path:
    """One bar chart per metric column, grid cells on the x axis (the mean over seeds, the standard deviation as a bar)."""
    names, cells = metric_columns(results), summary(results)
    labels = [cell["cell"] for cell in cells]
    fig, axes = figure(1, len(names), figsize=(2.6 * len(names), 3.6))
    for axis, name in zip(axes[0], names):
        found = [cell["metrics"].get(name) for cell in cells]
        values = [None if f is None else f["mean"] for f in found]
        errors = [(f["sd"] or 0.0) if f else 0.0 for f in found] if any(len(cell["seeds"]) > 1 for cell in cells) else None
        axis.bar(range(len(values)), [math.nan if v is None else v for v in values], yerr=errors, capsize=3, color="#4c72b0")
        for i in (i for i, v in enumerate(values) if v is None):
            axis.text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
        axis.set_title(heading(name), fontsize=10)
        axis.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        axis.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=100)


def comparison_grid(results: list[dict[str, Any]], data: str | Path, path: Path, components: Components | None = None) -> Path:
    """:data:`SAMPLE_ROWS` images spread over the evaluated split, one row each: input, target (paired data), then
    every cell's output, translated as the cell was evaluated (its split, mode and seed)."""
    titles: list[str] = []
    image_columns: list[list[torch.Tensor]] = []
    for result in results:
        evaluation = result["cell"]["evaluation"]
        model = TrainedModel.load(result["checkpoint"], device="cpu", eval_mode=evaluation["eval_mode"], components=components)
        dataset = open_eval_split(data, model.config, evaluation["split"], result.get("data_format"), components=components)
        paired = not isinstance(dataset, UnpairedSplit)
        inputs = dataset if paired else dataset.sides["A"]
        picks = torch.linspace(0, len(inputs) - 1, min(SAMPLE_ROWS, len(inputs))).round().long().unique().tolist()
        items = [inputs[i] for i in picks]
        if not image_columns:
            titles.append("input")
            image_columns.append([targets.shown_inputs(it["A"][None], model.input_classes)[0] for it in items])
            if paired:
                titles.append("target")
                image_columns.append([targets.shown(it["B"][None], model.num_classes)[0] for it in items])
        outputs = []
        for it in items:  # each with its noise in eval, one image a batch
            with model.seeded(evaluation["seed"], input_file=it["A_path"]):
                outputs.append(model.translate(model.inputs(it["A"][None], from_dataset=True), pad=True))  # shapes may not fit
        titles.append(result["cell"]["name"])
        image_columns.append([targets.shown(o, model.num_classes)[0] for o in outputs])
    rows = len(image_columns[0])
    fig, axes = figure(rows, len(image_columns), figsize=(1.3 * len(image_columns), 1.3 * rows + 0.3))
    for col, (title, images) in enumerate(zip(titles, image_columns)):
        axes[0][col].set_title(textwrap.fill(title, 18), fontsize=8)  # long cell names wrap within the column
        for row, image in enumerate(images):
            axes[row][col].imshow(to_unit(image).permute(1, 2, 0).numpy())
            axes[row][col].axis("off")
    fig.tight_layout(pad=0.2)
    return save_png(fig, path, dpi=80)
