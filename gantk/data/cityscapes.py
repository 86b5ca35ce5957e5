"""The Cityscapes layout, read where it is unpacked: leftImg8bit/ photos with gtFine/ training-id masks."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..hookspecs import hookimpl
from .formats import VoidIgnoringFormat
from .io import list_images
from .layout import broken_link_problem, broken_links, ordered_splits, relative, subdirs

IMAGE_SUFFIX = "_leftImg8bit"
MASK_SUFFIX = "_gtFine_labelTrainIds"
UNLABELLED_SPLIT = "test"


class CityscapesFormat(VoidIgnoringFormat):
    """Cityscapes: leftImg8bit/<split>/<city>/ photos with gtFine/<split>/<city>/ *_labelTrainIds.png masks.

    The masks are the training ids cityscapesScripts writes (``csCreateTrainIdLabelImgs``): the 19
    classes of the benchmark, 0..18, and 255 for the pixels it leaves out, ignored unless another
    ``ignore_label`` is given. A split is a folder of ``leftImg8bit/`` that ``gtFine/`` has too, but
    ``test``: its published labels are placeholders (every training id 255), nothing to score.
    """

    name = "cityscapes"
    folders = ("leftImg8bit", "gtFine")
    masks_source = ("unpack gtFine_trainvaltest.zip beside it and write its training-id masks with cityscapesScripts' "
                    "csCreateTrainIdLabelImgs")
    how_to_split = "put held-out cities in leftImg8bit/val/ and gtFine/val/"
    mask_values_hint = ("the _labelTrainIds.png masks hold the training ids that cityscapesScripts' csCreateTrainIdLabelImgs "
                        "writes (the _labelIds.png files hold the 34 label ids): write them again with it")
    CLASS_NAMES = (
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation", "terrain",
        "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    )
    CLASSES = len(CLASS_NAMES)

    def splits(self, root: Path) -> list[str]:
        if not self.detect(root):
            return []
        images, masks = (root / folder for folder in self.folders)
        return ordered_splits([
            split.name for split in subdirs(images) if (masks / split.name).is_dir() and split.name != UNLABELLED_SPLIT
        ])

    @property
    def _layout_hint(self) -> str:
        return ("the cityscapes format needs leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
                "gtFine/<split>/<city>/*_gtFine_labelTrainIds.png, as the Cityscapes archives unpack.")

    def _pairs(self, root: Path, split: str, problems: list[str]) -> list[tuple[Path, Path]]:
        images_dir, masks_dir = (root / folder / split for folder in self.folders)
        images = [path for city in subdirs(images_dir) for path in list_images(city) if path.stem.endswith(IMAGE_SUFFIX)]
        masks = {
            (city.name, path.stem.removesuffix(MASK_SUFFIX)): path
            for city in subdirs(masks_dir) for path in list_images(city) if path.stem.endswith(MASK_SUFFIX)
        }
        broken = [link for folder in (images_dir, masks_dir) for city in subdirs(folder) for link in broken_links(city)]
        problems += [broken_link_problem(link, root) for link in broken]
        if not images:
            problems.append(f"{relative(images_dir, root)}/: no *{IMAGE_SUFFIX}.png photos in city folders; {self._layout_hint}")
        elif not masks:
            problems.append(
                f"{relative(masks_dir, root)}/: no *{MASK_SUFFIX}.png masks; write them with cityscapesScripts: pip install "
                f"cityscapesscripts, then CITYSCAPES_DATASET={shlex.quote(str(root))} csCreateTrainIdLabelImgs."
            )
            return []
        pairs = []
        for image in images:
            name = image.stem.removesuffix(IMAGE_SUFFIX)
            mask = masks.get((image.parent.name, name))
            if mask is None:
                expected = masks_dir / image.parent.name / f"{name}{MASK_SUFFIX}.png"
                if expected in broken:  # named as such above
                    continue
                problems.append(f"{relative(image, root)}: no mask {relative(expected, root)}; add it or delete the photo.")
            else:
                pairs.append((image, mask))
        paired = {mask for _, mask in pairs}
        for (city, name), mask in sorted(masks.items()):
            if mask not in paired and images_dir / city / f"{name}{IMAGE_SUFFIX}.png" not in broken:
                photo = relative(images_dir / city / f"{name}{IMAGE_SUFFIX}.png", root)
                problems.append(f"{relative(mask, root)}: no photo {photo}; add it or delete the mask.")
        return pairs


@hookimpl
def gantk_register_data_formats(registry):
    registry.add(CityscapesFormat.name, CityscapesFormat)
