"""The ``gantk`` command line: parses and validates, then calls the library."""

from __future__ import annotations

if __name__ == "__main__":  # python -m gantk.cli, as earlier versions documented: runs as python -m gantk does, from here,
    from gantk.__main__ import main as gantk_main  # before this module's imports, so a Ctrl-C in them is answered too

    raise SystemExit(gantk_main())

import dataclasses
import difflib
import functools
import json
import shlex
import signal
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .cli_options import (
    CHECKPOINT, DIRECTION_HELP, EVAL_MODE, LAST_WEIGHTS, SEED, TILE, TILE_OVERLAP, DeviceName, UserPath, given_flags, parse_options,
    progress_option, size_option, train_flags,
)
from .cli_output import echo, printable
from .data.derive import TASKS
from .data.io import MAX_CLASS_ID
from .commands_eval import ablate_command, eval_command
from .errors import GantkError, GantkWarning, OptionError
from .files import file_error_text
from .plugins import KINDS, default_components, normalize_kind
from .torchrun import process_from_environment, refuse_under_torchrun
from .train.config import CHOICES


class GantkGroup(click.Group):
    """A click group that prints gantk errors and errors about a named file as one line, without a
    traceback, and exits 1, and gantk warnings as one line each, once. A command cannot replace
    another of the same name."""

    failed_plugins: tuple[str, ...] = ()  # plugins that reported failures: a missing command may be theirs

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in self.commands and self.commands[name] is not cmd:
            raise GantkError(f"command '{name}' already exists; a plugin adds its commands under new names.")
        super().add_command(cmd, name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        """As click resolves it; a command that is not there, and not the misspelling of one that is, may be a plugin's
        that failed to load: the error names those plugins."""
        name = str(args[0]) if args else ""  # read first: click may consume args
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:  # no such command, or an option-like name click parsed as options
            command_name = name and not name.startswith("-")
            if self.failed_plugins and command_name and not difflib.get_close_matches(name, self.list_commands(ctx)):
                error.message += (f" Plugin(s) {', '.join(self.failed_plugins)} failed to load or to register all they "
                                  "provide, and may provide it: the warnings above say why.")
            raise

    def invoke(self, ctx: click.Context) -> Any:
        with warnings.catch_warnings():
            warnings.showwarning = functools.partial(_show_warning, warnings.showwarning, set())
            try:
                return super().invoke(ctx)
            except GantkError as error:
                raise click.ClickException(_from_this_process(str(error))) from None
            except click.ClickException as error:  # a usage error naming a given path
                error.message = printable(error.message)
                raise
            except OSError as error:
                if error.filename is None:  # not about a path the user gave: a bug, shown in full
                    raise
                raise click.ClickException(_from_this_process(file_error_text(error))) from None
            except KeyboardInterrupt as error:  # a stop outside training's own handling
                aborted(error)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except KeyboardInterrupt as error:  # while click parses the command line (it would answer 1)
            aborted(error)


def aborted(error: KeyboardInterrupt) -> NoReturn:
    """End on a Ctrl-C with "Aborted.", the notes of what was left (see ``translate.naming_written``), and the shell's
    status for it."""
    echo("\nAborted.", err=True)
    for note in getattr(error, "__notes__", []):
        echo(printable(note), err=True)
    raise SystemExit(128 + getattr(error, "signum", signal.SIGINT)) from None


def _from_this_process(message: str) -> str:
    """``message`` prefixed with the process's rank under torchrun, where every process reports its own errors."""
    process = process_from_environment()
    return printable(f"[rank {process.rank}] {message}" if process.distributed else message)


def _show_warning(fallback, shown: set[str], message, category, filename, lineno, file=None, line=None) -> None:
    if issubclass(category, GantkWarning):
        # once per command, however often raised, and under torchrun by the first process only
        if str(message) not in shown and process_from_environment().is_main:
            shown.add(str(message))
            echo(f"warning: {message}", err=True)
    else:
        fallback(message, category, filename, lineno, file, line)


@click.group(cls=GantkGroup)
@click.version_option(version=__version__, prog_name="gantk")
def cli() -> None:
    """gantk: image-to-image translation with conditional GANs, built from pluggable parts."""


@cli.command("list")
@click.argument("kind", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_command(kind: str | None, as_json: bool) -> None:
    """List registered components (all kinds, or one KIND) with the plugin that provides each.

    KIND is one of: generator, discriminator, objective, recipe, data-format (or the plural, or with
    '_' for '-')."""
    components = default_components()
    kinds = [normalize_kind(kind)] if kind else list(KINDS)
    listing = {
        k: [
            {"name": name, "plugin": (e := components.registry(k).get(name)).plugin, "summary": e.summary}
            for name in components.registry(k).names()
        ]
        for k in kinds
    }
    if as_json:
        plugins = [name for name, _ in components.manager.list_name_plugin()]
        failures = [dataclasses.asdict(failure) for failure in components.failures]
        echo(json.dumps({"components": listing, "plugins": plugins, "plugin_failures": failures}, indent=2))
        return
    for k, entries in listing.items():
        echo(f"{k.replace('_', ' ')}s:")
        width = max((len(e["name"]) for e in entries), default=0)
        for e in entries:
            echo(f"  {e['name']:<{width}}  {e['summary']}  [{e['plugin']}]")


@cli.command()
@click.argument("kind")
@click.argument("name")
@click.option("--opt", "options", multiple=True, callback=parse_options,
              help="Build it with these options, KEY=VALUE[,KEY=VALUE] (as --gen-opt takes them): the parameters, sizes "
                   "and receptive field shown are then this instance's.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def describe(kind: str, name: str, options: dict[str, Any], as_json: bool) -> None:
    """Show a component's options and defaults, parameter count and receptive field.

    KIND is one of: generator, discriminator, objective, recipe, data-format (or the plural, or with
    '_' for '-').

    Example: gantk describe generator smp --opt arch=fpn,encoder=resnet18"""
    from .describe import describe as describe_component, describe_text

    info = describe_component(kind, name, options=options)
    echo(json.dumps(info, indent=2) if as_json else describe_text(info))


@cli.command()
@train_flags()
@click.option("--resume", type=UserPath(exists=True), help="Continue the run in this directory.")
@progress_option("Show a progress bar.")
def train(config_file: str | None, resume: str | None, progress: bool, **flags: Any) -> None:
    """Train a model. Without --data, trains pix2pix on the embedded demo set.

    Example: gantk train --gen unet --disc patch70 --loss bce+l1 --data DIR
    """
    from .train import TrainConfig, Trainer
    from .train.config import layered, naming_config_file, read_config_file
    from .train.interrupt import TrainingInterrupted

    given = given_flags(flags)
    if resume:
        if config_file:
            raise click.UsageError("--resume continues a run with its own settings; it cannot take --config.")
        trainer = Trainer.resume(resume, given, progress=progress)
    else:
        chosen = given.get("inception_weights")
        values = read_config_file(config_file, chosen, weights_replaced=bool(chosen)) if config_file else {}
        with naming_config_file(config_file):
            trainer = Trainer(TrainConfig().merged(layered(values, given)), progress=progress)
    resumed_at = trainer.resume_from["step"] if trainer.resume_from is not None else None
    if trainer.config.data is None and resumed_at is None and process_from_environment().is_main:
        from .data import demo_dataset_dir

        echo(f"no --data: training on the embedded demo set (edges to photos, 64 px pairs cut from matplotlib's sample "
             f"photograph) in {demo_dataset_dir()}; give --data DIR to train on your own.", err=True)
    try:
        with naming_config_file(config_file):
            run_dir = trainer.fit()
    except TrainingInterrupted as stop:
        if process_from_environment().is_main:
            echo(f"interrupted: checkpoint saved at step {stop.step}; continue with gantk train --resume "
                 f"{shlex.quote(str(trainer.run_dir))}", err=True)
        sys.exit(128 + stop.signum)
    if process_from_environment().is_main and trainer.step == resumed_at:
        validation = trainer.log.validation
        validated = f"; its validation at that step is in {validation.path}" if validation and validation.last_step == trainer.step else ""
        echo(f"nothing to train: the run in {run_dir} was at step {trainer.step}, the end of its schedule{validated}; resume "
             "with a larger --max-steps or --epochs to train it further")
    elif process_from_environment().is_main:
        echo(f"done: {trainer.step} step{'s' if trainer.step != 1 else ''}; run directory {run_dir} (checkpoints, samples/, metrics.csv, loss_curves.png)")
        if (kept := trainer.validation).best_score is not None:
            from .train import run_files

            echo(f"best validation {trainer.config.keep_best}: {kept.best_score:.4g} at step {kept.best_step}, kept as "
                 f"{run_dir / run_files.BEST}")


@cli.command("translate")
@CHECKPOINT
@click.argument("input_path", type=UserPath(exists=True))
@click.argument("output_dir", type=UserPath(file_okay=False))
@click.option("--direction", type=click.Choice(CHOICES["direction"]), default="AtoB", show_default=True, help=DIRECTION_HELP)
@EVAL_MODE
@LAST_WEIGHTS
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the test-time dropout noise.")
@click.option("--device", type=DeviceName(), default="auto", show_default=True,
              help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images per generator pass (in the paper's test-time mode, BN uses the batch's statistics).")
@click.option("--overlay", is_flag=True, help="Also write masks blended over the input (mask models).")
@click.option("--overwrite", is_flag=True, help="Replace files that already exist in OUTPUT_DIR (never the inputs).")
@size_option("--size", help="crop: run and write at the training crop size (its shorter side, for a model trained with --resize "
                             "short-side; each input's own size for --resize none); original: resize the outputs back to each "
                             "input's size; native: run at each input's own size (padded to the generator's multiple).")
@TILE
@TILE_OVERLAP
@progress_option("Show a progress bar.")
def translate_command(checkpoint: str, input_path: str, output_dir: str, **options: Any) -> None:
    """Translate one image or a folder of images (masks, for a model trained to map labels to images) with a trained model."""
    from .translate import translate

    refuse_under_torchrun("translate")
    written = translate(checkpoint, input_path, output_dir, **options)
    echo(f"wrote {len(written)} file(s) to {output_dir}")


@cli.command("export")
@CHECKPOINT
@click.argument("out", type=UserPath())
@click.option("--direction", type=click.Choice(CHOICES["direction"]), default="AtoB", show_default=True, help=DIRECTION_HELP)
@EVAL_MODE
@LAST_WEIGHTS
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export_command(checkpoint: str, out: str, **options: Any) -> None:
    """Write a trained model's translation to the ONNX file OUT (checked with onnxruntime)."""
    from .export import export_onnx

    refuse_under_torchrun("export")
    summary = export_onnx(checkpoint, out, **options)
    echo(f"wrote {summary.path}")
    for key in ("maps", "input", "preprocess", "output", "mode", "weights", "batch"):
        if f"gantk.{key}" in summary.metadata:
            echo(f"  {key}: {summary.metadata[f'gantk.{key}']}")
    echo("  checked with onnxruntime: " + (
        f"outputs within {summary.difference:.1g} of gantk's" if summary.difference is not None
        else "output shape only (test-time dropout draws other noise in each run)"))


@cli.group(cls=GantkGroup)
def data() -> None:
    """Prepare and check datasets."""


@data.command("check")
@click.argument("root", type=UserPath(exists=True))
@click.option("--data-format", help="Format to check against (detected when omitted).")
@click.option("--ignore-label", type=click.IntRange(0, MAX_CLASS_ID), help="Mask value of pixels to ignore (segmentation; e.g. 255).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary and problems as JSON.")
@progress_option("Count the files checked on a progress bar (after 2 s).")
def data_check(root: str, data_format: str | None, ignore_label: int | None, as_json: bool, progress: bool) -> None:
    """Validate a dataset and summarise it; problems are listed with the files to fix."""
    from .data import check_dataset

    try:
        summary = check_dataset(root, data_format, progress=progress, ignore_label=ignore_label, count_classes=True)
    except GantkError as error:
        if as_json:  # every problem, for scripts, on stdout (one that stops the check, such as an unknown layout, alone)
            problems = getattr(error, "problems", None) or [str(error)]
            echo(json.dumps({"root": root, "problems": problems}, indent=2))
        raise
    echo(json.dumps({**summary.as_dict(), "problems": []}, indent=2) if as_json else summary.text())


@data.command("combine")
@click.argument("a_dir", type=UserPath(exists=True, file_okay=False))
@click.argument("b_dir", type=UserPath(exists=True, file_okay=False))
@click.argument("out", type=UserPath(file_okay=False))
def data_combine(a_dir: str, b_dir: str, out: str) -> None:
    """Write aligned A|B images from two folders with matching file names."""
    from .data import combine_folders, get_format

    count = combine_folders(a_dir, b_dir, out)
    echo(f"wrote {count} aligned image(s) to {out}")
    if count and not get_format("aligned").detect(Path(out)):
        echo(f"its pairs are not square, so no shape tells the aligned format: pass --data-format aligned to the "
             f"commands that read {out}")


@data.command("derive")
@click.argument("photos", type=UserPath(exists=True, file_okay=False))
@click.argument("out", type=UserPath(file_okay=False))
@click.option("--task", type=click.Choice(TASKS), required=True,
              help="Input made from each crop: Canny edges, grayscale, Gaussian blur, or 4x downscaled and enlarged back.")
@click.option("--size", type=click.IntRange(min=16), default=256, show_default=True,
              help="Crop side in pixels; photos are first resized so their short side is 1.5 x this.")
@click.option("--crops-per-photo", type=click.IntRange(min=1), default=4, show_default=True,
              help="Random crops taken from each photo.")
@click.option("--test-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True,
              help="Share of the photos (not crops) kept for test/; 0 writes train/ only.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the train/test split and the crop positions.")
def data_derive(photos: str, out: str, **options: Any) -> None:
    """Make a paired set (input derived from photo -> photo) from the photos in PHOTOS, split by photo.

    Writes OUT/{train,test}/{A,B}/<photo>_<k>.png, for `gantk train --data OUT`.
    """
    from .data import derive_pairs

    summary = derive_pairs(photos, out, **options)
    echo(f"wrote paired set to {out}: {summary}")


@cli.command()
@click.argument("run_dir", type=UserPath(exists=True, file_okay=False))
@click.option("--out", type=UserPath(dir_okay=False), help="PNG path (default RUN_DIR/loss_curves.png, which is replaced).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
def plot(run_dir: str, out: str | None, overwrite: bool) -> None:
    """Plot a run's loss curves from its metrics.csv."""
    from .train import run_files
    from .train.plots import plot_losses

    default = Path(run_dir) / run_files.LOSS_CURVES
    if out and Path(out).exists() and not overwrite and Path(out).resolve() != default.resolve():
        raise OptionError(f"--out {out} already exists; pass --overwrite to replace it, or choose another path.")
    path = plot_losses(Path(run_dir) / run_files.METRICS, out or default)
    echo(f"wrote {path}")


cli.add_command(eval_command)
cli.add_command(ablate_command)


def exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the command as an exception would, so half-written outputs are cleaned up."""
    raise SystemExit(128 + signum)


def main() -> None:
    """The command line: adds plugin commands, reports plugins that failed to load, runs the CLI (see gantk.__main__)."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    components = default_components()
    components.call_hook("gantk_register_commands", cli=cli)
    for failure in components.failures:
        echo(f"warning: {failure}", err=True)
    cli.failed_plugins = tuple(sorted({failure.plugin for failure in components.failures}))
    cli.main(prog_name="gantk")

