"""Ignored mask pixels (--ignore-label): read as id -1, left out of classes, losses, gradients and scores."""

import math
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import GantkGroup, cli
from gantk.data import open_dataset, write_png
from gantk.data.layout import mask_classes
from gantk.errors import DataError, GantkWarning, OptionError
from gantk.evaluate import evaluate
from gantk.metrics import SegmentationScores
from gantk.objectives import lovasz_loss, pixel_loss
from gantk.systems import targets
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import load_checkpoint
from helpers import TINY_FLAGS, smooth_image, write_paired, write_segmentation

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def run(*args):
    """``gantk ARGS`` in this process."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def write_void_bordered(root: Path, count: int = 4, size: int = 40, num_classes: int = 3, void: int = 255) -> Path:
    """Class-id masks (0..num_classes-1) whose class borders are 255, as Pascal VOC marks them, in train/ and test/;
    with ``void`` 0, the classes are the values 1..num_classes and the borders 0, as ADE20K marks them."""
    for split in ("train", "test"):
        for side in ("images", "masks"):
            (root / split / side).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = smooth_image(i + (100 if split == "test" else 0), size)
            ids = (image.float().mean(0) * num_classes / 256).long().clamp(max=num_classes - 1)
            border = torch.zeros_like(ids, dtype=torch.bool)
            border[:, 1:] |= ids[:, 1:] != ids[:, :-1]
            border[1:] |= ids[1:] != ids[:-1]
            border[0, :3] = True  # every mask holds some
            mask = torch.where(border, void, ids + (void == 0)).to(torch.uint8)
            write_png(image, str(root / split / "images" / f"{i:03d}.png"))
            write_png(mask[None], str(root / split / "masks" / f"{i:03d}.png"))
    return root


def test_the_ignore_label_is_no_class(tmp_path):
    voc = {tmp_path / "a.png": {0, 1, 2, 255}, tmp_path / "b.png": {0, 2, 255}}
    classes, problems = mask_classes(voc, tmp_path)
    assert problems and all("pass --ignore-label 255" in problem for problem in problems)
    assert mask_classes(voc, tmp_path, ignore_label=255) == (3, [])
    binary_ids = {tmp_path / "a.png": {0, 1, 255}, tmp_path / "b.png": {0, 255}}
    assert mask_classes(binary_ids, tmp_path, ignore_label=255) == (2, [])
    among_classes = mask_classes({tmp_path / "a.png": {0, 1, 2, 3}}, tmp_path, ignore_label=2)[1]
    assert len(among_classes) == 1 and "the ignore label 2 lies among the class ids (0..3)" in among_classes[0]
    objects_ignored = mask_classes({tmp_path / "a.png": {0, 255}, tmp_path / "b.png": {0, 255}}, tmp_path, ignore_label=255)[1]
    assert len(objects_ignored) == 1 and "no mask holds a class but 0 once 255 is ignored" in objects_ignored[0]
    sparse = {tmp_path / "a.png": {0, 1, 65535}}
    assert "pass --ignore-label 65535" in mask_classes(sparse, tmp_path)[1][0]
    assert mask_classes(sparse, tmp_path, ignore_label=65535) == (2, [])


def test_the_ignore_label_0_makes_the_values_1_to_k_the_classes(tmp_path):
    ade = {tmp_path / "a.png": {0, 1, 2, 3}, tmp_path / "b.png": {0, 5}}
    assert mask_classes(ade, tmp_path, ignore_label=0) == (5, [])
    assert mask_classes({tmp_path / "a.png": {1, 2}}, tmp_path, ignore_label=0) == (2, [])
    for single in ({0, 1}, {0, 255}):
        problems = mask_classes({tmp_path / "a.png": single}, tmp_path, ignore_label=0)[1]
        assert len(problems) == 1 and "no mask holds more than one class once 0 is ignored" in problems[0]
    assert mask_classes({}, tmp_path, ignore_label=0) == (2, [])  # no mask read: the files' problems say why
    with_255 = {tmp_path / "a.png": {0, 1, 2}, tmp_path / "b.png": {0, 1, 255}, tmp_path / "c.png": {1, 255}}
    voided = mask_classes(with_255, tmp_path, ignore_label=0)[1]
    assert [problem.split(":")[0] for problem in voided] == ["b.png", "c.png"]  # every mask holding it
    assert voided[0].startswith("b.png: value 255 beside the ignored 0 (values 1..K are the classes 0..K-1)")
    sparse = mask_classes({tmp_path / "a.png": {0, 1, 2, 5000}}, tmp_path, ignore_label=0)
    assert sparse[0] == 5000 and "holds value 5000, but the masks use only 3 distinct values" in sparse[1][0]

    root = write_void_bordered(tmp_path / "ade", void=0)
    mask_file = root / "train" / "masks" / "000.png"
    dataset = open_dataset(root, augment=False, load_size=None, crop_size=None, ignore_label=0)
    assert dataset.num_classes == 3
    item = next(dataset[(i, 0)] for i in range(len(dataset)) if dataset[(i, 0)]["B_path"] == str(mask_file))
    from gantk.data import read_mask

    raw = read_mask(mask_file)
    assert torch.equal(item["B"], raw - 1) and (raw == 0).any() and set(raw.unique().tolist()) == {0, 1, 2, 3}
    write_png(torch.full((1, 40, 40), 4, dtype=torch.uint8), str(mask_file))
    with pytest.raises(DataError, match=r"000.png: holds value 4, outside the values 1..3 of this dataset's classes "
                                        r"\(0 is ignored\)"):
        dataset[(dataset.files["B"].index(mask_file), 0)]


def test_train_check_eval_and_translate_with_0_ignored(tmp_path):
    root = write_void_bordered(tmp_path / "ade", void=0)
    checked = run("data", "check", root, "--ignore-label", 0)
    assert checked.exit_code == 0, checked.output
    assert "3 classes (values 1..3), 0 ignored" in checked.output
    out = tmp_path / "run"
    trained = run("train", "--recipe", "seg", "--data", root, "--ignore-label", 0, "--out", out, "--max-steps", 2, *TINY_FLAGS)
    assert trained.exit_code == 0, trained.output
    system = load_checkpoint(out)["system"]
    assert system["num_classes"] == 3 and system["ignore_label"] == 0
    evaluated = run("eval", "--checkpoint", out, "--data", root, "--report", tmp_path / "report")
    assert evaluated.exit_code == 0, evaluated.output
    assert "pixels of mask value 0 ignored" in evaluated.output
    assert "pixels of mask value 0 ignored (grey)" in (tmp_path / "report" / "index.html").read_text()
    more = run("eval", "--checkpoint", out, "--data", write_void_bordered(tmp_path / "ade4", num_classes=4, void=0))
    assert more.exit_code != 0 and "masks of" in more.output and "hold 4 (values 1..4, 0 ignored)" in more.output

    written = tmp_path / "written"
    translated = run("translate", "--checkpoint", out, root / "test" / "images", written, "--eval-mode")
    assert translated.exit_code == 0, translated.output
    from gantk.data import read_mask

    values = set(torch.cat([read_mask(path).flatten() for path in written.glob("*.png")]).unique().tolist())
    assert values and values <= {1, 2, 3}  # the classes' values in the masks trained on, never the ignored 0
    from gantk.inference import TrainedModel

    model = TrainedModel.load(out, eval_mode=True, device="cpu")
    ids = torch.tensor([[0, 1], [2, 0]])
    assert torch.equal(read_mask(model.write_mask(ids, tmp_path / "ids.png")), ids + 1)  # as translate writes them


def test_an_ignore_label_no_mask_holds_is_warned_of(tmp_path):
    from gantk.data import check_dataset
    from helpers import write_segmentation

    plain = write_segmentation(tmp_path / "plain", count=2, num_classes=3)
    with pytest.warns(GantkWarning, match="plain: no mask holds the ignore label 255, so no pixel is ignored"):
        assert check_dataset(plain, ignore_label=255).splits[""].num_classes == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_dataset(write_void_bordered(tmp_path / "voc"), ignore_label=255)
    from test_ade20k_format import write_ade20k

    ade = write_ade20k(tmp_path / "ade")
    for mask in ade.glob("annotations/*/*.png"):
        write_png(torch.ones(1, 40, 40, dtype=torch.uint8) + (torch.arange(40) % 2).to(torch.uint8), mask)  # no 0
    with pytest.warns(GantkWarning) as warned:  # the format's own label: no flag to drop
        check_dataset(ade)
    assert [str(w.message).split("so no pixel is ignored; ")[1] for w in warned] == [
        "if the masks mark pixels to ignore with another value, name it with --ignore-label (the ade20k format ignores "
        "0 unless told otherwise)."]
    with pytest.warns(GantkWarning, match="name it with --ignore-label; else drop --ignore-label"):
        check_dataset(plain, ignore_label=255)


def test_ignored_pixels_read_as_minus_one(tmp_path):
    root = write_void_bordered(tmp_path)
    mask_file = root / "train" / "masks" / "000.png"
    dataset = open_dataset(root, augment=False, load_size=None, crop_size=None, ignore_label=255)
    assert dataset.num_classes == 3 and dataset.ignore_label == 255
    item = next(dataset[(i, 0)] for i in range(len(dataset)) if dataset[(i, 0)]["B_path"] == str(mask_file))
    from gantk.data import read_mask

    raw = read_mask(mask_file)
    assert torch.equal(item["B"] == -1, raw == 255) and torch.equal(item["B"][raw != 255], raw[raw != 255])
    augmented = open_dataset(root, load_size=36, crop_size=32, ignore_label=255)
    values = set(torch.cat([augmented[(i, 7)]["B"].flatten() for i in range(len(augmented))]).tolist())
    assert -1 in values and values <= {-1, 0, 1, 2}


def test_the_ignore_label_is_refused_where_it_does_not_apply(tmp_path):
    pairs = write_paired(tmp_path / "pairs", count=2)
    with pytest.raises(OptionError, match="data format 'paired' has no option 'ignore_label'"):
        open_dataset(pairs, ignore_label=255)
    voc = write_void_bordered(tmp_path / "voc", count=1)
    for bad in (70000, True, "255"):
        with pytest.raises(OptionError, match="ignore_label must be a mask value from 0 to 65535"):
            open_dataset(voc, ignore_label=bad)
    with pytest.raises(OptionError, match=r"ignore_label \(--ignore-label\) names a mask value to ignore, and .* holds "
                                          "paired data, which has no masks"):
        Trainer(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), ignore_label=255, **TINY), progress=False).fit()
    with pytest.raises(OptionError, match="--ignore-label must be an integer of at least 0"):
        TrainConfig(ignore_label=-1).validate()


def test_the_largest_mask_value_is_taken_as_the_ignore_label(tmp_path):
    import numpy as np
    from PIL import Image

    for side in ("images", "masks"):
        (tmp_path / side).mkdir()
    for i in range(2):
        write_png(smooth_image(i, 32), tmp_path / "images" / f"{i}.png")
        labels = np.zeros((32, 32), np.uint16)
        labels[:16], labels[0, :4] = i + 1, 65535  # classes 0..2, 16-bit masks whose ignored pixels are 65535
        Image.fromarray(labels).save(tmp_path / "masks" / f"{i}.png")
    checked = run("data", "check", tmp_path, "--ignore-label", 65535)
    assert checked.exit_code == 0, checked.output
    assert "3 classes, 65535 ignored" in checked.output
    assert open_dataset(tmp_path, ignore_label=65535, load_size=None, crop_size=None).ignore_label == 65535


def test_ignored_pixels_encode_as_zeros_and_show_grey():
    ids = torch.tensor([[[0, 2, -1]]])
    assert targets.encode_mask(ids, 3)[0, :, 0].T.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert targets.encode_mask(torch.tensor([[[1, -1]]]), 2).flatten().tolist() == [1, 0]
    shown = targets.colorize(ids)[0, :, 0, 2]
    assert torch.allclose(shown, torch.full((3,), 128 / 127.5 - 1), atol=1e-6)
    assert not any(torch.allclose(colour, shown, atol=1e-3) for colour in targets.PALETTE)


def kept_only(logits: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept pixels of a batch as one image, ``1 x K x 1 x P`` and ``1 x 1 x P``."""
    kept = ids >= 0
    return logits.movedim(1, -1)[kept].T[None, :, None], ids[kept][None, None]


@pytest.mark.parametrize("channels", [1, 4])
def test_lovasz_leaves_ignored_pixels_out(channels):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, channels, 6, 6, generator=generator)
    ids = torch.randint(max(channels, 2), (2, 6, 6), generator=generator)
    ids[0, :3] = -1
    assert lovasz_loss(logits, ids) == pytest.approx(lovasz_loss(*kept_only(logits, ids)).item(), abs=1e-6)
    assert lovasz_loss(logits, ids) != pytest.approx(lovasz_loss(logits, ids.clamp(min=0)).item(), abs=1e-6)


@pytest.mark.parametrize("channels", [1, 4])
def test_lovasz_of_images_with_every_pixel_ignored(channels):
    generator = torch.Generator().manual_seed(2)
    logits = torch.randn(2, channels, 6, 6, generator=generator, requires_grad=True)
    ids = torch.randint(max(channels, 2), (2, 6, 6), generator=generator)
    ids[1] = -1
    for per_image in (False, True):
        assert lovasz_loss(logits, ids, per_image).item() == pytest.approx(lovasz_loss(logits[:1], ids[:1]).item(), abs=1e-6)
    nothing = lovasz_loss(logits, torch.full_like(ids, -1), per_image=True)
    nothing.backward()
    assert nothing.item() == 0 and nothing.shape == () and logits.grad.abs().sum() == 0


@pytest.mark.parametrize("channels", [1, 4])
def test_scores_leave_ignored_pixels_out(channels):
    generator = torch.Generator().manual_seed(1)
    probs = targets.probabilities(torch.randn(2, channels, 6, 6, generator=generator))
    ids = torch.randint(max(channels, 2), (2, 6, 6), generator=generator)
    ids[1, 2:] = -1
    num_classes = max(channels, 2)
    scores, alone = SegmentationScores(num_classes), SegmentationScores(num_classes)
    errors = scores.update(probs, ids)
    alone.update(*kept_only(probs, ids))
    got, expected = scores.compute(), alone.compute()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, nan_ok=True), key
    second_image = SegmentationScores(num_classes).update(*kept_only(probs[1:], ids[1:]))
    assert errors[1].item() == pytest.approx(second_image.item())
    nothing = SegmentationScores(num_classes)
    nothing.update(probs, torch.full_like(ids, -1))
    with pytest.warns(GantkWarning, match="no pixel was scored, as every true pixel is ignored"):
        assert math.isnan(nothing.compute()["mean_iou"])


def test_no_term_scores_or_trains_on_ignored_pixels(tmp_path):
    """Every term of the generator's loss (adversarial, lovasz, ce, l1) gives ignored pixels no gradient."""
    root = write_void_bordered(tmp_path / "voc")
    config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), loss="hinge+lovasz+ce+l1", ignore_label=255,
                         **TINY)
    trainer = Trainer(config, progress=False)
    dataset, _ = trainer.open_data()
    system = trainer.build_system(dataset, torch.device("cpu"))
    batch = torch.utils.data.default_collate([dataset[(i, 3)] for i in range(2)])
    ignored = batch["B"] == -1
    assert ignored.any() and not ignored.all()
    logits = torch.randn(2, 3, 32, 32, requires_grad=True)
    outputs = {"fake_logits": logits, "fake": targets.probabilities(logits)}
    g_phase = next(phase for phase in system.phases if phase.name == "G")
    losses = system.phase_losses(g_phase, batch, outputs, dict(system.networks))
    assert {"G/hinge", "G/lovasz", "G/ce", "G/l1"} <= set(losses)
    sum(losses.values()).backward()
    per_pixel = logits.grad.abs().sum(1)
    assert per_pixel[ignored].max() == 0 and (per_pixel[~ignored] > 0).float().mean() > 0.9
    kept = ~ignored
    probs, truth = outputs["fake"].movedim(1, -1)[kept], targets.encode_mask(batch["B"], 3).movedim(1, -1)[kept]
    assert losses["G/l1"].item() == pytest.approx(100 * (probs - truth).abs().mean().item(), rel=1e-5)  # the kept pixels' mean


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_pixel_losses_average_over_the_kept_pixels(distance):
    generator = torch.Generator().manual_seed(3)
    fake, real = torch.rand(2, 3, 5, 5, generator=generator), torch.rand(2, 3, 5, 5, generator=generator)
    ids = torch.randint(3, (2, 5, 5), generator=generator)
    ids[0, :2] = -1
    kept = targets.kept_pixels(ids)
    got = pixel_loss(fake * kept, real * kept, distance, kept)
    alone = pixel_loss(fake.movedim(1, -1)[ids >= 0], real.movedim(1, -1)[ids >= 0], distance)
    assert got.item() == pytest.approx(alone.item(), rel=1e-6)
    assert got.item() != pytest.approx(pixel_loss(fake * kept, real * kept, distance).item(), rel=1e-3)
    nothing = torch.zeros_like(kept)
    assert pixel_loss(fake * nothing, real * nothing, distance, nothing).item() == 0


def test_train_check_and_eval_with_an_ignore_label(tmp_path):
    root = write_void_bordered(tmp_path / "voc")
    checked = run("data", "check", root, "--ignore-label", 255)
    assert checked.exit_code == 0, checked.output
    assert "3 classes, 255 ignored" in checked.output
    refused = run("data", "check", root)
    assert refused.exit_code != 0 and "pass --ignore-label 255" in refused.output

    out = tmp_path / "run"
    trained = run("train", "--recipe", "seg", "--data", root, "--ignore-label", 255, "--out", out, "--max-steps", 2,
                  "--val-every", 2, *TINY_FLAGS)
    assert trained.exit_code == 0, trained.output
    system = load_checkpoint(out)["system"]
    assert system["num_classes"] == 3 and system["ignore_label"] == 255
    assert (out / "validation.csv").read_text().count("\n") == 2

    evaluated = run("eval", "--checkpoint", out, "--data", root, "--json")
    assert evaluated.exit_code == 0, evaluated.output
    assert "mean_iou" in evaluated.output

    changed = run("train", "--resume", out, "--ignore-label", 254, "--no-progress")
    assert changed.exit_code != 0 and "it cannot change --ignore-label (the run has --ignore-label 255)" in changed.output


def test_eval_takes_another_ignore_label(tmp_path):
    from helpers import write_segmentation

    plain = write_segmentation(tmp_path / "plain", count=4, size=40, num_classes=3)
    out = tmp_path / "run"
    Trainer(TrainConfig(recipe="seg", data=str(plain), out=str(out), **TINY), progress=False).fit()
    bordered = write_void_bordered(tmp_path / "voc")
    runner = CliRunner()
    refused = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(bordered)])
    assert refused.exit_code != 0 and "pass --ignore-label 255" in refused.output
    scored = runner.invoke(cli, ["eval", "--checkpoint", str(out), "--data", str(bordered), "--ignore-label", "255"])
    assert scored.exit_code == 0, scored.output
    assert "pixels of mask value 255 ignored" in scored.output
    assert evaluate(out, plain, progress=False)["ignore_label"] is None
    pairs = write_paired(tmp_path / "pairs", count=2)
    image_run = tmp_path / "image-run"
    Trainer(TrainConfig(data=str(pairs), out=str(image_run), **TINY), progress=False).fit()
    with pytest.raises(OptionError, match="is an image model: drop it"):
        evaluate(image_run, pairs, ignore_label=255, progress=False)


def test_a_model_trained_with_255_ignored_is_scored_on_0_255_binary_masks_with_none(tmp_path):
    """Its own translations of a binary model come out 0/255 (255 the object): --ignore-label none scores them."""
    from helpers import write_segmentation

    bordered = write_void_bordered(tmp_path / "voc", num_classes=2)
    out = tmp_path / "run"
    Trainer(TrainConfig(recipe="seg", data=str(bordered), ignore_label=255, out=str(out), **TINY), progress=False).fit()
    image = sorted((bordered / "test" / "images").iterdir())[0]
    kept = image.read_bytes()
    image.write_bytes(kept[:100])  # its header is whole: decoding it fails
    with pytest.raises(DataError, match=rf"`gantk data check {bordered} --data-format segmentation --ignore-label 255` checks "
                                        "every file"):  # as the model reads the masks
        evaluate(out, bordered, progress=False)
    image.write_bytes(kept)
    binary = write_segmentation(tmp_path / "binary", count=4, size=40, num_classes=2)  # 0 and 255
    refused = run("eval", "--checkpoint", out, "--data", binary)
    assert refused.exit_code != 0 and "no mask holds a class but 0 once 255 is ignored" in refused.output
    assert "Note: the ignore label 255 is the model's (it was trained with it); to score masks that use 255 otherwise, pass " \
           "--ignore-label none." in refused.output
    scored = run("eval", "--checkpoint", out, "--data", binary, "--ignore-label", "none", "--json")
    assert scored.exit_code == 0, scored.output
    assert evaluate(out, binary, ignore_label="none", progress=False)["ignore_label"] is None
    wrong = run("eval", "--checkpoint", out, "--data", binary, "--ignore-label", "nothing")
    assert wrong.exit_code == 2 and "'nothing' is neither a mask value (0 to 65535) nor none" in wrong.output


def test_a_study_trains_and_scores_its_cells_with_the_ignore_label(tmp_path):
    from gantk.commands_eval import ablate_command

    root = write_void_bordered(tmp_path / "voc")
    grid = tmp_path / "grid.toml"
    grid.write_text('name = "seg"\n[common]\nrecipe = "seg"\ngen_opt = { ngf = 8 }\ndisc_opt = { ndf = 8 }\n'
                    '[[cells]]\nname = "lovasz"\nloss = "lovasz"\ndisc = "none"\n[[cells]]\nname = "hinge+lovasz"\n')
    group = GantkGroup(commands={"ablate": ablate_command})
    args = ["ablate", "--grid", grid, "--data", root, "--out", tmp_path / "study", "--ignore-label", 255, "--max-steps", 1,
            "--batch-size", 2, "--load-size", 36, "--crop-size", 32, "--workers", 0, "--no-progress"]
    result = CliRunner().invoke(group, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    for cell in ("lovasz", "hinge+lovasz"):
        assert load_checkpoint(tmp_path / "study" / cell)["system"]["ignore_label"] == 255
    assert "images, pixels of mask value 255 ignored);" in (tmp_path / "study" / "results.md").read_text()


def test_eval_refuses_an_ignore_label_that_shifts_the_classes_from_the_models(tmp_path):
    from gantk.evaluate import evaluate

    from torchvision.io import read_image

    root = write_void_bordered(tmp_path / "voc")
    run = Trainer(TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), ignore_label=255, **TINY), progress=False).fit()
    zeroed = write_void_bordered(tmp_path / "zeroed")  # the same masks with their void 255 set to 0
    for path in zeroed.glob("*/masks/*.png"):
        write_png(read_image(str(path)).masked_fill(read_image(str(path)) == 255, 0), str(path))
    with pytest.raises(OptionError, match=r"--ignore-label\) 0 reads the masks of .* with 0 ignored, mask value k \+ 1 is class k, "
                                          r"and the checkpoint's model was trained with the ignore label 255, so with mask value k "
                                          "is class k: each of its classes would be scored against the pixels of another"):
        evaluate(run, zeroed, ignore_label=0, progress=False)
    assert evaluate(run, root, ignore_label=255, progress=False)["ignore_label"] == 255  # the model's own, given


def test_mask_values_outside_a_scored_models_classes_are_said_to_be_outside_the_models(tmp_path):
    from gantk.evaluate import evaluate

    run = Trainer(TrainConfig(recipe="seg", data=str(write_void_bordered(tmp_path / "voc")), out=str(tmp_path / "run"),
                              ignore_label=255, **TINY), progress=False).fit()
    binary = write_segmentation(tmp_path / "binary", count=2)  # 0/255 masks
    with pytest.raises(DataError, match=r"holds value 255 \(the object of a binary mask\), outside the class ids 0..2 of the "
                                        "model; give masks of the classes the model was trained on, or fix this one.$"):
        evaluate(run, binary, ignore_label="none", progress=False)  # the data are sound: no data check to run


def test_an_ignore_label_among_the_ids_of_a_set_with_a_void_255_is_named_once(tmp_path):
    masks = {tmp_path / f"{i}.png": {0, 1, 2, 3, 255} for i in range(5)}
    problems = mask_classes(masks, tmp_path, ignore_label=2)[1]
    assert problems == [f"{tmp_path}: the masks hold class ids (0, 1, 2, 3) and 255, and the ignore label 2 is one of the ids: "
                        "if 255 marks pixels to ignore, as Pascal VOC's 'void' does, pass --ignore-label 255 instead."]
    assert mask_classes(masks, tmp_path, ignore_label=255) == (4, [])
