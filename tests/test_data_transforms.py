"""Paired augmentation: same parameters for A and B, pure in the seed, masks keep their ids."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import tv_tensors

from gantk.data import PairedTransform, open_dataset
from gantk.data.io import read_image, write_png
from gantk.data.transforms import normalize_image, to_uint8, to_unit
from gantk.errors import DataError


def ramp(height: int = 20, width: int = 20) -> torch.Tensor:
    """An image whose every pixel is distinct enough to reveal crops and flips."""
    x = torch.arange(width).repeat(height, 1) * 12 % 256
    y = torch.arange(height)[:, None].repeat(1, width) * 12 % 256
    return torch.stack([x, y, (x + y) % 256]).to(torch.uint8)


def paired_root(tmp_path: Path, count: int = 4) -> Path:
    for i in range(count):
        image = ramp(20, 24).roll(i, dims=-1)
        write_png(image, tmp_path / "A" / f"{i}.png")
        write_png(image, tmp_path / "B" / f"{i}.png")
    return tmp_path


def test_same_seed_same_crop_for_a_and_b_and_identical_repeat(tmp_path):
    ds = open_dataset(paired_root(tmp_path), load_size=22, crop_size=16)
    first = ds[(2, 99)]
    assert torch.equal(first["A"], first["B"])
    assert torch.equal(first["A"], ds[(2, 99)]["A"])
    assert len({ds[(2, seed)]["A"].sum().item() for seed in range(12)}) > 1


def test_seeded_items_leave_the_global_rng_alone(tmp_path):
    ds = open_dataset(paired_root(tmp_path), load_size=22, crop_size=16)
    state = torch.get_rng_state()
    ds[(0, 1)]
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(0)
    assert ds[1]["A"].shape == (3, 16, 16)  # plain index: a fresh seed from the global RNG


def test_flip_is_applied_to_both():
    transform = PairedTransform(load_size=None, crop_size=None, augment=True)
    a = tv_tensors.Image(ramp())
    mask = tv_tensors.Mask((torch.arange(20) % 3).repeat(20, 1))
    plain = PairedTransform(None, None, augment=False)({"A": a, "M": mask}, torch.Generator())
    flipped = 0
    for seed in range(10):
        out = transform({"A": a, "B": a, "M": mask}, torch.Generator().manual_seed(seed))
        assert torch.equal(out["A"], out["B"])
        if torch.equal(out["A"], plain["A"].flip(-1)):
            flipped += 1
            assert torch.equal(out["M"], plain["M"].flip(-1))
        else:
            assert torch.equal(out["A"], plain["A"]) and torch.equal(out["M"], plain["M"])
    assert 0 < flipped < 10
    no_flip = PairedTransform(None, None, augment=True, flip=False)
    assert all(torch.equal(no_flip({"A": a}, torch.Generator().manual_seed(s))["A"], plain["A"]) for s in range(5))


def test_masks_keep_their_ids_after_resize():
    ids = torch.randint(0, 7, (1, 13, 17)) * 3
    out = PairedTransform(load_size=40, crop_size=32)({"M": tv_tensors.Mask(ids)}, torch.Generator().manual_seed(0))
    assert out["M"].shape == (32, 32) and out["M"].dtype == torch.int64
    assert set(out["M"].unique().tolist()) <= set(ids.unique().tolist())


def test_without_augment_resizes_to_crop_size_and_never_flips():
    image = tv_tensors.Image(ramp(20, 30))
    transform = PairedTransform(load_size=286, crop_size=12, augment=False)
    outs = [transform({"A": image}, torch.Generator().manual_seed(s))["A"] for s in range(4)]
    assert outs[0].shape == (3, 12, 12) and all(torch.equal(outs[0], o) for o in outs)


def test_normalisation_range():
    image = tv_tensors.Image(torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 2))
    out = PairedTransform(None, None, augment=False)({"A": image}, torch.Generator())["A"]
    assert out.tolist() == [[[-1.0, 1.0]]]


def test_crop_larger_than_image_is_a_clear_error():
    with pytest.raises(DataError, match="crop_size 32 is larger"):
        PairedTransform(load_size=None, crop_size=32)({"A": tv_tensors.Image(ramp())}, torch.Generator())


def test_random_crops_reach_every_position():
    image = ramp(3, 4)  # pixel (0, 0) of a crop tells where it was taken: x = 12 * left, y = 12 * top
    transform = PairedTransform(load_size=None, crop_size=2, flip=False, normalize=False)
    corners = {tuple(transform({"A": tv_tensors.Image(image)}, torch.Generator().manual_seed(seed))["A"][:2, 0, 0].tolist())
               for seed in range(100)}
    assert corners == {(12 * left, 12 * top) for top in range(2) for left in range(3)}


def test_images_are_resized_bicubically_as_in_the_reference():
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    image = tv_tensors.Image(ramp(20, 24))
    out = PairedTransform(load_size=None, crop_size=16, augment=False, normalize=False)({"A": image}, torch.Generator())
    expected = F.resize(image, [16, 16], interpolation=InterpolationMode.BICUBIC, antialias=True)
    assert torch.equal(out["A"], expected.as_subclass(torch.Tensor))
    assert not torch.equal(out["A"], F.resize(image, [16, 16], antialias=True).as_subclass(torch.Tensor))


def test_to_uint8_inverts_normalize_image_and_clamps():
    pixels = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(to_uint8(normalize_image(pixels)), pixels)
    assert to_uint8(torch.tensor([-3.0, 1.5, 0.0])).tolist() == [0, 255, 128]
    assert to_unit(torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("source, size", [(200, 256), (256, 286), (1000, 256)])
def test_a_resized_mask_stays_on_its_image(source, size):
    """On average over objects, a resized mask puts an object where the resized image puts it."""
    transform = PairedTransform(load_size=None, crop_size=size, augment=False, normalize=False)
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    generator, offsets = torch.Generator().manual_seed(0), []
    for _ in range(16):
        top, left = torch.randint(0, source // 2, (2,), generator=generator).tolist()
        height, width = torch.randint(source // 8, source // 3, (2,), generator=generator).tolist()
        mask = torch.zeros(source, source, dtype=torch.int64)
        mask[top:top + height, left:left + width] = 1
        out = transform({"A": tv_tensors.Image((mask * 255).to(torch.uint8)[None]), "B": tv_tensors.Mask(mask[None])},
                        generator)
        weights = out["A"][0].double()
        image_centre = torch.stack([(weights * rows).sum(), (weights * cols).sum()]) / weights.sum()
        offsets.append(torch.nonzero(out["B"]).double().mean(0) - image_centre)
    # torch's plain "nearest" puts masks 0.37 to 0.5 px down and right of their images at these sizes
    mean_offset = torch.stack(offsets).mean(0)
    assert mean_offset.abs().max() < 0.1, mean_offset.tolist()


def test_a_crop_larger_than_the_image_on_either_side_is_refused():
    for height, width in ((20, 40), (40, 20)):
        image = tv_tensors.Image(torch.zeros(3, height, width, dtype=torch.uint8))
        with pytest.raises(DataError, match="crop_size 32 is larger than the image"):
            PairedTransform(load_size=None, crop_size=32)({"A": image}, torch.Generator().manual_seed(0))


def test_images_are_flipped_half_the_time():
    image = tv_tensors.Image(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    transform = PairedTransform(load_size=None, crop_size=None, flip=True, normalize=False)
    flipped = sum(int(transform({"A": image}, torch.Generator().manual_seed(seed))["A"][0, 0, 0]) == 255 for seed in range(400))
    assert 160 < flipped < 240  # 200 expected; the bounds are 4 standard deviations out


def test_an_image_that_resizing_would_make_too_large_is_refused_naming_its_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "100000")  # a thin 2x200 strip is 400 px, 64 on its short side 409,600
    for side in ("A", "B"):
        write_png(torch.zeros(3, 2, 200, dtype=torch.uint8), tmp_path / "train" / side / "strip.png")
    dataset = open_dataset(tmp_path, resize="short-side", load_size=64, crop_size=32)
    with pytest.raises(DataError, match=r"train/A/strip.png, .*train/B/strip.png: 200x2 resized to 64 px on its shorter side "
                                        r"would be 6400x64, 409,600 pixels, more than the 100,000 gantk decodes"):
        dataset[(0, 0)]
    with pytest.raises(DataError, match=r"train/A/strip.png, .*train/B/strip.png: crop_size 32 is larger than the image"):
        open_dataset(tmp_path, resize="none", load_size=None, crop_size=32)[(0, 0)]
    assert open_dataset(tmp_path, load_size=64, crop_size=32)[(0, 0)]["A"].shape == (3, 32, 32)  # squares: no larger than 64x64
    unaligned = tmp_path / "unaligned"  # one A beside three B: each item reads A's strip and a B drawn at random
    write_png(torch.zeros(3, 2, 200, dtype=torch.uint8), unaligned / "trainA" / "strip.png")
    for name in "xyz":
        write_png(torch.zeros(3, 20, 20, dtype=torch.uint8), unaligned / "trainB" / f"{name}.png")
    dataset = open_dataset(unaligned, resize="short-side", load_size=64, crop_size=32)
    for index in range(3):
        with pytest.raises(DataError, match=r"^\S*trainA/strip.png: 200x2 resized"):
            dataset[(index, 0)]

    class Transforming(type(dataset)):  # a plugin's dataset that calls transform itself: each side's file at the index
        def load(self, index, generator):
            return self.transform({"A": tv_tensors.Image(read_image(self.files["A"][0]))}, generator)

    plugin = Transforming(dataset.files["A"], dataset.files["B"], dataset.channels, dataset.transform)
    with pytest.raises(DataError, match=r"^\S*trainA/strip.png, \S*trainB/y.png: 200x2 resized"):
        plugin[(1, 0)]


def test_a_dataset_that_passes_unwrapped_masks_or_float_images_is_told_to_wrap_them(tmp_path):
    from gantk.data.datasets import GanDataset

    class Careless(GanDataset):
        """A plugin's dataset that passes its mask as a plain H x W tensor, or its image as floats."""

        def __init__(self, b):
            super().__init__({"A": [tmp_path / "a.png"], "B": [tmp_path / "b.png"]}, {"A": 3, "B": 1}, PairedTransform(36, 32))
            self.b = b

        def load(self, index, generator):
            image = tv_tensors.Image(torch.zeros(3, 40, 40, dtype=torch.uint8))
            return self.transformed({"A": image, "B": self.b}, generator, *(paths[0] for paths in self.files.values()))

    for b, described in ((torch.zeros(40, 40, dtype=torch.int64), "a 2-dimensional torch.int64 tensor"),
                         (torch.zeros(1, 40, 40), "a 3-dimensional torch.float32 tensor"),
                         (torch.zeros(40, 40, 1, dtype=torch.uint8).numpy(), "a ndarray")):
        with pytest.raises(DataError, match=f"a.png, .*b.png: side B is {described}, and the transform takes images as "
                                            r"tv_tensors.Image \(uint8, C x H x W\) and masks as tv_tensors.Mask"):
            Careless(b)[0]
    assert Careless(tv_tensors.Mask(torch.ones(1, 40, 40, dtype=torch.int64)))[0]["B"].shape == (32, 32)
