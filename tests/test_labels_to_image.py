"""Label masks to images: segmentation data read with --direction BtoA, the masks one-hot as the inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from gantk.data import open_dataset
from gantk.data.io import read_image, write_png
from gantk.errors import DataError, GantkWarning, OptionError
from gantk.evaluate import evaluate
from gantk.inference import TrainedModel
from gantk.systems import targets
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import write_segmentation

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen_opt={"ngf": 8, "num_downs": 5}, disc_opt={"ndf": 8})
CLASSES = 4


@pytest.fixture(scope="module")
def labels_run(tmp_path_factory):
    """A tiny labels -> image run on masks of 4 classes, with train/ and test/ splits and validation."""
    root = tmp_path_factory.mktemp("labels")
    for split in ("train", "test"):
        write_segmentation(root / "data" / split, count=4, num_classes=CLASSES)
    config = TrainConfig(data=str(root / "data"), out=str(root / "run"), direction="BtoA", val_every=2, **TINY)
    return Trainer(config, progress=False).fit(), root / "data"


def test_encode_labels_is_one_hot_with_ignored_pixels_empty():
    ids = torch.tensor([[[0, 1], [2, targets.IGNORED]]])
    encoded = targets.encode_labels(ids, 3)
    assert encoded.shape == (1, 3, 2, 2) and encoded.dtype == torch.float32
    assert encoded[0, :, 1, 1].tolist() == [0, 0, 0] and encoded[0, :, 0, 1].tolist() == [0, 1, 0]
    assert torch.equal(targets.label_ids(encoded), ids)
    assert targets.encode_labels(torch.tensor([[[0, 1]]]), 2).shape[1] == 2  # binary masks: a channel per class too


def test_the_model_takes_one_channel_per_class(labels_run):
    run, _ = labels_run
    model = TrainedModel.load(run, device="cpu")
    assert (model.input_classes, model.num_classes) == (CLASSES, None)
    assert model.config["channels"] == {"A": CLASSES, "B": 3}
    generator, discriminator = model.system.networks["G"], model.system.networks["D"]
    assert next(generator.parameters()).shape[1] == CLASSES
    assert next(discriminator.parameters()).shape[1] == CLASSES + 3  # conditioned on the one-hot labels
    batch = {"A": torch.randint(0, CLASSES, (2, 32, 32)), "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    outputs = model.system(batch, model.system.networks)
    for phase in model.system.phases:  # D sees the one-hot labels beside the images
        assert all(loss.isfinite() for loss in model.system.phase_losses(phase, batch, outputs, dict(model.system.networks)).values())
    encoded = targets.encode_labels(batch["A"], CLASSES)
    assert torch.equal(model.system.display(batch["A"], side="A"), targets.colorize(batch["A"]))
    assert torch.equal(model.system.display(encoded, side="A"), targets.colorize(batch["A"]))


def test_validation_scores_the_images_as_eval_does(labels_run):
    run, data = labels_run
    header, row = (run / "validation.csv").read_text().splitlines()
    validated = dict(zip(header.split(","), row.split(",")))
    assert validated["step"] == "2"  # the step of the checkpoint evaluated
    result = evaluate(run, data, device="cpu", eval_mode=True, progress=False)
    assert float(validated["val/l1"]) == pytest.approx(result["metrics"]["l1"], rel=1e-4)


def test_inputs_takes_class_ids_only(labels_run):
    model = TrainedModel.load(labels_run[0], device="cpu")
    ids = torch.tensor([[0, 3], [targets.IGNORED, 1]])
    assert torch.equal(model.inputs(ids), targets.encode_labels(ids[None], CLASSES))
    with pytest.raises(DataError, match="translates label maps: pass class ids as an integer N x H x W tensor"):
        model.inputs(torch.rand(1, 3, 32, 32))
    with pytest.raises(DataError, match="class ids must be from 0 to 3 .*got values from 0 to 4: model.class_ids\\(mask\\) maps"):
        model.inputs(torch.tensor([[0, 4]]))
    assert torch.equal(model.inputs(ids.clamp(min=0).to(torch.uint16)), model.inputs(ids.clamp(min=0)))  # a 16-bit mask's ids
    with pytest.raises(DataError, match=r"translate takes float N x 4 x H x W label maps, one 0/1 channel per class, .*: pass the "
                                        r"class ids through model.inputs\(class_ids, direction='AtoB'\) first"):
        model.translate(torch.zeros(1, 3, 32, 32))
    with pytest.raises(DataError, match=r"a mask holds integer values, as gantk.data.read_mask reads a file, got a torch.float32 "
                                        r"tensor of shape \(2, 2\)\.$"):
        model.class_ids(torch.zeros(2, 2))
    for call in (model.class_ids, model.inputs):  # named as given, not as converted
        with pytest.raises(DataError, match=r"got a numpy bool array of shape \(2, 2\)\.$"):
            call(np.zeros((2, 2), dtype=bool))
    with pytest.raises(DataError, match="mask: holds value -5, outside"):
        model.class_ids(torch.tensor([[-5, 0]]))


def test_translate_reads_masks_and_writes_images(labels_run, tmp_path):
    run, data = labels_run
    written = translate(run, data / "test" / "masks", tmp_path / "out", device="cpu", eval_mode=True, progress=False)
    assert len(written) == 4
    image = read_image(written[0])
    assert image.shape == (3, 32, 32)
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    item = open_dataset(data, split="test", direction="BtoA", load_size=None, crop_size=32, augment=False,
                        num_classes=CLASSES)[0]
    expected = model.translate(model.inputs(item["A"]))
    assert (image.float() / 127.5 - 1 - expected[0]).abs().max() <= 1 / 127.5 + 1e-6  # the PNG's rounding


def test_translate_names_what_a_label_model_reads(labels_run, tmp_path):
    run, data = labels_run
    with pytest.raises(DataError, match="translates label masks \\(class ids\\) to images"):
        translate(run, data / "test" / "images", tmp_path / "out", device="cpu", progress=False)
    jpeg = tmp_path / "jpeg" / "mask.jpg"
    jpeg.parent.mkdir()
    Image.open(data / "test" / "masks" / "000.png").save(jpeg)
    with pytest.raises(DataError, match=r"translates label masks \(class ids, in .png, .* files\) into images, and .*jpeg holds 1 "
                                        r"\.jpg file\(s\), which cannot be masks \(JPEG and WebP change label values\): give"):
        translate(run, jpeg.parent, tmp_path / "out", device="cpu", progress=False)
    with pytest.raises(DataError, match=r"and .*mask.jpg is a \.jpg file, which cannot be masks"):
        translate(run, jpeg, tmp_path / "out", device="cpu", progress=False)
    Image.open(data / "test" / "masks" / "001.png").save(jpeg.parent / "mask.png")  # one mask among them: each file named
    with pytest.raises(DataError, match="mask.jpg: masks must be .* files \\(JPEG and WebP may change label values\\)"):
        translate(run, jpeg.parent, tmp_path / "out", device="cpu", progress=False)
    with pytest.raises(DataError, match=rf"its subfolder masks/ holds masks: pass {data / 'test' / 'masks'}\)"):
        translate(run, data / "test", tmp_path / "out", device="cpu", progress=False)  # images/ beside it


def test_eval_scores_images_made_from_the_masks(labels_run):
    run, data = labels_run
    result = evaluate(run, data, device="cpu", eval_mode=True, progress=False)
    assert result["task"] == "image"
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    dataset = open_dataset(data, split="test", direction="BtoA", load_size=None, crop_size=32, augment=False,
                           num_classes=CLASSES)
    l1 = [(model.translate(model.inputs(item["A"])) - item["B"][None]).abs().mean().item() / 2 for item in dataset]
    assert result["metrics"]["l1"] == pytest.approx(sum(l1) / len(l1), rel=1e-4)


@pytest.mark.parametrize("ignore_label", [0, "none"])
def test_eval_refuses_an_ignore_label_for_a_label_model(labels_run, ignore_label):
    run, data = labels_run
    with pytest.raises(OptionError, match="is a label model, scored on images; it reads its input masks as it was trained to, "
                                          "with no ignore label \\(.* train one with that --ignore-label\\): drop it"):
        evaluate(run, data, device="cpu", ignore_label=ignore_label, progress=False)


def test_mask_terms_are_refused_with_the_direction_named(tmp_path):
    data = write_segmentation(tmp_path / "data", count=2, num_classes=3)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), direction="BtoA", loss="bce+lovasz", **TINY)
    with pytest.raises(OptionError, match="--direction BtoA maps the masks to the images\\): predict masks with --direction AtoB, "
                                          "or train .* \\(the pix2pix recipe, the default, trains with bce\\+l1@100; "
                                          "this is the pix2pix recipe with --loss bce\\+lovasz\\)"):
        Trainer(config, progress=False).fit()
    seg = TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "seg"), direction="BtoA", **TINY)
    with pytest.raises(OptionError, match="this is the seg recipe with --loss hinge\\+lovasz"):
        Trainer(seg, progress=False).fit()


def test_ignored_pixels_are_in_no_class(tmp_path):
    data = write_segmentation(tmp_path / "data", count=2, num_classes=3)
    mask = torch.zeros(1, 40, 40, dtype=torch.uint8)
    mask[:, :20] = 255
    write_png(mask, str(data / "masks" / "000.png"))
    dataset = open_dataset(data, direction="BtoA", load_size=None, crop_size=None, augment=False, ignore_label=255)
    ids = dataset[0]["A"]
    assert (ids[:20] == targets.IGNORED).all() and (ids[20:] == 0).all()
    assert targets.encode_labels(ids[None], dataset.input_classes)[0, :, :20].abs().sum() == 0


def test_a_binary_model_ignoring_255_reads_and_describes_its_masks(tmp_path):
    from gantk.export import model_metadata

    data = write_segmentation(tmp_path / "data", count=2, num_classes=3)
    for mask_file in (data / "masks").iterdir():  # ids 0/1, with 255 where the id was 2
        mask = read_image(mask_file)
        write_png(torch.where(mask == 2, 255, mask).to(torch.uint8), str(mask_file))
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), direction="BtoA", ignore_label=255, **TINY)
    model = TrainedModel.load(Trainer(config, progress=False).fit(), device="cpu")
    assert model.input_classes == 2
    assert model.class_ids(torch.tensor([[0, 1, 255]])).tolist() == [[0, 1, targets.IGNORED]]
    metadata = model_metadata(model, "AtoB", eval_mode=True)
    assert "channel k is 1 where the mask value is k, else 0 (all channels 0 where the mask value is 255" in metadata["gantk.input"]
    assert (metadata["gantk.input_classes"], metadata["gantk.ignore_label"]) == ("2", "255")
    from gantk.translate import translate

    write_png(torch.full((1, 32, 32), 255, dtype=torch.uint8), tmp_path / "binary" / "object.png")  # 0/255: the object is void
    write_png(torch.zeros(1, 32, 32, dtype=torch.uint8), tmp_path / "binary" / "background.png")
    with pytest.warns(GantkWarning, match=r"1 input mask\(s\) \(object.png\) hold the ignore label 255 in most pixels"):
        translate(model, tmp_path / "binary", tmp_path / "out", progress=False)


def test_validation_opens_its_masks_with_the_training_class_count_and_ignore_label(tmp_path):
    for split in ("train", "test"):
        data = write_segmentation(tmp_path / "data" / split, count=2, num_classes=3)
        for mask_file in (data / "masks").iterdir():  # ids 0/1, with 255 where the id was 2
            write_png(torch.where(read_image(mask_file) == 2, 255, read_image(mask_file)).to(torch.uint8), str(mask_file))
    config = TrainConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), direction="BtoA", ignore_label=255, val_every=1,
                         **TINY)
    train, val = Trainer(config, progress=False).open_data()
    assert (val.input_classes, val.ignore_label) == (train.input_classes, 255) == (2, 255)


def test_class_ids_is_for_label_models_and_names_values_outside_them(labels_run):
    model = TrainedModel.load(labels_run[0], device="cpu")
    with pytest.raises(DataError, match=r"mask: holds values 4, 5, 6, 7, 8, 9, 10, 11 ... \(252 values\), outside"):
        model.class_ids(torch.arange(256).reshape(16, 16))
    assert model.class_ids(torch.tensor([3, 0])).tolist() == [3, 0]


def test_a_label_model_takes_masks_as_numpy_arrays_and_pil_images(labels_run, tmp_path):
    import numpy as np

    from gantk.data import read_mask

    model = TrainedModel.load(labels_run[0], device="cpu")
    path = next((labels_run[1] / "test" / "masks").iterdir())
    expected = model.class_ids(read_mask(path))
    for given in (np.asarray(Image.open(path)), Image.open(path), np.asarray(Image.open(path)).astype(np.uint16)):
        assert torch.equal(model.class_ids(given), expected)
    assert torch.equal(model.inputs(expected.numpy()), model.inputs(expected))
    with pytest.raises(DataError, match="a mask image holds one channel of class ids .*got mode RGB: read the file with "
                                        "gantk.data.read_mask"):
        model.class_ids(Image.open(path).convert("RGB"))


def test_a_one_bit_pil_mask_reads_as_its_file_does(labels_run, tmp_path):
    from gantk.data import read_mask

    model = TrainedModel.load(labels_run[0], device="cpu")
    Image.new("1", (8, 6)).save(tmp_path / "empty.png")  # 1-bit, as binary masks are often saved
    assert torch.equal(model.class_ids(Image.open(tmp_path / "empty.png")), model.class_ids(read_mask(tmp_path / "empty.png")))
    Image.new("1", (8, 6), 1).save(tmp_path / "full.png")  # 0/255 in every container: no class of this 4-class model
    with pytest.raises(DataError, match=r"holds value 255 \(the object of a binary mask\), outside the class ids 0..3"):
        model.class_ids(Image.open(tmp_path / "full.png"))


def test_cyclegan_refuses_masks_as_inputs_first(tmp_path):
    data = write_segmentation(tmp_path / "data", count=2, num_classes=3)
    config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), direction="BtoA",
                         **{**TINY, "gen_opt": {"ngf": 8}})  # resnet9 takes no num_downs
    with pytest.raises(OptionError, match="cycle translation works on images, not masks"):
        Trainer(config, progress=False).fit()


def test_messages_speak_of_masks_for_a_label_model(labels_run, tmp_path):
    run, data = labels_run
    model = TrainedModel.load(run, device="cpu")
    with pytest.raises(OptionError, match="this model maps the data's masks to its images"):
        model.inputs(torch.zeros(4, 4, dtype=torch.long), "BtoA")
    with pytest.raises(OptionError, match="is a label model, writing images; overlays are for mask models"):
        translate(model, data / "test" / "masks", tmp_path / "out", overlay=True, progress=False)
    stray = tmp_path / "stray.png"
    write_png(torch.full((1, 8, 8), 9, dtype=torch.uint8), str(stray))
    with pytest.raises(DataError, match="stray.png: holds value 9, outside the class ids 0..3 of the model; give masks of the classes the "
                                        "model was trained on, or fix this one"):
        translate(model, stray, tmp_path / "out", progress=False)


def test_starting_from_a_model_of_another_task_is_warned_of(tmp_path):
    data = write_segmentation(tmp_path / "data", count=2, num_classes=3)  # 3 classes: image and one-hot layers of equal shapes
    masks_run = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "masks"), **{**TINY, "max_steps": 1, "checkpoint_every": 1}),
                        progress=False).fit()
    config = TrainConfig(data=str(data), out=str(tmp_path / "labels"), direction="BtoA", init_from=str(masks_run),
                         **{**TINY, "max_steps": 1, "checkpoint_every": 1})
    with pytest.warns(GantkWarning, match=r"--init-from .*checkpoint-00000001.pt translates images to masks, and this run label "
                                          r"maps to images: its networks start from weights learnt for other inputs or outputs"):
        Trainer(config, progress=False).fit()


@pytest.mark.parametrize("recipe, direction, effect", [
    ("pix2pix", "BtoA", "its input channel is never set, so the weights that read it stay as initialised"),
    ("seg", "AtoB", "the model never learns to predict it"),
])
def test_a_class_no_training_mask_holds_is_warned_of(tmp_path, recipe, direction, effect):
    from helpers import smooth_image

    for split, ids in (("train", (0, 1, 3)), ("test", (0, 1, 2, 3))):  # class 2 only in the test masks
        for i in range(2):
            mask = torch.tensor(ids, dtype=torch.uint8).repeat_interleave(14)[:40, None].expand(-1, 40).contiguous()
            write_png(smooth_image(i), tmp_path / "data" / split / "images" / f"{i}.png")
            write_png(mask[None], tmp_path / "data" / split / "masks" / f"{i}.png")
    trainer = Trainer(TrainConfig(recipe=recipe, data=str(tmp_path / "data"), direction=direction, out=str(tmp_path / "run"),
                                  **TINY), progress=False)
    with pytest.warns(GantkWarning, match=f"no training mask holds a pixel of class 2 \\(1 of the 4 classes\\): {effect}.*; add "
                                          "training masks that hold it.$"):
        train, _ = trainer.open_data()
    assert train.channels[train.mask_side] == CLASSES
    write_png(mask[None], tmp_path / "data" / "train" / "masks" / "1.png")  # now a training mask holds it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(TrainConfig(recipe=recipe, data=str(tmp_path / "data"), direction=direction, out=str(tmp_path / "run"), **TINY),
                progress=False).open_data()
    assert not [w for w in caught if "no training mask" in str(w.message)]


@pytest.mark.parametrize("values, ignore_label, named", [
    ((0,), None, r"class 1 \(mask value 255\) \(1 of the 2 classes\): the model never learns to predict it"),  # binary
    ((1, 4), 0, r"classes 1 \(mask value 2\), 2 \(mask value 3\) \(2 of the 4 classes\): the model never learns to predict "
               r"them; add training masks that hold them.$"),
])
def test_the_classes_no_training_mask_holds_are_named_by_their_mask_values(tmp_path, values, ignore_label, named):
    from gantk.data.class_balance import warn_of_unseen_classes
    from helpers import smooth_image

    mask = torch.tensor(values, dtype=torch.uint8).repeat_interleave(40 // len(values))[:, None].expand(-1, 40).contiguous()
    write_png(smooth_image(0), tmp_path / "images" / "0.png")
    write_png(mask[None], tmp_path / "masks" / "0.png")
    classes = 2 if ignore_label is None else max(values)
    dataset = open_dataset(tmp_path, format="segmentation", num_classes=classes, ignore_label=ignore_label, load_size=None,
                           crop_size=None, augment=False)
    with pytest.warns(GantkWarning, match=f"no training mask holds a pixel of {named}"):
        warn_of_unseen_classes(dataset, tmp_path)
