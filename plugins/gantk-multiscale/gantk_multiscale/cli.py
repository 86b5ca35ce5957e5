"""``gantk multiscale-info``: the scales of a multi-scale discriminator, before training with it."""

from __future__ import annotations

import json
from typing import Any

import click
import torch

from gantk.nn.geometry import output_side, windows
from gantk.nn.norm import NORMS
from gantk.train.config import MAX_SIDE

from .discriminator import MultiscaleDiscriminator


def scale_summary(model: MultiscaleDiscriminator, height: int, width: int) -> list[dict[str, Any]]:
    """Per scale, finest first: input size, logit map size (``None`` if too small), receptive field, parameters."""
    rows = []
    for scale, (logits, field) in enumerate(zip(model.logit_sizes(height, width), model.receptive_fields)):
        pools = windows(model.downsample) * scale
        rows.append({
            "scale": scale,
            "input": [output_side(pools, height), output_side(pools, width)],
            "logits": list(logits) if min(logits) >= 1 else None,
            "receptive_field": field,
            "parameters": sum(p.numel() for p in model.scales[scale].parameters()),
        })
    return rows


def _table(rows: list[dict[str, Any]]) -> list[str]:
    cells = [("scale", "input", "logits", "receptive field", "parameters")]
    for row in rows:
        logits = "x".join(map(str, row["logits"])) if row["logits"] else "too small"
        cells.append((str(row["scale"]), "x".join(map(str, row["input"])), logits,
                      str(row["receptive_field"]), f"{row['parameters']:,}"))
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]
    return ["  ".join(cell.rjust(w) if i in (3, 4) else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
            for line in cells]


@click.command("multiscale-info")
@click.option("--num-scales", type=click.IntRange(min=1), default=3, show_default=True, help="Pyramid levels.")
@click.option("--n-layers", type=click.IntRange(min=1), default=3, show_default=True, help="Stride-2 convolutions per PatchGAN.")
@click.option("--ndf", type=click.IntRange(min=1), default=64, show_default=True, help="Filters of each first convolution.")
@click.option("--norm", type=click.Choice(NORMS), default="instance", show_default=True,
              help="Normalisation of each PatchGAN (pix2pixHD's: instance).")
@click.option("--in-channels", type=click.IntRange(min=1), default=6, show_default=True,
              help="Input channels (both images for a conditional discriminator).")
@click.option("--size", type=click.IntRange(min=1), default=256, show_default=True, help="Input side in pixels (the crop size).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def multiscale_info(num_scales: int, n_layers: int, ndf: int, norm: str, in_channels: int, size: int, as_json: bool) -> None:
    """Show a multiscale discriminator's scales: input and logit sizes, receptive fields, parameters.

    Example: gantk multiscale-info --num-scales 2 --size 128
    """
    with torch.device("meta"):  # shapes and parameter counts only, no memory
        model = MultiscaleDiscriminator(in_channels, num_scales=num_scales, n_layers=n_layers, ndf=ndf, norm=norm)
    rows = scale_summary(model, size, size)
    info = {
        "options": {"num_scales": num_scales, "n_layers": n_layers, "ndf": ndf, "norm": norm, "in_channels": in_channels},
        "size": size,
        "min_input_size": model.min_input_size,
        "parameters": sum(row["parameters"] for row in rows),
        "scales": rows,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    options = ", ".join(f"{key}={value}" for key, value in info["options"].items())
    click.echo(f"multiscale discriminator ({options}): {info['parameters']:,} parameters")
    click.echo(f"smallest input: {model.min_input_size}x{model.min_input_size} px; receptive fields in input pixels")
    for line in _table(rows):
        click.echo(line)
    if size < model.min_input_size:
        smallest = model.min_input_size
        fix = (f"train at a --crop-size of {smallest} or more, or lower --num-scales/--n-layers" if smallest <= MAX_SIDE else
               f"that is more than gantk trains at ({MAX_SIDE} px a side): lower --num-scales/--n-layers")
        click.echo(f"a {size} px input is too small for these options, which need {smallest} px: {fix}")
