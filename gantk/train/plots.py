"""Loss curves of a run as a PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import GantkError
from ..files import replacing, user_path
from .logs import NOT_LOSSES, read_metrics


def figure(rows: int, columns: int, figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A matplotlib figure for files (no window, no display needed) and its ``rows x columns`` axes; built
    without pyplot, so the caller's backend and figures are left alone."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, columns, squeeze=False)


def save_png(fig: Any, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` as a PNG through a temporary file: a link at ``path`` is replaced, never written through."""
    with replacing(path, binary=True) as handle:
        fig.savefig(handle, format="png", dpi=dpi)
    return Path(path)


def plot_losses(metrics_csv: str | Path, out_png: str | Path) -> Path:
    """Plot every loss column of a metrics CSV against the step, one panel per network."""
    metrics_csv, out_png = Path(user_path(metrics_csv, "metrics_csv")), Path(user_path(out_png, "out_png (--out)"))
    if out_png.suffix.lower() != ".png":
        raise GantkError(f"the plot is written as PNG: give a path ending in .png, not {out_png}.")
    if not metrics_csv.is_file():
        missing = "is not a file" if metrics_csv.exists() else "does not exist"
        raise GantkError(f"{metrics_csv} {missing}: pass a run directory written by 'gantk train'.")
    rows = read_metrics(metrics_csv)
    if not rows:
        raise GantkError(f"{metrics_csv} has no rows yet: train for at least --log-every steps.")
    losses = loss_columns(rows)
    if not losses:
        raise GantkError(f"{metrics_csv} has no loss columns (only {', '.join(rows[0])}): it is not a training run's metrics file.")
    panels = sorted({key.split("/")[0] for key in losses})
    fig, axes = figure(1, len(panels), figsize=(5 * len(panels), 3.5))
    for axis, panel in zip(axes[0], panels):
        for key in (k for k in losses if k.split("/")[0] == panel):
            points = [(row["step"], row[key]) for row in rows if key in row]
            marker = "o" if sum(math.isfinite(p[1]) for p in points) == 1 else None  # one point draws no line
            (line,) = axis.plot([p[0] for p in points], [p[1] for p in points], label=key, marker=marker)
            gone = next((step for step, value in points if not math.isfinite(value)), None)
            if gone is not None:  # a line simply breaks there: say why
                axis.axvline(gone, color=line.get_color(), linestyle="--", label=f"{key} first not finite at step {int(gone)}")
        axis.set_title(panel)
        axis.set_xlabel("step")
        axis.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, out_png, dpi=100)


def loss_columns(rows: list[dict[str, float]]) -> list[str]:
    """The loss columns of metrics rows, in order of first appearance (some start after the first row)."""
    return [key for key in dict.fromkeys(key for row in rows for key in row) if key not in NOT_LOSSES]
