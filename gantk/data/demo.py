"""The embedded demo set: edges -> photo pairs cut from a photograph that ships with matplotlib."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import DataError
from ..files import REFUSED_WRITES, building_folder
from ..lazy_import import LazyModule
from .derive import derive_input
from .io import read_image, write_png
from .sampler import derive_seed
from .transforms import random_window

cbook = LazyModule("matplotlib.cbook")
TF = LazyModule("torchvision.transforms.v2.functional")

DEMO_NAME = "demo-edges2hopper-v1"
DEMO_SIZE = 64
WINDOWS = (80, 104, 128)  # crop sides in photo pixels, each resized to DEMO_SIZE
TEST_COLUMNS = (0, 136)  # the photo is 512 wide: test from the flag on the left, train from the rest
TRAIN_COLUMNS = (152, 512)
CROPS = {"train": 48, "test": 12}


def cache_dir() -> Path:
    """``$GANTK_CACHE_DIR``, else ``$XDG_CACHE_HOME/gantk``, else ``~/.cache/gantk``."""
    if os.environ.get("GANTK_CACHE_DIR"):
        return Path(os.environ["GANTK_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "gantk"


def demo_dataset_dir() -> Path:
    """Folder of the demo set (paired format), built on first use in :func:`cache_dir`.

    Built from matplotlib's sample photograph of Grace Hopper (``grace_hopper.jpg``, 512 x 600),
    so nothing is downloaded: 48 train and 12 test pairs of 64 x 64 crops taken at three scales
    (80, 104 and 128 photo pixels), A = Canny edges (1 channel, black on white), B = the photo
    crop (RGB). Test crops come from columns 0-135 of the photo (mostly the flag) and train crops
    from columns 152-511 (face, cap, uniform, sky), so the two never overlap. The set is built in
    a temporary folder and renamed into place, so concurrent callers never see a partial set.
    """
    final = cache_dir() / DEMO_NAME
    if final.is_dir():
        return final
    photo_path = Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    if not photo_path.is_file():
        raise DataError(f"matplotlib's sample photo {photo_path} is missing; reinstall matplotlib to get the demo set.")
    photo = read_image(photo_path)
    try:
        with building_folder(final, shared=True) as tmp:
            _build(photo, tmp)
    except OSError as error:  # a cache folder the user did not name: say which setting moves it
        if error.errno not in REFUSED_WRITES:
            raise
        raise DataError(f"cannot build the demo set in {final.parent}: {error.strerror}; set GANTK_CACHE_DIR to a "
                        "folder you may write to, or give your own data with --data DIR.") from None
    return final


def _build(photo: torch.Tensor, out: Path) -> None:
    height = photo.shape[-2]
    for number, (split, (first, last)) in enumerate((("train", TRAIN_COLUMNS), ("test", TEST_COLUMNS))):
        generator = torch.Generator().manual_seed(derive_seed(number))
        for k in range(CROPS[split]):
            window = WINDOWS[k % len(WINDOWS)]
            top, left = random_window(height, last - first, window, generator)  # left within the split's columns
            left += first
            crop = TF.resize(photo[:, top : top + window, left : left + window], [DEMO_SIZE, DEMO_SIZE], antialias=True)
            name = f"hopper_{k:03d}.png"
            write_png(derive_input(crop, "edges"), out / split / "A" / name)
            write_png(crop, out / split / "B" / name)
