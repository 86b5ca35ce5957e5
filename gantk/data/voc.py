"""The Pascal VOC segmentation layout, read where it is unpacked (``VOCdevkit/VOC2012``)."""

from __future__ import annotations

from pathlib import Path

from ..hookspecs import hookimpl
from .formats import SegmentationFormat
from .io import list_images, stem_key
from .layout import MASK_EXTENSIONS, ROOT_SPLIT, ordered_splits, relative

VOID = 255  # the value VOC masks give object borders and unsure pixels


class VocFormat(SegmentationFormat):
    """Pascal VOC segmentation: JPEGImages/ with SegmentationClass/ masks; splits listed in ImageSets/Segmentation/.

    Each split is the list ``ImageSets/Segmentation/<split>.txt`` (``train``, ``val``, ``trainval``),
    one image name per line; a list whose first image has no mask (VOC2012's ``test``, whose masks
    were never published) is no split. Without lists, every mask of ``SegmentationClass/`` pairs with
    its image. Images without a mask (most of ``JPEGImages/``, which also serves detection) are left
    out. The masks' 255 ("void") is ignored unless another ``ignore_label`` is given.
    """

    name = "voc"
    folders = ("JPEGImages", "SegmentationClass")
    lists = Path("ImageSets", "Segmentation")

    def detect(self, root: Path) -> bool:
        return all((root / folder).is_dir() for folder in self.folders)

    def splits(self, root: Path) -> list[str]:
        if not self.detect(root):
            return []
        listings = [path for path in (root / self.lists).glob("*.txt") if self._labelled(root, path)]
        return ordered_splits([path.stem for path in listings]) or [ROOT_SPLIT]

    def _labelled(self, root: Path, listing: Path) -> bool:
        """Whether the first image ``listing`` names has a mask: VOC2012's test list names images whose
        masks were never published, and is no split to train or score on."""
        with listing.open(errors="replace") as lines:
            first = next((line.split()[0] for line in lines if line.strip()), None)
        masks = root / self.folders[1]
        return first is not None and any((masks / f"{first}{extension}").is_file() for extension in MASK_EXTENSIONS)

    def near_miss_hints(self, root: Path) -> list[str]:
        images, masks = (root / folder for folder in self.folders)
        if images.is_dir() and not masks.is_dir():
            return [f"{root}: JPEGImages/ without SegmentationClass/; for the voc format, add the segmentation masks "
                    "(SegmentationClass/ of VOC2012, or of VOC2007's segmentation set)."]
        return []

    def validate(self, root: Path, ignore_label: int | None = VOID) -> list[str]:
        if not self.detect(root):
            return [f"{root}: no JPEGImages/ and SegmentationClass/ folders; {self._layout_hint}"]
        return super().validate(root, ignore_label)

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True,
             normalize=True, num_classes: int | None = None, ignore_label: int | None = VOID):
        return super().open(root, split=split, direction=direction, load_size=load_size, crop_size=crop_size,
                            augment=augment, flip=flip, normalize=normalize, num_classes=num_classes,
                            ignore_label=ignore_label)

    def num_classes(self, root: Path, ignore_label: int | None = VOID) -> int:
        return super().num_classes(root, ignore_label)

    @property
    def _layout_hint(self) -> str:
        return ("the voc format needs JPEGImages/ and SegmentationClass/ (masks named as their images) and, for splits, "
                "ImageSets/Segmentation/<split>.txt listing the names of each split.")

    def _pairs(self, root: Path, split: str, problems: list[str]) -> list[tuple[Path, Path]]:
        images, masks = ({stem_key(path): path for path in list_images(root / folder)} for folder in self.folders)
        if split == ROOT_SPLIT:
            names, listing = sorted(masks), None
            if not names:
                problems.append(f"{root}: SegmentationClass/ holds no masks; {self._layout_hint}")
        else:  # a split's list names a mask (splits() checks its first name)
            listing = root / self.lists / f"{split}.txt"
            names = [line.split()[0] for line in listing.read_text(errors="replace").splitlines() if line.strip()]
        pairs = []
        for name in names:
            lacking = [f"{folder}/" for folder, files in zip(self.folders, (images, masks)) if name not in files]
            missing = f"{' and '.join(lacking)} {'have' if len(lacking) > 1 else 'has'}"
            if not lacking:
                pairs.append((images[name], masks[name]))
            elif listing is None:
                problems.append(f"{relative(masks[name], root)}: {missing} no image named '{name}.*'; add it or delete the mask.")
            else:
                problems.append(f"{relative(listing, root)} lists {name}, but {missing} no file named '{name}.*'; add it "
                                "or remove the line.")
        return pairs


@hookimpl
def gantk_register_data_formats(registry):
    registry.add(VocFormat.name, VocFormat)
