"""What a dataset folder holds, and the problems found in it, in words a user can act on.

Shared by the built-in formats and open to plugin formats: listing a folder's images, decoding
with the failure noted instead of raised, mask classes, and the one error that lists them all.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shlex
import warnings
from collections import Counter
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

import torch

from ..errors import DataError, GantkWarning, OptionError, caller_stacklevel
from ..files import first_names
from ..progress import ProgressBar
from .io import (IMAGE_EXTENSIONS, MAX_CLASS_ID, has_images, has_wide_ids, infer_channels, list_images, other_files, probe, read_mask,
                 stem_key)

SPLITS = ("train", "val", "test")
ROOT_SPLIT = ""  # the split name of a layout kept directly in the root (no split folders)
MAX_LISTED = 20

T = TypeVar("T")


def require_root(root: str | Path) -> Path:
    """``root`` as a ``Path``; a missing one is a ``DataError``."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset {root} does not exist; check the path.")
    return root


def listed(problems: list[str]) -> str:
    """Up to :data:`MAX_LISTED` problems, one per line, then how many more."""
    lines = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
    return lines + (f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else "")


def problems_error(root: Path, format_name: str, problems: list[str], format_given: bool = False,
                   options: dict[str, Any] | None = None) -> DataError:
    """One ``DataError`` listing the problems found in a dataset.

    With ``format_given`` (the user chose the format) the suggested command names it, as
    detection might pick another format; it names the ``options`` checked with too (``ignore_label``).
    """
    return DataError(
        f"dataset {root} (format {format_name}) has {len(problems)} problem{'s' if len(problems) != 1 else ''}:\n"
        f"{listed(problems)}\nFix them, then check again with `{data_check_command(root, format_name, format_given, options)}`.",
        problems,
    )


def data_check_command(root: Path, format_name: str, format_given: bool = False, options: dict[str, Any] | None = None) -> str:
    """The ``gantk data check`` command for the dataset ``root``, naming its format when given and the ``options``."""
    command = f"gantk data check {shlex.quote(str(root))}" + (f" --data-format {format_name}" if format_given else "")
    return command + "".join(f" --{key.replace('_', '-')} {value}" for key, value in (options or {}).items())


def raise_if_problems(problems: list[str], root: Path, format_name: str, options: dict[str, Any] | None = None) -> None:
    """For a format opening data: the format is settled by then, so the suggested check names it."""
    if problems:
        raise problems_error(root, format_name, problems, format_given=True, options=options)


def pick_split(root: Path, split: str, splits: list[str], format_name: str) -> str:
    """The folder of ``split`` among a dataset's ``splits``: ``split`` itself, or ``ROOT_SPLIT`` ("") for an unsplit
    layout, which serves every split; a split it lacks is a ``DataError`` naming those found."""
    if splits == [ROOT_SPLIT]:
        return ROOT_SPLIT
    if split in splits:
        return split
    if not splits:
        raise DataError(f"dataset {root} (format {format_name}) has no split of this format; gantk data check "
                        f"{shlex.quote(str(root))} --data-format {format_name} says what it lacks.")
    fix = "ask for one of those (--split NAME of gantk eval and gantk ablate)"
    if split == "train":
        fix += f"; gantk train reads the split 'train': add it as the {format_name} format lays splits out"
    raise DataError(f"dataset {root} (format {format_name}) has no split '{split}' (found: {', '.join(splits)}); {fix}.")


# Image formats gantk does not read: files of a dataset's folders in them are left out, with a warning.
UNREAD_IMAGE_EXTENSIONS = (".ppm", ".pgm", ".pbm", ".pnm", ".tga", ".jp2", ".j2k", ".heic", ".heif", ".avif", ".jxl", ".exr",
                           ".hdr", ".psd", ".ico", ".dds", ".svg")


def warn_of_skipped_files(folder: Path, purpose: str, *, unread_formats: bool = True) -> None:
    """Warn about the files and subfolders of a folder of images that are not read (to be ``purpose``); images in
    formats gantk does not read only with ``unread_formats`` (without, where :func:`images_of` warned of them)."""
    others = [name for name in other_files(folder) if unread_formats or Path(name).suffix.lower() not in UNREAD_IMAGE_EXTENSIONS]
    folders = [d.name + "/" for d in subdirs(folder)]
    counts = [f"{len(others)} file(s) that are not {', '.join(IMAGE_EXTENSIONS)} images"] * bool(others)
    counts += [f"{len(folders)} subfolder(s)"] * bool(folders)
    if counts:
        named = ", ".join((others + folders)[:3]) + (" ..." if len(others) + len(folders) > 3 else "")
        warnings.warn(f"{folder}: skipped {' and '.join(counts)} ({named}); convert or move what should be {purpose}.",
                      GantkWarning, stacklevel=caller_stacklevel())


def subdirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")) if root.is_dir() else []


def ordered_splits(splits: list[str]) -> list[str]:
    return sorted(set(splits), key=lambda s: (SPLITS.index(s) if s in SPLITS else len(SPLITS), s))


def channels_of(files: list[Path]) -> int:
    """The channel count the images of ``files`` are read with (as :func:`channels_by_side`)."""
    return channels_by_side({"": files})[""]


def channels_by_side(sides: dict[str, list[Path]]) -> dict[str, int]:
    """The channel count each side's images are read with; the files of all sides that cannot be opened are named
    at once."""
    found: dict[str, list[int]] = {side: [] for side in sides}
    problems = []
    for side, files in sides.items():
        for path in files:
            try:
                found[side].append(probe(path).channels)
            except DataError as error:
                problems.append(str(error))
    if len(problems) == 1:
        raise DataError(problems[0], problems)
    if problems:
        raise DataError(f"{len(problems)} files cannot be read:\n{listed(problems)}", problems)
    return {side: infer_channels(channels) for side, channels in found.items()}


def side_by_side(files: list[Path]) -> bool:
    try:
        return all(info.width == 2 * info.height for info in map(probe, files))
    except DataError:
        return False


def relative(path: Path, root: Path) -> str:
    if path == root or not root.is_dir():
        return str(path)
    return path.relative_to(root).as_posix()


def images_of(folder: Path, root: Path, problems: list[str], needs: str, named_apart: bool = True,
              supported: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Images of ``folder``; a missing or empty folder (which should hold files of the ``supported`` kinds) and,
    where their names must differ (``named_apart``: they pair files by name), names that clash are added to
    ``problems``."""
    label = f"{relative(folder, root)}/" if folder != root else str(root)
    if not folder.is_dir():
        problems.append(f"{label}: folder missing; {needs}")
        return []
    files = list_images(folder)
    note_broken_links(folder, problems, root)
    # Subfolders of a dataset's folder are not read (the root's are its splits and sides).
    nested = [f"{d.name}/" for d in subdirs(folder) if has_images(d)] if folder != root else []
    unread = f"its subfolder(s) {', '.join(nested[:3])} hold images, which are not read: move them up into {label}"
    if not files:
        others = other_files(folder)
        seen = f" ({len(others)} other file(s) such as {others[0]})" if others else ""
        problems.append(f"{label}: holds no images{seen}; " + (f"{unread}." if nested else
                        f"supported: {', '.join(supported)}; {needs}"))
    elif nested:
        warnings.warn(f"{label}: {unread} to use them.", GantkWarning, stacklevel=caller_stacklevel())
    if files and (unsupported := [name for name in other_files(folder) if Path(name).suffix.lower() in UNREAD_IMAGE_EXTENSIONS]):
        warnings.warn(f"{folder}: {len(unsupported)} image(s) in formats gantk does not read are left out "
                      f"({first_names(unsupported)}); convert them to PNG to use them (supported: {', '.join(supported)}).",
                      GantkWarning, stacklevel=caller_stacklevel())
    return without_clashes(files, label, problems) if named_apart else files


def broken_links(folder: Path) -> list[Path]:
    """Links in ``folder`` named like images whose target is missing (listing images skips them)."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_symlink() and not p.exists() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    ) if folder.is_dir() else []


def note_broken_links(folder: Path, problems: list[str], root: Path | None = None) -> None:
    """Adds the broken links of ``folder`` to ``problems``, named relative to ``root`` if given."""
    problems += [broken_link_problem(link, root) for link in broken_links(folder)]


def broken_link_problem(link: Path, root: Path | None = None) -> str:
    """What is wrong with the broken ``link``, named relative to ``root`` if given."""
    try:
        os.stat(link)
        looped = False
    except OSError as error:
        looped = error.errno == errno.ELOOP
    why = f"it leads back to itself through {os.readlink(link)}" if looped else f"its target {os.readlink(link)} does not exist"
    return f"{relative(link, root) if root else link}: a broken link ({why}); point it at the file or delete it."


def reported_stems(folder: Path) -> set[str]:
    """Names of ``folder`` whose files are reported themselves (clashing or broken links), so that their
    partners are not also reported as lacking one."""
    return clashing_stems(list_images(folder)) | {stem_key(link) for link in broken_links(folder)}


def clashing_stems(files: list[Path]) -> set[str]:
    """Names (without extension, :func:`~gantk.data.io.stem_key`) shared by several of ``files``, such as
    ``x`` of x.jpg and x.png."""
    return {stem for stem, count in Counter(map(stem_key, files)).items() if count > 1}


def without_clashes(files: list[Path], label: str, problems: list[str]) -> list[Path]:
    """``files`` less those sharing a name, which are added to ``problems`` (``label`` names their folder)."""
    clashes = clashing_stems(files)
    for stem in sorted(clashes):
        names = ", ".join(p.name for p in files if stem_key(p) == stem)
        problems.append(f"{label}: {names} share the name '{stem}'; keep one of them.")
    return [p for p in files if stem_key(p) not in clashes]


def decode_or_note(reader: Callable[[Path], T], path: Path, root: Path, problems: list[str]) -> T | None:
    """``reader(path)`` (``read_image``, ``read_mask``, ``probe``); ``None`` where it cannot be decoded, the reason added to
    ``problems`` with the path written relative to ``root``."""
    try:
        return reader(path)
    except DataError as error:
        problems.append(str(error).replace(str(path), relative(path, root), 1))
        return None
    finally:
        if (bar := _checked_files.get()) is not None:
            bar.update()


_checked_files: ContextVar[Any] = ContextVar("checked_files", default=None)  # the bar decode_or_note counts on


@contextlib.contextmanager
def checked_files_counted(progress: bool) -> Iterator[None]:
    """Count the files :func:`decode_or_note` decodes on a progress bar (shown once checking takes 2 s)."""
    with ProgressBar(desc="checking files", unit="file", disable=not progress, delay=2, dynamic_ncols=True) as bar:
        token = _checked_files.set(bar)
        try:
            yield
        finally:
            _checked_files.reset(token)


def odd_width_problem(path: Path, root: Path, width: int) -> str:
    return f"{relative(path, root)}: width {width} is odd, so it cannot hold two equal halves A|B; crop one column off."


def lone_folder_hints(folders: tuple[Path, Path], root: Path, format_name: str) -> list[str]:
    """A hint when only one of two partner folders exists (``train/A/`` without ``train/B/``); where one
    other folder of images lies beside it (``labels/`` beside ``images/``), the hint names it."""
    first, second = folders
    if first.is_dir() == second.is_dir():
        return []
    there, missing = (first, second) if first.is_dir() else (second, first)
    # Split folders and the A/B folders of other layouts are partners of their own.
    beside = [d for d in subdirs(there.parent) if d != there and d.name not in SPLITS and d.name[-1:] not in "AB" and has_images(d)]
    fix = f"if {relative(beside[0], root)}/ holds the partners, rename it {missing.name}/; else add it" if len(beside) == 1 else "add it"
    return [f"{relative(there, root)}/ has no partner {relative(missing, root)}/ ({format_name} format); {fix}."]


def partner_problems(only_first: list[Path], only_second: list[Path], first: Path, second: Path, root: Path | None = None) -> list[str]:
    """The problems of the files of folders ``first`` and ``second`` left without a partner (paths shown
    relative to ``root``): one for names that differ from their partners' in letter case alone, one for names
    that differ by the same text (see :func:`renamed_partners`), then one per other file, unless reported itself
    (see :func:`reported_stems`)."""
    shown = (lambda p: relative(p, root)) if root is not None else str
    problems, explained = [], set()
    by_case = {stem_key(path).casefold(): path for path in only_second}
    if cased := [(path, by_case.pop(stem_key(path).casefold())) for path in only_first if stem_key(path).casefold() in by_case]:
        (path_a, path_b), count = cased[0], len(cased)
        problems.append(f"{shown(first)}/ and {shown(second)}/: {count} pair(s) share a name but for its letter case "
                        f"({path_a.name} and {path_b.name}), but partners pair by the same name (extensions may differ): "
                        "rename them to one case.")
        explained = {path for pair in cased for path in pair}
        only_first, only_second = [p for p in only_first if p not in explained], [p for p in only_second if p not in explained]
    renamed = renamed_partners(only_first, only_second)
    if renamed is not None:
        where, first_text, second_text, pairs = renamed
        (path_a, path_b), count = pairs[0], len(pairs)
        if first_text and second_text:
            problem = (f"{shown(first)}/ and {shown(second)}/: {count} pair(s) share a name but for '{first_text}' and "
                       f"'{second_text}' at its {where} ({path_a.name} and {path_b.name})")
            fix = "rename them without these"
        else:
            named, plain, text = (second, first, second_text) if second_text else (first, second, first_text)
            path, partner = (path_b, path_a) if second_text else (path_a, path_b)
            problem = (f"{shown(named)}/: {count} file(s) are named as their partners in {shown(plain)}/ with '{text}' "
                       f"added at the {where} ({path.name} for {partner.name})")
            fix = f"rename them without '{text}'"
        problems.append(f"{problem}, but partners pair by the same name (extensions may differ): {fix}.")
        explained |= {path for pair in pairs for path in pair}
    reported = {first: reported_stems(first), second: reported_stems(second)}
    for path, other in [(p, second) for p in only_first] + [(p, first) for p in only_second]:
        if path not in explained and stem_key(path) not in reported[other]:
            problems.append(missing_partner_problem(path, other, root))
    return problems


def renamed_partners(first: list[Path], second: list[Path]) -> tuple[str, str, str, list[tuple[Path, Path]]] | None:
    """How the names of ``first`` and ``second`` (files without a partner) differ from a name they share:
    where (``"end"`` or ``"start"``), the text each adds (one may add none: ``0001.jpg`` and
    ``0001_mask.gif``; both may: ``21_training.tif`` and ``21_manual1.gif``) and the pairs that gives.
    ``None`` unless one such difference pairs half the files of the shorter list or more, and two
    files or more where both add a text (``only_a`` and ``only_b`` are no pair). A text begins (at the
    end) or ends (at the start) with a separator, not a letter or digit, and the texts hold a letter:
    numbered names would pair by chance otherwise."""
    found: dict[tuple[str, str, str], list[tuple[Path, Path]]] = {}
    for where in ("end", "start"):
        cores = _unique_cores(first, where)
        for path in second:
            for core, text in _name_splits(stem_key(path), where):
                if core in cores:
                    partner, partner_text = cores[core]
                    if partner_text != text and any(c.isalpha() for c in partner_text + text):
                        found.setdefault((where, partner_text, text), []).append((partner, path))
    enough = {key: pairs for key, pairs in found.items()
              if 2 * len(pairs) >= min(len(first), len(second)) and (len(pairs) > 1 or not (key[1] and key[2]))}
    if not enough:
        return None
    (where, first_text, second_text), pairs = max(enough.items(), key=lambda item: (len(item[1]), len(item[0][1] + item[0][2])))
    return where, first_text, second_text, pairs


def _name_splits(stem: str, where: str) -> Iterator[tuple[str, str]]:
    """``(shared name, added text)`` splits of ``stem``: the whole name, and each cut at a separator."""
    yield stem, ""
    for cut in range(1, len(stem)):
        if where == "end" and not stem[cut].isalnum():
            yield stem[:cut], stem[cut:]
        elif where == "start" and not stem[cut - 1].isalnum():
            yield stem[cut:], stem[:cut]


def _unique_cores(files: list[Path], where: str) -> dict[str, tuple[Path, str]]:
    """Each shared name (see :func:`_name_splits`) that one of ``files`` alone gives, with its file and added text."""
    splits = [(core, (path, text)) for path in files for core, text in _name_splits(stem_key(path), where)]
    counts = Counter(core for core, _ in splits)
    return {core: found for core, found in splits if counts[core] == 1}


def missing_partner_problem(path: Path, other_folder: Path, root: Path | None = None) -> str:
    """The problem of ``path`` lacking a partner in ``other_folder`` (paths shown relative to ``root``): none
    there, a folder named as one, or one in a format that is not read."""
    shown = (lambda p: relative(p, root)) if root is not None else str
    named = [p for p in other_folder.iterdir() if stem_key(p) == stem_key(path)] if other_folder.is_dir() else []
    unread = sorted(p.name for p in named if p.is_file())
    if folders := sorted(p.name for p in named if p.is_dir() and p.suffix.lower() in IMAGE_EXTENSIONS):
        return f"{shown(path)}: its partner {shown(other_folder)}/{folders[0]} is a folder, not an image; put the image in its place."
    if unread:
        return (f"{shown(path)}: its partner {shown(other_folder)}/{unread[0]} is not a {', '.join(IMAGE_EXTENSIONS)} "
                "image; convert it (to PNG, say).")
    return f"{shown(path)}: no file named '{path.stem}.*' in {shown(other_folder)}/; add its partner or delete it."


class ImageNotes:
    """What the decoded images of a dataset show that a model would learn wrongly from: folders of RGBA images only,
    all with an alpha of 255 everywhere (learnt as a constant fourth channel), and images nearly black throughout (a
    16-bit file holding 10- or 12-bit values reads so, as its top 8 bits are kept)."""

    DARK = 16  # every value below it: a 12-bit value's top 8 bits

    def __init__(self) -> None:
        self.opaque: dict[Path, list[bool]] = {}
        self.dark: list[Path] = []

    def add(self, path: Path, image: torch.Tensor | None) -> None:
        if image is None:
            return
        # a folder that also holds images without alpha gives its side no alpha channel to learn
        self.opaque.setdefault(path.parent, []).append(image.shape[0] == 4 and bool((image[3] == 255).all()))
        if image.numel() and int(image[:3].max()) < self.DARK:
            self.dark.append(path)

    def warn(self, root: Path) -> None:
        """Warn of the folders of RGBA images all opaque, and of the images nearly black throughout."""
        opaque = [f"{relative(folder, root)}/" for folder, flags in self.opaque.items() if all(flags)]
        if opaque:
            warnings.warn(
                f"{root}: the RGBA images of {', '.join(opaque)} are all opaque (alpha 255 everywhere), so a model trained "
                "on them learns the alpha as a fourth channel and writes images whose alpha is not quite 255; save them as "
                "RGB (PIL's image.convert('RGB')) to train on three channels.",
                GantkWarning, stacklevel=caller_stacklevel(),
            )
        if self.dark:
            warnings.warn(
                f"{root}: {len(self.dark)} image(s) have no value of {self.DARK} or more (of 255) in any pixel, so they "
                f"read nearly black ({first_names([relative(path, root) for path in self.dark])}): a 16-bit PNG or TIFF "
                "holding 10- or 12-bit values reads so, as its top 8 bits are kept; scale such values to the full 16-bit "
                "range or save the images in 8 bits. Class-id masks are read as masks in the segmentation format.",
                GantkWarning, stacklevel=caller_stacklevel(),
            )


def warn_of_unlike_orientations(pairs: list[str], root: Path) -> None:
    """Warn of partners of one size that carry different EXIF orientations (``pairs``: each pair in words)."""
    if pairs:
        warnings.warn(
            f"{root}: in {len(pairs)} pair(s) the partners carry different EXIF orientations, which are applied when read "
            f"({first_names(pairs)}): if one partner was made from the other's stored pixels by a tool that ignored the "
            "orientation, the two are turned or mirrored against each other; save both upright without the tag (PIL's "
            "ImageOps.exif_transpose does it).",
            GantkWarning, stacklevel=caller_stacklevel(),
        )


def size_mismatch_problem(first: str, first_size: str, second: str, second_size: str) -> str:
    """The problem of partners of two sizes (``WxH``, see :func:`size_text`), named with the fix."""
    if first_size.split("x") == second_size.split("x")[::-1]:  # one turned a quarter: its EXIF orientation, most likely
        return (f"{first} ({first_size}) and {second} ({second_size}) are turned against each other; one of them is "
                "likely stored turned with an EXIF orientation, which is applied: save both upright.")
    return f"{first} ({first_size}) and {second} ({second_size}) differ in size; resize one of them so the pair matches."


def size_text(image: torch.Tensor) -> str:
    """An image tensor's size as ``WxH``."""
    return f"{image.shape[-1]}x{image.shape[-2]}"


MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff", ".gif")  # lossless: JPEG and WebP may change label values


def is_lossless_mask(path: Path) -> bool:
    return path.suffix.lower() in MASK_EXTENSIONS


def lossy_masks(pairs: list[tuple[Path, Path]], root: Path) -> list[str]:
    return [
        f"{relative(mask, root)}: masks must be {', '.join(MASK_EXTENSIONS)} files (JPEG and WebP may change label "
        "values); save the labels as PNG again from their source, as converting keeps any changed values."
        for _, mask in pairs
        if not is_lossless_mask(mask)
    ]


SPARSE_IDS = 1024  # class ids above which mostly unused ids are refused
GRADED_VALUES = 16  # more values than this besides 0 and 255 in one binary mask: grey levels of compression, not labels


def mask_values(mask) -> set[int]:
    return set(torch.bincount(mask.flatten()).nonzero().flatten().tolist())


def mask_values_of(masks: Iterable[Path]) -> dict[Path, set[int]]:
    """The values each of the mask files ``masks`` holds, each file decoded once per version (modification time and size)."""
    return {mask: set(_values_of_version(mask, stat.st_mtime_ns, stat.st_size)) for mask in masks for stat in [mask.stat()]}


@functools.lru_cache(maxsize=1 << 17)
def _values_of_version(mask: Path, mtime_ns: int, size: int) -> frozenset[int]:
    return frozenset(mask_values(read_mask(mask)))


def check_ignore_label(ignore_label: Any) -> None:
    """Raise unless ``ignore_label`` is ``None`` or a value a mask can hold (0..65535)."""
    if ignore_label is not None and (
        not isinstance(ignore_label, int) or isinstance(ignore_label, bool) or not 0 <= ignore_label <= MAX_CLASS_ID
    ):
        raise OptionError(f"ignore_label must be a mask value from 0 to {MAX_CLASS_ID} (255 in Pascal VOC), got {ignore_label!r}.")


def mask_classes(values: dict[Path, set[int]], root: Path, ignore_label: int | None = None) -> tuple[int, list[str]]:
    """Number of classes from mask values, and the masks that break it.

    8-bit masks using 255 are binary (0 background, 255 object: 2 classes) and may hold only 0
    and 255; otherwise values are class ids and the classes are ``0 .. max`` (a set with 16-bit
    label masks may use 255 as an id). When more masks hold ids without 255 than hold 255, the set
    is one of class ids and the masks holding 255 are the odd ones. Ids that leave three quarters of
    ``0 .. max`` unused are warned of, refused above ``SPARSE_IDS``: each class is an output channel of the model.
    ``ignore_label`` is no class: the value is left out before any of this, and must lie outside the
    class ids and leave a class besides 0. The ignore label 0 shifts the classes instead: values
    ``1..K`` are the classes ``0..K-1`` (ADE20K's 0 "other" below its classes 1..150).
    """
    if ignore_label == 0:
        return zero_ignored_classes(values, root)
    ignored = ignore_label is not None and any(ignore_label in seen for seen in values.values())
    if ignore_label is not None:
        values = {path: seen - {ignore_label} for path, seen in values.items()}
    with_255 = [path for path, seen in values.items() if 255 in seen]
    ids_only = [path for path, seen in values.items() if 255 not in seen and seen - {0}]
    wide_masks = [path for path in values if has_wide_ids(path)] if with_255 else []  # from each header: only when it matters
    wide = bool(wide_masks)
    binary = bool(with_255) and not wide and len(ids_only) <= len(with_255)
    stray_255 = bool(with_255) and not wide and not binary
    found = set().union(*values.values()) - ({255} if stray_255 else set()) if values else set()
    num_classes = 2 if binary else max(2, max(found, default=0) + 1)
    allowed = {0, 255} if binary else set(range(num_classes))
    problems = []
    plain_binary = sum(seen <= {0, 255} for seen in values.values())  # masks of 0 and 255 alone
    ids_beside_255 = binary and 2 * (len(values) - plain_binary) >= len(values)
    if ignored and ignore_label != 255 and ids_beside_255:  # Pascal VOC's layout, ignoring a class id instead of its void
        ids = sorted(set().union(*values.values()) - {255} | {ignore_label})
        shown = first_names(ids, 8)
        return num_classes, [f"{root}: the masks hold class ids ({shown}) and 255, and the ignore label {ignore_label} is one "
                             "of the ids: if 255 marks pixels to ignore, as Pascal VOC's 'void' does, pass --ignore-label "
                             "255 instead."]
    if wide and len(wide_masks) < len(values):
        problems.append(
            f"{relative(wide_masks[0], root)}: stores 16-bit values, as {len(wide_masks)} of the {len(values)} masks do, where the "
            "others store 8 bits: 255 is a class id in the one and the object of binary masks in the other; save every "
            "mask with one bit depth (8 bits for binary masks and up to 255 classes)."
        )
    if ignore_label in allowed:
        ids = "0 (background) and 255 (object)" if binary else f"0..{num_classes - 1}"
        problems.append(
            f"{root}: the ignore label {ignore_label} lies among the class ids ({ids}), so the model would keep a "
            f"channel for it that nothing teaches: give ignored pixels a value above the class ids (255), or map the "
            "classes to ids 0..K-1 without it, and save the masks again."
        )
    elif ignored and not found - {0}:
        problems.append(
            f"{root}: no mask holds a class but 0 once {ignore_label} is ignored; if {ignore_label} marks objects (binary "
            "masks: 0 background, 255 object), save the objects as class id 1, or, in the segmentation format, drop "
            "--ignore-label."
        )
    elif values and not found - {0}:
        warnings.warn(
            f"{root}: every mask holds only 0 (background), so a model has no other class to learn; masks that keep their "
            "objects in the alpha channel (cut-outs) read as background: save the objects as 255 (or class ids) in gray masks.",
            GantkWarning, stacklevel=caller_stacklevel(),
        )
    beside_255: dict[Path, list[int]] = {}  # masks of a binary set holding a few other values: VOC's layout, or edits
    for path, seen in values.items():
        extra = sorted(seen - allowed)
        if binary and len(extra) > GRADED_VALUES:
            problems.append(
                f"{relative(path, root)}: {len(extra)} values between 0 and 255 in a binary mask set: the mask was saved with "
                "compression (JPEG) or antialiasing; threshold it (object where the value is above 127) and save it as PNG."
            )
        elif binary and extra and 2 * plain_binary > len(values) and 255 not in seen:  # ids, not an edit of a 0/255 mask
            shown = first_names(extra, 6)
            problems.append(
                f"{relative(path, root)}: values {shown} and no 255, in a set of binary masks (0 background, 255 object, as "
                "most of its masks hold): the mask holds class ids (a 0/1 mask marks its object as 1); save its object as "
                "255, as the others do, or save every mask with class ids 0..K-1."
            )
        elif binary and extra and 2 * plain_binary > len(values):
            shown = first_names(extra, 6)
            problems.append(
                f"{relative(path, root)}: values {shown} in a set of binary masks (0 background, 255 object, as most of its "
                "masks hold): the mask was edited or saved with antialiasing; threshold it (object where the value is above "
                "127) and save it as PNG."
            )
        elif binary and extra:
            beside_255[path] = extra
        elif stray_255 and 255 in seen:
            problems.append(
                f"{relative(path, root)}: value 255 in a set of class-id masks (ids 0..{num_classes - 1}, e.g. in "
                f"{relative(ids_only[0], root)}); if 255 marks pixels to ignore, as Pascal VOC's 'void' does, pass "
                "--ignore-label 255; if the mask is a binary one (255 = object), save the object as its class id."
            )
    if len(beside_255) > 3:  # one problem of the set, not one per mask
        extra = sorted(set().union(*beside_255.values()))
        shown = first_names(extra, 6)
        names = first_names([relative(path, root) for path in beside_255])
        problems.append(f"{root}: {len(beside_255)} of {len(values)} masks ({names}) hold values {shown} beside 0 and 255 in a "
                        f"binary mask set; {_advice_beside_255(extra, 'them')}")
    else:
        for path, extra in beside_255.items():
            shown = first_names(extra, 6)
            problems.append(f"{relative(path, root)}: values {shown} in a binary mask set; {_advice_beside_255(extra, 'it')}")
    if values and not binary and 4 * len(found) < num_classes:
        highest = max(values, key=lambda path: max(values[path] & found, default=0))
        sparse = (f"{relative(highest, root)}: holds class id {num_classes - 1}, but the masks use only {len(found)} distinct "
                  f"ids, so the model would have {num_classes} output channels, most for ids no mask holds: if it marks pixels "
                  f"to ignore, pass --ignore-label {num_classes - 1}; else map the ids to 0..K-1 and save the masks again")
        _note_sparse(sparse, num_classes - 1 > SPARSE_IDS, "ids", problems)
    return num_classes, problems


def _advice_beside_255(extra: list[int], masks: str) -> str:
    """How to mend ``masks`` ("it", "them") of a binary set that hold the ``extra`` values beside 0 and 255."""
    one = (f"if {extra[0]} marks pixels to ignore (a trimap's unknown band, say), pass --ignore-label {extra[0]}; "
           if len(extra) == 1 else "")
    return (f"{one}if 255 marks pixels to ignore, as Pascal VOC's 'void' does, pass --ignore-label 255 (the other values "
            "are then class ids); else masks hold only 0 (background) and 255 (object), or class ids 0..K-1 throughout: "
            f"re-save {masks} without antialiasing or compression.")


def zero_ignored_classes(values: dict[Path, set[int]], root: Path) -> tuple[int, list[str]]:
    """:func:`mask_classes` where 0 is ignored: mask values ``1..K`` are the classes ``0..K-1``."""
    found = set().union(*values.values()) - {0}
    num_classes = max(2, max(found, default=1))
    problems = []
    if values and len(found) < 2:  # where no mask could be read, the files' own problems say why
        problems.append(
            f"{root}: no mask holds more than one class once 0 is ignored (the values 1..K are the classes 0..K-1); "
            "if 0 is a class (the background), do not ignore it: no --ignore-label 0 (the ade20k format ignores 0 "
            "unless --ignore-label names another value)."
        )
    with_255 = [path for path, seen in values.items() if 255 in seen]
    if len(found) > 1 and with_255 and not any(has_wide_ids(path) for path in values):  # in 8 bits, 255 is a void too
        problems += [
            f"{relative(path, root)}: value 255 beside the ignored 0 (values 1..K are the classes 0..K-1); if 255 marks "
            "pixels to ignore as well, set them to 0 and save the mask again."
            for path in with_255
        ]
    if values and 4 * len(found) < num_classes:
        highest = max(values, key=lambda path: max(values[path], default=0))
        sparse = (f"{relative(highest, root)}: holds value {num_classes}, but the masks use only {len(found)} distinct values "
                  f"besides 0, so the model would have {num_classes} output channels, most for values no mask holds: map the "
                  "values to 1..K and save the masks again")
        _note_sparse(sparse, num_classes > SPARSE_IDS, "values", problems)
    return num_classes, problems


def _note_sparse(sparse: str, refused: bool, kept: str, problems: list[str]) -> None:
    """The ``sparse`` class count as a problem where ``refused`` (ids above :data:`SPARSE_IDS`), else as a warning: a
    subset of a larger label set may use few of its ``kept`` ids or values."""
    if refused:
        problems.append(f"{sparse}.")
    else:
        warnings.warn(f"{sparse} (a subset of a larger label set keeps its {kept} rightly).", GantkWarning,
                      stacklevel=caller_stacklevel())


def describe_contents(root: Path) -> str:
    if root.is_file():
        return f"a file ({root.name})"
    dirs = [f"{d.name}/" for d in subdirs(root)]
    images = len(list_images(root))
    in_splits = [f"{count} in {d.name}/" for d in subdirs(root) if d.name in SPLITS and (count := len(list_images(d)))]
    parts = []
    if dirs:
        parts.append("folders " + ", ".join(dirs[:10]) + (f" and {len(dirs) - 10} more" if len(dirs) > 10 else ""))
    parts.append(f"{images} image file(s)" + (f" directly, {', '.join(in_splits)}" if in_splits else ""))
    return "; ".join(parts)
