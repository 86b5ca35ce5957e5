"""Benchmark cases: a recipe at a size and batch, its synthetic batches, and its two ways of training.

A case is run either through gantk's trainer (``TrainerStep`` with ``TrainConfig`` flags) or by the
plain eager reference loop, which is handed the very networks the trainer builds (same code, same
seed, same weights).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import torch

from gantk.host_memory import keep_freed_memory
from gantk.train import TrainConfig
from reference_cyclegan import CycleGANStep
from reference_pix2pix import Pix2PixStep, SegmentationStep
from trainer_step import TrainerStep, build_system, data_info

# Plain eager reference loops in fp32: path -> Adam's ``fused`` argument (None: PyTorch's default, which is
# the single-tensor for-loop on the CPU and foreach on CUDA)
# and whether freed host memory is kept as gantk's trainer keeps it (gantk.host_memory; CPU only).
# ``eager-twin`` is ``eager`` again in its own process: its ratio to ``eager`` shows the run's noise.
EAGER_PATHS = {
    "eager": {"fused": None, "keep_memory": False},
    "eager-twin": {"fused": None, "keep_memory": False},
    "eager-fused": {"fused": True, "keep_memory": False},
    "eager-kept-memory": {"fused": None, "keep_memory": True},
}
# gantk through its trainer: path -> the TrainConfig flags (None for the eager paths).
PATHS: dict[str, dict[str, Any] | None] = {
    **dict.fromkeys(EAGER_PATHS),
    "gantk": {},
    "gantk-cl": {"channels_last": True},
    "gantk-bf16": {"precision": "bf16"},
    "gantk-bf16-cl": {"precision": "bf16", "channels_last": True},
    "gantk-compile": {"compile": True},
    "gantk-bf16-cl-compile": {"precision": "bf16", "channels_last": True, "compile": True},
    "gantk-cudagraphs": {"compile": True, "compile_mode": "reduce-overhead"},
    "gantk-bf16-cl-cudagraphs": {"precision": "bf16", "channels_last": True, "compile": True, "compile_mode": "reduce-overhead"},
    "gantk-graph": {"cuda_graph": True},
    "gantk-bf16-cl-graph": {"precision": "bf16", "channels_last": True, "cuda_graph": True},
    "gantk-compile-graph": {"compile": True, "cuda_graph": True},
    "gantk-bf16-cl-compile-graph": {"precision": "bf16", "channels_last": True, "compile": True, "cuda_graph": True},
}
# Paths that run only on CUDA (--cuda-graph), and paths whose CUDA graphs are recorded only on CUDA
# (--compile-mode reduce-overhead: on a CPU they are plain compiled paths).
CUDA_ONLY_PATHS = [path for path, flags in PATHS.items() if flags and flags.get("cuda_graph")]
CUDA_GRAPH_PATHS = [path for path, flags in PATHS.items() if flags and flags.get("compile_mode") == "reduce-overhead"]
RECIPES = ("pix2pix", "seg", "cyclegan")
CASE_FORM = re.compile(r"(?P<recipe>[a-z0-9]+)-(?P<size>\d+)-b(?P<batch>\d+)")


@dataclass(frozen=True)
class Case:
    """A recipe trained at ``size`` x ``size`` with ``batch`` images per step on ``device``."""

    recipe: str
    size: int
    batch: int
    device: str = "cpu"

    @property
    def name(self) -> str:
        return f"{self.recipe}-{self.size}-b{self.batch}"

    @property
    def info(self):
        if self.recipe == "seg":
            return data_info({"A": 3, "B": 2}, num_classes=2, format="segmentation")
        return data_info({"A": 3, "B": 3}, format="unaligned" if self.recipe == "cyclegan" else "paired")

    def config(self, path: str) -> TrainConfig:
        """The configuration ``gantk train --recipe R --crop-size S --batch-size B [flags of path]`` resolves from."""
        flags = PATHS[path] or {}
        return TrainConfig(recipe=self.recipe, data="<in-memory batches>", device=self.device, crop_size=self.size,
                           load_size=self.size, batch_size=self.batch, workers=0, **flags)

    def batches(self, count: int = 2, seed: int = 0) -> list[dict[str, torch.Tensor]]:
        """``count`` fixed batches: images in [-1, 1] (and binary masks of class ids for ``seg``)."""
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch, 3, self.size, self.size)
        out = []
        for _ in range(count):
            batch = {"A": torch.rand(shape, generator=generator) * 2 - 1}
            if self.recipe == "seg":
                batch["B"] = (torch.rand(shape[:1] + shape[2:], generator=generator) < 0.3).long()
            else:
                batch["B"] = torch.rand(shape, generator=generator) * 2 - 1
            out.append(batch)
        return out

    def stepper(self, path: str) -> Callable[[dict[str, torch.Tensor]], Any]:
        """A function running one training step of this case on a batch."""
        if path not in EAGER_PATHS:
            return TrainerStep(self.config(path), self.info)
        _, system, device = build_system(self.config(path), self.info)
        system.train()
        nets, fused = system.networks, EAGER_PATHS[path]["fused"]
        if EAGER_PATHS[path]["keep_memory"]:
            keep_freed_memory(device)
        if self.recipe == "cyclegan":
            reference = CycleGANStep(nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"], fused=fused)
        else:
            reference = (SegmentationStep if self.recipe == "seg" else Pix2PixStep)(nets["G"], nets["D"], fused=fused)
        return lambda batch: reference(batch["A"].to(device), batch["B"].to(device))


def parse_case(text: str, device: str = "cpu") -> Case:
    """``pix2pix-256-b16`` -> ``Case("pix2pix", 256, 16, device)``; a ValueError that names the expected form otherwise."""
    match = CASE_FORM.fullmatch(text.strip())
    if not match or match["recipe"] not in RECIPES or int(match["size"]) < 1 or int(match["batch"]) < 1:
        raise ValueError(f"{text!r} is not a case: expected RECIPE-SIZE-bBATCH, such as pix2pix-256-b16, "
                         f"with RECIPE one of {', '.join(RECIPES)} and SIZE and BATCH positive whole numbers")
    return Case(match["recipe"], int(match["size"]), int(match["batch"]), device)
