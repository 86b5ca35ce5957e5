"""Improved precision and recall, density and coverage on hand-made point clouds."""

import numpy as np
import pytest
import torch

from gantk.errors import GantkError
from gantk.metrics import density_coverage, precision_recall
from gantk.metrics.prdc import knn_radii

LINE = torch.tensor([[float(x), 0.0] for x in range(10)], dtype=torch.float64)  # points 0..9 on the x axis


def test_radii_are_the_third_neighbour_distance():
    # Ends: neighbours at 1, 2, 3 -> 3; one in from the ends and inside: 1, 1, 2 -> 2.
    assert knn_radii(LINE, 3).tolist() == [3, 2, 2, 2, 2, 2, 2, 2, 2, 3]


def test_precision_by_hand():
    fake = torch.tensor([[0.5, 0.0], [4.0, 1.0], [4.0, 3.0], [4.0, 9.0]], dtype=torch.float64)
    # (0.5, 0) lies 0.5 from point 0 (radius 3) and (4, 1) 1 from point 4 (radius 2): inside.
    # (4, 3) lies 3 from point 4 and sqrt(10) from 3 and 5 (radius 2), 5 from point 0 (radius 3): outside, as is (4, 9).
    precision, _ = precision_recall(LINE, fake, k=3)
    assert precision == 0.5


def test_identical_and_disjoint_sets():
    assert precision_recall(LINE, LINE) == (1.0, 1.0)
    assert precision_recall(LINE, LINE + 100) == (0.0, 0.0)


def test_recall_counts_real_points_covered_by_fake_balls():
    fake = LINE[:5].clone()  # fake radii: 3, 2, 2, 2, 3
    _, recall = precision_recall(LINE, fake, k=3)
    # real 0..4 are fake points; fake 4 has radius 3, so real 5, 6 and 7 are covered too, 8 and 9 are not
    assert recall == pytest.approx(0.8)


def test_matches_brute_force_numpy():
    generator = torch.Generator().manual_seed(6)
    real = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(30, 3, generator=generator, dtype=torch.float64) * 1.5 + 0.5
    r, f = real.numpy(), fake.numpy()

    def radii(x):
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        return np.sort(d, axis=1)[:, 3]

    def share(points, centres, rad):
        d = np.linalg.norm(points[:, None] - centres[None], axis=-1)
        return float((d <= rad[None]).any(axis=1).mean())

    assert precision_recall(real, fake) == pytest.approx((share(f, r, radii(r)), share(r, f, radii(f))))


def test_too_few_points_raise():
    with pytest.raises(GantkError, match="more than 3 images"):
        precision_recall(LINE[:3], LINE)


def test_density_and_coverage_by_hand():
    # Real radii with k = 3: 3 at the ends, 2 inside. (0.5, 0) lies in the balls of points 0, 1 and 2
    # (0.5, 0.5, 1.5 away) but not 3 (2.5 > 2); (4, 1) in those of 3, 4 and 5 (sqrt 2, 1, sqrt 2 <= 2); (4, 9) in none.
    fake = torch.tensor([[0.5, 0.0], [4.0, 1.0], [4.0, 9.0]], dtype=torch.float64)
    density, coverage = density_coverage(LINE, fake, k=3)
    assert density == pytest.approx(6 / (3 * 3)) and coverage == pytest.approx(6 / 10)


def test_density_counts_repeated_fakes_and_coverage_does_not():
    crowded = LINE[[4, 4, 4, 4]]  # four fakes on point 4, inside the balls of points 2..6
    density, coverage = density_coverage(LINE, crowded, k=3)
    assert density == pytest.approx(4 * 5 / (3 * 4)) and coverage == pytest.approx(0.5)


def test_density_and_coverage_match_brute_force_numpy():
    generator = torch.Generator().manual_seed(7)
    real = torch.randn(40, 3, generator=generator, dtype=torch.float64)
    fake = torch.randn(30, 3, generator=generator, dtype=torch.float64) * 1.5 + 0.5
    r, f = real.numpy(), fake.numpy()
    radius = np.sort(np.linalg.norm(r[:, None] - r[None], axis=-1), axis=1)[:, 5]
    inside = np.linalg.norm(r[:, None] - f[None], axis=-1) <= radius[:, None]  # real x fake
    assert density_coverage(real, fake) == pytest.approx((inside.sum() / (5 * len(f)), inside.any(axis=1).mean()))


def test_too_few_points_for_density_raise():
    with pytest.raises(GantkError, match="k=5 need more than 5 images per set, got 5"):
        density_coverage(LINE[:5], LINE)
