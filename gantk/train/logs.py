"""Run-directory outputs: metrics CSV, sample grids and (when installed) TensorBoard events."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Iterator, Sequence, TextIO

import torch
from torch import Tensor
from torchvision.utils import save_image

from ..data.transforms import to_unit
from ..errors import GantkError, GantkWarning, caller_stacklevel
from ..files import replacing
from ..progress import ProgressBar
from ..systems.targets import displayable
from . import run_files
from .config import VALIDATION_PREFIX

# Columns of metrics.csv that are not losses; validation scores are logged as "val/<metric>".
TIMINGS = ("images_per_s", "data_wait")  # columns that differ between two runs of the same settings
NOT_LOSSES = ("step", "epoch", "lr", *TIMINGS)


class MetricsLog:
    """Appends one CSV row per logging step; on resume, rows after the resumed step are dropped, and rows
    lost before it (up to ``logged_step``, the newest row when the resumed checkpoint was written) are warned of.

    A row with a new key (a generator loss first logged after a few discriminator-only steps, say)
    adds a column, left empty in the earlier rows.
    """

    def __init__(self, path: Path, resume_step: int = 0, logged_step: int | None = None):
        self.path = path
        self.columns: list[str] | None = None
        self.last_step: int | None = None  # of the newest row
        if self.path.exists():
            try:
                with self.path.open(newline="", encoding="utf-8") as handle:
                    text = handle.read()
            except UnicodeDecodeError:
                raise GantkError(f"{path} is damaged: it is not text; delete it, then resume.") from None
            if text and not text.endswith("\n"):  # rows end with a line break: this one was being written when the run stopped
                text = text[: text.rfind("\n") + 1]
                warnings.warn(f"{path}: its last row was cut short when the run stopped; it is dropped.", GantkWarning,
                              stacklevel=caller_stacklevel())
            try:
                rows = [row for row in csv.DictReader(io.StringIO(text, newline="")) if int(row["step"]) <= resume_step]
            except (KeyError, TypeError, ValueError):  # no step column; a short or damaged row
                raise GantkError(f"{path} is damaged: a row without a step number; repair or delete that row, then resume.") from None
            self.columns = list(rows[0]) if rows else None
            self.last_step = int(rows[-1]["step"]) if rows else None
            self._rewrite(rows)
        if logged_step is not None and (self.last_step is None or self.last_step < logged_step):
            kept = f"its rows end at step {self.last_step}" if self.last_step is not None else "it has no rows"
            warnings.warn(f"{path}: {kept}, but held rows up to step {logged_step} when the checkpoint of step {resume_step} "
                          "was written (the file was deleted, replaced or cut short since); those rows are lost, and new ones "
                          "are added after what is left.", GantkWarning, stacklevel=caller_stacklevel())

    def _rewrite(self, rows: list[dict]) -> None:
        """Replace the file with ``rows`` (written beside it first, so a crash keeps the old one)."""
        with replacing(self.path) as handle:
            if self.columns:
                writer = csv.DictWriter(handle, self.columns, restval="")
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._rewrite([])
        elif new := [key for key in row if key not in self.columns]:
            with self.path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            self.columns += new
            self._rewrite(rows)
        with self._appending() as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore", restval="").writerow(row)
        self.last_step = int(row["step"])

    def sync(self) -> None:
        """Sync the file's rows to disk."""
        if self.columns is not None:
            with self._appending() as handle:
                os.fsync(handle.fileno())

    @contextlib.contextmanager
    def _appending(self) -> Iterator[TextIO]:
        """The file opened to append to; its errors name it (a full or failing disk's name no file)."""
        try:
            with self.path.open("a", newline="", encoding="utf-8") as handle:
                yield handle
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) if error.filename is None else error from None


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a run's metrics CSV as numbers (empty cells skipped)."""
    rows = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        try:
            if reader.fieldnames is not None and "step" not in reader.fieldnames:
                raise GantkError(f"{path} is not a run's metrics file: its header has no 'step' column.")
            for row in reader:
                try:
                    rows.append({k: float(v) for k, v in row.items() if v != ""})
                except (TypeError, ValueError):  # a short row gives None, a damaged one text
                    raise GantkError(f"{path} has a damaged row at line {reader.line_num} (not all numbers); repair or delete "
                                     "that row.") from None
        except (UnicodeDecodeError, csv.Error) as error:
            raise GantkError(f"{path} is not a run's metrics file: it is not CSV text ({error}).") from None
    return rows


def save_sample_grid(rows: Sequence[Tensor], path: Path, max_samples: int = 4) -> None:
    """One line per sample: the images of ``rows`` side by side (e.g. input | output | target), each
    shown in RGB (gray repeated, channels beyond the third left out)."""
    count = min(max_samples, rows[0].shape[0])
    rows = [displayable(row[:count]).cpu() for row in rows]
    tiles = [row[i] for i in range(count) for row in rows]
    with replacing(path, binary=True) as handle:  # a grid cut short (disk full) is an error, and no file
        save_image(to_unit(torch.stack(tiles)), handle, format="png", nrow=len(rows), padding=2, pad_value=1.0)


def tensorboard_writer(run_dir: Path, step: int = 0):
    """A TensorBoard ``SummaryWriter`` when the tensorboard package is installed, else ``None``.
    A run resumed at ``step`` hides the events an interrupted process logged after that step."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / run_files.TENSORBOARD), purge_step=step or None)


class LossWindow:
    """The losses of the steps since the last log row, how long those steps took, and how much of that
    the training process spent waiting for the loader's next batch."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.values: dict[str, list[Tensor]] = {}
        self.steps = 0
        self.waited = 0.0
        self.start = time.perf_counter()

    def add(self, losses: dict[str, Tensor]) -> None:
        self.steps += 1
        for key, value in losses.items():
            self.values.setdefault(key, []).append(value)

    def means(self) -> dict[str, float]:
        # Losses carried over from a checkpoint are on the CPU; the reduction is the one an unbroken run makes.
        return {key: torch.stack([v.to(values[-1].device) for v in values]).float().mean().item()
                for key, values in self.values.items()}

    def state(self) -> dict[str, list[float]]:
        """The losses so far, for a checkpoint (a run resumed from it writes the row this window would have)."""
        return {key: [value.item() for value in values] for key, values in self.values.items()}

    def carry(self, state: dict[str, list[float]]) -> None:
        """Start from the losses of :meth:`state` (taken before the current ones)."""
        for key, values in state.items():
            self.values[key] = [torch.tensor(value) for value in values] + self.values.get(key, [])

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        """Leave the block's time out of the window's: samples, checkpoints and validation are not training steps."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.start += time.perf_counter() - began

    def timings(self) -> tuple[float, float, float]:
        """Seconds since the window began (less those left out), steps per second, and the share of that time
        spent waiting for data."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return elapsed, self.steps / elapsed, min(self.waited / elapsed, 1.0)


class RunLog:
    """Where a training process reports: the progress bar and, from the main process only, the
    metrics and validation CSVs and TensorBoard."""

    def __init__(self, run_dir: Path, step: int, total_steps: int, *, is_main: bool, validation: bool, progress: bool,
                 logged: dict[str, int | None] | None = None):
        logged = logged or {}  # the newest rows when the resumed checkpoint was written (see logged_steps)
        self.metrics = MetricsLog(run_dir / run_files.METRICS, step, logged.get("metrics")) if is_main else None
        self.validation = (MetricsLog(run_dir / run_files.VALIDATION, step, logged.get("validation"))
                           if is_main and validation else None)
        self.board = tensorboard_writer(run_dir, step) if is_main else None
        self.bar = ProgressBar(total=total_steps, initial=step, disable=not (progress and is_main), unit="step", dynamic_ncols=True)
        self.window = LossWindow()
        self.rows = 0  # loss rows written by this process
        # Since the first row (which also waits for the loader to start): steps, seconds, seconds waiting for data.
        self.steps_since_first, self.time_since_first, self.waited_since_first = 0, 0.0, 0.0

    def waited_for_data(self, seconds: float) -> None:
        self.window.waited += seconds

    def step_done(self, losses: dict[str, Tensor]) -> None:
        self.window.add(losses)
        self.bar.update(1)

    def write_losses(self, step: int, epoch: int, lr: float, images_per_step: int,
                     over_processes: Callable[[dict[str, float]], dict[str, float]]) -> dict[str, float]:
        """Write the mean losses since the last row (``over_processes`` averages them over a run's
        processes), and start a new window; returns the means."""
        losses = over_processes(self.window.means())
        elapsed, steps_per_second, waiting = self.window.timings()
        speed = steps_per_second * images_per_step
        if self.rows:
            self.steps_since_first += self.window.steps
            self.time_since_first += elapsed
            self.waited_since_first += self.window.waited
        self.rows += 1
        self.window.clear()
        row = {**dict(zip(NOT_LOSSES, (step, epoch, lr, speed, waiting))), **losses}
        if self.metrics is not None:
            self.metrics.write(row)
        self._add_scalars(row, step)
        short = {key.split("/")[0] + "/" + key.split("/")[-1]: f"{value:.3g}" for key, value in losses.items()}
        self.bar.set_postfix(short | {"img/s": f"{speed:.1f}", "data": f"{waiting:.0%}"})
        return losses

    def write_validation(self, step: int, scores: dict[str, float]) -> None:
        self.validation.write({"step": step, **scores})
        self._add_scalars(scores, step)
        if not self.bar.disable:
            self.bar.write(f"step {step}: " + ", ".join(f"{key.removeprefix(VALIDATION_PREFIX)} {value:.4g}" for key, value in scores.items()))

    def _add_scalars(self, values: dict[str, float], step: int) -> None:
        if self.board is not None:
            for key, value in values.items():
                self.board.add_scalar(key, value, step)

    def logged_steps(self) -> dict[str, int | None]:
        """The step of each CSV's newest row, for a checkpoint (a resume from it warns of rows lost since)."""
        return {name: log.last_step for name, log in (("metrics", self.metrics), ("validation", self.validation)) if log is not None}

    def sync(self) -> None:
        """Make the CSV rows written so far survive a power loss."""
        for log in (self.metrics, self.validation):
            if log is not None:
                log.sync()

    def close(self) -> None:
        self.bar.close()
        if self.board is not None:
            self.board.close()
