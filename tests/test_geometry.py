"""The side arithmetic of gantk.nn.geometry agrees with what PyTorch's layers output."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gantk.nn.geometry import Window, min_input_side, output_side, windows

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")

LAYERS = [
    nn.Conv2d(1, 1, 4, stride=2, padding=1),
    nn.Conv2d(1, 1, 3, padding=2, dilation=2),
    nn.Conv2d(1, 1, 3, padding="same"),
    nn.Conv2d(1, 1, 4, padding="same"),  # even kernel: one more pixel after than before
    nn.Conv2d(1, 1, 4, padding="same", dilation=3),
    nn.Conv2d(1, 1, 5, padding="valid"),
    nn.AvgPool2d(3, stride=2, padding=1),
    nn.AvgPool2d(3, stride=2, ceil_mode=True),
    nn.AvgPool2d(2, ceil_mode=True),
    nn.MaxPool2d(3, stride=2),
    nn.MaxPool2d(3, stride=3, padding=1, ceil_mode=True),
    nn.MaxPool2d(2, stride=2, dilation=2, ceil_mode=True),
]


def actual_side(module: nn.Module, side: int) -> int:
    """The output side ``module`` gives for a square input of ``side``, 0 where it refuses the input."""
    try:
        with torch.no_grad():
            return module(torch.zeros(1, 1, side, side)).shape[-1]
    except RuntimeError:
        return 0


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_output_side_is_the_layers(layer):
    for side in range(1, 14):
        assert max(output_side(windows(layer), side), 0) == actual_side(layer, side), side


def test_min_input_side_of_a_chain_with_same_padding_and_ceil_pools():
    chain = nn.Sequential(nn.Conv2d(1, 1, 4, padding="same"), nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(1, 1, 4))
    smallest = next(side for side in range(1, 32) if actual_side(chain, side) > 0)
    assert min_input_side(windows(chain)) == smallest == 8


def test_a_window_may_pad_its_sides_unequally():
    assert output_side([Window(4, 1, (1, 2))], 10) == 10
    assert output_side([Window(4, 1, 1)], 10) == 9
