"""Errors meant for users: each says what was wrong, what was expected and how to fix it."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import re
import sys
from typing import Iterable, Sequence


class GantkError(Exception):
    """Base of every error gantk raises on bad input; the CLI prints it without a traceback."""


class GantkWarning(UserWarning):
    """A setting that works but likely not as the user wants (the CLI prints it as one line)."""


# Where gantk's code calls back into the caller's: a warning is not the caller's line when raised there.
_PASSED_THROUGH = ("gantk", "torch", "pluggy", "click")


def caller_stacklevel(*packages: str) -> int:
    """The ``stacklevel`` for a ``warnings.warn`` called beside this that attributes the warning to the caller's line:
    the first frame outside gantk, the top-level ``packages`` (or single-file modules) named (a plugin's own, for its
    warnings: ``caller_stacklevel("gantk_wgan")``) and the code they call through (torch's data loading, pluggy's hooks, click,
    ``contextlib``, ``importlib.import_module``), as ``warnings.warn`` counts frames (skipping importlib's bootstrap)."""
    prefixes = tuple(os.path.dirname(module.__file__) + os.sep if hasattr(module, "__path__") else module.__file__
                     for name in (*_PASSED_THROUGH, *packages)  # a package's folder, a module's own file
                     if (module := sys.modules.get(name)) is not None and getattr(module, "__file__", None))
    frame, level = sys._getframe(1), 1  # the frame calling warnings.warn
    while frame.f_back is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith(prefixes) or filename in (contextlib.__file__, importlib.__file__) or _importlib_frame(filename)):
            break
        frame = frame.f_back
        level += not _importlib_frame(frame.f_code.co_filename)
    return level


def _importlib_frame(filename: str) -> bool:
    """Whether a frame is importlib's own, which ``warnings.warn`` leaves out when it counts ``stacklevel``."""
    return "importlib" in filename and "_bootstrap" in filename


# The end of a sentence: ". " outside '...' quotes (an even number of quotes follows it).
_SENTENCE_END = re.compile(r"\. (?=[^']*(?:'[^']*'[^']*)*$)")


def first_sentence(text: str) -> str:
    """The first sentence of another library's message (its first line, up to ". "), to quote it in short; "" for none."""
    lines = text.strip().splitlines()
    return _SENTENCE_END.split(lines[0], maxsplit=1)[0].strip().rstrip(".") if lines else ""


def extend_message(error: Exception, text: str) -> None:
    """Append ``text`` to ``error``'s message (its first argument; the others are kept), as the CLI prints it."""
    error.args = (f"{error}{text}", *error.args[1:])


PLUGIN_HINT = " A plugin's components are known once it is installed in this Python environment: 'gantk list' shows them."


def did_you_mean(value: object, known: Iterable[object]) -> str:
    """The text " Did you mean 'x'?" for the one of ``known`` closest to ``value`` as text, or "" where none is close."""
    close = difflib.get_close_matches(str(value), [str(name) for name in known], n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


class UnknownNameError(GantkError, KeyError):
    """A component, format or recipe name that is not registered (``from_plugins``: which plugins may
    register, so a name close to none of them gets :data:`PLUGIN_HINT`; the ``failed_plugins`` and a
    ``plugins_note``, on plugins left unloaded, are named whether or not a name is close)."""

    def __init__(self, kind: str, name: str, known: list[str], *, from_plugins: bool = False,
                 failed_plugins: Sequence[str] = (), plugins_note: str = ""):
        self.kind, self.name, self.known = kind, name, known
        close_hint = did_you_mean(name, known)
        plugin_hint = ""
        if from_plugins and failed_plugins:
            plugin_hint = (f" Plugin(s) {', '.join(failed_plugins)} failed to load and may provide it: 'gantk list' says why "
                           "(in Python, components.failures).")
        elif from_plugins and not close_hint and not plugins_note:
            plugin_hint = PLUGIN_HINT
        if from_plugins and plugins_note:
            plugin_hint += f" {plugins_note}"
        listing = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {kind} '{name}'.{close_hint} Known {kind}s: {listing}.{plugin_hint}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class DuplicateNameError(GantkError):
    """Two plugins registered the same name without asking to override."""


class OptionError(GantkError):
    """An option that a component does not accept, or a value it cannot use."""


class SpecError(GantkError):
    """An objective spec string that does not parse."""


class DataError(GantkError):
    """A dataset that is missing, malformed or inconsistent; ``problems`` lists each one found by validation."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = list(problems)


class CheckpointError(GantkError):
    """A checkpoint that cannot be read or does not match what it is used for."""
