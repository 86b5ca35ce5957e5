"""Precision, recall, density and coverage of generated features against real ones.

Each set's manifold is the union of balls around its features, each with the radius of the
distance to its k-th nearest neighbour in the same set. Improved precision and recall
(Kynkäänniemi et al. 2019): the share of generated features inside the real manifold, and of real
features inside the generated one. Density and coverage (Naeem et al. 2020) use the real balls
only: density counts how many real balls hold each generated feature (over k; about 1 when both
sets come from one distribution, and unbounded above), coverage is the share of real balls that
hold at least one generated feature. Outliers among the generated features inflate neither.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import GantkError

CHUNK = 1024


def knn_radii(features: Tensor, k: int = 3) -> Tensor:
    """Distance of each row to its k-th nearest other row (``N``)."""
    if len(features) <= k:
        raise GantkError(f"k-nearest-neighbour metrics with k={k} need more than {k} images per set, got {len(features)}.")
    radii = []
    for start in range(0, len(features), CHUNK):
        distances = torch.cdist(features[start : start + CHUNK], features)
        radii.append(distances.kthvalue(k + 1, dim=1).values)  # the first is the point itself (distance 0)
    return torch.cat(radii)


def coverage_share(points: Tensor, centres: Tensor, radii: Tensor) -> float:
    """Share of ``points`` within ``radii`` of at least one centre."""
    inside = []
    for start in range(0, len(points), CHUNK):
        distances = torch.cdist(points[start : start + CHUNK], centres)
        inside.append((distances <= radii[None]).any(dim=1))
    return torch.cat(inside).double().mean().item()


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """Precision and recall of ``fake`` features against ``real`` ones (both ``N x D``).

    Example:
        >>> real = torch.randn(20, 2, dtype=torch.float64)
        >>> precision_recall(real, real)
        (1.0, 1.0)
    """
    real, fake = real.double(), fake.double()
    precision = coverage_share(fake, real, knn_radii(real, k))
    recall = coverage_share(real, fake, knn_radii(fake, k))
    return precision, recall


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage of ``fake`` features against ``real`` ones (both ``N x D``; k = 5 as Naeem et al.).

    Example:
        >>> real = torch.randn(20, 2, dtype=torch.float64)
        >>> density_coverage(real, real + 100)
        (0.0, 0.0)
    """
    real, fake = real.double(), fake.double()
    radii = knn_radii(real, k)
    hits, covered = 0, []
    for start in range(0, len(real), CHUNK):
        inside = torch.cdist(real[start : start + CHUNK], fake) <= radii[start : start + CHUNK, None]  # real x fake
        hits += int(inside.sum())
        covered.append(inside.any(dim=1))
    return hits / (k * len(fake)), torch.cat(covered).double().mean().item()
