"""Segmentation and CycleGAN as compositions run by the shared trainer; translate with their checkpoints."""

import csv
import dataclasses
import re

import pytest
import torch
from torchvision.io import decode_image

from gantk.data import open_dataset
from gantk.errors import DataError, GantkWarning, OptionError
from gantk.inference import TrainedModel
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import (
    components_with_generator, fit_recording_optimizer_steps, train_interrupted_then_resumed, write_paired, write_segmentation,
    without_timings, write_unaligned,
)

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, log_every=1, sample_every=2, checkpoint_every=2,
            disc_opt={"ndf": 8})


def rows(run):
    with (run / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


def cycle_config(data, out, **overrides):
    return TrainConfig(recipe="cyclegan", data=str(data), out=str(out), gen="resnet6", gen_opt={"ngf": 8}, **{**TINY, **overrides})


def test_cyclegan_discriminators_learn_from_their_pools(tmp_path):
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, pool_size=2), progress=False)
    trainer.fit()
    assert [len(trainer.system.pools[name].images) for name in ("D_A", "D_B")] == [2, 2]


def test_cyclegan_discriminators_judge_what_their_pools_return(tmp_path, monkeypatch):
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, pool_size=2), progress=False)
    trainer.fit()
    system = trainer.system
    batch = {side: torch.rand(2, 3, 32, 32) * 2 - 1 for side in "AB"}
    returned, judged = {}, {name: [] for name in system.pools}
    for name, pool in system.pools.items():
        returned[name] = torch.full((2, 3, 32, 32), 0.25)  # a past fake, unlike any of this step's
        monkeypatch.setattr(pool, "query", lambda images, name=name: returned[name])
        system.networks[name].register_forward_hook(lambda _, inputs, __, name=name: judged[name].append(inputs[0]))
    nets = dict(system.networks)
    with torch.no_grad():
        system.phase_losses(next(p for p in system.phases if p.name == "D"), batch, system(batch, nets), nets)
    for name in system.pools:  # the fakes it judges are the pool's, beside the real images
        assert any(torch.equal(seen, returned[name]) for seen in judged[name]), name


def test_each_identity_term_runs_the_generator_into_its_own_domain(tmp_path):
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, disc="none", loss="cycle+identity"), progress=False)
    trainer.fit()
    system = trainer.system
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    nets = {"G_AB": lambda x: x, "G_BA": lambda x: -x}  # G_AB keeps B images as they are; G_BA does not keep A's
    losses = system.phase_losses(system.phases[0], {"A": a, "B": b}, {"fake_B": a, "fake_A": -b}, nets)
    assert losses["G_AB/identity"] == 0
    assert losses["G_BA/identity"] == pytest.approx(5 * (2 * a).abs().mean())  # weight 5 times |G_BA(a) - a|


def test_the_domain_weights_scale_the_terms_that_give_back_each_domains_images(tmp_path):
    """As the reference's lambda_A and lambda_B: weight_A scales A's cycle and G_BA's identity (fed A's images)."""
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, disc="none", loss="cycle+identity",
                                   recipe_opt={"weight_A": 2, "weight_B": 0.5}), progress=False)
    trainer.fit()
    system = trainer.system
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    nets = {"G_AB": lambda x: x + 0.25, "G_BA": lambda x: x - 0.5}
    losses = system.phase_losses(system.phases[0], {"A": a, "B": b}, {"fake_B": nets["G_AB"](a), "fake_A": nets["G_BA"](b)}, nets)
    assert {name: round(value.item(), 4) for name, value in losses.items()} == {
        "G_AB/cycle": 2 * 10 * 0.25, "G_AB/identity": 0.5 * 5 * 0.25,  # |a - 0.25 - a|; G_AB(b) - b
        "G_BA/cycle": 0.5 * 10 * 0.25, "G_BA/identity": 2 * 5 * 0.5,  # |b - 0.25 - b|; G_BA(a) - a
    }
    assert TrainedModel.load(tmp_path / "run").config["recipe_opt"] == {"weight_A": 2.0, "weight_B": 0.5}
    with pytest.raises(OptionError, match="--recipe-opt weight_B=-1.0 is not valid: it scales the terms that give back B's"):
        Trainer(cycle_config(data, tmp_path / "bad", max_steps=1, recipe_opt={"weight_B": -1.0}), progress=False).fit()


def test_cyclegan_samples_show_the_reconstructions_and_leave_training_as_it_was(tmp_path):
    from PIL import Image

    data = write_unaligned(tmp_path / "data")
    runs = {}
    for name, every in (("sampled", 1), ("unsampled", 100)):  # a U-Net with batch norm and dropout
        settings = {**TINY, "max_steps": 3, "checkpoint_every": 3, "sample_every": every, "load_size": 72, "crop_size": 64,
                    "gen_opt": {"ngf": 8, "norm": "batch", "dropout": 0.5}}  # 64 px: a U-Net of 6 levels, one with dropout
        config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / name), gen="unet", **settings)
        runs[name] = Trainer(config, progress=False)
        runs[name].fit()
    sampled, unsampled = runs["sampled"], runs["unsampled"]
    for name, value in sampled.system.state_dict().items():  # batch statistics and dropout draws untouched
        assert torch.equal(value, unsampled.system.state_dict()[name]), name
    grid = Image.open(tmp_path / "sampled" / "samples" / "step-00000001.png")
    assert grid.width == 6 * (64 + 2) + 2  # A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B)), 64 px crops


@pytest.mark.parametrize("recipe", ["cyclegan", "cut"])
def test_unpaired_recipes_name_the_unaligned_layout_when_folders_a_and_b_do_not_pair(tmp_path, recipe):
    from gantk.data import write_png

    for side, names in (("A", "xy"), ("B", "zw")):  # two domains in folders named as pairs
        for name in names:
            write_png(torch.zeros(3, 40, 40, dtype=torch.uint8), tmp_path / "data" / side / f"{name}.png")
    for side, name in (("A", "horse"), ("B", "zebra")):  # names that differ by a text: taken for renamed partners
        for number in range(2):
            write_png(torch.zeros(3, 40, 40, dtype=torch.uint8), tmp_path / "renamed" / side / f"{name}_{number}.png")
    for data, problem in (("data", "no file named 'x.\\*' in B/"), ("renamed", "share a name but for 'horse_' and 'zebra_'")):
        config = TrainConfig(recipe=recipe, data=str(tmp_path / data), out=str(tmp_path / "run"), **TINY)
        with pytest.raises(DataError, match=rf"(?s){problem}.*Note: the {recipe} recipe trains on two unpaired domains, which it "
                                            r"reads from trainA/ and trainB/ .*: rename them trainA/ and trainB/\."):
            Trainer(config, progress=False).fit()
    with pytest.raises(DataError) as plain:  # pix2pix: pairs only, no note
        Trainer(dataclasses.replace(config, recipe="pix2pix"), progress=False).fit()
    assert "Note:" not in str(plain.value)


def test_folders_given_as_paired_data_get_no_note_of_the_unaligned_layout(tmp_path):
    from gantk.data import write_png

    for side, names in (("A", "xy"), ("B", "zw")):
        for name in names:
            write_png(torch.zeros(3, 40, 40, dtype=torch.uint8), tmp_path / "data" / side / f"{name}.png")
    config = TrainConfig(recipe="cyclegan", data=str(tmp_path / "data"), out=str(tmp_path / "run"), data_format="paired", **TINY)
    with pytest.raises(DataError, match="no file named 'x.\\*' in B/") as refused:  # --data-format paired: meant as pairs
        Trainer(config, progress=False).open_data()
    assert "Note:" not in str(refused.value)


def test_cyclegan_between_gray_and_colour(tmp_path):
    data = write_unaligned(tmp_path / "data", channels_a=1)
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, loss="lsgan+cycle"), progress=False)
    trainer.fit()
    first_conv = {name: next(m for m in trainer.system.networks[name].modules() if isinstance(m, torch.nn.Conv2d))
                  for name in ("D_A", "D_B", "G_AB", "G_BA")}
    assert {name: conv.in_channels for name, conv in first_conv.items()} == {"D_A": 1, "D_B": 3, "G_AB": 1, "G_BA": 3}
    written = translate(tmp_path / "run", data / "trainB", tmp_path / "gray", direction="BtoA")  # colour in, gray out
    assert len(written) == 4 and all(decode_image(str(path)).shape[0] == 1 for path in written)


def test_cyclegan_step_updates_each_network_with_its_own_optimizer(tmp_path):
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1), progress=False)
    steps = fit_recording_optimizer_steps(trainer)
    assert [changed for changed, _ in steps] == [{"G_AB", "G_BA"}, {"D_A", "D_B"}]
    logged = rows(tmp_path / "run")[0]
    for key in ("G_AB/lsgan", "G_AB/cycle", "G_AB/identity", "G_BA/lsgan", "D_A/lsgan", "D_B/lsgan"):
        assert float(logged[key]) > 0, key


def test_cyclegan_n_critic(tmp_path):
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=4, n_critic=2), progress=False)
    steps = fit_recording_optimizer_steps(trainer)
    assert [changed for changed, _ in steps] == [{"D_A", "D_B"}, {"G_AB", "G_BA"}, {"D_A", "D_B"}] * 2


def test_cyclegan_loss_spec_is_editable(tmp_path):
    data = write_unaligned(tmp_path / "data")
    run = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, loss="hinge+cycle@10"), progress=False).fit()
    keys = set(rows(run)[0])
    assert "G_AB/hinge" in keys and "G_AB/cycle" in keys and "G_AB/identity" not in keys


@pytest.mark.parametrize("setting, message", [
    ({"loss": "lsgan+lovasz+cycle"}, "lovasz scores an output against its own target, which unpaired data does not have"),
    ({"loss": "lsgan+l1+l2+cycle"}, "l1 and l2 score an output against its own target"),
    ({"conditional": True}, "discriminators see one domain's images alone .*: drop --conditional"),
    ({"direction": "BtoA"}, "learns both directions at once: train with --direction AtoB and translate with --direction BtoA"),
])
def test_cyclegan_refuses_what_unpaired_training_cannot_do(tmp_path, setting, message):
    config = TrainConfig(recipe="cyclegan", data=str(write_unaligned(tmp_path / "data")), out=str(tmp_path / "run"), max_steps=1,
                         **{**TINY, **setting})
    with pytest.raises(OptionError, match=message):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe", ["pix2pix", "seg"])
def test_a_paired_recipe_refuses_unpaired_data(tmp_path, recipe):
    config = TrainConfig(recipe=recipe, data=str(write_unaligned(tmp_path / "data")), out=str(tmp_path / "run"), max_steps=1, **TINY)
    with pytest.raises(OptionError, match="this recipe trains on pairs, and unaligned data has none .*: train unpaired data with --recipe cyclegan"):
        Trainer(config, progress=False).fit()


def test_cyclegan_resume_and_translate_both_ways(tmp_path):
    data = write_unaligned(tmp_path / "data")

    def run(out, stop_at=None):
        # a pool of 2 fills at once, so its random swaps and stored images must survive the resume
        train_interrupted_then_resumed(cycle_config(data, out, max_steps=5, checkpoint_every=3, pool_size=2), stop_at)
        return without_timings(rows(out))

    assert run(tmp_path / "resumed", stop_at=4) == run(tmp_path / "straight")
    for direction in ("AtoB", "BtoA"):
        written = translate(tmp_path / "straight", data / "trainA", tmp_path / direction, direction=direction, eval_mode=True)
        assert len(written) == 5
        assert decode_image(str(written[0])).shape == (3, 32, 32)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_segmentation_trains_and_writes_masks(tmp_path, num_classes):
    data = write_segmentation(tmp_path / "data", num_classes=num_classes)
    config = TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), max_steps=2, gen_opt={"ngf": 8}, **TINY)
    run = Trainer(config, progress=False).fit()
    assert {"D/hinge", "G/hinge", "G/lovasz"} <= set(rows(run)[0])
    from gantk.train import checkpoint as ckpt

    system, _ = ckpt.system_from_checkpoint(run)
    assert not any(isinstance(m, torch.nn.Tanh) for m in system.networks["G"].modules())  # logits, not images
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    inputs = model.inputs(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    logits = model.system.translation_generator()(inputs)
    probabilities = model.translate(inputs)  # what translate, eval, validation and export score and write
    expected = torch.sigmoid(logits) if num_classes == 2 else torch.softmax(logits, dim=1)
    assert logits.shape[1] == (1 if num_classes == 2 else num_classes) and torch.allclose(probabilities, expected)
    written = translate(run, data / "images", tmp_path / "masks", overlay=True)
    masks = [decode_image(str(p)) for p in written if not p.stem.endswith("_overlay")]
    assert len(masks) == 6 and masks[0].shape == (1, 32, 32)
    allowed = {0, 255} if num_classes == 2 else set(range(num_classes))
    assert set(torch.cat([m.flatten() for m in masks]).unique().tolist()) <= allowed
    assert sum(p.stem.endswith("_overlay") for p in written) == 6
    full = translate(run, data / "images", tmp_path / "full", overlay=True, size="original", eval_mode=True)
    mask, overlay = decode_image(str(full[0])), decode_image(str(full[1]))
    assert mask.shape == (1, 40, 40) and overlay.shape == (3, 40, 40)
    model = TrainedModel.load(run, eval_mode=True)  # the mask comes from the probabilities, resized
    image = open_dataset(data / "images", format="single", augment=False, load_size=None, crop_size=32)[0]["A"]
    probs = torch.nn.functional.interpolate(model.translate(model.inputs(image[None])), size=(40, 40), mode="bilinear")
    ids = model.predicted_ids(probs)[0]
    assert probs.shape[1] == (1 if num_classes == 2 else num_classes)  # the foreground's probability alone for two classes
    assert torch.equal(ids, (probs[0, 0] > 0.5).long() if num_classes == 2 else probs[0].argmax(0))
    assert torch.equal(mask[0], (ids * 255 if num_classes == 2 else ids).to(torch.uint8))
    assert model.write_mask(ids, tmp_path / "written.png").read_bytes() == full[0].read_bytes()  # as translate writes it
    native = translate(run, data / "images", tmp_path / "native", overlay=True, size="native", eval_mode=True)
    assert [decode_image(str(p)).shape for p in native[:2]] == [(1, 40, 40), (3, 40, 40)]  # 40 px, padded to 64 inside


@pytest.mark.parametrize("loss", ["lovasz", "l1", "ce", "focal", "hinge+l1@0.5", "bce+lovasz", "hinge+ce+lovasz"])
def test_segmentation_objectives_with_and_without_discriminator(tmp_path, loss):
    data = write_segmentation(tmp_path / "data")
    disc = None if "+" in loss else "none"
    config = TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), max_steps=1, loss=loss, disc=disc,
                         gen_opt={"ngf": 8}, **TINY)
    logged = rows(Trainer(config, progress=False).fit())[0]
    assert all(float(logged[f"G/{name.split('@')[0]}"]) >= 0 for name in loss.split("+"))


def split_masks(root):
    """A segmentation set with train/ (6 pairs) and test/ (3 pairs) splits."""
    write_segmentation(root / "train")
    write_segmentation(root / "test", count=3)
    return root


def test_validation_metrics_during_segmentation_training(tmp_path):
    root = split_masks(tmp_path / "data")
    config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), max_steps=3, val_every=2,
                         gen_opt={"ngf": 8}, **TINY)
    run = Trainer(config, progress=False).fit()
    with (run / "validation.csv").open() as handle:
        validation = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in validation] == [2, 3]
    for key in ("val/pixel_accuracy", "val/mean_iou", "val/foreground_iou", "val/mean_dice", "val/rmse"):
        assert 0 <= float(validation[-1][key]) <= 1, key


def test_validation_leaves_the_run_as_it_would_be_without_it(tmp_path):
    from gantk.train import checkpoint as ckpt

    root = split_masks(tmp_path / "data")
    states = []
    for name, val_every in (("plain", None), ("validated", 1)):
        config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / name), max_steps=3, val_every=val_every,
                             gen="resnet6", gen_opt={"ngf": 8, "dropout": 0.5}, **TINY)  # dropout draws from the RNG
        states.append(ckpt.load_checkpoint(Trainer(config, progress=False).fit())["system_state"])
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_a_validation_cut_short_at_a_checkpoint_runs_when_the_run_resumes(tmp_path, monkeypatch):
    from gantk.train import run_validation

    root = split_masks(tmp_path / "data")
    tables, scores = [], run_validation.validation_scores
    for name, fails_at in (("straight", None), ("cut", 2), ("cut-at-the-end", 3)):
        config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / name), max_steps=3, val_every=2,
                             gen_opt={"ngf": 8}, **{**TINY, "checkpoint_every": 1})

        def failing(*args, trainer, fails_at=fails_at):
            if trainer.step == fails_at:
                raise RuntimeError("validation stopped")
            return scores(*args)

        trainer = Trainer(config, progress=False)
        monkeypatch.setattr(run_validation, "validation_scores", lambda *args, trainer=trainer: failing(*args, trainer=trainer))
        if fails_at:
            with pytest.raises(RuntimeError, match="validation stopped"):
                trainer.fit()
            monkeypatch.setattr(run_validation, "validation_scores", scores)
            Trainer.resume(config.out, {"max_steps": 3 if fails_at == 2 else 4}, progress=False).fit()  # a longer run
        else:
            trainer.fit()
        with (tmp_path / name / "validation.csv").open() as handle:
            tables.append(list(csv.DictReader(handle)))
    assert [int(row["step"]) for row in tables[1]] == [2, 3] and tables[1] == tables[0]
    assert [int(row["step"]) for row in tables[2]] == [2, 3, 4]  # step 3 ended the first schedule


def test_validation_runs_the_networks_in_eval_mode(tmp_path, monkeypatch):
    from gantk.systems.paired import PairedSystem

    root = split_masks(tmp_path / "data")
    modes = []
    translate = PairedSystem.translate
    monkeypatch.setattr(PairedSystem, "translate", lambda self, *a, **k: modes.append(self.training) or translate(self, *a, **k))
    config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), max_steps=2, val_every=1,
                         gen_opt={"ngf": 8}, **TINY)
    trainer = Trainer(config, progress=False)
    trainer.fit()
    assert modes == [False] * 4 and trainer.system.training  # 2 validations of 2 batches, then back to training


def test_validation_needs_a_held_out_split(tmp_path):

    data = write_segmentation(tmp_path / "flat")
    config = TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), max_steps=1, val_every=1,
                         gen_opt={"ngf": 8}, **TINY)
    with pytest.raises(OptionError, match=r"held-out split val or test in .*flat, which has no splits: move the training data into train/ and held-out data into val/"):
        Trainer(config, progress=False).fit()
    split = write_segmentation(tmp_path / "split" / "train")
    with pytest.raises(OptionError, match=r"held-out split val or test in .* \(it has splits train\); move .* into val/"):
        Trainer(dataclasses.replace(config, data=str(split.parent)), progress=False).fit()
    with pytest.raises(OptionError, match=r"held-out split 'test' in .*flat, which has no splits: move .* into test/"):
        Trainer(dataclasses.replace(config, val_split="test"), progress=False).fit()


def test_validation_takes_the_val_split_before_test_and_keeps_it_on_resume(tmp_path):
    root = split_masks(tmp_path / "data")
    config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), max_steps=1, val_every=1,
                         gen_opt={"ngf": 8}, **TINY)
    trainer = Trainer(config, progress=False)
    trainer.fit()
    assert (trainer.config.val_split, len(trainer.validation.dataset)) == ("test", 3)
    write_segmentation(root / "val", count=2)
    resumed = Trainer.resume(config.out, {"max_steps": 2}, progress=False)
    resumed.fit()
    assert (resumed.config.val_split, len(resumed.validation.dataset)) == ("test", 3)  # the split the run began with
    trainer = Trainer(dataclasses.replace(config, out=str(tmp_path / "new")), progress=False)
    trainer.fit()
    assert (trainer.config.val_split, len(trainer.validation.dataset)) == ("val", 2)
    assert 'val_split = "val"' in (tmp_path / "new" / "config.toml").read_text()


def test_validation_on_training_images_a_changed_split_and_a_split_without_validation_are_warned_of(tmp_path):
    root = split_masks(tmp_path / "data")
    config = TrainConfig(recipe="seg", data=str(root), out=str(tmp_path / "run"), max_steps=1, val_every=1,
                         gen_opt={"ngf": 8}, **TINY)
    Trainer(config, progress=False).fit()
    with pytest.warns(GantkWarning) as warned:
        Trainer.resume(config.out, {"max_steps": 2, "val_split": "train"}, progress=False).fit()
    messages = [str(w.message) for w in warned if issubclass(w.category, GantkWarning)]
    assert any(re.match(r"the run validated on split test and goes on with train: the rows of validation.csv after step 1 "
                        r"score other images than those before", m) for m in messages), messages
    assert "--val-split train holds training images: validation.csv's scores are not on held-out images." in messages
    with pytest.warns(GantkWarning, match="--val-split test names the split --val-every validates on, and there is no "
                                          "--val-every: the run is not validated"):
        Trainer(dataclasses.replace(config, out=str(tmp_path / "other"), val_every=None, val_split="test"), progress=False).fit()


def test_cyclegan_translates_tiny_and_thin_images_at_native_size(tmp_path, monkeypatch):
    """The resnet generators need 8 px a side: native-size inputs are padded up to that, then cropped back."""
    from gantk.data.io import write_png

    data = write_unaligned(tmp_path / "data")
    config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), gen="resnet6", max_steps=1,
                         gen_opt={"ngf": 8}, **TINY)
    run = Trainer(config, progress=False).fit()
    for name, (height, width) in {"dot": (1, 1), "thin": (3, 30)}.items():
        write_png(torch.rand(3, height, width) * 2 - 1, tmp_path / "odd" / f"{name}.png")
    written = translate(run, tmp_path / "odd", tmp_path / "out", size="native", direction="BtoA", eval_mode=True)
    assert [decode_image(str(p)).shape for p in written] == [(3, 1, 1), (3, 3, 30)]
    model = TrainedModel.load(run, eval_mode=True)
    with pytest.raises(DataError, match=r"the model takes sides that are multiples of 4 and at least 8 px, got 4x4: translate with pad=True"):
        model.translate(torch.zeros(1, 3, 4, 4), "BtoA")  # not padded
    monkeypatch.setattr(TrainedModel, "translate", lambda *args, **kwargs: (_ for _ in ()).throw(OptionError("too small")))
    with pytest.raises(OptionError, match=r"translating .*dot.png: too small"):  # which input, in a folder
        translate(run, tmp_path / "odd", tmp_path / "out2")


def test_mask_training_names_a_generator_that_cannot_output_logits(tmp_path):
    def fixed(in_channels=3, out_channels=3):
        """A generator without a final_activation option."""
        return torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, 1), torch.nn.Tanh())

    components = components_with_generator("fixed", fixed)
    data = write_segmentation(tmp_path / "data")
    config = TrainConfig(recipe="seg", gen="fixed", data=str(data), out=str(tmp_path / "run"), max_steps=1, **TINY)
    with pytest.raises(OptionError, match="generator 'fixed' does not take: choose another --gen"):
        Trainer(config, components=components, progress=False).fit()


def test_image_pairs_refuse_every_term_that_scores_masks(tmp_path):
    from gantk import Objective, hookimpl, load_components

    class Dice(Objective):
        needs_masks = True

        def generator_loss(self, ctx):
            return (ctx.fake - ctx.real).abs().mean()

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("dice", Dice)

    pairs = write_paired(tmp_path / "pairs", count=2)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), loss="bce+l1+dice+lovasz", **{**TINY, "max_steps": 1})
    with pytest.raises(OptionError, match="the dice and lovasz terms score class masks, but the data are image pairs"):
        Trainer(config, components=load_components(autoload=False, plugins=[Plugin()]), progress=False).fit()


@pytest.mark.parametrize("loss, named", [("bce+l1+cycle", "the cycle term needs"),
                                         ("bce+l1+cycle+identity", "the cycle and identity terms need")])
def test_the_paired_recipes_refuse_the_terms_of_a_generator_pair(tmp_path, loss, named):
    pairs = write_paired(tmp_path / "pairs", count=2)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), loss=loss, **{**TINY, "max_steps": 1})
    with pytest.raises(OptionError, match=f"{named} a generator each way .* --recipe cyclegan"):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run" / "config.toml").exists()


def test_the_identity_term_needs_sides_of_equal_channels(tmp_path):
    data = write_unaligned(tmp_path / "data", channels_a=1)
    with pytest.raises(OptionError, match=r"so it needs the same channel count in A and B \(got 1 and 3\): drop 'identity' from "
                                          r"--loss \(the recipe's default without it: --loss lsgan\+cycle@10\), or store both domains' images with one"):
        Trainer(cycle_config(data, tmp_path / "run", max_steps=1, loss="lsgan+cycle+identity"), progress=False).fit()


def test_a_plugin_reconstruction_term_is_scaled_by_the_domain_it_gives_back(tmp_path):
    from gantk.objectives import Objective
    from gantk.plugins import load_components
    from gantk.hookspecs import hookimpl

    class HalfCycle(Objective):
        """Half the cycle term's L1, declared as giving back the input's domain."""

        needs_unpaired = True
        gives_back = "input"

        def generator_loss(self, ctx):
            return 0.5 * (ctx.reconstructed - ctx.input).abs().mean()

    class Misdeclared(HalfCycle):
        """A term whose gives_back is neither side."""

        gives_back = "A"

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("half-cycle", HalfCycle)
            registry.add("misdeclared", Misdeclared)

    components = load_components(plugins=[Plugin()])
    data = write_unaligned(tmp_path / "data")
    trainer = Trainer(cycle_config(data, tmp_path / "run", max_steps=1, disc="none", loss="half-cycle",
                                   recipe_opt={"weight_A": 4, "weight_B": 0}), progress=False, components=components)
    trainer.fit()
    a, b = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    nets = {"G_AB": lambda x: x + 0.25, "G_BA": lambda x: x - 0.5}
    losses = trainer.system.phase_losses(trainer.system.phases[0], {"A": a, "B": b},
                                         {"fake_B": nets["G_AB"](a), "fake_A": nets["G_BA"](b)}, nets)
    assert {name: round(value.item(), 4) for name, value in losses.items()} == {"G_AB/half-cycle": 4 * 0.5 * 0.25,
                                                                               "G_BA/half-cycle": 0.0}
    with pytest.raises(OptionError, match="objective 'misdeclared' .* has gives_back='A': it is 'input'"):
        Trainer(cycle_config(data, tmp_path / "bad", max_steps=1, disc="none", loss="misdeclared"), progress=False,
                components=components).fit()
