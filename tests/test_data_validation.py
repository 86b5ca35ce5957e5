"""check_dataset: every problem is listed with its file and fix; a valid set is summarised."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.data import check_dataset, open_dataset
from gantk.data.opening import get_format
from gantk.data.io import read_mask, write_png
from gantk.data.validate import DatasetSummary, SplitSummary
from gantk.errors import DataError, GantkWarning, OptionError
from helpers import write_segmentation


def png(path: Path, channels: int = 3, height: int = 8, width: int = 8, value: int = 0) -> None:
    write_png(torch.full((channels, height, width), value, dtype=torch.uint8), path)


def paired(root: Path, names=("a", "b", "c"), value: int = 128) -> Path:
    for name in names:
        png(root / "train" / "A" / f"{name}.png", value=value)
        png(root / "train" / "B" / f"{name}.png", value=value)
    return root


def problems(root: Path, data_format: str | None = None) -> str:
    with pytest.raises(DataError) as info:
        check_dataset(root, data_format)
    return str(info.value)


def test_a_partner_in_a_format_that_is_not_read_is_named(tmp_path):
    paired(tmp_path)
    png(tmp_path / "train" / "A" / "x.png")
    (tmp_path / "train" / "B" / "x.heic").write_bytes(b"\0\0\0\x18ftypheic")
    message = problems(tmp_path)
    assert "train/A/x.png: its partner train/B/x.heic is not a .png, .jpg" in message and "no file named" not in message


def test_partners_named_with_text_added_are_one_problem_that_says_what_to_remove(tmp_path):
    for name in ("0001", "0002", "0003"):
        png(tmp_path / "images" / f"{name}.png")
        png(tmp_path / "masks" / f"{name}_mask.png", channels=1)
    png(tmp_path / "images" / "0004.png")
    message = problems(tmp_path, "segmentation")
    assert ("masks/: 3 file(s) are named as their partners in images/ with '_mask' added at the end (0001_mask.png for "
            "0001.png), but partners pair by the same name (extensions may differ): rename them without '_mask'.") in message
    assert "images/0004.png: no file named '0004.*' in masks/" in message and "0001_mask.*" not in message
    assert "1 problem" not in message and "2 problems" in message


def test_a_prefix_on_the_input_side_is_named_and_numbered_names_are_no_prefix(tmp_path):
    for name in ("a", "b"):
        png(tmp_path / "A" / f"img_{name}.png")
        png(tmp_path / "B" / f"{name}.png")
    assert "A/: 2 file(s) are named as their partners in B/ with 'img_' added at the start (img_a.png for a.png)" in problems(tmp_path)
    numbered = tmp_path / "numbered"
    for name in ("1", "2"):
        png(numbered / "A" / f"{name}.png")
        png(numbered / "B" / f"{name}.png")
    png(numbered / "B" / "12.png")  # 1 with 2 added, by chance
    assert "B/12.png: no file named '12.*' in A/; add its partner" in problems(numbered)


def test_names_that_each_add_a_text_to_a_shared_name_are_one_problem(tmp_path):
    for number in (21, 22, 23):  # as the DRIVE retina set names its images and vessel masks
        png(tmp_path / "images" / f"{number}_training.png")
        (tmp_path / "masks").mkdir(exist_ok=True)
        Image.new("L", (8, 8)).save(tmp_path / "masks" / f"{number}_manual1.gif")
    message = problems(tmp_path, "segmentation")
    assert ("images/ and masks/: 3 pair(s) share a name but for '_training' and '_manual1' at its end (21_training.png "
            "and 21_manual1.gif), but partners pair by the same name (extensions may differ): rename them without these.") in message
    assert "1 problem" in message
    unrelated = tmp_path / "unrelated"
    png(unrelated / "A" / "cat.png")
    png(unrelated / "B" / "car.png")
    message = problems(unrelated)
    assert "A/cat.png: no file named 'cat.*' in B/" in message and "B/car.png: no file named 'car.*' in A/" in message


def test_names_that_differ_in_letter_case_alone_are_one_problem(tmp_path):
    for number in range(3):  # a camera's names beside names written in lower case
        png(tmp_path / "A" / f"AQUA_{number}.PNG")
        png(tmp_path / "B" / f"aqua_{number}.png")
    png(tmp_path / "A" / "extra.png")
    message = problems(tmp_path)
    assert ("A/ and B/: 3 pair(s) share a name but for its letter case (AQUA_0.PNG and aqua_0.png), but partners pair by "
            "the same name (extensions may differ): rename them to one case.") in message
    assert "2 problems" in message and "A/extra.png: no file named 'extra.*' in B/" in message
    for name in ("A/Cat.png", "A/CAT.png", "B/cat.png"):  # two A names for one B file: one pair by case alone
        png(tmp_path / "twice" / name)
    message = problems(tmp_path / "twice")
    assert "1 pair(s) share a name but for its letter case (CAT.png and cat.png)" in message and "A/Cat.png: no file named" in message


def test_names_pair_whatever_their_unicode_form(tmp_path):
    import unicodedata

    paired(tmp_path)
    png(tmp_path / "train" / "A" / f"{unicodedata.normalize('NFD', 'café')}.png")  # as macOS writes it
    png(tmp_path / "train" / "B" / f"{unicodedata.normalize('NFC', 'café')}.png")
    assert check_dataset(tmp_path).splits["train"].items == 4


def test_valid_paired_set_is_summarised(tmp_path):
    paired(tmp_path)
    png(tmp_path / "test" / "A" / "z.png", channels=1, height=6, width=10)
    png(tmp_path / "test" / "B" / "z.png", height=6, width=10)
    summary = check_dataset(tmp_path)
    text = summary.text()
    assert summary.format == "paired" and "format:  paired" in text
    assert "train: 3 items" in text and "test: 1 item\n" in text
    assert "A: 1 file, 10x6, 1 channel (gray)" in text
    data = json.loads(json.dumps(summary.as_dict()))
    assert data["splits"]["train"]["channels"] == {"A": 3, "B": 3}
    assert data["splits"]["test"]["sizes"]["B"] == {"10x6": 1}



def test_summary_lists_the_commonest_sizes_first_and_names_binary_masks(tmp_path):
    sizes = [(2, 14)] + [(4, 12)] * 2 + [(6, 10)] * 3 + [(8, 8)] * 4
    for i, (height, width) in enumerate(sizes):
        for side in ("A", "B"):
            png(tmp_path / "pairs" / "train" / side / f"{i}.png", height=height, width=width)
    assert "A: 10 files, 4 sizes: 8x8 (4), 10x6 (3), 12x4 (2), ..." in check_dataset(tmp_path / "pairs").text()
    png(tmp_path / "seg" / "images" / "a.png")
    png(tmp_path / "seg" / "masks" / "a.png", channels=1, value=255)
    png(tmp_path / "seg" / "images" / "b.png", height=6, width=10)
    png(tmp_path / "seg" / "masks" / "b.png", channels=1, height=6, width=10)
    png(tmp_path / "seg" / "images" / "c.png", height=4, width=12)
    png(tmp_path / "seg" / "masks" / "c.png", channels=1, height=4, width=12)
    summary = check_dataset(tmp_path / "seg")
    assert "B: 3 files, 3 sizes: 8x8 (1), 10x6 (1), 12x4 (1), 2 classes (binary masks)" in summary.text()
    assert "A: 3 files, 3 sizes: 8x8 (1), 10x6 (1), 12x4 (1), 3 channels (RGB)" in summary.text()
    assert list(summary.as_dict()["splits"]) == ["(root)"]  # a layout without split folders


def test_the_typical_short_side_is_the_smallest_of_the_sides_with_files():
    split = SplitSummary(
        items=3, files={"A|B": 3, "B": 0}, channels={"A": 3, "B": 3}, sizes={"A|B": {"40x24": 2, "8x8": 1}, "B": {}}
    )
    summary = DatasetSummary(Path("plugin"), "plugin", "A plugin format.", {"train": split})
    assert summary.typical_short_side("train") == 20  # the median: half of the A|B size 40x24 of two of three
    assert summary.smallest_short_side("train") == 4  # of 8x8's half
    split.sizes["B"] = {"16x18": 3}
    assert summary.typical_short_side("train") == 16  # the smaller side's
    assert summary.typical_short_side("test") is None and summary.smallest_short_side("test") is None
    split.sizes = {"A": {"1x1": 1, "40x30": 1, "100x20": 1, "33x77": 1, "2x300": 1}}  # all different: not the first
    assert summary.typical_short_side("train") == 20 and summary.smallest_short_side("train") == 1


def test_the_summary_names_a_file_of_the_smallest_size(tmp_path):
    data = tmp_path / "pairs"
    for name, size in (("big", 24), ("small", 12), ("middle", 16)):
        for side in "AB":
            write_png(torch.zeros(3, size, 40, dtype=torch.uint8), data / "train" / side / f"{name}.png")
    summary = check_dataset(data)
    assert summary.smallest_short_side("train") == 12
    assert summary.smallest_image("train") == str(data / "train" / "A" / "small.png")
    assert summary.as_dict()["splits"]["train"]["smallest"]["B"] == str(data / "train" / "B" / "small.png")
    assert summary.smallest_image("test") is None


def test_hidden_and_non_image_files_are_ignored(tmp_path):
    paired(tmp_path)
    (tmp_path / "train" / "A" / ".DS_Store").write_bytes(b"\0junk")
    (tmp_path / "train" / "A" / "._a.png").write_bytes(b"\0junk")
    (tmp_path / "train" / "B" / "notes.txt").write_text("hello")
    (tmp_path / ".cache").mkdir()
    assert check_dataset(tmp_path).splits["train"].items == 3


def test_unmatched_names_are_listed_on_both_sides(tmp_path):
    paired(tmp_path)
    png(tmp_path / "train" / "A" / "only_a.png")
    png(tmp_path / "train" / "B" / "only_b.png")
    message = problems(tmp_path)
    assert "2 problems" in message
    assert "train/A/only_a.png: no file named 'only_a.*' in train/B/" in message
    assert "train/B/only_b.png: no file named 'only_b.*' in train/A/" in message
    with pytest.raises(DataError, match="only_a"):
        open_dataset(tmp_path)


def test_size_mismatch_and_corrupt_files_are_named(tmp_path):
    paired(tmp_path)
    png(tmp_path / "train" / "B" / "b.png", height=9)
    (tmp_path / "train" / "A" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    message = problems(tmp_path)
    assert "train/A/b.png (8x8) and train/B/b.png (8x9) differ in size" in message
    assert "train/A/c.png: cannot be decoded" in message and "replace or delete" in message


def test_a_pair_turned_against_each_other_is_named_as_such(tmp_path):
    paired(tmp_path)
    upright = Image.new("RGB", (8, 6))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned, shown upright
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "train" / "A" / "d.jpg", exif=exif)
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "train" / "B" / "d.png")  # stored turned, no orientation
    message = problems(tmp_path)
    assert ("train/A/d.jpg (8x6) and train/B/d.png (6x8) are turned against each other; one of them is likely stored turned "
            "with an EXIF orientation, which is applied: save both upright.") in message


def test_rgba_images_that_are_all_opaque_are_warned_of(tmp_path):
    paired(tmp_path)
    for name in "abc":
        png(tmp_path / "train" / "B" / f"{name}.png", channels=4, value=255)  # alpha 255, as exported RGB often is
    with pytest.warns(GantkWarning, match=re.escape(f"{tmp_path}: the RGBA images of train/B/ are all opaque (alpha 255 "
                                                    "everywhere), so a model trained on them learns the alpha as a fourth channel")):
        assert check_dataset(tmp_path).splits["train"].channels["B"] == 4
    png(tmp_path / "train" / "B" / "c.png", channels=4, value=128)  # one with a real alpha
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset(tmp_path)
    png(tmp_path / "train" / "B" / "c.png", value=255)  # RGB beside opaque RGBA: the side is RGB, with no alpha to learn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_dataset(tmp_path).splits["train"].channels["B"] == 3


def test_images_nearly_black_throughout_are_warned_of(tmp_path):
    paired(tmp_path)
    twelve_bits = np.random.default_rng(0).integers(0, 4096, (8, 8), dtype=np.uint16)  # in a 16-bit file
    Image.fromarray(twelve_bits).save(tmp_path / "train" / "A" / "b.png")
    with pytest.warns(GantkWarning, match=re.escape(f"{tmp_path}: 1 image(s) have no value of 16 or more (of 255) in any "
                                                    "pixel, so they read nearly black (train/A/b.png): a 16-bit PNG")):
        check_dataset(tmp_path)
    Image.fromarray(twelve_bits * 16).save(tmp_path / "train" / "A" / "b.png")  # scaled to the full range
    png(tmp_path / "train" / "B" / "c.png", value=15)
    png(tmp_path / "train" / "B" / "a.png", value=16)  # dark, and not nearly black
    with pytest.warns(GantkWarning, match=re.escape("1 image(s) have no value of 16 or more (of 255) in any pixel, so "
                                                    "they read nearly black (train/B/c.png)")):
        check_dataset(tmp_path)
    png(tmp_path / "train" / "B" / "c.png", value=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset(tmp_path)


def test_a_folder_named_as_a_partner_image_is_named_as_a_folder(tmp_path):
    paired(tmp_path)
    (tmp_path / "train" / "A" / "c.png").unlink()
    (tmp_path / "train" / "A" / "c.png").mkdir()
    assert "train/B/c.png: its partner train/A/c.png is a folder, not an image; put the image in its place." in problems(tmp_path)


def test_images_in_formats_gantk_does_not_read_are_warned_of_as_left_out(tmp_path):
    paired(tmp_path)
    for side in "AB":
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / side / "d.ppm")
    (tmp_path / "train" / "A" / "notes.txt").write_text("not an image, and not warned of")
    with pytest.warns(GantkWarning, match=re.escape(f"{tmp_path / 'train' / 'A'}: 1 image(s) in formats gantk does not read are "
                                                    "left out (d.ppm); convert them to PNG to use them")) as warned:
        assert check_dataset(tmp_path).splits["train"].items == 3
    messages = {str(w.message) for w in warned}  # one per side (the command line shows each once)
    assert len(messages) == 2 and not any("notes.txt" in message for message in messages)


@pytest.mark.parametrize("tag", [3, 6])  # turned 180 degrees, or a quarter of a square: no size tells
def test_partners_of_one_size_carrying_different_exif_orientations_are_warned_of(tmp_path, tag):
    paired(tmp_path)
    stored = Image.new("RGB", (8, 8), (128, 128, 128))
    exif = Image.Exif()
    exif[0x0112] = tag
    stored.save(tmp_path / "train" / "A" / "d.jpg", exif=exif)
    stored.save(tmp_path / "train" / "B" / "d.png")  # from the stored pixels, its orientation ignored
    with pytest.warns(GantkWarning, match=re.escape(
            f"{tmp_path}: in 1 pair(s) the partners carry different EXIF orientations, which are applied when read (train/A/d.jpg "
            f"(EXIF orientation {tag}: turned ") + ".* train/B/d.png \\(no EXIF orientation\\)\\): if one partner was made from the "
            "other's stored pixels by a tool that ignored the orientation, the two are turned or mirrored against each other"):
        check_dataset(tmp_path)
    stored.save(tmp_path / "train" / "A" / "d.jpg")  # the same orientation (none) on both
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset(tmp_path)


def test_undecodable_files_get_a_short_reason_without_decoder_internals(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "zeros.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    (tmp_path / "empty.png").write_bytes(b"")
    message = problems(tmp_path, "single")
    assert "empty.png: cannot be decoded as an image (the file is empty); replace or delete the file." in message
    assert "notes.png: cannot be decoded as an image (unsupported image file); replace or delete the file." in message
    assert "zeros.png: cannot be decoded as an image (damaged or unsupported file); replace or delete" in message
    assert ".cpp" not in message and "avif" not in message


def test_missing_and_empty_folders(tmp_path):
    png(tmp_path / "train" / "A" / "a.png")
    (tmp_path / "test" / "A").mkdir(parents=True)
    (tmp_path / "test" / "B").mkdir()
    (tmp_path / "test" / "B" / "photo.heic").write_bytes(b"\0\0\0\x18ftypheic")
    message = problems(tmp_path, "paired")
    assert "train/B/: folder missing" in message
    assert "test/A/: holds no images" in message
    assert "test/B/: holds no images (1 other file(s) such as photo.heic)" in message


def test_images_in_subfolders_of_a_datasets_folder_are_named_as_not_read(tmp_path):
    root = write_segmentation(tmp_path / "seg", count=4, size=40, num_classes=2)
    for side in ("images", "masks"):
        (root / side / "batch2").mkdir()
        (root / side / "000.png").rename(root / side / "batch2" / "000.png")
    with pytest.warns(GantkWarning, match=r"images/: its subfolder\(s\) batch2/ hold images, which are not read: move them "
                                          r"up into images/ to use them"):
        assert check_dataset(root).splits[""].items == 3
    for side in ("images", "masks"):
        for path in (root / side).glob("*.png"):
            path.rename(root / side / "batch2" / path.name)
    assert "images/: holds no images; its subfolder(s) batch2/ hold images, which are not read: move them up into " \
        "images/." in problems(root, "segmentation")


def test_clashing_names_in_one_folder(tmp_path):
    paired(tmp_path)
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "A" / "a.jpg")
    message = problems(tmp_path)
    assert "train/A/: a.jpg, a.png share the name 'a'" in message
    assert "no file named" not in message  # B/a.png has partners: the two clashing files


def test_a_broken_link_is_named_instead_of_its_partner(tmp_path):
    paired(tmp_path)
    (tmp_path / "train" / "A" / "link.png").symlink_to(tmp_path / "gone.png")
    png(tmp_path / "train" / "B" / "link.png")
    message = problems(tmp_path)
    assert f"train/A/link.png: a broken link (its target {tmp_path / 'gone.png'} does not exist)" in message
    assert "no file named" not in message
    (tmp_path / "train" / "A" / "link.png").unlink()
    (tmp_path / "train" / "A" / "link.png").symlink_to("link.png")  # a link to itself
    assert "train/A/link.png: a broken link (it leads back to itself through link.png)" in problems(tmp_path)


def test_a_link_to_an_image_elsewhere_checks_clean_and_opens(tmp_path):
    root = paired(tmp_path / "set")
    png(tmp_path / "store" / "x.png", value=7)
    (root / "train" / "A" / "x.png").symlink_to(tmp_path / "store" / "x.png")
    png(root / "train" / "B" / "x.png")
    assert check_dataset(root).splits["train"].items == 4
    dataset = open_dataset(root, load_size=None, crop_size=None, augment=False)
    assert [Path(path).name for path in dataset.files["A"]] == ["a.png", "b.png", "c.png", "x.png"]


def test_aligned_odd_width(tmp_path):
    png(tmp_path / "train" / "ok.png", width=16)
    png(tmp_path / "train" / "odd.png", width=15)
    message = problems(tmp_path, "aligned")
    assert "train/odd.png: width 15 is odd" in message and "ok.png" not in message
    # Opening settles the format, so the suggested check names it.
    with pytest.raises(DataError, match=r"odd.png(.|\n)*gantk data check \S+ --data-format aligned`"):
        open_dataset(tmp_path, format="aligned")


def test_segmentation_problems_name_the_files(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        png(tmp_path / "images" / f"{name}.png")
    write_png(torch.tensor([0, 255], dtype=torch.uint8).repeat(8, 4).view(1, 8, 8), tmp_path / "masks" / "a.png")
    png(tmp_path / "masks" / "b.png", channels=1, value=128)
    write_png(torch.linspace(0, 255, 64).round().to(torch.uint8).view(1, 8, 8), tmp_path / "masks" / "g.png")  # as after JPEG
    png(tmp_path / "images" / "g.png")
    png(tmp_path / "masks" / "c.png", channels=1, height=7)
    Image.new("L", (8, 8), 3).save(tmp_path / "masks" / "d.jpg")  # a class id 3 would be one more problem
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "masks" / "e.png")
    png(tmp_path / "images" / "f.png")
    message = problems(tmp_path)
    assert "images/f.png: no file named 'f.*' in masks/" in message
    assert ("masks/b.png: values 128 in a binary mask set; if 128 marks pixels to ignore (a trimap's unknown band, say), "
            "pass --ignore-label 128; if 255 marks pixels to ignore") in message
    assert ("masks/g.png: 62 values between 0 and 255 in a binary mask set: the mask was saved with compression (JPEG) or "
            "antialiasing; threshold it (object where the value is above 127) and save it as PNG.") in message
    assert "images/c.png (8x8) and masks/c.png (8x7) differ in size" in message
    assert "masks/d.jpg: masks must be .png, .bmp, .tif, .tiff, .gif files (JPEG and WebP may change label values)" in message
    assert message.count("d.jpg") == 1  # reported as lossy only
    assert "masks/e.png: a mask must hold one class id per pixel" in message
    assert "masks/a.png" not in message
    with pytest.raises(DataError, match="masks/d.jpg"):
        open_dataset(tmp_path)


def test_gif_images_and_black_and_white_gif_masks_make_a_segmentation_set(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    Image.new("RGB", (8, 6), (200, 30, 10)).save(tmp_path / "images" / "a.gif")
    indices = np.zeros((6, 8), np.uint8)
    indices[1:4, 2:6] = 1
    mask = Image.fromarray(indices, mode="P")
    mask.putpalette([0, 0, 0, 255, 255, 255])  # index 1 is white: the mask's object
    mask.save(tmp_path / "masks" / "a.gif")
    summary = check_dataset(tmp_path)
    assert summary.format == "segmentation" and summary.splits[""].num_classes == 2
    item = open_dataset(tmp_path, load_size=None, crop_size=None, augment=False)[0]
    assert item["A"].shape == (3, 6, 8) and item["B"].tolist() == indices.astype(np.int64).tolist()


def test_multiclass_masks_with_explicit_classes(tmp_path):
    png(tmp_path / "images" / "a.png")
    png(tmp_path / "masks" / "a.png", channels=1, value=6)
    assert check_dataset(tmp_path).splits[""].num_classes == 7
    assert "7 classes" in check_dataset(tmp_path).text()
    with pytest.raises(DataError, match="value 6, outside the class ids 0..3"):
        open_dataset(tmp_path, num_classes=4)[0]


def test_masks_that_are_all_background_still_give_two_classes_with_a_warning(tmp_path):
    png(tmp_path / "images" / "a.png")
    png(tmp_path / "masks" / "a.png", channels=1, value=0)
    with pytest.warns(GantkWarning, match=r"every mask holds only 0 \(background\), so a model has no other class to learn; "
                                          r"masks that keep their objects in the alpha channel \(cut-outs\)"):
        assert check_dataset(tmp_path).splits[""].num_classes == 2


def test_long_lists_are_cut_with_a_count(tmp_path):
    for i in range(25):
        png(tmp_path / "A" / f"{i:02d}.png")
    png(tmp_path / "B" / "other.png")
    message = problems(tmp_path)
    assert "26 problems" in message and "... and 6 more" in message
    assert message.count("\n  - ") == 20


def test_unaligned_and_single_validation(tmp_path):
    png(tmp_path / "u" / "trainA" / "a.png")
    (tmp_path / "u" / "trainB").mkdir(parents=True)
    assert "trainB/: holds no images" in problems(tmp_path / "u", "unaligned")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0junk")
    assert "broken.jpg: cannot be decoded" in problems(tmp_path / "s", "single")


def test_an_aligned_image_of_odd_width_is_named_even_when_its_height_is_even(tmp_path):
    png(tmp_path / "train" / "wide.png", width=17, height=8)
    assert any("train/wide.png: width 17 is odd" in p for p in get_format("aligned").validate(tmp_path))
    with pytest.raises(DataError, match="width 17 is odd"):
        check_dataset(tmp_path, "aligned")


def test_upper_case_extensions_are_images(tmp_path):
    png(tmp_path / "A" / "a.PNG")
    png(tmp_path / "B" / "a.Png")
    assert len(open_dataset(tmp_path, load_size=None, crop_size=None, augment=False)) == 1
    png(tmp_path / "seg" / "images" / "a.JPG")
    png(tmp_path / "seg" / "masks" / "a.PNG", channels=1)
    assert check_dataset(tmp_path / "seg").splits[""].num_classes == 2


@pytest.mark.parametrize("size", [0, -4, True, 36.0])
def test_sizes_must_be_positive(tmp_path, size):
    paired(tmp_path)
    with pytest.raises(OptionError, match=f"load_size must be a positive integer or None, not {size}"):
        open_dataset(tmp_path, load_size=size)


def test_sizes_may_be_numpy_integers_and_the_format_is_format(tmp_path):
    import numpy as np

    paired(tmp_path)
    dataset = open_dataset(tmp_path, load_size=np.int64(36), crop_size=np.int32(32))
    assert dataset[(0, 0)]["A"].shape[-2:] == (32, 32)
    assert (type(dataset.transform.load_size), type(dataset.transform.crop_size)) == (int, int)  # the format is given ints
    with pytest.raises(OptionError, match=r"open_dataset takes the dataset's format as format=NAME, not data_format="):
        open_dataset(tmp_path, data_format="paired")


def test_a_folder_is_aligned_only_when_all_its_images_are_twice_as_wide_as_high(tmp_path):
    from gantk.data import detect_format

    png(tmp_path / "a.png", width=16, height=8)
    for name in ("b", "c", "d"):
        png(tmp_path / f"{name}.png")
    assert detect_format(tmp_path) == "single"


def test_a_stray_class_id_in_a_binary_mask_set_is_named(tmp_path):
    for name in ("a", "b"):
        png(tmp_path / "images" / f"{name}.png")
    write_png(torch.tensor([0, 255], dtype=torch.uint8).repeat(8, 4).view(1, 8, 8), tmp_path / "masks" / "a.png")
    write_png(torch.tensor([0, 1, 255, 0], dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / "b.png")
    assert "masks/b.png: values 1 in a binary mask set" in problems(tmp_path)


def test_many_masks_of_ids_beside_255_are_one_problem_of_the_set(tmp_path):
    for name in "abcde":  # as Pascal VOC's masks, read without --ignore-label 255
        png(tmp_path / "images" / f"{name}.png")
        write_png(torch.tensor([0, 1, 2, 255], dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / f"{name}.png")
    message = problems(tmp_path)
    assert "has 1 problem:" in message and ("5 of 5 masks (masks/a.png, masks/b.png, masks/c.png, masks/d.png, masks/e.png) "
                                            "hold values 1, 2 beside 0 and 255 in a binary mask set; if 255 marks pixels to "
                                            "ignore, as Pascal VOC's 'void' does, pass --ignore-label 255") in message


def test_a_stray_value_in_a_set_of_mostly_binary_masks_is_to_be_thresholded(tmp_path):
    for name in ("a", "b", "c"):
        png(tmp_path / "images" / f"{name}.png")
        write_png(torch.tensor([0, 255], dtype=torch.uint8).repeat(8, 4).view(1, 8, 8), tmp_path / "masks" / f"{name}.png")
    write_png(torch.tensor([0, 128, 255, 0], dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / "c.png")
    message = problems(tmp_path)
    assert ("masks/c.png: values 128 in a set of binary masks (0 background, 255 object, as most of its masks hold): the mask "
            "was edited or saved with antialiasing; threshold it") in message and "--ignore-label" not in message


def test_a_mask_of_class_ids_in_a_set_of_mostly_binary_masks_is_told_apart_from_an_edited_one(tmp_path):
    for name in ("a", "b", "c"):
        png(tmp_path / "images" / f"{name}.png")
        write_png(torch.tensor([0, 255], dtype=torch.uint8).repeat(8, 4).view(1, 8, 8), tmp_path / "masks" / f"{name}.png")
    write_png(torch.tensor([0, 1], dtype=torch.uint8).repeat(8, 4).view(1, 8, 8), tmp_path / "masks" / "c.png")  # a 0/1 mask
    message = problems(tmp_path)
    assert ("masks/c.png: values 1 and no 255, in a set of binary masks (0 background, 255 object, as most of its masks "
            "hold): the mask holds class ids (a 0/1 mask marks its object as 1); save its object as 255") in message
    assert "threshold" not in message


def test_a_class_count_mostly_of_ids_no_mask_holds_is_warned_of(tmp_path):
    from gantk.data.layout import mask_classes

    with pytest.warns(GantkWarning, match=r"b.png: holds class id 128, but the masks use only 2 distinct ids, so the model would "
                                          r"have 129 output channels, most for ids no mask holds"):
        assert mask_classes({tmp_path / "a.png": {0}, tmp_path / "b.png": {0, 128}}, tmp_path) == (129, [])
    with pytest.warns(GantkWarning, match=r"b.png: holds value 40, but the masks use only 2 distinct values besides 0"):
        assert mask_classes({tmp_path / "a.png": {0, 1}, tmp_path / "b.png": {0, 40}}, tmp_path, ignore_label=0) == (40, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mask_classes({tmp_path / "a.png": {0, 1, 2}, tmp_path / "b.png": {0, 5}}, tmp_path) == (6, [])


def test_problem_lists_stop_after_twenty_and_count_the_rest():
    from gantk.data.layout import MAX_LISTED, listed

    assert MAX_LISTED == 20
    assert listed([f"p{i}" for i in range(20)]).splitlines()[-1] == "  - p19"
    assert listed([f"p{i}" for i in range(21)]).splitlines()[-2:] == ["  - p19", "  ... and 1 more"]


def test_splits_are_ordered_train_val_test_then_by_name(tmp_path):
    for split in ("test", "zoo", "extra", "val", "train"):
        png(tmp_path / split / "A" / "a.png")
        png(tmp_path / split / "B" / "a.png")
    assert list(check_dataset(tmp_path).splits) == ["train", "val", "test", "extra", "zoo"]


@pytest.mark.parametrize("first, second", [("A", "B"), ("images", "masks")])
def test_folders_both_in_the_root_and_in_split_folders_are_refused(tmp_path, first, second):
    for folder in (first, second, f"train/{first}", f"train/{second}"):
        png(tmp_path / folder / "a.png", channels=1)
    assert (
        f"{tmp_path}: holds {first}/, {second}/ both directly and in split folders train/; the split folders would be "
        "ignored: keep one layout" in problems(tmp_path)
    )
    with pytest.raises(DataError, match="keep one layout"):
        open_dataset(tmp_path)


@pytest.mark.parametrize("first, second", [("A", "B"), ("images", "masks")])
def test_other_subfolders_beside_root_folders_are_ignored(tmp_path, first, second):
    for folder in (first, second, f"old_runs/{first}"):
        png(tmp_path / folder / "a.png", channels=1)
    assert list(check_dataset(tmp_path).splits) == [""]
    assert len(open_dataset(tmp_path)) == 1


def test_aligned_images_in_a_root_with_split_folders_are_ignored(tmp_path):
    png(tmp_path / "preview.png", width=12)
    (tmp_path / "README.png").write_text("not an image")
    png(tmp_path / "train" / "a.png", width=16)
    assert list(check_dataset(tmp_path).splits) == ["train"]
    assert len(open_dataset(tmp_path)) == 1


def test_the_suggested_check_keeps_a_format_given_explicitly(tmp_path):
    paired(tmp_path)
    assert f"check again with `gantk data check {tmp_path} --data-format unaligned`." in problems(tmp_path, "unaligned")
    png(tmp_path / "train" / "A" / "orphan.png")
    assert f"check again with `gantk data check {tmp_path}`." in problems(tmp_path)


def test_the_suggested_check_quotes_a_path_with_spaces(tmp_path):
    root = tmp_path / "my data"
    png(root / "train" / "A" / "a.png")
    png(root / "train" / "B" / "b.png")  # a partner missing for each
    with pytest.raises(DataError, match=re.escape(f"check again with `gantk data check '{root}'`")):
        check_dataset(root)


def test_a_stray_255_in_a_set_of_class_ids_names_only_that_mask(tmp_path):
    for name in ("a", "b", "c", "d"):
        png(tmp_path / "images" / f"{name}.png")
    for name, ids in (("a", [0, 1, 2, 3]), ("b", [0, 2, 1, 0]), ("c", [3, 3, 0, 1])):
        write_png(torch.tensor(ids, dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / f"{name}.png")
    write_png(torch.tensor([0, 1, 255, 0], dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / "d.png")
    message = problems(tmp_path)
    assert "masks/d.png: value 255 in a set of class-id masks (ids 0..3, e.g. in masks/a.png); if 255 marks pixels to ignore" in message
    assert "masks/a.png:" not in message and "masks/b.png:" not in message and "masks/c.png:" not in message


def test_class_id_masks_without_255_are_not_opened_again_for_their_bit_depth(tmp_path, monkeypatch):
    from gantk.data import layout

    for name, ids in (("a", [0, 1, 2, 3]), ("b", [0, 2, 1, 0])):
        png(tmp_path / "images" / f"{name}.png")
        write_png(torch.tensor(ids, dtype=torch.uint8).repeat(8, 2).view(1, 8, 8), tmp_path / "masks" / f"{name}.png")
    opened = []
    monkeypatch.setattr(layout, "has_wide_ids", lambda path: opened.append(path) or False)
    assert layout.mask_classes({path: set(layout.mask_values(read_mask(path))) for path in (tmp_path / "masks").iterdir()},
                               tmp_path) == (4, []) and opened == []


@pytest.mark.parametrize("progress", [True, False])
def test_the_check_counts_every_file_it_decodes_on_a_bar(tmp_path, monkeypatch, progress):
    from gantk.data import layout

    bars = []

    class Bar:
        def __init__(self, **options):
            self.options, self.count = options, 0
            bars.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n=1):
            self.count += n

    monkeypatch.setattr(layout, "ProgressBar", Bar)
    write_segmentation(tmp_path / "seg", count=5, size=16)
    check_dataset(tmp_path / "seg", progress=progress)
    assert len(bars) == 1 and bars[0].count == 10  # 5 images and 5 masks
    assert bars[0].options["disable"] is not progress and bars[0].options["delay"] == 2
    layout.decode_or_note(lambda path: None, tmp_path, tmp_path, [])  # outside a check: counted nowhere
    assert bars[0].count == 10


def test_data_check_counts_the_class_pixels_of_the_training_masks_and_balances_them(tmp_path):
    """Two 4x4 training masks: one of class 0 with 4 pixels of class 2, one of class 0 with 4 pixels of
    class 1 and 4 ignored (255); class 1 is held by an image of 12 counted pixels, class 2 by one of 16."""
    for split, masks in {"train": [(0, 2, None), (0, 1, 255)], "test": [(1, 1, None)]}.items():
        for index, (background, other, ignored) in enumerate(masks):
            mask = torch.full((1, 4, 4), background, dtype=torch.uint8)
            mask[0, 0] = other
            if ignored is not None:
                mask[0, 1] = ignored
            write_png(mask, tmp_path / split / "masks" / f"{index}.png")
            png(tmp_path / split / "images" / f"{index}.png", height=4, width=4)
    summary = check_dataset(tmp_path, ignore_label=255, count_classes=True)
    train = summary.splits["train"]
    assert train.class_pixels == [20, 4, 4] and summary.splits["test"].class_pixels is None
    frequencies = [20 / 28, 4 / 12, 4 / 16]  # median 1/3
    assert train.class_weights == pytest.approx([(1 / 3) / f for f in frequencies])
    text = summary.text()
    assert "class pixels (by mask value): 0 71.4%, 1 14.3%, 2 14.3%" in text
    assert "median-frequency class weights: --loss-opt 'ce.class_weights=[0.467,1,1.33]'" in text
    assert json.loads(json.dumps(summary.as_dict()))["splits"]["train"]["class_weights"] == pytest.approx(train.class_weights)
    assert check_dataset(tmp_path, ignore_label=255).splits["train"].class_pixels is None  # counted only when asked
    ade = tmp_path / "ade"  # ADE20K's way: 0 ignored, the values 1.. are the classes
    for index, value in enumerate((1, 2)):
        mask = torch.full((1, 4, 4), value, dtype=torch.uint8)
        mask[0, 0] = 0
        write_png(mask, ade / "train" / "masks" / f"{index}.png")
        png(ade / "train" / "images" / f"{index}.png", height=4, width=4)
    shifted = check_dataset(ade, ignore_label=0, count_classes=True)
    assert shifted.splits["train"].class_pixels == [12, 12]
    assert "class pixels (by mask value): 1 50.0%, 2 50.0%" in shifted.text()
    binary = tmp_path / "binary"  # 0/255 masks: class 1 is the value 255
    for index in range(2):
        mask = torch.zeros((1, 4, 4), dtype=torch.uint8)
        mask[0, :1] = 255
        write_png(mask, binary / "train" / "masks" / f"{index}.png")
        png(binary / "train" / "images" / f"{index}.png", height=4, width=4)
    text = check_dataset(binary, count_classes=True).text()
    assert "class pixels (by class id; a binary mask's class 1 is its value 1 or 255): 0 75.0%, 1 25.0%" in text


def test_an_empty_masks_folder_names_the_mask_formats(tmp_path):
    png(tmp_path / "images" / "a.png")
    (tmp_path / "masks").mkdir()
    message = problems(tmp_path, "segmentation")
    assert "masks/: holds no images; supported: .png, .bmp, .tif, .tiff, .gif;" in message


def test_a_split_folder_in_another_layout_is_warned_of_as_left_out(tmp_path):
    for side in "AB":
        png(tmp_path / "train" / side / "0.png")
    png(tmp_path / "val" / "0.png")  # images, but no A/ and B/
    png(tmp_path / "test" / "images" / "0.png")  # a segmentation split's folder in a paired set
    (tmp_path / "notes").mkdir()
    with pytest.warns(GantkWarning) as caught:
        summary = check_dataset(tmp_path)
    told = sorted(str(w.message) for w in caught if "left out:" in str(w.message))
    assert [message.split(" ")[0] for message in told] == [f"{tmp_path / 'test'}/", f"{tmp_path / 'val'}/"]
    assert "holds images, but not as a split of the paired format" in told[0] and list(summary.splits) == ["train"]
