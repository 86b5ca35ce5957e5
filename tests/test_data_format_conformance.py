"""The built-in data formats pass the data format conformance kit that plugin formats use."""

from pathlib import Path

import torch

from gantk.data import write_png
from gantk.testing import DataFormatConformance
from helpers import smooth_image, write_paired, write_segmentation, write_unaligned


class TestPaired(DataFormatConformance):
    name = "paired"

    def write_sample(self, root):
        write_paired(root / "train", count=3, size=32, channels_a=1)
        write_paired(root / "test", count=2, size=32, channels_a=1)


class TestUnsplitPaired(DataFormatConformance):
    name = "paired"

    def write_sample(self, root):
        write_paired(root, count=3, size=32)


class TestAligned(DataFormatConformance):
    name = "aligned"

    def write_sample(self, root):
        for i in range(3):
            write_png(torch.cat([smooth_image(i, 32), smooth_image(i + 10, 32)], dim=-1), root / "train" / f"{i}.png")


class TestSegmentation(DataFormatConformance):
    name = "segmentation"

    def write_sample(self, root):
        write_segmentation(root / "train", count=3, size=32, num_classes=3)
        write_segmentation(root / "val", count=2, size=32, num_classes=3)


class TestUnaligned(DataFormatConformance):
    name = "unaligned"

    def write_sample(self, root):
        write_unaligned(root, count_a=3, count_b=2, size=32, channels_a=1)



def write_benchmark(root: Path, pairs: list[tuple[str, str]], values: tuple[int, ...]) -> None:
    """Photos with masks holding ``values``: ``pairs`` of their paths under ``root``."""
    for i, (image, mask) in enumerate(pairs):
        write_png(smooth_image(i, 32), root / image)
        write_png(torch.tensor(values, dtype=torch.uint8)[torch.arange(32 * 32).reshape(1, 32, 32) % len(values)], root / mask)


class TestVoc(DataFormatConformance):
    name = "voc"

    def write_sample(self, root):
        write_benchmark(root, [(f"JPEGImages/{name}.png", f"SegmentationClass/{name}.png") for name in "abc"], (0, 1, 15, 255))
        (root / "ImageSets" / "Segmentation").mkdir(parents=True)
        (root / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
        (root / "ImageSets" / "Segmentation" / "val.txt").write_text("c\n")


class TestCityscapes(DataFormatConformance):
    name = "cityscapes"

    def write_sample(self, root):
        places = [("train", "aachen", "aachen_000000_000019"), ("train", "aachen", "aachen_000001_000019"), ("val", "bonn", "bonn_000000_000019")]
        write_benchmark(root, [(f"leftImg8bit/{split}/{city}/{name}_leftImg8bit.png", f"gtFine/{split}/{city}/{name}_gtFine_labelTrainIds.png")
                               for split, city, name in places], (0, 7, 18, 255))


class TestAde20k(DataFormatConformance):
    name = "ade20k"

    def write_sample(self, root):
        write_benchmark(root, [(f"images/{split}/{name}.png", f"annotations/{split}/{name}.png")
                               for split, name in (("training", "a"), ("training", "b"), ("validation", "c"))], (0, 1, 2, 150))

