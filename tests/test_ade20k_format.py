"""The ade20k data format: ADEChallengeData2016's images/ and annotations/, 0 ignored, values 1..K the classes."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gantk.cli import cli
from gantk.data import check_dataset, detect_format, open_dataset, read_mask, write_png
from gantk.data.ade20k import Ade20kFormat
from gantk.errors import DataError
from gantk.train.checkpoint import load_checkpoint
from helpers import TINY_FLAGS, smooth_image

FOLDERS = {"train": "training", "val": "validation"}


def write_ade20k(root: Path, count: int = 3, size: int = 40) -> Path:
    """JPEG photos with grayscale masks of values 1..3 (of the 150 classes) and 0 ("other") borders, as the archive unpacks."""
    for s, (split, folder) in enumerate(FOLDERS.items()):
        for side in ("images", "annotations"):
            (root / side / folder).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            name = f"ADE_{split}_{i + 1:08d}"
            image = smooth_image(100 * s + i, size)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(root / "images" / folder / f"{name}.jpg", quality=95)
            values = (image.float().mean(0) * 3 / 256).long().clamp(max=2) + 1
            values[:, ::8] = 0
            write_png(values.to(torch.uint8)[None], root / "annotations" / folder / f"{name}.png")
    names = ["wall", "building;edifice", "sky, heavens"] + [f"class {i}" for i in range(4, 151)]
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n" + "".join(
        f"{i}\t0.01\t100\t10\t{name}\n" for i, name in enumerate(names, 1)))
    return root


@pytest.fixture
def ade20k(tmp_path):
    return write_ade20k(tmp_path / "ADEChallengeData2016")


def test_ade20k_is_detected_with_its_splits_and_0_ignored(ade20k):
    assert detect_format(ade20k) == "ade20k"
    summary = check_dataset(ade20k)
    assert {name: split.items for name, split in summary.splits.items()} == {"train": 3, "val": 3}
    assert all(split.num_classes == 150 and split.ignore_label == 0 for split in summary.splits.values())  # the benchmark's, of which the masks hold 3
    assert "150 classes (values 1..150), 0 ignored" in summary.text()
    val = open_dataset(ade20k, split="val", augment=False, load_size=None, crop_size=None)
    assert [Path(path).name for path in val.files["A"]] == [f"ADE_val_{i:08d}.jpg" for i in (1, 2, 3)]
    item = val[(0, 0)]
    assert torch.equal(item["B"], read_mask(val.files["B"][0]) - 1)
    assert set(item["B"].unique().tolist()) == {-1, 0, 1, 2}
    assert check_dataset(ade20k, ignore_label=255).splits["val"].num_classes == 4  # 0 a class when another is named
    layout = Ade20kFormat()
    assert layout.class_names(ade20k)[:4] == ["wall", "building", "sky", "class 4"] and layout.class_names(ade20k, 255) is None
    (ade20k / "objectInfo150.txt").write_text("Idx\tName\n2\tbuilding\n")  # not numbered from 1: no names
    assert layout.class_names(ade20k) is None


def test_ade20k_problems_name_the_file_and_the_fix(ade20k, tmp_path):
    (ade20k / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    write_png(torch.zeros(1, 40, 40, dtype=torch.uint8), ade20k / "annotations" / "validation" / "ADE_val_00000009.png")
    with pytest.raises(DataError) as raised:
        check_dataset(ade20k)
    problems = " | ".join(raised.value.problems)
    assert "images/training/ADE_train_00000002.jpg" in problems and "annotations/training/" in problems
    assert "annotations/validation/ADE_val_00000009.png" in problems
    images_only = tmp_path / "images-only"
    (images_only / "images" / "training").mkdir(parents=True)
    with pytest.raises(DataError, match=r"images/ without annotations/; for the ade20k format, unpack the annotations/ of "
                                        r"ADEChallengeData2016.zip beside it"):
        detect_format(images_only)
    with pytest.raises(DataError, match=r"images-only: no annotations/; the ade20k format needs images/training/"):
        check_dataset(images_only, "ade20k")
    annotations_only = tmp_path / "annotations-only"
    (annotations_only / "annotations" / "validation").mkdir(parents=True)
    with pytest.raises(DataError, match=r"annotations/ without images/; for the ade20k format, unpack the images/ of"):
        detect_format(annotations_only)
    flat = tmp_path / "flat"
    for side in ("images", "annotations"):
        (flat / side).mkdir(parents=True)
    with pytest.raises(DataError, match=r"flat: images/ and annotations/ share no split with labels; the ade20k format needs"):
        check_dataset(flat, "ade20k")
    renamed = tmp_path / "renamed"
    for side in ("images", "annotations"):
        (ade20k / side / "training").rename(ade20k / side / "train")
    (ade20k / "annotations" / "validation").rename(renamed)
    fix = (r"images/train/, annotations/train/: the ade20k format's split folders are training/ and validation/, as "
           r"ADEChallengeData2016.zip unpacks them; rename train/ to training/\.")  # no val/ of images: not named
    (ade20k / "images" / "val").mkdir()  # an empty folder is no split
    with pytest.raises(DataError, match=fix):
        check_dataset(ade20k, "ade20k")
    (ade20k / "images" / "validation").rename(tmp_path / "moved")
    with pytest.raises(DataError, match=fix):  # nothing left that ade20k detects: a hint
        detect_format(ade20k)


def test_ade20k_keeps_its_150_classes_and_names_a_mask_holding_another_value(ade20k):
    mask = ade20k / "annotations" / "training" / "ADE_train_00000001.png"
    values = read_mask(mask)
    assert check_dataset(ade20k).splits["train"].num_classes == 150  # of which these masks hold 3
    write_png(torch.where(values == 3, 151, values).to(torch.uint8)[None], mask)
    with pytest.raises(DataError, match=r"annotations/training/ADE_train_00000001.png: values 151 outside the 150 classes of "
                                        r"the ade20k benchmark \(values 1..150, and 0 ignored\); use the annotations/ of"):
        check_dataset(ade20k)


def test_a_split_folder_on_one_side_only_is_reported(ade20k, tmp_path):
    import shutil

    shutil.rmtree(ade20k / "annotations" / "validation")
    with pytest.raises(DataError) as raised:
        check_dataset(ade20k)
    assert raised.value.problems == ["images/validation/ has no annotations/validation/ beside it, so the split val is "
                                     "left out: add that folder, as ADEChallengeData2016.zip unpacks it, or remove "
                                     "images/validation/."]
    shutil.rmtree(ade20k / "images" / "validation")
    assert list(check_dataset(ade20k).splits) == ["train"]
    no_val = CliRunner().invoke(cli, ["train", "--recipe", "seg", "--data", str(ade20k), "--val-every", "2", "--out",
                                      str(tmp_path / "run")])
    assert no_val.exit_code != 0 and ("(it has splits train); put held-out photos in images/validation/ and their masks "
                                      "in annotations/validation/, or drop --val-every.") in (
        " ".join(no_val.output.split()))
    val_only = write_ade20k(tmp_path / "val-only")
    for side in ("images", "annotations"):
        shutil.rmtree(val_only / side / "training")
    with pytest.raises(DataError, match=r"has no split 'train' \(found: val\); ask for one of those \(--split NAME of "
                                        r"gantk eval and gantk ablate\); gantk train reads the split 'train': add it as "
                                        r"the ade20k format lays splits out"):
        open_dataset(val_only)
    shutil.rmtree(val_only / "images" / "validation")
    (val_only / "images" / "training").mkdir()  # no split on both sides
    with pytest.raises(DataError, match=r"has no split of this format; gantk data check .*val-only --data-format ade20k "
                                        "says what it lacks"):
        open_dataset(val_only, format="ade20k", split="val")


def test_train_eval_and_translate_on_ade20k(ade20k, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    trained = runner.invoke(cli, [str(arg) for arg in (
        "train", "--recipe", "seg", "--data", ade20k, "--out", out, "--max-steps", 2, "--val-every", 2, *TINY_FLAGS)])
    assert trained.exit_code == 0, trained.output
    system = load_checkpoint(out)["system"]
    assert (system["data_format"], system["num_classes"], system["ignore_label"]) == ("ade20k", 150, 0)
    evaluated = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(ade20k), "--split", "val"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "3 images" in evaluated.output and "pixels of mask value 0 ignored" in evaluated.output
    rows = [line.split() for line in evaluated.output.splitlines()]
    header = rows.index(["class", "accuracy", "iou", "dice"])
    # classes shown by their mask values 1..3
    assert [row[:2] for row in rows[header + 1 : header + 4]] == [["1", "wall"], ["2", "building"], ["3", "sky"]]
    written = tmp_path / "masks"
    translated = runner.invoke(cli, ["translate", "--checkpoint", str(out), "--eval-mode",
                                     str(ade20k / "images" / "validation"), str(written)])
    assert translated.exit_code == 0, translated.output
    values = set(torch.cat([read_mask(path).flatten() for path in written.glob("*.png")]).unique().tolist())
    assert values and values <= set(range(1, 151))  # the classes written back as their values, never 0
