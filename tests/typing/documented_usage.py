"""What a user's code does with gantk, as the docs show it: type-checked by tests/test_typing.py, never run."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from pathlib import Path, PurePath

import numpy as np
import torch
from PIL import Image
from torch import Tensor

import gantk
from gantk.ablate import load_grid, run_ablation
from gantk.data import DataFormat, PairedTransform, open_dataset, read_image, read_mask, write_png
from gantk.data.datasets import GanDataset, PairedDataset
from gantk.data.io import mask_image, probe, write_mask
from gantk.data.layout import (channels_by_side, decode_or_note, pick_split, raise_if_problems, size_mismatch_problem,
                               size_text)
from gantk.evaluate import evaluate
from gantk.inference import TrainedModel
from gantk.objectives.base import LossContext, Objective
from gantk.recipes.base import Recipe
from gantk.registry import PluginRegistry
from gantk.train import StopTraining, TrainConfig, Trainer
from gantk.translate import translate

RUNS = Path("runs")


def stop_early(trainer: Trainer, step: int, logged: dict[str, float]) -> bool:
    trainer.trained_system.networks["G"].eval()
    if step == 4:
        raise StopTraining
    return False  # a callback's result is not read


def train() -> Path:
    config = TrainConfig(out=RUNS / "python", data=Path("pairs"), init_from=RUNS / "first", max_steps=3, crop_size=32)
    Trainer(config, callbacks=[stop_early], progress=False).fit()
    return Trainer.resume(RUNS / "python", {"max_steps": 6}, callbacks=[stop_early], progress=False).fit()


def generator() -> torch.nn.Module:
    return gantk.create("generator", "unet", in_channels=1, out_channels=3, num_downs=7)


def l1() -> Objective:
    return gantk.create("objective", "l1")


def paired() -> DataFormat:
    return gantk.create("data-format", "paired")


def cyclegan() -> Recipe:
    return gantk.create("recipe", "cyclegan")


COMPONENTS = gantk.load_components(plugins=[])  # with plugins loaded in-process, built as gantk.create builds


def network_of_components() -> torch.nn.Module:
    return COMPONENTS.create("discriminator", "patch70")


def objective_of_components() -> Objective:
    return COMPONENTS.create("objectives", "l1")


def data_format_of_components() -> DataFormat:
    return COMPONENTS.create("data_format", "paired")


def recipe_of_components() -> Recipe:
    return COMPONENTS.create("recipes", "pix2pix")


def infer(run: Path) -> list[Image.Image]:
    model = TrainedModel.load(run, eval_mode=True)
    photos = [Image.open(path) for path in sorted(Path("edges").iterdir())]
    batch: Tensor = model.translate(model.inputs(photos), pad=True)
    model.translate(model.inputs(tuple(photos)), pad=True)
    model.inputs(np.zeros((32, 32, 3), dtype=np.uint8))
    written: list[Path] = [write_png(batch[0], "one.png")]
    with model.seeded(0, input_file=written[0]):
        return [model.translate_image(photo, size="original") for photo in photos]


def files(folder: str) -> list[Tensor]:
    images = [read_image(entry) for entry in os.scandir(folder)]  # os.DirEntry: a path-like
    write_mask(read_mask(Path(folder) / "mask.png"), 2, Path("out.png"))
    write_mask(read_mask(Path(folder) / "mask.png"), 2, PurePath("pure.png"))  # any os.PathLike names a file
    TrainedModel.load(next(os.scandir(RUNS)))  # a run directory's os.DirEntry
    mask_image(torch.zeros(4, 4, dtype=torch.long), 3).save("mask.png")
    return images


def score(run: Path) -> float:
    cache: dict[tuple[object, ...], Tensor] = {}
    translate(run, Path("edges"), Path("translated"))
    result = evaluate(run, Path("pairs"), feature_cache=cache, outputs_dir=Path("outputs"))
    run_ablation(load_grid("table1"), Path("pairs"), Path("study"), log=sys.stderr.write)
    return float(result["metrics"]["l1"])


class TotalVariation(Objective):
    def generator_loss(self, ctx: LossContext) -> Tensor | None:
        fake: Tensor = ctx.fake
        difference = (ctx.fake - ctx.real).abs().mean() + ctx.target.float().mean() + ctx.fake_logits.mean()
        return (fake[..., 1:, :] - fake[..., :-1, :]).abs().mean() + difference


class Sides(DataFormat):
    def detect(self, root: Path) -> bool:
        return (root / "sides").is_dir()

    def splits(self, root: Path) -> list[str]:
        return ["train"]

    def validate(self, root: Path, splits: object = None) -> list[str]:
        problems: list[str] = []
        image = decode_or_note(read_image, root / "a.png", root, problems)
        if image is not None:
            problems.append(size_text(image))
        info = decode_or_note(probe, root / "b.png", root, problems)  # any reader: what it gives, or None
        if info is not None and info.width % 2:
            problems.append(f"{root / 'b.png'}: an odd width")
        return problems

    def open(self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
             crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
             resize: str = "square") -> GanDataset:
        return open_dataset(root, format="paired", split=split)


# docs/writing-a-plugin.md's data format
class SuffixedPairs(DataFormat):
    """Pairs as NAME_in.png and NAME_out.png in root/train/, root/test/..."""

    paired_targets = "images"

    def detect(self, root: Path) -> bool:
        return bool(self.splits(root))

    def splits(self, root: Path) -> list[str]:
        folders = root.iterdir() if root.is_dir() else []
        return sorted(folder.name for folder in folders if folder.is_dir() and any(folder.glob("*_in.png")))

    def validate(self, root: Path, splits: Collection[str] | None = None) -> list[str]:
        problems = [] if self.splits(root) else [f"{root}: no split folder (train/, test/...) holds NAME_in.png files."]
        for split in self.checked_splits(root, splits):
            for a, b in pairs_in(root / split, problems):
                first, second = (decode_or_note(read_image, path, root, problems) for path in (a, b))  # one that fails, named
                if first is not None and second is not None and first.shape[-2:] != second.shape[-2:]:
                    problems.append(size_mismatch_problem(str(a), size_text(first), str(b), size_text(second)))
        return problems

    def open(self, root: Path, *, split: str = "train", direction: str = "AtoB", load_size: int | None = 286,
             crop_size: int | None = 256, augment: bool = True, flip: bool = True, normalize: bool = True,
             resize: str = "square") -> PairedDataset:
        problems: list[str] = []
        pairs = pairs_in(root / pick_split(root, split, self.splits(root), self.name), problems)
        raise_if_problems(problems, root, self.name)
        if direction == "BtoA":
            pairs = [(b, a) for a, b in pairs]
        channels = channels_by_side({"A": [a for a, _ in pairs], "B": [b for _, b in pairs]})  # 1 where all are gray
        return PairedDataset(pairs, channels, PairedTransform(load_size, crop_size, augment, flip, normalize, resize))


def pairs_in(folder: Path, problems: list[str]) -> list[tuple[Path, Path]]:
    """The pairs of ``folder``, listed without decoding; an input without its partner is added to ``problems``."""
    pairs = [(path, path.with_name(path.name.removesuffix("_in.png") + "_out.png")) for path in sorted(folder.glob("*_in.png"))]
    problems += [f"{a}: no {b.name} beside it; add it, or remove {a.name}." for a, b in pairs if not b.is_file()]
    return [(a, b) for a, b in pairs if b.is_file()]


@gantk.hookimpl
def gantk_register_objectives(registry: PluginRegistry) -> None:
    registry.add("tv", TotalVariation)


loader = torch.utils.data.DataLoader(open_dataset(Path("pairs")), batch_size=2)
