"""--resize short-side (the shorter side to the load size, the aspect ratio kept) and --resize none (no resize), in
training, validation, evaluation and translation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torchvision import tv_tensors
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from gantk.cli import cli
from gantk.data import PairedTransform, open_dataset, write_png
from gantk.data.batches import collate_same_size
from gantk.data.formats import AlignedFormat, DataFormat
from gantk.errors import DataError, OptionError
from gantk.evaluate import open_eval_split
from gantk.hookspecs import hookimpl
from gantk.metrics.fid import FeatureCollector
from gantk.plugins import load_components
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import LATER_SYSTEM_KEYS, load_checkpoint
from helpers import TINY_FLAGS, smooth_image


def wide_image(height: int = 30, width: int = 60) -> torch.Tensor:
    """A uint8 image whose pixels differ along both axes (a crop tells where it was taken)."""
    rows = torch.arange(height).view(-1, 1) * 4
    cols = torch.arange(width).view(1, -1) * 2
    return torch.stack([rows.expand(height, width), cols.expand(height, width), (rows + cols) % 256]).to(torch.uint8)


def write_wide_pairs(root: Path, sizes: list[tuple[int, int]]) -> Path:
    """A paired set in train/ and test/ of smooth images of the given ``(height, width)`` sizes."""
    for split in ("train", "test"):
        for side in "AB":
            (root / split / side).mkdir(parents=True, exist_ok=True)
        for i, (height, width) in enumerate(sizes):
            b = F.resize(smooth_image(i + (50 if split == "test" else 0), max(height, width)), [height, width], antialias=True)
            write_png(b.float().mean(0, keepdim=True).to(torch.uint8).expand(3, -1, -1).contiguous(),
                      root / split / "A" / f"{i}.png")
            write_png(b, root / split / "B" / f"{i}.png")
    return root


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_without_augment_the_shorter_side_takes_the_size_and_the_aspect_is_kept():
    image = tv_tensors.Image(wide_image(30, 60))
    out = PairedTransform(load_size=286, crop_size=16, augment=False, normalize=False, resize="short-side")(
        {"A": image}, torch.Generator())["A"]
    expected = F.resize(image, 16, interpolation=InterpolationMode.BICUBIC, antialias=True).as_subclass(torch.Tensor)
    assert out.shape == (3, 16, 32) and torch.equal(out, expected)
    tall = PairedTransform(load_size=None, crop_size=16, augment=False, resize="short-side")(
        {"A": tv_tensors.Image(wide_image(60, 30))}, torch.Generator())["A"]
    assert tall.shape == (3, 32, 16)


def test_training_crops_are_windows_of_the_aspect_kept_resize_and_masks_stay_on_their_images():
    image = wide_image(30, 60)
    mask = (image[1] // 40).to(torch.int64)[None]  # ids that follow the columns, as the image's green does
    transform = PairedTransform(load_size=20, crop_size=16, flip=False, normalize=False, resize="short-side")
    resized = F.resize(tv_tensors.Image(image), 20, interpolation=InterpolationMode.BICUBIC, antialias=True)
    resized_mask = F.resize(tv_tensors.Mask(mask), 20, interpolation=InterpolationMode.NEAREST_EXACT)
    assert resized.shape[-2:] == (20, 40)
    lefts = set()
    for seed in range(40):
        out = transform({"A": tv_tensors.Image(image), "M": tv_tensors.Mask(mask)}, torch.Generator().manual_seed(seed))
        assert out["A"].shape == (3, 16, 16) and out["M"].shape == (16, 16)
        windows = [(top, left) for top in range(5) for left in range(25)
                   if torch.equal(out["A"], resized[:, top:top + 16, left:left + 16].as_subclass(torch.Tensor))]
        assert windows, "a crop that is no window of the shorter-side resize"
        top, left = windows[0]
        assert torch.equal(out["M"], resized_mask[0, top:top + 16, left:left + 16].as_subclass(torch.Tensor))
        lefts.add(left)
    assert max(lefts) > 5 + 4  # crops reach beyond where a squashed square resize would end (width 20)


def test_without_resizing_crops_come_from_the_image_as_it_is():
    image = wide_image(30, 60)
    transform = PairedTransform(load_size=286, crop_size=16, flip=False, normalize=False, resize="none")
    for seed in range(10):
        out = transform({"A": tv_tensors.Image(image)}, torch.Generator().manual_seed(seed))["A"]
        assert out.shape == (3, 16, 16)
        assert any(torch.equal(out, image[:, top:top + 16, left:left + 16]) for top in range(15) for left in range(45))
    whole = PairedTransform(load_size=286, crop_size=16, augment=False, normalize=False, resize="none")
    assert torch.equal(whole({"A": tv_tensors.Image(image)}, torch.Generator())["A"], image)
    with pytest.raises(DataError, match=r"crop_size 40 is larger than the image \(60x30\); pass a smaller crop_size or "
                                        r"resize the images"):
        PairedTransform(load_size=286, crop_size=40, resize="none")({"A": tv_tensors.Image(image)}, torch.Generator())


def test_an_unknown_resize_mode_is_refused(tmp_path):
    with pytest.raises(OptionError, match="resize='shortest' is not valid; choose one of: square, short-side, none"):
        PairedTransform(resize="shortest")
    with pytest.raises(OptionError, match="resize='shortest'"):
        open_dataset(write_wide_pairs(tmp_path, [(20, 40)]), resize="shortest")


def test_datasets_keep_each_image_shape_without_augment(tmp_path):
    root = write_wide_pairs(tmp_path, [(20, 40), (30, 30)])
    items = open_dataset(root, split="test", load_size=None, crop_size=16, augment=False, resize="short-side")
    assert [tuple(items[i]["B"].shape) for i in range(2)] == [(3, 16, 32), (3, 16, 16)]
    train = open_dataset(root, load_size=24, crop_size=16, resize="short-side")
    assert all(train[i]["A"].shape == (3, 16, 16) for i in range(2))


class SquareOnly(AlignedFormat):
    """An aligned set whose open takes no resize argument, as a format written before it."""

    name = "square-only"

    def open(self, root, *, split="train", direction="AtoB", load_size=286, crop_size=256, augment=True, flip=True):
        return super().open(root, split=split, direction=direction, load_size=load_size, crop_size=crop_size,
                            augment=augment, flip=flip)


class SquareOnlyPlugin:
    @hookimpl
    def gantk_register_data_formats(self, registry):
        registry.add(SquareOnly.name, SquareOnly)


def test_a_format_whose_open_takes_no_resize_serves_squares_and_refuses_short_side(tmp_path):
    components = load_components(autoload=False, plugins=[SquareOnlyPlugin()])
    write_png(torch.zeros(3, 10, 20, dtype=torch.uint8), tmp_path / "0.png")
    options = dict(format="square-only", load_size=8, crop_size=8, components=components)
    assert open_dataset(tmp_path, **options)[0]["A"].shape == (3, 8, 8)
    with pytest.raises(OptionError, match=r"the square-only format resizes images to squares only .*--resize square"):
        open_dataset(tmp_path, resize="short-side", **options)
    assert "resize" in __import__("inspect").signature(DataFormat.open).parameters


def test_a_batch_of_images_of_two_shapes_is_refused_naming_them():
    items = [{"A": torch.zeros(3, 16, 32), "A_path": "wide.png"}, {"A": torch.zeros(3, 16, 16), "A_path": "square.png"}]
    with pytest.raises(DataError, match=r"wide.png and square.png come out in different sizes \(32x16 and 16x16\).*--batch-size 1; "
                                        r"--eval-batch-size 1 in gantk ablate"):
        collate_same_size(items)
    assert collate_same_size([items[0], items[0]])["A"].shape == (2, 3, 16, 32)


def test_inception_features_take_images_of_several_shapes():
    seen = []

    def features(images):
        seen.append(tuple(images.shape))
        return images.mean((2, 3))

    collector = FeatureCollector(features)
    for shape in [(1, 3, 16, 32), (1, 3, 16, 32), (1, 3, 16, 16)]:
        collector.add("fake", torch.rand(shape))
        collector.add("real", torch.rand(shape))
    real, fake = collector.finish()
    assert real.shape == fake.shape == (3, 3)
    assert sorted(set(seen)) == [(1, 3, 16, 16), (2, 3, 16, 32)]


def test_unpaired_evaluation_keeps_each_image_shape(tmp_path):
    for side, shape in (("testA", (20, 40)), ("testB", (40, 20))):
        write_png(smooth_image(0, 40)[:, : shape[0], : shape[1]].contiguous(), tmp_path / side / "0.png")
    config = {"channels": {"A": 3, "B": 3}, "load_size": 36, "crop_size": 16, "resize": "short-side", "direction": "AtoB"}
    split = open_eval_split(tmp_path, config, "test", "unaligned", None)
    assert [tuple(split.sides[side][0]["A"].shape) for side in "AB"] == [(3, 16, 32), (3, 32, 16)]


def test_keeping_the_shape_needs_a_crop_size_and_loader_augmentation():
    with pytest.raises(OptionError, match="--augment-on device batches images before cropping.*--resize short-side"):
        TrainConfig(resize="short-side", crop_size=32, augment_on="device").validate()
    with pytest.raises(OptionError, match="--resize short-side keeps each image's shape.*set --crop-size"):
        TrainConfig(resize="short-side").validate()
    with pytest.raises(OptionError, match="--resize none keeps each image's shape.*set --crop-size"):
        TrainConfig(resize="none").validate()
    with pytest.raises(OptionError, match="--resize must be one of square, short-side, none"):
        TrainConfig(resize="shortest").validate()
    TrainConfig(resize="none", load_size=286, crop_size=512).validate()  # the load size is not used
    with pytest.raises(OptionError, match="--crop-size 512 is larger than --load-size 286"):
        TrainConfig(load_size=286, crop_size=512).validate()


def test_checkpoints_made_before_the_option_load_as_square():
    assert LATER_SYSTEM_KEYS["resize"] == "square"


def test_train_validate_eval_and_translate_keep_each_image_shape(tmp_path):
    # 40x70 and 40x40 images: at a 32 px shorter side, 32x56 (no multiple of the U-Net's 32: padded) and 32x32
    data = write_wide_pairs(tmp_path / "data", [(40, 70), (40, 40), (40, 70)])
    out = tmp_path / "run"
    result = run("train", "--data", data, "--out", out, "--resize", "short-side", "--max-steps", "2", "--val-every", "2",
                 *TINY_FLAGS)
    assert result.exit_code == 0, result.output
    assert (out / "validation.csv").read_text().count("\n") == 2
    checkpoint = load_checkpoint(out / "checkpoint-00000002.pt")
    assert checkpoint["system"]["resize"] == "short-side"

    scored = run("eval", "--checkpoint", out, "--data", data, "--json", "--no-progress")
    assert scored.exit_code == 0, scored.output
    mixed = run("eval", "--checkpoint", out, "--data", data, "--batch-size", "2", "--no-progress")
    assert mixed.exit_code != 0 and ("--batch-size 2: the model was trained with --resize short-side, so each output keeps "
                                     "its input's aspect ratio, and the inputs have 2 aspect ratios (0.png 70x40, 1.png "
                                     "40x40)") in " ".join(mixed.output.split())  # before any is scored

    for size, expected in (("crop", [(56, 32), (32, 32), (56, 32)]), ("original", [(70, 40), (40, 40), (70, 40)])):
        written = run("translate", "--checkpoint", out, data / "test" / "A", tmp_path / size, "--size", size)
        assert written.exit_code == 0, written.output
        from PIL import Image

        assert [Image.open(tmp_path / size / f"{i}.png").size for i in range(3)] == expected
    batched = run("translate", "--checkpoint", out, data / "test" / "A", tmp_path / "batched", "--batch-size", "2")
    assert batched.exit_code != 0 and not (tmp_path / "batched").exists()  # refused before any is written
    assert ("--batch-size 2: the model was trained with --resize short-side, so each output keeps its input's aspect ratio, "
            "and the inputs have 2 aspect ratios (0.png 70x40, 1.png 40x40), whose outputs cannot share a batch: use "
            "--batch-size 1.") in " ".join(batched.output.split())
    (data / "test" / "A" / "1.png").unlink()  # the others share their aspect ratio: a batch
    assert run("translate", "--checkpoint", out, data / "test" / "A", tmp_path / "batched", "--batch-size", "2").exit_code == 0


def test_resuming_with_another_resize_is_refused(tmp_path):
    data = write_wide_pairs(tmp_path / "data", [(40, 60), (40, 40)])
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), resize="short-side", load_size=36, crop_size=32,
                         batch_size=2, workers=0, max_steps=1, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})
    Trainer(config, progress=False).fit()
    result = run("train", "--resume", tmp_path / "run", "--max-steps", "2", "--resize", "square")
    assert result.exit_code != 0 and "cannot change --resize (the run has --resize short-side)" in result.output


def test_without_resizing_the_model_trains_and_runs_at_the_images_own_scale(tmp_path):
    data = write_wide_pairs(tmp_path / "data", [(40, 70), (48, 48)])
    out = tmp_path / "run"
    flags = [flag for flag in TINY_FLAGS]
    flags[flags.index("--load-size") + 1] = "16"  # unused: no refusal of a crop above it
    too_large = run("train", "--data", data, "--out", out, "--resize", "none", "--max-steps", "1", *flags[:2], "--crop-size",
                    "48", *flags[4:])
    assert too_large.exit_code != 0 and ("--crop-size 48 is larger than the smallest training images of "
                                         f"{data} (40 px on their shorter side, as {data / 'train' / 'A' / '0.png'}), which --resize none "
                                         "leaves as they are: "
                                         "lower --crop-size to 40 or less") in " ".join(too_large.output.split())
    trained = run("train", "--data", data, "--out", out, "--resize", "none", "--max-steps", "2", "--val-every", "2", *flags)
    assert trained.exit_code == 0, trained.output
    assert (out / "validation.csv").read_text().count("\n") == 2
    written = run("translate", "--checkpoint", out, data / "test" / "A", tmp_path / "out")
    assert written.exit_code == 0, written.output
    from PIL import Image

    assert [Image.open(tmp_path / "out" / f"{i}.png").size for i in range(2)] == [(70, 40), (48, 48)]


def test_without_resizing_a_crop_of_the_smallest_images_size_is_taken_and_the_load_size_is_not_warned_of(tmp_path):
    import warnings

    from gantk.errors import GantkWarning

    data = write_wide_pairs(tmp_path / "data", [(40, 70), (48, 48)])  # 40 px on the shorter side at least
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), resize="none", load_size=286, crop_size=40, batch_size=2,
                         workers=0)  # a load size that would enlarge them, unused
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*enlarges", GantkWarning)
        Trainer(config, progress=False).open_data()


def test_the_inputs_batched_in_scoring_are_the_pairs_inputs_or_each_unpaired_side(tmp_path):
    from gantk.data.batches import refuse_outputs_of_several_sizes, scored_inputs
    from gantk.data.datasets import UnpairedSplit
    from gantk.errors import OptionError

    pairs = write_wide_pairs(tmp_path / "pairs", [(40, 70), (40, 40)])
    paired = open_dataset(pairs, split="test", augment=False)
    assert scored_inputs(paired) == [paired.files["A"]]
    for name, size in (("trainA/0.png", (40, 40)), ("trainB/0.png", (40, 70)), ("trainB/1.png", (20, 35))):  # B: one aspect ratio
        write_png(torch.zeros(3, *size, dtype=torch.uint8), tmp_path / "u" / name)
    unpaired = UnpairedSplit.of(open_dataset(tmp_path / "u", augment=False))
    assert scored_inputs(unpaired) == [unpaired.sides["A"].files["A"], unpaired.sides["B"].files["A"]]
    for inputs in scored_inputs(unpaired):
        refuse_outputs_of_several_sizes(inputs, "short-side", 2)  # each side keeps one aspect ratio
    with pytest.raises(OptionError, match=r"the inputs have 2 sizes \(0.png 70x40, 1.png 35x20\)"):
        refuse_outputs_of_several_sizes(unpaired.sides["B"].files["A"], "none", 2)
