"""Run a trained model on images: ``gantk translate``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .data import open_dataset
from .data.io import write_png
from .errors import DataError
from .plugins import Components
from .systems import targets
from .train.checkpoint import system_from_checkpoint
from .train.distributed import resolve_device


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Convert normalised images to the channel count a model was trained on (gray <-> RGB)."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images[:, :3].mean(dim=1, keepdim=True)
    if images.shape[1] == 1:
        return images.expand(-1, channels, -1, -1).contiguous()
    return images[:, :channels]


def translate(
    checkpoint: str | Path,
    inputs: str | Path,
    output_dir: str | Path,
    *,
    direction: str = "AtoB",
    eval_mode: bool = False,
    device: str = "auto",
    batch_size: int = 1,
    overlay: bool = False,
    components: Components | None = None,
) -> list[Path]:
    """Translate one image or a folder of images; returns the written PNG files.

    Inputs are resized to the training crop size. By default the networks run as in the paper's
    test phase: dropout active and batch normalisation using the statistics of the test batch
    (``train()`` mode, nothing is updated). ``eval_mode=True`` uses running statistics and no
    dropout instead, which is deterministic. Mask models write class ids as PNG (binary masks as
    0/255) and, with ``overlay``, the mask blended over the input. ``components`` are the plugin
    components that provide the model's parts (default: the installed ones).
    """
    device_ = resolve_device(device)
    system, payload = system_from_checkpoint(checkpoint, map_location=device_, components=components)
    system.to(device_)
    system.train(not eval_mode)
    config = payload["system"]
    source = "A" if direction == "AtoB" else "B"
    in_channels = config["channels"][source]
    size = config.get("crop_size")
    dataset = open_dataset(inputs, format="single", augment=False, load_size=None, crop_size=size)
    output_dir = Path(output_dir)
    num_classes = config.get("num_classes")
    refuse_to_overwrite_inputs(dataset.files["A"], output_dir, overlay and num_classes is not None)
    written = []
    with torch.no_grad():
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            images = match_channels(batch["A"].to(device_), in_channels)
            outputs = system.translate(images, direction=direction)
            output_dir.mkdir(parents=True, exist_ok=True)
            for i, path in enumerate(batch["A_path"]):
                stem = Path(path).stem
                if num_classes is None:
                    written.append(write_png(outputs[i], output_dir / f"{stem}.png"))
                    continue
                ids = targets.predicted_ids(outputs[i : i + 1])[0]
                written.append(write_mask_png(ids, num_classes, output_dir / f"{stem}.png"))
                if overlay:
                    blended = 0.5 * targets.displayable(images[i : i + 1]) + 0.5 * targets.colorize(ids[None])
                    written.append(write_png(blended[0], output_dir / f"{stem}_overlay.png"))
    return written


def refuse_to_overwrite_inputs(inputs: list[Path], output_dir: Path, overlay: bool) -> None:
    """Raise when an output PNG would replace one of the input images."""
    suffixes = (".png", "_overlay.png") if overlay else (".png",)
    planned = {(output_dir / f"{path.stem}{suffix}").resolve() for path in inputs for suffix in suffixes}
    clashing = sorted(str(path) for path in inputs if path.resolve() in planned)
    if clashing:
        raise DataError(
            f"translating into {output_dir} would overwrite the input image(s) {', '.join(clashing[:3])}"
            f"{' ...' if len(clashing) > 3 else ''}; choose another output folder."
        )


def write_mask_png(ids: torch.Tensor, num_classes: int, path: Path) -> Path:
    """Class ids as an 8-bit PNG: binary masks as 0/255, otherwise the ids themselves."""
    values = ids.to(torch.uint8) * 255 if num_classes == 2 else ids.to(torch.uint8)
    return write_png(values[None], path)
