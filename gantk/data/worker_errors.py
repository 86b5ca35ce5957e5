"""Errors raised in data-loader workers, shown as they were raised: torch raises them again in the main
process with the worker's whole traceback as their message, and that error's traceback holds the
loader's iterator, whose workers then outlive it."""

from __future__ import annotations

import re
from typing import Iterable, Iterator, TypeVar

from ..errors import DataError, GantkError

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


class WorkerEnded(DataError):
    """A loader worker that ended without an error of its own: killed (by the system when short of memory)."""


def raised_as_in_workers(batches: Iterable[T]) -> Iterator[T]:
    """``batches`` (a loader, or an iterator over one), a gantk error that a loader worker raised
    raised as the worker raised it: one message, not a traceback; a worker that ended as :class:`WorkerEnded`."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (GantkError, RuntimeError) as error:
            plain = as_raised_in_worker(error) if isinstance(error, GantkError) else worker_ended(error)
            if plain is None:
                raise
            drop_tracebacks(error)
            del batches, iterator
            raise plain from None
        yield batch


def drop_tracebacks(error: BaseException | None) -> None:
    """Free the frames of ``error`` and of the errors it arose from, which hold a loader's workers."""
    while error is not None:
        error.__traceback__, error = None, error.__context__


def worker_ended(error: RuntimeError) -> WorkerEnded | None:
    """torch's error for a loader worker that ended (``DataLoader worker (pid 12) is killed by signal: Killed.``),
    in plain words; ``None`` for another error."""
    text = str(error).strip()
    if not text.startswith("DataLoader worker (pid"):
        return None
    ended = text.splitlines()[0].removeprefix("DataLoader worker ").rstrip(". ")
    return WorkerEnded(f"a data-loading worker ended: {ended} (by the system when short of memory, or by another process).")
