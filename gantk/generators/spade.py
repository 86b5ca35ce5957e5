"""The SPADE generator (Park et al. 2019): residual blocks whose normalisation is modulated by the input map.

pix2pix feeds its input through the first convolution only, and normalisation layers then wash out
uniform regions of a label map. SPADE instead normalises every block's activations without a
learned scale and shift and predicts both, per pixel, from the input map resized to the block:
the layout reaches every layer. Made for one-hot label maps (``--direction BtoA`` on mask data), it
takes any input map.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import OptionError
from ..nn import check_channels, check_choice, check_min_size, check_size, check_width, output_activation
from ..nn.init import init_weights

SPADE_NORMS = ("batch", "instance")  # the parameter-free normalisation SPADE modulates
BASE_WIDTH = 16  # the widest blocks have BASE_WIDTH * ngf channels, as in the paper
NUM_UPS = (5, 6)  # the paper's "normal" and "more" generators


class SpadeNorm(nn.Module):
    """``norm(x) * (1 + gamma) + beta``, with ``gamma`` and ``beta`` predicted per pixel from the input map
    (resized to ``x`` by the nearest pixel) by a shared 3x3 convolution of ``hidden`` channels and ReLU,
    then one 3x3 convolution each; ``norm`` has no learned parameters."""

    def __init__(self, channels: int, map_channels: int, *, hidden: int = 128, norm: str = "batch"):
        super().__init__()
        check_choice("norm", norm, SPADE_NORMS)
        self.norm = (nn.BatchNorm2d(channels, affine=False) if norm == "batch"
                     else nn.InstanceNorm2d(channels, affine=False, track_running_stats=False))
        self.shared = nn.Sequential(nn.Conv2d(map_channels, hidden, 3, padding=1), nn.ReLU())
        self.gamma = nn.Conv2d(hidden, channels, 3, padding=1)
        self.beta = nn.Conv2d(hidden, channels, 3, padding=1)

    def forward(self, x: Tensor, layout: Tensor) -> Tensor:
        features = self.shared(F.interpolate(layout, size=x.shape[-2:], mode="nearest"))
        return self.norm(x) * (1 + self.gamma(features)) + self.beta(features)


class SpadeBlock(nn.Module):
    """A residual block of two SPADE-normalised, LeakyReLU(0.2)-activated 3x3 convolutions (``fin`` to
    ``min(fin, fout)`` to ``fout`` channels); where ``fin != fout`` the shortcut is a SPADE-normalised
    1x1 convolution."""

    def __init__(self, fin: int, fout: int, map_channels: int, *, hidden: int = 128, norm: str = "batch"):
        super().__init__()
        middle = min(fin, fout)
        spade = dict(map_channels=map_channels, hidden=hidden, norm=norm)
        self.norm_0, self.conv_0 = SpadeNorm(fin, **spade), nn.Conv2d(fin, middle, 3, padding=1)
        self.norm_1, self.conv_1 = SpadeNorm(middle, **spade), nn.Conv2d(middle, fout, 3, padding=1)
        self.learned_shortcut = fin != fout
        if self.learned_shortcut:
            self.norm_s, self.conv_s = SpadeNorm(fin, **spade), nn.Conv2d(fin, fout, 1, bias=False)

    def convolutions(self) -> list[nn.Conv2d]:
        """The block's own convolutions (not those of its SPADE layers), which spectral norm constrains."""
        return [self.conv_0, self.conv_1, *([self.conv_s] if self.learned_shortcut else [])]

    def forward(self, x: Tensor, layout: Tensor) -> Tensor:
        shortcut = self.conv_s(self.norm_s(x, layout)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, layout), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, layout), 0.2))
        return shortcut + dx


class SpadeGenerator(nn.Module):
    """SPADE generator (Park et al. 2019): residual blocks normalised with a scale and shift predicted from the input map.

    The input map, resized to 1/2^``num_up`` of the image, goes through a 3x3 convolution to
    ``16 * ngf`` channels, then SPADE residual blocks with ``num_up`` nearest-neighbour upsamplings, a
    LeakyReLU(0.2), a 3x3 convolution to ``out_channels`` and the final activation.

    With ``num_up=5`` (the paper's "normal" setting) the blocks are: one at 1/32 of the image, two at
    1/16 (16 times ``ngf`` channels), then one per further doubling (8, 4, 2 and 1 times ``ngf``).
    ``num_up=6`` (the paper's "more") adds a doubling between the two middle blocks; its "most" is not
    built. The blocks' convolutions are spectrally normalised with ``spectral``, and weights start as
    Xavier normal with gain 0.02, as in the paper's code. This is the architecture as the paper and its
    code describe it, written for gantk; its parameter count is not checked against that code.
    H and W must be multiples of ``size_multiple = 2**num_up`` and at least ``min_input_size``, twice that:
    2x2 pixels at the coarsest scale, where normalising a single pixel of a single image gives nothing.

    The generator has no dropout and draws no noise: its outputs vary with the input map alone (SPADE's
    style encoder, which draws them from an image, is not part of it).

    Args:
        in_channels: channels of the input map (a label model's classes, one-hot).
        out_channels: output channels.
        ngf: channels of the last block; the first blocks have 16 times as many.
        num_up: nearest-neighbour upsamplings: 5 (the paper's "normal") or 6 (its "more").
        hidden: channels of the convolution each SPADE layer predicts its scale and shift with.
        norm: the parameter-free normalisation SPADE modulates: ``"batch"`` (the paper's) or ``"instance"``.
        spectral: spectral norm on the blocks' convolutions (the paper's default).
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
        final_activation: ``"tanh"`` for images, ``"none"`` for logits.

    Example:
        >>> import torch
        >>> g = SpadeGenerator(5, 3, ngf=4, num_up=5)
        >>> g(torch.zeros(1, 5, 64, 96)).shape
        torch.Size([1, 3, 64, 96])
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        ngf: int = 64,
        num_up: int = 5,
        hidden: int = 128,
        norm: str = "batch",
        spectral: bool = True,
        init: str = "xavier",
        init_gain: float = 0.02,
        final_activation: str = "tanh",
    ):
        super().__init__()
        check_width("ngf", ngf)
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise OptionError(f"hidden={hidden!r} is not valid: it is the channels each SPADE layer predicts its scale and "
                              "shift with, at least 1 (128 in the paper).")
        check_channels(in_channels=in_channels, out_channels=out_channels)
        check_choice("norm", norm, SPADE_NORMS)
        if not isinstance(spectral, bool):
            raise OptionError(f"spectral={spectral!r} is not valid: true or false (spectral norm on the blocks' convolutions).")
        if isinstance(num_up, bool) or not isinstance(num_up, int) or num_up not in NUM_UPS:
            raise OptionError(f"num_up={num_up!r} is not valid: it is the number of upsamplings, 5 (the paper's \"normal\") "
                              "or 6 (its \"more\"); the image sides are multiples of 2**num_up.")
        self.num_up = num_up
        self.size_multiple = 2**num_up
        self.min_input_size = 2 * self.size_multiple
        widest = BASE_WIDTH * ngf
        spade = dict(map_channels=in_channels, hidden=hidden, norm=norm)
        self.head = nn.Conv2d(in_channels, widest, 3, padding=1)
        self.coarse = nn.ModuleList([SpadeBlock(widest, widest, **spade) for _ in range(3)])  # head, two middle blocks
        widths = [widest >> level for level in range(5)]  # 16, 8, 4, 2, 1 times ngf
        self.fine = nn.ModuleList([SpadeBlock(fin, fout, **spade) for fin, fout in zip(widths[:4], widths[1:])])
        self.last = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ngf, out_channels, 3, padding=1), output_activation(final_activation))
        self.more = num_up == 6  # a doubling between the middle blocks; the others come before every block but the first
        init_weights(self, init, init_gain)
        if spectral:
            for block in (*self.coarse, *self.fine):
                for conv in block.convolutions():
                    spectral_norm(conv)

    def forward(self, x: Tensor) -> Tensor:
        check_size(x, self.size_multiple, model=f"the spade generator with num_up={self.num_up}")
        check_min_size(x, self.min_input_size, model="the spade generator",
                       fix="raise the crop size" + (" or use num_up=5" if self.more else ""))
        layout = x
        coarsest = [side // self.size_multiple for side in x.shape[-2:]]
        h = self.head(F.interpolate(layout, size=coarsest, mode="nearest"))
        h = self.coarse[0](h, layout)
        h = self.coarse[1](_doubled(h), layout)
        h = self.coarse[2](_doubled(h) if self.more else h, layout)
        for block in self.fine:
            h = block(_doubled(h), layout)
        return self.last(h)


def _doubled(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")
