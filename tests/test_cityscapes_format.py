"""The cityscapes data format: leftImg8bit/ photos with gtFine/ training-id masks, as the archives unpack."""

from pathlib import Path

import pytest
import torch

from gantk.data import check_dataset, detect_format, open_dataset, write_png
from gantk.data.cityscapes import CityscapesFormat
from gantk.errors import DataError
from gantk.evaluate import evaluate
from gantk.train import TrainConfig, Trainer
from helpers import smooth_image

CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"]}


def write_cityscapes(root: Path, per_city: int = 2, size: int = 32) -> Path:
    """Photos and masks of training ids 0..2 with 255 borders per city; the test masks all 255, as
    Cityscapes' test labels are placeholders; labelIds and colour files beside them, as unpacked."""
    for split, cities in CITIES.items():
        for c, city in enumerate(cities):
            for i in range(per_city):
                name = f"{city}_{c:06d}_{i:06d}"
                image = smooth_image(10 * c + i, size)
                ids = (image.float().mean(0) * 3 / 256).long().clamp(max=2)
                ids[:, :: size // 4] = 255
                if split == "test":
                    ids[:] = 255
                write_png(image, root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
                masks = root / "gtFine" / split / city
                write_png(ids.to(torch.uint8)[None], masks / f"{name}_gtFine_labelTrainIds.png")
                write_png((ids.clamp(max=33) + 7).to(torch.uint8)[None], masks / f"{name}_gtFine_labelIds.png")
                write_png(image, masks / f"{name}_gtFine_color.png")
    return root


@pytest.fixture
def cityscapes(tmp_path):
    return write_cityscapes(tmp_path / "cityscapes")


def test_cityscapes_is_detected_with_its_splits_and_void_ignored(cityscapes):
    assert detect_format(cityscapes) == "cityscapes"
    summary = check_dataset(cityscapes)
    assert {name: split.items for name, split in summary.splits.items()} == {"train": 4, "val": 2}  # test: placeholders
    assert all(split.num_classes == 19 and split.ignore_label == 255 for split in summary.splits.values())  # the benchmark's, of which the masks hold 3
    train = open_dataset(cityscapes, augment=False, load_size=None, crop_size=None)
    assert all(Path(mask).name.endswith("_gtFine_labelTrainIds.png") for mask in train.files["B"])
    assert all(Path(a).name.replace("leftImg8bit", "gtFine_labelTrainIds") == Path(b).name
               for a, b in zip(train.files["A"], train.files["B"]))
    assert set(torch.cat([train[(i, 0)]["B"].flatten() for i in range(len(train))]).tolist()) == {-1, 0, 1, 2}
    names = CityscapesFormat().class_names(cityscapes)
    assert len(names) == 19 and names[:3] == ["road", "sidewalk", "building"] and names[-1] == "bicycle"
    assert CityscapesFormat().class_names(cityscapes, ignore_label=254) is None  # ids counted otherwise


def test_cityscapes_counts_its_19_classes_without_an_ignore_label_given(cityscapes):
    from gantk.data.opening import get_format

    assert get_format("cityscapes").num_classes(cityscapes) == 19  # 255, in every mask, ignored as void


def test_cityscapes_problems_name_the_missing_mask_and_how_to_write_them(cityscapes):
    missing = cityscapes / "gtFine" / "train" / "bochum" / "bochum_000001_000000_gtFine_labelTrainIds.png"
    missing.unlink()
    (cityscapes / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000001_leftImg8bit.png").unlink()
    for mask in (cityscapes / "gtFine" / "val").rglob("*_labelTrainIds.png"):
        mask.unlink()
    with pytest.raises(DataError) as raised:
        check_dataset(cityscapes)
    assert raised.value.problems == [
        "leftImg8bit/train/bochum/bochum_000001_000000_leftImg8bit.png: no mask "
        "gtFine/train/bochum/bochum_000001_000000_gtFine_labelTrainIds.png; add it or delete the photo.",
        "gtFine/train/aachen/aachen_000000_000001_gtFine_labelTrainIds.png: no photo "
        "leftImg8bit/train/aachen/aachen_000000_000001_leftImg8bit.png; add it or delete the mask.",
        f"gtFine/val/: no *_gtFine_labelTrainIds.png masks; write them with cityscapesScripts: pip install "
        f"cityscapesscripts, then CITYSCAPES_DATASET={cityscapes} csCreateTrainIdLabelImgs.",
    ]


def test_label_ids_saved_as_training_ids_are_named_with_how_to_write_the_training_ids(cityscapes):
    for mask in (cityscapes / "gtFine" / "train" / "aachen").glob("*_labelTrainIds.png"):
        mask.write_bytes(mask.with_name(mask.name.replace("labelTrainIds", "labelIds")).read_bytes())
    with pytest.raises(DataError) as raised:
        check_dataset(cityscapes)
    assert len(raised.value.problems) == 2 and raised.value.problems[0].startswith(
        "gtFine/train/aachen/aachen_000000_000000_gtFine_labelTrainIds.png: values 40 outside the 19 classes of the "
        "cityscapes benchmark (values 0..18, and 255 ignored); the _labelTrainIds.png masks hold the training ids")


def test_broken_links_in_cityscapes_are_named_as_such(cityscapes):
    photo = cityscapes / "leftImg8bit" / "train" / "aachen" / "aachen_000000_000000_leftImg8bit.png"
    mask = cityscapes / "gtFine" / "train" / "bochum" / "bochum_000001_000000_gtFine_labelTrainIds.png"
    for link in (photo, mask):
        link.unlink()
        link.symlink_to(cityscapes / "gone.png")
    with pytest.raises(DataError) as raised:
        check_dataset(cityscapes)
    assert raised.value.problems == [
        f"{relative}: a broken link (its target {cityscapes / 'gone.png'} does not exist); point it at the file or delete it."
        for relative in ("leftImg8bit/train/aachen/aachen_000000_000000_leftImg8bit.png",
                         "gtFine/train/bochum/bochum_000001_000000_gtFine_labelTrainIds.png")
    ]


def test_folders_without_a_labelled_split_in_common_are_reported(cityscapes):
    for split in ("train", "val"):
        for path in sorted((cityscapes / "gtFine" / split).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (cityscapes / "gtFine" / split).rmdir()
    with pytest.raises(DataError, match="leftImg8bit/ and gtFine/ share no split with labels"):
        check_dataset(cityscapes)


def test_photos_without_labels_are_hinted(tmp_path):
    root = write_cityscapes(tmp_path / "cityscapes", per_city=1)
    for path in sorted((root / "gtFine").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "gtFine").rmdir()
    with pytest.raises(DataError, match="leftImg8bit/ without gtFine/; for the cityscapes format, unpack gtFine_trainvaltest.zip"):
        detect_format(root)


def test_train_and_evaluate_on_cityscapes(cityscapes, tmp_path):
    config = TrainConfig(recipe="seg", data=str(cityscapes), out=str(tmp_path / "run"), load_size=32, crop_size=32,
                         batch_size=2, workers=0, max_steps=2, val_every=2, val_split="val", gen_opt={"ngf": 8},
                         disc_opt={"ndf": 8})
    run = Trainer(config, progress=False).fit()
    scores = evaluate(run, cityscapes, split="val")
    assert scores["data_format"] == "cityscapes" and scores["images"] == 2
    assert 0 <= scores["metrics"]["pixel_accuracy"] <= 1
    with pytest.raises(DataError, match=r"has no split 'test' \(found: train, val\)") as raised:
        evaluate(run, cityscapes, split="test")
    assert "Note" not in str(raised.value)  # the model's ignore label has nothing to do with it
