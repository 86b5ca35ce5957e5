"""Metrics on a held-out split during training (eval mode, no state of the run is touched)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader

from ..data.datasets import SingleDataset, UnpairedSplit
from ..data.transforms import match_channels
from ..errors import DataError, OptionError
from ..metrics import lpips_distance
from ..metrics.fid import (
    HOW_TO_GET, FeatureCollector, InceptionFeatures, find_inception_weights, frechet_distance, kernel_inception_distance,
    reference_checked,
)
from ..metrics.pixel import PixelScores
from ..metrics.segmentation import SegmentationScores
from ..nn import padded_to_fit, size_rules
from ..systems.base import System
from .config import VALIDATION_PREFIX, TrainConfig


def validation_lpips(config: TrainConfig, dataset: Any, channels: int) -> lpips_distance.LpipsNetwork:
    """LPIPS's network for ``--val-lpips`` on the CPU, its weights read now, before any step is trained; raises
    where validation on ``dataset`` with outputs of ``channels`` channels cannot score it."""
    if dataset.num_classes is not None:
        raise OptionError("--val-lpips compares each output image with its target image, and this run's targets are masks: "
                          "drop it.")
    if channels not in (1, 3):
        raise OptionError(f"--val-lpips compares RGB or grey images, and this run's outputs have {channels} channels: drop it.")
    if config.crop_size < lpips_distance.SMALLEST_SIDE:
        raise OptionError(f"--val-lpips: LPIPS compares images of at least {lpips_distance.SMALLEST_SIDE} px a side, and "
                          f"validation scores them at --crop-size {config.crop_size}: drop --val-lpips, or crop larger.")
    if reason := lpips_distance.missing_reason(config.lpips_weights):
        raise OptionError(f"--val-lpips cannot score here: {reason} Or drop --val-lpips (and --keep-best lpips).")
    return lpips_distance.named_network(config.lpips_weights, torch.device("cpu"))


@dataclass
class FeatureScores:
    """FID and KID of validation's outputs against its real images on InceptionV3 (``features``). The real
    images are the same at each validation: their features are computed at the first and kept (``real``)."""

    features: InceptionFeatures
    real: torch.Tensor | None = None

    def collector(self, device: torch.device) -> FeatureCollector:
        """An accumulator of one validation's features, InceptionV3 on ``device``."""
        return FeatureCollector(self.features.to(device), self.real)

    def scores(self, collector: FeatureCollector) -> dict[str, float]:
        """``fid`` and ``kid`` of what ``collector`` gathered (NaN with fewer than 2 images on a side), as
        ``gantk eval`` computes them."""
        self.real, fake = collector.finish()
        if min(len(self.real), len(fake)) < 2:
            return {"fid": math.nan, "kid": math.nan}
        return {"fid": frechet_distance(self.real, fake), "kid": kernel_inception_distance(self.real, fake)[0]}


def validation_features(config: TrainConfig, dataset: Any, split: str) -> FeatureScores:
    """InceptionV3 for validation's FID and KID on ``dataset`` (pairs, or an :class:`UnpairedSplit`), read now,
    before any step is trained; raises where they cannot be scored (``split``: the split, named then)."""
    unpaired = isinstance(dataset, UnpairedSplit)
    option = "--val-every" if unpaired else "--val-fid"
    counts = [len(images) for images in dataset.sides.values()] if unpaired else [len(dataset)]
    if min(counts) < 2:
        held = (f"{counts[0]} image(s) to translate and {counts[1]} of the target domain" if unpaired  # as --direction has them
                else f"{counts[0]} pair(s)")
        raise DataError(f"validation's FID and KID need at least 2 images on each side (for covariances), and {split} has "
                        f"{held}: add images to it, or drop {option}.")
    path = find_inception_weights(config.inception_weights)
    if path is None:
        raise OptionError(f"{option}{' on unpaired data' if unpaired else ''} scores FID and KID, which need InceptionV3's "
                          f"weights: {HOW_TO_GET}.")
    return FeatureScores(reference_checked(path))


def validation_scores(system: System, dataset: Any, device: torch.device, batch_size: int,
                      lpips: lpips_distance.LpipsNetwork | None = None, features: FeatureScores | None = None) -> dict[str, float]:
    """Mean pixel metrics (images) or segmentation metrics (masks) of ``system`` on ``dataset``, with
    ``lpips`` (on ``device``) the mean LPIPS (NaN where it cannot compare the images), and with ``features``
    the FID and KID of the outputs against the targets.

    The networks run in eval mode (running statistics, no dropout) under ``no_grad`` and a forked
    RNG, so validating changes neither the weights, the normalisation statistics nor the random
    stream of the run. Images of a size the generators do not take (kept in shape by ``--resize
    short-side`` or ``none``) are padded, and the outputs cropped back. Images of another channel
    count than the training data's (a gray test split of colour training data, say) are converted, as
    ``gantk eval`` converts them.
    """
    num_classes = dataset.num_classes
    scores = PixelScores() if num_classes is None else SegmentationScores(num_classes)
    perceptual = None if lpips is None else lpips_distance.LpipsScores(lpips)
    collector = None if features is None else features.collector(device)
    with _scoring(system, device):
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            outputs = _translated(system, batch["A"].to(device))
            truth = batch["B"].to(device)
            truth = truth if num_classes is not None else match_channels(truth, outputs.shape[1])
            scores.update(outputs.float(), truth)
            if perceptual is not None:
                perceptual.update(outputs, truth)
            if collector is not None:
                collector.add("real", truth)
                collector.add("fake", outputs)
    computed = {key: value for key, value in scores.compute().items() if isinstance(value, float)}
    if perceptual is not None:
        computed["lpips"] = value if (value := perceptual.compute()) is not None else math.nan
    if collector is not None:
        computed.update(features.scores(collector))
    return {f"{VALIDATION_PREFIX}{key}": value for key, value in computed.items()}


def unpaired_validation_scores(system: System, sides: dict[str, SingleDataset], device: torch.device, batch_size: int,
                               features: FeatureScores) -> dict[str, float]:
    """FID and KID of ``system``'s translations of the held-out A images (``sides``) against the held-out B
    images, as ``gantk eval`` scores unpaired data. The networks run as in :func:`validation_scores`."""
    collector = features.collector(device)
    with _scoring(system, device):
        for batch in DataLoader(sides["A"], batch_size=batch_size, shuffle=False):
            collector.add("fake", _translated(system, batch["A"].to(device)))
        if features.real is None:
            channels = system.config["channels"]["B"]
            for batch in DataLoader(sides["B"], batch_size=batch_size, shuffle=False):
                collector.add("real", match_channels(batch["A"].to(device), channels))
    return {f"{VALIDATION_PREFIX}{key}": value for key, value in features.scores(collector).items()}


@contextlib.contextmanager
def _scoring(system: System, device: torch.device) -> Iterator[None]:
    """Run ``system`` in eval mode under ``no_grad`` and a forked RNG (on ``device`` too), then as it was."""
    was_training = system.training
    system.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            yield
    finally:
        system.train(was_training)


def _translated(system: System, images: torch.Tensor) -> torch.Tensor:
    """``system``'s outputs for dataset ``images`` (converted to its inputs' channels, or encoded label masks),
    padded to a size its generators take and cropped back."""
    multiple, smallest = size_rules(system.generators)
    inputs = match_channels(images, system.config["channels"]["A"]) if system.input_classes is None else system.encoded_inputs(images)
    return system.translate(padded_to_fit(inputs, multiple, smallest))[..., : inputs.shape[-2], : inputs.shape[-1]]
