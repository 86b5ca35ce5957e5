"""Built-in discriminators, registered through the ``gantk_register_discriminators`` hook."""

from ..hookspecs import hookimpl
from . import image, patch


@hookimpl
def gantk_register_discriminators(registry):
    registry.add("patch", patch.PatchDiscriminator)
    registry.add("patch16", patch.patch16)
    registry.add("patch70", patch.patch70)
    registry.add("patch286", patch.patch286)
    registry.add("pixel", patch.PixelDiscriminator)
    registry.add("image", image.ImageDiscriminator)
