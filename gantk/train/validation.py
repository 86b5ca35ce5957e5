"""Metrics on a held-out split during training (eval mode, no state of the run is touched)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import DataLoader

from ..data.transforms import match_channels
from ..errors import OptionError
from ..metrics import lpips_distance
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


def validation_scores(system: System, dataset: Any, device: torch.device, batch_size: int,
                      lpips: lpips_distance.LpipsNetwork | None = None) -> dict[str, float]:
    """Mean pixel metrics (images) or segmentation metrics (masks) of ``system`` on ``dataset``, and with
    ``lpips`` (on ``device``) the mean LPIPS (NaN where it cannot compare the images).

    The networks run in eval mode (running statistics, no dropout) under ``no_grad`` and a forked
    RNG, so validating changes neither the weights, the normalisation statistics nor the random
    stream of the run. Images of a size the generators do not take (kept in shape by ``--resize
    short-side`` or ``none``) are padded, and the outputs cropped back. Images of another channel
    count than the training data's (a gray test split of colour training data, say) are converted, as
    ``gantk eval`` converts them.
    """
    num_classes = dataset.num_classes
    multiple, smallest = size_rules(system.generators)
    scores = PixelScores() if num_classes is None else SegmentationScores(num_classes)
    perceptual = None if lpips is None else lpips_distance.LpipsScores(lpips)
    was_training = system.training
    system.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                inputs = batch["A"].to(device)
                inputs = (match_channels(inputs, system.config["channels"]["A"]) if system.input_classes is None
                          else system.encoded_inputs(inputs))
                outputs = system.translate(padded_to_fit(inputs, multiple, smallest))[..., : inputs.shape[-2], : inputs.shape[-1]]
                truth = batch["B"].to(device)
                truth = truth if num_classes is not None else match_channels(truth, outputs.shape[1])
                scores.update(outputs.float(), truth)
                if perceptual is not None:
                    perceptual.update(outputs, truth)
    finally:
        system.train(was_training)
    computed = {key: value for key, value in scores.compute().items() if isinstance(value, float)}
    if perceptual is not None:
        computed["lpips"] = value if (value := perceptual.compute()) is not None else math.nan
    return {f"{VALIDATION_PREFIX}{key}": value for key, value in computed.items()}
