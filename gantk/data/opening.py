"""Choosing a dataset's format (by name, or by detecting its layout) and opening it as a dataset."""

from __future__ import annotations

import inspect
import os
import warnings
from pathlib import Path
from typing import Any, Callable

from ..errors import DataError, GantkError, GantkWarning, OptionError, caller_stacklevel
from ..nn import check_choice
from ..option_values import as_integer
from ..plugins import Components, default_components
from .datasets import GanDataset
from .formats import DataFormat
from .layout import ROOT_SPLIT, SPLITS, describe_contents, has_images, listed, relative, require_root, subdirs
from .transforms import RESIZE_MODES


def get_format(name: str, components: Components | None = None) -> DataFormat:
    """The registered format ``name``; an unknown name raises an error listing the formats.

    The instance's ``name`` is the one it is registered under, whatever its class sets.
    """
    data_format = (components or default_components()).create("data_format", name)
    data_format.name = name
    return data_format


def formats_with_targets(kind: str, components: Components | None = None) -> list[str]:
    """The registered formats whose items pair each input with a target of ``kind`` (``"images"`` or ``"masks"``)."""
    components = components or default_components()
    return [name for name in components.registry("data_format").names()
            if getattr(components.create("data_format", name), "paired_targets", None) == kind]


def detect_format(root: str | os.PathLike[str], split: str | None = None, components: Components | None = None) -> str:
    """Name of the one registered format whose layout ``root`` matches.

    Fallback formats (``single``) count only when no other format matches; when several match,
    those holding ``split`` are preferred.

    Raises:
        DataError: no format or several match; the message lists what was found and the formats.
        PermissionError: a file or folder of the data that this user may not read.
    """
    root = require_root(root)
    components = components or default_components()
    formats = [get_format(name, components) for name in components.registry("data_format").names()]
    matches = [f for f in formats if not f.fallback and detects(f, root, components)]
    matches = matches or [f for f in formats if f.fallback and detects(f, root, components)]
    if len(matches) > 1 and split is not None:
        holding = [f for f in matches if split in f.splits(root) or f.splits(root) == [ROOT_SPLIT]]
        matches = holding or matches
    if len(matches) == 1:
        return matches[0].name
    listing = "\n".join(f"  {f.name}: {f.summary}" for f in formats)
    if not matches and root.is_file():
        raise DataError(f"dataset {root} is a file that no format reads: give the folder that holds the images, "
                        f"arranged as one of the known formats:\n{listing}")
    if not matches:
        hints = [hint for f in formats for hint in f.near_miss_hints(root)] + _dataset_subfolder_hints(root, formats, components)
        hints = hints or _two_image_folders_hint(root)
        hinted = f"Hints:\n{listed(hints)}\n" if hints else ""
        raise DataError(
            f"cannot tell the format of dataset {root}: it holds {describe_contents(root)}, which matches no known layout.\n"
            f"{hinted}Known formats:\n{listing}\nArrange the files as one of them, or pass the format "
            "(--data-format NAME, or format=NAME)."
        )
    names = ", ".join(f.name for f in matches)
    raise DataError(
        f"dataset {root} ({describe_contents(root)}) matches several formats: {names}.\n"
        f"Known formats:\n{listing}\nPass the one you mean (--data-format NAME, or format=NAME)."
    )


def detects(data_format: DataFormat, root: Path, components: Components) -> bool:
    """Whether ``data_format`` finds its layout in ``root``. A format whose ``detect`` fails (a plugin's
    bug, say) matches nothing and is named in a warning, so that the other formats still work; a file or folder of the
    data that this user may not read is no bug of the format's, and its ``PermissionError`` is raised."""
    try:
        return bool(data_format.detect(root))
    except GantkError:
        raise
    except Exception as error:
        unreadable = error.filename if isinstance(error, PermissionError) else None
        if unreadable is not None and Path(unreadable).absolute().is_relative_to(root.absolute()):
            raise
        plugin = _plugin_of(data_format, components)
        warnings.warn(
            f"data format '{data_format.name}' (plugin '{plugin}') failed to check {root} and is left out: "
            f"{type(error).__name__}: {error}. Fix or uninstall the plugin, or pass --data-format.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
        return False


def _dataset_subfolder_hints(root: Path, formats: list[DataFormat], components: Components) -> list[str]:
    """A hint for each direct subfolder that is a dataset itself (``root`` is its parent)."""
    hints = []
    for folder in subdirs(root):
        names = [f.name for f in formats if not f.fallback and detects(f, folder, components)]
        if names:
            hints.append(f"{folder.name}/ is a dataset itself ({' or '.join(names)} format): pass {folder} instead.")
    return hints


def _two_image_folders_hint(root: Path) -> list[str]:
    """A hint for a root, or a split folder of it, holding just two folders of images (``img/``, ``gt/``), when
    nothing else is hinted."""
    hints = []
    for place in (root, *(root / split for split in SPLITS)):
        folders = [relative(d, root) for d in subdirs(place) if has_images(d) and d.name not in SPLITS]
        if len(folders) == 2:
            hints.append(f"{folders[0]}/ and {folders[1]}/ hold images: for pairs, name them A/ and B/ (the inputs in A/), "
                         "or images/ and masks/ for images with label masks; for unpaired sets, trainA/ and trainB/.")
    return hints


def given_options(methods: tuple[Callable, ...], format_name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` given for a data format's ``methods`` (``open``, ``validate``): those not ``None``
    (an option given as ``None`` takes the format's default); raise naming any a method does not take."""
    given = {key: value for key, value in options.items() if value is not None}
    for method in methods:
        accepted = inspect.signature(method).parameters
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise OptionError(
                f"data format '{format_name}' has no option {', '.join(map(repr, unknown))}; "
                f"its options are: {', '.join(p for p in accepted if p not in ('root', 'splits')) or 'none'}."
            )
    return given


def open_dataset(
    root: str | os.PathLike[str],
    format: str | None = None,
    split: str = "train",
    direction: str = "AtoB",
    load_size: int | None = 286,
    crop_size: int | None = 256,
    augment: bool = True,
    flip: bool = True,
    normalize: bool = True,
    resize: str = "square",
    components: Components | None = None,
    **options: Any,
) -> GanDataset:
    """Open one split of a dataset as a torch ``Dataset`` of ``{"A", "B", "A_path", "B_path"}`` items.

    Args:
        root: dataset folder (or one image file for the ``single`` format).
        format: registered format name; ``None`` detects it.
        split: ``train``, ``val``, ``test``...; an unsplit layout serves every split.
        direction: ``AtoB``, or ``BtoA`` to swap the sides.
        load_size: with ``augment``, images are resized to this size before cropping (see ``resize``).
        crop_size: with ``augment``, the random crop size; without, the final size.
        augment: random crop and flip (training); off for evaluation and inference.
        flip: random horizontal flip when augmenting.
        normalize: images as float in [-1, 1]; ``False`` keeps them uint8 where the format allows it.
        resize: ``square`` resizes both sides to the size; ``short-side`` the shorter side, keeping the
            aspect ratio; ``none`` keeps the image's size (the sizes then only crop). Without ``augment``,
            items of the last two keep their image's shape.
        components: plugin components to look the format up in (default: the process-wide ones).
        **options: options of the format's ``open`` (e.g. ``num_classes`` for segmentation); one given as
            ``None`` takes the format's default.

    Example:
        >>> ds = open_dataset(demo_dataset_dir(), load_size=72, crop_size=64)  # doctest: +SKIP
        >>> ds[(0, 123)]["A"].shape  # doctest: +SKIP
        torch.Size([1, 64, 64])
    """
    root = require_root(root)
    if direction not in ("AtoB", "BtoA"):
        raise OptionError(f"direction must be 'AtoB' or 'BtoA', not {direction!r}.")
    load_size, crop_size = _size("load_size", load_size), _size("crop_size", crop_size)
    if "data_format" in options:
        raise OptionError("open_dataset takes the dataset's format as format=NAME, not data_format= (TrainConfig's and "
                          "evaluate's name for it).")
    if augment and load_size and crop_size and crop_size > load_size and resize != "none":
        raise OptionError(f"crop_size ({crop_size}) cannot exceed load_size ({load_size}).")
    data_format = get_format(format or detect_format(root, split, components), components)
    options = given_options((data_format.open,), data_format.name, options)
    if not normalize and "normalize" in inspect.signature(data_format.open).parameters:
        options["normalize"] = False
    check_choice("resize", resize, RESIZE_MODES)
    if resize != "square":
        if "resize" not in inspect.signature(data_format.open).parameters:
            raise OptionError(f"the {data_format.name} format resizes images to squares only (its open() takes no "
                              f"resize argument): use resize 'square' (--resize square).")
        options["resize"] = resize
    dataset = opened(data_format, root, components, split=split, direction=direction, load_size=load_size, crop_size=crop_size,
                     augment=augment, flip=flip, **options)
    dataset.format = data_format.name
    return dataset


def _size(label: str, size: Any) -> int | None:
    """``size`` as an int (a numpy integer too), or ``None``; raise unless it is a positive integer or ``None``."""
    if size is None:
        return None
    number = as_integer(size)
    if number is None or number < 1:
        raise OptionError(f"{label} must be a positive integer or None, not {size!r}.")
    return number


def _plugin_of(data_format: DataFormat, components: Components | None) -> str:
    """The plugin that registered ``data_format``, named in the errors its code causes."""
    return (components or default_components()).registry("data_format").get(data_format.name).plugin


def opened(data_format: DataFormat, root: Path, components: Components | None, **options: Any) -> GanDataset:
    """``data_format.open(root, **options)``, checked to be a :class:`GanDataset` (a plugin's may not be)."""
    dataset = data_format.open(root, **options)
    if not isinstance(dataset, GanDataset):
        plugin = _plugin_of(data_format, components)
        raise OptionError(f"data format '{data_format.name}' (plugin '{plugin}') opened {root} as a {type(dataset).__name__}, "
                          "not a gantk.data.GanDataset: its open() must return one (fix or uninstall the plugin).")
    return dataset


def validated(data_format: DataFormat, root: Path, components: Components | None, **options: Any) -> list[str]:
    """``data_format.validate(root, **options)``, checked to be a list of problems (a plugin's may not be)."""
    problems = data_format.validate(root, **options)
    if not (isinstance(problems, (list, tuple)) and all(isinstance(problem, str) for problem in problems)):
        plugin = _plugin_of(data_format, components)
        raise OptionError(f"data format '{data_format.name}' (plugin '{plugin}') checked {root} and returned a "
                          f"{type(problems).__name__}, not a list of problems (strings, none for a sound dataset): its "
                          "validate() must return one (fix or uninstall the plugin).")
    return list(problems)
