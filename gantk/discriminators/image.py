"""ImageGAN: one real/fake decision per whole image."""

from __future__ import annotations

from torch import Tensor

from .patch import PatchDiscriminator


class ImageDiscriminator(PatchDiscriminator):
    """ImageGAN discriminator: a PatchGAN stack averaged into one logit per image.

    The paper's "286x286 ImageGAN" is ``patch286``, whose 286 px field covers a 256 px input; this
    one decides once per image at any size, its loss taken on the averaged logit.

    The logit map is averaged into ``N x 1 x 1 x 1``. Every input pixel influences the decision,
    whatever the image size: ``receptive_field`` is ``None``. ``features(x)`` ends with the pooled logits.

    Example:
        >>> import torch
        >>> ImageDiscriminator(6, ndf=8)(torch.randn(2, 6, 128, 128)).shape
        torch.Size([2, 1, 1, 1])

    Args:
        in_channels: input channels (both images for a conditional discriminator).
        ndf: filters of the first convolution.
        norm: ``"batch"``, ``"instance"`` or ``"none"``.
        n_layers: stride-2 convolutions of the stack (inputs need at least ``2 ** n_layers * 3`` px).
        init: weight initialisation (see ``gantk.nn.init``).
        init_gain: its gain.
    """

    label = "an ImageGAN discriminator"

    def __init__(self, in_channels: int = 6, *, ndf: int = 64, norm: str = "batch", n_layers: int = 5,
                 init: str = "normal", init_gain: float = 0.02):
        super().__init__(in_channels, ndf=ndf, norm=norm, n_layers=n_layers, init=init, init_gain=init_gain)
        self.receptive_field = None

    def features(self, x: Tensor) -> list[Tensor]:
        out = super().features(x)
        out[-1] = out[-1].mean(dim=(2, 3), keepdim=True)
        return out
