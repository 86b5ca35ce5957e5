"""--disc-augment: DiffAugment of everything the discriminator sees, differentiable, one draw per image and context."""

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import OptionError
from gantk.nn.diff_augment import DiffAugment, cut_out, parse_policy, recoloured, translated
from gantk.objectives import LossContext
from gantk.objectives.r1 import R1Penalty
from gantk.train import TrainConfig, Trainer
from gantk.train.logs import read_metrics
from helpers import TINY_FLAGS, train_interrupted_then_resumed, write_paired, write_segmentation, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2, gen_opt={"ngf": 8},
            disc_opt={"ndf": 8})
ALL = "color,translation,cutout"


def test_policies_are_read_in_diffaugments_order_and_others_refused():
    assert parse_policy(" cutout, color ") == ("color", "cutout")
    assert parse_policy("Color,CUTOUT") == ("color", "cutout")
    for text in ("", "colour", "translation,flip"):
        with pytest.raises(OptionError, match="--disc-augment takes policies separated by commas, from color, translation, cutout"):
            parse_policy(text)
    assert TrainConfig(disc_augment="cutout,translation").merged({}).disc_augment == "cutout,translation"
    config = TrainConfig(disc_augment="cutout,translation")
    config.validate()
    assert config.disc_augment == "translation,cutout"


def test_translation_moves_each_image_by_its_own_whole_pixels_and_fills_zeros():
    images = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).view(2, 3, 5, 6) + 1
    moved = translated(images, torch.tensor([1, -2]), torch.tensor([-1, 3]))
    expected_first = F.pad(images[0], (0, 1, 1, 0))[:, :5, 1:]  # down 1, left 1
    expected_second = F.pad(images[1], (3, 0, 0, 2))[:, 2:, :6]  # up 2, right 3
    assert torch.equal(moved[0], expected_first) and torch.equal(moved[1], expected_second)


def test_cutout_zeroes_its_rectangle_inside_the_image():
    images = torch.ones(2, 1, 6, 8)
    cut = cut_out(images, torch.tensor([1, -2]), torch.tensor([2, 6]), 3, 4)
    assert cut[0, 0, 1:4, 2:6].abs().sum() == 0 and cut[0].sum() == 48 - 12
    assert cut[1, 0, :1, 6:].abs().sum() == 0 and cut[1].sum() == 48 - 2  # clipped at the corner


def test_colour_changes_brightness_saturation_and_contrast_per_image():
    images = torch.rand(2, 3, 4, 4) * 2 - 1
    ones = torch.ones(2)
    assert torch.allclose(recoloured(images, torch.tensor([0.3, -0.2]), ones, ones),
                          images + torch.tensor([0.3, -0.2]).view(2, 1, 1, 1))
    grey = recoloured(images, torch.zeros(2), torch.zeros(2), ones)
    assert torch.allclose(grey, images.mean(1, keepdim=True).expand_as(images))
    flat = recoloured(images, torch.zeros(2), ones, torch.zeros(2))
    assert torch.allclose(flat, images.mean((1, 2, 3), keepdim=True).expand_as(images), atol=1e-6)


def test_a_draw_transforms_alike_whatever_it_is_given_and_recolours_only_the_image():
    torch.manual_seed(0)
    augment = DiffAugment(parse_policy(ALL)).drawn(4, 16, 16, 3, torch.device("cpu"))
    condition, image = torch.rand(4, 2, 16, 16) + 1, torch.rand(4, 3, 16, 16) + 1  # no pixel 0 before the augmentation
    shown = augment(torch.cat([condition, image], 1))
    assert torch.equal(shown, augment(torch.cat([condition, image], 1)))
    moved_only = DiffAugment(("translation", "cutout"))
    torch.manual_seed(0)
    torch.rand(4), torch.rand(4), torch.rand(4)  # the colour draws, skipped
    geometry = moved_only.drawn(4, 16, 16, 3, torch.device("cpu"))
    assert torch.equal(shown[:, :2], geometry(condition))  # the condition moved and cut out as the image, not recoloured
    assert torch.equal(shown[:, 2:] == 0, geometry(image) == 0)
    assert (shown == 0).any() and not torch.equal(shown[:, 2:], geometry(image))


def test_the_gradient_flows_through_the_augmentation():
    for policy in (ALL, "translation,cutout"):
        fake = torch.rand(2, 3, 16, 16, requires_grad=True)
        augment = DiffAugment(parse_policy(policy)).drawn(2, 16, 16, 3, torch.device("cpu"))
        augment(fake).sum().backward()
        assert fake.grad is not None and (fake.grad != 0).any()
    assert (fake.grad == 0).any()  # where cut out or moved off


def test_everything_the_discriminator_is_shown_in_a_context_is_augmented_r1_too():
    weights = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    ctx = LossContext(input=torch.zeros(3, 1, 4, 4), fake=torch.zeros(3, 1, 4, 4), real=torch.randn(3, 1, 4, 4),
                      discriminator=lambda x: (x * weights).sum(1, keepdim=True), augment=lambda shown: 2 * shown)
    assert torch.equal(ctx.discriminator_input(ctx.real), 2 * torch.cat([ctx.input, ctx.real], 1))
    plain = LossContext(input=ctx.input, fake=ctx.fake, real=ctx.real, discriminator=ctx.discriminator)
    # D(2 [c, x]) = 6 c + 8 x: a gradient twice the plain 4, so a penalty four times its (32 against 8)
    assert R1Penalty().discriminator_loss(ctx).item() == pytest.approx(32.0)
    assert R1Penalty().discriminator_loss(plain).item() == pytest.approx(8.0)


@pytest.mark.parametrize("recipe", ["pix2pix", "cyclegan", "cut"])
def test_the_discriminator_sees_only_augmented_images_and_the_generator_learns_through_them(tmp_path, recipe):
    data = write_paired(tmp_path / "data", count=4) if recipe == "pix2pix" else write_unaligned(tmp_path / "data", 4, 4)
    settings = {"gen": "resnet6"} if recipe != "pix2pix" else {}
    trainer = Trainer(TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), disc_augment="cutout", **TINY,
                                  **settings), progress=False)
    trainer.fit()
    system, seen = trainer.system, []
    for name, net in system.networks.items():
        if name.startswith("D"):
            net.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    batch = {"A": torch.rand(2, 3, 32, 32) + 0.5, "B": torch.rand(2, 3, 32, 32) + 0.5}  # no pixel 0 before the cutout
    nets = dict(system.networks)
    outputs = system(batch, nets)
    for phase in system.phases:
        system.zero_grad()
        seen.clear()
        losses = system.phase_losses(phase, batch, outputs, nets)
        # each image loses a 16 x 16 rectangle, at least its quarter inside the image, in every channel
        assert seen and all(((images == 0).flatten(1).sum(1) >= 8 * 8 * images.shape[1]).all() for images in seen)
        if phase.name == "G":
            sum(value for key, value in losses.items() if "gan" in key or key.endswith(("bce", "lsgan"))).backward(retain_graph=True)
            generators = [net for name, net in system.networks.items() if name.startswith("G")]
            assert all(any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters()) for net in generators)


def test_a_run_with_augmentation_resumes_exactly(tmp_path):
    data = write_paired(tmp_path / "data", count=6)
    rows = []
    for name, stop_at in (("straight", None), ("resumed", 3)):
        config = TrainConfig(data=str(data), out=str(tmp_path / name), disc_augment=ALL, log_every=1,
                             **{**TINY, "max_steps": 5})
        train_interrupted_then_resumed(config, stop_at)
        rows.append([{key: value for key, value in row.items() if key.startswith(("G/", "D/"))}
                     for row in read_metrics(tmp_path / name / "metrics.csv")])
    assert len(rows[0]) == 5 and rows[0] == rows[1]


def test_the_train_command_takes_a_policy_and_names_a_wrong_one(tmp_path):
    data = write_paired(tmp_path / "data", count=4)
    args = ["train", "--data", str(data), "--max-steps", "1", *TINY_FLAGS]
    result = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "run"), "--disc-augment", "translation,cutout"])
    assert result.exit_code == 0, result.output
    assert 'disc_augment = "translation,cutout"' in (tmp_path / "run" / "config.toml").read_text()
    wrong = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "wrong"), "--disc-augment", "flip"])
    assert wrong.exit_code != 0 and "--disc-augment takes policies separated by commas" in wrong.output


@pytest.mark.parametrize("settings, message", [
    (dict(disc="none", loss="l1"), "--disc-augment color augments what the discriminator sees, and there is no discriminator"),
    (dict(recipe="seg"), "--disc-augment color: color changes the colours of the images the discriminator judges, and this "
                         "model's discriminator judges masks"),
])
def test_what_it_cannot_augment_is_refused(tmp_path, settings, message):
    data = write_segmentation(tmp_path / "data", count=2) if settings.get("recipe") == "seg" else write_paired(tmp_path / "data")
    with pytest.raises(OptionError, match=message):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), disc_augment="color", **{**TINY, **settings}),
                progress=False).fit()


def test_a_plugin_system_that_does_not_augment_is_refused(tmp_path):
    from gantk import hookimpl, load_components
    from gantk.recipes import pix2pix
    from gantk.recipes.base import Recipe
    from gantk.systems import PairedSystem

    class Unaugmented(PairedSystem):
        def __init__(self, config, components):
            super().__init__(config, components)
            self.disc_augment = None  # as a system written before --disc-augment

    class Plugin:
        @hookimpl
        def gantk_register_recipes(self, registry):
            registry.add("plain", lambda: Recipe(name="plain", system=Unaugmented, defaults=pix2pix().defaults))

    config = TrainConfig(recipe="plain", data=str(write_paired(tmp_path / "data")), out=str(tmp_path / "run"),
                         disc_augment="cutout", **TINY)
    with pytest.raises(OptionError, match=r"--disc-augment cutout: the system of recipe 'plain' \(Unaugmented\) does not "
                                          "augment what its discriminators see"):
        Trainer(config, components=load_components(autoload=False, plugins=[Plugin()]), progress=False).fit()
