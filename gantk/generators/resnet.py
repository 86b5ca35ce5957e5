"""The CycleGAN ResNet generator: two stride-2 downs, residual blocks, two stride-2 ups."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from ..errors import OptionError
from ..nn import check_channels, check_choice, check_min_size, check_probability, check_size, check_width, output_activation
from ..nn.init import init_weights
from ..nn.norm import conv_bias, norm_layer

PADDINGS = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}  # option -> Conv2d padding_mode


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-[dropout]-conv-norm(x)`` with 3x3 convolutions padded by ``padding``."""

    def __init__(self, channels: int, *, norm: str = "instance", dropout: float = 0.0, padding: str = "reflect"):
        super().__init__()
        check_choice("padding", padding, PADDINGS)
        bias, make_norm = conv_bias(norm), norm_layer(norm)
        conv = partial(nn.Conv2d, channels, channels, 3, padding=1, padding_mode=PADDINGS[padding], bias=bias)
        layers = [conv(), make_norm(channels), nn.ReLU(True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.block = nn.Sequential(*layers, conv(), make_norm(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN ResNet generator (residual blocks between two downs and two ups).

    7x7 conv, two stride-2 downs, ``n_blocks`` residual blocks, two ups, 7x7 conv. The 7x7
    convolutions use reflection padding as in the reference; ``padding`` applies to the residual
    blocks. H and W must be multiples of ``size_multiple = 4`` and at least ``min_input_size = 8``.
    ``forward(x, encode=True)`` gives the encoder features CUT's PatchNCE compares (:attr:`nce_channels`).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        ngf: filters of the first convolution.
        n_blocks: residual blocks at 1/4 resolution.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        dropout: dropout inside each residual block (0 turns it off).
        padding: ``"reflect"``, ``"replicate"`` or ``"zero"`` padding of the residual blocks.
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
        final_activation: ``"tanh"`` for images, ``"none"`` for logits.

    Example:
        >>> import torch
        >>> g = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
        >>> g(torch.randn(1, 3, 36, 36)).shape
        torch.Size([1, 3, 36, 36])
    """

    size_multiple = 4
    min_input_size = 8  # 2x2 features at 1/4 resolution: the blocks' reflection padding and instance norm need them

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: float = 0.0,
        padding: str = "reflect",
        init: str = "normal",
        init_gain: float = 0.02,
        final_activation: str = "tanh",
    ):
        super().__init__()
        check_choice("padding", padding, PADDINGS)
        check_width("ngf", ngf)
        check_channels(in_channels=in_channels, out_channels=out_channels)
        check_probability("dropout", dropout)
        if n_blocks < 0:
            raise OptionError(f"n_blocks={n_blocks!r} is not valid: it is the number of residual blocks, at least 0 "
                              "(9 for 256 px images, 6 for 128 px).")
        bias, make_norm = conv_bias(norm), norm_layer(norm)
        layers = [
            nn.Conv2d(in_channels, ngf, 7, padding=3, padding_mode="reflect", bias=bias),
            make_norm(ngf),
            nn.ReLU(True),
        ]
        for mult in (1, 2):
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                make_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(ngf * 4, norm=norm, dropout=dropout, padding=padding) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode="reflect"),
            output_activation(final_activation),
        ]
        self.model = nn.Sequential(*layers)
        # CUT's layers 0, 4, 8, 12 and 16 (Park et al. 2020): the input, each downsampling convolution and
        # residual blocks 1 and 5; after layer i of self.model, -1 for the input (a net of 5 blocks or more)
        self.nce_taps = (-1, 3, 6, 9, 13) if n_blocks >= 5 else ()
        self.nce_channels = tuple(in_channels if i < 0 else ngf * (2 if i == 3 else 4) for i in self.nce_taps)
        init_weights(self, init, init_gain)

    def forward(self, x: Tensor, encode: bool = False) -> Tensor | list[Tensor]:
        check_size(x, self.size_multiple, model="the resnet generator (two stride-2 downsamplings)")
        check_min_size(x, self.min_input_size, model="the resnet generator", fix="raise the crop size")
        if not encode:
            return self.model(x)
        features = [x] if -1 in self.nce_taps else []
        for index, layer in enumerate(self.model[: max(self.nce_taps) + 1]):
            x = layer(x)
            if index in self.nce_taps:
                features.append(x)
        return features


resnet6 = partial(ResnetGenerator, n_blocks=6)
resnet6.__doc__ = "CycleGAN ResNet generator with 6 residual blocks (128 px images)."
resnet9 = partial(ResnetGenerator, n_blocks=9)
resnet9.__doc__ = "CycleGAN ResNet generator with 9 residual blocks (256 px images)."
