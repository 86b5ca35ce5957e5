"""The vgg objective: VGG19 features of pix2pixHD's taps, weights read from a file only when the term runs."""

import pathlib
import re
import shutil
import zipfile

import pytest
import torch
import torchvision
from click.testing import CliRunner
from torch import nn

from gantk.cli import cli
from gantk.errors import OptionError
from gantk.inference import TrainedModel
import gantk
from gantk.objectives import LossContext, Objective, PerceptualLoss
from gantk.objectives.perceptual import WEIGHTS_FILE, default_weights_file
from gantk.testing import ObjectiveConformance
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import load_checkpoint
from helpers import flip_a_bit, write_paired, write_segmentation, write_unaligned


def random_vgg19_features() -> nn.Sequential:
    """VGG19's feature layers up to relu5_1 with random weights scaled to keep activations alive."""
    torch.manual_seed(0)
    with torch.device("meta"):
        features = torchvision.models.vgg19().features[:30]
    features = features.to_empty(device="cpu")
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.uniform_(layer.bias, -0.1, 0.1)
    return features.requires_grad_(False)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A file laid out as torchvision's vgg19 weights (keys ``features.N.weight``), with random values."""
    path = tmp_path_factory.mktemp("vgg") / WEIGHTS_FILE
    torch.save({f"features.{key}": value for key, value in random_vgg19_features().state_dict().items()}, path)
    return path


def context(fake, real):
    return LossContext(input=torch.zeros_like(real), fake=fake, real=real)


def test_the_loss_is_pix2pixhds_weighted_l1_over_relu1_1_to_relu5_1(vgg_file):
    torch.manual_seed(1)
    fake, real = (torch.rand(2, 3, 32, 32) * 2 - 1 for _ in range(2))
    layers = random_vgg19_features()

    def relus(images):  # after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1: torchvision's layers 1, 6, 11, 20, 29
        x, found = images, []  # in [-1, 1], as pix2pixHD's VGGLoss has them
        for index, layer in enumerate(layers):
            x = layer(x)
            found += [x] if index in (1, 6, 11, 20, 29) else []
        return found

    expected = sum(w * (f - r).abs().mean() for w, f, r in zip([1 / 32, 1 / 16, 1 / 8, 1 / 4, 1], relus(fake), relus(real)))
    loss = PerceptualLoss(weights=str(vgg_file)).generator_loss(context(fake, real))
    assert loss.item() > 0 and torch.allclose(loss, expected, rtol=1e-5)
    assert PerceptualLoss(weights=str(vgg_file)).generator_loss(context(real, real)).item() == 0


def test_grey_images_are_seen_as_three_equal_channels(vgg_file):
    torch.manual_seed(2)
    fake, real = (torch.rand(1, 1, 16, 16) * 2 - 1 for _ in range(2))
    term = PerceptualLoss(weights=str(vgg_file))
    grey = term.generator_loss(context(fake, real))
    assert torch.equal(grey, term.generator_loss(context(fake.repeat(1, 3, 1, 1), real.repeat(1, 3, 1, 1))))


def test_gradients_reach_the_fake_and_nothing_of_the_term_is_kept_or_trained(vgg_file):
    term = PerceptualLoss(weights=str(vgg_file))
    fake = torch.zeros(1, 3, 16, 16, requires_grad=True)
    term.generator_loss(context(fake, torch.rand(1, 3, 16, 16))).backward()
    assert fake.grad.abs().sum() > 0
    assert term.network is not None and not any(p.requires_grad for p in term.network.parameters())
    assert not list(term.parameters()) and not term.state_dict()  # checkpoints and optimizers see none of VGG


def test_the_weights_are_read_when_the_term_first_runs_from_torchs_cache_by_default(tmp_path, monkeypatch, vgg_file):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    term = PerceptualLoss()  # built without the file: describing or translating a model never needs it
    expected = tmp_path / "hub" / "checkpoints" / WEIGHTS_FILE
    assert default_weights_file() == expected
    fetch = "python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\""
    with pytest.raises(OptionError, match=re.escape(f"there is no file {expected}: fetch them once (548 MB) with {fetch}, which "
                                                    "saves them there, or name a copy with --loss-opt vgg.weights=PATH")):
        term.generator_loss(context(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)))
    with pytest.raises(OptionError, match=re.escape(f"there is no file {tmp_path / 'moved.pth'}: fetch them once (548 MB) with "
                                                    f"{fetch}, to a file of your choice, then name it with --loss-opt")):
        PerceptualLoss(weights=str(tmp_path / "moved.pth")).prepare()
    expected.parent.mkdir(parents=True)
    shutil.copy(vgg_file, expected)
    assert term.generator_loss(context(torch.zeros(1, 3, 16, 16), torch.ones(1, 3, 16, 16))).item() > 0


def test_a_file_that_is_not_vgg19s_weights_is_named(tmp_path, vgg_file):
    wrong = tmp_path / "resnet.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    with pytest.raises(OptionError, match=re.escape(f"--loss-opt vgg.weights: {wrong} does not hold VGG19's weights: "
                                                    "features.0.weight should have shape (64, 3, 3, 3) and floating-point values, it has shape (64, 3, 7, 7)")):
        PerceptualLoss(weights=str(wrong)).prepare()
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(OptionError, match=r"notes.txt cannot be read as a weights file \(the file was not written by torch.save\)\.$"):
        PerceptualLoss(weights=str(tmp_path / "notes.txt")).prepare()
    coded = tmp_path / "coded.pth"
    torch.save({"features.0.weight": pathlib.PurePosixPath("x")}, coded)  # unpickling it would call code
    with pytest.raises(OptionError, match=r"coded.pth cannot be read as a weights file \(Unsupported global: .*PurePosixPath") as refused:
        PerceptualLoss(weights=str(coded)).prepare()
    assert "weights_only=False" not in str(refused.value)
    deflated = tmp_path / "deflated.pth"  # torch.load would inflate its entries before any check
    with zipfile.ZipFile(vgg_file) as stored, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as packed:
        for info in stored.infolist():
            packed.writestr(info.filename, stored.read(info))
    with pytest.raises(OptionError, match="deflated.pth is not a file torch.save wrote \\(it holds zip entries that would unpack to more than its size"):
        PerceptualLoss(weights=str(deflated)).prepare()
    flipped = shutil.copy(vgg_file, tmp_path / "flipped.pth")
    flip_a_bit(pathlib.Path(flipped), "data/0")
    with pytest.raises(OptionError, match="flipped.pth is damaged: its entry .*data/0 differs from the checksum written with it; "
                                          "copy the file again from a sound copy"):
        PerceptualLoss(weights=str(flipped)).prepare()


def test_a_weights_path_from_the_current_folder_is_refused_with_the_absolute_one(tmp_path, monkeypatch, vgg_file):
    monkeypatch.chdir(vgg_file.parent)
    with pytest.raises(OptionError, match=re.escape(f"--loss-opt vgg.weights is a path from the current folder, {WEIGHTS_FILE}; "
                                                    f"checkpoints record it as given, and a resumed run may start in another "
                                                    f"folder: give {vgg_file.resolve()}.")):
        PerceptualLoss(weights=WEIGHTS_FILE).prepare()


@pytest.mark.parametrize("shape, found", [((1, 4, 16, 16), "4 channels of 16x16"), ((1, 3, 8, 8), "3 channels of 8x8")])
def test_images_vgg_cannot_see_are_refused(vgg_file, shape, found):
    with pytest.raises(OptionError, match=f"vgg compares RGB or grey images of at least 16 px, got {found}"):
        PerceptualLoss(weights=str(vgg_file)).generator_loss(context(torch.zeros(shape), torch.zeros(shape)))


@pytest.mark.parametrize("channels_b, crop, message", [
    (4, 32, "vgg compares RGB or grey images, and the data's targets have 4 channels"),
    (3, 8, "vgg compares images of at least 16 px a side (VGG19 pools them four times before relu5_1), and --crop-size is 8"),
])
def test_images_vgg_cannot_see_are_refused_before_training(tmp_path, channels_b, crop, message):
    from gantk.data.io import write_png

    data = write_paired(tmp_path / "pairs", count=2, size=40)
    for path in (data / "B").iterdir():
        write_png(torch.full((channels_b, 40, 40), 128, dtype=torch.uint8), path)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), loss="bce+l1+vgg", crop_size=crop, load_size=crop + 4,
                         gen="encoder-decoder", gen_opt={"ngf": 8, "num_downs": 3}, disc="pixel", disc_opt={"ndf": 8}, workers=0,
                         max_steps=1)
    with pytest.raises(OptionError, match=re.escape(message)):
        Trainer(config, progress=False).fit()
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_masks_are_refused_before_training(tmp_path):
    data = write_segmentation(tmp_path / "seg")
    refused = CliRunner().invoke(cli, ["train", "--recipe", "seg", "--loss", "ce+vgg", "--data", str(data), "--out", str(tmp_path / "run")])
    assert refused.exit_code != 0 and "the vgg term scores images, but the data's targets are class masks: drop it from --loss" in refused.output
    assert "scores: images\n" in CliRunner().invoke(cli, ["describe", "objective", "vgg"]).output


def test_unpaired_training_refuses_it(tmp_path):
    data = write_unaligned(tmp_path / "unpaired")
    refused = CliRunner().invoke(cli, ["train", "--recipe", "cyclegan", "--loss", "lsgan+cycle+vgg", "--data", str(data),
                                       "--out", str(tmp_path / "run")])
    assert refused.exit_code != 0 and "vgg scores an output against its own target" in refused.output


class TestPerceptualLoss(ObjectiveConformance):
    name = "vgg"

    @pytest.fixture
    def component_options(self, vgg_file):
        return {"weights": str(vgg_file)}


def test_training_and_ablate_read_the_weights_before_any_step(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    data = write_paired(tmp_path / "pairs")
    flags = ["--data", str(data), "--max-steps", "1", "--crop-size", "32", "--load-size", "36", "--workers", "0", "--no-progress"]
    refused = CliRunner().invoke(cli, ["train", "--loss", "bce+l1+vgg", "--out", str(tmp_path / "run"), *flags])
    assert refused.exit_code != 0 and "needs VGG19's ImageNet weights, and there is no file" in refused.output
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").iterdir())
    grid = tmp_path / "grid.toml"
    grid.write_text('[[cells]]\nname = "l1"\nloss = "l1"\ndisc = "none"\n[[cells]]\nname = "vgg"\nloss = "l1+vgg"\ndisc = "none"\n')
    refused = CliRunner().invoke(cli, ["ablate", "--grid", str(grid), "--out", str(tmp_path / "study"), *flags])
    assert refused.exit_code != 0 and "cell 'vgg': the vgg objective needs VGG19's ImageNet weights" in refused.output
    assert not list((tmp_path / "study").glob("*/checkpoint-*.pt"))  # the l1 cell did not train first


class Prepared(Objective):
    """A term whose factor comes from prepare(), as a file's contents would; prepare(kind="broken") fails as plugin code may."""

    def __init__(self, kind: str = "fine"):
        super().__init__()
        self.kind, self.factor = kind, None

    def prepare(self):
        if self.kind == "broken":
            raise KeyError("weights")
        self.factor = torch.tensor(2.0)

    def generator_loss(self, ctx):
        return self.factor * (ctx.fake - ctx.real).abs().mean()


class PreparedPlugin:
    @gantk.hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("prepared", Prepared)


class TestAnObjectivePreparedBeforeTraining(ObjectiveConformance):
    name = "prepared"
    plugins = [PreparedPlugin()]


def test_a_plugin_objective_that_fails_to_prepare_is_named(tmp_path):
    config = TrainConfig(data=str(write_paired(tmp_path / "pairs")), out=str(tmp_path / "run"), loss="bce+l1+prepared",
                         loss_opt={"prepared": {"kind": "broken"}}, max_steps=1, crop_size=32, load_size=36, workers=0)
    with pytest.raises(OptionError, match=r"the objective 'prepared' \(plugin '.*'\) could not prepare for training \(KeyError: 'weights'\)"):
        Trainer(config, components=gantk.load_components(plugins=[PreparedPlugin()]), progress=False).fit()


def test_a_run_trains_with_it_and_translates_without_the_file(tmp_path, vgg_file):
    weights = tmp_path / WEIGHTS_FILE
    shutil.copy(vgg_file, weights)
    run = tmp_path / "run"
    trained = CliRunner().invoke(cli, [
        "train", "--loss", "bce+l1+vgg", "--loss-opt", f"vgg.weights={weights}", "--max-steps", "2", "--crop-size", "32",
        "--load-size", "36", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--workers", "0", "--out", str(run), "--no-progress"])
    assert trained.exit_code == 0, trained.output
    assert "G/vgg" in (run / "metrics.csv").read_text().splitlines()[0]
    state = load_checkpoint(run)["system_state"]
    assert state and not [key for key in state if not key.startswith("networks.")]  # none of the objective's
    weights.unlink()
    model = TrainedModel.load(run)
    assert model.translate(model.inputs(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))).shape == (1, 3, 32, 32)
