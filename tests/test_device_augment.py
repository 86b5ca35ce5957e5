"""Crop and flip on the training device (--augment-on device): the loader's augmentation, moved."""

import csv
import dataclasses

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.data import open_dataset
from gantk.data.device_augment import DeviceAugment
from gantk.data.transforms import normalize_image
from gantk.errors import DataError, OptionError
from gantk.train import TrainConfig, Trainer
from helpers import DEVICES, train_interrupted_then_resumed, without_timings, write_paired, write_segmentation, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, log_every=1, sample_every=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8}, augment_on="device")


def coded_batch(count, size=6):
    """uint8 images whose pixel values give their position, and masks of the same codes."""
    codes = torch.arange(size * size).reshape(1, size, size).repeat(count, 1, 1)
    return {"A": codes[:, None].repeat(1, 3, 1, 1).to(torch.uint8), "B": codes.clone(), "A_path": ["a"] * count}


def choice(crop, size=6):
    """(top, left, flipped) of a crop of a coded image."""
    flipped = bool(crop[0, 0] > crop[0, -1])
    first = int(crop[0, -1] if flipped else crop[0, 0])
    top, left = divmod(first, size)
    expected = torch.arange(size * size).reshape(size, size)[top:top + crop.shape[0], left:left + crop.shape[1]]
    assert torch.equal(crop, expected.flip(-1) if flipped else expected), "not a crop of the input"
    return top, left, flipped


@pytest.mark.parametrize("device", DEVICES)
def test_image_and_mask_of_a_sample_share_one_crop_and_flip(device):
    batch = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in coded_batch(400).items()}
    torch.manual_seed(0)
    out = DeviceAugment(crop_size=4, flip=True)(batch)
    assert out["A"].device.type == out["B"].device.type == device
    out = {key: value.cpu() if isinstance(value, torch.Tensor) else value for key, value in out.items()}
    assert out["A"].dtype == torch.float32 and out["A"].shape == (400, 3, 4, 4)
    assert out["B"].dtype == torch.int64 and out["B"].shape == (400, 4, 4)
    assert out["A_path"] == ["a"] * 400
    image_codes = ((out["A"] + 1) * 127.5).round().long()
    assert torch.equal(image_codes[:, 0], out["B"]) and torch.equal(image_codes[:, 2], out["B"])
    choices = [choice(mask) for mask in out["B"]]
    # every one of the 3 x 3 offsets, flipped and not, is drawn
    assert set(choices) == {(top, left, flipped) for top in range(3) for left in range(3) for flipped in (False, True)}


def test_unpaired_sides_get_choices_of_their_own():
    batch = coded_batch(50)
    batch["B"] = batch["A"].clone()
    torch.manual_seed(0)
    out = DeviceAugment(crop_size=4, flip=True, paired=False)(batch)
    a = [choice(((x[0] + 1) * 127.5).round().long()) for x in out["A"]]
    b = [choice(((x[0] + 1) * 127.5).round().long()) for x in out["B"]]
    assert sum(x != y for x, y in zip(a, b)) > 25


def test_without_flip_nothing_is_flipped_and_without_crop_only_normalised():
    torch.manual_seed(0)
    out = DeviceAugment(crop_size=4, flip=False)(coded_batch(100))
    assert not any(choice(mask)[2] for mask in out["B"])
    batch = coded_batch(3)
    out = DeviceAugment(crop_size=None, flip=False)(batch)
    assert torch.equal(out["A"], normalize_image(batch["A"])) and torch.equal(out["B"], batch["B"])
    already = torch.rand(2, 3, 6, 6) * 2 - 1  # float images (a format that cannot leave them uint8) pass as they are
    assert torch.equal(DeviceAugment(crop_size=None, flip=False)({"A": already})["A"], already)


def test_a_crop_larger_than_the_images_names_the_fix():
    with pytest.raises(DataError, match="crop_size 8 is larger than the A images .6x6.*load_size"):
        DeviceAugment(crop_size=8, flip=True)(coded_batch(2))


def test_images_too_narrow_for_the_crop_are_refused_too():
    batch = coded_batch(2, size=8)
    batch["A"], batch["B"] = batch["A"][..., :5], batch["B"][..., :5]
    with pytest.raises(DataError, match="crop_size 6 is larger than the A images .5x8"):
        DeviceAugment(crop_size=6, flip=True)(batch)


def test_device_crops_are_crops_of_what_the_loader_would_make(tmp_path):
    pairs = write_paired(tmp_path / "pairs", count=2, size=40)
    raw = open_dataset(pairs, load_size=36, crop_size=None, flip=False, normalize=False)[(0, 0)]
    loader = open_dataset(pairs, load_size=36, crop_size=None, flip=False)[(0, 0)]
    assert raw["A"].dtype == torch.uint8 and raw["A"].shape == (3, 36, 36)
    assert torch.equal(normalize_image(raw["A"]), loader["A"])
    batch = {key: raw[key][None].repeat(20, 1, 1, 1) for key in ("A", "B")}
    torch.manual_seed(0)
    out = DeviceAugment(crop_size=32, flip=True)(batch)
    for a, b in zip(out["A"], out["B"]):
        matches = [(top, left, flipped) for top in range(5) for left in range(5) for flipped in (False, True)
                   if torch.equal(a, _crop(loader["A"], top, left, flipped)) and torch.equal(b, _crop(loader["B"], top, left, flipped))]
        assert matches


def _crop(image, top, left, flipped):
    crop = image[..., top:top + 32, left:left + 32]
    return crop.flip(-1) if flipped else crop


def read_losses(run):
    with (run / "metrics.csv").open() as handle:
        return without_timings(csv.DictReader(handle))


@pytest.mark.parametrize("device", DEVICES)
def test_trainer_hands_the_loader_uint8_and_the_system_crops(tmp_path, device):
    pairs = write_paired(tmp_path / "pairs")
    trainer = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), device=device, **TINY), progress=False)
    dataset, _ = trainer.open_data()
    assert dataset[(0, 0)]["A"].dtype == torch.uint8 and dataset[(0, 0)]["A"].shape == (3, 36, 36)
    seen = []
    original = trainer.augmented_on_device
    trainer.augmented_on_device = lambda batch, device: seen.append(original(batch, device)) or seen[-1]
    trainer.config.max_steps = 2
    trainer.fit()
    assert seen[0]["A"].device.type == device
    assert seen[0]["A"].dtype == torch.float32 and seen[0]["A"].shape == (2, 3, 32, 32)
    assert -1 <= seen[0]["A"].min() and seen[0]["A"].max() <= 1


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    pairs = write_paired(tmp_path / "pairs", size=72)
    # 64 px: the fitted U-Net has a dropout level; crops and dropout draw from the same RNG
    config = dict(TINY, load_size=72, crop_size=64, max_steps=7)

    def run(out, stop_at=None):
        train_interrupted_then_resumed(TrainConfig(data=str(pairs), out=str(out), **config), stop_at)
        return read_losses(out)

    assert run(tmp_path / "resumed", stop_at=3) == run(tmp_path / "straight")
    loader_side = tmp_path / "loader-side"
    Trainer(TrainConfig(data=str(pairs), out=str(loader_side), **dict(config, augment_on="loader")), progress=False).fit()
    assert read_losses(loader_side) != read_losses(tmp_path / "straight")  # other crops: the option is in effect


@pytest.mark.parametrize("recipe", ["seg", "cyclegan"])
def test_masks_and_unaligned_data_train(tmp_path, recipe):
    if recipe == "seg":
        data, extra = write_segmentation(tmp_path / "data", num_classes=3), {"gen_opt": {"ngf": 8}}
    else:
        data, extra = write_unaligned(tmp_path / "data"), {"gen": "resnet6", "gen_opt": {"ngf": 8}}
    config = TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), **{**TINY, **extra, "max_steps": 2})
    trainer = Trainer(config, progress=False)
    trainer.fit()
    assert trainer.device_augment.paired == (recipe == "seg")
    assert len(read_losses(tmp_path / "run")) == 2


def test_device_augmentation_needs_a_load_size(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    trainer = Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), **TINY), progress=False)
    with pytest.raises(OptionError, match="--augment-on device.*--load-size"):  # as a recipe without a load size leaves it
        dataclasses.replace(trainer.config, load_size=None).validate()
    with pytest.raises(OptionError, match="--augment-on must be one of loader, device"):
        TrainConfig(augment_on="gpu").validate()


def test_cli_flag(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    args = ["train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--augment-on", "device", "--max-steps", "1",
            "--load-size", "36", "--crop-size", "32", "--workers", "0", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert 'augment_on = "device"' in (tmp_path / "run" / "config.toml").read_text()
    result = CliRunner().invoke(cli, args[:5] + ["--augment-on", "gpu"])
    assert result.exit_code != 0 and "'gpu' is not one of 'loader', 'device'" in result.output
