"""Errors raised in data-loader workers, shown as they were raised: torch raises them again in the main
process with the worker's whole traceback as their message, and that error's traceback holds the
loader's iterator, whose workers then outlive it."""

from __future__ import annotations

import re
from typing import Iterable, Iterator, TypeVar

from ..errors import GantkError

T = TypeVar("T")
_FROM_WORKER = re.compile(r"Caught \w+ in DataLoader worker process \d+\.\nOriginal Traceback")


def as_raised_in_worker(error: GantkError) -> GantkError | None:
    """The error a loader worker raised, without the traceback torch put in its message; ``None`` for
    an error raised in this process."""
    text = str(error)
    marker = f"\n{type(error).__module__}.{type(error).__qualname__}: "
    if not _FROM_WORKER.match(text) or marker not in text:
        return None
    message = text.rpartition(marker)[2].strip()
    try:
        return type(error)(message)
    except TypeError:  # a subclass built otherwise
        return GantkError(message)


def raised_as_in_workers(batches: Iterable[T]) -> Iterator[T]:
    """``batches`` (a loader, or an iterator over one), a gantk error that a loader worker raised
    raised as the worker raised it: one message, not a traceback."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except GantkError as error:
            plain = as_raised_in_worker(error)
            if plain is None:
                raise
            error.__traceback__ = None  # its frames, and this one's names, hold the loader's workers
            del batches, iterator
            raise plain from None
        yield batch
