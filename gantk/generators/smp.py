"""Segmentation networks of segmentation-models-pytorch (smp) used as generators."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..nn import FINAL_ACTIVATIONS, check_channels, check_choice, check_min_size, check_size, output_activation
from ..nn.init import INIT_SCHEMES, init_weights

UNET_DECODER_CHANNELS = (256, 128, 64, 32, 16)  # smp's default for encoder_depth=5
# Architectures whose decoder down-samples the encoder's deepest features again: by how much.
DECODER_DOWNSAMPLING = {"pan": 8}  # PAN's feature pyramid attention max-pools them three times


class DownloadRefused(RuntimeError):
    """A weight file asked for by URL is not in torch's hub cache, and gantk does not download it."""


def _refuse_download(url: str, destination: str, *args: object, **kwargs: object) -> None:
    raise DownloadRefused(f"{url} (expected in {Path(destination).parent})")


@contextlib.contextmanager
def hub_offline() -> Iterator[None]:
    """Pretrained weights from local caches or not at all.

    The Hugging Face Hub is put in offline mode, and torch's hub refuses to download (timm
    encoders whose weights have only a URL go through it).
    """
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE, torch.hub.download_url_to_file
    constants.HF_HUB_OFFLINE, torch.hub.download_url_to_file = True, _refuse_download
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, torch.hub.download_url_to_file = before


class SmpGenerator(nn.Module):
    """An smp model followed by the generator's final activation.

    ``size_multiple`` is the encoder's output stride when smp requires inputs divisible by it,
    else 1 (smp's ``Unet`` resizes internally); ``min_input_size`` is larger than that for
    architectures whose decoder down-samples further (``DECODER_DOWNSAMPLING``).
    """

    def __init__(self, model: nn.Module, *, arch: str, encoder_depth: int, final_activation: str = "tanh"):
        super().__init__()
        self.model = model
        self.activation = output_activation(final_activation)
        divisible = getattr(model, "requires_divisible_input_shape", True)
        stride = int(getattr(model.encoder, "output_stride", 2**encoder_depth))
        self.size_multiple = stride if divisible else 1
        self.min_input_size = max(self.size_multiple, stride * DECODER_DOWNSAMPLING.get(arch.lower(), 1))
        self._label = f"smp {arch} with encoder_depth={encoder_depth}"

    def forward(self, x: Tensor) -> Tensor:
        check_size(x, self.size_multiple, model=self._label, fix="lower encoder_depth")
        check_min_size(x, self.min_input_size, model=self._label, fix="raise the crop size or lower encoder_depth")
        y = self.model(x)
        if y.shape[-2:] != x.shape[-2:]:
            raise OptionError(
                f"{self._label} maps {tuple(x.shape[-2:])} inputs to {tuple(y.shape[-2:])} outputs; "
                "a generator must keep the size: use this architecture's default encoder_depth or another arch."
            )
        return self.activation(y)


def smp(
    in_channels: int = 3,
    out_channels: int = 3,
    *,
    arch: str = "unet",
    encoder: str = "resnet34",
    encoder_weights: str | bool | None = None,
    encoder_depth: int = 5,
    init: str | None = None,
    init_gain: float = 0.02,
    final_activation: str = "tanh",
) -> SmpGenerator:
    """segmentation-models-pytorch network (any smp arch and encoder) as a generator.

    Pretrained ``encoder_weights`` (e.g. ``"imagenet"``) are read from the local Hugging Face cache
    only: the Hub is in offline mode while the model is built, so nothing is downloaded. Inputs go in
    as gantk's images are, in [-1, 1], not normalised with the encoder's pretraining statistics.

    Args:
        in_channels: input channels.
        out_channels: output channels (smp's ``classes``).
        arch: smp architecture, e.g. ``"unet"``, ``"unetplusplus"``, ``"fpn"``, ``"deeplabv3plus"``.
        encoder: smp encoder name, e.g. ``"resnet18"``, ``"resnet34"``, ``"efficientnet-b0"``.
        encoder_weights: pretrained encoder weights (e.g. ``"imagenet"``; ``True`` for a timm ``tu-``
            encoder, whose name carries the weights' tag), or ``None`` (or ``False``) for random ones.
        encoder_depth: encoder stages; inputs must be multiples of the resulting output stride
            for architectures that require it.
        init: ``None`` keeps smp's own initialisation; a gantk scheme (see ``gantk.nn.init``)
            re-initialises decoder and head, and the encoder too when it has no pretrained weights.
        init_gain: gain of ``init``.
        final_activation: ``"tanh"`` for images, ``"none"`` for logits.
    """
    import segmentation_models_pytorch as smp_lib  # heavy: only when an smp model is built

    encoder_weights = None if encoder_weights is False else encoder_weights  # false reads as none

    check_choice("arch", arch.lower(), smp_lib.MODEL_ARCHITECTURES_MAPPING)
    check_choice("final_activation", final_activation, FINAL_ACTIVATIONS)
    check_channels(in_channels=in_channels, out_channels=out_channels)
    if init is not None:
        check_choice("init", init, INIT_SCHEMES)
    options = {}
    if arch.lower() in ("unet", "unetplusplus", "manet"):  # one decoder stage per encoder stage
        options["decoder_channels"] = UNET_DECODER_CHANNELS[-encoder_depth:]
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        with hub_offline():
            model = smp_lib.create_model(
                arch,
                encoder_name=encoder,
                encoder_weights=encoder_weights,
                in_channels=in_channels,
                classes=out_channels,
                encoder_depth=encoder_depth,
                **options,
            )
    except (LocalEntryNotFoundError, DownloadRefused) as error:
        where = f"torch's hub cache: {error}" if isinstance(error, DownloadRefused) else "the local Hugging Face cache"
        raise OptionError(
            f"smp encoder {encoder!r} with encoder_weights={encoder_weights!r}: the weights are not in {where}, "
            "and gantk never downloads. Put them there on a machine with network access "
            "(building this model once with segmentation-models-pytorch does), or use encoder_weights=none."
        ) from None
    except (KeyError, ValueError) as error:  # smp's messages list the valid encoders or depths
        message = error.args[0] if error.args else str(error)
        raise OptionError(f"smp cannot build arch={arch!r} with encoder={encoder!r}: {message}") from None
    if init is not None:
        init_weights(model.decoder, init, init_gain)
        init_weights(model.segmentation_head, init, init_gain)
        if encoder_weights is None:
            init_weights(model.encoder, init, init_gain)
    return SmpGenerator(model, arch=arch, encoder_depth=encoder_depth, final_activation=final_activation)


smp.starting_weight_options = ("encoder_weights",)  # a trained model's weights come from its checkpoint
