"""The ADE20K scene-parsing layout (ADEChallengeData2016), read where it is unpacked: images/ with annotations/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Collection

from ..hookspecs import hookimpl
from .formats import VoidIgnoringFormat
from .io import has_images, pair_by_stem
from .layout import MASK_EXTENSIONS, images_of, partner_problems, relative

SPLIT_FOLDERS = {"train": "training", "val": "validation"}  # split name: its folder under images/ and annotations/
CLASS_LIST = "objectInfo150.txt"  # the names of the classes 1..150


class Ade20kFormat(VoidIgnoringFormat):
    """ADE20K scene parsing: images/{training,validation}/ photos with annotations/ masks of the same names.

    The masks hold the benchmark's 150 classes as the values 1..150 and 0 for "other", the pixels it
    leaves out: 0 is ignored unless another ``ignore_label`` is given, so the values 1..K are the
    classes 0..K-1 (``gantk translate`` writes them back as 1..K). The splits are ``train``
    (``training/``) and ``val`` (``validation/``).
    """

    name = "ade20k"
    folders = ("images", "annotations")
    VOID = 0
    masks_source = "unpack the annotations/ of ADEChallengeData2016.zip beside it"
    how_to_split = "put held-out photos in images/validation/ and their masks in annotations/validation/"
    CLASSES = 150
    mask_values_hint = "use the annotations/ of ADEChallengeData2016.zip as it ships them (0 other, 1..150 the classes)"

    def class_names(self, root: Path, ignore_label: int | None = None) -> list[str] | None:
        """The first name of each class in the set's ``objectInfo150.txt`` (tab-separated ``Idx Ratio Train
        Val Name`` rows, names such as ``building;edifice``); ``None`` without that file, or read with
        another label."""
        listing = root / CLASS_LIST
        if self._ignored_value(ignore_label) != self.VOID or not listing.is_file():
            return None
        lines = listing.read_text(encoding="utf-8-sig", errors="replace").splitlines()[1:]
        rows = [row for row in (line.split("\t") for line in lines) if len(row) >= 2]
        numbered = [row[0].strip() for row in rows] == [str(i) for i in range(1, len(rows) + 1)]
        return [re.split("[;,]", row[-1])[0].strip() for row in rows] if rows and numbered else None

    def detect(self, root: Path) -> bool:
        return super().detect(root) and any((root / "annotations" / folder).is_dir() for folder in SPLIT_FOLDERS.values())

    def splits(self, root: Path) -> list[str]:
        if not self.detect(root):
            return []
        return [split for split, folder in SPLIT_FOLDERS.items()
                if all((root / side / folder).is_dir() for side in self.folders)]

    def near_miss_hints(self, root: Path) -> list[str]:
        images, masks = (root / side for side in self.folders)
        if any((masks / folder).is_dir() for folder in SPLIT_FOLDERS.values()) and not images.is_dir():
            return [f"{root}: annotations/ without images/; for the ade20k format, unpack the images/ of "
                    "ADEChallengeData2016.zip beside it."]
        if any((images / folder).is_dir() for folder in SPLIT_FOLDERS.values()):
            return super().near_miss_hints(root)
        return self._misnamed_splits(root)  # images/ alone is the segmentation format's folder too

    def validate(self, root: Path, splits: Collection[str] | None = None, *, ignore_label: int | None = None) -> list[str]:
        return self._misnamed_splits(root) + self._one_sided_splits(root, splits) + super().validate(root, splits, ignore_label=ignore_label)

    def _misnamed_splits(self, root: Path) -> list[str]:
        """The problem of split folders named as gantk names the splits (train/, val/) under images/ and annotations/."""
        if not all((root / side).is_dir() for side in self.folders):
            return []
        misnamed = [split for split in SPLIT_FOLDERS if any(has_images(root / side / split) for side in self.folders)]
        found = [f"{side}/{split}/" for side in self.folders for split in misnamed if (root / side / split).is_dir()]
        renames = " and ".join(f"{split}/ to {SPLIT_FOLDERS[split]}/" for split in misnamed)
        return [f"{root}: {', '.join(found)}: the ade20k format's split folders are training/ and validation/, as "
                f"ADEChallengeData2016.zip unpacks them; rename {renames}."] if found else []

    def _one_sided_splits(self, root: Path, splits: Collection[str] | None) -> list[str]:
        """The problems of split folders under one of images/ and annotations/ only (of ``splits``, where given)."""
        images, masks = (root / side for side in self.folders)
        if not (images.is_dir() and masks.is_dir()):
            return []  # validate names the missing folder
        return [
            f"{relative(one / folder, root)}/ has no {relative(other / folder, root)}/ beside it, so the split {split} "
            f"is left out: add that folder, as ADEChallengeData2016.zip unpacks it, or remove {relative(one / folder, root)}/."
            for split, folder in SPLIT_FOLDERS.items() for one, other in ((images, masks), (masks, images))
            if (splits is None or split in splits) and (one / folder).is_dir() and not (other / folder).is_dir()
        ]

    @property
    def _layout_hint(self) -> str:
        return ("the ade20k format needs images/training/ and images/validation/ with the masks of the same names in "
                "annotations/training/ and annotations/validation/, as ADEChallengeData2016.zip unpacks.")

    def _pairs(self, root: Path, split: str, problems: list[str]) -> list[tuple[Path, Path]]:
        images, masks = (root / side / SPLIT_FOLDERS[split] for side in self.folders)
        pairs, only_images, only_masks = pair_by_stem(
            images_of(images, root, problems, self._layout_hint),
            images_of(masks, root, problems, self._layout_hint, supported=MASK_EXTENSIONS),
        )
        problems += partner_problems(only_images, only_masks, images, masks, root)
        return pairs


@hookimpl
def gantk_register_data_formats(registry):
    registry.add(Ade20kFormat.name, Ade20kFormat)
