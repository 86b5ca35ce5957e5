"""The pix2pix U-Net and, without its skip connections, the encoder-decoder of the paper's ablation."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..nn import check_channels, check_levels, check_probability, check_size, check_width, output_activation
from ..nn.init import init_weights
from ..nn.norm import conv_bias, norm_layer


class UnetBlock(nn.Module):
    """One level of the U-Net: a stride-2 down convolution, the inner levels, a stride-2 up convolution.

    Args:
        outer_channels: channels this level gives back (the generator's output for the outermost).
        inner_channels: channels after the down convolution.
        in_channels: channels of the input, when they differ from ``outer_channels`` (outermost).
        submodule: the inner levels; ``None`` makes this the innermost level.
        norm: normalisation name (see ``gantk.nn.norm``); none after the outermost and innermost down convs.
        dropout: dropout probability after the up path (0 for none).
        skip: concatenate the input to the output (a U-Net); ignored for the outermost level.
        final_activation: makes this the outermost level, ending in this activation.
    """

    def __init__(
        self,
        outer_channels: int,
        inner_channels: int,
        *,
        in_channels: int | None = None,
        submodule: UnetBlock | None = None,
        norm: str = "batch",
        dropout: float = 0.0,
        skip: bool = True,
        final_activation: str | None = None,
    ):
        super().__init__()
        outermost = final_activation is not None
        innermost = submodule is None
        self.skip = skip and not outermost
        bias, make_norm = conv_bias(norm), norm_layer(norm)
        down_in = outer_channels if in_channels is None else in_channels
        up_in = inner_channels * (2 if submodule is not None and submodule.skip else 1)

        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, True)]
        down.append(nn.Conv2d(down_in, inner_channels, 4, stride=2, padding=1, bias=bias))
        if not (outermost or innermost):
            down.append(make_norm(inner_channels))
        up: list[nn.Module] = [
            nn.ReLU(True),
            nn.ConvTranspose2d(up_in, outer_channels, 4, stride=2, padding=1, bias=bias or outermost),
        ]
        up.append(output_activation(final_activation) if outermost else make_norm(outer_channels))
        if dropout > 0:
            up.append(nn.Dropout(dropout))
        middle = [] if submodule is None else [submodule]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.model(x)], 1) if self.skip else self.model(x)


class UnetGenerator(nn.Module):
    """pix2pix U-Net generator (skip connections between mirrored levels).

    ``num_downs`` stride-2 levels; level ``i`` (outermost 0) has ``ngf * min(2 ** i, 8)`` channels;
    levels 4 to ``num_downs - 2`` (the reference's ``num_downs - 5`` intermediate ``8 ngf`` levels)
    carry ``dropout``. H and W must be multiples of ``size_multiple = 2 ** num_downs``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        ngf: filters of the outermost level.
        num_downs: stride-2 levels; H and W must be multiples of ``2 ** num_downs``.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: dropout in the intermediate ``8 ngf`` levels (0 turns it off).
        skips: the skip connections; without them the network is the paper's encoder-decoder.
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
        final_activation: ``"tanh"`` for images, ``"none"`` for logits.

    Example:
        >>> g = UnetGenerator(3, 3, ngf=8, num_downs=5)
        >>> g(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 3, 32, 32])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        ngf: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        dropout: float = 0.5,
        skips: bool = True,
        init: str = "normal",
        init_gain: float = 0.02,
        final_activation: str = "tanh",
    ):
        super().__init__()
        if num_downs < 1:
            raise OptionError(f"num_downs={num_downs} is not valid: the U-Net needs at least one level.")
        check_levels("num_downs", num_downs)
        check_width("ngf", ngf)
        check_channels(in_channels=in_channels, out_channels=out_channels)
        check_probability("dropout", dropout)
        width = [ngf * 2 ** min(i, 3) for i in range(num_downs)]  # channels after each level's down conv
        block = None
        for i in reversed(range(num_downs)):  # innermost first
            block = UnetBlock(
                width[i - 1] if i else out_channels,
                width[i],
                in_channels=None if i else in_channels,
                submodule=block,
                norm=norm,
                dropout=dropout if 4 <= i < num_downs - 1 else 0.0,
                skip=skips,
                final_activation=None if i else final_activation,
            )
        self.model = block
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs
        self._label = "unet" if skips else "encoder-decoder"
        init_weights(self, init, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        check_size(x, self.size_multiple, model=f"{self._label} with num_downs={self.num_downs}", fix="lower num_downs")
        return self.model(x)


unet128 = partial(UnetGenerator, num_downs=7)
unet128.__doc__ = "pix2pix U-Net for 128 px inputs (7 levels)."
unet256 = partial(UnetGenerator, num_downs=8)
unet256.__doc__ = "pix2pix U-Net for 256 px inputs (8 levels)."
encoder_decoder = partial(UnetGenerator, skips=False)
encoder_decoder.__doc__ = "Encoder-decoder generator: the pix2pix U-Net without skip connections."
