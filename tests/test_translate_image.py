"""TrainedModel.translate_image: one image in memory translated as gantk translate translates its file (CPU, 32 px)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.data import read_image, write_png
from gantk.errors import DataError, OptionError
from gantk.inference import TRANSLATE_SIZES, TrainedModel
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import write_paired, write_segmentation, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})
RUNS = {  # recipe, data, settings: an image model of gray inputs, masks of 3 classes, labels to images, CycleGAN
    "image": ("pix2pix", lambda root: write_paired(root, count=3, channels_a=1), {}),
    "mask": ("seg", lambda root: write_segmentation(root, count=3, num_classes=3), {}),
    "labels": ("pix2pix", lambda root: write_segmentation(root, count=3, num_classes=4), {"direction": "BtoA"}),
    "cycle": ("cyclegan", lambda root: write_unaligned(root, count_a=3, count_b=3), {}),
    "dropout": ("pix2pix", lambda root: write_paired(root, count=3, size=64), {"load_size": 64, "crop_size": 64}),
}
# the labels model's data: its random masks of 4 classes leave out class 0
pytestmark = pytest.mark.filterwarnings("ignore:.*no training mask holds a pixel of class 0")


def trained(name, tmp_path_factory) -> TrainedModel:
    recipe, write_data, settings = RUNS[name]
    root = tmp_path_factory.mktemp(name)
    run = Trainer(TrainConfig(recipe=recipe, data=str(write_data(root / "data")), out=str(root / "run"),
                              **{**TINY, **settings}), progress=False).fit()
    return TrainedModel.load(run)


@pytest.fixture(scope="module", params=["image", "mask", "labels", "cycle"])
def model(request, tmp_path_factory):
    return trained(request.param, tmp_path_factory)


def input_file(model: TrainedModel, folder) -> str:
    """A 48 x 40 input the model takes (an RGB photo, or a label model's mask): no side a multiple of its 32 px."""
    folder.mkdir()
    generator = torch.Generator().manual_seed(1)
    if model.input_classes is not None:
        return str(write_png(torch.randint(0, model.input_classes, (1, 40, 48), generator=generator, dtype=torch.uint8),
                             folder / "in.png"))
    return str(write_png(torch.randint(0, 256, (3, 40, 48), generator=generator, dtype=torch.uint8), folder / "in.png"))


@pytest.mark.parametrize("resize", ["square", "short-side", "none"])  # as trained with --resize
@pytest.mark.parametrize("size", TRANSLATE_SIZES)
def test_an_image_in_memory_is_translated_as_its_file_is(model, size, resize, tmp_path, monkeypatch):
    monkeypatch.setitem(model.config, "resize", resize)
    path = input_file(model, tmp_path / "inputs")
    directions = ["AtoB", "BtoA"] if model.config["recipe"] == "cyclegan" else ["AtoB"]
    for direction in directions:
        (written,) = translate(model, path, tmp_path / direction, size=size, direction=direction, progress=False)
        with model.seeded(0, input_file=path), Image.open(path) as image:
            result = model.translate_image(image, direction, size=size)
        with Image.open(written) as expected:
            assert (result.mode, result.size, result.getpalette()) == (expected.mode, expected.size, expected.getpalette())
            assert np.array_equal(np.asarray(result), np.asarray(expected))
        crop = {"square": (32, 32), "short-side": (38, 32), "none": (48, 40)}[resize]
        assert result.size == (crop if size == "crop" else (48, 40))


def test_tiles_are_translated_as_translate_tiles_them(model, tmp_path):
    path = input_file(model, tmp_path / "inputs")
    (written,) = translate(model, path, tmp_path / "out", size="native", tile=32, tile_overlap=8, progress=False)
    with model.seeded(0, input_file=path), Image.open(path) as image:
        result = model.translate_image(image, size="native", tile=32, overlap=8)
        untiled = model.translate_image(image, size="native")
    assert np.array_equal(np.asarray(result), np.asarray(Image.open(written)))
    assert not np.array_equal(np.asarray(untiled), np.asarray(result))  # tiles see less of the image


def test_masks_are_the_values_a_model_trained_with_the_ignore_label_0_writes(model, tmp_path, monkeypatch):
    if model.num_classes is None:
        pytest.skip("a mask model's outputs")
    monkeypatch.setitem(model.config, "ignore_label", 0)  # classes 0..K-1 from the values 1..K, 0 ignored
    path = input_file(model, tmp_path / "inputs")
    (written,) = translate(model, path, tmp_path / "out", progress=False)
    with model.seeded(0, input_file=path), Image.open(path) as image:
        result = model.translate_image(image)
    assert np.array_equal(np.asarray(result), np.asarray(Image.open(written))) and np.asarray(result).min() >= 1


def test_seeded_by_a_file_name_it_draws_the_dropout_noise_translate_draws_for_that_file(tmp_path_factory, tmp_path):
    model = trained("dropout", tmp_path_factory)  # 64 px crops: a U-Net with one level of dropout
    assert any(isinstance(module, torch.nn.Dropout) for module in model.system.modules())
    path = input_file(model, tmp_path / "inputs")
    (written,) = translate(model, path, tmp_path / "out", seed=3, progress=False)
    results = {}
    for name in (path, "other.png"):
        with model.seeded(3, input_file=name), Image.open(path) as image:
            results[name] = np.asarray(model.translate_image(image))
    assert np.array_equal(results[path], np.asarray(Image.open(written)))
    assert not np.array_equal(results["other.png"], results[path])  # the noise differs, and shows


def test_pixels_are_taken_as_a_pil_image_a_tensor_or_a_numpy_array(model, tmp_path):
    if model.input_classes is not None:
        pytest.skip("a label model takes masks (class_ids' own tests)")
    path = input_file(model, tmp_path / "inputs")
    with Image.open(path) as image:
        given = [image.copy(), read_image(path), np.asarray(image)]
    results = []
    for pixels in given:
        with model.seeded(0):
            results.append(np.asarray(model.translate_image(pixels, size="original")))
    assert all(np.array_equal(result, results[0]) for result in results[1:])
    assert results[0].shape[:2] == (40, 48)


def test_what_is_not_one_image_of_pixels_is_refused(model):
    if model.input_classes is not None:
        with pytest.raises(DataError, match=r"translate_image takes one mask \(H x W\), got a torch.int64 tensor of shape "
                                            r"\(2, 40, 48\): for a batch, use model.translate\(model.inputs\(ids\), pad=True\)"):
            model.translate_image(torch.zeros(2, 40, 48, dtype=torch.long))
        with pytest.raises(DataError, match=r"images must have at least one pixel a side, got 0x48 \(H x W\)"):
            model.translate(model.inputs(torch.zeros(0, 48, dtype=torch.long)), pad=True)
        return
    refused = {
        "a batch": torch.zeros(2, 3, 40, 48, dtype=torch.uint8),
        "floats": torch.zeros(3, 40, 48),
        "channels last": torch.zeros(40, 48, 3, dtype=torch.uint8),
    }
    for pixels in refused.values():
        with pytest.raises(DataError, match=r"translate_image takes one image of uint8 pixels \(a PIL image, a C x H x W "
                                            r"tensor .*\), got a torch\.\w+ tensor of shape .*: for a batch, or floats in "
                                            r"\[-1, 1\], use model\.translate\(model\.inputs\(images\), pad=True\)"):
            model.translate_image(pixels)
    with pytest.raises(OptionError, match="size"):
        model.translate_image(torch.zeros(3, 40, 48, dtype=torch.uint8), size="full")
    for size in ("crop", "native"):
        with pytest.raises(DataError, match=r"images must have at least one pixel a side, got 0x48 \(H x W\)"):
            model.translate_image(Image.new("RGB", (48, 0)), size=size)
    with pytest.raises(DataError, match=r"images must have at least one pixel a side, got 40x0 \(H x W\)"):
        model.translate(model.inputs(torch.zeros(1, 3, 40, 0, dtype=torch.uint8)), pad=True)


def test_sixteen_bit_pixels_are_refused_with_the_way_read_image_reads_them(model):
    if model.input_classes is not None:
        pytest.skip("a label model takes class ids")
    pixels = np.full((40, 48, 3), 0x1234, np.uint16)  # as tifffile or OpenCV read a 16-bit file
    tensor = torch.from_numpy(pixels).permute(2, 0, 1)
    for given, fixed in ((pixels, (pixels >> 8).astype(np.uint8)), (tensor, (tensor.int() >> 8).to(torch.uint8))):  # as told
        with pytest.raises(DataError, match=r"got torch.uint16: pass their top 8 bits, as read_image reads a 16-bit file: "
                                            r"\(pixels >> 8\).astype\(np.uint8\) of a numpy array, \(pixels.int\(\) >> 8\)"
                                            r".to\(torch.uint8\) of a tensor.$"):
            model.inputs(given)
        assert torch.equal(model.inputs(fixed), model.inputs(np.full((40, 48, 3), 0x12, np.uint8)))


def test_a_gray_side_is_translated_as_translate_writes_it(tmp_path_factory, tmp_path):
    """A CycleGAN of gray A and RGB B images: each direction takes its own input channels, and gray outputs are mode L."""
    root = tmp_path_factory.mktemp("gray-cycle")
    run = Trainer(TrainConfig(recipe="cyclegan", data=str(write_unaligned(root / "data", count_a=3, count_b=3, channels_a=1)),
                              out=str(root / "run"), loss="lsgan+cycle@10", **TINY), progress=False).fit()  # no identity term
    model = TrainedModel.load(run)
    path = input_file(model, tmp_path / "inputs")  # RGB: the A side's generator takes it as gray, the B side's as is
    for direction, mode in (("AtoB", "RGB"), ("BtoA", "L")):
        (written,) = translate(model, path, tmp_path / direction, direction=direction, progress=False)
        with model.seeded(0, input_file=path), Image.open(path) as image:
            result = model.translate_image(image, direction)
        assert result.mode == mode and np.array_equal(np.asarray(result), np.asarray(Image.open(written)))


def test_a_tile_overlap_other_than_the_default_is_the_one_used(model, tmp_path):
    path = input_file(model, tmp_path / "inputs")
    (written,) = translate(model, path, tmp_path / "out", size="native", tile=32, tile_overlap=4, progress=False)
    with model.seeded(0, input_file=path), Image.open(path) as image:
        result = model.translate_image(image, size="native", tile=32, overlap=4)
    assert np.array_equal(np.asarray(result), np.asarray(Image.open(written)))


def test_outputs_shrunk_back_to_a_smaller_original_are_antialiased():
    from gantk.inference import resized_back

    outputs = torch.zeros(1, 1, 8, 8)
    outputs[..., 0, 0] = 1.0  # one lit pixel: a bilinear sample without antialiasing falls between pixels 1 and 2
    shrunk = resized_back(outputs, 2, 2)
    assert shrunk.shape == (1, 1, 2, 2) and shrunk[0, 0, 0, 0] > 0
