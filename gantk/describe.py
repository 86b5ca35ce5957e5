"""What a registered component is: options, defaults, size, provider (``gantk describe``)."""

from __future__ import annotations

import inspect
from typing import Any

from .errors import OptionError
from .plugins import Components, default_components, normalize_kind
from .option_values import with_nones
from .registry import options_set_with


def jsonable(value: Any) -> Any:
    """``value`` if JSON can hold it, else its ``repr`` (dicts and lists converted recursively)."""
    if value is inspect.Parameter.empty:
        return "<required>"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return repr(value)


def describe(kind: str, name: str, components: Components | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``gantk describe`` shows: options with defaults, and what an instance built with ``options`` (default:
    none) tells of its kind (networks: parameters and input sizes; objectives: weight and what they score;
    formats: targets and detection; recipes: system and defaults)."""
    components = components or default_components()
    kind = normalize_kind(kind)
    entry = components.registry(kind).get(name)
    info: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "plugin": entry.plugin,
        "summary": entry.summary,
        "options": jsonable(entry.options()),
    }
    if extra := next((p.name for p in entry.parameters if p.kind is p.VAR_KEYWORD), None):
        info["other options"] = f"any (its factory takes **{extra}): a misspelt option reaches it unrefused"
    options = options or {}
    if options and kind not in ("generator", "discriminator", "objective"):
        own = " (its own options, listed here, are given to gantk train with --recipe-opt)" if kind == "recipe" else ""
        raise OptionError(f"--opt builds a network or an objective with those options; a {kind.replace('_', '-')} is shown as "
                          f"it is{own}: drop --opt.")
    if options:
        info["built with"] = jsonable(with_nones(options, entry.options()))  # as the factory takes them
    required = [option for option in entry.required_options() if option not in options]
    if required:
        info["default instance"] = f"none: options without a default ({', '.join(required)}); give them with --opt"
        return info
    if kind in ("generator", "discriminator"):
        module = _built(components, kind, name, options)
        info["parameters"] = sum(p.numel() for p in module.parameters())
        if kind == "discriminator":
            if not hasattr(module, "receptive_field"):
                info["receptive_field"] = "unknown (the discriminator declares no receptive_field)"
            else:
                info["receptive_field"] = module.receptive_field if module.receptive_field is not None else "whole image"
        else:
            info["size_multiple"] = getattr(module, "size_multiple", 1)
        if hasattr(module, "min_input_size"):
            info["min_input_size"] = module.min_input_size
    elif kind == "objective":
        objective = _built(components, kind, name, options)
        info["adversarial"] = bool(getattr(objective, "adversarial", False))
        info["default_weight"] = getattr(objective, "default_weight", "none (not a gantk.Objective)")
        info["scores"] = ("class masks (segmentation data)" if getattr(objective, "needs_masks", False)
                          else "images" if getattr(objective, "needs_images", False) else "images or masks")
        info["needs_pairs"] = bool(getattr(objective, "compares_pairs", False))
        info["needs_unpaired"] = bool(getattr(objective, "needs_unpaired", False))
    elif kind == "data_format":
        from .data.formats import VoidIgnoringFormat

        data_format = components.create(kind, name)
        targets = getattr(data_format, "paired_targets", None)
        info["targets"] = (f"{targets} paired with each input" if targets else "none paired with inputs: gantk eval gives "
                           "an image model's distribution metrics only (FID, KID, ...), for a format of two sides (unaligned)")
        info["detected"] = "only when no other format matches" if getattr(data_format, "fallback", False) else "by its layout"
        if isinstance(data_format, VoidIgnoringFormat):
            info["ignores"] = f"mask value {data_format.VOID} unless --ignore-label names another"
    elif kind == "recipe":
        recipe = components.create(kind, name)
        info["system"] = recipe.system.__name__
        info["options"] = jsonable(recipe.options)
        info["defaults"] = jsonable(recipe.defaults)
        info["source"] = recipe.source
    return info


def _built(components: Components, kind: str, name: str, options: dict[str, Any]) -> Any:
    """The component built with ``options``; an error about them names describe's ``--opt``, not train's flag."""
    with options_set_with(kind, "--opt KEY=VALUE"):
        return components.create(kind, name, **options)


def describe_text(info: dict[str, Any]) -> str:
    lines = [f"{info['kind']} '{info['name']}' (plugin {info['plugin']})"]
    if info["summary"]:
        lines.append(f"  {info['summary']}")
    for key, value in info.items():
        if key in ("kind", "name", "plugin", "summary", "options", "defaults"):
            continue
        label = key.replace("_", " ")
        if isinstance(value, dict):
            value = ", ".join(f"{option}={setting!r}" for option, setting in value.items())
        lines.append(f"  {label}: {value:,}" if isinstance(value, int) and not isinstance(value, bool) else f"  {label}: {value}")
    for title in ("options", "defaults"):
        if info.get(title):
            lines.append(f"  {title}:")
            lines.extend(f"    {key} = {value!r}" for key, value in info[title].items())
    return "\n".join(lines)
