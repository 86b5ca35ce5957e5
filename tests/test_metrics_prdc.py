"""Improved precision and recall on hand-made point clouds."""

import numpy as np
import pytest
import torch

from gantk.errors import GantkError
from gantk.metrics import precision_recall
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
