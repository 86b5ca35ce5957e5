"""A perceptual term (pix2pixHD, Wang et al. 2018): the distance between VGG19 features of the fake and the real image.

The features are those after the first ReLU of each of VGG19's five blocks (relu1_1 … relu5_1),
weighted 1/32, 1/16, 1/8, 1/4 and 1 and compared by L1, and the images go in as they are, in
[-1, 1] (grey ones repeated to three channels), as pix2pixHD's ``VGGLoss`` has them; the term's
weight is 10, pix2pixHD's λ.

The network's ImageNet weights are read from a file, never downloaded: by default torchvision's,
where ``torchvision.models.vgg19(weights="IMAGENET1K_V1")`` saves it in torch's cache (see
:func:`default_weights_file`); ``--loss-opt vgg.weights=PATH`` names another copy. Training reads
the file before its first step (:meth:`PerceptualLoss.prepare`); a model trained with it translates
without it, and its weights are kept out of checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import OptionError
from ..lazy_import import LazyModule
from ..pretrained import load_layers, read_weights, torchvision_file
from .base import LossContext, Objective

models = LazyModule("torchvision.models")

WEIGHTS_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's name for VGG19's ImageNet weights
TAPS = {1: 1 / 32, 6: 1 / 16, 11: 1 / 8, 20: 1 / 4, 29: 1.0}  # index of relu1_1 … relu5_1 in vgg19().features: weight
SMALLEST_SIDE = 16  # four poolings before relu5_1
FETCH = "python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\""


def default_weights_file() -> Path:
    """Where torchvision keeps VGG19's ImageNet weights once fetched: ``$TORCH_HOME/hub/checkpoints``."""
    return torchvision_file(WEIGHTS_FILE)


def vgg19_features(path: Path, given: bool) -> nn.Sequential:
    """VGG19's layers up to relu5_1, frozen, with the weights of file ``path`` (a state dict of
    ``torchvision.models.vgg19``, or of its ``features``), loaded without running code from it;
    ``given``: the path comes from ``--loss-opt vgg.weights`` (else it is torchvision's cache file)."""
    named = f"--loss-opt vgg.weights: {path}" if given else f"VGG19's weights file {path}"
    if not path.is_file():
        where = "to a file of your choice, then name it" if given else "which saves them there, or name a copy"
        raise OptionError(
            f"the vgg objective needs VGG19's ImageNet weights, and there is no file {path}: fetch them once (548 MB) with "
            f"{FETCH}, {where} with --loss-opt vgg.weights=PATH (a resumed run reads the file it trained with: put it back there)."
        )
    saved = read_weights(path, named)
    with torch.device("meta"):  # the layers' shapes, without initialising weights that the file replaces
        features = models.vgg19().features[: max(TAPS) + 1]
    if isinstance(saved, dict):  # a state dict of the whole network, or of its features
        saved = {f"features.{key.removeprefix('features.')}": value for key, value in saved.items() if isinstance(key, str)}
    load_layers(features, saved, lambda key: f"features.{key}", named, "VGG19",
                f"Name torchvision's {WEIGHTS_FILE} (fetched with {FETCH}).")
    return features.requires_grad_(False).eval()


class PerceptualLoss(Objective):
    """L1 between VGG19 features of the fake and the real image, relu1_1 … relu5_1 (pix2pixHD, weight 10).

    Args:
        weights: file of VGG19's ImageNet weights (default: torchvision's, in torch's cache).
    """

    default_weight = 10.0
    compares_pairs = True
    needs_images = True

    def __init__(self, weights: str | None = None):
        super().__init__()
        if weights is not None and not isinstance(weights, str):
            raise OptionError(f"--loss-opt vgg.weights must be the path of a file, got {weights!r}.")
        self.weights = weights
        object.__setattr__(self, "network", None)  # not a submodule: checkpoints and optimizers never see it

    def extra_repr(self) -> str:
        return f"weights={self.weights!r}"

    def prepare(self) -> None:
        """Read the weights file (once), so that a missing or wrong one is refused before training."""
        if self.network is None:
            path = default_weights_file() if self.weights is None else Path(self.weights).expanduser()
            if not path.is_absolute():  # the run records it as given, and a resume may start elsewhere
                raise OptionError(f"--loss-opt vgg.weights is a path from the current folder, {self.weights}; checkpoints record "
                                  f"it as given, and a resumed run may start in another folder: give {path.resolve()}.")
            object.__setattr__(self, "network", vgg19_features(path, given=self.weights is not None))

    def check_images(self, channels: int, crop_size: int | None) -> None:
        if channels not in (1, 3):
            raise OptionError(f"vgg compares RGB or grey images, and the data's targets have {channels} channels: drop vgg "
                              "from --loss, or train on RGB or grey targets.")
        if crop_size is not None and crop_size < SMALLEST_SIDE:
            raise OptionError(f"vgg compares images of at least {SMALLEST_SIDE} px a side (VGG19 pools them four times before "
                              f"relu5_1), and --crop-size is {crop_size}: raise it to {SMALLEST_SIDE} or more, or drop vgg from --loss.")

    def vgg_features(self, images: Tensor) -> list[Tensor]:
        """The weighted taps' features of ``images`` (``N x C x H x W`` in [-1, 1], 1 or 3 channels)."""
        if images.shape[1] not in (1, 3) or min(images.shape[-2:]) < SMALLEST_SIDE:  # images that keep their own size
            raise OptionError(f"vgg compares RGB or grey images of at least {SMALLEST_SIDE} px, got {images.shape[1]} channels "
                              f"of {images.shape[-2]}x{images.shape[-1]}: drop vgg from --loss.")
        self.prepare()
        network = self.network
        if next(network.parameters()).device != images.device:
            object.__setattr__(self, "network", network := network.to(images.device))
        x = images.expand(-1, 3, -1, -1)
        taps = []
        for index, layer in enumerate(network):
            x = layer(x)
            if index in TAPS:
                taps.append(x.float())
        return taps

    def generator_loss(self, ctx: LossContext) -> Tensor:
        with torch.no_grad():
            real = self.vgg_features(ctx.real)
        fake = self.vgg_features(ctx.fake)
        return sum(weight * (f - r).abs().mean() for weight, f, r in zip(TAPS.values(), fake, real))
