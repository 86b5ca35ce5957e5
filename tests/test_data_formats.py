"""Every data format opens with the right shapes, channels and ranges; detection and direction."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantk import hookimpl, load_components
from gantk.data import DataFormat, check_dataset, detect_format, open_dataset
from gantk.data.formats import AlignedFormat
from gantk.data.io import write_png
from gantk.errors import DataError, GantkWarning, OptionError, UnknownNameError
from helpers import smooth_image, write_paired, write_segmentation, write_unaligned

OBJECTS_SEG = Path(__file__).resolve().parents[2] / "shared" / "data" / "objects-seg"


def png(path: Path, image: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(image, path)


def noise(channels: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (channels, height, width), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def make_aligned(root: Path, splits=("train", "test"), height=20, width=40) -> Path:
    for split in splits:
        for i in range(3):
            png(root / split / f"{i}.png", noise(3, height, width, i))
    return root


def make_paired(root: Path, split: str = "train") -> Path:
    for i in range(3):
        png(root / split / "A" / f"{i:02d}.png", noise(1, 24, 30, i))
        png(root / split / "B" / f"{i:02d}.png", noise(3, 24, 30, i + 10))
    return root


def make_segmentation(root: Path, split: str = "train", values=(0, 255)) -> Path:
    for i in range(3):
        png(root / split / "images" / f"{i}.png", noise(3, 24, 24, i))
        ids = torch.tensor(values, dtype=torch.uint8)[torch.randint(0, len(values), (1, 24, 24))]
        png(root / split / "masks" / f"{i}.png", ids)
    return root


def make_unaligned(root: Path) -> Path:
    for i in range(2):
        png(root / "trainA" / f"a{i}.png", noise(3, 20, 26, i))
    for i in range(5):
        png(root / "trainB" / f"b{i}.png", noise(3, 32, 24, i))
    png(root / "testA" / "a.png", noise(3, 20, 20))
    png(root / "testB" / "b.png", noise(3, 20, 20))
    return root


def make_single(root: Path) -> Path:
    for i in range(2):
        png(root / f"{i}.png", noise(3, 30, 20, i))
    return root


MAKERS = {
    "aligned": make_aligned,
    "paired": make_paired,
    "segmentation": make_segmentation,
    "unaligned": make_unaligned,
    "single": make_single,
}


@pytest.mark.parametrize(
    "name, length, channels, num_classes",
    [
        ("aligned", 3, {"A": 3, "B": 3}, None),
        ("paired", 3, {"A": 1, "B": 3}, None),
        ("segmentation", 3, {"A": 3, "B": 2}, 2),
        ("unaligned", 5, {"A": 3, "B": 3}, None),
        ("single", 2, {"A": 3}, None),
    ],
)
def test_each_format_opens_with_shapes_channels_and_ranges(tmp_path, name, length, channels, num_classes):
    root = MAKERS[name](tmp_path / name)
    assert detect_format(root) == name
    ds = open_dataset(root, load_size=18, crop_size=16)
    assert (ds.format, len(ds), ds.channels, ds.num_classes) == (name, length, channels, num_classes)
    item = ds[(1, 7)]
    assert item["A"].shape == (channels["A"], 16, 16) and item["A"].dtype == torch.float32
    assert -1 <= item["A"].min() and item["A"].max() <= 1
    assert Path(item["A_path"]).is_file()
    if name == "single":
        assert set(item) == {"A", "A_path"}
    elif name == "segmentation":
        assert item["B"].shape == (16, 16) and item["B"].dtype == torch.int64
        assert set(item["B"].unique().tolist()) <= {0, 1}
    else:
        assert item["B"].shape == (channels["B"], 16, 16) and -1 <= item["B"].min() <= item["B"].max() <= 1
        assert Path(item["B_path"]).is_file()


def test_no_resize_keeps_original_size(tmp_path):
    ds = open_dataset(make_aligned(tmp_path), load_size=None, crop_size=None, augment=False)
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 20, 20)


def test_flat_layout_serves_any_split(tmp_path):
    png(tmp_path / "A" / "x.png", noise(3, 8, 8))
    png(tmp_path / "B" / "x.png", noise(3, 8, 8))
    assert len(open_dataset(tmp_path, split="test", crop_size=8, load_size=8)) == 1


def test_missing_split_lists_the_splits(tmp_path):
    make_paired(tmp_path, "train")
    with pytest.raises(DataError, match=r"no split 'val' \(found: train\)"):
        open_dataset(tmp_path, split="val")


def test_single_image_file(tmp_path):
    png(tmp_path / "one.png", noise(1, 10, 12))
    ds = open_dataset(tmp_path / "one.png", format="single", augment=False, load_size=None, crop_size=None)
    assert len(ds) == 1 and ds.channels == {"A": 1} and ds[0]["A"].shape == (1, 10, 12)


def test_a_file_that_is_no_dataset_is_named_as_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("not images")
    with pytest.raises(DataError, match=r"(?s)notes.txt is a file that no format reads: give the folder that holds the images, .*\n  aligned: "):
        detect_format(tmp_path / "notes.txt")


def test_detection_without_match_names_contents_and_formats(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError) as info:
        detect_format(tmp_path)
    message = str(info.value)
    assert "stuff/" in message and "--data-format" in message and "Hints" not in message
    for name in MAKERS:
        assert f"  {name}:" in message


def test_split_folders_of_partly_aligned_images_are_counted_and_hinted(tmp_path):
    png(tmp_path / "train" / "a.png", noise(3, 8, 16))
    png(tmp_path / "train" / "b.png", noise(3, 8, 10))
    message = detection_error(tmp_path)
    assert "holds folders train/; 0 image file(s) directly, 2 in train/," in message
    assert "train/: 1 of 2 images are twice as wide as high (A|B side by side); " in message
    assert "pass --data-format aligned" in message


def detection_error(root: Path) -> str:
    with pytest.raises(DataError) as info:
        detect_format(root)
    return str(info.value)


@pytest.mark.parametrize(
    "folders, hints",
    [
        (
            ["train/A", "test/B"],
            ["train/A/ has no partner train/B/ (paired format)", "test/B/ has no partner test/A/ (paired format)"],
        ),
        (["trainA"], ["trainA/ has no partner trainB/ (unaligned format)"]),
        (["images"], ["images/ has no partner masks/ (segmentation format)"]),
        (["masks"], ["masks/ has no partner images/ (segmentation format)"]),
    ],
)
def test_a_folder_without_its_partner_gets_a_hint(tmp_path, folders, hints):
    for folder in folders:
        png(tmp_path / folder / "0.png", noise(1, 8, 8))
    listed = "".join(f"  - {hint}; add it.\n" for hint in hints)
    assert f"Hints:\n{listed}Known formats:" in detection_error(tmp_path)


def test_a_lone_folder_s_hint_names_the_one_folder_of_images_beside_it(tmp_path):
    for folder in ("images", "labels", "train/A", "train/gt"):
        png(tmp_path / folder / "0.png", noise(1, 8, 8))
    message = detection_error(tmp_path)
    assert "images/ has no partner masks/ (segmentation format); if labels/ holds the partners, rename it masks/; else add it." in message
    assert "train/A/ has no partner train/B/ (paired format); if train/gt/ holds the partners, rename it B/; else add it." in message
    unpaired = tmp_path / "unpaired"
    for folder in ("trainA", "testA"):
        png(unpaired / folder / "0.png", noise(1, 8, 8))
    assert "trainA/ has no partner trainB/ (unaligned format); add it." in detection_error(unpaired)  # testA/ has a partner of its own


def test_two_folders_of_images_under_other_names_get_a_hint_naming_the_layouts(tmp_path):
    for folder in ("img", "gt"):
        png(tmp_path / folder / "0.png", noise(1, 8, 8))
    assert ("Hints:\n  - gt/ and img/ hold images: for pairs, name them A/ and B/ (the inputs in A/), or images/ and masks/ "
            "for images with label masks; for unpaired sets, trainA/ and trainB/.\n") in detection_error(tmp_path)
    png(tmp_path / "more" / "0.png", noise(1, 8, 8))
    assert "Hints" not in detection_error(tmp_path)  # three folders: no guess at which two go together


def test_a_parent_folder_gets_a_hint_for_each_dataset_in_it(tmp_path):
    make_paired(tmp_path / "pairs")
    make_aligned(tmp_path / "facades")
    make_single(tmp_path / "photos")  # any folder of images is single: not worth a hint
    message = detection_error(tmp_path)
    assert f"  - facades/ is a dataset itself (aligned format): pass {tmp_path / 'facades'} instead.\n" in message
    assert f"  - pairs/ is a dataset itself (paired format): pass {tmp_path / 'pairs'} instead.\n" in message
    assert "photos/ is" not in message


def test_ambiguous_detection_names_the_candidates(tmp_path):
    make_aligned(tmp_path, splits=("train",))
    make_paired(tmp_path, "train")
    with pytest.raises(DataError, match=r"(?s)several formats: aligned, paired.*--data-format"):
        open_dataset(tmp_path)
    assert open_dataset(tmp_path, format="aligned", crop_size=8, load_size=8).channels == {"A": 3, "B": 3}


def test_single_is_detected_only_when_nothing_else_matches(tmp_path):
    for i in range(2):
        png(tmp_path / "pairs" / f"{i}.png", noise(3, 10, 20, i))  # side by side: aligned
        png(tmp_path / "photos" / f"{i}.png", noise(3, 10, 10, i))
    assert detect_format(tmp_path / "pairs") == "aligned"
    assert detect_format(tmp_path / "photos") == "single"


def test_a_format_whose_detect_fails_is_named_and_left_out(tmp_path):
    class Crashing(AlignedFormat):
        """Reads a file that most datasets lack."""

        def detect(self, root):
            return (root / "meta.json").read_text() == "crashing"

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add("crashing", Crashing)

    components = load_components(autoload=False, plugins=[Plugin()])
    make_paired(tmp_path / "data")
    with pytest.warns(GantkWarning, match=r"data format 'crashing' \(plugin '.*'\) failed to check .* left out: FileNotFoundError"):
        assert detect_format(tmp_path / "data", components=components) == "paired"

    def refused_a_file_of_its_own(self, root):  # not the data's: the format's fault, as any other failure
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "plugin-cache"))

    Crashing.detect = refused_a_file_of_its_own
    with pytest.warns(GantkWarning, match=r"data format 'crashing' .* left out: PermissionError"):
        assert detect_format(tmp_path / "data", components=components) == "paired"


def test_a_folder_of_the_data_this_user_may_not_read_is_an_error_not_a_failing_format(tmp_path, monkeypatch):
    make_paired(make_paired(tmp_path), "test")
    blocked = tmp_path / "test"  # as chmod 000 leaves it: listed and looked into, both refused

    def refusing(method):
        def call(path, *args, **kwargs):
            if path.parent == blocked or (method is Path.iterdir and path == blocked):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return method(path, *args, **kwargs)
        return call

    monkeypatch.setattr(Path, "is_dir", refusing(Path.is_dir))
    monkeypatch.setattr(Path, "iterdir", refusing(Path.iterdir))
    with warnings.catch_warnings():
        warnings.simplefilter("error", GantkWarning)  # no format is blamed for it
        with pytest.raises(PermissionError) as info:
            detect_format(tmp_path)
    assert Path(info.value.filename).is_relative_to(blocked)


def test_missing_root_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    with pytest.raises(UnknownNameError, match="Did you mean 'paired'"):
        open_dataset(make_paired(tmp_path), format="pared")


def test_bad_options(tmp_path):
    root = make_paired(tmp_path)
    with pytest.raises(OptionError, match="direction"):
        open_dataset(root, direction="sideways")
    with pytest.raises(OptionError, match="cannot exceed"):
        open_dataset(root, load_size=16, crop_size=32)
    with pytest.raises(OptionError, match="no option 'num_classes'"):
        open_dataset(root, num_classes=3)


def test_aligned_halves_and_direction_swap(tmp_path):
    left = torch.zeros(3, 8, 8, dtype=torch.uint8)
    right = torch.full((3, 8, 8), 255, dtype=torch.uint8)
    png(tmp_path / "train" / "x.png", torch.cat([left, right], dim=-1))
    kwargs = dict(load_size=None, crop_size=None, augment=False)
    forward = open_dataset(tmp_path, **kwargs)[0]
    backward = open_dataset(tmp_path, direction="BtoA", **kwargs)[0]
    assert forward["A"].max() == -1 and forward["B"].min() == 1
    assert torch.equal(backward["A"], forward["B"]) and torch.equal(backward["B"], forward["A"])


def test_paired_direction_swaps_files_and_channels(tmp_path):
    root = make_paired(tmp_path)
    forward = open_dataset(root, crop_size=16, load_size=16)
    backward = open_dataset(root, direction="BtoA", crop_size=16, load_size=16)
    assert backward.channels == {"A": 3, "B": 1}
    assert backward[(0, 1)]["A_path"] == forward[(0, 1)]["B_path"]
    assert torch.equal(backward[(0, 1)]["A"], forward[(0, 1)]["B"])


def test_unaligned_direction_swaps_sets(tmp_path):
    backward = open_dataset(make_unaligned(tmp_path), direction="BtoA", crop_size=16, load_size=16)
    assert "trainB" in backward[(0, 0)]["A_path"] and "trainA" in backward[(0, 0)]["B_path"]


def test_segmentation_direction_serves_masks_as_inputs(tmp_path):
    root = make_segmentation(tmp_path)
    forward = open_dataset(root, crop_size=16, load_size=20)
    backward = open_dataset(root, direction="BtoA", crop_size=16, load_size=20)
    assert backward.channels == {"A": 2, "B": forward.channels["A"]}
    assert (backward.input_classes, backward.num_classes) == (2, None) and forward.input_classes is None
    ahead, back = forward[(0, 7)], backward[(0, 7)]  # the same seed: the same crop and flip
    assert back["A"].dtype == torch.int64 and torch.equal(back["A"], ahead["B"]) and torch.equal(back["B"], ahead["A"])
    assert (back["A_path"], back["B_path"]) == (ahead["B_path"], ahead["A_path"])


def test_paired_extensions_may_differ(tmp_path):
    png(tmp_path / "A" / "x.png", noise(3, 8, 8))
    (tmp_path / "B").mkdir()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "B" / "x.jpg")
    item = open_dataset(tmp_path, augment=False, load_size=None, crop_size=None)[0]
    assert item["B_path"].endswith("x.jpg") and item["B"].shape == (3, 8, 8)


def test_channel_inference_mixed_rgba_palette(tmp_path):
    png(tmp_path / "A" / "gray.png", noise(1, 8, 8))
    png(tmp_path / "A" / "rgb.png", noise(3, 8, 8))
    (tmp_path / "B").mkdir()
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(tmp_path / "B" / "gray.png")
    Image.new("RGBA", (8, 8), (1, 2, 3, 4)).save(tmp_path / "B" / "rgb.png")
    ds = open_dataset(tmp_path, augment=False, load_size=None, crop_size=None)
    assert ds.channels == {"A": 3, "B": 4}
    assert all(ds[i]["A"].shape[0] == 3 and ds[i]["B"].shape[0] == 4 for i in range(2))

    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "B" / "rgb.png")
    Image.new("L", (8, 8), 9).save(tmp_path / "B" / "gray.png")
    ds = open_dataset(tmp_path, augment=False, load_size=None, crop_size=None)
    assert ds.channels == {"A": 3, "B": 3}
    red = ds[1]["B"]
    assert red[0].min() == 1 and red[1].max() == -1


def test_segmentation_class_ids_and_palette_masks(tmp_path):
    root = make_segmentation(tmp_path, values=(0, 1, 2, 4))
    ds = open_dataset(root, crop_size=16, load_size=18)
    assert ds.num_classes == ds.channels["B"] == 5
    assert set(ds[(0, 3)]["B"].unique().tolist()) <= {0, 1, 2, 4}

    mask = Image.new("P", (24, 24), 3)
    mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0])
    mask.save(root / "train" / "masks" / "0.png")
    ds = open_dataset(root, augment=False, load_size=None, crop_size=None)
    assert ds[0]["B"].unique().tolist() == [3]
    assert open_dataset(root, num_classes=9).num_classes == 9


def test_unaligned_b_is_drawn_from_the_seed(tmp_path):
    ds = open_dataset(make_unaligned(tmp_path), crop_size=16, load_size=16)
    assert ds[(3, 5)]["A_path"] == ds[(1, 5)]["A_path"]  # A cycles: index % |A|
    assert ds[(0, 5)]["B_path"] == ds[(0, 5)]["B_path"]
    assert len({ds[(0, seed)]["B_path"] for seed in range(30)}) > 1
    assert len(open_dataset(tmp_path, split="test", crop_size=16, load_size=16)) == 1


@pytest.mark.skipif(not OBJECTS_SEG.is_dir(), reason=f"shared data set {OBJECTS_SEG} is not available")
def test_objects_seg_opens_as_binary_segmentation():
    assert detect_format(OBJECTS_SEG) == "segmentation"
    for split, count in (("train", 400), ("test", 100)):
        ds = open_dataset(OBJECTS_SEG, split=split, load_size=64, crop_size=48)
        assert (len(ds), ds.num_classes, ds.channels) == (count, 2, {"A": 3, "B": 2})
    item = ds[(0, 0)]
    assert item["A"].shape == (3, 48, 48) and item["B"].shape == (48, 48)
    assert set(item["B"].unique().tolist()) <= {0, 1}


def test_every_registered_format_honours_the_contract(tmp_path):
    registry = load_components(autoload=False).registry("data_format")
    assert {"aligned", "paired", "segmentation", "unaligned", "single"} <= set(registry.names())
    for name in registry.names():
        data_format = registry.create(name)
        assert isinstance(data_format, DataFormat) and data_format.name == name and data_format.summary
        assert data_format.detect(tmp_path) is False
        assert data_format.validate(tmp_path)


class PairsFolderFormat(AlignedFormat):
    """A|B pairs stored in folders named pairs/ (a plugin's format)."""

    name = "pairs-folder"

    def detect(self, root):
        return (root / "pairs").is_dir()

    def splits(self, root):
        return ["pairs"]


class FormatPlugin:
    @hookimpl
    def gantk_register_data_formats(self, registry):
        registry.add(PairsFolderFormat.name, PairsFolderFormat)


def test_plugins_can_add_formats(tmp_path):
    components = load_components(autoload=False, plugins=[FormatPlugin()])
    make_aligned(tmp_path, splits=("pairs",))
    assert detect_format(tmp_path, components=components) == "pairs-folder"
    ds = open_dataset(tmp_path, split="pairs", components=components, crop_size=8, load_size=8)
    assert ds.format == "pairs-folder" and len(ds) == 3


class CarelessFormat(PairsFolderFormat):
    """A plugin's format whose open() and validate() return what they must not."""

    name = "careless"

    def open(self, root, **options):
        return [1, 2, 3]

    def validate(self, root, splits=None):
        return None


class CarelessPlugin:
    @hookimpl
    def gantk_register_data_formats(self, registry):
        registry.add(CarelessFormat.name, CarelessFormat)


def test_a_format_returning_no_dataset_or_no_list_of_problems_is_named(tmp_path):
    components = load_components(autoload=False, plugins=[CarelessPlugin()])
    make_aligned(tmp_path, splits=("pairs",))
    with pytest.raises(OptionError, match=r"data format 'careless' \(plugin '.*'\) opened .* as a list, not a "
                                          r"gantk.data.GanDataset: its open\(\) must return one"):
        open_dataset(tmp_path, format="careless", split="pairs", components=components)
    with pytest.raises(OptionError, match=r"data format 'careless' \(plugin '.*'\) checked .* and returned a NoneType, not a "
                                          r"list of problems"):
        check_dataset(tmp_path, "careless", components)


def test_a_format_without_a_docstring_has_no_summary_rather_than_its_base_class_text():
    class Bare(PairsFolderFormat):
        pass

    Bare.__doc__ = None
    assert Bare().summary == "" and PairsFolderFormat().summary.startswith("A|B pairs stored in folders")


class RenamedFormatPlugin:
    @hookimpl
    def gantk_register_data_formats(self, registry):
        registry.add("renamed", PairsFolderFormat)  # its class says "pairs-folder"


def test_a_format_goes_by_the_name_it_is_registered_under(tmp_path):
    components = load_components(autoload=False, plugins=[RenamedFormatPlugin()])
    make_aligned(tmp_path, splits=("pairs",))
    assert detect_format(tmp_path, components=components) == "renamed"
    ds = open_dataset(tmp_path, format="renamed", split="pairs", components=components, crop_size=8, load_size=8)
    assert ds.format == "renamed"


def test_split_folders_of_square_images_are_not_taken_for_aligned(tmp_path):
    make_aligned(tmp_path / "aligned")
    assert detect_format(tmp_path / "aligned") == "aligned"
    for split in ("train", "test"):
        write_png(torch.zeros(3, 20, 20, dtype=torch.uint8), tmp_path / "square" / split / "0.png")
    assert not AlignedFormat().detect(tmp_path / "square")


def test_when_two_formats_match_the_one_holding_the_split_is_chosen(tmp_path):
    make_aligned(tmp_path, splits=("train",))
    make_paired(tmp_path, split="test")
    assert detect_format(tmp_path, "train") == "aligned" and detect_format(tmp_path, "test") == "paired"
    with pytest.raises(DataError, match="matches several formats: aligned, paired"):
        detect_format(tmp_path, None)
    flat = make_paired(make_aligned(tmp_path / "flat", splits=("",)), split="train")  # A|B images in the root serve every split
    assert detect_format(flat, "test") == "aligned"


def test_single_points_to_a_subfolder_with_images_and_names_hidden_files(tmp_path):
    png(tmp_path / "test" / "A" / "x.png", noise(3, 8, 8))
    png(tmp_path / ".hidden.png", noise(3, 8, 8))
    with pytest.raises(DataError, match=rf"holds no images.*its subfolder A/ holds images: pass {tmp_path / 'test' / 'A'}\)"):
        open_dataset(tmp_path / "test", format="single")
    png(tmp_path / "test" / "B" / "x.png", noise(3, 8, 8))
    with pytest.raises(DataError, match=r"holds no images.*its subfolders A/, B/ hold images: pass one\)"):
        open_dataset(tmp_path / "test", format="single")
    for side in ("images", "masks"):  # a segmentation layout's split: the images, for a model of images
        png(tmp_path / "seg" / side / "x.png", noise(3, 8, 8))
    with pytest.raises(DataError, match=rf"its subfolder images/ holds images: pass {tmp_path / 'seg' / 'images'}\)"):
        open_dataset(tmp_path / "seg", format="single")
    with pytest.raises(DataError, match=r"\.hidden\.png: hidden files \(names starting with '\.'\) are skipped; rename it"):
        open_dataset(tmp_path / ".hidden.png", format="single")


def test_segmentation_masks_may_be_tiff_labels(tmp_path):
    for name in ("a", "b"):
        png(tmp_path / "images" / f"{name}.png", noise(3, 8, 8))
        labels = np.zeros((8, 8), np.uint16)
        labels[:4] = 2  # three classes: 0, 1 (absent here) and 2
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(labels).save(tmp_path / "masks" / f"{name}.tif")
    dataset = open_dataset(tmp_path, load_size=None, crop_size=None, augment=False)
    assert dataset.format == "segmentation" and dataset.num_classes == 3
    assert dataset[0]["B"].shape == (8, 8) and set(dataset[0]["B"].unique().tolist()) == {0, 2}


@pytest.mark.parametrize("step, classes", [(5, 316), (4, 256)])  # ids 0 .. 315, or 0 .. 252 and 255
def test_a_16_bit_label_set_may_use_255_as_a_class(tmp_path, step, classes):
    for name in ("a", "b"):
        png(tmp_path / "images" / f"{name}.png", noise(3, 8, 8))
        labels = np.arange(64, dtype=np.uint16).reshape(8, 8) * step
        labels[0, 0] = 255
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(labels).save(tmp_path / "masks" / f"{name}.png")
    assert open_dataset(tmp_path, load_size=None, crop_size=None, augment=False).num_classes == classes


def test_a_binary_set_with_one_16_bit_mask_is_refused_naming_it(tmp_path):
    """255 is the object in 8-bit binary masks and a class id in 16-bit ones: a set mixing them would train 256 classes."""
    for name in ("a", "b", "c"):
        png(tmp_path / "images" / f"{name}.png", noise(3, 8, 8))
        labels = np.zeros((8, 8), np.uint8)
        labels[:4] = 255
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(labels.astype(np.uint16) if name == "b" else labels).save(tmp_path / "masks" / f"{name}.png")
    with pytest.raises(DataError, match=r"masks/b.png: stores 16-bit values, as 1 of the 3 masks do, where the others store 8 bits: "
                                        r"255 is a class id in the one and the object of binary masks in the other; save every mask "
                                        r"with one bit depth"):
        open_dataset(tmp_path, load_size=None, crop_size=None, augment=False)


@pytest.mark.parametrize("tops, distinct", [
    ((3, 65535), 4),  # 65535 marking pixels to ignore, as some sets do
    ((1, 2000), 3),  # ids 0, 1 and 2000: 2001 output channels for 3 ids
])
def test_a_label_set_whose_ids_are_mostly_unused_is_refused_naming_the_highest(tmp_path, tops, distinct):
    for name, top in zip("ab", tops):
        png(tmp_path / "images" / f"{name}.png", noise(3, 8, 8))
        labels = np.zeros((8, 8), np.uint16)
        labels[:4], labels[0, 0] = 1, top
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.fromarray(labels).save(tmp_path / "masks" / f"{name}.png")
    with pytest.raises(DataError, match=rf"masks/b.png: holds class id {tops[1]}, but the masks use only {distinct} distinct ids, so "
                                        rf"the model would have {tops[1] + 1} output channels"):
        open_dataset(tmp_path, load_size=None, crop_size=None, augment=False)


def test_a_file_changed_after_the_data_were_opened_is_named_when_read(tmp_path):
    from gantk.data.io import write_mask

    pairs = open_dataset(write_paired(tmp_path / "pairs", count=2), load_size=None, crop_size=None, augment=False)
    write_png(torch.zeros(3, 32, 40, dtype=torch.uint8), tmp_path / "pairs" / "B" / "001.png")
    masks = open_dataset(write_segmentation(tmp_path / "seg", count=2), load_size=None, crop_size=None, augment=False)
    write_png(torch.zeros(3, 40, 32, dtype=torch.uint8), tmp_path / "seg" / "images" / "000.png")
    write_mask(torch.full((40, 40), 2), 3, tmp_path / "seg" / "masks" / "001.png")  # a class id this binary set lacks
    for side in (0, 1):
        write_png(torch.zeros(3, 40, 80, dtype=torch.uint8), tmp_path / "aligned" / f"{side}.png")
    aligned = open_dataset(tmp_path / "aligned", format="aligned", load_size=None, crop_size=None, augment=False)
    write_png(torch.zeros(3, 40, 81, dtype=torch.uint8), tmp_path / "aligned" / "1.png")
    stray = torch.zeros(40, 40, dtype=torch.long)
    stray[0, :3] = torch.tensor([255, 7, 9])  # 255 is a binary mask's 1; 7 and 9 are no class
    stray_set = open_dataset(write_segmentation(tmp_path / "stray", count=1), num_classes=2, load_size=None, crop_size=None, augment=False)
    write_mask(stray, 256, tmp_path / "stray" / "masks" / "000.png")
    for dataset, index, message in [(pairs, 1, "001.png"), (masks, 0, "000.png"), (masks, 1, "001.png: holds value 2, outside"),
                                    (stray_set, 0, r"000.png: holds values 7, 9, outside the class ids 0..1 of this dataset "
                                                    r"\(or 255 for binary masks\)"), (aligned, 1, "1.png")]:
        with pytest.raises(DataError, match=message):
            dataset[index]
    with pytest.raises(IndexError, match="index 2 is out of range for a dataset of 2 items"):
        pairs[2]


def test_each_item_draws_its_own_augmentation_from_one_seed(tmp_path):
    root = tmp_path / "pairs"
    for side in ("A", "B"):
        for name in ("0.png", "1.png"):  # the same image twice
            write_png(smooth_image(0, 40), root / side / name)
    dataset = open_dataset(root, load_size=40, crop_size=24)
    assert not torch.equal(dataset[(0, 7)]["A"], dataset[(1, 7)]["A"])
    assert torch.equal(dataset[(0, 7)]["A"], dataset[(0, 7)]["A"])


def test_images_stay_8_bit_unless_normalised(tmp_path):
    root = write_paired(tmp_path / "pairs", count=1)
    options = dict(load_size=None, crop_size=None, augment=False)
    assert open_dataset(root, normalize=False, **options)[0]["A"].dtype == torch.uint8
    assert open_dataset(root, **options)[0]["A"].dtype == torch.float32


def test_a_folder_without_images_has_no_aligned_split(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    assert AlignedFormat().splits(tmp_path) == []
    assert AlignedFormat().validate(tmp_path)[0].startswith(f"{tmp_path}: no images in train/, val/, test/ or the folder itself")


def test_every_split_opens_with_the_classes_of_the_whole_dataset(tmp_path):
    root = make_segmentation(make_segmentation(tmp_path, "train", values=(0, 1)), "test", values=(0, 1, 2))
    for split in ("train", "test"):
        assert open_dataset(root, split=split, augment=False, load_size=None, crop_size=None).num_classes == 3
    png(root / "train" / "masks" / "0.png", torch.full((1, 24, 24), 4, dtype=torch.uint8))  # a changed file counts
    assert open_dataset(root, split="test", augment=False, load_size=None, crop_size=None).num_classes == 5


def test_pair_folders_named_in_another_case_or_inside_splits_get_hints(tmp_path):
    for folder in ("train/a", "train/b"):
        png(tmp_path / "cased" / folder / "0.png", noise(1, 8, 8))
    assert ("train/a/ and train/b/ differ from the paired format's A/ and B/ in case only: rename them (folder names are "
            "case-sensitive).") in detection_error(tmp_path / "cased")
    for folder in ("train/input", "train/target"):
        png(tmp_path / "named" / folder / "0.png", noise(1, 8, 8))
    assert "train/input/ and train/target/ hold images: for pairs, name them A/ and B/" in detection_error(tmp_path / "named")


@pytest.mark.parametrize("augment", [False, True])
def test_an_image_of_other_channels_than_its_side_is_named(tmp_path, augment):
    pairs = write_paired(tmp_path / "pairs", count=3, channels_a=1)
    dataset = open_dataset(pairs, augment=augment, load_size=36, crop_size=32)
    Image.new("RGB", (40, 40)).save(pairs / "A" / "001.png")  # replaced after the dataset was opened, as during a run
    with pytest.raises(DataError, match=f"^{pairs / 'A' / '001.png'}: cannot convert a 3-channel image to 1 channels"):
        dataset[(1, 0)]


def gray_paired_targets(root: Path) -> Path:
    for i in range(3):
        png(root / "A" / f"{i:03d}.png", smooth_image(i, 40))
        png(root / "B" / f"{i:03d}.png", smooth_image(i, 40, channels=1))
    return root / "B" / "001.png"


def gray_aligned(root: Path) -> Path:
    for i in range(3):
        png(root / f"{i:03d}.png", torch.cat([smooth_image(i, 40, channels=1), smooth_image(i + 10, 40, channels=1)], dim=-1))
    return root / "001.png"


def gray_segmentation_images(root: Path) -> Path:
    write_segmentation(root, count=3)
    for i in range(3):
        png(root / "images" / f"{i:03d}.png", smooth_image(i, 40, channels=1))
    return root / "images" / "001.png"


def gray_single(root: Path) -> Path:
    for i in range(3):
        png(root / f"{i:03d}.png", smooth_image(i, 40, channels=1))
    return root / "001.png"


def gray_unaligned_inputs(root: Path) -> Path:
    return write_unaligned(root, count_a=3, channels_a=1) / "trainA" / "001.png"


# Data with a 1-channel side, written by format: the file of that side an item reads, replaced below
GRAY_SIDE = {"paired": gray_paired_targets, "aligned": gray_aligned, "segmentation": gray_segmentation_images,
             "unaligned": gray_unaligned_inputs, "single": gray_single}


@pytest.mark.parametrize("format", GRAY_SIDE)
def test_every_kind_of_dataset_names_an_image_of_other_channels_than_its_side(tmp_path, format):
    replaced = GRAY_SIDE[format](tmp_path / "data")
    dataset = open_dataset(tmp_path / "data", format=format, augment=False, load_size=36, crop_size=32)
    Image.new("RGB", (80 if format == "aligned" else 40, 40)).save(replaced)  # replaced after the dataset was opened
    with pytest.raises(DataError, match=f"^{replaced}: cannot convert a 3-channel image to 1 channels"):
        dataset[(1, 0)]


@pytest.mark.parametrize("name", ["segmentation", "voc", "cityscapes", "ade20k"])
def test_segmentation_formats_take_splits_second_as_every_format_does(name, tmp_path):
    # DataFormat.validate(root, splits): a mask format's ignore_label is a keyword, so a positional split list is one
    validate = load_components(autoload=False).create("data_format", name).validate
    with pytest.raises(TypeError):
        validate(tmp_path, ["train"], 255)
    validate(tmp_path, ["train"])  # not taken for an ignore label, which would be refused


def test_a_segmentation_validate_given_splits_positionally_checks_those_only(tmp_path):
    write_segmentation(tmp_path / "train")
    (next((write_segmentation(tmp_path / "test") / "masks").iterdir())).unlink()
    segmentation = load_components(autoload=False).create("data_format", "segmentation")
    assert segmentation.validate(tmp_path, ["train"]) == [] != segmentation.validate(tmp_path)
