"""Metrics on a held-out split during training (eval mode, no state of the run is touched)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from ..data.transforms import match_channels
from ..metrics.pixel import PixelScores
from ..metrics.segmentation import SegmentationScores
from ..nn import padded_to_fit, size_rules
from ..systems.base import System
from .config import VALIDATION_PREFIX


def validation_scores(system: System, dataset: Any, device: torch.device, batch_size: int) -> dict[str, float]:
    """Mean pixel metrics (images) or segmentation metrics (masks) of ``system`` on ``dataset``.

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
                scores.update(outputs.float(), truth if num_classes is not None else match_channels(truth, outputs.shape[1]))
    finally:
        system.train(was_training)
    return {f"{VALIDATION_PREFIX}{key}": value for key, value in scores.compute().items() if isinstance(value, float)}
