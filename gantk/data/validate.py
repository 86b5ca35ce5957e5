"""Whole-dataset validation (``gantk data check``) and the summary of a valid dataset."""

from __future__ import annotations

import inspect
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection

from ..errors import GantkWarning, OptionError, caller_stacklevel
from ..plugins import Components
from .class_balance import count_class_pixels
from .datasets import SegmentationDataset
from .formats import DataFormat, SegmentationFormat
from .opening import detect_format, get_format, given_options, opened, validated
from .io import ImageInfo, has_images, probe
from .layout import ROOT_SPLIT, SPLITS, checked_files_counted, problems_error, require_root, subdirs


@dataclass
class SplitSummary:
    """Counts, channels, image sizes and classes of one split."""

    items: int
    files: dict[str, int]
    channels: dict[str, int]
    sizes: dict[str, dict[str, int]]
    num_classes: int | None = None
    ignore_label: int | None = None
    class_pixels: list[int] | None = None  # per class id, where counted (check_dataset's count_classes)
    class_weights: list[float] | None = None  # median-frequency weights of those counts
    class_names: list[str] | None = None  # of the class ids, where the format names them (a benchmark's)
    smallest: dict[str, str] = field(default_factory=dict)  # per side, a file of its smallest shorter side


@dataclass
class DatasetSummary:
    """What ``check_dataset`` found: the format and one :class:`SplitSummary` per split."""

    root: Path
    format: str
    format_summary: str
    splits: dict[str, SplitSummary] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "root": str(self.root),
            "format": self.format,
            "splits": {_split_label(name): vars(split) for name, split in self.splits.items()},
        }

    @property
    def training_split(self) -> str:
        """The split training reads: ``train``, or the root of an unsplit dataset."""
        return "train" if "train" in self.splits else ROOT_SPLIT

    def typical_short_side(self, split: str) -> int | None:
        """The median shorter side of each side's images in ``split`` (of one half for A|B images), so that
        half of them or more are no longer; the smallest over the sides, sides without files skipped. ``None``
        when the split is not summarised or holds no files."""
        medians = []
        for short_sides in self._short_sides(split).values():
            ordered = sorted(short_sides.items())
            half, seen = (sum(short_sides.values()) + 1) // 2, 0
            medians.append(next(short for short, count in ordered if (seen := seen + count) >= half))
        return min(medians, default=None)

    def smallest_short_side(self, split: str) -> int | None:
        """The smallest shorter side of the images of ``split`` (as :meth:`typical_short_side`)."""
        return min((short for sides in self._short_sides(split).values() for short in sides), default=None)

    def smallest_image(self, split: str) -> str | None:
        """A file of ``split`` whose shorter side is :meth:`smallest_short_side`, where the summary names one."""
        by_side = self._short_sides(split)
        smallest = self.smallest_short_side(split)
        files = self.splits[split].smallest if split in self.splits else {}
        return next((files[side] for side, shorts in by_side.items() if min(shorts) == smallest and side in files), None)

    def _short_sides(self, split: str) -> dict[str, Counter]:
        """Per side with files, how many of its images of ``split`` have each shorter side."""
        found: dict[str, Counter] = {}
        for side, sizes in (self.splits[split].sizes.items() if split in self.splits else ()):
            for size, count in sizes.items():
                width, height = map(int, size.split("x"))
                found.setdefault(side, Counter())[min(width // 2 if "|" in side else width, height)] += count
        return found

    def text(self) -> str:
        """Human-readable summary, one block per split."""
        lines = [f"dataset: {self.root}", f"format:  {self.format} ({self.format_summary.rstrip('.')})"]
        for name, split in self.splits.items():
            lines.append(f"{_split_label(name)}: {split.items} item{'s' * (split.items != 1)}")
            for side, count in split.files.items():
                first = side.split("|")[0]
                if side == "B" and split.num_classes is not None:
                    kind = f"{split.num_classes} classes" + _class_values(split.num_classes, split.ignore_label)
                    kind += f", {split.ignore_label} ignored" if split.ignore_label is not None else ""
                else:
                    kind = _describe_channels(split.channels[first])
                lines.append(f"  {side}: {count} file{'s' * (count != 1)}, {_describe_sizes(split.sizes[side])}, {kind}")
            if split.class_pixels is not None and split.class_weights is not None:
                lines += _class_balance_lines(split.class_pixels, split.class_weights, split.ignore_label, split.class_names)
        return "\n".join(lines)


def check_dataset(
    root: str | os.PathLike[str], format: str | None = None, components: Components | None = None, *, progress: bool = False,
    count_classes: bool = False, splits: Collection[str] | None = None, **options: Any,
) -> DatasetSummary:
    """Validate every file of a dataset, or of some of its splits, and summarise it.

    Args:
        root: dataset folder (or one image for the ``single`` format).
        format: format name; ``None`` detects it.
        components: plugin components to look the format up in (default: the process-wide ones).
        progress: count the files checked on a progress bar, once checking takes 2 s.
        splits: the names of the splits to check and summarise (those of them the data has, and an unsplit layout);
            ``None``: all.
            A format whose ``validate`` takes no ``splits`` is checked whole, and summarised for these.
        count_classes: count the pixels of each class in the training masks (split ``train``, or the root's
            masks), and give the median-frequency class weights of those counts; the masks are read again.
        **options: options of the format's ``validate`` and ``open`` (``ignore_label`` for segmentation); one
            given as ``None`` takes the format's default.

    Raises:
        DataError: listing all problems (the first 20, then how many more), each with its file and fix.

    Example:
        >>> print(check_dataset(demo_dataset_dir()).text())  # doctest: +SKIP
        dataset: ...
        format:  paired (...)
    """
    if isinstance(splits, str):
        raise OptionError(f"splits is a list of split names, got the string {splits!r}: pass [{splits!r}].")
    root = require_root(root)
    data_format = get_format(format or detect_format(root, components=components), components)
    if options.get("ignore_label") is not None and data_format.paired_targets != "masks":
        raise OptionError(f"ignore_label (--ignore-label) names a mask value to ignore, and {root} holds "
                          f"{data_format.name} data, which has no masks: drop it.")
    options = given_options((data_format.validate, data_format.open), data_format.name, options)
    chosen = {"splits": splits} if splits is not None and "splits" in inspect.signature(data_format.validate).parameters else {}
    with checked_files_counted(progress):
        problems = validated(data_format, root, components, **options, **chosen)
    if problems:
        raise problems_error(root, data_format.name, problems, format_given=format is not None, options=options)
    _warn_of_split_folders_left_out(root, data_format)
    summary = DatasetSummary(root, data_format.name, data_format.summary)
    for split in data_format.checked_splits(root, splits):
        dataset = opened(data_format, root, components, split=split or "train", load_size=None, crop_size=None, augment=False,
                         **options)
        files = getattr(dataset, "files", {})
        probed = {side: [probe(path) for path in paths] for side, paths in files.items()}
        summary.splits[split] = SplitSummary(
            items=len(dataset),
            files={side: len(paths) for side, paths in files.items()},
            channels=dict(dataset.channels),
            sizes={side: _sizes(infos) for side, infos in probed.items()},
            smallest={side: str(_smallest(files[side], infos, halved="|" in side)) for side, infos in probed.items() if infos},
            num_classes=dataset.num_classes,
            ignore_label=getattr(dataset, "ignore_label", None),
        )
        if count_classes and isinstance(dataset, SegmentationDataset) and split in ("train", ROOT_SPLIT):
            counted = count_class_pixels(dataset, progress=progress)
            summary.splits[split].class_pixels = counted.pixels
            summary.splits[split].class_weights = counted.median_frequency_weights()
            if isinstance(data_format, SegmentationFormat):
                summary.splits[split].class_names = data_format.class_names(root, dataset.ignore_label)
    return summary


def _warn_of_split_folders_left_out(root: Path, data_format: DataFormat) -> None:
    """Warn of a folder named as a split (``val/``, ...) that holds images but is no split of ``data_format``."""
    if not root.is_dir():
        return
    found = set(data_format.splits(root))
    for folder in subdirs(root):
        if folder.name in SPLITS and folder.name not in found and (has_images(folder) or any(map(has_images, subdirs(folder)))):
            warnings.warn(f"{folder}/ holds images, but not as a split of the {data_format.name} format ({data_format.summary.rstrip('.')}), "
                          f"so it is left out: lay it out as the other splits are, or rename it.", GantkWarning,
                          stacklevel=caller_stacklevel())


def _sizes(infos: list[ImageInfo]) -> dict[str, int]:
    counts = Counter(f"{info.width}x{info.height}" for info in infos)
    return dict(counts.most_common())


def _smallest(paths: list[Path], infos: list[ImageInfo], halved: bool) -> Path:
    """The first of ``paths`` with the smallest shorter side (of one half, where ``halved``: A|B images)."""
    short_sides = [min(info.width // 2 if halved else info.width, info.height) for info in infos]
    return paths[short_sides.index(min(short_sides))]


def _describe_sizes(sizes: dict[str, int]) -> str:
    if len(sizes) == 1:
        return next(iter(sizes))
    shown = ", ".join(f"{size} ({count})" for size, count in list(sizes.items())[:3])
    return f"{len(sizes)} sizes: {shown}" + (", ..." if len(sizes) > 3 else "")


def _class_values(num_classes: int, ignore_label: int | None) -> str:
    if ignore_label == 0:
        return f" (values 1..{num_classes})"
    return " (binary masks)" if num_classes == 2 else ""


def _describe_channels(channels: int) -> str:
    kind = {1: " (gray)", 3: " (RGB)", 4: " (RGBA)"}.get(channels, "")
    return f"{channels} channel{'s' if channels != 1 else ''}{kind}"


def _class_balance_lines(pixels: list[int], weights: list[float], ignore_label: int | None, names: list[str] | None) -> list[str]:
    """The classes' shares of the pixels by mask value and, where the format gives them, name (the 10 largest
    and the smallest, for many classes), and the weights, in class order, as ``--loss-opt`` takes them."""
    total, shift = sum(pixels) or 1, 1 if ignore_label == 0 else 0  # with 0 ignored, class c is the mask value c + 1
    order = sorted(range(len(pixels)), key=lambda c: -pixels[c])
    shown = order if len(order) <= 12 else order[:10] + order[-1:]
    named = (lambda c: f" {names[c]}") if names and len(names) == len(pixels) else (lambda c: "")
    shares = ", ".join(f"{c + shift}{named(c)} {pixels[c] / total:.1%}" for c in shown) + (f" (+{len(order) - 11} more)" if len(order) > 12 else "")
    listed = ",".join(f"{w:.3g}" for w in weights)
    binary = len(pixels) == 2 and ignore_label != 0
    by = "class id; a binary mask's class 1 is its value 1 or 255" if binary else "mask value"
    return [f"  class pixels (by {by}): {shares}",
            f"  median-frequency class weights: --loss-opt 'ce.class_weights=[{listed}]' (focal too)"]


def _split_label(name: str) -> str:
    return name if name != ROOT_SPLIT else "(root)"
