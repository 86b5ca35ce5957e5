"""Pixel fidelity of translated images: L1, L2 (MSE), RMSE, PSNR and SSIM.

All metrics compare images mapped from the models' [-1, 1] to [0, 1] (data range 1), in float64,
so L1 is half the L1 of the training objective and PSNR is on the scale of 8-bit images' PSNR
(outputs are scored before rounding to 8 bits).
"""

from __future__ import annotations

import math

import kornia
import torch
from torch import Tensor

from ..data.transforms import to_unit
from ..errors import DataError

SSIM_WINDOW = 11  # Gaussian window of Wang et al. 2004 (sigma 1.5)
MAX_PSNR = 120.0  # dB, for identical images: one of them leaves a mean over images finite


def l1_per_image(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference of each image pair (``N x C x H x W`` in [0, 1]) -> ``N``."""
    return (pred - target).abs().flatten(1).mean(1)


def mse_per_image(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference of each image pair -> ``N``."""
    return (pred - target).square().flatten(1).mean(1)


def psnr_per_image(pred: Tensor, target: Tensor, max_value: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio in dB of each image pair -> ``N``, at most ``MAX_PSNR`` (identical images).

    Example:
        >>> psnr_per_image(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1)).round()
        tensor([20.])
    """
    return (10 * torch.log10(max_value**2 / mse_per_image(pred, target))).clamp_max(MAX_PSNR)


def ssim_per_image(pred: Tensor, target: Tensor, max_value: float = 1.0) -> Tensor:
    """Mean SSIM of each image pair -> ``N`` (kornia, 11x11 Gaussian window, valid region, as Wang et al.)."""
    if min(pred.shape[-2:]) < SSIM_WINDOW:
        return torch.full((pred.shape[0],), math.nan)
    ssim_map = kornia.metrics.ssim(pred, target, SSIM_WINDOW, max_val=max_value, eps=0.0, padding="valid")
    return ssim_map.flatten(1).mean(1)


class PixelScores:
    """Accumulates per-image pixel metrics over batches; ``compute()`` gives the dataset means.

    Every metric is a mean over images of its per-image value (``l2``: each image's mean squared error);
    ``rmse`` is the square root of ``l2``.

    Example:
        >>> scores = PixelScores()
        >>> per_image = scores.update(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16))
        >>> scores.compute()["l1"]
        0.0
    """

    def __init__(self) -> None:
        self.values: dict[str, list[Tensor]] = {"l1": [], "l2": [], "psnr": [], "ssim": []}

    def update(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Add a batch of images (``N x C x H x W`` floats in [-1, 1], as the models give them, values
        beyond clamped: map [0, 1] images with ``2 * x - 1``); returns its per-image values.

        Raises:
            DataError: images of other shapes or dtypes (uint8 pixels), or not finite.
        """
        if pred.dim() != 4 or pred.shape != target.shape:
            raise DataError(f"pred and target must be N x C x H x W images of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}.")
        for name, images in (("pred", pred), ("target", target)):
            if not images.is_floating_point():
                raise DataError(f"{name} must be float images in [-1, 1], got {images.dtype}: map uint8 pixels with "
                                "gantk.data.transforms.normalize_image.")
            if not bool(images.isfinite().all()):
                raise DataError(f"{name} holds NaN or infinite values (a model whose training diverged?).")
        pred, target = to_unit(pred.double()), to_unit(target.double())
        batch = {
            "l1": l1_per_image(pred, target),
            "l2": mse_per_image(pred, target),
            "psnr": psnr_per_image(pred, target),
            "ssim": ssim_per_image(pred, target),
        }
        for key, value in batch.items():
            self.values[key].append(value.detach().double().cpu())
        return batch

    def compute(self) -> dict[str, float]:
        if not sum(len(chunk) for chunk in self.values["l1"]):
            raise DataError("no images to score: add batches with update() first.")
        values = {key: torch.cat(chunks) for key, chunks in self.values.items()}
        mse = values["l2"].mean().item()
        return {
            "l1": values["l1"].mean().item(),
            "l2": mse,
            "rmse": math.sqrt(mse),
            "psnr": values["psnr"].mean().item(),
            "ssim": values["ssim"].mean().item(),
        }

    def unavailable(self) -> dict[str, str]:
        """The metrics :meth:`compute` gives as NaN for want of large enough images, with the reason."""
        ssim = torch.cat(self.values["ssim"]) if self.values["ssim"] else torch.zeros(0)
        small = int(ssim.isnan().sum())
        if not small:
            return {}
        return {"ssim": f"needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} px (its window), and {small} of the "
                        f"{len(ssim)} scored are smaller."}
