"""Spectral-norm discriminators: conformance, structure, options, and the normalised singular values."""

from __future__ import annotations

import doctest
import importlib

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from gantk import load_components
from gantk.errors import OptionError
from gantk.testing import DiscriminatorConformance
from gantk_wgan.spectral import VARIANTS

PLUGIN = "gantk_wgan.plugin"
COMPONENTS = load_components(autoload=False, plugins=[PLUGIN])
BASES = {"sn-patch": "patch", "sn-patch16": "patch16", "sn-patch70": "patch70", "sn-patch286": "patch286",
         "sn-pixel": "pixel", "sn-image": "image"}


def create(name: str, **options) -> nn.Module:
    return COMPONENTS.create("discriminator", name, **options)


class TestSpectralConformance(DiscriminatorConformance):
    plugins = [PLUGIN]
    options = {"ndf": 8}

    @pytest.fixture(params=sorted(VARIANTS))
    def component_name(self, request):
        return request.param


def test_every_variant_is_registered():
    assert COMPONENTS.registry("discriminator").names("sn-*") == sorted(BASES)


@pytest.mark.parametrize("name", sorted(BASES))
def test_every_convolution_is_normalised_and_nothing_else(name):
    model = create(name, ndf=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(parametrize.is_parametrized(conv, "weight") for conv in convs)
    assert not [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
    base = COMPONENTS.create("discriminator", BASES[name], ndf=8)
    assert model.receptive_field == base.receptive_field


@pytest.mark.parametrize("name", sorted(BASES))
def test_options_are_the_base_options_without_norm(name):
    registry = COMPONENTS.registry("discriminator")
    base = dict(registry.get(BASES[name]).options())
    del base["norm"]
    assert registry.get(name).options() == {**base, "n_power_iterations": 1}
    with pytest.raises(OptionError, match="no option 'norm'"):
        create(name, norm="batch")
    with pytest.raises(OptionError, match="n_power_iterations"):
        create(name, n_power_iterations=0)


def test_largest_singular_values_are_one_after_power_iterations():
    model = create("sn-patch70", ndf=8, init_gain=1.0, n_power_iterations=2).train()
    with torch.no_grad():
        for _ in range(5):
            model(torch.randn(1, 6, 64, 64))
    model.eval()  # read the normalised weights without another power iteration
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        raw = conv.parametrizations.weight.original.flatten(1)
        assert torch.linalg.matrix_norm(raw, ord=2) > 2  # far from 1 before the normalisation
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 1e-2


def test_state_dict_rebuilds_an_equal_model():
    trained = create("sn-patch16", ndf=8).train()
    with torch.no_grad():
        trained(torch.randn(2, 6, 32, 32))
    rebuilt = create("sn-patch16", ndf=8)
    rebuilt.load_state_dict(trained.state_dict())
    x = torch.randn(1, 6, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(x), trained.eval()(x))


def test_docstring_examples():
    assert doctest.testmod(importlib.import_module("gantk_wgan.spectral"), verbose=False).failed == 0


@pytest.mark.parametrize("value, message", [
    (0, "n_power_iterations must be a positive integer, got 0"),
    ("2", r"option n_power_iterations must be an integer \(default 1\), got '2'"),
])
def test_the_power_iterations_must_be_a_positive_integer(value, message):
    components = load_components(autoload=False, plugins=["gantk_wgan.plugin"])
    with pytest.raises(OptionError, match=message):
        components.create("discriminator", "sn-patch16", in_channels=6, n_power_iterations=value)
