"""The Pascal VOC segmentation layout, read where it is unpacked (``VOCdevkit/VOC2012``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import GantkWarning, caller_stacklevel
from ..hookspecs import hookimpl
from .formats import VoidIgnoringFormat
from .io import list_images, stem_key
from .layout import ROOT_SPLIT, broken_link_problem, broken_links, ordered_splits, relative


class VocFormat(VoidIgnoringFormat):
    """Pascal VOC segmentation: JPEGImages/ with SegmentationClass/ masks; splits listed in ImageSets/Segmentation/.

    Each split is the list ``ImageSets/Segmentation/<split>.txt`` (``train``, ``val``, ``trainval``),
    one image name per line; a list most of whose images have no mask (VOC2012's ``test``, whose masks
    were never published; SBD's ``train_aug``, whose masks are elsewhere) is no split. Without lists,
    every mask of ``SegmentationClass/`` pairs with its image. Images without a mask (most of ``JPEGImages/``, which also serves detection) are left
    out. The masks' 255 ("void") is ignored unless another ``ignore_label`` is given.
    """

    name = "voc"
    folders = ("JPEGImages", "SegmentationClass")
    lists = Path("ImageSets", "Segmentation")
    masks_source = "add the segmentation masks (SegmentationClass/ of VOC2012, or of VOC2007's segmentation set)"
    how_to_split = ("list the training images in ImageSets/Segmentation/train.txt and the held-out ones in "
                    "ImageSets/Segmentation/{split}.txt, one name per line")
    mask_values_hint = ("masks converted from VOC's palette PNGs to gray or colour hold other values: use the masks of "
                        "SegmentationClass/ as VOC ships them (palette indices)")
    CLASS_NAMES = (
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
        "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    )
    CLASSES = len(CLASS_NAMES)

    def splits(self, root: Path) -> list[str]:
        if not self.detect(root):
            return []
        masks = self._files(root, self.folders[1])
        listings = []
        for path in sorted((root / self.lists).glob("*.txt")):
            names = self._names(path)
            masked = sum(name in masks for name in names)
            if 2 * masked > len(names):
                listings.append(path)
            elif masked:
                warnings.warn(f"{relative(path, root)}: {masked} of its {len(names)} images have a mask in SegmentationClass/, "
                              "so it is no split (SBD's train_aug.txt lists the masks of SegmentationClassAug/, say); move "
                              "it out of ImageSets/Segmentation/ to silence this.", GantkWarning, stacklevel=caller_stacklevel())
        return ordered_splits([path.stem for path in listings]) or [ROOT_SPLIT]

    def _files(self, root: Path, folder: str) -> dict[str, Path]:
        return {stem_key(path): path for path in list_images(root / folder)}

    @staticmethod
    def _names(listing: Path) -> list[str]:
        """The image names ``listing`` holds, in order, once each (the first word of each line)."""
        lines = listing.read_text(encoding="utf-8-sig", errors="replace").splitlines()
        return list(dict.fromkeys(line.split()[0] for line in lines if line.strip()))

    @property
    def _layout_hint(self) -> str:
        return ("the voc format needs JPEGImages/ and SegmentationClass/ (masks named as their images) and, for splits, "
                "ImageSets/Segmentation/<split>.txt listing the names of each split.")

    def _pairs(self, root: Path, split: str, problems: list[str]) -> list[tuple[Path, Path]]:
        images, masks = (self._files(root, folder) for folder in self.folders)
        if split == ROOT_SPLIT:
            names, listing = sorted(masks), None
            problems += [broken_link_problem(link, root) for link in broken_links(root / self.folders[1])]
            if not names:
                problems.append(f"{root}: SegmentationClass/ holds no masks; {self._layout_hint}")
        else:
            listing = root / self.lists / f"{split}.txt"
            names = self._names(listing)
        broken = {stem_key(link): link for folder in self.folders for link in broken_links(root / folder)}
        pairs = []
        for name in names:
            lacking = [f"{folder}/" for folder, files in zip(self.folders, (images, masks)) if name not in files]
            missing = f"{' and '.join(lacking)} {'have' if len(lacking) > 1 else 'has'}"
            if not lacking:
                pairs.append((images[name], masks[name]))
            elif name in broken:
                problems.append(broken_link_problem(broken[name], root))
            elif listing is None:
                problems.append(f"{relative(masks[name], root)}: {missing} no image named '{name}.*'; add it or delete the mask.")
            else:
                problems.append(f"{relative(listing, root)} lists {name}, but {missing} no file named '{name}.*'; add it "
                                "or remove the line.")
        return pairs


@hookimpl
def gantk_register_data_formats(registry):
    registry.add(VocFormat.name, VocFormat)
