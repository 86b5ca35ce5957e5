"""Make translation datasets from plain photos (derived inputs) or from two folders (aligned A|B)."""

from __future__ import annotations

import contextlib
import hashlib
import numbers
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError, GantkWarning, OptionError, caller_stacklevel
from ..files import building_folder, first_names, user_path
from ..lazy_import import LazyModule
from ..nn import check_choice
from .io import IMAGE_EXTENSIONS, has_images, infer_channels, list_images, pair_by_stem, probe, read_image, to_channels, write_png
from .layout import (
    decode_or_note, listed, note_broken_links, partner_problems, relative, size_mismatch_problem, subdirs, warn_of_skipped_files,
    without_clashes,
)
from .sampler import derive_seed
from .transforms import ItemError, check_enlarged_size, random_window

kornia = LazyModule("kornia")
TF = LazyModule("torchvision.transforms.v2.functional")

TASKS = ("edges", "gray", "blur", "downscale")


def derive_input(photo: Tensor, task: str) -> Tensor:
    """The input that ``task`` derives from an RGB uint8 ``3 x H x W`` crop, as uint8.

    - ``edges``: Canny edges of the grayscale crop after stretching its contrast, black lines on
      white, 1 channel (like the sketches of edges2shoes, kept single-channel).
    - ``gray``: luminance, 1 channel.
    - ``blur``: Gaussian blur with sigma ``max(1, H / 128)``, RGB.
    - ``downscale``: reduced 4x (antialiased) and enlarged back (bicubic), RGB.

    Example:
        >>> derive_input(torch.zeros(3, 32, 32, dtype=torch.uint8), "edges").shape
        torch.Size([1, 32, 32])
    """
    check_choice("task", task, TASKS)
    image = photo[None].float() / 255
    height, width = image.shape[-2:]
    if task == "edges":
        gray = kornia.color.rgb_to_grayscale(image)
        low, high = torch.quantile(gray.flatten(), torch.tensor([0.01, 0.99]))
        gray = ((gray - low) / (high - low).clamp_min(0.05)).clamp(0, 1)  # same edges in dark and bright crops
        _, edges = kornia.filters.canny(gray, low_threshold=0.3, high_threshold=0.6)
        out = 1 - edges
    elif task == "gray":
        out = kornia.color.rgb_to_grayscale(image)
    elif task == "blur":
        sigma = max(1.0, height / 128)
        kernel = 2 * int(3 * sigma) + 1
        out = kornia.filters.gaussian_blur2d(image, (kernel, kernel), (sigma, sigma))
    else:  # downscale
        small = F.interpolate(image, size=(max(1, height // 4), max(1, width // 4)), mode="bilinear", antialias=True)
        out = F.interpolate(small, size=(height, width), mode="bicubic")
    return (out[0].clamp(0, 1) * 255).round().to(torch.uint8)


@dataclass
class DerivedSet:
    """What :func:`derive_pairs` wrote."""

    out_dir: Path
    task: str
    size: int
    train_photos: list[str]
    test_photos: list[str]
    train_pairs: int
    test_pairs: int
    upscaled_photos: list[str]  # photos with a short side under 1.5 * size, enlarged to give their crops

    def as_dict(self) -> dict:
        return {**vars(self), "out_dir": str(self.out_dir)}

    def __str__(self) -> str:
        def counted(count: int, noun: str) -> str:
            return f"{count} {noun}{'s' if count != 1 else ''}"

        return (
            f"{counted(self.train_pairs, 'train pair')} from {counted(len(self.train_photos), 'photo')}, "
            f"{counted(self.test_pairs, 'test pair')} from {counted(len(self.test_photos), 'photo')} "
            f"({self.task} -> photo, {self.size} px)"
        )


def derive_pairs(
    photos_dir: str | Path,
    out_dir: str | Path,
    task: str = "edges",
    size: int = 256,
    crops_per_photo: int = 4,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DerivedSet:
    """Write a paired set (derived input -> photo) from random crops of photos.

    Each photo is resized so its short side is ``1.5 * size``, then ``crops_per_photo`` random
    ``size`` x ``size`` crops become B, and :func:`derive_input` of each becomes A. Photos, never
    crops, are split between train and test, so no test crop shares a photo with training. The
    result is a pure function of the photos and ``seed``; it is written to a temporary folder and
    renamed to ``out_dir`` at the end, so a failure leaves nothing behind.

    Layout: ``out_dir/{train,test}/{A,B}/<photo>_<k>.png`` (test only when it gets photos).
    Photos smaller than ``1.5 * size`` are enlarged, which blurs their crops; a ``GantkWarning`` names them.

    Args:
        photos_dir: folder of photos.
        out_dir: new (or empty) output folder.
        task: ``edges``, ``gray``, ``blur`` or ``downscale`` (see :func:`derive_input`).
        size: crop size in pixels.
        crops_per_photo: crops taken from each photo.
        test_fraction: share of the photos (rounded, at least one of two or more) used for test.
        seed: seed of the split and of the crop positions.
    """
    photos_dir, out_dir = Path(user_path(photos_dir, "photos_dir (PHOTOS)")), Path(user_path(out_dir, "out_dir (OUT)"))
    check_choice("task", task, TASKS)
    for name, value, kind, valid, wanted in (
        ("size", size, numbers.Integral, lambda v: v >= 16, "an integer of at least 16"),
        ("crops_per_photo", crops_per_photo, numbers.Integral, lambda v: v >= 1, "an integer of at least 1"),
        ("test_fraction", test_fraction, numbers.Real, lambda v: 0 <= v < 1, "a number in [0, 1): some photos must be left to train on"),
    ):
        if isinstance(value, bool) or not isinstance(value, kind) or not valid(value):
            raise OptionError(f"{name} must be {wanted}, got {value!r}.")
    photos = list_images(Path(photos_dir))
    if Path(photos_dir).is_dir():
        warn_of_skipped_files(Path(photos_dir), "derived from")
    if not photos:
        raise DataError(f"{photos_dir}: no photos ({', '.join(IMAGE_EXTENSIONS)}) found; {_where_photos_are(Path(photos_dir))}")
    clashes: list[str] = []
    without_clashes(photos, str(photos_dir), clashes)  # their crops would be written to the same files
    if clashes:
        raise DataError(f"{photos_dir}: photos whose crops would be written to the same files, so nothing was written:\n"
                        f"{listed(clashes)}\nRename or delete them, then run again.", clashes)
    photos = _each_photo_once(photos, Path(photos_dir))
    order = torch.randperm(len(photos), generator=torch.Generator().manual_seed(derive_seed(seed))).tolist()
    n_test = min(len(photos) - 1, max(1, round(len(photos) * test_fraction))) if test_fraction > 0 else 0
    test_ids = set(order[:n_test])
    if test_fraction > 0 and not n_test:
        warnings.warn(f"{photos_dir}: one photo, so no test split (photos, not crops, are split): add photos for a test set.",
                      GantkWarning, stacklevel=caller_stacklevel())
    counts = {"train": 0, "test": 0}
    short_side = round(1.5 * size)
    bad: list[str] = []
    if Path(photos_dir).is_dir():
        note_broken_links(Path(photos_dir), bad, Path(photos_dir))  # named with the photos that cannot be read
    found = len(photos) + len(bad)
    infos = {path: decode_or_note(probe, path, Path(photos_dir), bad) for path in photos}
    for path, info in infos.items():
        if info is not None:
            try:
                check_enlarged_size(info.height, info.width, short_side)
            except ItemError as error:
                bad.append(f"{relative(path, Path(photos_dir))}: {error}")
                infos[path] = None
    upscaled = [path.name for path, info in infos.items() if info and min(info.height, info.width) < short_side]
    if upscaled and not bad:  # before the work, which enlarging makes longer
        shown = first_names(upscaled, 3)
        warnings.warn(
            f"{len(upscaled)} of {len(photos)} photos ({shown}) have a short side under {short_side} px (1.5 x --size) "
            f"and are enlarged, so their crops are blurred; use a smaller --size for sharp targets.",
            GantkWarning, stacklevel=caller_stacklevel(),
        )
    with fresh_folder(Path(out_dir)) as tmp:
        for number, photo_path in enumerate(photos):
            split = "test" if number in test_ids else "train"
            if infos[photo_path] is None:  # noted when probed
                continue
            photo = decode_or_note(read_image, photo_path, Path(photos_dir), bad)
            if bad:  # nothing is kept now: only look for the other bad photos
                continue
            photo = fit_short_side(to_channels(photo, 3), short_side)
            generator = torch.Generator().manual_seed(derive_seed(seed, number))
            for k in range(crops_per_photo):
                crop = _random_crop(photo, size, generator)
                name = f"{photo_path.stem}_{k:02d}.png"
                write_png(derive_input(crop, task), tmp / split / "A" / name)
                write_png(crop, tmp / split / "B" / name)
                counts[split] += 1
        if bad:
            raise DataError(
                f"{photos_dir}: {len(bad)} of {found} photos cannot be read, so nothing was written:\n{listed(bad)}\n"
                "Replace or delete them, then run again.",
                bad,
            )
    names = [p.name for p in photos]
    return DerivedSet(
        Path(out_dir), task, size,
        train_photos=[n for i, n in enumerate(names) if i not in test_ids],
        test_photos=[n for i, n in enumerate(names) if i in test_ids],
        train_pairs=counts["train"], test_pairs=counts["test"], upscaled_photos=upscaled,
    )


def _each_photo_once(photos: list[Path], photos_dir: Path) -> list[Path]:
    """``photos`` without the files that hold the same bytes as an earlier one (a link or a copy), warned of: a
    photo split twice could give crops to both train and test."""
    seen: dict[str, Path] = {}
    kept, repeated = [], []
    for path in photos:
        try:
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
        except OSError:  # unreadable: named with the other bad photos
            kept.append(path)
            continue
        if digest in seen:
            repeated.append(f"{relative(path, photos_dir)} (as {relative(seen[digest], photos_dir)})")
        else:
            seen[digest] = path
            kept.append(path)
    if repeated:
        warnings.warn(f"{photos_dir}: {len(repeated)} file(s) hold the same photo as another, a link or a copy "
                      f"({first_names(repeated)}); each photo is used once, so that no test crop shares one with training.",
                      GantkWarning, stacklevel=caller_stacklevel())
    return kept


def combine_folders(a_dir: str | Path, b_dir: str | Path, out_dir: str | Path) -> int:
    """Write aligned images (A left, B right) from two folders with matching file names.

    Pairs must have the same size; gray and colour files are combined in colour, RGBA files (all of
    them) keep their alpha. Writes ``out_dir/<name>.png`` into a new (or empty) folder and returns the
    number of images.

    Raises:
        DataError: names without a partner, unreadable files or pairs of different sizes, all listed;
            nothing is written.
    """
    a_dir, b_dir, out_dir = (Path(user_path(path, name)) for path, name in
                             ((a_dir, "a_dir (A_DIR)"), (b_dir, "b_dir (B_DIR)"), (out_dir, "out_dir (OUT)")))
    problems: list[str] = []
    for folder in (a_dir, b_dir):
        note_broken_links(folder, problems)
    a_files, b_files = (without_clashes(list_images(d), str(d), problems) for d in (a_dir, b_dir))
    pairs, only_a, only_b = pair_by_stem(a_files, b_files)
    problems += partner_problems(only_a, only_b, a_dir, b_dir)
    infos = {path: decode_or_note(probe, path, path, problems) for pair in pairs for path in pair}  # named in full
    problems += [
        size_mismatch_problem(str(a), f"{infos[a].width}x{infos[a].height}", str(b), f"{infos[b].width}x{infos[b].height}")
        for a, b in pairs
        if infos[a] and infos[b] and (infos[a].width, infos[a].height) != (infos[b].width, infos[b].height)
    ]
    if not pairs and not problems:
        problems.append(f"{a_dir} and {b_dir}: no images to combine")

    def refused() -> DataError:
        return DataError(f"cannot combine {a_dir} and {b_dir}:\n{listed(problems)}\n"
                         "Both folders need the same file names (extensions may differ) and each pair the same size.", problems)

    if problems:
        for path in (path for path, info in infos.items() if info):  # decoded too, to list every problem at once
            decode_or_note(read_image, path, path, problems)
        raise refused()
    channels = infer_channels([info.channels for info in infos.values()])
    with fresh_folder(Path(out_dir)) as tmp:
        for a, b in pairs:
            images = [decode_or_note(read_image, path, path, problems) for path in (a, b)]
            if not problems:
                write_png(torch.cat([to_channels(image, channels) for image in images], dim=-1), tmp / f"{a.stem}.png")
        if problems:
            raise refused()
    return len(pairs)


def fresh_folder(out_dir: Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary sibling of ``out_dir`` that becomes ``out_dir`` on success; ``out_dir`` must be new or empty."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise DataError(f"{out_dir} already exists and is not empty; choose a new output folder or empty it.")
    if out_dir.is_symlink() and not out_dir.exists():
        raise DataError(f"{out_dir} is a link to {os.readlink(out_dir)}, which does not exist: create that folder, or choose "
                        "another output folder.")
    # a link to an empty folder cannot be replaced by a folder: fill the folder it leads to
    return building_folder(out_dir.resolve() if out_dir.is_symlink() and out_dir.is_dir() else out_dir)


def fit_short_side(image: Tensor, short_side: int) -> Tensor:
    """``image`` resized (antialiased) so that its shorter side is ``short_side``, as photos are before their crops (to the
    size ``--resize short-side`` gives them)."""
    return TF.resize(image, short_side, antialias=True)


def _where_photos_are(folder: Path) -> str:
    """The fix for a folder without photos: its subfolders that hold some, if any (derive reads one level)."""
    holding = [d.name + "/" for d in subdirs(folder) if has_images(d)]
    if not holding:
        return "point it at a folder of photos."
    named = first_names(holding, 3)
    return (f"photos are read from the folder itself, not its subfolders, and {named} hold some: "
            "point it at one of them, or gather the photos in one folder.")


def _random_crop(image: Tensor, size: int, generator: torch.Generator) -> Tensor:
    top, left = random_window(*image.shape[-2:], size, generator)
    return image[:, top : top + size, left : left + size]
