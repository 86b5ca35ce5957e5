"""The built-in data formats pass the data format conformance kit that plugin formats use, and the kit fails
formats that break their contract."""

from pathlib import Path

import pytest
import torch

from gantk.data import write_png
from gantk.testing import DataFormatConformance
from helpers import failed_tests, smooth_image, write_paired, write_segmentation, write_unaligned


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


# A sound format, as docs/writing-a-plugin.md's `suffixed`, and a kit test class for it and for each variant
# that breaks one part of the contract
SUFFIXED = '''
from pathlib import Path

import torch
from PIL import Image

from gantk import hookimpl
from gantk.data import DataFormat, PairedTransform, read_image, write_png
from gantk.data.datasets import PairedDataset
from gantk.data.formats import SegmentationFormat
from gantk.data.layout import decode_or_note, pick_split, raise_if_problems
from gantk.testing import DataFormatConformance


class Suffixed(DataFormat):
    """Pairs as NAME_in.png and NAME_out.png in root/train/, root/test/..."""

    paired_targets = "images"

    def detect(self, root):
        return bool(self.splits(root))

    def splits(self, root):
        folders = root.iterdir() if root.is_dir() else []
        return sorted(folder.name for folder in folders if folder.is_dir() and any(folder.glob("*_in.png")))

    def validate(self, root, splits=None):
        problems = [] if self.splits(root) else [f"{root}: no split folder holds NAME_in.png files; add them."]
        for split in self.checked_splits(root, splits):
            for pair in pairs_of(root / split, problems):
                for path in pair:
                    decode_or_note(read_image, path, root, problems)
        return problems

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True,
             flip=True, normalize=True, resize="square"):
        problems = []
        pairs = pairs_of(root / pick_split(root, split, self.splits(root), self.name), problems)
        raise_if_problems(problems, root, self.name)
        if direction == "BtoA":
            pairs = [(b, a) for a, b in pairs]
        return self.dataset(pairs, PairedTransform(load_size, crop_size, augment, flip, normalize, resize))

    def dataset(self, pairs, transform):
        return PairedDataset(pairs, {"A": 3, "B": 3}, transform)


def pairs_of(folder, problems):
    pairs = [(path, path.with_name(path.name.removesuffix("_in.png") + "_out.png")) for path in sorted(folder.glob("*_in.png"))]
    problems += [f"{a}: no {b.name} beside it; add it, or remove {a.name}." for a, b in pairs if not b.is_file()]
    return [(a, b) for a, b in pairs if b.is_file()]


def write_suffixed(root):
    for split in ("train", "test"):
        for i in range(3):
            write_png(torch.rand(3, 32, 32) * 2 - 1, root / split / f"{i}_in.png")
            write_png(torch.rand(3, 32, 32) * 2 - 1, root / split / f"{i}_out.png")


def conformance(format_class, sample=write_suffixed):
    """The kit's test class for ``format_class``, registered under its class name in lower case, on ``sample``'s data."""
    name = format_class.__name__.lower()

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add(name, format_class)

    class Conformance(DataFormatConformance):
        plugins = [Plugin()]

        def write_sample(self, root):
            sample(root)

    Conformance.name = name
    return Conformance
'''


# A sample of images with label masks in images/ and labels/, for the segmentation formats below
WRITE_LABELS = '''
def write_labels(root):
    for i in range(2):
        write_png(torch.rand(3, 32, 32) * 2 - 1, root / "train" / "images" / f"{i}.png")
        write_png(torch.randint(0, 3, (1, 32, 32), dtype=torch.uint8), root / "train" / "labels" / f"{i}.png")
'''


TUPLE_PROBLEMS = '''

class TupleProblems(Suffixed):
    """Reports its problems as a tuple, which gantk takes as it takes a list."""

    def validate(self, root, splits=None):
        return tuple(super().validate(root, splits))


TestTupleProblems = conformance(TupleProblems)
'''


def test_the_kit_passes_a_sound_plugin_format(pytester):
    result, failed = failed_tests(pytester, SUFFIXED + "\nTestSuffixed = conformance(Suffixed)\n" + TUPLE_PROBLEMS)
    assert failed == [] and result.ret == 0


BROKEN_DECLARATIONS = SUFFIXED + WRITE_LABELS + '''
from gantk.data.layout import mask_values_of


class Undocumented(Suffixed):
    pass


class Typo(Suffixed):
    """Declares its targets as 'image'."""

    paired_targets = "image"


class Mislabelled(Suffixed):
    """Declares image pairs as masks."""

    paired_targets = "masks"


class Labels(SegmentationFormat):
    """Images with label masks in images/ and labels/, opened without num_classes."""

    folders = ("images", "labels")

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True,
             normalize=True, resize="square"):
        return super().open(root, split=split, direction=direction, load_size=load_size, crop_size=crop_size,
                            augment=augment, flip=flip, normalize=normalize, resize=resize)


class Distinct(SegmentationFormat):
    """Images with label masks in images/ and labels/, counting as classes the values its masks hold."""

    folders = ("images", "labels")

    def num_classes(self, root, ignore_label=None):
        return len(set().union(*mask_values_of(root.glob("*/labels/*.png")).values()))


def write_background(root):
    """Masks of the background alone."""
    for i in range(2):
        write_png(torch.rand(3, 32, 32) * 2 - 1, root / "train" / "images" / f"{i}.png")
        write_png(torch.zeros(1, 32, 32, dtype=torch.uint8), root / "train" / "labels" / f"{i}.png")


class VoidChannel(SegmentationFormat):
    """Images with label masks in images/ and labels/, declaring a channel more than the classes, for ignored pixels."""

    folders = ("images", "labels")

    def open(self, root, *, num_classes=None, ignore_label=None, **options):
        dataset = super().open(root, num_classes=num_classes, ignore_label=ignore_label, **options)
        dataset.channels[dataset.mask_side] += 1
        return dataset


TestUndocumented = conformance(Undocumented)
TestTypo = conformance(Typo)
TestMislabelled = conformance(Mislabelled)
TestLabels = conformance(Labels, write_labels)
TestDistinct = conformance(Distinct, write_background)
TestVoidChannel = conformance(VoidChannel, write_labels)
'''


def test_the_kit_fails_a_format_without_summary_or_with_targets_it_does_not_give(pytester):
    result, failed = failed_tests(pytester, BROKEN_DECLARATIONS)
    assert failed == ["TestDistinct::test_its_targets_are_what_paired_targets_says",
                      "TestLabels::test_its_targets_are_what_paired_targets_says", "TestMislabelled::test_its_targets_are_what_paired_targets_says",
                      "TestTypo::test_says_what_its_items_pair", "TestUndocumented::test_factory_has_defaults_and_summary",
                      "TestVoidChannel::test_its_targets_are_what_paired_targets_says"]
    result.stdout.fnmatch_lines(["*the factory needs a docstring whose first line summarises it*"])
    result.stdout.fnmatch_lines(["*paired_targets is 'image': say what each item pairs its input with, 'images' or 'masks'*"])
    result.stdout.fnmatch_lines(["*paired_targets is 'masks', and the dataset's num_classes is None with channels?'B'? 3*"])
    result.stdout.fnmatch_lines(["*paired_targets is 'masks', and the dataset's num_classes is 1 with channels?'B'? 1*"])
    result.stdout.fnmatch_lines(["*paired_targets is 'masks', and the dataset's num_classes is 3 with channels?'B'? 4*"])
    result.stdout.fnmatch_lines(["*data format 'labels' has no option 'num_classes'*(validation and gantk eval open mask data with "
                                 "num_classes*"])


BROKEN_LAYOUTS = SUFFIXED + '''

class Blind(Suffixed):
    """Looks for training/ folders, which the layout does not have."""

    def detect(self, root):
        return (root / "training").is_dir()


class Tupled(Suffixed):
    """Gives its splits as a tuple."""

    def splits(self, root):
        return tuple(super().splits(root))


class Greedy(Suffixed):
    """Claims every folder with subfolders."""

    def detect(self, root):
        return root.is_dir() and any(child.is_dir() for child in root.iterdir())


class Shallow(Suffixed):
    """Looks into the subfolders of whatever it is given."""

    def detect(self, root):
        return any(any(child.glob("*_in.png")) for child in root.iterdir())


class Hasty(Suffixed):
    """Hints from the first entry of a folder, which an empty one lacks."""

    def near_miss_hints(self, root):
        first = sorted(root.iterdir())[0]
        return [f"{first}: rename it train/."] if first.is_dir() and first.name != "train" else []


class Fussy(Suffixed):
    """Gives None when it finds no problem."""

    def validate(self, root, splits=None):
        return super().validate(root, splits) or None


class TrainOnly(Suffixed):
    """Opens train/ whatever the split asked for."""

    def open(self, root, *, split="train", **options):
        return super().open(root, split="train", **options)


class HalfListed(Suffixed):
    """Lists a split's inputs only."""

    def split_files(self, root, split):
        return set((root / split).glob("*_in.png"))


class Unchecked(Suffixed):
    """validate as the worked plugin first had it: partners only."""

    def validate(self, root, splits=None):
        problems = []
        for split in self.checked_splits(root, splits):
            pairs_of(root / split, problems)
        return problems


class PilRead(Suffixed):
    """Reads its files with PIL."""

    def dataset(self, pairs, transform):
        return PilPairs(pairs, {"A": 3, "B": 3}, transform)


class PilPairs(PairedDataset):
    def load(self, index, generator):
        Image.open(self.files["A"][index]).load()
        return super().load(index, generator)


TestBlind = conformance(Blind)
TestTupled = conformance(Tupled)
TestGreedy = conformance(Greedy)
TestShallow = conformance(Shallow)
TestHasty = conformance(Hasty)
TestFussy = conformance(Fussy)
TestTrainOnly = conformance(TrainOnly)
TestHalfListed = conformance(HalfListed)
TestUnchecked = conformance(Unchecked)
TestPilRead = conformance(PilRead)
'''


def test_the_kit_fails_a_format_that_misreads_layouts_or_reports_too_little(pytester):
    result, failed = failed_tests(pytester, BROKEN_LAYOUTS)
    assert failed == [
        "TestBlind::test_detects_its_sample", "TestFussy::test_its_sample_passes_the_data_check",
        "TestGreedy::test_leaves_other_layouts_to_their_formats", "TestHalfListed::test_split_files_are_the_files_its_split_opens",
        "TestHasty::test_leaves_other_layouts_to_their_formats", "TestPilRead::test_an_unreadable_file_is_named",
        "TestShallow::test_leaves_other_layouts_to_their_formats", "TestTrainOnly::test_a_split_it_lacks_is_an_error",
        "TestTrainOnly::test_its_splits_open_their_own_files", "TestTupled::test_its_sample_has_a_split_to_train_on", "TestUnchecked::test_an_empty_folder_is_reported",
        "TestUnchecked::test_an_unreadable_file_is_named",
    ]
    result.stdout.fnmatch_lines(["*detect() is False for the sample write_sample wrote*"])
    result.stdout.fnmatch_lines(["*validate() of the sound sample gave None, not an empty list*"])
    result.stdout.fnmatch_lines(["*others/paired (paired data) is detected as *matches several formats: greedy, paired*detect() "
                                 "claims what is not laid out as its format*"])
    result.stdout.fnmatch_lines(["*telling the format of */empty fails: IndexError: *; near_miss_hints() runs on every folder*"])
    result.stdout.fnmatch_lines(["*detect() fails on */single/0.png, which is left to the other formats: data format 'shallow' "
                                 "*failed to check*NotADirectoryError*"])
    result.stdout.fnmatch_lines(["*split_files(root, 'test') lists*and the split opens*"])
    result.stdout.fnmatch_lines(["*reading 0_in.png raises UnidentifiedImageError: *; read files with gantk.data.read_image*"])
    result.stdout.fnmatch_lines(["*split 'absent', which the sample lacks (its splits: test, train), opens as 3 items*"])
    result.stdout.fnmatch_lines(["*splits() of the sample gave ('test', 'train'): expected a list of split names*"])
    result.stdout.fnmatch_lines(["*splits test and train open the same 6 files: open(split=...) serves the files of the split asked for*"])
    result.stdout.fnmatch_lines(["*validate() of an empty folder gave ??: gantk data check would call it sound*"])
    result.stdout.fnmatch_lines(["*validate() does not name 0_in.png, which no longer decodes*"])


BROKEN_ITEMS = SUFFIXED + '''

class Uncropped(Suffixed):
    """Resizes to the load size and crops nothing."""

    def open(self, root, *, load_size=286, crop_size=256, **options):
        return super().open(root, load_size=load_size, crop_size=load_size, **options)


class Restless(Suffixed):
    """Draws its crops and flips from torch's global generator."""

    def dataset(self, pairs, transform):
        return RestlessPairs(pairs, {"A": 3, "B": 3}, transform)


class RestlessPairs(PairedDataset):
    def load(self, index, generator):
        return super().load(index, torch.default_generator)


class Fixed(Suffixed):
    """Draws its crops and flips from one fixed seed, whatever the item's."""

    def dataset(self, pairs, transform):
        return FixedPairs(pairs, {"A": 3, "B": 3}, transform)


class FixedPairs(PairedDataset):
    def load(self, index, generator):
        return super().load(index, torch.Generator().manual_seed(0))


class AlwaysAugmented(Suffixed):
    """Crops and flips at random whatever augment says."""

    def open(self, root, *, augment=True, **options):
        return super().open(root, augment=True, **options)


class AlwaysFlipped(Suffixed):
    """Flips at random whatever flip says."""

    def open(self, root, *, flip=True, **options):
        return super().open(root, flip=True, **options)


class Squared(Suffixed):
    """Takes resize and resizes to squares whatever it says."""

    def open(self, root, *, resize="square", **options):
        return super().open(root, resize="square", **options)


class OneWay(Suffixed):
    """Serves A as the input whatever the direction."""

    def open(self, root, *, direction="AtoB", **options):
        return super().open(root, **options)


class HalfSwapped(Suffixed):
    """For BtoA, serves the targets as the inputs and leaves the targets as they are."""

    def open(self, root, *, direction="AtoB", **options):
        dataset = super().open(root, **options)
        return self.dataset([(b, b) for b in dataset.files["B"]], dataset.transform) if direction == "BtoA" else dataset


class OtherHalfSwapped(Suffixed):
    """For BtoA, serves the inputs as the targets and leaves the inputs as they are."""

    def open(self, root, *, direction="AtoB", **options):
        dataset = super().open(root, **options)
        return self.dataset([(a, a) for a in dataset.files["A"]], dataset.transform) if direction == "BtoA" else dataset


class FloatChannels(Suffixed):
    """Counts its channels as floats."""

    def dataset(self, pairs, transform):
        return PairedDataset(pairs, {"A": 3.0, "B": 3.0}, transform)


class Annotated(Suffixed):
    """Gives each item a caption, None where it has none."""

    def dataset(self, pairs, transform):
        return AnnotatedPairs(pairs, {"A": 3, "B": 3}, transform)


class AnnotatedPairs(PairedDataset):
    def load(self, index, generator):
        return {**super().load(index, generator), "caption": None}


class FloatPixels(Suffixed):
    """Gives unnormalised images as floats 0..255."""

    def dataset(self, pairs, transform):
        return PairedDataset(pairs, {"A": 3, "B": 3}, FloatTransform(transform.load_size, transform.crop_size, transform.augment,
                                                                      transform.flip, transform.normalize, transform.resize))


class FloatTransform(PairedTransform):
    def __call__(self, tensors, generator):
        return {side: value.float() for side, value in super().__call__(tensors, generator).items()}


TestUncropped = conformance(Uncropped)
TestRestless = conformance(Restless)
TestFixed = conformance(Fixed)
TestAlwaysAugmented = conformance(AlwaysAugmented)
TestAlwaysFlipped = conformance(AlwaysFlipped)
TestSquared = conformance(Squared)
TestOneWay = conformance(OneWay)
TestHalfSwapped = conformance(HalfSwapped)
TestOtherHalfSwapped = conformance(OtherHalfSwapped)
TestFloatChannels = conformance(FloatChannels)
TestAnnotated = conformance(Annotated)
TestFloatPixels = conformance(FloatPixels)
'''


def test_the_kit_fails_a_format_whose_items_training_cannot_read(pytester):
    result, failed = failed_tests(pytester, BROKEN_ITEMS)
    assert failed == [
        "TestAlwaysAugmented::test_without_random_choices_an_item_is_the_same_for_every_seed",
        "TestAlwaysFlipped::test_without_random_choices_an_item_is_the_same_for_every_seed",
        "TestAnnotated::test_training_items_are_images_and_targets_at_the_crop_size",
        "TestFixed::test_other_seeds_give_other_crops_and_flips",
        "TestFloatChannels::test_training_items_are_images_and_targets_at_the_crop_size",
        "TestFloatPixels::test_unnormalised_items_scale_to_the_normalised_ones",
        "TestHalfSwapped::test_direction_btoa_swaps_the_sides", "TestOneWay::test_direction_btoa_swaps_the_sides",
        "TestOtherHalfSwapped::test_direction_btoa_swaps_the_sides",
        "TestRestless::test_an_item_is_the_same_for_the_same_index_and_seed",
        "TestSquared::test_resize_none_keeps_each_image_its_size",
        "TestUncropped::test_training_items_are_images_and_targets_at_the_crop_size",
    ]
    result.stdout.fnmatch_lines(["*item 0, A: the normalize=False item, scaled to ?-1, 1? where it is uint8, is not the normalised item*"])
    result.stdout.fnmatch_lines(["*item 0 of direction 'BtoA' is not item 0 of 'AtoB' with A and B swapped: its A is not AtoB's B "
                                 "and its B is not AtoB's A*"])
    result.stdout.fnmatch_lines(["*item 0 of direction 'BtoA' is not item 0 of 'AtoB' with A and B swapped: its A is not AtoB's B"])
    result.stdout.fnmatch_lines(["*item 0 of direction 'BtoA' is not item 0 of 'AtoB' with A and B swapped: its B is not AtoB's A"])
    result.stdout.fnmatch_lines(["*channels is {'A': 3.0, 'B': 3.0}: expected the channel count of each side*"])
    result.stdout.fnmatch_lines(["*items do not batch as training batches them (default_collate): TypeError: *NoneType*; give every "
                                 "item the same keys, with tensors, numbers or strings (no None)*"])
    result.stdout.fnmatch_lines(["*item 0 is the same for the seeds 0 to 7, with crops and flips asked for (augment=True)*"])
    result.stdout.fnmatch_lines(["*item 0 opened with augment=False differs between the seeds 0 and *"])
    result.stdout.fnmatch_lines(["*item 0 opened with flip=False, load_size=32 differs between the seeds 0 and *"])
    result.stdout.fnmatch_lines(["*item 0 opened with resize='none' is (96, 96), and its image (32, 32)*"])
    result.stdout.fnmatch_lines(["*item (0, 7) differs between two openings in A, B: draw every random choice from the generator*"])
    result.stdout.fnmatch_lines(["*item 0 (training): A is an image of 3 channel(s)*expected float32 of shape (3, 32, 32), got "
                                 "torch.float32 of shape (3, 36, 36)*"])


def test_items_differ_by_the_dtype_and_length_of_their_values_their_plain_values_and_their_keys():
    from gantk.testing import _differing

    ids = torch.arange(4)
    item = {"A": ids, "B": [ids, ids], "A_path": "0.png", "notes": {"k": 1}}
    assert _differing(item, dict(item)) == []
    assert _differing(item, {**item, "A": ids.float()}) == ["A"]  # equal values of another dtype
    assert _differing(item, {**item, "B": [ids]}) == ["B"]  # a list cut short
    assert _differing(item, {**item, "A_path": "1.png"}) == ["A_path"]
    assert _differing(item, {**item, "notes": {"k": 1, "j": 2}}) == ["notes"]
    assert _differing(item, {**item, "more": 1}) == ["more"]  # a key of the second item alone


def test_an_item_is_checked_for_its_keys_dtypes_ranges_class_ids_and_files(tmp_path):
    from types import SimpleNamespace

    from gantk.testing import _check_item

    path = tmp_path / "0.png"
    path.touch()
    dataset = SimpleNamespace(channels={"A": 3, "B": 2}, num_classes=2, input_classes=None, ignore_label=None)
    sound = {"A": torch.zeros(3, 4, 4), "B": torch.ones(4, 4, dtype=torch.int64), "A_path": str(path), "B_path": str(path)}
    _check_item(sound, dataset, 4, "item")
    for change, said in [
        ({"B_path": None}, "item lacks B_path"),
        ({"A": torch.full((3, 4, 4), 2.0)}, r"item: A holds values 2.0..2.0; images are in \[-1, 1\]"),
        ({"B": torch.ones(4, 4, dtype=torch.int32)}, "item: B holds class ids, expected int64"),
        ({"B": torch.full((4, 4), 2)}, r"item: B holds ids 2..2, outside 0..1"),
        ({"A_path": str(tmp_path / "gone.png")}, "item: A_path is .*gone.png', expected the path of the file read"),
    ]:
        item = {key: value for key, value in {**sound, **change}.items() if value is not None}
        with pytest.raises(AssertionError, match=said):
            _check_item(item, dataset, 4, "item")


BROKEN_CONTRACT = SUFFIXED + WRITE_LABELS + '''
from gantk.data.datasets import PairedDataset
from gantk.errors import DataError


class Braced(Suffixed):
    """Says how to split with a brace gantk train does not fill."""

    how_to_split = "move the held-out pairs into {root}/{split}/"


class Narrow(Suffixed):
    """Checks the whole dataset, and nothing when given the splits to check."""

    def validate(self, root, splits=None):
        return super().validate(root) if splits is None else [f"{root}: cannot check the splits {splits}"]


class Unlabelled(SegmentationFormat):
    """Images with label masks in images/ and labels/, declared as image targets."""

    folders = ("images", "labels")
    paired_targets = "images"


class Unselective(Suffixed):
    """Checks every split whatever splits it is given."""

    def validate(self, root, splits=None):
        return super().validate(root)


class PathReported(Suffixed):
    """Reports a folder without splits by its path alone."""

    def validate(self, root, splits=None):
        return super().validate(root, splits) if self.splits(root) else [root]


class Vague(Suffixed):
    """Says that a file cannot be read without naming it."""

    def dataset(self, pairs, transform):
        return VaguePairs(pairs, {"A": 3, "B": 3}, transform)


class VaguePairs(PairedDataset):
    def load(self, index, generator):
        try:
            return super().load(index, generator)
        except DataError:
            raise DataError("an image of the dataset cannot be read") from None


class Forgiving(Suffixed):
    """Serves the next pair in place of one that cannot be read."""

    def dataset(self, pairs, transform):
        return ForgivingPairs(pairs, {"A": 3, "B": 3}, transform)


class ForgivingPairs(PairedDataset):
    def load(self, index, generator):
        try:
            return super().load(index, generator)
        except DataError:
            return super().load((index + 1) % len(self), generator)



TestBraced = conformance(Braced)
TestNarrow = conformance(Narrow)
TestUnselective = conformance(Unselective)
TestPathReported = conformance(PathReported)
TestUnlabelled = conformance(Unlabelled, write_labels)
TestVague = conformance(Vague)
TestForgiving = conformance(Forgiving)
'''


def test_the_kit_fails_a_format_that_words_checks_or_reads_its_data_otherwise_than_gantk_does(pytester):
    result, failed = failed_tests(pytester, BROKEN_CONTRACT)
    assert failed == ["TestBraced::test_says_what_its_items_pair", "TestForgiving::test_an_unreadable_file_is_named",
                      "TestNarrow::test_its_sample_passes_the_data_check", "TestNarrow::test_validate_checks_the_splits_it_is_given",
                      "TestPathReported::test_an_empty_folder_is_reported",
                      "TestUnlabelled::test_its_targets_are_what_paired_targets_says",
                      "TestUnselective::test_validate_checks_the_splits_it_is_given", "TestVague::test_an_unreadable_file_is_named"]
    result.stdout.fnmatch_lines(["*how_to_split 'move the held-out pairs into {root}/{split}/' fails as gantk train formats it*"])
    result.stdout.fnmatch_lines(["*validate(root, splits=?'train'?), which gantk train runs, gave*cannot check the splits*"])
    result.stdout.fnmatch_lines(["*validate(root) names 0_in.png, a file of split test that no longer decodes, and validate(root, "
                                 "splits=?'test'?) does not (its problems: *cannot check the splits ?'test'?*"])
    result.stdout.fnmatch_lines(["*validate(root, splits=?'train'?) gives ?'*0_in.png*'? once 0_in.png of split test no longer "
                                 "decodes (?? before): check the splits of self.checked_splits(root, splits) alone*"])
    result.stdout.fnmatch_lines(["*validate() of an empty folder gave ?PosixPath(*)?: report each problem as a string*"])
    result.stdout.fnmatch_lines(["*the dataset has num_classes 3, and paired_targets is 'images', not 'masks'*"])
    result.stdout.fnmatch_lines(["*reading 0_in.png raises an error that does not name it: an image of the dataset cannot be read*"])
    result.stdout.fnmatch_lines(["*0_in.png, which no longer decodes, is read as an item*"])


BROKEN_OPENINGS = SUFFIXED + WRITE_LABELS + '''
from gantk.data.datasets import UnalignedDataset


class Padded(Suffixed):
    """Lists every subfolder as a split, those without pairs too."""

    def detect(self, root):
        return bool(super().splits(root))

    def splits(self, root):
        return sorted(folder.name for folder in root.iterdir() if folder.is_dir()) if self.detect(root) else []


def write_padded(root):
    write_suffixed(root)
    (root / "notes").mkdir()


class RawValidation(Suffixed):
    """Leaves validation items (augment=False) unnormalised."""

    def open(self, root, *, augment=True, normalize=True, **options):
        return super().open(root, augment=augment, normalize=normalize and augment, **options)


class GreyIn(Suffixed):
    """Grey inputs, whose channels stay {'A': 1, 'B': 3} whatever the direction."""

    def dataset(self, pairs, transform):
        return PairedDataset(pairs, {"A": 1, "B": 3}, transform)


def write_grey_in(root):
    for split in ("train", "test"):
        for i in range(3):
            write_png(torch.rand(1, 32, 32) * 2 - 1, root / split / f"{i}_in.png")
            write_png(torch.rand(3, 32, 32) * 2 - 1, root / split / f"{i}_out.png")


class Unmatched(Suffixed):
    """The inputs and the outputs of a split as unpaired sides."""

    paired_targets = None

    def dataset(self, pairs, transform):
        return UnalignedDataset([a for a, _ in pairs], [b for _, b in pairs], {"A": 3, "B": 3}, transform)


class OneSided(Unmatched):
    """Serves the inputs as A whatever the direction."""

    def open(self, root, *, direction="AtoB", **options):
        return super().open(root, **options)


class Pooled(Unmatched):
    """Lists the files of both sides as one list, under 'A|B'."""

    def dataset(self, pairs, transform):
        return PooledSides([a for a, _ in pairs], [b for _, b in pairs], {"A": 3, "B": 3}, transform)


class PooledSides(UnalignedDataset):
    def __init__(self, a_files, b_files, channels, transform):
        super().__init__(a_files, b_files, channels, transform)
        self.sides = self.files
        self.files = {"A|B": a_files + b_files}

    def load(self, index, generator):
        return UnalignedDataset(self.sides["A"], self.sides["B"], self.channels, self.transform).load(index, generator)


class BackgroundIgnored(SegmentationFormat):
    """Images with label masks in images/ and labels/; ignores class 0 when it is given num_classes."""

    folders = ("images", "labels")

    def open(self, root, *, num_classes=None, ignore_label=None, **options):
        ignore_label = 0 if num_classes is not None else ignore_label
        return super().open(root, num_classes=num_classes, ignore_label=ignore_label, **options)


class Lenient(Suffixed):
    """Opens a folder holding no split as no pairs."""

    def open(self, root, **options):
        return super().open(root, **options) if self.splits(root) else self.dataset([], None)


TestPadded = conformance(Padded, write_padded)
TestRawValidation = conformance(RawValidation)
TestGreyIn = conformance(GreyIn, write_grey_in)
TestOneSided = conformance(OneSided)
TestPooled = conformance(Pooled)
TestBackgroundIgnored = conformance(BackgroundIgnored, write_labels)
TestLenient = conformance(Lenient)
'''


def test_the_kit_fails_a_format_whose_splits_sides_or_options_open_other_data_than_they_say(pytester):
    result, failed = failed_tests(pytester, BROKEN_OPENINGS)
    assert failed == [
        "TestBackgroundIgnored::test_its_targets_are_what_paired_targets_says", "TestGreyIn::test_direction_btoa_swaps_the_sides",
        "TestLenient::test_an_empty_folder_is_reported", "TestOneSided::test_direction_btoa_swaps_the_sides",
        "TestPadded::test_its_sample_passes_the_data_check", "TestPooled::test_its_targets_are_what_paired_targets_says",
        "TestRawValidation::test_training_items_are_images_and_targets_at_the_crop_size",
    ]
    result.stdout.fnmatch_lines(["*open() with num_classes=3 reads other items*"])
    result.stdout.fnmatch_lines(["*the pooled dataset lists no two sides of unpaired images to score*(validation and gantk eval "
                                 "score unpaired data by each side's images)*"])
    result.stdout.fnmatch_lines(["*direction 'BtoA' gives channels {'A': 1, 'B': 3}, expected {'A': 3, 'B': 1}*"])
    result.stdout.fnmatch_lines(["*an empty folder opens as 0 items: raise DataError*"])
    result.stdout.fnmatch_lines(["*direction 'BtoA' serves other files than AtoB's with the sides swapped*"])
    result.stdout.fnmatch_lines(["*splits notes of splits() open with no items*"])
    result.stdout.fnmatch_lines(["*item 0 (validation): A is an image of 3 channel(s)*got torch.uint8*"])
