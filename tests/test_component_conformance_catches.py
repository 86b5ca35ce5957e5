"""The generator, discriminator and objective conformance kits fail components that break their contract (the data format kit: test_data_format_conformance.py)."""

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
    result.stdout.fnmatch_lines(["*the generator loss is torch.bfloat16 under bf16 autocast*torch.autocast(device_type, enabled=False)*"])


def test_the_generator_kit_fails_a_tanh_kept_without_final_activation(pytester):
    result, failed = failed_tests(pytester, BROKEN_GENERATOR)
    assert failed == ["TestSquashed::test_final_activation_none_gives_the_logits_under_its_tanh"]
    result.stdout.fnmatch_lines(["*final_activation='tanh' is not tanh of 'none'*"])


BROKEN_DISCRIMINATOR_AND_WEIGHT = '''
from torch import nn

from gantk import Objective, hookimpl
from gantk.testing import DiscriminatorConformance, ObjectiveConformance


class Unmeasured(nn.Module):
    """A patch discriminator that does not say how large its patches are."""

    def __init__(self, in_channels=6):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 4, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class TrueWeighted(Objective):
    """L1 whose default weight is True."""

    default_weight = True

    def generator_loss(self, ctx):
        return (ctx.fake - ctx.real).abs().mean()


class Plugin:
    @hookimpl
    def gantk_register_discriminators(self, registry):
        registry.add("unmeasured", Unmeasured)

    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("true-weighted", TrueWeighted)


class TestUnmeasured(DiscriminatorConformance):
    name = "unmeasured"
    plugins = [Plugin()]


class TestTrueWeighted(ObjectiveConformance):
    name = "true-weighted"
    plugins = [Plugin()]
'''


def test_the_kits_fail_a_missing_receptive_field_and_minimum_size_and_a_true_weight(pytester):
    result, failed = failed_tests(pytester, BROKEN_DISCRIMINATOR_AND_WEIGHT)
    assert failed == ["TestTrueWeighted::test_is_an_objective", "TestUnmeasured::test_receptive_field_attribute",
                      "TestUnmeasured::test_takes_its_smallest_size"]
    result.stdout.fnmatch_lines(["*Unmeasured has no receptive_field attribute: set it to the patch size in pixels*"])
    result.stdout.fnmatch_lines(["*a 1x1 input, the smallest its size_multiple (1) and min_input_size (1) allow, fails: RuntimeError: *; "
                                 "set min_input_size to the smallest side it takes*"])
    result.stdout.fnmatch_lines(["*default_weight must be a finite number > 0 (a spec can use no other), got True*"])


UNLISTED_PLUGIN = '''
from gantk.testing import GeneratorConformance


class TestInstalledOnly(GeneratorConformance):
    name = "resunet"
'''


def test_the_kit_says_when_the_component_comes_from_no_plugin_it_loads(pytester):
    result, failed = failed_tests(pytester, UNLISTED_PLUGIN)
    assert failed and all(name.startswith("TestInstalledOnly::") for name in failed)
    result.stdout.fnmatch_lines(["*generator 'resunet' is not registered by the built-ins or the test class's plugins (none): the kit "
                                 "loads no installed entry point; set plugins = *"])


SINGLE_SCALE_ONLY = '''
from gantk import Objective, hookimpl
from gantk.testing import ObjectiveConformance


class SingleScale(Objective):
    """A Wasserstein-style loss that takes one logit map only."""

    adversarial = True

    def generator_loss(self, ctx):
        return -ctx.d_fake.mean()

    def discriminator_loss(self, ctx):
        return ctx.d_fake_detached.mean() - ctx.d_real.mean()


class Plugin:
    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("single-scale", SingleScale)


class TestSingleScale(ObjectiveConformance):
    name = "single-scale"
    plugins = [Plugin()]
'''


def test_the_objective_kit_explains_a_term_that_takes_one_logit_map_only(pytester):
    result, failed = failed_tests(pytester, SINGLE_SCALE_ONLY)
    assert failed == ["TestSingleScale::test_accepts_a_multiscale_discriminator"]
    result.stdout.fnmatch_lines(["*the generator loss fails on a multi-scale discriminator's logits, a list of maps (one per scale): "
                                 "AttributeError: *; average the term over the maps when ctx.d_real/d_fake is a list*"])


UNSAVED_STATE = '''
import torch
from torch import nn

from gantk import hookimpl
from gantk.testing import GeneratorConformance


class Jittered(nn.Module):
    """A convolution plus a random offset kept out of its state_dict."""

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.register_buffer("offset", torch.randn(1, out_channels, 1, 1), persistent=False)

    def forward(self, x):
        return torch.tanh(self.conv(x) + self.offset)


class Plugin:
    @hookimpl
    def gantk_register_generators(self, registry):
        registry.add("jittered", Jittered)


class TestJittered(GeneratorConformance):
    name = "jittered"
    plugins = [Plugin()]
'''


def test_the_generator_kit_fails_outputs_that_depend_on_what_the_state_dict_leaves_out(pytester):
    result, failed = failed_tests(pytester, UNSAVED_STATE)
    assert failed == ["TestJittered::test_its_state_dict_rebuilds_it"]
    result.stdout.fnmatch_lines(["*a copy built under another seed and loaded with its state_dict computes otherwise, so a checkpoint "
                                 "would not rebuild it*"])


LEARNED_SCALE = '''
import torch
from torch import nn

from gantk import Objective, hookimpl
from gantk.testing import ObjectiveConformance


class LearnedScale(Objective):
    """L1 times a parameter no optimizer would update."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def generator_loss(self, ctx):
        return self.scale * (ctx.fake - ctx.real).abs().mean()


class Plugin:
    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("learned-scale", LearnedScale)


class TestLearnedScale(ObjectiveConformance):
    name = "learned-scale"
    plugins = [Plugin()]
'''


def test_the_objective_kit_fails_parameters_that_training_would_not_update(pytester):
    result, failed = failed_tests(pytester, LEARNED_SCALE)
    assert failed == ["TestLearnedScale::test_has_no_parameters_to_train"]
    result.stdout.fnmatch_lines(["*parameters scale take gradients, but no optimizer updates an objective's*"])


BLIND_GENERATOR_AND_CONSTANT_OBJECTIVES = '''
import torch
from torch import nn

from gantk import Objective, hookimpl
from gantk.testing import GeneratorConformance, ObjectiveConformance


class Blind(nn.Module):
    """Its learnt bias, whatever the input."""

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x):
        return torch.tanh(self.bias).expand(x.shape[0], -1, *x.shape[-2:])


class Constant(Objective):
    """A tensor that nothing trained reaches."""

    def generator_loss(self, ctx):
        return torch.tensor(1.0)


class Number(Objective):
    """A Python float."""

    def generator_loss(self, ctx):
        return 1.0


class Plugin:
    @hookimpl
    def gantk_register_generators(self, registry):
        registry.add("blind", Blind)

    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("constant", Constant)
        registry.add("number", Number)


class TestBlind(GeneratorConformance):
    name = "blind"
    plugins = [Plugin()]


class TestConstant(ObjectiveConformance):
    name = "constant"
    plugins = [Plugin()]


class TestNumber(ObjectiveConformance):
    name = "number"
    plugins = [Plugin()]
'''


def test_the_kits_fail_a_generator_blind_to_its_input_and_losses_no_gradient_reaches(pytester):
    result, failed = failed_tests(pytester, BLIND_GENERATOR_AND_CONSTANT_OBJECTIVES)
    assert "TestBlind::test_outputs_depend_on_the_input" in failed
    assert "TestConstant::test_generator_loss_is_a_finite_scalar_that_trains_the_generator" in failed
    assert "TestNumber::test_generator_loss_is_a_finite_scalar_that_trains_the_generator" in failed
    result.stdout.fnmatch_lines(["*its outputs do not depend on its input*"])
    result.stdout.fnmatch_lines(["*no gradient reaches the generator loss: compute it from the networks' outputs*"])
    result.stdout.fnmatch_lines(["*the generator loss is a float: return a tensor computed from the context*"])


CONTRACTS_BROKEN_ONE_EACH = '''
import torch
import torch.nn.functional as F
from torch import nn

from gantk import Objective, hookimpl
from gantk.testing import DiscriminatorConformance, GeneratorConformance, ObjectiveConformance


def undocumented(in_channels=3, out_channels=3):
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class FloatMultiple(nn.Conv2d):
    """A convolution that gives its size multiple as a float."""

    size_multiple = 1.0

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__(in_channels, out_channels, 3, padding=1)


class ThreeOut(nn.Conv2d):
    """A convolution that always gives three channels."""

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__(in_channels, 3, 3, padding=1)


class Lax(nn.Conv2d):
    """A convolution that declares sizes of multiples of 4 and takes any size silently."""

    size_multiple = 4

    def __init__(self, in_channels=3, out_channels=3):
        super().__init__(in_channels, out_channels, 3, padding=1)


class Pooled(nn.Module):
    """A discriminator whose logits are one number per image, N x 1."""

    receptive_field = None

    def __init__(self, in_channels=6):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, 3, padding=1)

    def forward(self, x):
        return self.conv(x).mean((2, 3))


class Idle(Objective):
    """A term that overrides neither loss."""


class Undetached(Objective):
    """A discriminator loss computed on the fake that the generator's gradient flows through."""

    adversarial = True

    def discriminator_loss(self, ctx):
        fakes, reals = ([maps] if isinstance(maps, torch.Tensor) else maps for maps in (ctx.d_fake, ctx.d_real))
        return sum(F.softplus(fake).mean() + F.softplus(-real).mean() for fake, real in zip(fakes, reals))


class Plugin:
    @hookimpl
    def gantk_register_generators(self, registry):
        for name, factory in (("undocumented", undocumented), ("float-multiple", FloatMultiple), ("three-out", ThreeOut),
                              ("lax", Lax)):
            registry.add(name, factory)

    @hookimpl
    def gantk_register_discriminators(self, registry):
        registry.add("pooled", Pooled)

    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("idle", Idle)
        registry.add("undetached", Undetached)


class TestUndocumented(GeneratorConformance):
    name = "undocumented"
    plugins = [Plugin()]


class TestFloatMultiple(GeneratorConformance):
    name = "float-multiple"
    plugins = [Plugin()]


class TestThreeOut(GeneratorConformance):
    name = "three-out"
    plugins = [Plugin()]


class TestLax(GeneratorConformance):
    name = "lax"
    plugins = [Plugin()]


class TestPooled(DiscriminatorConformance):
    name = "pooled"
    plugins = [Plugin()]


class TestIdle(ObjectiveConformance):
    name = "idle"
    plugins = [Plugin()]


class TestUndetached(ObjectiveConformance):
    name = "undetached"
    plugins = [Plugin()]
'''


def test_the_kits_fail_each_broken_contract_of_sizes_shapes_summaries_and_steps(pytester):
    result, failed = failed_tests(pytester, CONTRACTS_BROKEN_ONE_EACH)
    assert "TestFloatMultiple::test_size_multiple_is_a_positive_int" in failed  # its sizes fail the other tests too
    assert [test for test in failed if not test.startswith("TestFloatMultiple::")] == [
        "TestIdle::test_takes_part_in_a_step", "TestLax::test_rejects_a_size_it_cannot_take",
        *(f"TestPooled::test_outputs_logit_maps[{channels}]" for channels in (1, 3, 6)),
        "TestThreeOut::test_output_shape[3-1]", "TestThreeOut::test_output_shape[4-2]",
        "TestUndetached::test_discriminator_loss_is_a_finite_scalar_that_leaves_the_generator_alone",
        "TestUndocumented::test_factory_has_defaults_and_summary"]
    for line in ("*the factory needs a docstring whose first line summarises it*", "*size_multiple must be a positive int, got 1.0*",
                 "*returned (2, 3, 32, 32) for a (2, 3, 32, 32) input, expected (2, 1, 32, 32)*", "*DID NOT RAISE*",
                 "*returned logits of shape (2, 1) for a (2, 6, 128, 128) input, expected a map (2, 1, H', W')*",
                 "*generator_loss and discriminator_loss both return None: override at least one*",
                 "*the discriminator loss trains the generator: use ctx.d_fake_detached*"):
        result.stdout.fnmatch_lines([line])
