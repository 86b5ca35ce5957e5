"""PatchGAN discriminators: one real/fake logit per overlapping patch (and per pixel for ``pixel``)."""

from __future__ import annotations

from functools import partial
from torch import Tensor, nn

from ..errors import OptionError
from ..nn import check_channels, check_levels, check_min_size, check_width
from ..nn.geometry import min_input_side, receptive_field, windows
from ..nn.init import init_weights
from ..nn.norm import conv_bias, norm_layer


class BlockDiscriminator(nn.Module):
    """A discriminator made of sequential ``blocks``; the last block gives the logits.

    ``features(x)`` returns every block's output (for feature matching), ``forward(x)`` the last.
    """

    blocks: nn.ModuleList

    def features(self, x: Tensor) -> list[Tensor]:
        out = []
        for block in self.blocks:
            x = block(x)
            out.append(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[-1]


class PatchDiscriminator(BlockDiscriminator):
    """PatchGAN discriminator (reference NLayerDiscriminator) with n_layers stride-2 convolutions.

    4x4 convolutions, LeakyReLU 0.2, logits ``N x 1 x h x w``: ``n_layers`` stride-2 convolutions (``ndf * min(2**i, 8)`` filters, no norm on the first), a
    stride-1 convolution with ``ndf * min(2**n_layers, 8)`` filters, then a stride-1 convolution to
    one channel. ``n_layers`` 1, 3 and 5 give receptive fields of 16, 70 and 286 pixels, and take
    inputs of at least ``min_input_size`` (6, 24 and 96) pixels a side.

    Example:
        >>> import torch
        >>> d = PatchDiscriminator(6, ndf=8)
        >>> d(torch.randn(1, 6, 64, 64)).shape, d.receptive_field
        (torch.Size([1, 1, 6, 6]), 70)

    Args:
        in_channels: input channels (both images for a conditional discriminator).
        ndf: filters of the first convolution.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        n_layers: stride-2 convolutions; 1, 3, 5 give 16, 70, 286 pixel patches.
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
    """

    label = "a PatchGAN discriminator"  # how size errors name it

    def __init__(self, in_channels: int = 6, *, ndf: int = 64, norm: str = "batch", n_layers: int = 3,
                 init: str = "normal", init_gain: float = 0.02):
        super().__init__()
        check_width("ndf", ndf)
        check_channels(in_channels=in_channels)
        if n_layers < 1:
            raise OptionError(f"n_layers is the number of stride-2 convolutions, at least 1 (16 px patches), got {n_layers!r}; "
                              "for one logit per pixel use the pixel discriminator.")
        check_levels("n_layers", n_layers)
        bias, make_norm = conv_bias(norm), norm_layer(norm)
        conv = partial(nn.Conv2d, kernel_size=4, padding=1)
        blocks = [nn.Sequential(conv(in_channels, ndf, stride=2), nn.LeakyReLU(0.2, True))]
        channels = ndf
        for n in range(1, n_layers + 1):
            out = ndf * 2 ** min(n, 3)
            stride = 2 if n < n_layers else 1
            blocks.append(
                nn.Sequential(conv(channels, out, stride=stride, bias=bias), make_norm(out), nn.LeakyReLU(0.2, True))
            )
            channels = out
        blocks.append(nn.Sequential(conv(channels, 1, stride=1)))
        self.blocks = nn.ModuleList(blocks)
        self.receptive_field = receptive_field(windows(self))
        self.min_input_size = min_input_side(windows(self))
        self.n_layers = n_layers
        init_weights(self, init, init_gain)

    def features(self, x: Tensor) -> list[Tensor]:
        check_min_size(x, self.min_input_size, model=f"{self.label} with n_layers={self.n_layers}",
                       fix="raise the crop size or lower n_layers")
        return super().features(x)


class PixelDiscriminator(BlockDiscriminator):
    """PixelGAN discriminator: one logit per pixel (1x1 convolutions).

    The reference ``PixelDiscriminator`` (1x1 PatchGAN): 1x1 convolutions ``ndf``, ``2 ndf``, 1.

    Args:
        in_channels: input channels (both images for a conditional discriminator).
        ndf: filters of the first convolution.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
    """

    receptive_field = 1

    def __init__(self, in_channels: int = 6, *, ndf: int = 64, norm: str = "batch", init: str = "normal",
                 init_gain: float = 0.02):
        super().__init__()
        check_width("ndf", ndf)
        check_channels(in_channels=in_channels)
        bias, make_norm = conv_bias(norm), norm_layer(norm)
        self.blocks = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True)),
                nn.Sequential(nn.Conv2d(ndf, ndf * 2, 1, bias=bias), make_norm(ndf * 2), nn.LeakyReLU(0.2, True)),
                nn.Sequential(nn.Conv2d(ndf * 2, 1, 1, bias=bias)),
            ]
        )
        init_weights(self, init, init_gain)


patch16 = partial(PatchDiscriminator, n_layers=1)
patch16.__doc__ = "16x16 PatchGAN discriminator (C64-C128)."
patch70 = partial(PatchDiscriminator, n_layers=3)
patch70.__doc__ = "70x70 PatchGAN discriminator (C64-C128-C256-C512), the pix2pix default."
patch286 = partial(PatchDiscriminator, n_layers=5)
patch286.__doc__ = "286x286 PatchGAN discriminator (C64-C128-C256-C512-C512-C512)."
