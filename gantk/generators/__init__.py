"""Built-in generators, registered through the ``gantk_register_generators`` hook."""

from ..hookspecs import hookimpl
from . import resnet, smp, spade, unet


@hookimpl
def gantk_register_generators(registry):
    registry.add("unet", unet.UnetGenerator)
    registry.add("unet128", unet.unet128)
    registry.add("unet256", unet.unet256)
    registry.add("encoder-decoder", unet.encoder_decoder)
    registry.add("resnet", resnet.ResnetGenerator)
    registry.add("resnet6", resnet.resnet6)
    registry.add("resnet9", resnet.resnet9)
    registry.add("smp", smp.smp)
    registry.add("spade", spade.SpadeGenerator)
