"""Improved precision and recall for generative models (Kynkäänniemi et al. 2019).

Each set's manifold is the union of balls around its features, each with the radius of the
distance to its k-th nearest neighbour in the same set. Precision is the share of generated
features inside the real manifold; recall the share of real features inside the generated one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..errors import GantkError

CHUNK = 1024


def knn_radii(features: Tensor, k: int = 3) -> Tensor:
    """Distance of each row to its k-th nearest other row (``N``)."""
    if len(features) <= k:
        raise GantkError(f"precision/recall with k={k} needs more than {k} images per set, got {len(features)}.")
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
