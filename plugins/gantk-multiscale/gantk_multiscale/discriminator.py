"""The pix2pixHD multi-scale discriminator: one PatchGAN per level of an image pyramid."""

from __future__ import annotations

from torch import Tensor, nn

from gantk.discriminators.patch import PatchDiscriminator
from gantk.errors import OptionError
from gantk.nn.geometry import Window, min_input_side, output_side, receptive_field, windows


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD multi-scale discriminator: a PatchGAN per pyramid level, one logit map per scale.

    ``num_scales`` PatchGANs, scale ``s`` judging the input average-pooled ``s`` times (Wang et al.
    2018). Each pooling is pix2pixHD's ``AvgPool2d(3, stride=2, padding=1, count_include_pad=False)``,
    which halves the side (rounding up). ``forward(x)`` returns one logit map per scale, finest
    first; gantk's adversarial objectives average their loss over the list. ``features(x)``
    returns, per scale, the output of every block of that scale's PatchGAN, ending with its
    logits.

    Args:
        in_channels: input channels (both images for a conditional discriminator).
        num_scales: pyramid levels, each judged by its own PatchGAN.
        n_layers: stride-2 convolutions per PatchGAN (3 gives 70 px patches at the finest scale).
        ndf: filters of each PatchGAN's first convolution.
        norm: ``"instance"`` (pix2pixHD), ``"batch"`` or ``"none"``.
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.

    Attributes:
        receptive_field: the finest scale's receptive field in input pixels (70 for ``n_layers=3``).
        receptive_fields: every scale's receptive field in input pixels, finest first.
        min_input_size: the smallest input side for which every scale gives a logit map.

    Example:
        >>> import torch
        >>> d = MultiscaleDiscriminator(6, ndf=8, num_scales=2)
        >>> [tuple(m.shape) for m in d(torch.randn(1, 6, 64, 64))], d.receptive_fields
        ([(1, 1, 6, 6), (1, 1, 2, 2)], (70, 141))
    """

    def __init__(
        self,
        in_channels: int = 6,
        *,
        num_scales: int = 3,
        n_layers: int = 3,
        ndf: int = 64,
        norm: str = "instance",
        init: str = "normal",
        init_gain: float = 0.02,
    ):
        super().__init__()
        if num_scales < 1 or n_layers < 1:
            raise OptionError(f"multiscale needs num_scales >= 1 and n_layers >= 1, got {num_scales} and {n_layers}.")
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, ndf=ndf, norm=norm, n_layers=n_layers, init=init, init_gain=init_gain)
            for _ in range(num_scales)
        )
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.num_scales, self.n_layers = num_scales, n_layers
        chains = [self.chain(s) for s in range(num_scales)]
        self.receptive_fields = tuple(receptive_field(chain) for chain in chains)
        self.receptive_field = self.receptive_fields[0]
        self.min_input_size = max(min_input_side(chain) for chain in chains)

    def chain(self, scale: int) -> list[Window]:
        """The pooling and convolution windows between the input and the logits of ``scale``."""
        return windows(self.downsample) * scale + windows(self.scales[scale])

    def logit_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The ``h x w`` of each scale's logit map for an input of ``height x width``, finest first."""
        return [(output_side(c, height), output_side(c, width)) for c in map(self.chain, range(self.num_scales))]

    def pyramid(self, x: Tensor) -> list[Tensor]:
        """``x`` and its successive downsamplings, one per scale."""
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise OptionError(
                f"multiscale (num_scales={self.num_scales}, n_layers={self.n_layers}) needs inputs of at least "
                f"{self.min_input_size}x{self.min_input_size} px, got {height}x{width}: raise --crop-size or lower "
                "num_scales or n_layers (e.g. --disc-opt num_scales=2); 'gantk multiscale-info' lists the sizes."
            )
        levels = [x]
        for _ in range(self.num_scales - 1):
            levels.append(self.downsample(levels[-1]))
        return levels

    def features(self, x: Tensor) -> list[list[Tensor]]:
        return [scale.features(level) for scale, level in zip(self.scales, self.pyramid(x), strict=True)]

    def forward(self, x: Tensor) -> list[Tensor]:
        return [scale(level) for scale, level in zip(self.scales, self.pyramid(x), strict=True)]
