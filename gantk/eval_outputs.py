"""The files ``gantk eval --outputs`` writes: each output scored, named after its input as ``gantk translate`` names it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .data.datasets import UnpairedSplit
from .errors import DataError, OptionError
from .files import first_names
from .inference import TrainedModel
from .translate import output_names, write_translation


def check_outputs_dir(outputs_dir: str | Path, data: str | Path, report_dir: str | Path | None, overwrite: bool) -> None:
    """Raise, before anything is scored, for an ``outputs_dir`` that is the working folder (``"."``), a file, in the dataset ``data`` (as
    written or with links followed), ``report_dir`` or, without ``overwrite``, a folder that holds anything."""
    if str(outputs_dir) == ".":
        raise OptionError(f"outputs_dir (--outputs) is {str(outputs_dir)!r}: name a folder of its own to write the outputs into.")
    directory = Path(outputs_dir)
    if directory.is_file():
        raise OptionError(f"outputs_dir (--outputs) {directory} is a file; give a folder, into which each output is written "
                          "as a PNG named after its input.")
    root, resolved = Path(data).expanduser(), directory.resolve()
    if root.is_dir() and any(inside == folder or folder in inside.parents for inside, folder in (
            (Path(os.path.abspath(directory)), Path(os.path.abspath(root))), (resolved, root.resolve()))):
        raise OptionError(f"outputs_dir (--outputs) {directory} lies in the dataset {data}, whose files the outputs would "
                          "join (or replace): give a folder outside it.")
    if report_dir is not None and Path(report_dir).resolve() == resolved:
        raise OptionError(f"outputs_dir (--outputs) and report_dir (--report) both name {directory}: give each its own folder.")
    held = sorted(path.name for path in directory.iterdir()) if directory.is_dir() else []
    if held and not overwrite:
        raise OptionError(f"outputs_dir (--outputs) {directory} already holds {first_names(held)}; give a new or empty "
                          "folder, or pass overwrite (--overwrite) to replace the files the outputs are named as.")


def refuse_clashes(directory: str | Path, dataset: Any, source: str) -> None:
    """Refuse, before anything is written, an ``outputs_dir`` that is a folder of the dataset's files (a split folder
    linked from elsewhere), and two inputs whose outputs take one name; for a format that lists its files (``files``,
    as gantk's datasets list them: ``A``, ``B`` or ``A|B``)."""
    unpaired = isinstance(dataset, UnpairedSplit)
    folders = {Path(path).resolve().parent: path for side in (dataset.sides.values() if unpaired else [dataset])
               for paths in _listed(side).values() for path in paths}
    if (held := folders.get(Path(directory).resolve())) is not None:
        raise DataError(f"outputs_dir (--outputs) {directory} is the folder of {held}, a file of the dataset evaluated, which "
                        "the outputs would join (or replace): give a folder outside the dataset's folders.")
    files = _listed(dataset.sides[source] if unpaired else dataset)
    named: dict[Path, Path] = {}
    for path in next((files[key] for key in (("A",) if unpaired else (source, "A|B")) if key in files), []):
        if (other := named.setdefault(output_name(path, directory), path)) != path:
            raise shared_name(other, path, directory)


class OutputWriter:
    """Writes each output into ``directory`` as ``gantk translate`` does (a PNG named after its input file; class ids
    for a mask model), refusing two inputs of one name and outputs beside their inputs (for a format that lists no files,
    which :func:`refuse_clashes` cannot check before)."""

    def __init__(self, model: TrainedModel, directory: str | Path, direction: str):
        self.model, self.directory, self.direction = model, Path(directory), direction
        self.resolved = self.directory.resolve()  # compared with each input's folder
        self.written: dict[Path, str] = {}  # each file written: the input it was named after

    def write(self, input_files: list[str], outputs: torch.Tensor) -> None:
        """Write ``outputs``, the model's outputs (images, or class scores) for ``input_files`` in order."""
        for path, output in zip(input_files, outputs):
            name = output_name(path, self.directory)
            if self.resolved == Path(path).resolve().parent:
                raise DataError(f"outputs_dir (--outputs) {self.directory} is the folder of the input {path}, which the "
                                "outputs would join (or replace): give a folder outside the dataset's folders.")
            if self.written.get(name, path) != path:
                raise shared_name(self.written[name], path, self.directory)
            write_translation(self.model, Path(path), None, output[None], self.directory, direction=self.direction,
                              overlay=False, original_size=False)
            self.written[name] = path


def output_name(input_file: str | Path, directory: str | Path) -> Path:
    """The file an input's output is written to."""
    return output_names(Path(input_file), Path(directory), overlay=False)[0]


def shared_name(first: str | Path, second: str | Path, directory: str | Path) -> DataError:
    """The error for two inputs whose outputs take one name."""
    return DataError(f"{first} and {second} would both be written to {output_name(second, directory)} (--outputs names "
                     "each output after its input): rename one of them, or evaluate without --outputs.")


def _listed(dataset: Any) -> dict[str, list[Path]]:
    """The files a dataset lists for each side; none where it lists none."""
    files = getattr(dataset, "files", None)
    return files if isinstance(files, dict) else {}
