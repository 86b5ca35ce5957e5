"""Option values: the types component options take, how given values are checked and spelled, and which values a
checkpoint can hold."""

from __future__ import annotations

import difflib
import inspect
import numbers
import operator
import os
import types
import typing
from typing import Any, Iterable

# By the type an option takes: the types of value it accepts and how a message names them
# (``type_mismatch`` takes no bool as a number). A list option takes a tuple too (its items are not checked).
VALUE_TYPES = {
    bool: ((bool,), "true or false"),
    int: ((numbers.Integral,), "an integer"),
    float: ((numbers.Real,), "a number"),
    str: ((str,), "a string"),
    list: ((list, tuple), "a list"),
}
SIMPLE_TYPES = {t.__name__: t for t in VALUE_TYPES} | {"tuple": list}  # bool first: it is a subclass of int
PLAIN_VALUES = (type(None), bool, int, float, str)  # what a safely loaded checkpoint holds, with lists and tables of them
MOST_STORED_ITEMS, MOST_STORED_DEPTH = 100_000, 8  # the size of a value a checkpoint may hold (storable)


def storable(value: Any) -> bool:
    """Whether a checkpoint can hold ``value`` and load it safely: a plain value, or lists and tables of them, of a
    bounded size, counted item by item (a list holding itself twice, nested, costs a few bytes and unfolds to
    billions)."""
    pending, seen = [(value, 0)], 0
    while pending:
        item, depth = pending.pop()
        seen += 1
        if seen > MOST_STORED_ITEMS or depth > MOST_STORED_DEPTH:
            return False
        if type(item) in (list, tuple):
            pending.extend((entry, depth + 1) for entry in item)
        elif type(item) is dict:
            if not all(type(key) is str for key in item):
                return False
            pending.extend((entry, depth + 1) for entry in item.values())
        elif type(item) not in PLAIN_VALUES:  # a subclass (an enum's member) is a global that safe loading refuses
            return False
    return True


def close_options_hint(unknown: list[str], known: Iterable[str]) -> str:
    """`` Did you mean 'ngf' instead of 'ngff'?`` for the ``unknown`` option names close to ``known`` ones; "" if none is."""
    hints = [f"'{match[0]}' instead of '{key}'" for key in unknown if (match := difflib.get_close_matches(key, list(known), n=1))]
    return f" Did you mean {', '.join(hints)}?" if hints else ""


def described(value: Any) -> str:
    """``value`` as a message shows it: its repr when short (a network's spans pages), else its type."""
    text = repr(value)
    return text if len(text) <= 80 and "\n" not in text else f"a {type(value).__module__}.{type(value).__qualname__} object"


def plain(value: Any) -> Any:
    """``value`` in Python's own types, which TOML files and safely loaded checkpoints hold: scalars
    of numpy or torch as their Python value, other numbers (fractions) as ``int`` or ``float``, text of
    a ``str`` subclass (a ``str`` enum's member) as its ``str``, paths as text, tuples as lists, in tables too.

    Example:
        >>> plain({"betas": (0.5, 0.9), "ndf": 64})
        {'betas': [0.5, 0.9], 'ndf': 64}
    """
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy or torch scalar
        value = value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def declared_type(parameter: inspect.Parameter) -> tuple[type | None, bool]:
    """The type an option's values must have, and whether ``None`` is allowed too.

    The annotation decides when it is ``bool``, ``int``, ``float``, ``str``, a list or a tuple (alone
    or with ``None``); without an annotation, the default's type does when it is ``bool``, ``int``,
    ``float`` or ``str`` (``None`` allowed when it is the default). Any other annotation or default
    constrains nothing: ``(None, True)`` (a tuple default, as torch's ``kernel_size=(4, 4)``, may take
    a single number too).
    """
    if parameter.annotation is not parameter.empty:
        names = _annotation_names(parameter.annotation)
        simple = names - {"None", "NoneType"}
        if len(simple) == 1 and (name := simple.pop()) in SIMPLE_TYPES:
            return SIMPLE_TYPES[name], len(names) > 1
        return None, True
    default = parameter.default
    return value_type(default), default is None or default is parameter.empty


def value_type(default: Any) -> type | None:
    """The key of :data:`VALUE_TYPES` that an option with this plain default takes, or None (lists are not read
    from defaults)."""
    return next((t for t in (bool, int, float, str) if isinstance(default, t)), None)


def _annotation_names(annotation: Any) -> set[str]:
    """The type names of an annotation, written (``"float | None"``, ``"Optional[str]"``) or evaluated."""
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        if text.startswith("Optional[") and text.endswith("]"):
            text = text[len("Optional["):-1] + "|None"
        return {part.split("[")[0] for part in text.split("|")}
    parts = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    return {getattr(typing.get_origin(part) or part, "__name__", str(part)) for part in parts}


def type_mismatch(option: str, wanted: type, default: Any, value: Any) -> str | None:
    """What is wrong with ``value`` for an option that takes ``wanted`` values; None if it fits.

    Example:
        >>> type_mismatch("ngf", int, 64, "eight")
        "option ngf must be an integer (default 64), got 'eight'"
        >>> type_mismatch("dropout", float, 0.5, 0) is None
        True
    """
    accepted, description = VALUE_TYPES[wanted]
    if isinstance(value, accepted) and (wanted is bool or not isinstance(value, bool)):
        return None
    shown = "" if default is inspect.Parameter.empty else f" (default {default!r})"
    return f"option {option} must be {description}{shown}, got {value!r}"


def as_declared(wanted: type | None, value: Any) -> Any:
    """``value`` for an option that takes ``wanted`` values: a whole number given to a text option is
    its text (``--gen-opt revision=2024``; written with leading zeros or ``_`` it reads back without
    them); a fraction is not, as its text may differ more from the one typed.

    Example:
        >>> as_declared(str, 2024), as_declared(str, 0.5), as_declared(int, 3)
        ('2024', 0.5, 3)
    """
    if wanted is str and isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(value)
    return value


def with_nones(options: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``options`` with none spelled as each option takes it: ``None`` for an option whose default is
    ``None`` (also from the text ``none``, as TOML has no null), the word ``"none"`` for a text option
    (``norm=none`` on the command line gives ``None``)."""
    spelled = {}
    for key, value in options.items():
        default = defaults.get(key, inspect.Parameter.empty)
        if default is None and isinstance(value, str) and value.lower() in ("none", "null"):
            value = None
        elif isinstance(default, str) and value is None:
            value = "none"
        spelled[key] = value
    return spelled


def as_integer(value: Any) -> int | None:
    """``value`` as a Python int where it is an integer (a numpy integer too; not a bool); ``None`` where it is not."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None
