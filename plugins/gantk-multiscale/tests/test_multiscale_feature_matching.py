"""Feature matching: conformance, hand computations, pix2pixHD's weighting, detached real features, wrappers."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

import gantk_multiscale.feature_matching
from gantk import LossContext, hookimpl, load_components
from gantk.discriminators.patch import PatchDiscriminator
from gantk.errors import OptionError
from gantk.objectives.spec import ObjectiveSet
from gantk.testing import ObjectiveConformance
from gantk_multiscale import FeatureMatchingLoss, MultiscaleDiscriminator, feature_matching_loss, features_module


class TestFeatureMatchingConformance(ObjectiveConformance):
    name = "feature-matching"
    plugins = ["gantk_multiscale.plugin"]

    @pytest.fixture(params=["patch16", "multiscale"])
    def networks(self, request):
        torch.manual_seed(0)
        if request.param == "patch16":
            discriminator = PatchDiscriminator(6, ndf=4, n_layers=1, norm="none")
        else:
            discriminator = MultiscaleDiscriminator(6, ndf=4, num_scales=2, n_layers=1)
        return {"generator": nn.Conv2d(3, 3, 3, padding=1), "reverse": nn.Conv2d(3, 3, 3, padding=1), "discriminator": discriminator}

    def test_is_generator_side_only(self, objective, networks):
        ctx = self.make_context(**networks)
        assert not objective.adversarial and objective.default_weight == 10
        assert objective.discriminator_loss(ctx) is None


def hand_features(d: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A normalisation-free PatchGAN's block outputs, from its convolutions' weights alone."""
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    out = []
    for i, conv in enumerate(convs):
        x = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)
        if i < len(convs) - 1:
            x = F.leaky_relu(x, 0.2)
        out.append(x)
    return out


def hand_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    per_scale = []
    for fs, rs in zip(fake, real):
        layers = [(f - r).abs().sum() / f.numel() for f, r in zip(fs[:-1], rs[:-1])]
        per_scale.append(sum(layers) / len(layers))
    return sum(per_scale) / len(per_scale)


def make_context(discriminator, conditional=True, size=24):
    input, real, fake = (torch.rand(2, 3, size, size) * 2 - 1 for _ in range(3))
    return LossContext(input=input, fake=fake.requires_grad_(True), real=real, discriminator=discriminator, conditional=conditional)


def test_single_scale_equals_a_hand_computation():
    d = PatchDiscriminator(6, ndf=4, n_layers=2, norm="none", init_gain=0.3)
    ctx = make_context(d)
    with torch.no_grad():
        fake = hand_features(d, torch.cat([ctx.input, ctx.fake], 1))
        real = hand_features(d, torch.cat([ctx.input, ctx.real], 1))
    torch.testing.assert_close(FeatureMatchingLoss().generator_loss(ctx), hand_loss([fake], [real]))


def test_features_of_other_scales_or_layers_are_refused():
    scale = [torch.zeros(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)]
    for fake, real in [([scale, scale], [scale]), ([[*scale, torch.zeros(1, 1, 1, 1)]], [scale])]:
        with pytest.raises(ValueError, match="fake and real features must have the same scales and layers"):
            feature_matching_loss(fake, real)


def test_multiscale_equals_a_hand_computation():
    d = MultiscaleDiscriminator(3, ndf=4, num_scales=3, n_layers=1, norm="none", init_gain=0.3)
    ctx = make_context(d, conditional=False, size=40)
    fake, real = [], []
    with torch.no_grad():
        x_fake, x_real = ctx.fake, ctx.real
        for scale in d.scales:
            fake.append(hand_features(scale, x_fake))
            real.append(hand_features(scale, x_real))
            x_fake = F.avg_pool2d(x_fake, 3, 2, 1, count_include_pad=False)
            x_real = F.avg_pool2d(x_real, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(FeatureMatchingLoss().generator_loss(ctx), hand_loss(fake, real))


def test_pix2pixhd_weighting_is_four_times_the_mean():
    """pix2pixHD: sum over scales and layers of L1 * (1 / num_D) * (4 / (n_layers + 1))."""
    num_d, n_layers = 3, 2
    d = MultiscaleDiscriminator(3, ndf=4, num_scales=num_d, n_layers=n_layers, init_gain=0.3)
    fake_x, real_x = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fake, real = d.features(fake_x), d.features(real_x)
    reference = sum(
        (1.0 / num_d) * (4.0 / (n_layers + 1)) * F.l1_loss(fake[i][j], real[i][j])
        for i in range(num_d)
        for j in range(len(fake[i]) - 1)
    )
    torch.testing.assert_close(4 * feature_matching_loss(fake, real), reference)


def test_is_zero_when_fake_is_real_and_only_the_fake_gets_gradients():
    d = MultiscaleDiscriminator(6, ndf=4, num_scales=2, n_layers=1)
    ctx = make_context(d)
    same = LossContext(input=ctx.input, fake=ctx.real, real=ctx.real, discriminator=d)
    assert FeatureMatchingLoss().generator_loss(same).item() == 0
    real = ctx.real.clone().requires_grad_(True)
    ctx = LossContext(input=ctx.input, fake=ctx.fake, real=real, discriminator=d)
    FeatureMatchingLoss().generator_loss(ctx).backward()
    assert ctx.fake.grad is not None and ctx.fake.grad.abs().sum() > 0
    assert real.grad is None


@pytest.fixture
def process_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_reaches_features_through_compile_and_ddp(process_group):
    d = PatchDiscriminator(6, ndf=4, n_layers=1, norm="none")
    for wrapped in (torch.compile(d), DistributedDataParallel(d), torch.compile(DistributedDataParallel(d)), DataParallel(d)):
        assert features_module(wrapped) is d
    ctx = make_context(d)
    wrapped_ctx = LossContext(input=ctx.input, fake=ctx.fake, real=ctx.real, discriminator=torch.compile(DistributedDataParallel(d)))
    torch.testing.assert_close(FeatureMatchingLoss().generator_loss(wrapped_ctx), FeatureMatchingLoss().generator_loss(ctx))


def test_a_discriminator_without_features_is_an_error():
    with pytest.raises(OptionError, match="and the discriminator Conv2d has none"):
        FeatureMatchingLoss().generator_loss(make_context(nn.Conv2d(6, 1, 3)))

    class Plugin:
        @hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("plain", lambda in_channels=3: nn.Conv2d(in_channels, 1, 3))

    plain = load_components(autoload=False, plugins=[Plugin()]).create("discriminator", "plain", in_channels=6)
    with pytest.raises(OptionError, match=r"and discriminator 'plain' \(plugin '[^']+'\) has none"):
        FeatureMatchingLoss().generator_loss(make_context(plain))
    with pytest.raises(OptionError, match="there is no discriminator"):
        FeatureMatchingLoss().generator_loss(make_context(None))


def test_docstring_examples():
    assert doctest.testmod(gantk_multiscale.feature_matching, verbose=False).failed == 0


def test_features_without_maps_before_the_logits_are_a_clear_error():
    with pytest.raises(OptionError, match="at least one feature map"):
        feature_matching_loss([torch.zeros(1, 1, 2, 2)], [torch.zeros(1, 1, 2, 2)])


@pytest.mark.parametrize("num_scales", [1, 2])
def test_the_adversarial_term_takes_its_logits_from_the_features_pass(num_scales):
    """bce+feature-matching runs D twice on the generator's side (features of the fake, of the real), not three times."""
    torch.manual_seed(0)
    if num_scales == 1:
        d = PatchDiscriminator(6, ndf=4, n_layers=1, norm="none")
    else:
        d = MultiscaleDiscriminator(6, ndf=4, num_scales=num_scales, n_layers=1)
    passes = []
    next(m for m in d.modules() if isinstance(m, nn.Conv2d)).register_forward_hook(lambda *args: passes.append(1))
    components = load_components(autoload=False, plugins=["gantk_multiscale.plugin"])
    objective = ObjectiveSet.from_spec("bce+feature-matching+l1", components.registry("objective"))

    def context():
        torch.manual_seed(1)
        return make_context(d)

    ctx = context()
    together = objective.generator_losses(ctx)
    assert len(passes) == 2
    apart = {term.name: term.weight * term.objective.generator_loss(context()) for term in objective.terms}  # a context per term
    assert len(passes) == 5  # bce's pass, and feature matching's two
    for name in apart:
        torch.testing.assert_close(together[name], apart[name])
    sum(together.values()).backward()
    assert ctx.fake.grad is not None and ctx.fake.grad.abs().sum() > 0
