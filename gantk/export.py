"""A trained model's translation as an ONNX file, to run without gantk or torch: ``gantk export``.

The file maps normalised images (``N x C x H x W`` float32 in [-1, 1]) to what
:meth:`gantk.inference.TrainedModel.translate` returns: images in [-1, 1], or class probabilities for
mask models. Batch size, height and width are free (sides a multiple of the generator's, as
:class:`~gantk.inference.TrainedModel` needs). Its ``metadata_props`` (``gantk.*``) say how to feed it
and read it. The export is checked: onnxruntime runs the file on a random batch, and its outputs must
match the model's.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from .errors import GantkError, OptionError
from .files import check_writable, replacing, user_path
from .data.mask_values import binary_255
from .inference import TrainedModel, loaded_model, test_mode_description
from .plugins import Components

OUTPUT_NAME = "outputs"
AXES = ("batch", "height", "width")  # the free axes of the input and output, as the file names them
TOLERANCE = 1e-3  # largest difference allowed between onnxruntime's outputs and the model's
NEEDED = ("onnx", "onnxscript", "onnxruntime")


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_onnx` wrote: the file, its metadata, and how far onnxruntime's outputs were
    from the model's on the check batch (``None`` where the model draws test-time dropout noise, so two
    runs differ anyway)."""

    path: Path
    metadata: dict[str, str]
    difference: float | None


class Translation(nn.Module):
    """``system.translate(images, direction)`` as a module of one input, the graph that is exported."""

    def __init__(self, system: nn.Module, direction: str):
        super().__init__()
        self.system, self.direction = system, direction

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.system.translate(images, self.direction)


def export_onnx(
    checkpoint: str | os.PathLike[str] | TrainedModel,
    out: str | os.PathLike[str],
    *,
    direction: str = "AtoB",
    eval_mode: bool | None = None,
    average: bool | None = None,
    overwrite: bool = False,
    components: Components | None = None,
) -> ExportSummary:
    """Write the translation of ``checkpoint`` (a file or a run directory, or a :class:`~gantk.inference.TrainedModel`
    loaded on the CPU, exported in its mode) for ``direction`` to the ONNX file ``out``.

    By default the file runs as the paper's test phase does (and ``gantk translate``): batch
    normalisation with the statistics of the batch it is given, dropout active (drawn by the ONNX
    runtime); ``eval_mode=True`` exports running statistics and no dropout, which is deterministic. Where the run
    kept an average of its generators' weights (``--ema-decay``), the average is exported unless ``average=False``.
    ``out`` is written only once onnxruntime's outputs on a random batch match the model's (within
    ``TOLERANCE``), and replaces an existing file only with ``overwrite``.

    Raises:
        OptionError: ``out`` is no ``.onnx`` path, exists without ``overwrite``, or the ONNX packages are missing.
        GantkError: the model cannot be exported, or onnxruntime's outputs differ from it.
    """
    out = Path(user_path(out, "out (OUT)"))
    if eval_mode is not None and not isinstance(eval_mode, bool):
        raise OptionError(f"eval_mode is True or False, got {eval_mode!r}.")
    if out.name.lower() == ".onnx":
        raise OptionError(f"'{out}' is an extension without a name: name the file, e.g. {out.with_name('model.onnx')}.")
    if out.suffix.lower() != ".onnx":
        raise OptionError(f"the export is an ONNX file: name it with the .onnx extension, not '{out.name}'.")
    if out.is_dir():
        raise OptionError(f"{out} is a folder; name the .onnx file to write (e.g. {out / 'model.onnx'}).")
    if out.exists() and not overwrite:
        raise OptionError(f"{out} already exists; pass --overwrite to replace it, or choose another path.")
    check_writable(out)
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise OptionError(f"exporting to ONNX needs the packages {', '.join(missing)}: pip install 'gantk[onnx]'.")
    import onnx

    model = loaded_model(checkpoint, device=None if isinstance(checkpoint, TrainedModel) else "cpu", eval_mode=eval_mode,
                         average=average, components=components)
    if model.device.type != "cpu":
        raise OptionError(f"the export runs the model on the CPU, and it is loaded on {model.device}: load it with "
                          "device='cpu', or pass its checkpoint's path.")
    eval_mode = not model.system.training
    model.system.check_direction(direction)
    system = model.system if eval_mode else in_test_phase(model.system)
    translation = Translation(system, direction)
    channels = model.config["channels"]["A" if direction == "AtoB" else "B"]
    side = max(2 * model.min_input_size, 2 * model.size_multiple, 64)  # a size that leaves height and width free
    batch = torch.rand(2, channels, side, side, generator=torch.Generator().manual_seed(0)) * 2 - 1
    proto = _exported(translation, batch, model)
    metadata = model_metadata(model, direction, eval_mode)
    if not eval_mode and not takes_one_image(translation, channels, model.least_side):
        metadata["gantk.batch"] = (
            "2 or more images at the smallest sides: batch normalisation with the batch's statistics needs more than one "
            "value per channel, and where the deepest features are 1x1 a batch of 1 gives a constant there (gantk translate "
            "refuses it); export --eval-mode to run single images of that size"
        )
    proto.metadata_props.extend(onnx.StringStringEntryProto(key=key, value=value) for key, value in metadata.items())
    proto.doc_string = (f"gantk {__version__}: {metadata['gantk.maps']} ({metadata['gantk.recipe']}, step {metadata['gantk.step']}); "
                        "the gantk.* metadata say how to feed and read it")  # what model viewers show
    data = proto.SerializeToString()
    difference = _checked(data, translation, batch, out, input_name(model))
    with replacing(out, binary=True) as handle:
        handle.write(data)
    return ExportSummary(out, metadata, difference)


def takes_one_image(translation: Translation, channels: int, side: int) -> bool:
    """Whether ``translation`` runs on one image of ``side`` px (batch statistics of 1x1 features it does not)."""
    try:
        with torch.no_grad(), torch.random.fork_rng():
            translation(torch.zeros(1, channels, side, side))
    except ValueError as error:
        if "more than 1 value per channel" in str(error):
            return False
        raise
    return True


def in_test_phase(system: nn.Module) -> nn.Module:
    """A copy of ``system`` (in training mode) that runs the paper's test phase as a graph without state:
    its normalisation layers keep no running statistics, so they normalise with the batch's and update
    nothing (an exported update would not be run), and its dropout layers draw their masks with
    :class:`DrawnDropout`."""
    copied = copy.deepcopy(system)
    for module in copied.modules():
        if getattr(module, "track_running_stats", False):
            module.track_running_stats = False
            module.running_mean = module.running_var = module.num_batches_tracked = None
        for name, child in module.named_children():
            if type(child) in (nn.Dropout, nn.Dropout2d):
                setattr(module, name, DrawnDropout(child.p, channels=isinstance(child, nn.Dropout2d)))
    return copied


class DrawnDropout(nn.Module):
    """Dropout from uniform draws: ONNX runtimes keep it, where their graph optimisations remove
    Dropout nodes (onnxruntime's do, training mode or not). ``channels`` zeroes whole channels (Dropout2d)."""

    def __init__(self, p: float, channels: bool = False):
        super().__init__()
        self.p, self.channels = p, channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        draws = torch.rand_like(x[:, :, :1, :1] if self.channels else x)
        return x * (draws >= self.p) / max(1 - self.p, torch.finfo(x.dtype).tiny)


def input_name(model: TrainedModel) -> str:
    """The exported network's input: ``label_maps`` for a model of label masks, else ``images``."""
    return "images" if model.input_classes is None else "label_maps"


def input_text(model: TrainedModel, channels: int) -> str:
    """What the exported network takes, in words."""
    if model.input_classes is None:
        return f"N x {channels} x H x W float32 images in [-1, 1] (pixels / 127.5 - 1)"
    ignored = model.config.get("ignore_label")
    values = "k + 1" if ignored == 0 else "k (255 for k = 1)" if binary_255(model.input_classes, ignored) else "k"
    at_ignored = "" if ignored is None else f" (all channels 0 where the mask value is {ignored}, which is ignored)"
    return (f"N x {channels} x H x W float32 label maps, one channel per class: channel k is 1 where the mask value is "
            f"{values}, else 0{at_ignored}")


def mode_text(model: TrainedModel, eval_mode: bool) -> str:
    """How the exported file runs the generator, and the ``gantk translate`` call it matches."""
    if eval_mode:
        return "eval: running statistics, no dropout (as gantk translate --eval-mode)"
    mode = test_mode_description(model)
    if "batch statistics" not in mode:
        return f"{mode}, as gantk translate by default"
    return (f"{mode}: batch normalisation uses the statistics of each run's whole batch (padding included), so an "
            "image's output depends on the others run with it; one image per run is gantk translate's default (--batch-size 1)")


def preprocessing(config: dict[str, Any], multiple: int, smallest: int) -> str:
    """What ``gantk translate`` (``--size crop``) does to an image before the model and to its output after."""
    crop, resize = config.get("crop_size"), config["resize"]
    padded = (f"padded at the right and bottom by repeating the edge pixels to sides that are multiples of {multiple} "
              f"(at least {smallest}), the outputs cropped back")
    labels = config.get("input_classes") is not None
    how = "nearest pixel, before the one-hot encoding" if labels else "bicubic, antialiased"
    if resize == "square":
        done = f"each {'mask' if labels else 'image'} resized to {crop}x{crop} ({how})"
    elif resize == "short-side":
        done = (f"the shorter side resized to {crop} and the longer to {crop} times their ratio, rounded down ({how}), "
                f"then {padded}")
    else:
        done = f"no resize: {padded} to each image's size"
    if labels:
        return done
    return (f"{done}; an image is resized in its file's own channels, mapped to [-1, 1], then converted to the model's: "
            "RGB to gray as 0.299 R + 0.587 G + 0.114 B (unrounded), gray to RGB repeated, alpha dropped, or added as 1")


def _exported(translation: Translation, batch: torch.Tensor, model: TrainedModel) -> Any:
    """The ONNX ModelProto of ``translation`` traced on ``batch``, with a free batch size, height and width."""
    free = {axis: torch.export.Dim.AUTO for axis in (0, 2, 3)}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.filterwarnings("ignore", message="Exporting a model while it is in training mode")  # the paper's test mode
            program = torch.onnx.export(translation, (batch,), dynamo=True, input_names=[input_name(model)], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=(free,), verbose=False)
    except Exception as error:  # torch.export and the ONNX translation raise many kinds; the model is what failed
        parts = ", ".join(f"{kind} '{name}'" for kind, name in model.system.network_parts.values())
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise GantkError(f"the model of {model.checkpoint} ({parts}) could not be exported to ONNX: {first_line}") from error
    proto = program.model_proto
    for node in (*proto.graph.node, *(node for function in proto.functions for node in function.node)):
        del node.metadata_props[:]  # the exporter's trace of each node: source lines and paths of this machine
    inputs = proto.graph.input[0].type.tensor_type.shape.dim
    names = {inputs[axis].dim_param: name for axis, name in zip((0, 2, 3), AXES) if inputs[axis].dim_param}  # free axes
    if names:  # in the outputs too, whose sizes are expressions of them ("2*((height//2))")
        symbol = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        for value in (*proto.graph.input, *proto.graph.output):
            for dim in value.type.tensor_type.shape.dim:
                if dim.dim_param:
                    dim.dim_param = symbol.sub(lambda match: names[match.group(1)], dim.dim_param)
    return proto


def _checked(data: bytes, translation: Translation, batch: torch.Tensor, out: Path, name: str) -> float | None:
    """The largest difference between onnxruntime's outputs for ``batch`` and the model's; ``None``
    where the model is random (test-time dropout). Raises when it is above ``TOLERANCE``."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    ran = torch.from_numpy(session.run(None, {name: batch.numpy()})[0])
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(0)
        expected = translation(batch)
        torch.manual_seed(1)
        random = not torch.equal(expected, translation(batch))
    if ran.shape != expected.shape:
        raise GantkError(f"the ONNX graph gives outputs of shape {tuple(ran.shape)} where the model gives "
                         f"{tuple(expected.shape)}; {out} is not written.")
    if random:
        if np.array_equal(ran.numpy(), session.run(None, {name: batch.numpy()})[0]):
            raise GantkError(
                f"the model draws test-time noise (dropout) that the ONNX graph does not: onnxruntime gives the same "
                f"outputs twice, so some dropout was exported as a node its optimisations remove; export with --eval-mode "
                f"(no dropout). {out} is not written."
            )
        return None
    difference = float((ran - expected).abs().max())
    if not difference <= TOLERANCE:
        raise GantkError(f"onnxruntime's outputs differ from the model's by up to {difference:.3g} (more than {TOLERANCE:g}) "
                         f"on a check batch; {out} is not written.")
    return difference


def model_metadata(model: TrainedModel, direction: str, eval_mode: bool) -> dict[str, str]:
    """The ``gantk.*`` metadata of the exported file: where it comes from and how to feed and read it."""
    config, channels = model.config, model.config["channels"]
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    num_classes, ignore_label = model.num_classes, config.get("ignore_label")
    data_source, data_target = (source, target) if config["direction"] == "AtoB" else (target, source)
    if num_classes is None:
        output = f"N x {channels[target]} x H x W images in [-1, 1] (pixels = (outputs + 1) * 127.5)"
    elif num_classes == 2:
        written = "2, the mask value of class 1" if ignore_label == 0 else "255"
        output = f"N x 1 x H x W probabilities of the object (sigmoid); class 1 where above 0.5 (gantk translate writes it as {written})"
    else:
        output = f"N x {num_classes} x H x W class probabilities (softmax); a pixel's class is the argmax over channels"
    metadata = {
        "gantk.version": __version__,
        "gantk.checkpoint": Path(model.checkpoint).name,
        "gantk.step": str(model.step),
        "gantk.recipe": str(config.get("recipe", "")),
        "gantk.direction": direction,
        "gantk.maps": ("the training data's label masks to its images" if model.input_classes else
                       f"the training data's {data_source} images to its {data_target} {'masks' if num_classes else 'images'}"),
        "gantk.mode": mode_text(model, eval_mode),
        "gantk.input": (f"{input_text(model, channels[source])}; H and W multiples of "
                        f"{model.size_multiple}, at least {model.least_side}"),
        "gantk.output": output,
        "gantk.preprocess": preprocessing(config, model.size_multiple, model.least_side),
        "gantk.size_multiple": str(model.size_multiple),
        "gantk.min_size": str(model.least_side),
        "gantk.input_channels": str(model.input_classes or channels[source]),
        "gantk.crop_size": str(config.get("crop_size")),
        "gantk.resize": str(config["resize"]),
        "gantk.weights": ("the last weights" if model.average_decay is None
                          else f"an exponential moving average of the weights (decay {model.average_decay})"),
    }
    if num_classes is not None:
        metadata["gantk.num_classes"] = str(num_classes)
    if model.input_classes is not None:
        metadata["gantk.input_classes"] = str(model.input_classes)
    if (num_classes or model.input_classes) is not None and ignore_label is not None:
        metadata["gantk.ignore_label"] = str(ignore_label)
    if num_classes is not None and ignore_label == 0:
        metadata["gantk.output"] += "; class k is the mask value k + 1 (the value 0 was ignored in training)"
    return metadata
