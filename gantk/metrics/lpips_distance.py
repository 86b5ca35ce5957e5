"""LPIPS (Zhang et al. 2018): the learned perceptual distance of each output to its target, lower is closer.

It is the lpips package's network, AlexNet with the v0.1 linear calibration that the package ships
(`pip install 'gantk[lpips]'`), the version papers report. AlexNet's ImageNet weights are read from a
file, never downloaded: torchvision's, where ``torchvision.models.alexnet(weights="IMAGENET1K_V1")``
saves it in torch's cache, or another copy named by ``--lpips-weights``. Images go in as the models give
them, in [-1, 1]; grey ones are repeated to three channels. A process loads each file once per device.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import GantkWarning, OptionError, caller_stacklevel
from ..pretrained import load_layers, read_weights, torchvision_file

WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's name for AlexNet's ImageNet weights
FETCH = "python -c \"import torchvision; torchvision.models.alexnet(weights='IMAGENET1K_V1')\""
SMALLEST_SIDE = 31  # AlexNet's strides and poolings leave no pixel of a smaller image
REFERENCE_SHA256 = "7be5be79"  # how the SHA-256 of torchvision's file starts (its name says so)
INSTALL = "install the lpips package (pip install 'gantk[lpips]')"
FETCH_ONCE = f"fetch AlexNet's ImageNet weights once (233 MB) with {FETCH}, or name a copy with --lpips-weights"


def missing_reason(explicit: str | Path | None = None) -> str | None:
    """Why LPIPS cannot be computed here (``None`` where it can): the package or the weights file is missing.

    Raises:
        OptionError: ``explicit`` (``--lpips-weights``) names no file.
    """
    path = weights_path(explicit)
    if explicit is not None and not path.is_file():
        raise OptionError(f"--lpips-weights names {path}, which does not exist or is not a file: name torchvision's "
                          f"{WEIGHTS_FILE}, fetched with {FETCH}.")
    if importlib.util.find_spec("lpips") is None:
        return f"the lpips package is not installed: {INSTALL}."
    if not path.is_file():
        return f"no AlexNet weights at {path}: {FETCH_ONCE}."
    return None


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def weights_path(explicit: str | Path | None = None) -> Path:
    """AlexNet's weights file: ``explicit``, else torchvision's in torch's cache."""
    return torchvision_file(WEIGHTS_FILE) if explicit is None else Path(explicit).expanduser()


@dataclass(frozen=True)
class LpipsNetwork:
    """LPIPS's network with AlexNet's weights from ``path`` (whose SHA-256 is ``sha256``), on one device."""

    network: torch.nn.Module
    path: Path
    sha256: str

    @property
    def is_reference(self) -> bool:
        """Whether the weights are torchvision's file, the one LPIPS scores in papers are computed with."""
        return self.sha256.startswith(REFERENCE_SHA256)

    def warn_unless_reference(self) -> None:
        if not self.is_reference:
            warnings.warn(f"{self.path} is not torchvision's {WEIGHTS_FILE} (its SHA-256 is {self.sha256[:16]}..., not "
                          f"{REFERENCE_SHA256}...): LPIPS compares only with scores computed with the same file.",
                          GantkWarning, stacklevel=caller_stacklevel())


# By file and device: the file's size and modification time when it was read, and the network built from it.
_loaded: dict[tuple[Path, str], tuple[tuple[int, int], LpipsNetwork]] = {}


def lpips_network(path: Path, device: torch.device, *, given: bool = False) -> LpipsNetwork:
    """LPIPS's network with AlexNet's weights from ``path`` on ``device``, built at the first call for that file
    and device (again where the file has changed since); ``given``: the path comes from ``--lpips-weights``."""
    stat = path.stat()
    key, version = (path.resolve(), str(device)), (stat.st_size, stat.st_mtime_ns)
    if key not in _loaded or _loaded[key][0] != version:
        _loaded[key] = version, LpipsNetwork(_built(path, given).to(device), path, sha256_of(path))
    return _loaded[key][1]


def named_network(explicit: str | Path | None, device: torch.device) -> LpipsNetwork:
    """:func:`lpips_network` with the weights ``--lpips-weights`` names (``explicit``; ``None``: torchvision's file in
    torch's cache), a file other than torchvision's warned of."""
    loaded = lpips_network(weights_path(explicit), device, given=explicit is not None)
    loaded.warn_unless_reference()
    return loaded


def _built(path: Path, given: bool) -> torch.nn.Module:
    import lpips

    # The package builds AlexNet with torchvision's deprecated pretrained= argument, and initialises it at
    # random (the classifier too), drawing from torch's stream: the caller's draws stay as they were.
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore", UserWarning)
        network = lpips.LPIPS(net="alex", version="0.1", pretrained=False, pnet_rand=True, verbose=False)  # weights: below
    calibration = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    named = f"--lpips-weights {path}" if given else f"AlexNet's weights file {path}"
    # slice1.0.weight is AlexNet's features.0.weight: the package keeps the layers' indices
    load_layers(network.net, read_weights(path, named), lambda key: f"features.{key.split('.', 1)[1]}", named, "AlexNet",
                f"Name torchvision's {WEIGHTS_FILE} (fetched with {FETCH}).")
    named = f"the lpips package's {calibration}"
    load_layers(network.lins, read_weights(calibration, named), lambda key: f"lin{key}", named, "LPIPS v0.1",
                "Reinstall the lpips package.")
    return network.requires_grad_(False).eval()


class LpipsScores:
    """The mean LPIPS, by ``loaded`` (see :func:`lpips_network`), of the image pairs given batch by batch
    (:meth:`update`). Pairs it cannot compare (other channels than 1 or 3, images too small) leave it without
    a value and say why (:attr:`unavailable`)."""

    def __init__(self, loaded: LpipsNetwork):
        self.loaded = loaded
        self.values: list[Tensor] = []
        self.unavailable: str | None = None

    def distances(self, pred: Tensor, target: Tensor) -> Tensor:
        """The LPIPS of each pair of ``N x C x H x W`` images in [-1, 1] (1 or 3 channels, at least
        :data:`SMALLEST_SIDE` px a side) -> ``N``."""
        pred, target = (images.float().clamp(-1, 1).expand(-1, 3, -1, -1) for images in (pred, target))
        with torch.no_grad():
            return self.loaded.network(pred, target).flatten()

    def update(self, pred: Tensor, target: Tensor) -> None:
        if self.unavailable is not None:
            return
        if pred.shape[1] not in (1, 3):
            self.unavailable = f"LPIPS compares RGB or grey images, and the outputs have {pred.shape[1]} channels."
            return
        if min(pred.shape[-2:]) < SMALLEST_SIDE:
            self.unavailable = (f"LPIPS compares images of at least {SMALLEST_SIDE} px a side, and outputs of "
                                f"{pred.shape[-2]}x{pred.shape[-1]} px were scored.")
            return
        self.values.append(self.distances(pred, target).double().cpu())

    def compute(self) -> float | None:
        """The mean over every pair given, or ``None`` where none was (or some could not be compared)."""
        if self.unavailable is not None or not self.values:
            return None
        return torch.cat(self.values).mean().item()
