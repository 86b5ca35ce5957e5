"""The HTML page of an evaluation: metrics, then the best and worst images by L1 (of the class probabilities,
for masks) with their error maps."""

from __future__ import annotations

import heapq
import html
import itertools
import re
from pathlib import Path
from typing import Any, Callable

import torch
from matplotlib import colormaps
from torch import Tensor

from .data.io import write_png
from .errors import GantkError, OptionError
from .files import file_error_text, foreign_entries, replacing

PANELS = ("input", "output", "target", "error")
REPORT_IMAGE = re.compile(rf"(best|worst)-\d+-({'|'.join(PANELS)})\.png")  # the image files a report writes
ERROR_SCALE = 0.5  # per-pixel error (images in [0, 1]) shown at full brightness
TITLE_MARK = "<title>gantk eval: "  # how a page of an earlier report begins (see PAGE)


class ReportNotWritten(GantkError):
    """The report of an evaluation could not be written (a full disk, say); ``result`` holds its scores."""

    def __init__(self, report_dir: str | Path, error: OSError, result: dict[str, Any]):
        super().__init__(f"the report in {report_dir} was not written: {file_error_text(error)}")
        self.report_dir, self.error, self.result = report_dir, error, result

    def __reduce__(self):  # pickled (to another process, say) with the arguments it was built from
        return type(self), (self.report_dir, self.error, self.result)


class Extremes:
    """Keeps the ``k`` items with the lowest and the ``k`` with the highest score seen so far (of equal
    scores, the first seen)."""

    def __init__(self, k: int):
        self.k = k
        self._low: list[tuple] = []  # max-heap through negated scores
        self._high: list[tuple] = []
        self._order = itertools.count()

    def offer(self, score: float, name: str, panels: Callable[[], dict[str, Tensor]]) -> None:
        """Consider an item; ``panels`` gives its images, and is called only if the item is kept."""
        if self.k <= 0:
            return
        entry: tuple | None = None
        for heap, key in ((self._low, -score), (self._high, score)):
            if len(heap) < self.k or key > heap[0][0]:
                entry = entry or (next(self._order), score, name, panels())
                (heapq.heappush if len(heap) < self.k else heapq.heapreplace)(heap, (key, *entry))

    def best(self) -> list[tuple[float, str, dict[str, Tensor]]]:
        """Lowest scores first."""
        return _ranked(self._low)

    def worst(self) -> list[tuple[float, str, dict[str, Tensor]]]:
        """Highest scores first."""
        return _ranked(self._high)


def _ranked(heap: list[tuple]) -> list[tuple[float, str, dict[str, Tensor]]]:
    """A heap's items, the most extreme key first, ties in the order they were offered."""
    return [(score, name, panels) for _, _, score, name, panels in sorted(heap, key=lambda e: (-e[0], e[1]))]


def error_image(error: Tensor) -> Tensor:
    """A per-pixel error map ``H x W`` (0..1) as an RGB image in [-1, 1] (magma colour map, 0..ERROR_SCALE)."""
    scaled = (error.float() / ERROR_SCALE).clamp(0, 1).numpy()
    rgb = torch.from_numpy(colormaps["magma"](scaled)[..., :3]).permute(2, 0, 1).float()
    return rgb * 2 - 1


def is_report(folder: Path) -> bool:
    """Whether ``folder`` holds an earlier report: its ``index.html`` is a gantk eval page."""
    page = folder / "index.html"
    if not page.is_file() or (folder / "images").is_file():
        return False
    with open(page, encoding="utf-8", errors="replace") as handle:
        return TITLE_MARK in handle.read(4096)


def check_report_dir(report_dir: str | Path) -> None:
    """Raise unless ``report_dir`` is missing, empty or an earlier report (which a new one replaces)."""
    report_dir = Path(report_dir)
    if report_dir.is_file():
        raise OptionError(f"--report {report_dir} is a file; choose a folder.")
    foreign = foreign_entries(report_dir, lambda path: path.name == "images" and _report_images_only(path))
    if foreign and not is_report(report_dir):
        raise OptionError(
            f"--report {report_dir} holds files that are not a gantk report's ({foreign}); choose a new or empty folder."
        )


def _report_images_only(folder: Path) -> bool:
    """Whether ``folder`` holds only a report's images: one cut short before its page was written."""
    return folder.is_dir() and not foreign_entries(folder, lambda path: bool(REPORT_IMAGE.fullmatch(path.name)))


def write_report(result: dict[str, Any], extremes: Extremes, report_dir: str | Path) -> Path:
    """Write ``index.html`` and its PNG images into ``report_dir``; returns the page's path. The earlier
    page goes first, so a write cut short leaves no page showing images of two reports (and is replaced
    by the next)."""
    report_dir = Path(report_dir)
    (report_dir / "index.html").unlink(missing_ok=True)
    (report_dir / "images").mkdir(parents=True, exist_ok=True)
    for old in (report_dir / "images").iterdir():  # an earlier report's, which may have shown more images
        if REPORT_IMAGE.fullmatch(old.name):
            old.unlink()
    sections = []
    ranked_by = "L1" if result.get("task") != "segmentation" else "L1 of the class probabilities"
    for title, label, items in (("Best", "best", extremes.best()), ("Worst", "worst", extremes.worst())):
        rows = []
        for rank, (score, name, panels) in enumerate(items, 1):
            cells = []
            for panel in PANELS:
                image = error_image(panels[panel]) if panel == "error" else panels[panel]
                file = write_png(image, report_dir / "images" / f"{label}-{rank:02d}-{panel}.png")
                cells.append(f'<td><img src="images/{file.name}" alt="{panel}"></td>')
            rows.append(f"<tr><td>{rank}. {html.escape(name)}<br>L1 {score:.4f}</td>{''.join(cells)}</tr>")
        header = "".join(f"<th>{panel}</th>" for panel in ("image",) + PANELS)
        sections.append(f"<h2>{title} {len(items)} by {html.escape(ranked_by)}</h2>\n<table class=images><tr>{header}</tr>\n" + "\n".join(rows) + "</table>")
    page = PAGE.format(
        title=html.escape(f"gantk eval: {Path(result['checkpoint']).name}"),
        facts=_facts(result),
        metrics=_metrics(result),
        per_class=_per_class_table(result),
        scale=ERROR_SCALE,
        sections="\n".join(sections),
    )
    path = report_dir / "index.html"
    with replacing(path) as handle:
        handle.write(page)
    return path


def scored_size(result: dict[str, Any]) -> str:
    """Where an evaluation ran the model and scored it: ``crop``, ``original`` or ``native``, and its tiles."""
    tiles = f", in tiles of {result['tile']} sharing {result['tile_overlap']} px" if result.get("tile") else ""
    return result.get("size", "crop") + tiles


def trained_text(result: dict[str, Any]) -> str:
    """", N of them trained on: not held-out scores" where the images scored include the model's training images."""
    trained = result.get("trained_images")
    return f", {trained} of them trained on: not held-out scores" if trained else ""


def _facts(result: dict[str, Any]) -> str:
    label = result.get("ignore_label")
    facts = {
        "checkpoint": f"{result['checkpoint']} (step {result['step']})",
        "model": ", ".join(f"{k}={v}" for k, v in result["model"].items()),
        "data": f"{result['data']} (split {result['split']}, {result['images']} images{trained_text(result)})"
                + (f"; pixels of mask value {label} ignored (grey)" if label is not None else ""),
        "mode": f"{result['mode']}, batch {result['batch_size']}, seed {result['seed']}",
        "size": scored_size(result),
    }
    return "\n".join(f"<tr><th>{key}</th><td>{html.escape(str(value))}</td></tr>" for key, value in facts.items())


def _metrics(result: dict[str, Any]) -> str:
    rows = [f"<tr><th>{html.escape(name)}</th><td>{value:.4g}</td></tr>" for name, value in result["metrics"].items()]
    rows += [
        f"<tr><th>{html.escape(name)}</th><td>unavailable: {html.escape(reason)}</td></tr>"
        for name, reason in result["unavailable"].items()
    ]
    return "\n".join(rows)


def per_class(result: dict[str, Any]) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """A mask model's scores per class: the scores' names, and a row per class of its label and scores;
    nothing for an image model. A label is the class's id (its mask value 1..K where 0 was ignored),
    and its name where the data's format gives one."""
    classes = result.get("classes") or {}
    names = result.get("class_names") or []
    first_value = 1 if result.get("ignore_label") == 0 else 0
    count = len(next(iter(classes.values()), []))
    labels = [f"{first_value + i}" + (f" {names[i]}" if i < len(names) else "") for i in range(count)]
    return list(classes), [(label, [values[i] for values in classes.values()]) for i, label in enumerate(labels)]


def _per_class_table(result: dict[str, Any]) -> str:
    scores, classes = per_class(result)
    if not classes:
        return ""
    header = "".join(f"<th>{html.escape(name)}</th>" for name in ["class", *scores])
    rows = [f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{value:.4f}</td>" for value in values) + "</tr>"
            for label, values in classes]
    return f"<h2>Per class</h2>\n<table><tr>{header}</tr>\n" + "\n".join(rows) + "</table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ padding: 4px 10px; text-align: left; vertical-align: top; }}
table.images img {{ width: 192px; image-rendering: pixelated; }}
</style></head>
<body>
<h1>{title}</h1>
<table>{facts}</table>
<h2>Metrics</h2>
<table>{metrics}</table>
{per_class}
<p>Each row: input | output | target | per-pixel absolute error (pixels in [0, 1]; black 0, yellow {scale} or more).</p>
{sections}
</body></html>
"""
