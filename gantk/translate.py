"""Run a trained model on images: ``gantk translate``."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset

from .data import open_dataset
from .data.batches import collate_same_size, refuse_outputs_of_several_sizes
from .data.io import IMAGE_EXTENSIONS, has_wide_ids, list_images, probe, read_image, write_png
from .data.layout import MASK_EXTENSIONS, ImageNotes, is_lossless_mask, listed, warn_of_skipped_files
from .data.opening import get_format
from .data.sampler import in_order
from .errors import DataError, GantkError, GantkWarning, OptionError, caller_stacklevel, extend_message
from .files import first_names, user_path
from .host_memory import freed_memory_kept
from .inference import TRANSLATE_SIZES, TrainedModel, loaded_model, resized_back
from .nn import check_choice, check_count
from .plugins import BUILTIN_PLUGINS, Components, default_components
from .progress import ProgressBar
from .systems import targets
from .tiling import checked_tile_overlap
from .train.config import check_seed

__all__ = ["translate"]


def translate(
    checkpoint: str | os.PathLike[str] | TrainedModel,
    inputs: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    direction: str = "AtoB",
    eval_mode: bool | None = None,
    average: bool | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    batch_size: int = 1,
    overlay: bool = False,
    size: str = "crop",
    tile: int | None = None,
    tile_overlap: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    components: Components | None = None,
) -> list[Path]:
    """Translate one image or a folder of images with the model of ``checkpoint`` (a checkpoint file, a run
    directory, or a loaded :class:`~gantk.inference.TrainedModel`); returns the written PNG files. A label model
    (:attr:`~gantk.inference.TrainedModel.input_classes`) translates masks, read as its training masks were.

    ``size`` says where the model runs and what it writes: ``"crop"`` resizes inputs to the
    training crop size and writes that size (for a model trained with ``--resize short-side``, the
    shorter side to it, keeping the aspect ratio and padded as in ``"native"``; with ``--resize none``,
    as ``"native"``; a batch then holds images of one shape only); ``"original"`` also resizes the
    outputs back to each input's size (bilinearly, antialiased where shrunk; masks from their resized
    probabilities, overlays on the original image); ``"native"`` runs the model on each input at its own size, padded to the generator's
    size multiple (the networks are fully convolutional; one image at a time, so ``batch_size``
    must be 1). With ``tile``, the model runs on square tiles of that side, neighbours sharing ``tile_overlap``
    pixels (default a quarter of the tile) where their outputs are blended, so that large inputs translate in
    the memory of one tile (see :meth:`gantk.inference.TrainedModel.translate`). By default the networks run as in the paper's test phase (see
    :class:`gantk.inference.TrainedModel`), with dropout noise drawn from ``seed`` and each batch's first file name (an
    image's output does not depend on the images before it, nor on its folder); ``eval_mode=True``
    is deterministic, and ``average=False`` runs the generators' last weights where the run also kept an
    average of them (``device``, ``eval_mode`` and ``average`` are for a checkpoint to load; a loaded model runs
    as it was loaded). Mask models write class ids as PNG (binary masks as 0/255, more classes as palette
    indices; the ids plus one where 0 was ignored, as the masks trained on hold them) and, with ``overlay``, the mask blended over the
    input. Existing files are replaced only with ``overwrite`` (never the inputs); ``progress`` shows a progress bar. Inputs that cannot
    be read are left out and named together in a ``DataError`` raised once the others are written.
    ``components`` are the plugin components that provide the model's parts (default: the installed ones).
    """
    inputs, output_dir = user_path(inputs, "inputs (INPUT_PATH)"), user_path(output_dir, "output_dir (OUTPUT_DIR)")
    check_choice("size", size, TRANSLATE_SIZES)
    batch_size = check_count("batch_size", batch_size, 1)
    seed = check_seed(seed)
    if size == "native" and batch_size != 1:
        raise OptionError(f"--size native runs each image at its own size, one at a time: use --batch-size 1, not {batch_size}.")
    model = loaded_model(checkpoint, device=device, eval_mode=eval_mode, average=average, components=components)
    model.system.check_direction(direction)
    tile_overlap = checked_tile_overlap(tile, tile_overlap, model.size_multiple, model.min_input_size)
    crop = model.config.get("crop_size")
    if tile is not None and size != "native" and model.config["resize"] == "square" and crop and tile >= crop:
        warnings.warn(f"--tile {tile} with --size {size}: the model runs on inputs resized to its {crop} px crop, one tile "
                      "each; tiles are for large inputs at their own size (--size native).", GantkWarning,
                      stacklevel=caller_stacklevel())
    if overlay and model.num_classes is None:
        kind = "a label model, writing images" if model.input_classes is not None else "an image model"
        raise OptionError(f"--overlay blends a mask over its input, but {model.checkpoint} is {kind}; overlays are for "
                          "mask models (trained with --recipe seg): drop --overlay.")
    sizes = {"load_size": None, "crop_size": None} if size == "native" else {  # the training size, as eval uses
        "load_size": model.config.get("load_size"), "crop_size": model.config.get("crop_size")}
    # images, each converted to the model's channels from its own; label masks, read as class ids
    read_as = {"channels": model.input_channels(direction)} if model.input_classes is None else {
        "input_classes": model.input_classes, "ignore_label": model.config.get("ignore_label")}
    if model.input_classes is not None:
        refuse_photos_for_labels(model, Path(inputs))
    try:
        dataset = open_dataset(inputs, format="single", augment=False, resize=model.config["resize"], **sizes,
                               **read_as)
    except DataError as error:  # listed without the data check command that the error of a dataset ends with
        if not error.problems:
            raise
        raise DataError(f"cannot translate {inputs}:\n{listed(error.problems)}", error.problems) from None
    given_output, output_dir = output_dir, Path(output_dir)
    planned = planned_outputs(dataset.files["A"], output_dir, overlay)
    if not output_dir.exists() and output_dir.suffix.lower() in IMAGE_EXTENSIONS and not str(given_output).endswith(("/", os.sep)):
        names = planned[0][1].name + (", ..." if len(planned) > 1 else "")
        raise OptionError(f"output_dir (OUTPUT_DIR) {output_dir} is named as an image file, but translate writes into a folder, a file named "
                          f"after each input ({names}): give a folder, such as {output_dir.with_suffix('')} (or {output_dir}{os.sep}).")
    refuse_to_overwrite_inputs(dataset.files["A"], planned, output_dir)
    refuse_shared_outputs(planned)
    if size != "native":
        refuse_outputs_of_several_sizes(dataset.files["A"], model.config["resize"], batch_size)
    if not overwrite:
        refuse_to_replace(planned, output_dir)
    warn_of_skipped_files(Path(inputs), "translated", unread_formats=False)  # the dataset warned of those
    warn_of_aligned_pairs(model, dataset.files["A"], direction)
    warn_of_dataset_folder(Path(inputs), components)
    warn_of_masks_for_images(model, dataset.files["A"])
    written: list[Path] = []
    unreadable: list[str] = []  # inputs that cannot be read are left out, then named together
    mostly_ignored: list[str] = []  # label masks most of whose pixels hold the ignore label
    # Its own generator: iterating draws nothing from the caller's random state.
    loader = DataLoader(ReadableItems(dataset, unreadable), batch_size=batch_size, sampler=in_order(dataset), collate_fn=collate_kept,
                        generator=torch.Generator())
    with freed_memory_kept(model.device), naming_written(written, output_dir):
        for batch in ProgressBar(loader, desc="translating", unit="batch", disable=not progress, dynamic_ncols=True):
            if batch is None:
                continue
            if model.input_classes is not None:
                ignored = (batch["A"] == targets.IGNORED).flatten(1).float().mean(dim=1)
                mostly_ignored += [path for path, share in zip(batch["A_path"], ignored.tolist()) if share > 0.5]
            images = model.inputs(batch["A"], direction, from_dataset=True)
            try:
                with model.seeded(seed, input_file=batch["A_path"][0]):  # the noise of the batch's first file
                    outputs = model.translate(images, direction, pad=True, tile=tile, overlap=tile_overlap)  # pad: for any shape
            except GantkError as error:  # name the inputs: a folder may hold one image the model cannot take
                raise OptionError(f"translating {', '.join(batch['A_path'])}: {error}") from None
            output_dir.mkdir(parents=True, exist_ok=True)
            for i, path in enumerate(batch["A_path"]):
                written += write_translation(model, Path(path), images[i : i + 1], outputs[i : i + 1], output_dir,
                                             direction=direction, overlay=overlay, original_size=size == "original")
    if mostly_ignored:
        warnings.warn(
            f"{len(mostly_ignored)} input mask(s) ({first_names([Path(path).name for path in mostly_ignored])}) hold the ignore label "
            f"{model.config.get('ignore_label')} in most pixels, which the model reads as no class: are they masks of its "
            "class ids? (a binary 0/255 mask given to a model trained with --ignore-label 255 keeps no object)",
            GantkWarning, stacklevel=caller_stacklevel())
    if unreadable:
        done = len(dataset) - len(unreadable)
        kept = f"The outputs of the other {done} are written to {output_dir}" if done else "Nothing was written"
        if model.input_classes is not None:
            kept = f"{model.checkpoint} translates label masks (class ids) to images. {kept}"
        raise DataError(
            f"{len(unreadable)} of {len(dataset)} input(s) cannot be read and were not translated:\n{listed(unreadable)}\n"
            f"{kept}; fix those inputs as each line says, then translate them alone (or every input again "
            "with --overwrite).",
            unreadable,
        )
    return written


class ReadableItems(Dataset[dict[str, Any] | None]):
    """The items of ``dataset``, ``None`` for one whose file cannot be read: its error goes to ``unreadable``."""

    def __init__(self, dataset: Dataset, unreadable: list[str]):
        self.dataset, self.unreadable = dataset, unreadable

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> dict[str, Any] | None:
        try:
            return self.dataset[key]
        except DataError as error:
            self.unreadable.append(str(error))
            return None


def collate_kept(items: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """A batch of the items that could be read; ``None`` when none could."""
    kept = [item for item in items if item is not None]
    return collate_same_size(kept) if kept else None


@contextlib.contextmanager
def naming_written(written: Sized, output_dir: Path, command: str = "translate") -> Iterator[None]:
    """An input error raised inside says how many outputs were already written, and how to finish; a stop (Ctrl-C)
    says so in a note (``__notes__``, which the CLI prints after "Aborted.")."""
    try:
        yield
    except GantkError as error:
        if written:
            extend_message(error, f" The {len(written)} file(s) written to {output_dir} before it are kept; once it is "
                                  f"fixed, {command} again with --overwrite.")
        raise
    except KeyboardInterrupt as stop:
        if written:
            stop.add_note(f"The {len(written)} file(s) written to {output_dir} before the stop are kept; {command} again "
                          "with --overwrite to write every output.")
        raise


def write_translation(model: TrainedModel, path: Path, image: torch.Tensor | None, output: torch.Tensor, output_dir: Path, *,
                      direction: str, overlay: bool, original_size: bool) -> list[Path]:
    """Write the output for the input image at ``path`` (and, with ``overlay``, its blend over ``image``); returns the
    files written."""
    if original_size:
        info = probe(path)
        output = resized_back(output, info.height, info.width)
        if overlay:  # blended over the original image, not the resized one
            image = model.inputs(read_image(path)[None], direction)
    names = output_names(path, output_dir, overlay)
    if model.num_classes is None:
        return [write_png(output[0], names[0])]
    ids = model.predicted_ids(output)[0]
    written = [model.write_mask(ids, names[0])]
    if overlay:
        blended = 0.5 * targets.displayable(image) + 0.5 * targets.colorize(ids[None])
        written.append(write_png(blended[0], names[1]))
    return written


def output_names(path: Path, output_dir: Path, overlay: bool) -> list[Path]:
    """The files written for the input ``path``: its output, then (with ``overlay``) its overlay."""
    return [output_dir / f"{path.stem}{suffix}" for suffix in ((".png", "_overlay.png") if overlay else (".png",))]


def planned_outputs(inputs: list[Path], output_dir: Path, overlay: bool) -> list[tuple[Path, Path]]:
    """Every (input, output file) pair a translation writes."""
    return [(path, out) for path in inputs for out in output_names(path, output_dir, overlay)]


def warn_of_aligned_pairs(model: TrainedModel, inputs: list[Path], direction: str) -> None:
    """Warn when a model trained on side-by-side pairs (the aligned format) is given images shaped as such pairs."""
    if model.config.get("data_format") != "aligned":
        return
    for path in inputs[:3]:  # a folder of such pairs holds nothing else
        try:
            info = probe(path)
        except DataError:  # named with the other unreadable inputs
            continue
        if info.width == 2 * info.height:
            takes_a = direction == model.config["direction"]  # the data's side the model's input came from
            side, half = ("A", "left") if takes_a else ("B", "right")
            warnings.warn(f"{path} is twice as wide as high, as a side-by-side pair of square images is, and the model "
                          "trained on side-by-side pairs (aligned format): if it is one, translate takes it whole, both "
                          f"halves as one input; translate the {side} sides, the {half} halves cut out.", GantkWarning,
                          stacklevel=caller_stacklevel())
            return


def warn_of_dataset_folder(inputs: Path, components: Components | None) -> None:
    """Warn when the folder ``inputs`` is laid out as a dataset of a plugin's format, which may keep its targets beside
    its inputs: translate would take them as inputs too. (gantk's own formats keep targets in subfolders, which
    translate does not read, or side by side, which :func:`warn_of_aligned_pairs` covers.)"""
    if not inputs.is_dir():
        return
    components = components or default_components()
    registry = components.registry("data_format")
    for name in registry.names():
        if registry.get(name).plugin in BUILTIN_PLUGINS:
            continue
        data_format = get_format(name, components)
        try:
            laid_out = not data_format.fallback and data_format.detect(inputs)
        except Exception:  # a plugin's failing detect: this warning is advice, and training or eval report it
            continue
        if laid_out:
            warnings.warn(f"{inputs} is laid out as a dataset of the {name} format; translate takes every image directly "
                          "in it as an input, the format's targets too if it keeps them there: give a folder that holds "
                          "the inputs alone.", GantkWarning, stacklevel=caller_stacklevel())
            return


def warn_of_masks_for_images(model: TrainedModel, inputs: list[Path]) -> None:
    """Warn when an image model's first input looks like a mask of class ids (one channel, lossless, every value
    below ``ImageNotes.DARK``): such a model reads it as a nearly black image."""
    if model.input_classes is not None or not inputs or not is_lossless_mask(inputs[0]):
        return
    try:
        image = read_image(inputs[0])
    except DataError:  # named with the other unreadable inputs
        return
    if image.shape[0] == 1 and image.numel() and int(image.max()) < ImageNotes.DARK:
        held, scale = f"holds values 0..{int(image.max())} alone, as a mask of class ids does", ""
        if has_wide_ids(inputs[0]):  # its top 8 bits are read: a 10- or 12-bit image's too
            held = f"stores 16-bit values below {ImageNotes.DARK * 256}, as masks of class ids and 10- or 12-bit images do"
            scale = "Scale such an image to the full 16-bit range, or save it in 8 bits. "
        warnings.warn(f"{inputs[0]} {held}, and {model.checkpoint} translates images: it reads the file as a nearly black "
                      f"image. {scale}To translate masks into images, use a model trained from them (gantk train "
                      "--direction BtoA on masks paired with images).", GantkWarning, stacklevel=caller_stacklevel())


def refuse_to_overwrite_inputs(inputs: list[Path], planned: list[tuple[Path, Path]], output_dir: Path) -> None:
    """Raise when an output PNG would replace one of the input images."""
    outputs = {out.resolve() for _, out in planned}
    clashing = sorted(str(path) for path in inputs if path.resolve() in outputs)
    if clashing:
        raise DataError(
            f"translating into {output_dir} would overwrite the input image(s) {', '.join(clashing[:3])}"
            f"{' ...' if len(clashing) > 3 else ''}; choose another output folder."
        )


def refuse_shared_outputs(planned: list[tuple[Path, Path]]) -> None:
    """Raise when two inputs would be written to the same file (e.g. a.jpg and a.png, or m's overlay and m_overlay.jpg)."""
    first: dict[Path, Path] = {}
    for path, out in planned:
        other = first.setdefault(out.resolve(), path)
        if other != path:
            raise DataError(
                f"{other} and {path} would both be written to {out}; rename one of them or translate them separately."
            )


def refuse_to_replace(planned: list[tuple[Path, Path]], output_dir: Path) -> None:
    """Raise, before anything is written, when output files already exist."""
    existing = [str(out) for _, out in planned if out.exists()]
    if existing:
        raise OptionError(
            f"{output_dir} already holds {len(existing)} of the output file(s) ({', '.join(existing[:3])}"
            f"{', ...' if len(existing) > 3 else ''}); pass --overwrite to replace them, or choose another output folder."
        )


def refuse_photos_for_labels(model: TrainedModel, inputs: Path) -> None:
    """Refuse, in one line, inputs of a label model none of which can be a mask (JPEG photos, say)."""
    files = [inputs] if inputs.is_file() else list_images(inputs)
    if files and not any(map(is_lossless_mask, files)):
        kinds = ", ".join(sorted({path.suffix.lower() for path in files}))
        given = f"{inputs} is a {kinds} file, which" if inputs.is_file() else f"{inputs} holds {len(files)} {kinds} file(s), which"
        raise DataError(f"{model.checkpoint} translates label masks (class ids, in {', '.join(MASK_EXTENSIONS)} files) into "
                        f"images, and {given} cannot be masks (JPEG and WebP "
                        "change label values): give it label masks, such as the masks/ folder of a segmentation set (masks saved "
                        "as JPEG must be saved as PNG again from their source).")
