"""Run-directory outputs: metrics CSV, sample grids and (when installed) TensorBoard events."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor
from torchvision.utils import save_image

from ..errors import GantkError


class MetricsLog:
    """Appends one CSV row per logging step; on resume, rows after the resumed step are dropped.

    A row with a new key (a generator loss first logged after a few discriminator-only steps, say)
    adds a column, left empty in the earlier rows.
    """

    def __init__(self, path: Path, resume_step: int = 0):
        self.path = path
        self.columns: list[str] | None = None
        if self.path.exists():
            with self.path.open(newline="") as handle:
                rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= resume_step]
            self.columns = list(rows[0]) if rows else None
            self._rewrite(rows)

    def _rewrite(self, rows: list[dict]) -> None:
        """Replace the file with ``rows`` (written beside it first, so a crash keeps the old one)."""
        partial = self.path.with_name(self.path.name + ".partial")
        with partial.open("w", newline="") as handle:
            if self.columns:
                writer = csv.DictWriter(handle, self.columns, restval="")
                writer.writeheader()
                writer.writerows(rows)
        os.replace(partial, self.path)

    def write(self, row: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = list(row)
            self._rewrite([])
        elif new := [key for key in row if key not in self.columns]:
            with self.path.open(newline="") as handle:
                rows = list(csv.DictReader(handle))
            self.columns += new
            self._rewrite(rows)
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, self.columns, extrasaction="ignore", restval="").writerow(row)


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    """Rows of a run's metrics CSV as numbers (empty cells skipped)."""
    with Path(path).open(newline="") as handle:
        try:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(handle)]
        except (TypeError, ValueError):  # a short row gives None, a damaged one text
            raise GantkError(f"{path} has a damaged row (not all numbers); repair or delete that row.") from None


def save_sample_grid(rows: Sequence[Tensor], path: Path, max_samples: int = 4) -> None:
    """One line per sample: the images of ``rows`` side by side (e.g. input | output | target)."""
    count = min(max_samples, rows[0].shape[0])
    tiles = [row[i].float().cpu() for i in range(count) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(tiles) * 0.5 + 0.5, path, nrow=len(rows), padding=2, pad_value=1.0)


def tensorboard_writer(run_dir: Path):
    """A TensorBoard ``SummaryWriter`` when the tensorboard package is installed, else ``None``."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))
