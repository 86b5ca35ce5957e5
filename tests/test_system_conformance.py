"""The built-in recipes pass the system conformance kit that plugin recipes use."""

from gantk.testing import SystemConformance


class TestPix2pix(SystemConformance):
    name = "pix2pix"


class TestPix2pixWithoutDiscriminatorFromGray(SystemConformance):
    name = "pix2pix"
    settings = {"disc": "none", "loss": "l1"}
    channels = {"A": 1, "B": 3}


class TestPix2pixWithCriticSteps(SystemConformance):
    name = "pix2pix"
    settings = {"n_critic": 3}


class TestBinarySegmentation(SystemConformance):
    name = "seg"
    num_classes = 2


class TestMultiClassSegmentation(SystemConformance):
    name = "seg"
    settings = {"loss": "bce+lovasz", "gen": "resnet6"}
    num_classes = 4


class TestCycleGAN(SystemConformance):
    name = "cyclegan"
    directions = ("AtoB", "BtoA")
    channels = {"A": 1, "B": 3}
    settings = {"loss": "lsgan+cycle@10"}  # identity needs as many channels on both sides


BROKEN_RECIPES = '''
import torch

from gantk import hookimpl
from gantk.recipes import pix2pix
from gantk.recipes.base import Recipe
from gantk.systems import PairedSystem
from gantk.testing import SystemConformance


class LeakySystem(PairedSystem):
    """Its discriminator's loss reaches the generator."""

    def phase_losses(self, phase, batch, outputs, nets):
        losses = super().phase_losses(phase, batch, outputs, nets)
        return {**losses, "D/leak": outputs["fake"].mean()} if phase.name == "D" else losses


class PixelSystem(PairedSystem):
    """Its sample rows are pixel values, not images in [-1, 1]."""

    def sample_images(self, batch, outputs):
        return [(row + 1) * 127.5 for row in super().sample_images(batch, outputs)]


class BufferSystem(PairedSystem):
    """Keeps its last fakes in a float32 tensor, written by index: bf16 fakes do not fit."""

    last_fakes = None

    def phase_losses(self, phase, batch, outputs, nets):
        fake = outputs["fake"].detach()
        if self.last_fakes is None:
            self.last_fakes = torch.zeros(fake.shape)
        self.last_fakes[torch.arange(len(fake))] = fake
        return super().phase_losses(phase, batch, outputs, nets)


def leaky():
    """pix2pix whose D loss leaks into G."""
    return Recipe("leaky", LeakySystem, pix2pix().defaults)


def pixels():
    """pix2pix with samples in 0..255."""
    return Recipe("pixels", PixelSystem, pix2pix().defaults)


def buffered():
    """pix2pix keeping its fakes in a float32 buffer."""
    return Recipe("buffered", BufferSystem, pix2pix().defaults)


class Plugin:
    @hookimpl
    def gantk_register_recipes(self, registry):
        for recipe in (leaky, pixels, buffered):
            registry.add(recipe.__name__, recipe)


class TestLeaky(SystemConformance):
    name = "leaky"
    plugins = [Plugin()]


class TestPixels(SystemConformance):
    name = "pixels"
    plugins = [Plugin()]


class TestBuffered(SystemConformance):
    name = "buffered"
    plugins = [Plugin()]
'''


def test_the_kit_fails_a_system_that_breaks_the_contract(pytester):
    pytester.makepyfile(test_broken=BROKEN_RECIPES)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    failed = sorted(report.nodeid.split("::", 1)[1] for report in result.reprec.getreports("pytest_runtest_logreport") if report.failed)
    assert failed == ["TestBuffered::test_the_trainer_steps_each_phase_on_its_schedule[bf16]",
                      "TestLeaky::test_a_step_trains_each_phase_networks_and_no_others",
                      "TestLeaky::test_the_trainer_steps_each_phase_on_its_schedule[bf16]",
                      "TestLeaky::test_the_trainer_steps_each_phase_on_its_schedule[fp32]",
                      "TestPixels::test_sample_rows_are_images_of_the_batch"]
    result.stdout.fnmatch_lines(["*phase D back-propagates into G, which it does not train (detach it)*",
                                 "*sample rows must be images in ?-1, 1?*",
                                 "*Index put requires the source and destination dtypes match*"])
