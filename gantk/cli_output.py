"""What the ``gantk`` commands print, made safe for a terminal."""

from __future__ import annotations

import unicodedata

import click

# Characters that reorder or break the text a terminal shows without being control characters: the bidirectional
# controls (U+202E shows "gpj.exe" as "exe.jpg") and the line and paragraph separators.
REORDERING = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")


def printable(text: str) -> str:
    """``text`` with control characters other than newline and tab, and the :data:`REORDERING` ones, written as
    escapes: messages quote file names, settings and checkpoint contents, which must not drive the terminal.

    Example:
        >>> printable("a\\x1b[31mb \\u202ec\\u200dd")  # a zero-width joiner, as in emoji, is kept
        'a\\\\x1b[31mb \\\\u202ec\\u200dd'
    """
    return "".join(repr(c)[1:-1] if (unicodedata.category(c) == "Cc" and c not in "\n\t") or c in REORDERING else c
                   for c in text)


def echo(text: str = "", err: bool = False) -> None:
    """Print a line of a command's output, made :func:`printable`."""
    click.echo(printable(text), err=err)
