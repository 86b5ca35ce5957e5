"""WGAN-GP: conformance, known values, an independent per-image gradient computation, wrappers."""

from __future__ import annotations

import doctest
import importlib
import sys
import warnings

import pytest
import torch
from torch import nn
from torch.func import grad, vmap

from gantk import LossContext
from gantk.discriminators.patch import PatchDiscriminator
from gantk.errors import GantkWarning, OptionError
from gantk.testing import ObjectiveConformance
from gantk_wgan import WGANGPLoss, critic_scores, gradient_penalty, wgan_discriminator_loss


class TestWGANGPConformance(ObjectiveConformance):
    name = "wgan-gp"
    plugins = ["gantk_wgan.plugin"]


def linear_critic(weight: torch.Tensor):
    """``D(x) = <weight, x>`` as a 1x1 logit map: its gradient is ``weight`` everywhere."""
    return lambda x: (x * weight).sum(dim=(1, 2, 3), keepdim=True)


@pytest.mark.parametrize("scale", [1.0, 0.5, 3.0])
def test_penalty_of_a_linear_critic(scale):
    weight = torch.randn(1, 3, 5, 5)
    weight = scale * weight / weight.norm()
    penalty = gradient_penalty(linear_critic(weight), torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5))
    torch.testing.assert_close(penalty, torch.tensor((scale - 1) ** 2), atol=1e-6, rtol=1e-5)


def conv_critic() -> nn.Module:
    return nn.Sequential(nn.Conv2d(6, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))


def test_penalty_equals_an_independent_per_image_computation():
    """Per-image gradients from ``torch.func`` against the batched ``autograd.grad`` of the objective."""
    d = conv_critic()
    input, real, fake = (torch.randn(3, 3, 10, 10) for _ in range(3))
    alpha = torch.tensor([0.2, 0.5, 0.9])
    x_hat = alpha.view(-1, 1, 1, 1) * real + (1 - alpha.view(-1, 1, 1, 1)) * fake

    def score(condition, image):
        return d(torch.cat([condition, image])[None]).mean()

    grads = vmap(grad(score, argnums=1))(input, x_hat)
    expected = ((grads.flatten(1).norm(dim=1) - 1) ** 2).mean()
    penalty = gradient_penalty(lambda x: d(torch.cat([input, x], 1)), real, fake, alpha)
    torch.testing.assert_close(penalty, expected)


def test_each_image_gets_its_own_interpolation_weight():
    seen = []

    def critic(x_hat):
        seen.append(x_hat.detach())
        return x_hat.sum((1, 2, 3), keepdim=True)

    torch.manual_seed(0)
    gradient_penalty(critic, torch.zeros(8, 1, 2, 2), torch.ones(8, 1, 2, 2))
    weights = 1 - seen[0][:, 0, 0, 0]  # real is 0, fake is 1
    assert weights.unique().numel() == 8 and bool(((weights >= 0) & (weights < 1)).all())
    assert bool((seen[0] == seen[0][:, :1, :1, :1]).all())  # one weight for all of an image


def test_discriminator_loss_is_distance_plus_weighted_penalty():
    d = conv_critic()
    ctx = LossContext(input=torch.randn(2, 3, 10, 10), fake=torch.randn(2, 3, 10, 10), real=torch.randn(2, 3, 10, 10), discriminator=d)
    torch.manual_seed(1)
    loss = WGANGPLoss(lambda_gp=7.0).discriminator_loss(ctx)
    torch.manual_seed(1)
    penalty = gradient_penalty(lambda x: d(ctx.discriminator_input(x)), ctx.real, ctx.fake)
    distance = d(ctx.discriminator_input(ctx.fake)).mean() - d(ctx.discriminator_input(ctx.real)).mean()
    torch.testing.assert_close(loss, distance + 7.0 * penalty)
    torch.testing.assert_close(WGANGPLoss(lambda_gp=0).discriminator_loss(ctx), distance)


def test_penalty_trains_the_critic():
    d = conv_critic()
    gradient_penalty(lambda x: d(torch.cat([x, x], 1)), torch.randn(2, 3, 10, 10), torch.randn(2, 3, 10, 10)).backward()
    weights = [p for p in d.parameters() if p.dim() > 1]  # the output bias does not change the gradient
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_scores_average_maps_then_scales():
    maps = [torch.arange(8.0).view(2, 1, 2, 2), torch.tensor([[[[10.0]]], [[[20.0]]]])]
    torch.testing.assert_close(critic_scores(maps), torch.tensor([(1.5 + 10) / 2, (5.5 + 20) / 2]))
    torch.testing.assert_close(wgan_discriminator_loss(maps, [m + 1 for m in maps]), torch.tensor(1.0))


def test_multiscale_penalty_constrains_the_averaged_critic():
    weight = torch.randn(1, 3, 4, 4)
    weight = weight / weight.norm()
    critic = linear_critic(weight)
    penalty = gradient_penalty(lambda x: [critic(x), 3 * critic(x)], torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    torch.testing.assert_close(penalty, torch.tensor(1.0))  # mean of the scales has gradient 2 * weight


def test_warns_about_batch_norm_only():
    ctx = dict(input=torch.randn(2, 3, 32, 32), fake=torch.randn(2, 3, 32, 32), real=torch.randn(2, 3, 32, 32))
    with pytest.warns(GantkWarning, match="batch norm") as caught:
        WGANGPLoss().discriminator_loss(LossContext(**ctx, discriminator=PatchDiscriminator(6, ndf=4, n_layers=1, norm="batch")))
    assert [(w.filename, w.lineno) for w in caught] == [(__file__, sys._getframe().f_lineno - 1)]  # the call
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        WGANGPLoss().discriminator_loss(LossContext(**ctx, discriminator=PatchDiscriminator(6, ndf=4, n_layers=1, norm="instance")))


def test_a_compiled_discriminator_trains_with_the_penalty():
    """Compiled graphs have no double backward: the penalty runs the module under the wrapper."""
    d = conv_critic()
    ctx = LossContext(
        input=torch.randn(2, 3, 10, 10), fake=torch.randn(2, 3, 10, 10), real=torch.randn(2, 3, 10, 10),
        discriminator=torch.compile(d, backend="aot_eager"),
    )
    WGANGPLoss().discriminator_loss(ctx).backward()
    assert all(p.grad is not None for p in d.parameters())


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_rejects_a_bad_lambda(value):
    with pytest.raises(OptionError, match="lambda_gp"):
        WGANGPLoss(lambda_gp=value)


def test_the_registered_terms_weigh_the_penalty_as_the_paper_or_not_at_all():
    from gantk import load_components

    objectives = load_components().registry("objective")
    assert [objectives.create(name).lambda_gp for name in ("wgan-gp", "wgan")] == [10.0, 0.0]
    assert WGANGPLoss().lambda_gp == 10.0


def test_docstring_examples():
    assert doctest.testmod(importlib.import_module("gantk_wgan.wgan_gp"), verbose=False).failed == 0


def test_a_flat_critic_gives_a_finite_penalty_gradient():
    critic = nn.Conv2d(2, 1, 1)
    nn.init.zeros_(critic.weight)
    nn.init.zeros_(critic.bias)
    penalty = gradient_penalty(critic, torch.randn(4, 2, 4, 4), torch.randn(4, 2, 4, 4))
    penalty.backward()
    assert penalty.item() == pytest.approx(1.0, abs=1e-5)  # (0 - 1)^2
    assert torch.isfinite(critic.weight.grad).all()  # the bias does not change the gradient it penalises
