"""Discriminators: every registered name passes the conformance tests; receptive fields are measured."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import gantk
from gantk.errors import OptionError
from gantk.testing import DiscriminatorConformance

COMPONENTS = gantk.load_components(autoload=False)
NAMES = COMPONENTS.registry("discriminator").names()
KNOWN_FIELDS = {"pixel": 1, "patch16": 16, "patch": 70, "patch70": 70, "patch286": 286, "image": None}


def small_options(name: str, **extra) -> dict:
    """Options that keep ``name`` small enough for CPU tests (``extra`` where the factory accepts them)."""
    options = COMPONENTS.registry("discriminator").get(name).options()
    return {k: v for k, v in {"ndf": 8, **extra}.items() if k in options}


def create(name: str, **options) -> nn.Module:
    return COMPONENTS.create("discriminator", name, **options)


class TestEveryDiscriminator(DiscriminatorConformance):
    @pytest.fixture(params=NAMES)
    def component_name(self, request):
        return request.param

    @pytest.fixture
    def component_options(self, component_name):
        return small_options(component_name)


def influence(model: nn.Module, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Input pixels whose gradient reaches the central output unit, with constant positive weights.

    With positive weights, zero biases and a positive input nothing cancels, so a pixel is marked
    exactly when it lies in the unit's receptive field. Returns the mask and the output.
    """
    model = model.double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
    x = torch.ones(1, 6, size, size, dtype=torch.float64, requires_grad=True)
    out = model(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    return x.grad[0].abs().sum(0) > 0, out


@pytest.mark.parametrize("name", NAMES)
def test_measured_receptive_field_matches_the_attribute(name):
    model = create(name, **small_options(name, ndf=4, norm="none"))
    hit, out = influence(model, size=384)
    rows, cols = hit.any(1).nonzero(), hit.any(0).nonzero()
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    if model.receptive_field is None:
        assert out.shape[2:] == (1, 1) and hit.all()
    else:
        assert hit.sum() == height * width  # a solid square
        assert height == width == model.receptive_field
        assert rows.min() > 0 and rows.max() < 383  # measured away from the borders
    if name in KNOWN_FIELDS:
        assert model.receptive_field == KNOWN_FIELDS[name]


@pytest.mark.parametrize("name, smallest", [("patch16", 6), ("patch70", 24), ("patch286", 96)])
def test_min_input_size_is_exact(name, smallest):
    model = create(name, in_channels=6, ndf=4, norm="batch")
    assert model.min_input_size == smallest
    assert model(torch.randn(1, 6, smallest, smallest)).shape[2:] == (1, 1)
    with pytest.raises(OptionError, match=f"needs images of at least {smallest} px a side, got {smallest - 1}x{smallest}"):
        model(torch.randn(1, 6, smallest, smallest - 1))


@pytest.mark.parametrize("name", ["patch16", "patch70", "patch286", "pixel", "image"])
def test_every_activation_is_the_reference_leaky_relu(name):
    slopes = [m.negative_slope for m in create(name, in_channels=6, ndf=4).modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes and set(slopes) == {0.2}


def test_patch70_has_the_reference_parameter_count():
    assert sum(p.numel() for p in create("patch70", in_channels=6, ndf=64, norm="batch").parameters()) == 2_768_705


def test_pixel_has_the_reference_parameter_count():
    assert sum(p.numel() for p in create("pixel", in_channels=6, ndf=64, norm="batch").parameters()) == 9_024


@pytest.mark.parametrize(
    "name, widths",
    [
        ("patch16", [64, 128, 1]),
        ("patch70", [64, 128, 256, 512, 1]),
        ("patch286", [64, 128, 256, 512, 512, 512, 1]),
        ("image", [64, 128, 256, 512, 512, 512, 1]),
    ],
)
def test_patch_layers_follow_the_paper(name, widths):
    model = create(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == widths
    assert [c.stride[0] for c in convs] == [2] * (len(widths) - 2) + [1, 1]
    assert all(c.kernel_size == (4, 4) and c.padding == (1, 1) for c in convs)
    assert not isinstance(model.blocks[0][1], nn.BatchNorm2d)  # no norm on the first layer
    assert len(model.features(torch.randn(1, 6, 128, 128))) == len(widths)


def test_image_gives_one_logit_per_image():
    model = create("image", ndf=8)
    assert model(torch.randn(3, 6, 96, 160)).shape == (3, 1, 1, 1)


@pytest.mark.parametrize("norm, layer", [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d)])
def test_norm_option(norm, layer):
    model = create("patch70", ndf=8, norm=norm)
    assert sum(isinstance(m, layer) for m in model.modules()) == 3
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in create("patch70", norm="none").modules())


@pytest.mark.parametrize("name", ["patch", "pixel", "image"])
@pytest.mark.parametrize(
    "options, fragments",
    [
        ({"norm": "spectral"}, ["norm='spectral'", "batch, instance, none"]),
        ({"init": "zeros"}, ["init='zeros'", "kaiming"]),
    ],
)
def test_bad_options_name_the_choices(name, options, fragments):
    with pytest.raises(OptionError) as error:
        create(name, **options)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("name", ["patch70", "pixel", "image"])
def test_a_width_below_one_is_refused(name):
    with pytest.raises(OptionError, match="ndf=0 is not valid: it is the number of filters of the first layer, at least 1"):
        create(name, ndf=0)
    with pytest.raises(OptionError, match="in_channels=0 is not valid: it is a number of image channels, at least 1"):
        create(name, in_channels=0)


@pytest.mark.parametrize("n_layers", [0, -1])
def test_patchgan_takes_at_least_one_stride_2_layer(n_layers):
    with pytest.raises(OptionError, match=f"n_layers is the number of stride-2 convolutions, at least 1 .*got {n_layers}"):
        create("patch", n_layers=n_layers)


def test_patchgan_deeper_than_any_image_is_refused_before_it_is_built(monkeypatch):
    monkeypatch.setattr(torch.nn.Conv2d, "__init__", None)  # building one would fail otherwise
    with pytest.raises(OptionError, match=r"n_layers=15 is not valid: 15 stride-2 levels need images of at least 2\*\*15 px a side, "
                                          r"and gantk takes at most 16384 px \(14 levels\)"):
        create("patch", n_layers=15)


def test_patchgan_layers_are_the_references():
    # A stride-2 conv and LeakyReLU(0.2), then conv-norm-LeakyReLU blocks, then a conv to raw logits.
    d = create("patch70", ndf=4)
    names = [type(m).__name__ for m in d.modules() if not list(m.children())]
    assert names == ["Conv2d", "LeakyReLU"] + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3 + ["Conv2d"]
    assert {m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)} == {0.2}
    strides = [m.stride[0] for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert strides == [2, 2, 2, 1, 1] and d(torch.randn(1, 6, 32, 32)).min() < 0  # logits, not activations


@pytest.mark.parametrize("gain", [None, 0.1])  # the reference's normal(0, 0.02) by default
def test_init_is_normal_with_the_gain(gain):
    torch.manual_seed(0)
    net = gantk.create("discriminator", "patch70", in_channels=6, ndf=16, **({"init_gain": gain} if gain else {}))
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, nn.Conv2d)])
    assert weights.std().item() == pytest.approx(gain or 0.02, rel=0.05)


@pytest.mark.parametrize("name", ["patch70", "pixel", "image"])
def test_every_feature_map_carries_gradients_back_to_the_input(name):  # feature matching trains through them
    net = gantk.create("discriminator", name, in_channels=3, ndf=8)
    images = torch.rand(2, 3, 96, 96, requires_grad=True)
    for feature in net.features(images):
        assert feature.requires_grad and torch.autograd.grad(feature.sum(), images, retain_graph=True)[0].abs().sum() > 0
