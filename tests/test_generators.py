"""Generators: every registered name passes the conformance tests; the built-ins match the reference."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import gantk
from gantk.errors import OptionError
from gantk.generators.resnet import ResnetBlock
from gantk.testing import GeneratorConformance

COMPONENTS = gantk.load_components(autoload=False)
NAMES = COMPONENTS.registry("generator").names()


def small_options(name: str) -> dict:
    """Options that keep ``name`` small enough for CPU tests."""
    options = COMPONENTS.registry("generator").get(name).options()
    small = {"ngf": 8, "encoder": "resnet18"}
    return {k: v for k, v in small.items() if k in options}


def create(name: str, **options) -> nn.Module:
    return COMPONENTS.create("generator", name, **options)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class TestEveryGenerator(GeneratorConformance):
    @pytest.fixture(params=NAMES)
    def component_name(self, request):
        return request.param

    @pytest.fixture
    def component_options(self, component_name):
        return small_options(component_name)


def test_unet_has_the_reference_parameter_count():
    with torch.device("meta"):
        assert count(create("unet", ngf=64, num_downs=8, norm="batch")) == 54_413_955


def test_resnet9_has_the_reference_parameter_count():
    with torch.device("meta"):
        assert count(create("resnet9", norm="instance")) == 11_378_179


@pytest.mark.parametrize("num_downs", [1, 3])
def test_shallow_unet_for_small_crops(num_downs):
    size = 2**num_downs
    assert create("unet", ngf=4, num_downs=num_downs)(torch.randn(2, 3, size, 2 * size)).shape == (2, 3, size, 2 * size)


def test_variants_bind_their_depth():
    assert create("unet128", ngf=4).size_multiple == 128
    assert create("unet256", ngf=4).size_multiple == 256
    assert sum(isinstance(m, ResnetBlock) for m in create("resnet6", ngf=4).modules()) == 6


def test_encoder_decoder_is_the_unet_without_skips():
    def up_inputs(model):
        return [m.in_channels for m in model.modules() if isinstance(m, nn.ConvTranspose2d)]

    unet, plain = create("unet", ngf=8, num_downs=6), create("encoder-decoder", ngf=8, num_downs=6)
    # innermost (which never sees a concatenation) first, outermost last
    assert up_inputs(plain) == [64, 64, 64, 32, 16, 8]
    assert up_inputs(unet) == [64, 128, 128, 64, 32, 16]


@pytest.mark.parametrize("num_downs, dropouts", [(8, 3), (5, 0)])
def test_unet_dropout_sits_in_the_intermediate_levels(num_downs, dropouts):
    model = create("unet", ngf=4, num_downs=num_downs, dropout=0.5)
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    assert len(layers) == dropouts and all(m.p == 0.5 for m in layers)
    assert not any(isinstance(m, nn.Dropout) for m in create("unet", ngf=4, dropout=0).modules())


def test_resnet_dropout_and_padding():
    model = create("resnet", ngf=4, n_blocks=2, dropout=0.5, padding="zero")
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    blocks = [m for m in model.modules() if isinstance(m, ResnetBlock)]
    assert {c.padding_mode for b in blocks for c in b.modules() if isinstance(c, nn.Conv2d)} == {"zeros"}
    model = create("resnet", ngf=4, n_blocks=1, padding="replicate")
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 3, 16, 16)


@pytest.mark.parametrize("name", ["unet", "resnet"])
def test_norm_and_bias_follow_the_reference(name):
    def convs(model):
        return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]

    batch = create(name, ngf=4, norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in batch.modules())
    assert sum(c.bias is not None for c in convs(batch)) == 1  # only the last layer, which has no norm after it
    instance = create(name, ngf=4, norm="instance")
    norms = [m for m in instance.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert norms and not any(m.affine or m.track_running_stats for m in norms)
    assert all(c.bias is not None for c in convs(instance))
    none = create(name, ngf=4, norm="none")
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) for m in none.modules())


@pytest.mark.parametrize("name", ["unet128", "resnet"])
def test_final_activation(name):
    x = torch.randn(2, 3, 128, 128) * 100
    tanh = create(name, ngf=4, init_gain=1.0)
    assert tanh(x).abs().max() <= 1
    raw = create(name, ngf=4, init_gain=1.0, final_activation="none")
    assert not any(isinstance(m, nn.Tanh) for m in raw.modules())
    assert raw(x).abs().max() > 1


@pytest.mark.parametrize(
    "name, options, fragments",
    [
        ("unet", {"norm": "group"}, ["norm='group'", "batch, instance, none"]),
        ("unet", {"init": "uniform"}, ["init='uniform'", "normal, xavier, kaiming, orthogonal"]),
        ("unet", {"final_activation": "sigmoid"}, ["final_activation='sigmoid'", "tanh, none"]),
        ("unet", {"dropout": 1.5}, ["dropout=1.5", "[0, 1)"]),
        ("unet", {"num_downs": 0}, ["num_downs=0", "at least one level"]),
        ("unet", {"num_downs": 15}, ["num_downs=15", "need images of at least 2**15 px a side", "at most 16384 px (14 levels)"]),
        ("resnet", {"padding": "circular"}, ["padding='circular'", "reflect, replicate, zero"]),
        ("resnet", {"norm": "layer"}, ["norm='layer'", "batch, instance, none"]),
        ("smp", {"arch": "segnet"}, ["arch='segnet'", "unet, unetplusplus", "deeplabv3plus"]),
        ("smp", {"encoder": "resnet7"}, ["encoder='resnet7'", "resnet18"]),
        ("smp", {"init": "ones"}, ["init='ones'", "orthogonal"]),
    ],
)
def test_bad_options_name_the_choices(name, options, fragments):
    with pytest.raises(OptionError) as error:
        create(name, ngf=4, **options) if name != "smp" else create(name, **options)
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize(
    "name, options, size, fragments",  # size: height, width; messages write width x height
    [
        ("unet", {"ngf": 4}, (100, 256), ["num_downs=8", "multiples of 256", "got 256x100", "256x256", "num_downs"]),
        ("encoder-decoder", {"ngf": 4, "num_downs": 5}, (40, 40), ["multiples of 32", "got 40x40", "64x64"]),
        ("resnet", {"ngf": 4}, (30, 32), ["multiples of 4", "got 32x30", "32x32"]),
        ("smp", {"arch": "fpn", "encoder": "resnet18"}, (48, 64), ["multiples of 32", "encoder_depth"]),
    ],
)
def test_size_errors_say_what_to_change(name, options, size, fragments):
    model = create(name, **options)
    with pytest.raises(OptionError, match="crop size") as error:
        model(torch.randn(2, 3, *size))
    for fragment in fragments:
        assert fragment in str(error.value)


@pytest.mark.parametrize("name", ["unet", "encoder-decoder", "resnet9"])
@pytest.mark.parametrize("ngf", [0, -3])
def test_a_width_below_one_is_refused(name, ngf):
    with pytest.raises(OptionError, match=f"ngf={ngf} is not valid: it is the number of filters of the first layer, at least 1"):
        create(name, ngf=ngf)
    for channels in ("in_channels", "out_channels"):
        with pytest.raises(OptionError, match=f"{channels}={ngf} is not valid: it is a number of image channels, at least 1"):
            create(name, **{channels: ngf})


@pytest.mark.parametrize("gain", [float("inf"), float("nan"), -0.02])
def test_an_init_gain_that_is_not_a_finite_number_of_0_or_more_is_refused(gain):
    with pytest.raises(OptionError, match=f"init_gain={gain!r} is not valid: it is the spread of the initial weights, a finite "
                                          "number of 0 or more"):
        create("unet", ngf=4, num_downs=3, init_gain=gain)
    net = create("unet", ngf=4, num_downs=3, init="kaiming", init_gain=0)  # 0: batch norm's weights start at exactly 1
    assert all(bool((m.weight == 1).all()) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_a_negative_number_of_residual_blocks_is_refused():
    with pytest.raises(OptionError, match="n_blocks=-1 is not valid: it is the number of residual blocks, at least 0"):
        create("resnet", ngf=4, n_blocks=-1)
    assert create("resnet", ngf=4, n_blocks=0)(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 8, 8)


def test_smp_size_multiple_is_the_encoder_output_stride():
    assert create("smp", arch="fpn", encoder="resnet18", encoder_depth=5).size_multiple == 32
    assert create("smp", arch="linknet", encoder="resnet18", encoder_depth=4).size_multiple == 16
    assert create("smp", arch="unet", encoder="resnet18").size_multiple == 1  # smp's Unet resizes internally


@pytest.mark.parametrize("depth, stride", [(5, 16), (3, 8)])  # smp's PAN dilates its encoder's last stage
def test_smp_pan_declares_the_size_its_decoder_pools_down_from(depth, stride):
    model = create("smp", arch="pan", encoder="resnet18", encoder_depth=depth).eval()
    assert (model.size_multiple, model.min_input_size) == (stride, 8 * stride)
    assert model(torch.randn(1, 3, 8 * stride, 9 * stride)).shape == (1, 3, 8 * stride, 9 * stride)
    with pytest.raises(OptionError, match=f"needs images of at least {8 * stride} px a side, got {8 * stride}x{7 * stride}"):
        model(torch.randn(1, 3, 7 * stride, 8 * stride))
    assert create("smp", arch="linknet", encoder="resnet18", encoder_depth=depth).min_input_size == 2**depth


def test_smp_shallow_unet_and_size_changing_models():
    model = create("smp", encoder="resnet18", encoder_depth=3, out_channels=2, final_activation="none")
    assert model(torch.randn(2, 3, 24, 40)).shape == (2, 2, 24, 40)
    assert model.model.segmentation_head[0].in_channels == 16  # smp's narrowest decoder widths: 64, 32, 16
    broken = create("smp", arch="fpn", encoder="resnet18", encoder_depth=4)  # smp upsamples FPN by a fixed 4
    with pytest.raises(OptionError, match="must keep the size"):
        broken(torch.randn(2, 3, 32, 32))


def test_smp_keeps_its_own_init_unless_asked():
    def conv_std(module):
        weights = [m.weight.detach().flatten() for m in module.modules() if isinstance(m, nn.Conv2d)]
        return torch.cat(weights).std().item()

    default = create("smp", encoder="resnet18")
    assert conv_std(default.model.decoder) != pytest.approx(0.02, rel=0.1)  # smp's kaiming init
    normal = create("smp", encoder="resnet18", init="normal", init_gain=0.02)
    assert conv_std(normal.model.decoder) == pytest.approx(0.02, rel=0.05)
    assert conv_std(normal.model.encoder) == pytest.approx(0.02, rel=0.05)  # random encoder: re-initialised too


@pytest.mark.parametrize("norm", ["none", "instance", "batch"])
def test_a_resnet_block_adds_its_branch_to_its_input(norm):
    block = ResnetBlock(4, norm=norm, dropout=0.0).eval()
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(block(x), x + block.block(x))


@pytest.mark.parametrize("encoder, weights, cache", [
    ("resnet18", "imagenet", "the local Hugging Face cache"),
    ("tu-resnet18", True, "the local Hugging Face cache"),
    ("tu-legacy_seresnet18", True, "torch's hub cache: https://"),  # a timm encoder whose weights have only a URL
])
def test_smp_reads_pretrained_weights_from_the_local_cache_only(tmp_path, monkeypatch, encoder, weights, cache):
    import socket

    from huggingface_hub import constants

    connections = []  # name lookups and connections: without network the lookup fails before any connect

    def refuse(address, *args, **kwargs):
        connections.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # empty caches
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    before = constants.HF_HUB_OFFLINE, torch.hub.download_url_to_file
    with pytest.raises(OptionError, match=f"encoder_weights={weights!r}: the weights are not in {re.escape(cache)}"):
        create("smp", encoder=encoder, encoder_weights=weights, encoder_depth=3)
    assert connections == [] and (constants.HF_HUB_OFFLINE, torch.hub.download_url_to_file) == before
    assert create("smp", encoder=encoder, encoder_weights=False, encoder_depth=3) is not None  # false reads as none


def layer_names(module: nn.Module) -> list[str]:
    """The leaf layers of ``module`` in order, as the reference implementation builds them."""
    return [type(m).__name__ for m in module.modules() if not list(m.children())]


def test_unet_levels_are_the_references():
    # Down: LeakyReLU(0.2), stride-2 conv, norm (none at either end); up: ReLU, transposed conv, norm, dropout.
    g = create("unet", ngf=4, num_downs=6, dropout=0.5)
    names = layer_names(g)
    assert names[:3] == ["Conv2d", "LeakyReLU", "Conv2d"] and names[-3:] == ["ReLU", "ConvTranspose2d", "Tanh"]
    assert [m.negative_slope for m in g.modules() if isinstance(m, nn.LeakyReLU)] == [0.2] * 5
    innermost = [m for m in g.modules() if type(m).__name__ == "UnetBlock"][-1]
    assert layer_names(innermost) == ["LeakyReLU", "Conv2d", "ReLU", "ConvTranspose2d", "BatchNorm2d"]
    x = torch.randn(1, 32, 2, 2)  # the innermost level's input
    assert torch.equal(innermost(x)[:, :32], x)  # the skip comes first, as the reference concatenates it
    dropped = [m for m in g.modules() if type(m).__name__ == "UnetBlock" and isinstance(list(m.model)[-1], nn.Dropout)]
    assert layer_names(dropped[0].model)[-3:] == ["ConvTranspose2d", "BatchNorm2d", "Dropout"]


def test_resnet_layers_are_the_references():
    g = create("resnet6", ngf=4, dropout=0.5, padding="zero")  # the blocks' padding; the 7x7 convolutions reflect
    wide = [m for m in g.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (7, 7)]
    assert [m.padding_mode for m in wide] == ["reflect", "reflect"]
    block = next(m for m in g.modules() if isinstance(m, ResnetBlock))
    assert layer_names(block) == ["Conv2d", "InstanceNorm2d", "ReLU", "Dropout", "Conv2d", "InstanceNorm2d"]
    assert g.min_input_size == 8 and g(torch.randn(1, 3, 8, 8)).shape == (1, 3, 8, 8)
    with pytest.raises(OptionError, match="at least 8 px a side, got 4x4"):  # 1x1 features, which reflection cannot pad
        g(torch.randn(1, 3, 4, 4))


@pytest.mark.parametrize("name", ["unet", "resnet9"])
@pytest.mark.parametrize("gain", [None, 0.1])  # the reference's normal(0, 0.02) by default
def test_init_is_normal_with_the_gain(name, gain):
    torch.manual_seed(0)
    net = gantk.create("generator", name, in_channels=3, out_channels=3, ngf=16, **({"init_gain": gain} if gain else {}))
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert weights.std().item() == pytest.approx(gain or 0.02, rel=0.05) and abs(weights.mean().item()) < 1e-3
