"""The generator and objective conformance kits fail components that break their contract."""

from helpers import failed_tests

BROKEN_OBJECTIVE = '''
from gantk import Objective, hookimpl
from gantk.testing import ObjectiveConformance


class HalfPrecisionL1(Objective):
    """L1 returned in bfloat16."""

    def generator_loss(self, ctx):
        return (ctx.fake - ctx.real).abs().mean().bfloat16()


class Plugin:
    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("half-l1", HalfPrecisionL1)


class TestHalfPrecisionL1(ObjectiveConformance):
    name = "half-l1"
    plugins = [Plugin()]
'''

BROKEN_GENERATOR = '''
import torch
from torch import nn

from gantk import hookimpl
from gantk.testing import GeneratorConformance


class Squashed(nn.Module):
    """A convolution that applies tanh even when asked for logits."""

    def __init__(self, in_channels=3, out_channels=3, final_activation="tanh"):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


class Plugin:
    @hookimpl
    def gantk_register_generators(self, registry):
        registry.add("squashed", Squashed)


class TestSquashed(GeneratorConformance):
    name = "squashed"
    plugins = [Plugin()]
'''


def test_the_objective_kit_fails_a_loss_left_in_bfloat16(pytester):
    result, failed = failed_tests(pytester, BROKEN_OBJECTIVE)
    assert failed == ["TestHalfPrecisionL1::test_losses_are_float32_under_mixed_precision"]
    result.stdout.fnmatch_lines(["*the generator loss is torch.bfloat16 under bf16 autocast*"])


def test_the_generator_kit_fails_a_tanh_kept_without_final_activation(pytester):
    result, failed = failed_tests(pytester, BROKEN_GENERATOR)
    assert failed == ["TestSquashed::test_final_activation_none_gives_the_logits_under_its_tanh"]
    result.stdout.fnmatch_lines(["*final_activation='tanh' is not tanh of 'none'*"])
