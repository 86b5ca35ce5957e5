"""The files ``gantk eval --outputs`` writes: each output scored, named after its input as ``gantk translate`` names it."""

from __future__ import annotations

from pathlib import Path

import torch

from .errors import DataError, OptionError
from .files import first_names
from .inference import TrainedModel
from .translate import output_names, write_translation


def check_outputs_dir(outputs_dir: str | Path, data: str | Path, report_dir: str | Path | None, overwrite: bool) -> None:
    """Raise, before anything is scored, for an ``outputs_dir`` that is a file, lies in the dataset ``data``, is
    ``report_dir`` or, without ``overwrite``, holds files already."""
    directory = Path(outputs_dir)
    if directory.is_file():
        raise OptionError(f"--outputs {directory} is a file; give a folder, into which each output is written as a PNG "
                          "named after its input.")
    root, resolved = Path(data).resolve(), directory.resolve()
    if root.is_dir() and (resolved == root or root in resolved.parents):
        raise OptionError(f"--outputs {directory} lies in the dataset {data}, whose files the outputs would join (or replace): "
                          "give a folder outside it.")
    if report_dir is not None and Path(report_dir).resolve() == resolved:
        raise OptionError(f"--outputs and --report both name {directory}: give each its own folder.")
    held = sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []
    if held and not overwrite:
        raise OptionError(f"--outputs {directory} already holds {len(held)} file(s) ({first_names(held)}); give a new or empty "
                          "folder, or pass --overwrite to replace those the outputs are named as.")


class OutputWriter:
    """Writes each output into ``directory`` as ``gantk translate`` does (a PNG named after its input file; class ids
    for a mask model), refusing two inputs of one name."""

    def __init__(self, model: TrainedModel, directory: str | Path, direction: str):
        self.model, self.directory, self.direction = model, Path(directory), direction
        self.written: dict[Path, str] = {}  # each file written: the input it was named after

    def write(self, input_files: list[str], outputs: torch.Tensor) -> None:
        """Write ``outputs``, the model's outputs (images, or class scores) for ``input_files`` in order."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for path, output in zip(input_files, outputs):
            name = output_names(Path(path), self.directory, overlay=False)[0]
            if self.written.get(name, path) != path:
                raise DataError(f"{self.written[name]} and {path} would both be written to {name} (--outputs names each "
                                "output after its input): rename one of them, or evaluate without --outputs.")
            write_translation(self.model, Path(path), None, output[None], self.directory, direction=self.direction,
                              overlay=False, original_size=False)
            self.written[name] = path
