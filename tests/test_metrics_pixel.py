"""Pixel metrics against independent numpy/scipy computations."""

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from gantk.errors import DataError
from gantk.metrics import PixelScores, l1_per_image, mse_per_image, psnr_per_image, ssim_per_image, to_unit
from gantk.metrics.pixel import MAX_PSNR


def numpy_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of Wang et al. 2004 for one channel: 11x11 Gaussian window (sigma 1.5), valid region, data range 1."""
    coords = np.arange(11) - 5
    g = np.exp(-(coords**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()

    def filt(a):
        return correlate2d(a, window, mode="valid")

    mu_x, mu_y = filt(x), filt(y)
    var_x = filt(x * x) - mu_x**2
    var_y = filt(y * y) - mu_y**2
    cov = filt(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(1)
    pred = torch.rand(3, 2, 20, 24, generator=generator, dtype=torch.float64)
    target = (pred + 0.2 * torch.rand(3, 2, 20, 24, generator=generator, dtype=torch.float64)).clamp(0, 1)
    return pred, target


def test_l1_mse_psnr_match_numpy(pair):
    pred, target = pair
    p, t = pred.numpy(), target.numpy()
    for i in range(len(p)):
        mse = np.mean((p[i] - t[i]) ** 2)
        assert l1_per_image(pred, target)[i].item() == pytest.approx(np.mean(np.abs(p[i] - t[i])), rel=1e-12)
        assert mse_per_image(pred, target)[i].item() == pytest.approx(mse, rel=1e-12)
        assert psnr_per_image(pred, target)[i].item() == pytest.approx(10 * np.log10(1 / mse), rel=1e-12)


def test_psnr_by_hand():
    assert psnr_per_image(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.1)).item() == pytest.approx(20.0, rel=1e-5)
    assert psnr_per_image(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)).item() == MAX_PSNR == 120
    assert psnr_per_image(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 25.5), max_value=255).item() == pytest.approx(20.0)


def test_ssim_matches_the_reference_formula(pair):
    pred, target = pair
    ours = ssim_per_image(pred, target)
    for i in range(len(pred)):
        expected = np.mean([numpy_ssim(pred[i, c].numpy(), target[i, c].numpy()) for c in range(pred.shape[1])])
        assert ours[i].item() == pytest.approx(expected, abs=1e-10)


def test_ssim_of_identical_images_is_one_and_small_images_are_nan(pair):
    pred, _ = pair
    assert torch.allclose(ssim_per_image(pred, pred), torch.ones(3, dtype=torch.float64))
    assert ssim_per_image(torch.rand(1, 3, 10, 10), torch.rand(1, 3, 10, 10)).isnan().all()
    one_window = torch.rand(1, 3, 11, 11)  # the smallest image the window fits
    assert ssim_per_image(one_window, one_window).item() == pytest.approx(1.0)


def test_pixel_scores_aggregate_over_batches():
    generator = torch.Generator().manual_seed(2)
    a = (torch.rand(4, 3, 16, 16, generator=generator) * 2 - 1) ** 3  # values finer than float32 keeps of x + 1
    b = (torch.rand(4, 3, 16, 16, generator=generator) * 2 - 1) ** 3
    scores = PixelScores()
    scores.update(a[:1], b[:1])
    scores.update(a[1:], b[1:])
    result = scores.compute()
    ua, ub = (a.double() + 1) / 2, (b.double() + 1) / 2  # mapped to [0, 1] and scored in float64
    assert result["l1"] == pytest.approx((ua - ub).abs().mean().item(), rel=1e-12)
    assert result["l2"] == pytest.approx((ua - ub).square().mean().item(), rel=1e-12)
    assert result["rmse"] == pytest.approx(math.sqrt(result["l2"]), rel=1e-12)
    assert result["psnr"] == pytest.approx(psnr_per_image(ua, ub).mean().item(), rel=1e-12)
    assert result["ssim"] == pytest.approx(ssim_per_image(ua, ub).mean().item(), rel=1e-12)


def test_one_identical_pair_leaves_the_mean_psnr_finite():
    a = torch.linspace(-1, 1, 3 * 16 * 16).reshape(1, 3, 16, 16)
    scores = PixelScores()
    scores.update(torch.cat([a, a]), torch.cat([a, a * 0.9]))
    expected = (MAX_PSNR + psnr_per_image(to_unit(a), to_unit(a * 0.9)).item()) / 2
    assert scores.compute()["psnr"] == pytest.approx(expected)


def test_to_unit_maps_model_range():
    assert to_unit(torch.tensor([-1.0, 0.0, 1.0, 3.0])).tolist() == [0.0, 0.5, 1.0, 1.0]


@pytest.mark.parametrize("pred, named", [
    (torch.zeros(2, 3, 16, 16, dtype=torch.uint8), r"pred must be float images in \[-1, 1\], got torch.uint8: map uint8 pixels"),
    (torch.full((2, 3, 16, 16), float("nan")), r"pred holds NaN or infinite values"),
    (torch.zeros(2, 3, 16, 8), r"pred and target must be N x C x H x W images of one shape, got \(2, 3, 16, 8\) and \(2, 3, 16, 16\)"),
])
def test_pixel_scores_refuse_what_is_not_an_image_in_the_models_range(pred, named):
    with pytest.raises(DataError, match=named):
        PixelScores().update(pred, torch.zeros(2, 3, 16, 16))
    empty = PixelScores()
    empty.update(torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16))
    for scores in (PixelScores(), empty):
        with pytest.raises(DataError, match=r"no images to score: add batches with update\(\) first"):
            scores.compute()


def test_values_beyond_the_models_range_are_clamped():  # a generator without a final tanh
    scores = PixelScores()
    scores.update(torch.full((1, 3, 16, 16), 3.0), torch.ones(1, 3, 16, 16))
    assert scores.compute()["l1"] == 0.0


def test_ssim_of_images_smaller_than_its_window_is_said_to_be_unavailable():
    scores = PixelScores()
    scores.update(torch.zeros(2, 3, 16, 16), torch.zeros(2, 3, 16, 16))
    assert scores.unavailable() == {}
    scores.update(torch.zeros(1, 3, 8, 20), torch.zeros(1, 3, 8, 20))
    assert math.isnan(scores.compute()["ssim"])
    assert scores.unavailable() == {"ssim": "needs images of at least 11x11 px (its window), and 1 of the 3 scored are smaller."}
