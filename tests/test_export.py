"""gantk export: ONNX files that onnxruntime runs as gantk runs the trained model (CPU, 32 px)."""

import importlib.util

import pytest
import torch
from click.testing import CliRunner

from gantk import export as export_module
from gantk.cli import cli
from gantk.errors import GantkError, OptionError
from gantk.export import export_onnx
from gantk.inference import TrainedModel
from gantk.train import TrainConfig, Trainer
from helpers import smooth_image, write_paired, write_segmentation, write_unaligned

ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def trained(tmp_path_factory, recipe, write_data, **options):
    root = tmp_path_factory.mktemp(recipe)
    config = TrainConfig(recipe=recipe, data=str(write_data(root / "data")), out=str(root / "run"), **{**TINY, **options})
    return Trainer(config, progress=False).fit()


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return trained(tmp_path_factory, "pix2pix", write_paired)


@pytest.fixture(scope="module")
def image_run_without_dropout(tmp_path_factory):
    return trained(tmp_path_factory, "pix2pix", write_paired, gen_opt={"ngf": 8, "dropout": 0.0})


def run_onnx(path, images: torch.Tensor, name: str = "images") -> torch.Tensor:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == [name]
    return torch.from_numpy(session.run(None, {name: images.numpy()})[0])


def batch(channels: int, height: int, width: int, count: int = 2) -> torch.Tensor:
    return torch.stack([smooth_image(seed, 64, channels)[:, :height, :width] for seed in range(count)])


def test_a_loaded_model_exports_in_its_mode_as_its_checkpoint_does(image_run, tmp_path):
    model = TrainedModel.load(image_run, device="cpu", eval_mode=True)
    inputs = model.inputs(batch(3, 32, 64))
    from_model = run_onnx(export_onnx(model, tmp_path / "loaded.onnx").path, inputs)
    from_file = run_onnx(export_onnx(image_run, tmp_path / "file.onnx", eval_mode=True).path, inputs)
    assert torch.equal(from_model, from_file) and not model.system.training
    with pytest.raises(OptionError, match="a TrainedModel is loaded already"):
        export_onnx(model, tmp_path / "again.onnx", eval_mode=True)


def test_eval_mode_file_runs_as_the_trained_model_at_any_batch_and_size(image_run, tmp_path):
    out = tmp_path / "model.onnx"
    summary = export_onnx(image_run, out, eval_mode=True)
    model = TrainedModel.load(image_run, device="cpu", eval_mode=True)
    for images in (batch(3, 32, 32, count=1), batch(3, 64, 32, count=3)):  # neither is the traced 2 x 3 x 64 x 64
        inputs = model.inputs(images)
        expected = model.translate(inputs)
        assert torch.allclose(run_onnx(out, inputs), expected, atol=1e-4)
    assert summary.difference is not None and summary.difference < 1e-4
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [d for d in session.get_inputs()[0].shape] == ["batch", 3, "height", "width"]
    batch_axis, channels, height, width = session.get_outputs()[0].shape  # expressions of the input's axes
    assert batch_axis == "batch" and channels == 3 and "height" in height and "width" in width
    metadata = session.get_modelmeta().custom_metadata_map
    assert metadata == summary.metadata
    assert metadata["gantk.step"] == "2" and metadata["gantk.direction"] == "AtoB" and metadata["gantk.recipe"] == "pix2pix"
    assert metadata["gantk.maps"] == "the training data's A images to its B images"
    assert metadata["gantk.preprocess"].startswith("each image resized to 32x32 (bicubic, antialiased); an image is resized in "
                                                   "its file's own channels, mapped to [-1, 1], then converted to the model's")
    assert "multiples of 32" in metadata["gantk.input"] and metadata["gantk.mode"].endswith("(as gantk translate --eval-mode)")
    assert (metadata["gantk.size_multiple"], metadata["gantk.min_size"], metadata["gantk.input_channels"]) == ("32", "32", "3")
    assert b"stack_trace" not in out.read_bytes()  # the exporter's source lines and paths stay out of the file
    assert session.get_modelmeta().description.endswith("the training data's A images to its B images (pix2pix, step 2); the "
                                                        "gantk.* metadata say how to feed and read it")


def test_test_mode_file_normalises_with_the_batch_statistics(image_run_without_dropout, tmp_path):
    out = tmp_path / "model.onnx"
    summary = export_onnx(image_run_without_dropout, out)
    assert summary.difference is not None  # no dropout: the check compares values
    assert summary.metadata["gantk.mode"].startswith("paper test-time (batch statistics): batch normalisation uses the statistics "
                                                     "of each run's whole batch")
    paper = TrainedModel.load(image_run_without_dropout, device="cpu")
    inputs = paper.inputs(batch(3, 32, 64, count=3))
    with paper.buffers_kept():
        expected = paper.translate(inputs)
    ran = run_onnx(out, inputs)
    assert torch.allclose(ran, expected, atol=1e-4)
    running = TrainedModel.load(image_run_without_dropout, device="cpu", eval_mode=True).translate(inputs)
    assert not torch.allclose(ran, running, atol=1e-3)  # running statistics would give other outputs
    assert run_onnx(out, inputs[:1]).shape == (1, 3, 32, 64)


@pytest.fixture(scope="module")
def dropout_run(tmp_path_factory):
    """A U-Net of 6 levels at 64 px: dropout in its innermost decoder level."""
    return trained(tmp_path_factory, "pix2pix", lambda folder: write_paired(folder, size=64), load_size=64, crop_size=64)


def test_test_mode_dropout_is_drawn_by_the_runtime(dropout_run, tmp_path):
    run, out = dropout_run, tmp_path / "model.onnx"
    summary = export_onnx(run, out)
    assert summary.difference is None and summary.metadata["gantk.mode"].startswith("paper test-time (batch statistics, dropout): ")
    inputs = TrainedModel.load(run, device="cpu").inputs(batch(3, 64, 64))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    first, second = (torch.from_numpy(session.run(None, {"images": inputs.numpy()})[0]) for _ in range(2))
    assert first.shape == (2, 3, 64, 64) and first.abs().max() <= 1
    assert not torch.equal(first, second)


@pytest.mark.parametrize("num_classes, channels, output", [(2, 1, "probabilities of the object (sigmoid)"), (3, 3, "argmax")])
def test_mask_model_file_gives_class_probabilities(tmp_path_factory, tmp_path, num_classes, channels, output):
    data = lambda folder: write_segmentation(folder, num_classes=num_classes)  # noqa: E731
    run = trained(tmp_path_factory, "seg", data, gen_opt={"ngf": 8, "dropout": 0.0})
    summary = export_onnx(run, tmp_path / "seg.onnx", eval_mode=True)
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    inputs = model.inputs(batch(3, 32, 32))
    ran = run_onnx(summary.path, inputs)
    assert ran.shape == (2, channels, 32, 32) and torch.allclose(ran, model.translate(inputs), atol=1e-4)
    assert summary.metadata["gantk.num_classes"] == str(num_classes) and output in summary.metadata["gantk.output"]
    assert "gantk.ignore_label" not in summary.metadata


def test_label_model_file_takes_one_hot_label_maps(tmp_path_factory, tmp_path):
    data = lambda folder: write_segmentation(folder, num_classes=3)  # noqa: E731
    run = trained(tmp_path_factory, "pix2pix", data, direction="BtoA", gen_opt={"ngf": 8, "dropout": 0.0})
    summary = export_onnx(run, tmp_path / "labels.onnx", eval_mode=True)
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    inputs = model.inputs(torch.randint(-1, 3, (2, 32, 32)))
    ran = run_onnx(summary.path, inputs, "label_maps")
    assert ran.shape == (2, 3, 32, 32) and torch.allclose(ran, model.translate(inputs), atol=1e-4)
    assert summary.metadata["gantk.maps"] == "the training data's label masks to its images"
    assert summary.metadata["gantk.input"].startswith("N x 3 x H x W float32 label maps, one channel per class")
    assert "nearest pixel" in summary.metadata["gantk.preprocess"] and "gantk.num_classes" not in summary.metadata


@pytest.mark.parametrize("mask_values", [4, 3])
def test_mask_model_trained_with_ignored_zero_says_how_classes_map_to_mask_values(tmp_path_factory, tmp_path, mask_values):
    from gantk.data.io import read_mask
    from gantk.translate import translate

    data = tmp_path / "data"
    run = trained(tmp_path_factory, "seg", lambda folder: write_segmentation(data, num_classes=mask_values), ignore_label=0)
    metadata = export_onnx(run, tmp_path / "seg.onnx", eval_mode=True).metadata
    assert metadata["gantk.num_classes"] == str(mask_values - 1) and metadata["gantk.ignore_label"] == "0"
    assert "class k is the mask value k + 1" in metadata["gantk.output"]
    written = read_mask(translate(run, data / "images", tmp_path / "out", eval_mode=True)[0]).unique().tolist()
    assert set(written) <= set(range(1, mask_values))  # the values translate writes, as the metadata says
    if mask_values == 3:  # binary: class 1 is written as 2, not as 255
        assert "gantk translate writes it as 2, the mask value of class 1" in metadata["gantk.output"]


def test_cyclegan_exports_the_generator_of_the_direction(tmp_path_factory, tmp_path):
    run = trained(tmp_path_factory, "cyclegan", write_unaligned, gen="unet", disc="patch16")
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    inputs = model.inputs(batch(3, 32, 32))
    ran = {}
    for direction in ("AtoB", "BtoA"):
        ran[direction] = run_onnx(export_onnx(run, tmp_path / f"{direction}.onnx", direction=direction, eval_mode=True).path, inputs)
        assert torch.allclose(ran[direction], model.translate(inputs, direction=direction), atol=1e-4)
    assert not torch.allclose(ran["AtoB"], ran["BtoA"], atol=1e-3)


@pytest.mark.parametrize("gen, gen_opt", [
    ("encoder-decoder", {"ngf": 8, "dropout": 0.0}),  # batch norm
    ("resnet6", {"ngf": 8, "dropout": 0.0, "norm": "instance"}),  # reflection padding
    ("smp", {"encoder": "resnet18"}),  # batch norm in a timm-style encoder
])
def test_other_generators_export_in_the_test_phase(tmp_path_factory, tmp_path, gen, gen_opt):
    run = trained(tmp_path_factory, "pix2pix", write_paired, gen=gen, gen_opt=gen_opt, disc="none", loss="l1")
    summary = export_onnx(run, tmp_path / "model.onnx")
    paper = TrainedModel.load(run, device="cpu")
    inputs = paper.inputs(batch(3, 32, 64, count=3))
    with paper.buffers_kept():
        expected = paper.translate(inputs)
    assert summary.difference is not None and torch.allclose(run_onnx(summary.path, inputs), expected, atol=1e-4)
    # smp's 1x1 deepest features at 32 px: batch statistics of one image are refused by translate, and said so here
    assert ("gantk.batch" in summary.metadata) == (gen == "smp")


def test_a_model_trained_the_other_way_and_at_its_images_shape_says_so(tmp_path_factory, tmp_path):
    run = trained(tmp_path_factory, "pix2pix", lambda folder: write_paired(folder, size=48), direction="BtoA",
                  resize="short-side", gen_opt={"ngf": 8, "dropout": 0.0})
    summary = export_onnx(run, tmp_path / "model.onnx", eval_mode=True)
    assert summary.metadata["gantk.maps"] == "the training data's B images to its A images"
    assert summary.metadata["gantk.preprocess"].startswith("the shorter side resized to 32 and the longer to 32 times their "
                                                           "ratio, rounded down")
    from gantk.data import open_dataset, write_png

    write_png(torch.zeros(3, 219, 301, dtype=torch.uint8), tmp_path / "in" / "photo.png")  # 32 x 301 / 219 = 43.98
    read = open_dataset(tmp_path / "in", format="single", augment=False, resize="short-side", load_size=None, crop_size=32)
    assert read[0]["A"].shape[-2:] == (32, 43)  # as translate reads it
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    inputs = model.inputs(batch(3, 32, 48))  # 48 is no multiple of the U-Net's 32: padded, as the metadata says
    padded = torch.nn.functional.pad(inputs, (0, 16, 0, 0), mode="replicate")
    assert torch.allclose(run_onnx(summary.path, padded)[..., :48], model.translate(inputs, pad=True), atol=1e-4)


def test_a_failed_check_writes_nothing_and_keeps_the_old_file(image_run, tmp_path, monkeypatch):
    out = tmp_path / "model.onnx"
    out.write_bytes(b"old")
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)
    with pytest.raises(GantkError, match="differ from the model's.*model.onnx is not written"):
        export_onnx(image_run, out, eval_mode=True, overwrite=True)
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_running_statistics_updates_are_not_what_is_exported(image_run_without_dropout, tmp_path, monkeypatch):
    """Exported as it is, a model in training mode would keep updating running statistics the file
    never stores, and normalise otherwise: the check catches it."""
    monkeypatch.setattr(export_module, "in_test_phase", lambda system: system)
    with pytest.raises(GantkError, match="differ from the model's"):
        export_onnx(image_run_without_dropout, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()


def test_dropout_the_runtime_would_remove_is_refused(dropout_run, tmp_path, monkeypatch):
    """nn.Dropout exported as an ONNX Dropout node: onnxruntime's optimisations drop it, and the check says so."""
    monkeypatch.setattr(export_module, "DrawnDropout", lambda p, channels: torch.nn.Dropout(p))
    with pytest.raises(GantkError, match="does not: onnxruntime gives the same outputs twice.*--eval-mode"):
        export_onnx(dropout_run, tmp_path / "model.onnx")


def test_drawn_dropout_keeps_the_expected_value():
    torch.manual_seed(0)
    x = torch.ones(4, 8, 16, 16)
    for channels in (False, True):
        dropped = export_module.DrawnDropout(0.5, channels=channels)(x)
        assert set(dropped.unique().tolist()) == {0.0, 2.0} and abs(dropped.mean().item() - 1) < 0.1
        if channels:
            assert (dropped == dropped[:, :, :1, :1]).all()  # whole channels
    assert torch.equal(export_module.DrawnDropout(1.0)(x), torch.zeros_like(x))


@pytest.mark.parametrize("name, match", [
    ("model.pt", "with the .onnx extension, not 'model.pt'"),
    (".onnx", "is an extension without a name: name the file, e.g."),
    ("taken.onnx", "already exists; pass --overwrite"),
    ("taken.onnx/model.onnx", "taken.onnx is a file, not a folder"),
])
def test_bad_paths_are_refused_before_loading(image_run, tmp_path, name, match):
    (tmp_path / "taken.onnx").write_bytes(b"kept")
    with pytest.raises(OptionError, match=match):
        export_onnx(image_run, tmp_path / name)
    assert (tmp_path / "taken.onnx").read_bytes() == b"kept"


def test_missing_packages_are_named_with_the_extra(image_run, tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    with pytest.raises(OptionError, match=r"needs the packages onnxscript: pip install 'gantk\[onnx\]'"):
        export_onnx(image_run, tmp_path / "model.onnx")


def test_a_paired_model_refuses_the_reverse_direction(image_run, tmp_path):
    with pytest.raises(OptionError, match="a paired model maps its input to its output only"):
        export_onnx(image_run, tmp_path / "model.onnx", direction="BtoA")


def test_cli_writes_the_file_and_says_how_to_feed_it(image_run, tmp_path):
    out = tmp_path / "model.onnx"
    result = CliRunner().invoke(cli, ["export", "--checkpoint", str(image_run), str(out), "--eval-mode"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "float32 images in [-1, 1]" in result.output
    assert "checked with onnxruntime: outputs within" in result.output
    assert run_onnx(out, torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    again = CliRunner().invoke(cli, ["export", "--checkpoint", str(image_run), str(out)])
    assert again.exit_code != 0 and "already exists" in again.output
