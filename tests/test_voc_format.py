"""The voc data format: Pascal VOC's segmentation layout, read where it is unpacked."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gantk.cli import cli
from gantk.data import check_dataset, detect_format, open_dataset
from gantk.errors import CheckpointError, DataError, GantkWarning, OptionError
from gantk.evaluate import open_eval_split
from gantk.train.checkpoint import load_checkpoint
from helpers import TINY_FLAGS, smooth_image

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 0] * 252 + [224, 224, 192]


def write_voc(root: Path, lists: dict[str, list[str]], masked: list[str], size: int = 40) -> Path:
    """A VOC2012-like tree: a JPEG per name of ``lists`` (and two more, unlisted and without masks), a palette
    mask of classes 0..2 with 255 borders per name of ``masked``, and the split lists."""
    for folder in ("JPEGImages", "SegmentationClass", "SegmentationObject", "Annotations", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = sorted({name for names in lists.values() for name in names} | set(masked) | {"2012_000001", "2012_000002"})
    for i, name in enumerate(names):
        image = smooth_image(i, size)
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        if name in masked:
            ids = (image.float().mean(0) * 3 / 256).long().clamp(max=2)
            border = torch.zeros_like(ids, dtype=torch.bool)
            border[:, 1:] |= ids[:, 1:] != ids[:, :-1]
            border[0, :2] = True
            mask = Image.fromarray(torch.where(border, 255, ids).numpy().astype(np.uint8), "P")
            mask.putpalette(VOC_PALETTE)
            mask.save(root / "SegmentationClass" / f"{name}.png")
    for split, split_names in lists.items():
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("".join(f"{name}\n" for name in split_names))
    return root


@pytest.fixture
def voc(tmp_path):
    train, val = [f"2007_{i:06d}" for i in range(4)], [f"2008_{i:06d}" for i in range(3)]
    lists = {"train": train, "val": val, "trainval": train + val, "test": ["2009_000001", "2009_000002"]}
    return write_voc(tmp_path / "VOCdevkit" / "VOC2012", lists, masked=train + val)


def test_voc_is_detected_with_its_listed_splits_and_void_ignored(voc):
    assert detect_format(voc) == "voc"
    summary = check_dataset(voc)
    assert list(summary.splits) == ["train", "val", "trainval"]  # test lists images without published masks
    assert {name: split.items for name, split in summary.splits.items()} == {"train": 4, "val": 3, "trainval": 7}
    assert all(split.num_classes == 21 and split.ignore_label == 255 for split in summary.splits.values())  # the benchmark's, of which the masks hold 3
    val = open_dataset(voc, split="val", augment=False, load_size=None, crop_size=None)
    assert open_dataset(voc, split="val", ignore_label=None).ignore_label == 255  # None: the format's own
    assert check_dataset(voc, ignore_label=None).splits["val"].ignore_label == 255
    counted = check_dataset(voc, count_classes=True)
    assert counted.splits["train"].class_names[:3] == ["background", "aeroplane", "bicycle"]
    assert re.search(r"class pixels \(by mask value\): \d+ \w+ \d+\.\d%", counted.text())  # each share with its class name
    assert " 0 background " in counted.text()
    assert [Path(path).stem for path in val.files["A"]] == ["2008_000000", "2008_000001", "2008_000002"]
    ids = torch.cat([val[(i, 0)]["B"].flatten() for i in range(len(val))])
    assert set(ids.tolist()) == {-1, 0, 1, 2}


def test_a_voc_subset_keeps_the_21_classes_and_a_mask_of_other_values_is_named(voc):
    masks = sorted((voc / "SegmentationClass").iterdir())
    for mask in masks:  # aeroplanes only: 0, 1 and the 255 borders, no longer read as a binary set
        ids = np.array(Image.open(mask))
        aeroplanes = Image.fromarray(np.where(ids == 2, 1, ids).astype(np.uint8), "P")
        aeroplanes.putpalette(VOC_PALETTE)
        aeroplanes.save(mask)
    assert check_dataset(voc).splits["train"].num_classes == 21
    with pytest.raises(DataError, match=r"the checkpoint's model predicts 3 classes, but the voc format of .*VOC2012 has its "
                                        r"benchmark's 21 classes \(ids 0..20, 255 ignored\)"):  # a model of an older gantk
        open_eval_split(voc, {"num_classes": 3, "ignore_label": 255, "load_size": 32, "crop_size": 32}, "val")
    gray = np.array(Image.open(masks[0]).convert("RGB").convert("L"))  # the palette's colours as luminance
    Image.fromarray(gray).save(masks[0])
    with pytest.raises(DataError) as raised:
        check_dataset(voc)
    assert (f"SegmentationClass/{masks[0].name}: values 38, 220 outside the 21 classes of the voc benchmark (values 0..20, and 255 "
            "ignored); masks converted from VOC's palette PNGs to gray or colour hold other values") in raised.value.problems[0]
    with pytest.raises(DataError, match="values 38, 220 outside the 21 classes") as raised:
        open_eval_split(voc, {"num_classes": 21, "ignore_label": 255, "load_size": 32, "crop_size": 32}, "val")
    assert "Note" not in str(raised.value)  # no --ignore-label makes VOC's 255 a class: nothing to suggest
    with pytest.raises(OptionError, match=r"--ignore-label none scores every pixel, but the voc format always leaves out its "
                                          r"255, .*: drop --ignore-label none"):
        open_eval_split(voc, {"num_classes": 21, "ignore_label": 255, "load_size": 32, "crop_size": 32}, "val",
                        ignore_label="none")


def test_a_run_of_an_older_gantk_on_part_of_voc_is_not_resumed_with_other_classes(voc, tmp_path):
    from gantk.train import TrainConfig, Trainer
    from gantk.train import checkpoint as ckpt

    run = Trainer(TrainConfig(recipe="seg", data=str(voc), out=str(tmp_path / "run"), max_steps=1, load_size=36, crop_size=32,
                              batch_size=2, workers=0, gen_opt={"ngf": 8}, disc_opt={"ndf": 8}), progress=False).fit()
    payload = load_checkpoint(run)
    payload["system"]["num_classes"] = 3  # as a gantk that counted the classes of these masks trained it
    ckpt.save_checkpoint(payload.pop("path"), payload)
    with pytest.raises(CheckpointError, match=r"predicts 3 classes, counted from the masks of part of the voc benchmark by a "
                                              r"gantk that did not give that format the benchmark's 21 classes"):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()


def test_voc_problems_name_the_list_and_the_file(voc):
    listing = voc / "ImageSets" / "Segmentation" / "train.txt"
    listing.write_text(listing.read_text() + "2007_999999\n")
    (voc / "SegmentationClass" / "2008_000001.png").unlink()
    with pytest.raises(DataError) as raised:
        check_dataset(voc)
    problems = raised.value.problems
    assert ("ImageSets/Segmentation/train.txt lists 2007_999999, but JPEGImages/ and SegmentationClass/ have no file "
            "named '2007_999999.*'; add it or remove the line.") in problems
    assert ("ImageSets/Segmentation/val.txt lists 2008_000001, but SegmentationClass/ has no file named "
            "'2008_000001.*'; add it or remove the line.") in problems


def test_a_broken_link_in_voc_is_named_as_one_once(voc):
    image = voc / "JPEGImages" / "2007_000001.jpg"  # listed in train.txt and trainval.txt
    image.unlink()
    image.symlink_to(voc / "gone.jpg")
    with pytest.raises(DataError) as raised:
        check_dataset(voc)
    assert raised.value.problems == [f"JPEGImages/2007_000001.jpg: a broken link (its target {voc / 'gone.jpg'} does not "
                                     "exist); point it at the file or delete it."]


def test_a_broken_mask_link_in_voc_without_lists_is_named_as_one(tmp_path):
    root = write_voc(tmp_path / "voc", {}, masked=["a", "b"])
    (root / "SegmentationClass" / "c.png").symlink_to(root / "gone.png")
    with pytest.raises(DataError) as raised:
        check_dataset(root)
    assert raised.value.problems == [f"SegmentationClass/c.png: a broken link (its target {root / 'gone.png'} does not "
                                     "exist); point it at the file or delete it."]


def test_a_voc_list_counts_as_a_split_while_most_of_its_images_have_a_mask(voc):
    (voc / "SegmentationClass" / "2007_000000.png").unlink()  # the first name of train.txt
    with pytest.raises(DataError, match="train.txt lists 2007_000000, but SegmentationClass/ has no file"):
        check_dataset(voc)
    lists = voc / "ImageSets" / "Segmentation"
    (lists / "trainval.txt").write_text((lists / "trainval.txt").read_text().replace("2007_000000\n", ""))
    listing = lists / "train.txt"
    listing.write_text("\ufeff" + listing.read_text().replace("\n", "\r\n").replace("2007_000000\r\n", "") + "2007_000001\n")
    for mask in (voc / "SegmentationClass").iterdir():
        mask.rename(mask.with_suffix(".PNG"))
    summary = check_dataset(voc)  # a byte-order mark, Windows line ends, a name listed twice, upper-case extensions
    assert {name: split.items for name, split in summary.splits.items()} == {"train": 3, "val": 3, "trainval": 6}


@pytest.mark.parametrize("listing, names, masked", [
    ("train_aug", [f"2007_{i:06d}" for i in range(4)] + [f"2011_{i:06d}" for i in range(5)], 4),  # most in SegmentationClassAug/
    ("half", ["2007_000000", "2007_000001", "2010_000001", "2010_000002"], 2),  # half: still not most
])
def test_a_list_most_of_whose_masks_are_kept_elsewhere_is_no_split_and_is_named(voc, listing, names, masked):
    (voc / "ImageSets" / "Segmentation" / f"{listing}.txt").write_text("".join(f"{name}\n" for name in names))
    with pytest.warns(GantkWarning, match=rf"ImageSets/Segmentation/{listing}.txt: {masked} of its {len(names)} images have a mask "
                                          r"in SegmentationClass/, so it is no split"):
        summary = check_dataset(voc)
    assert list(summary.splits) == ["train", "val", "trainval"]


def test_voc_counts_its_21_classes_without_an_ignore_label_given(voc):
    from gantk.data.opening import get_format

    assert get_format("voc").num_classes(voc) == 21  # 255, in every mask, ignored as VOC's void
    assert get_format("voc").num_classes(voc, 255) == 21


def test_voc_without_lists_pairs_every_mask_with_its_image(tmp_path):
    root = write_voc(tmp_path / "voc", {}, masked=["a", "b"])
    assert check_dataset(root).splits[""].items == 2
    validated = CliRunner().invoke(cli, ["train", "--recipe", "seg", "--data", str(root), "--val-every", "2", "--val-split",
                                         "val", "--out", str(tmp_path / "run")])
    assert validated.exit_code != 0
    assert ("which has no splits: list the training images in ImageSets/Segmentation/train.txt and the held-out ones in "
            "ImageSets/Segmentation/val.txt, one name per line, or drop --val-every") in " ".join(validated.output.split())
    (root / "SegmentationClass" / "c.png").write_bytes((root / "SegmentationClass" / "a.png").read_bytes())
    with pytest.raises(DataError, match=r"SegmentationClass/c.png: JPEGImages/ has no image named 'c\.\*'; add it or "
                                        "delete the mask"):
        check_dataset(root)


def test_voc_without_a_val_list_is_not_pointed_to_trainval_for_validation(tmp_path):
    train = [f"2007_{i:06d}" for i in range(4)]
    root = write_voc(tmp_path / "voc", {"train": train, "trainval": train}, masked=train)
    result = CliRunner().invoke(cli, ["train", "--recipe", "seg", "--data", str(root), "--val-every", "2", "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and "--val-split trainval" not in result.output  # it holds the training images
    assert "(it has splits train, trainval); list the training images in ImageSets/Segmentation/train.txt" in " ".join(result.output.split())


def test_voc_near_misses_are_hinted(voc):
    with pytest.raises(DataError, match=r"VOC2012/ is a dataset itself \(voc format\): pass .*VOC2012 instead"):
        detect_format(voc.parent)
    for folder in ("SegmentationClass", "SegmentationObject"):
        for path in (voc / folder).iterdir():
            path.unlink()
        (voc / folder).rmdir()
    with pytest.raises(DataError, match="JPEGImages/ without SegmentationClass/"):
        detect_format(voc)


def test_train_and_eval_on_voc(voc, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    no_test = runner.invoke(cli, ["train", "--recipe", "seg", "--data", str(voc), "--val-every", "2", "--val-split", "test",
                                  "--out", str(out)])
    assert no_test.exit_code != 0
    assert ("--val-every needs a held-out split 'test' in" in no_test.output
            and "(it has splits train, val, trainval); choose one with --val-split (e.g. --val-split val)" in no_test.output)
    trained = runner.invoke(cli, [str(arg) for arg in (
        "train", "--recipe", "seg", "--data", voc, "--out", out, "--max-steps", 2, "--val-every", 2, *TINY_FLAGS)])
    assert trained.exit_code == 0, trained.output
    assert load_checkpoint(out)["train_config"]["val_split"] == "val"  # VOC's held-out split, without --val-split
    system = load_checkpoint(out)["system"]
    assert (system["data_format"], system["num_classes"], system["ignore_label"]) == ("voc", 21, 255)
    default_split = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(voc)])
    assert "has no split 'test' (found: train, val, trainval); ask for one of those (--split NAME of gantk eval and gantk ablate)" in default_split.output
    evaluated = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(voc), "--split", "val"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "3 images" in evaluated.output and "warning" not in evaluated.stderr
    rows = [line.split() for line in evaluated.output.splitlines()]
    header = rows.index(["class", "accuracy", "iou", "dice"])
    assert [row[:2] for row in rows[header + 1 : header + 4]] == [["0", "background"], ["1", "aeroplane"], ["2", "bicycle"]]
    for split, shared in (("trainval", "4 of the 7"), ("train", "4 of the 4")):
        scored = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(voc), "--split", split])
        assert scored.exit_code == 0, scored.output
        assert (f"{shared} images of split {split} of {voc} are images the model trained on (split train), so these "
                "scores are not held-out ones; score a split it did not train on (--split NAME)") in " ".join(scored.stderr.split())
    resumed = runner.invoke(cli, ["train", "--resume", str(out), "--ignore-label", "255", "--max-steps", "3", "--no-progress"])
    assert resumed.exit_code == 0, resumed.output  # the label the run ignored, though the voc format chose it
