"""A trained model ready to run on images: rebuilt from a checkpoint, in the paper's test mode or eval mode."""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.mask_values import checked_ids
from .data.io import image_from_pil, mask_image, pil_image, write_mask
from .data.transforms import PairedTransform, match_channels, normalize_image, tv_tensors
from .errors import DataError, GantkWarning, OptionError, caller_stacklevel
from .nn import buffers_kept, check_choice, one_value_per_channel, paper_test_mode, padded_to_fit, round_up, size_rules
from .plugins import Components
from .systems import targets
from .systems.base import System
from .tiling import checked_tile_overlap, translated_in_tiles
from .train.checkpoint import system_from_checkpoint
from .train.config import CHOICES, check_seed
from .train.distributed import resolve_device

__all__ = ["TrainedModel"]

FLOAT_INPUTS = (torch.float32, torch.bfloat16, torch.float16)  # what translate takes: model.inputs gives float32
TRANSLATE_SIZES = ("crop", "original", "native")  # where gantk translate runs a model, and what it writes


@dataclass
class TrainedModel:
    """A checkpoint's system on a device, the settings that rebuild it (``config``: the recipe, parts and
    their options, channels, sizes and classes; the run's other settings, such as ``lr``, are its
    ``config.toml``), and the checkpoint file and training step it comes from.

    By default the networks run as in the paper's test phase: dropout active and batch
    normalisation using the statistics of the test batch (``train()`` mode; :meth:`translate` leaves
    the running statistics as loaded; spectral normalisation keeps its trained estimates).
    ``eval_mode`` uses running statistics and no dropout instead, which is deterministic. Where the run
    kept an average of its generators' weights (``--ema-decay``), the average translates unless loaded
    with ``average=False``.
    """

    system: System = field(repr=False)  # the networks' repr runs to pages
    config: dict[str, Any] = field(repr=False)
    device: torch.device
    checkpoint: str
    step: int
    trained_on: str | None = None  # the data the model trained on, where its checkpoint records it
    part_plugins: dict[str, Any] = field(default_factory=dict, repr=False)  # each part's plugin and package, as recorded
    selected_by: dict[str, Any] | None = None  # a best.pt's validation score that kept it: {"score", "value", "split"}

    @classmethod
    def load(cls, checkpoint: str | os.PathLike[str], *, device: str | torch.device = "auto", eval_mode: bool = False, average: bool = True,
             components: Components | None = None) -> "TrainedModel":
        """The model of ``checkpoint`` (a file or a run directory, for its newest checkpoint); ``average=False``
        translates with the generators' last weights where the run also kept an average of them."""
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise OptionError(f"checkpoint must be the path of a checkpoint file or run directory, got {checkpoint!r}.")
        for name, value in (("eval_mode", eval_mode), ("average", average)):
            if not isinstance(value, bool):
                raise OptionError(f"{name} is True or False, got {value!r}.")
        device_ = resolve_device(device)
        system, payload = system_from_checkpoint(checkpoint, map_location=device_, components=components, to_translate=True)
        if not average and hasattr(system, "averaged"):
            del system.averaged  # translating() then gives the networks themselves
        system.to(device_)
        if eval_mode:
            system.eval()
        else:
            paper_test_mode(system)
        best = payload.get("best")
        selected_by = best if isinstance(best, dict) and isinstance(best.get("score"), str) else None
        return cls(system, payload["system"], device_, payload["path"], int(payload["step"]),
                   payload.get("train_config", {}).get("data"), payload["part_plugins"], selected_by)

    @property
    def average_decay(self) -> float | None:
        """The decay of the average of the generators' weights that translates; ``None`` for their last weights."""
        return self.system.average_decay if hasattr(self.system, "averaged") else None

    @property
    def num_classes(self) -> int | None:
        """Classes of a mask model; ``None`` for an image model."""
        return self.config.get("num_classes")

    @property
    def input_classes(self) -> int | None:
        """Classes of the label maps a labels-to-image model takes; ``None`` for a model of images."""
        return self.config.get("input_classes")

    def inputs(self, images: torch.Tensor | Image.Image | Sequence[Image.Image] | np.ndarray, direction: str = "AtoB", *,
               from_dataset: bool = False) -> torch.Tensor:
        """``images`` (``N x C x H x W``, or one ``C x H x W``, with 1, 3 or 4 channels; uint8 as
        ``gantk.data.read_image`` gives them, or float already in [-1, 1]; a PIL image or a list of PIL images of one
        size, converted as ``read_image`` converts a file; or a numpy array with its channels last, ``H x W``,
        ``H x W x C`` or ``N x H x W x C``, RGB as PIL and imageio give it) normalised on the model's device, with the channels its generator
        for ``direction`` takes. A labels-to-image model (:attr:`input_classes`) takes class ids instead
        (integers ``N x H x W``, or one ``H x W``, as a tensor or numpy array; -1 for pixels of no class, as its datasets
        give them) and
        gets them one channel per class (:meth:`class_ids` maps a mask's values to them). ``from_dataset``: the
        images come from a gantk dataset (in [-1, 1] already), so float values all of at least 0 are not warned of.

        Raises:
            DataError: another shape or dtype, a 32-bit PIL image, or float values outside [-1, 1] (such as 0..255);
                for a labels-to-image model, ids outside -1 and its classes.

        Warns:
            GantkWarning: float values all of at least 0, as [0, 1] images have (a [-1, 1] image has them only
                where every pixel is at least mid-grey).
        """
        channels = self.input_channels(direction)
        if self.input_classes is not None:
            return self._label_inputs(images)
        images = _with_pixels(_as_tensor(images))
        shape = tuple(images.shape)
        images = images[None] if images.dim() == 3 else images
        if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
            raise DataError(
                f"images must be N x C x H x W (or one C x H x W) with 1, 3 or 4 channels, got a tensor of shape {shape}"
                + (": channels last? permute them to the front." if shape and shape[-1] in (1, 3, 4) else ".")
            )
        if images.dtype == torch.uint8:
            images = normalize_image(images)
        elif images.is_floating_point():
            images = images.float()
            if not bool(images.isfinite().all()):
                raise DataError("float images hold NaN or infinite values: pass finite values in [-1, 1].")
            low, high = (images.min().item(), images.max().item()) if images.numel() else (0.0, 0.0)
            if low < -1 - 1e-3 or high > 1 + 1e-3:
                raise DataError(
                    f"float images must be in [-1, 1], got values from {low:g} to {high:g}: pass uint8 pixels, "
                    "or map them with gantk.data.transforms.normalize_image."
                )
            if low >= 0 and images.numel() and not from_dataset:
                warnings.warn(f"float images take values in [-1, 1], and these are all in [{low:g}, {high:g}]: if they are in [0, 1] "
                              "(as torchvision's to_tensor gives them), map them with images * 2 - 1, or pass uint8 pixels.",
                              GantkWarning, stacklevel=caller_stacklevel())
        else:
            wide = (": pass their top 8 bits, as read_image reads a 16-bit file: (pixels >> 8).astype(np.uint8) of a numpy "
                    "array, (pixels.int() >> 8).to(torch.uint8) of a tensor" if images.dtype == torch.uint16 else "")
            raise DataError(f"images must be uint8 pixels or floats in [-1, 1], got {images.dtype}{wide}.")
        return match_channels(images.to(self.device), channels)

    def predicted_ids(self, outputs: torch.Tensor) -> torch.Tensor:
        """The class ids ``N x H x W`` (0..K-1) a mask model predicts in ``outputs`` (of :meth:`translate`: class
        probabilities, one channel per class, or for two classes the foreground's alone); :meth:`write_mask`
        writes them as ``gantk translate`` does.

        Raises:
            OptionError: the model translates to images, not masks.
        """
        if self.num_classes is None:
            raise OptionError(f"{self.checkpoint} translates to images, not masks: its outputs have no class ids.")
        return targets.predicted_ids(outputs)

    def write_mask(self, ids: torch.Tensor, path: str | Path) -> Path:
        """Write a mask model's class ids ``H x W`` (of :meth:`predicted_ids`) as ``gantk translate`` writes them: a
        binary model's as 0/255, a model's trained with the ignore label 0 as the values 1..K, up to 255 classes as a
        palette PNG whose indices are the ids, more as 16-bit ids; returns the path.

        Raises:
            OptionError: the model translates to images, not masks.
        """
        if self.num_classes is None:
            raise OptionError(f"{self.checkpoint} translates to images, not masks: write its outputs with gantk.data.write_png.")
        return write_mask(ids, self.num_classes, path, self.config.get("ignore_label"))

    def class_ids(self, mask: torch.Tensor | np.ndarray | Image.Image) -> torch.Tensor:
        """The class ids (what :meth:`inputs` takes) of a label model's input ``mask``, its values as
        ``gantk.data.read_mask`` reads a file (or a numpy array or PIL image of them, such as
        ``np.asarray(Image.open(path))``), mapped as the model's training masks were: 0/255 binary masks to
        0/1, its ignore label to -1, the values 1..K to 0..K-1 where 0 was ignored.

        Raises:
            OptionError: the model takes images, not label maps.
            DataError: a mask value outside the model's classes.
        """
        if self.input_classes is None:
            raise OptionError(f"{self.checkpoint} translates images, not label maps: pass images to inputs().")
        ids = _as_ids(mask)
        if not _integers(ids):
            raise DataError(f"a mask holds integer values, as gantk.data.read_mask reads a file, got {_described(mask)}.")
        return checked_ids(ids.long(), "mask", self.input_classes, self.config.get("ignore_label"), "the model")

    def _label_inputs(self, ids: Any) -> torch.Tensor:
        """Class ids as the one-hot label maps the generator takes (see :meth:`inputs`)."""
        classes, given = self.input_classes, ids
        ids = _as_ids(ids)
        if not (_integers(ids) and ids.dim() in (2, 3)):
            raise DataError(f"{self.checkpoint} translates label maps: pass class ids as an integer N x H x W tensor (or one "
                            f"H x W), as gantk.data.open_dataset gives a mask's ids, got {_described(given)}.")
        ids = _with_pixels(ids[None] if ids.dim() == 2 else ids).long()
        if ids.numel() and (int(ids.min()) < -1 or int(ids.max()) >= classes):
            raise DataError(f"class ids must be from 0 to {classes - 1} (or -1 for pixels of no class), got values from "
                            f"{int(ids.min())} to {int(ids.max())}: model.class_ids(mask) maps a mask's values to them.")
        return self.system.encoded_inputs(ids.to(self.device))

    def input_channels(self, direction: str = "AtoB") -> int:
        """The channels the generator for ``direction`` takes; a direction the model does not translate is an error."""
        check_choice("direction", direction, CHOICES["direction"])
        self.system.check_direction(direction)
        return self.config["channels"]["A" if direction == "AtoB" else "B"]

    @property
    def generators(self) -> list[torch.nn.Module]:
        """The generator networks (their sizes bound what :meth:`translate` takes; a system may translate
        with another network of the same architecture, such as an average of a generator's weights)."""
        return self.system.generators

    @property
    def size_multiple(self) -> int:
        """What the generators need image sides to be multiples of."""
        return size_rules(self.generators)[0]

    @property
    def min_input_size(self) -> int:
        """The smallest side the generators take (a discriminator's smallest does not matter here)."""
        return size_rules(self.generators)[1]

    @property
    def least_side(self) -> int:
        """The smallest side that is also a multiple of :attr:`size_multiple`: the least the model runs on unpadded."""
        return round_up(self.min_input_size, self.size_multiple)

    @torch.no_grad()
    def translate(self, inputs: torch.Tensor, direction: str = "AtoB", *, pad: bool = False, tile: int | None = None,
                  overlap: int | None = None) -> torch.Tensor:
        """Outputs for ``inputs`` (see :meth:`inputs`): images in [-1, 1], or class probabilities for masks.
        bfloat16 or float16 inputs run in that precision under ``torch.autocast``, and as float32 outside it.

        With ``pad``, inputs of any size are padded (repeating their edges) to the generators'
        :attr:`size_multiple`, and to at least their :attr:`min_input_size`, and the outputs cropped
        back to the inputs' size.

        With ``tile``, the generators run on square tiles of that side (a size they take), neighbours sharing
        ``overlap`` pixels (default a quarter of the tile) where their outputs are blended (see
        :mod:`gantk.tiling`): memory then grows with the tile, not the image. A side shorter than the tile is
        padded as with ``pad``. Tiles see less of the image than the whole would, in the paper's test mode
        batch normalisation uses each tile's own statistics, and instance normalisation does in either mode, so
        their outputs differ from an untiled run's.

        Raises:
            DataError: inputs unlike those :meth:`inputs` gives (another dtype, shape or number of channels);
                without ``pad`` or ``tile``, inputs of a size the generators do not take.
            OptionError: a tile the generators do not take, or an overlap not from 0 to half the tile.
        """
        channels = self.input_channels(direction)
        if not (isinstance(inputs, torch.Tensor) and inputs.dim() == 4 and inputs.dtype in FLOAT_INPUTS and inputs.shape[1] == channels):
            got = f"a {inputs.dtype} tensor of shape {tuple(inputs.shape)}" if isinstance(inputs, torch.Tensor) else f"a {type(inputs).__name__}"
            taken, given = (("label maps, one 0/1 channel per class,", "class ids") if self.input_classes is not None
                            else ("inputs in [-1, 1]", "images"))
            raise DataError(f"translate takes float N x {channels} x H x W {taken} (float32, bfloat16 or float16), got {got}: "
                            f"pass the {given} through model.inputs({given.replace(' ', '_')}, direction={direction!r}) first.")
        inputs = inputs.to(self.device)
        if not torch.is_autocast_enabled(self.device.type):
            inputs = inputs.float()  # the weights are float32
        height, width = inputs.shape[-2:]
        multiple, smallest = self.size_multiple, self.min_input_size
        overlap = checked_tile_overlap(tile, overlap, multiple, smallest)
        if tile is not None:
            return translated_in_tiles(lambda part: self.translate(part, direction, pad=True), inputs, tile, overlap)
        if not pad and (height % multiple or width % multiple or min(height, width) < smallest):
            raise DataError(
                f"the model takes sides that are multiples of {multiple} and at least {self.least_side} px, got "
                f"{width}x{height}: "
                "translate with pad=True (padded, and the outputs cropped back), or resize the images."
            )
        if pad:
            inputs = padded_to_fit(inputs, multiple, smallest)
        kept = self.buffers_kept() if self.system.training else contextlib.nullcontext()  # batch statistics: left as loaded
        with kept, one_value_per_channel("translate a batch of 2 or more images, or use eval mode (running statistics)"):
            outputs = self.system.translate(inputs, direction=direction)
        return outputs[..., :height, :width] if pad else outputs

    def translate_image(self, image: torch.Tensor | Image.Image | np.ndarray, direction: str = "AtoB", *, size: str = "crop",
                        tile: int | None = None, overlap: int | None = None) -> Image.Image:
        """One image translated as ``gantk translate`` translates a file, as the PIL image it writes: an image of the
        model's channels (mode L, LA, RGB or RGBA), or a mask model's class ids as :meth:`write_mask` writes them.

        ``image`` is one image of pixels: a PIL image, a uint8 ``C x H x W`` tensor (as ``gantk.data.read_image``
        gives it) or a numpy array with its channels last; for a labels-to-image model, a mask as :meth:`class_ids`
        takes it. ``size``, ``tile`` and ``overlap`` are translate's: ``"crop"`` runs the model on the image resized
        as its training images were and returns that size, ``"original"`` resizes the output back to the image's
        size, and ``"native"`` runs the model at the image's own size. Dropout noise comes from PyTorch's random
        state; in ``with model.seeded(seed, input_file=name):`` it is the noise ``gantk translate --seed SEED``
        draws for a file of that name.

        Raises:
            DataError: not one image of pixels (a batch, float values), or what :meth:`inputs` refuses.
            OptionError: a ``size`` that is none of those, or a tile :meth:`translate` refuses.
        """
        check_choice("size", size, TRANSLATE_SIZES)
        self.input_channels(direction)  # a direction the model translates
        if self.input_classes is not None:
            read = tv_tensors.Mask(_one_mask(self.class_ids(image), image)[None])
        else:
            read = tv_tensors.Image(_one_image(image))
        height, width = read.shape[-2:]
        sizes = (None, None) if size == "native" else (self.config.get("load_size"), self.config.get("crop_size"))
        resized = PairedTransform(*sizes, augment=False, resize=self.config["resize"])({"A": read}, torch.Generator())["A"]
        outputs = self.translate(self.inputs(resized[None], direction, from_dataset=True), direction, pad=True, tile=tile,
                                 overlap=overlap)
        if size == "original":
            outputs = resized_back(outputs, height, width)
        if self.num_classes is None:
            return pil_image(outputs[0])
        return mask_image(self.predicted_ids(outputs)[0], self.num_classes, self.config.get("ignore_label"))

    def buffers_kept(self) -> contextlib.AbstractContextManager[None]:
        """Run the block, then put back the networks' buffers as they were before it (the running
        statistics that batch normalisation updates in the paper's test-time mode)."""
        return buffers_kept(self.system)

    @contextlib.contextmanager
    def seeded(self, seed: int, input_file: str | os.PathLike[str] | None = None) -> Iterator[None]:
        """Run the block with dropout noise drawn from ``seed``, leaving the caller's random state as it was. With
        ``input_file``, the noise is that input's own (see :func:`input_seed`): translate and eval draw each batch's
        so, from its first file, and an image's output then depends neither on the images before it nor on its folder.
        """
        seed = check_seed(seed) if input_file is None else input_seed(seed, input_file)
        cuda = self.device.type == "cuda"
        with torch.random.fork_rng(devices=[self.device] if cuda else []):  # the generators seeded here, and only those
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(seed)
            yield


def resized_back(outputs: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``outputs`` (images, or class probabilities) resized to ``height`` x ``width``: bilinearly, antialiased where
    they shrink."""
    return F.interpolate(outputs.float(), size=(height, width), mode="bilinear", align_corners=False, antialias=True)


NOISE_SEEDING = "per input file"  # how translate and eval draw dropout noise (see input_seed), recorded with their scores


def input_seed(seed: int, input_file: str | os.PathLike[str]) -> int:
    """The seed of the dropout noise for ``input_file`` under ``seed``, from the file's name (not its folder).

    Example:
        >>> input_seed(0, "a/x.png") == input_seed(0, "x.png") != input_seed(1, "x.png")
        True
    """
    digest = hashlib.blake2b(f"{check_seed(seed)},".encode() + os.fsencode(Path(input_file).name), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _described(values: Any) -> str:
    """What an error says was given: a tensor's or numpy array's dtype and shape, else the type."""
    if isinstance(values, torch.Tensor):
        return f"a {values.dtype} tensor of shape {tuple(values.shape)}"
    if isinstance(values, np.ndarray):
        return f"a numpy {values.dtype} array of shape {values.shape}"
    return f"a {type(values).__name__}"


def _integers(values: Any) -> bool:
    """Whether ``values`` is a tensor of integers (not floats, complex numbers or booleans)."""
    return isinstance(values, torch.Tensor) and not (values.is_floating_point() or values.is_complex() or values.dtype == torch.bool)


def test_mode_description(model: TrainedModel) -> str:
    """How the paper's test-time mode runs ``model``'s generators: with the batch statistics and dropout they have,
    or, where they have neither statistics to keep nor dropout (instance norm, say), as eval mode does."""
    modules = [m for net in model.generators for m in net.modules()]
    differs = [what for what, present in (
        ("batch statistics", any(isinstance(m, torch.nn.modules.batchnorm._NormBase) and m.track_running_stats for m in modules)),
        ("dropout", any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in modules))) if present]
    return (f"paper test-time ({', '.join(differs)})" if differs
            else "paper test-time (training mode; the generators keep no running statistics and have no dropout, so as eval)")


def _as_ids(values: Any) -> Any:
    """Mask values or class ids given as a PIL image (of one channel, as masks are saved) or numpy array, as a tensor;
    anything else as it is."""
    if isinstance(values, Image.Image):
        if values.mode not in ("1", "L", "P", "I", "I;16"):
            raise DataError(f"a mask image holds one channel of class ids (PIL mode 1, L, P, I or I;16), got mode {values.mode}: "
                            "read the file with gantk.data.read_mask, which says what it holds.")
        values = np.asarray(values.convert("L") if values.mode == "1" else values)  # 1-bit: 0/255, as read_mask reads it
    return _from_numpy(values) if isinstance(values, np.ndarray) else values


def _from_numpy(values: np.ndarray) -> torch.Tensor:
    """``values`` as a tensor, copied where numpy holds them read-only (as ``np.asarray(pil_image)`` does)."""
    array = np.ascontiguousarray(values)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _one_image(image: Any) -> torch.Tensor:
    """The image given to :meth:`TrainedModel.translate_image`, as uint8 pixels ``C x H x W``."""
    pixels = _with_pixels(_as_tensor(image))
    if pixels.dim() != 3 or pixels.dtype != torch.uint8 or pixels.shape[0] not in (1, 3, 4):
        raise DataError(f"translate_image takes one image of uint8 pixels (a PIL image, a C x H x W tensor as "
                        f"gantk.data.read_image gives it, or a numpy array with its channels last), got {_described(image)}: "
                        "for a batch, or floats in [-1, 1], use model.translate(model.inputs(images), pad=True).")
    return pixels


def _one_mask(ids: torch.Tensor, given: Any) -> torch.Tensor:
    """The class ids of the one mask given to :meth:`TrainedModel.translate_image` (``H x W``)."""
    if ids.dim() != 2:
        raise DataError(f"translate_image takes one mask (H x W), got {_described(given)}: for a batch, use "
                        "model.translate(model.inputs(ids), pad=True).")
    return ids


def _with_pixels(images: torch.Tensor) -> torch.Tensor:
    """``images``, unless they have no rows or no columns (which resizing and padding fail on with torch's errors)."""
    if images.dim() >= 2 and 0 in images.shape[-2:]:
        raise DataError(f"images must have at least one pixel a side, got {images.shape[-2]}x{images.shape[-1]} (H x W).")
    return images


def _as_tensor(images: Any) -> torch.Tensor:
    """Images given to :meth:`TrainedModel.inputs` as a tensor, channels first."""
    if isinstance(images, Image.Image):
        return image_from_pil(images)
    if isinstance(images, (list, tuple)) and images and all(isinstance(image, Image.Image) for image in images):
        converted = [image_from_pil(image) for image in images]
        if len(shapes := {tuple(image.shape) for image in converted}) > 1:
            raise DataError(f"a list of PIL images is one batch, so its images need one size and channel count, got "
                            f"{', '.join(map(str, sorted(shapes)))} (C x H x W): pass them one at a time.")
        return torch.stack(converted)
    if isinstance(images, np.ndarray):
        if images.ndim not in (2, 3, 4) or (images.ndim > 2 and images.shape[-1] not in (1, 3, 4)):
            raise DataError(f"a numpy image has its channels last (H x W, H x W x C or N x H x W x C, with 1, 3 or 4 "
                            f"channels), got shape {images.shape}: for one with its channels first, pass "
                            "torch.from_numpy(array).")
        tensor = _from_numpy(images)
        return tensor[None] if images.ndim == 2 else tensor.movedim(-1, -3)
    if isinstance(images, torch.Tensor):
        return images
    how = "read the file with gantk.data.read_image" if isinstance(images, (str, os.PathLike)) else "convert it"
    raise DataError(f"images must be a torch tensor, a numpy array or PIL image(s), got {type(images).__name__}: {how}.")


def loaded_model(checkpoint: str | Path | TrainedModel, *, device: str | torch.device | None, eval_mode: bool | None,
                 average: bool | None, components: Components | None) -> TrainedModel:
    """``checkpoint`` loaded on ``device`` (default ``"auto"``) in ``eval_mode`` (default the paper's test-time mode),
    with the ``average`` of the generators' weights where the run kept one (default), or, already loaded, as it is:
    then none of them may be given."""
    if not isinstance(checkpoint, TrainedModel):
        return TrainedModel.load(checkpoint, device=device or "auto", eval_mode=False if eval_mode is None else eval_mode,
                                 average=True if average is None else average, components=components)
    if device is not None or eval_mode is not None or average is not None:
        raise OptionError(
            "device, eval_mode and average choose how a checkpoint is loaded, and a TrainedModel is loaded already: "
            "pass them to TrainedModel.load, or pass the checkpoint's path here."
        )
    return checkpoint
