"""The multi-scale discriminator: conformance, pix2pixHD's pyramid, measured receptive fields, sizes."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gantk_multiscale.discriminator
from gantk.nn import geometry
from gantk.errors import OptionError
from gantk.testing import DiscriminatorConformance
from gantk_multiscale import MultiscaleDiscriminator

PLUGIN = "gantk_multiscale.plugin"


class TestMultiscaleConformance(DiscriminatorConformance):
    name = "multiscale"
    plugins = [PLUGIN]

    @pytest.fixture(params=[{"ndf": 8}, {"ndf": 8, "num_scales": 2, "n_layers": 2, "norm": "none"}], ids=["default", "small"])
    def component_options(self, request):
        return dict(request.param)

    def test_features_end_with_the_logits(self, components, component_name, component_options):
        """Per scale: ``features(x)[s]`` ends with ``forward(x)[s]`` (the base assumes one logit map)."""
        model = self.build(components, component_name, component_options, in_channels=6).eval()
        x = torch.randn(self.batch_size, 6, *self.input_sizes[0])
        with torch.no_grad():
            features, logits = model.features(x), model(x)
        assert len(features) == len(logits) == model.num_scales
        for scale_features, scale_logits in zip(features, logits):
            assert all(isinstance(f, torch.Tensor) for f in scale_features)
            torch.testing.assert_close(scale_features[-1], scale_logits)


def test_scales_see_pix2pixhd_pyramid():
    model = MultiscaleDiscriminator(3, ndf=4, num_scales=3, n_layers=1, norm="none").eval()
    x = torch.randn(1, 3, 45, 38)
    with torch.no_grad():
        logits = model(x)
        level = x
        for scale, out in zip(model.scales, logits):
            torch.testing.assert_close(out, scale(level))
            level = F.avg_pool2d(level, 3, stride=2, padding=1, count_include_pad=False)


def test_logit_sizes_match_the_outputs():
    model = MultiscaleDiscriminator(6, ndf=4, num_scales=3, n_layers=2)
    with torch.no_grad():
        shapes = [tuple(m.shape[-2:]) for m in model(torch.randn(2, 6, 77, 130))]
    assert model.logit_sizes(77, 130) == shapes


def central_influence(model: MultiscaleDiscriminator, side: int) -> list[int]:
    """Per scale: the width of the input region that reaches the central logit (positive weights, no cancelling)."""
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                m.bias.zero_()
    widths = []
    for s in range(model.num_scales):
        x = torch.rand(1, 1, side, side, dtype=torch.float64, requires_grad=True)
        logits = model(x)[s]
        h, w = logits.shape[-2:]
        (grad,) = torch.autograd.grad(logits[0, 0, h // 2, w // 2], x)
        columns = grad[0, 0].abs().sum(0).nonzero()
        widths.append(int(columns.max() - columns.min() + 1))
    return widths


@pytest.mark.parametrize("n_layers, expected", [(1, (16, 33, 67)), (2, (34, 69, 139))])
def test_receptive_fields_are_measured(n_layers, expected):
    model = MultiscaleDiscriminator(1, ndf=2, num_scales=3, n_layers=n_layers, norm="none")
    assert model.receptive_fields == expected and model.receptive_field == expected[0]
    assert tuple(central_influence(model, 200)) == expected


@pytest.mark.parametrize("num_scales, n_layers, norm", [(3, 3, "instance"), (2, 2, "batch"), (1, 1, "none")])
def test_min_input_size_is_exact(num_scales, n_layers, norm):
    model = MultiscaleDiscriminator(3, ndf=2, num_scales=num_scales, n_layers=n_layers, norm=norm)
    side = model.min_input_size
    assert min(model.logit_sizes(side, side)[-1]) == 1  # the coarsest scale is the limit
    model(torch.randn(2, 3, side, side))
    with pytest.raises(OptionError, match=f"at least {side}x{side}"):
        model(torch.randn(2, 3, side - 1, side + 20))


def test_rejects_bad_options():
    with pytest.raises(OptionError, match="num_scales"):
        MultiscaleDiscriminator(6, num_scales=0)
    with pytest.raises(OptionError, match="norm"):
        MultiscaleDiscriminator(6, norm="group")


@pytest.mark.parametrize("module", [gantk_multiscale.discriminator, geometry])
def test_docstring_examples(module):
    assert doctest.testmod(module, verbose=False).failed == 0
