"""The data a run trains and validates on: its splits checked, then opened as the run's settings read them."""

from __future__ import annotations

import contextlib
import shlex
import warnings
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..data import check_dataset, demo_dataset_dir, open_dataset
from ..data.class_balance import warn_of_unseen_classes
from ..data.datasets import SegmentationDataset, UnpairedSplit
from ..data.device_augment import DeviceAugment
from ..data.formats import DataFormat, SegmentationFormat
from ..data.layout import ROOT_SPLIT, require_root
from ..data.opening import detect_format, get_format
from ..data.validate import DatasetSummary
from ..errors import DataError, GantkWarning, OptionError, caller_stacklevel, extend_message
from ..metrics.lpips_distance import LpipsNetwork
from ..metrics.pixel import SSIM_WINDOW
from ..metrics.ranking import FEATURE_SCORES, validation_score_names
from ..plugins import Components
from .config import TrainConfig
from .validation import FeatureScores, validation_features, validation_lpips

DEFAULT_VAL_SPLITS = ("val", "test")  # validated on without --val-split: the first the data has


@dataclass
class RunData:
    """What :func:`open_run_data` opened: the training set, with ``val_every`` the validation set and the networks
    that score it (read once, kept for the run), the splits' check, and with --augment-on device the crop and flip."""

    train: Any
    val: Any
    summary: DatasetSummary
    device_augment: DeviceAugment | None = None
    val_lpips: LpipsNetwork | None = None
    val_features: FeatureScores | None = None


def open_run_data(config: TrainConfig, components: Components, run_dir: Path, resume_from: dict[str, Any] | None,
                  summary: DatasetSummary | None = None, progress: bool = False, also_check: Collection[str] = ()) -> RunData:
    """The training set and, with ``val_every``, the held-out validation set of the run in ``run_dir`` (continued from
    the checkpoint ``resume_from``, if given). The splits they read, and those of ``also_check``, are validated first
    (counting the files checked on a bar with ``progress``) unless the ``summary`` given covers them; other splits are
    not read, so their problems do not stop training (but for their masks' values, which the class count reads).
    Sets ``config.val_split`` to the split validated on."""
    root = config.data or demo_dataset_dir()
    if resume_from is not None and not Path(root).exists():
        if root != resume_from["train_config"].get("data"):  # given with --resume
            raise OptionError(f"--data {root} does not exist; check the path.")
        raise OptionError(
            f"the run's dataset {root} does not exist; if it moved, pass its new place: "
            f"gantk train --resume {shlex.quote(str(run_dir))} --data NEW_PATH."
        )
    require_root(root)  # named before anything else is said of it
    layout = get_format(config.data_format or detect_format(root, components=components), components)
    paired = layout.paired_targets is not None
    if config.val_lpips and not paired:
        given = ["--val-lpips", *(["--lpips-weights"] if config.lpips_weights else [])]
        raise OptionError(f"LPIPS compares each output with its target, which {layout.name} data does not have: drop "
                          f"{' and '.join(given)} (validation on unpaired data scores FID and KID).")
    if config.inception_weights and paired and not config.val_fid:
        raise OptionError(f"--inception-weights names InceptionV3's weights for validation's FID and KID, which on "
                          f"{layout.name} data --val-fid adds: add --val-fid, or drop --inception-weights.")
    val_split = validation_split(layout, Path(root), config.val_split) if config.val_every else None
    read = ["train", *([val_split] if val_split else []), *also_check]
    if summary is None or not set(layout.checked_splits(Path(root), read)) <= set(summary.splits):
        with unpaired_layout_named(layout, config, components):
            summary = check_dataset(root, config.data_format, components, progress=progress,
                                    ignore_label=config.ignore_label, splits=read)
    on_device = config.augment_on == "device"
    # With --augment-on device the loader only decodes and resizes; Trainer.augmented_on_device crops and flips.
    train = open_dataset(
        root, format=summary.format, split="train", direction=config.direction, load_size=config.load_size,
        crop_size=None if on_device else config.crop_size, augment=True, flip=config.flip and not on_device,
        normalize=not on_device, resize=config.resize, components=components, ignore_label=config.ignore_label,
    )
    if "B" not in train.channels:
        photos = shlex.quote(str(root)) if Path(root).is_dir() else "PHOTOS"  # derive reads a folder
        raise OptionError(
            f"{root} is in the {summary.format} format, which holds inputs only; training needs inputs and targets "
            "(aligned, paired, segmentation or unaligned format; see gantk data check). Images that hold A|B pairs side "
            "by side (as gantk data combine writes them) are read as such with --data-format aligned. From photos alone, "
            f"`gantk data derive {photos} PAIRS --task edges` (or gray, blur, downscale) makes pairs "
            "to train on" + ("." if Path(root).is_dir() else ", from a folder PHOTOS of them.")
        )
    warn_if_enlarged(config, summary)
    check_crop_fits_unresized(config, summary)
    if isinstance(train, SegmentationDataset) and resume_from is None:  # warned once, when the run began
        names = layout.class_names(Path(root), config.ignore_label) if isinstance(layout, SegmentationFormat) else None
        warn_of_unseen_classes(train, root, names)
    data = RunData(train, None, summary, DeviceAugment(config.crop_size, config.flip, paired=paired) if on_device else None)
    if not config.val_every:
        if config.val_split and resume_from is None:  # warned once, when the run began
            warnings.warn(f"--val-split {config.val_split} names the split --val-every validates on, and there is no "
                          "--val-every: the run is not validated.", GantkWarning, stacklevel=caller_stacklevel())
        return data
    config.val_split = split = val_split  # recorded: a resume validates on it
    classes = train.num_classes or getattr(train, "input_classes", None)  # the training split's class count: every split opens with it
    options = {} if classes is None else {"num_classes": classes, "ignore_label": config.ignore_label}
    val = open_dataset(root, format=summary.format, split=split, direction=config.direction,
                       load_size=None, crop_size=config.crop_size, augment=False, resize=config.resize,
                       components=components, **options)
    if config.val_fid and paired and val.num_classes is not None:
        raise OptionError("--val-fid compares the distribution of the output images with the targets', and this run's "
                          "targets are masks: drop it.")
    scores = FEATURE_SCORES if not paired else (validation_score_names(val.num_classes) + (("lpips",) if config.val_lpips else ())
                                                + (FEATURE_SCORES if config.val_fid else ()))
    if config.keep_best is not None and config.keep_best not in scores:
        added = " (and fid, kid with --val-fid)" if config.keep_best in FEATURE_SCORES and val.num_classes is None else ""
        raise OptionError(f"--keep-best {config.keep_best}: validation gives no such score here; it gives "
                          f"{', '.join(scores)}{added}.")
    if config.keep_best == "ssim" and config.crop_size < SSIM_WINDOW:
        raise OptionError(f"--keep-best ssim: SSIM needs images of at least {SSIM_WINDOW} px (its window), and validation "
                          f"scores them at --crop-size {config.crop_size}: choose another score, such as l1.")
    if config.val_lpips:
        data.val_lpips = validation_lpips(config, val, train.channels["B"])
    if not paired:
        val = UnpairedSplit.of(val)
    if config.val_fid or not paired:
        data.val_features = validation_features(config, val, f"split {split} of {root}")
    data.val = val
    return data


@contextlib.contextmanager
def unpaired_layout_named(layout: DataFormat, config: TrainConfig, components: Components) -> Iterator[None]:
    """Add to the unpartnered files of folders taken for pairs that the recipe, which trains on unpaired data,
    reads two domains from trainA/ and trainB/."""
    try:
        yield
    except DataError as error:
        recipe = components.create("recipe", config.recipe)
        lacking = any(text in problem for problem in getattr(error, "problems", None) or []  # partner_problems' kinds
                      for text in ("no file named", "pair(s) share a name but for", "are named as their partners"))
        if lacking and layout.paired_targets == "images" and not config.data_format and recipe.system.trains_unpaired:
            extend_message(error, f" Note: the {config.recipe} recipe trains on two unpaired domains, which it reads "
                                  f"from trainA/ and trainB/ (the unaligned format, `gantk describe data-format unaligned`); "
                                  f"folders such as A/ and B/ are taken for pairs: rename them trainA/ and trainB/.")
        raise


def validation_split(layout: DataFormat, root: Path, given: str | None) -> str:
    """The split --val-every validates on: ``given`` (--val-split), else the first of :data:`DEFAULT_VAL_SPLITS` the
    data has."""
    present = layout.splits(root)
    split = given or next((name for name in DEFAULT_VAL_SPLITS if name in present), None)
    wanted = f"a held-out split '{given}'" if given else "a held-out split val or test"
    how_to_split = layout.how_to_split.format(split=given or DEFAULT_VAL_SPLITS[0])
    if ROOT_SPLIT in present:
        raise OptionError(f"--val-every needs {wanted} in {root}, which has no splits: {how_to_split}, or drop --val-every.")
    if split not in present:
        held_out = [name for name in present if "train" not in name]  # VOC's trainval holds the training images
        raise OptionError(
            f"--val-every needs {wanted} in {root} (it has splits {', '.join(present)}); "
            + (f"choose one with --val-split (e.g. --val-split {held_out[0]})." if held_out
               else f"{how_to_split}, or drop --val-every.")
        )
    if "train" in split:  # VOC's trainval too
        warnings.warn(f"--val-split {split} holds training images: validation.csv's scores are not on held-out images.",
                      GantkWarning, stacklevel=caller_stacklevel())
    return split


def check_crop_fits_unresized(config: TrainConfig, summary: DatasetSummary) -> None:
    """With --resize none, refuse a --crop-size larger than some training images, before any is loaded."""
    crop, smallest = config.crop_size, summary.smallest_short_side(summary.training_split)
    if config.resize == "none" and crop and smallest and crop > smallest:
        example = summary.smallest_image(summary.training_split)
        raise OptionError(
            f"--crop-size {crop} is larger than the smallest training images of {summary.root} ({smallest} px on their "
            f"shorter side{f', as {example}' if example else ''}), which --resize none leaves as they are: lower "
            f"--crop-size to {smallest} or less, or resize them (--resize short-side --load-size {crop})."
        )


def warn_if_enlarged(config: TrainConfig, summary: DatasetSummary) -> None:
    """Warn when --load-size enlarges half the training images or more a lot: the run costs more and learns blur."""
    load, short = config.load_size, summary.typical_short_side(summary.training_split)
    if load and short and load > 1.5 * short and config.resize != "none":
        warnings.warn(
            f"--load-size {load} enlarges half the training images of {summary.root} or more (their median shorter "
            f"side is {short} px) {load / short:.1f} times or more; set --load-size and --crop-size near {short} for "
            "images of that size.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
