"""Shared layer helpers: normalisation, initialisation, option and size checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gantk.errors import OptionError
from gantk.nn import check_choice, check_probability, check_size, output_activation
from gantk.nn.init import INIT_SCHEMES, init_weights
from gantk.nn.norm import NORMS, conv_bias, norm_layer


def test_norm_layers():
    assert isinstance(norm_layer("batch")(8), nn.BatchNorm2d)
    instance = norm_layer("instance")(8)
    assert isinstance(instance, nn.InstanceNorm2d) and not instance.affine and not instance.track_running_stats
    assert isinstance(norm_layer("none")(8), nn.Identity)


def test_conv_bias_only_without_batch_norm():
    assert [conv_bias(n) for n in NORMS] == [False, True, True]


@pytest.mark.parametrize("check", [norm_layer, conv_bias])
def test_bad_norm(check):
    with pytest.raises(OptionError, match=r"norm='group' is not valid; choose one of: batch, instance, none\."):
        check("group")


def big_conv() -> nn.Conv2d:
    return nn.Conv2d(128, 256, 3)  # fan_in 1152, fan_out 2304, 295k weights


def test_normal_init():
    conv = init_weights(big_conv(), "normal", 0.02)
    assert conv.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert conv.weight.mean().item() == pytest.approx(0.0, abs=1e-3)
    assert (conv.bias == 0).all()


def test_xavier_and_kaiming_init():
    fan_in, fan_out = 128 * 9, 256 * 9
    xavier = init_weights(big_conv(), "xavier", 0.5).weight
    assert xavier.std().item() == pytest.approx(0.5 * math.sqrt(2 / (fan_in + fan_out)), rel=0.02)
    kaiming = init_weights(big_conv(), "kaiming", 0.02).weight  # the gain does not apply
    assert kaiming.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)


def test_orthogonal_init_gives_orthogonal_rows():
    conv = init_weights(nn.Conv2d(16, 32, 3), "orthogonal", 0.5)
    rows = conv.weight.flatten(1)  # 32 x 144
    torch.testing.assert_close(rows @ rows.T, 0.25 * torch.eye(32), atol=1e-5, rtol=0)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_init_reaches_every_layer_kind(scheme):
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ConvTranspose2d(8, 8, 4), nn.BatchNorm2d(8), nn.Linear(8, 4))
    nn.init.constant_(model[2].bias, 5.0)
    init_weights(model, scheme, 0.02)
    assert all((m.bias == 0).all() for m in model)
    assert model[2].weight.mean().item() == pytest.approx(1.0, abs=0.05)


def test_bad_init():
    with pytest.raises(OptionError, match="init='uniform' is not valid; choose one of: normal, xavier, kaiming, orth"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")


def test_check_choice_and_probability():
    check_choice("padding", "zero", ("reflect", "zero"))
    with pytest.raises(OptionError, match=r"padding='same'.*reflect, zero\.$"):  # no choice close to it
        check_choice("padding", "same", ("reflect", "zero"))
    with pytest.raises(OptionError, match="choose one of: reflect, zero. Did you mean 'reflect'[?]$"):
        check_choice("padding", "reflekt", ("reflect", "zero"))
    check_probability("dropout", 0.0)
    with pytest.raises(OptionError, match=r"dropout=1 is not a probability in \[0, 1\)"):
        check_probability("dropout", 1)


def test_check_size():
    check_size(torch.zeros(1, 3, 64, 32), 32, model="net")
    with pytest.raises(OptionError) as error:
        check_size(torch.zeros(1, 3, 70, 32), 32, model="unet with num_downs=5", fix="lower num_downs")
    assert str(error.value) == (
        "unet with num_downs=5 needs a width and height that are multiples of 32, got 32x70: "  # width x height, as elsewhere
        "change the crop size to a multiple of 32 (e.g. 32x96) or lower num_downs."
    )


def test_output_activation():
    assert isinstance(output_activation("tanh"), nn.Tanh)
    assert isinstance(output_activation("none"), nn.Identity)
    with pytest.raises(OptionError, match="final_activation='relu'.*tanh, none"):
        output_activation("relu")


def test_one_value_per_channel_names_the_fix_and_lets_other_errors_through():
    from gantk.nn import one_value_per_channel

    norm = nn.BatchNorm2d(2).train()
    with pytest.raises(OptionError, match=r"features of shape \[1, 2, 1, 1\]: raise the batch\.$"):
        with one_value_per_channel("raise the batch"):
            norm(torch.randn(1, 2, 1, 1))
    with pytest.raises(ValueError, match="another"):
        with one_value_per_channel("raise the batch"):
            raise ValueError("another")
