"""Dataset formats: the ``DataFormat`` contract and the built-in layouts (gantk.data.opening detects and opens them)."""

from __future__ import annotations

import abc
import functools
import warnings
from pathlib import Path
from typing import Callable, Collection

from ..errors import DataError, GantkWarning, OptionError, caller_stacklevel
from ..files import first_names
from ..hookspecs import hookimpl
from ..registry import own_summary
from .datasets import AlignedDataset, GanDataset, PairedDataset, SegmentationDataset, SingleDataset, UnalignedDataset
from .io import (
    IMAGE_EXTENSIONS, ORIENTATION_NAMES, has_images, infer_channels, is_image_file, list_images, orientation, pair_by_stem,
    probe, read_image, read_mask,
)
from .layout import (
    MASK_EXTENSIONS, ROOT_SPLIT, SPLITS, ImageNotes, channels_by_side, channels_of, check_ignore_label, decode_or_note, images_of, is_lossless_mask,
    lone_folder_hints, lossy_masks, mask_classes, mask_values, mask_values_of, odd_width_problem, partner_problems,
    ordered_splits, pick_split, raise_if_problems, relative, side_by_side,
    size_mismatch_problem, size_text, subdirs, warn_of_unlike_orientations,
)
from .transforms import PairedTransform


class DataFormat(abc.ABC):
    """Contract of a dataset layout; subclass it and register the class in ``gantk_register_data_formats``.

    A format has a ``name`` (set to the name it is registered under), a one-line ``summary`` (the
    class docstring's first line), four methods and, optionally, ``near_miss_hints``.
    ``paired_targets`` says what each item pairs with its input: ``"images"``, ``"masks"``, or
    ``None`` (unaligned sides, single images); ``gantk eval`` needs paired targets. ``split`` names a
    split folder (``train``, ``test``...); :data:`ROOT_SPLIT` stands for a layout kept directly in the
    root, which serves every requested split; ``how_to_split`` says how data without a held-out split
    gets one (``{split}``: the name asked for). A ``fallback`` format is detected only when no other
    format matches.
    """

    name = ""
    fallback = False
    paired_targets: str | None = None
    how_to_split = "move the training data into train/ and held-out data into {split}/"

    @property
    def summary(self) -> str:
        return own_summary(type(self))

    @abc.abstractmethod
    def detect(self, root: Path) -> bool:
        """Whether ``root`` is laid out in this format; cheap (looks at folder names, not pixels)."""

    @abc.abstractmethod
    def splits(self, root: Path) -> list[str]:
        """The splits present in ``root`` (``[ROOT_SPLIT]`` for an unsplit layout)."""

    @abc.abstractmethod
    def validate(self, root: Path, splits: Collection[str] | None = None) -> list[str]:
        """Every problem of every split (of ``splits`` only, where given: see :meth:`checked_splits`), each naming the
        file and the fix; decodes every file. A format whose ``validate`` lacks ``splits`` is checked whole."""

    @abc.abstractmethod
    def open(
        self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
        crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
        resize: str = "square",
    ) -> GanDataset:
        """The dataset of ``split``; raises ``DataError`` on layout problems it sees without decoding.

        ``normalize=False`` leaves images uint8 (for augmentation on the training device); a format
        whose ``open`` lacks the argument still works there, with float images. ``resize`` is
        :class:`~gantk.data.transforms.PairedTransform`'s; a format whose ``open`` lacks it serves
        ``"square"`` only.
        """

    def checked_splits(self, root: Path, splits: Collection[str] | None) -> list[str]:
        """The splits of ``root`` among ``splits`` (all where ``None``), with an unsplit layout, which serves every split."""
        return [split for split in self.splits(root) if splits is None or split in splits or split == ROOT_SPLIT]

    def near_miss_hints(self, root: Path) -> list[str]:
        """What ``root`` lacks to be in this format when it nearly is; shown when no format matches."""
        return []

    def split_files(self, root: Path, split: str) -> set[Path] | None:
        """Every file of ``split``, listed without decoding; ``None`` where the format does not list them so
        (``gantk eval`` then checks a split for the model's training images only when it is ``train``)."""
        return None


# -- built-in formats -------------------------------------------------------------------------


class AlignedFormat(DataFormat):
    """A|B side by side in one image (pix2pix datasets), in train/, val/, test/ or directly in the root."""

    name = "aligned"
    paired_targets = "images"

    def detect(self, root: Path) -> bool:
        folders = [root / split for split in SPLITS if has_images(root / split)] or [root]
        return any(has_images(folder) and side_by_side(list_images(folder)[:4]) for folder in folders)

    def splits(self, root: Path) -> list[str]:
        found = [split for split in SPLITS if has_images(root / split)]
        return found or ([ROOT_SPLIT] if has_images(root) else [])

    def validate(self, root: Path, splits: Collection[str] | None = None) -> list[str]:
        problems: list[str] = []
        if not self.splits(root):
            problems.append(f"{root}: no images in train/, val/, test/ or the folder itself; {self._layout_hint}")
        notes = ImageNotes()
        for split in self.checked_splits(root, splits):
            for path in images_of(root / split, root, problems, self._layout_hint):
                image = decode_or_note(read_image, path, root, problems)
                notes.add(path, image)
                if image is not None and image.shape[-1] % 2:
                    problems.append(odd_width_problem(path, root, image.shape[-1]))
        notes.warn(root)
        return problems

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True,
             normalize=True, resize="square"):
        folder = root / pick_split(root, split, self.splits(root), self.name)
        problems: list[str] = []
        files = images_of(folder, root, problems, self._layout_hint)
        infos = {path: probe(path) for path in files}
        problems += [odd_width_problem(path, root, info.width) for path, info in infos.items() if info.width % 2]
        raise_if_problems(problems, root, self.name)
        channels = infer_channels([info.channels for info in infos.values()])
        transform = PairedTransform(load_size, crop_size, augment, flip, normalize, resize)
        return AlignedDataset(files, channels, transform, swap=direction == "BtoA")

    def near_miss_hints(self, root: Path) -> list[str]:
        hints = []
        for split in self.splits(root):
            files = list_images(root / split)
            aligned = sum(side_by_side([path]) for path in files)
            if 0 < aligned < len(files):
                hints.append(
                    f"{f'{split}/' if split else root}: {aligned} of {len(files)} images are twice as wide as high "
                    "(A|B side by side); if it is an aligned set, pass --data-format aligned."
                )
        return hints

    _layout_hint = "an aligned image holds A (left half) and B (right half) side by side."


class _TwoFolderFormat(DataFormat):
    """Shared layout of root[/split]/<first>/ and root[/split]/<second>/ with matching file names."""

    folders = ("A", "B")

    def detect(self, root: Path) -> bool:
        return any(all((root / split / f).is_dir() for f in self.folders) for split in self.splits(root))

    def splits(self, root: Path) -> list[str]:
        if any((root / f).is_dir() for f in self.folders):
            return [ROOT_SPLIT]
        return self._split_folders(root)

    def _split_folders(self, root: Path) -> list[str]:
        return ordered_splits([d.name for d in subdirs(root) if any((d / f).is_dir() for f in self.folders)])

    def near_miss_hints(self, root: Path) -> list[str]:
        hints = [
            hint for split in self.splits(root)
            for hint in lone_folder_hints(tuple(root / split / f for f in self.folders), root, self.name)
        ]
        for place in (root, *(root / split for split in SPLITS)):  # names that differ in case only (train/a/, train/b/)
            names = {d.name for d in subdirs(place)}
            cased = [next((n for n in names if n.lower() == f.lower()), None) for f in self.folders]
            if all(cased) and not set(self.folders) & names:
                found = " and ".join(f"{relative(place / n, root)}/" for n in cased)
                hints.append(f"{found} differ from the {self.name} format's {' and '.join(f'{f}/' for f in self.folders)} in "
                             "case only: rename them (folder names are case-sensitive).")
        return hints

    @property
    def _layout_hint(self) -> str:
        first, second = self.folders
        return f"the {self.name} format needs {first}/ and {second}/ folders holding files with matching names."

    def split_files(self, root: Path, split: str) -> set[Path] | None:
        return {path for pair in self._pairs(root, split, []) for path in pair}  # validate reports the problems

    def _pairs(self, root: Path, split: str, problems: list[str]) -> list[tuple[Path, Path]]:
        if split == ROOT_SPLIT:
            problems += self._split_folders_beside_root_folders(root)
        first, second = (root / split / f for f in self.folders)
        masks = {"supported": MASK_EXTENSIONS} if self.paired_targets == "masks" else {}
        pairs, only_first, only_second = pair_by_stem(
            images_of(first, root, problems, self._layout_hint), images_of(second, root, problems, self._layout_hint, **masks)
        )
        problems += partner_problems(only_first, only_second, first, second, root)
        return pairs

    def _split_folders_beside_root_folders(self, root: Path) -> list[str]:
        """The problem of a root holding the folders both directly and in split folders (which it would ignore).

        Only the known splits (train/, val/, test/) count: other subfolders holding the folders, such as a
        leftover ``old_runs/A/``, are no layout and stay ignored.
        """
        splits = [split for split in self._split_folders(root) if split in SPLITS]
        if not splits:
            return []
        root_folders = ", ".join(f"{f}/" for f in self.folders if (root / f).is_dir())
        split_folders = ", ".join(f"{split}/" for split in splits)
        return [
            f"{root}: holds {root_folders} both directly and in split folders {split_folders}; the split "
            f"folders would be ignored: keep one layout (move {root_folders} into a split folder such as train/, or "
            "merge the split folders into them)."
        ]

    def _check_pair(self, pair: tuple[Path, Path], root: Path, problems: list[str], read_second: Callable,
                    turned: list[str], notes: ImageNotes) -> tuple:
        """Decode a pair, noting an unreadable file or partners of two sizes in ``problems``, partners of one size
        that carry different EXIF orientations in ``turned``, and what their pixels show in ``notes``."""
        first = decode_or_note(read_image, pair[0], root, problems)
        second = decode_or_note(read_second, pair[1], root, problems)
        notes.add(pair[0], first)
        if read_second is read_image:
            notes.add(pair[1], second)
        if first is not None and second is not None and first.shape[-2:] != second.shape[-2:]:
            problems.append(
                size_mismatch_problem(relative(pair[0], root), size_text(first), relative(pair[1], root), size_text(second))
            )
        elif first is not None and second is not None and (orientations := tuple(map(orientation, pair)))[0] != orientations[1]:
            turned.append(" and ".join(f"{relative(path, root)} {ORIENTATION_NAMES[value]}" for path, value in zip(pair, orientations)))
        return first, second


class PairedFormat(_TwoFolderFormat):
    """Pairs in root[/split]/A/ and root[/split]/B/ with matching file names (extensions may differ)."""

    name = "paired"
    paired_targets = "images"

    def validate(self, root: Path, splits: Collection[str] | None = None) -> list[str]:
        problems: list[str] = []
        turned: list[str] = []
        notes = ImageNotes()
        if not self.splits(root):
            problems.append(f"{root}: no A/ and B/ folders, directly or under train/, test/...; {self._layout_hint}")
        for split in self.checked_splits(root, splits):
            for pair in self._pairs(root, split, problems):
                self._check_pair(pair, root, problems, read_image, turned, notes)
        warn_of_unlike_orientations(turned, root)
        notes.warn(root)
        return problems

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True,
             normalize=True, resize="square"):
        problems: list[str] = []
        pairs = self._pairs(root, pick_split(root, split, self.splits(root), self.name), problems)
        raise_if_problems(problems, root, self.name)
        channels = channels_by_side({"A": [a for a, _ in pairs], "B": [b for _, b in pairs]})
        if direction == "BtoA":
            pairs = [(b, a) for a, b in pairs]
            channels = {"A": channels["B"], "B": channels["A"]}
        return PairedDataset(pairs, channels, PairedTransform(load_size, crop_size, augment, flip, normalize, resize))


class SegmentationFormat(_TwoFolderFormat):
    """Images with label masks: root[/split]/images/ and root[/split]/masks/ (lossless masks, same names)."""

    name = "segmentation"
    paired_targets = "masks"
    folders = ("images", "masks")
    VOID: int | None = None  # the mask value ignored without --ignore-label
    mask_values_hint = ""  # where mask values outside a benchmark's classes come from, and what to use instead

    def validate(self, root: Path, splits: Collection[str] | None = None, *, ignore_label: int | None = None) -> list[str]:
        """As :meth:`DataFormat.validate` (``splits`` second, as for every format); mask pixels holding ``ignore_label``
        are no class."""
        check_ignore_label(ignore_label)
        problems: list[str] = []
        if not self.splits(root):
            problems.append(f"{root}: no images/ and masks/ folders, directly or under train/, test/...; {self._layout_hint}")
        values: dict[Path, set[int]] = {}
        turned: list[str] = []
        notes = ImageNotes()
        checked: set[tuple[Path, Path]] = set()  # each pair once, also where splits share it (voc's trainval)
        for split in self.checked_splits(root, splits):
            pairs = [pair for pair in map(tuple, self._pairs(root, split, problems)) if pair not in checked]
            checked.update(pairs)
            problems += lossy_masks(pairs, root)
            for pair in pairs:
                _, mask = self._check_pair(pair, root, problems, read_mask, turned, notes)
                if mask is not None and is_lossless_mask(pair[1]):  # a lossy mask is reported once
                    values[pair[1]] = mask_values(mask)
        warn_of_unlike_orientations(turned, root)
        notes.warn(root)
        problems += _mask_classes_of(values, root, ignore_label, self.benchmark_classes(ignore_label), self.name,
                                     self.mask_values_hint)[1]
        if ignore_label is not None and values and not any(ignore_label in seen for seen in values.values()):
            otherwise = (f" (the {self.name} format ignores {ignore_label} unless told otherwise)" if ignore_label == self.VOID
                         else "; else drop --ignore-label")
            warnings.warn(f"{root}: no mask holds the ignore label {ignore_label}, so no pixel is ignored; if the masks "
                          f"mark pixels to ignore with another value, name it with --ignore-label{otherwise}.",
                          GantkWarning, stacklevel=caller_stacklevel())
        return list(dict.fromkeys(problems))  # once each, where splits share files (voc's trainval)

    def open(  # DataFormat.open's annotations repeated: beside new parameters, pyright reads a bare load_size=286 as an int
        self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
        crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
        resize: str = "square", num_classes: int | None = None, ignore_label: int | None = None,
    ):
        """As :meth:`DataFormat.open`; ``num_classes`` skips inferring the classes from the masks, and mask
        pixels holding ``ignore_label`` get the class id -1, which no loss term or score counts. ``direction``
        ``BtoA`` serves the masks as inputs and the images as targets (label maps to images)."""
        check_ignore_label(ignore_label)
        problems: list[str] = []
        pairs = self._pairs(root, pick_split(root, split, self.splits(root), self.name), problems)
        problems += lossy_masks(pairs, root)
        raise_if_problems(problems, root, self.name)
        if num_classes is None:
            num_classes = self.num_classes(root, ignore_label)
        channels = channels_of([image for image, _ in pairs])
        transform = PairedTransform(load_size, crop_size, augment, flip, normalize, resize)
        return SegmentationDataset(pairs, channels, num_classes, transform, ignore_label, labels_in=direction == "BtoA")

    def class_names(self, root: Path, ignore_label: int | None = None) -> list[str] | None:
        """The names of the class ids ``0, 1, ...`` where the layout gives them (read with ``ignore_label``);
        ``None`` here, where masks hold bare ids."""
        return None

    def benchmark_classes(self, ignore_label: int | None = None) -> int | None:
        """The fixed class count of a benchmark's layout read with ``ignore_label``, whatever classes its
        masks hold (a subset's too); ``None`` here, where the count comes from the masks."""
        return None

    def num_classes(self, root: Path, ignore_label: int | None = None) -> int:
        """The class count of the whole dataset, from the paired lossless masks of every split (as
        :meth:`validate` counts them), so that every split opens with the same classes."""
        masks = [
            mask for split in self.splits(root) for _, mask in self._pairs(root, split, [])  # validate reports their problems
            if is_lossless_mask(mask)
        ]
        stamps = tuple((mask, stat.st_mtime_ns, stat.st_size) for mask in masks for stat in [mask.stat()])
        num_classes, problems = _mask_classes(stamps, root, ignore_label, self.benchmark_classes(ignore_label), self.name,
                                              self.mask_values_hint)
        raise_if_problems(problems, root, self.name, {} if ignore_label is None else {"ignore_label": ignore_label})
        return num_classes


class VoidIgnoringFormat(SegmentationFormat):
    """Base of the layouts of public segmentation sets whose masks give unlabelled pixels one value,
    ``VOID`` (255, Pascal VOC's "void"; 0 in ADE20K): those pixels are ignored unless another
    ``ignore_label`` is given. A subclass names its two ``folders`` (images, masks), where its masks
    come from (``masks_source``, for the hint on a root holding the images only) and lists its
    ``splits`` and ``_pairs``."""

    VOID: int | None = 255
    masks_source = ""
    CLASS_NAMES: tuple[str, ...] = ()  # the names of the class ids 0, 1, ... with VOID ignored
    CLASSES: int | None = None  # the benchmark's class count with VOID ignored (None: from the masks)

    def class_names(self, root: Path, ignore_label: int | None = None) -> list[str] | None:
        return list(self.CLASS_NAMES) if self.CLASS_NAMES and self._ignored_value(ignore_label) == self.VOID else None

    def benchmark_classes(self, ignore_label: int | None = None) -> int | None:
        return self.CLASSES if self._ignored_value(ignore_label) == self.VOID else None

    def near_miss_hints(self, root: Path) -> list[str]:
        images, masks = (root / folder for folder in self.folders)
        if images.is_dir() and not masks.is_dir():
            return [f"{root}: {images.name}/ without {masks.name}/; for the {self.name} format, {self.masks_source}."]
        return []

    def validate(self, root: Path, splits: Collection[str] | None = None, *, ignore_label: int | None = None) -> list[str]:
        first, second = self.folders
        if missing := [f"{folder}/" for folder in self.folders if not (root / folder).is_dir()]:
            return [f"{root}: no {' and no '.join(missing)}; {self._layout_hint}"]
        if not self.splits(root):
            return [f"{root}: {first}/ and {second}/ share no split with labels; {self._layout_hint}"]
        return super().validate(root, splits, ignore_label=self._ignored_value(ignore_label))

    def open(  # DataFormat.open's annotations repeated (see SegmentationFormat.open)
        self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
        crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
        resize: str = "square", num_classes: int | None = None, ignore_label: int | None = None,
    ):
        return super().open(root, split=split, direction=direction, load_size=load_size, crop_size=crop_size,
                            augment=augment, flip=flip, normalize=normalize, resize=resize, num_classes=num_classes,
                            ignore_label=self._ignored_value(ignore_label))

    def num_classes(self, root: Path, ignore_label: int | None = None) -> int:
        return super().num_classes(root, self._ignored_value(ignore_label))

    def _ignored_value(self, ignore_label: int | None) -> int:
        """The mask value to ignore: the one given, else ``VOID``."""
        return self.VOID if ignore_label is None else ignore_label

    def detect(self, root: Path) -> bool:
        return all((root / folder).is_dir() for folder in self.folders)


@functools.lru_cache(maxsize=16)
def _mask_classes(stamps: tuple[tuple[Path, int, int], ...], root: Path, ignore_label: int | None, classes: int | None,
                  name: str, hint: str) -> tuple[int, list[str]]:
    """:func:`_mask_classes_of` the masks in ``stamps`` (path, mtime, size): decoded once per version of the files."""
    values = mask_values_of(mask for mask, _, _ in stamps)
    return _mask_classes_of(values, root, ignore_label, classes, name, hint)


def _mask_classes_of(values: dict[Path, set[int]], root: Path, ignore_label: int | None, classes: int | None, name: str,
                     hint: str) -> tuple[int, list[str]]:
    """The class count and the masks that break it: from the mask ``values`` (:func:`mask_classes`), or, for a
    benchmark of ``classes`` classes (the ``name`` format's), that count, with the masks holding other values
    than its ids and ``ignore_label`` (``hint`` says where such values come from)."""
    if classes is None:
        return mask_classes(values, root, ignore_label)
    first = 1 if ignore_label == 0 else 0  # the ignored 0 below the classes 1..K
    allowed = set(range(first, first + classes)) | {ignore_label}
    problems = []
    for path, seen in values.items():
        if extra := sorted(seen - allowed):
            shown = first_names(extra, 6)
            problems.append(f"{relative(path, root)}: values {shown} outside the {classes} classes of the {name} benchmark "
                            f"(values {first}..{first + classes - 1}, and {ignore_label} ignored); {hint}")
    return classes, problems


class UnalignedFormat(DataFormat):
    """Unpaired sets (CycleGAN): root/trainA/ and root/trainB/ (and testA/, testB/); sizes may differ."""

    name = "unaligned"
    how_to_split = "put held-out images of each domain in {split}A/ and {split}B/ beside trainA/ and trainB/"

    def detect(self, root: Path) -> bool:
        return any((root / f"{split}A").is_dir() and (root / f"{split}B").is_dir() for split in self.splits(root))

    def splits(self, root: Path) -> list[str]:
        names = {d.name for d in subdirs(root)}
        prefixes = {name[:-1] for name in names if len(name) > 1 and name[-1] in "AB"}
        return ordered_splits([p for p in prefixes if {p + "A", p + "B"} <= names or p in SPLITS])

    def near_miss_hints(self, root: Path) -> list[str]:
        return [
            hint for split in self.splits(root)
            for hint in lone_folder_hints((root / f"{split}A", root / f"{split}B"), root, self.name)
        ]

    def validate(self, root: Path, splits: Collection[str] | None = None) -> list[str]:
        problems: list[str] = []
        if not self.splits(root):
            problems.append(f"{root}: no trainA/ and trainB/ folders; {self._layout_hint}")
        notes = ImageNotes()
        for split in self.checked_splits(root, splits):
            for side in "AB":
                for path in images_of(root / f"{split}{side}", root, problems, self._layout_hint):
                    notes.add(path, decode_or_note(read_image, path, root, problems))
        notes.warn(root)
        return problems

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True,
             normalize=True, resize="square"):
        split = pick_split(root, split, self.splits(root), self.name)
        problems: list[str] = []
        a_files, b_files = (images_of(root / f"{split}{side}", root, problems, self._layout_hint) for side in "AB")
        raise_if_problems(problems, root, self.name)
        if direction == "BtoA":
            a_files, b_files = b_files, a_files
        channels = channels_by_side({"A": a_files, "B": b_files})
        return UnalignedDataset(a_files, b_files, channels, PairedTransform(load_size, crop_size, augment, flip, normalize, resize))

    _layout_hint = "the unaligned format needs <split>A/ and <split>B/ folders (e.g. trainA/, trainB/) of images."


class SingleFormat(DataFormat):
    """Images on their own, for inference: one image file or a folder of images."""

    name = "single"
    fallback = True  # any folder of images matches

    def detect(self, root: Path) -> bool:
        return is_image_file(root) or has_images(root)

    def splits(self, root: Path) -> list[str]:
        return [ROOT_SPLIT] if self.detect(root) else []

    def validate(self, root: Path) -> list[str]:
        problems: list[str] = []
        for path in self._files(root, problems):
            decode_or_note(read_image, path, root, problems)
        return problems

    def open(  # DataFormat.open's annotations repeated (see SegmentationFormat.open)
        self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
        crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
        resize: str = "square", input_classes: int | None = None, ignore_label: int | None = None,
        channels: int | None = None,
    ):
        """As :meth:`DataFormat.open`; ``split`` and ``direction`` do not apply and are ignored. With
        ``input_classes`` the files are label masks of that many classes, read as class ids (pixels
        holding ``ignore_label`` as -1), for a model that translates label maps. ``channels`` (a model's) is
        the count each image is converted to from its own, once normalised (default: one count for all, from the
        files')."""
        problems: list[str] = []
        files = self._files(root, problems, masks=input_classes is not None)
        raise_if_problems(problems, root, self.name)
        transform = PairedTransform(load_size, crop_size, augment, flip, normalize, resize)
        if input_classes is not None:
            check_ignore_label(ignore_label)
            raise_if_problems(lossy_masks([(path, path) for path in files], root if root.is_dir() else root.parent), root, self.name)
            return SingleDataset(files, input_classes, transform, input_classes, ignore_label)
        if channels is not None:
            if not normalize:
                raise OptionError("channels converts normalised images (as a model's inputs): open with normalize=True.")
            return SingleDataset(files, channels, transform, each_converted=True)
        counts = []
        for path in files:
            try:
                counts.append(probe(path).channels)
            except DataError:  # named when its item is read: translate names every input it cannot read
                continue
        channels = infer_channels(counts) if counts else channels_of(files[:1])  # none readable: the first one's error
        return SingleDataset(files, channels, transform)

    def _files(self, root: Path, problems: list[str], masks: bool = False) -> list[Path]:
        if root.is_file():
            if is_image_file(root):
                return [root]
            if root.name.startswith("."):
                problems.append(f"{root}: hidden files (names starting with '.') are skipped; rename it.")
            else:
                supported = ", ".join(IMAGE_EXTENSIONS)
                problems.append(f"{root}: not a supported image ({supported}); pass an image or a folder of images.")
            return []
        with_images = [] if has_images(root) else [folder for folder in subdirs(root) if has_images(folder)]
        # of a segmentation layout's split, the folder the model reads: masks/ for label maps, images/ otherwise
        wanted = [folder for folder in with_images if folder.name == SegmentationFormat.folders[int(masks)]]
        with_images, kind = wanted or with_images, "masks" if masks else "images"
        hint = (f" (its subfolder {with_images[0].name}/ holds {kind}: pass {with_images[0]})" if len(with_images) == 1
                else f" (its subfolders {', '.join(f'{folder.name}/' for folder in with_images)} hold {kind}: pass one)"
                if with_images else "")
        # Images on their own pair with nothing: a.jpg and a.png are two inputs (translate refuses only their one output name).
        return images_of(root, root, problems, f"pass an image or a folder of images{hint}.", named_apart=False)


BUILTIN_FORMATS = (AlignedFormat, PairedFormat, SegmentationFormat, UnalignedFormat, SingleFormat)


@hookimpl
def gantk_register_data_formats(registry):
    for data_format in BUILTIN_FORMATS:
        registry.add(data_format.name, data_format)
