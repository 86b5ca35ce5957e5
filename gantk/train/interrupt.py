"""Stopping training early: on Ctrl-C or SIGTERM, or when a step callback asks, the current step is
finished and a checkpoint saved before stopping."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterator

from ..torchrun import process_from_environment

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C, and what job schedulers send before killing
REPEAT_WINDOW_S = 1.0  # a stop signal this soon after the first is the same request, passed on by a launcher


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on signal ``signum`` after saving a checkpoint at ``step``."""

    def __init__(self, step: int, signum: int):
        super().__init__(step, signum)
        self.step, self.signum = step, signum


class StopTraining(Exception):
    """Raised by a step callback to end training after this step: the trainer saves a checkpoint and
    returns as from a finished run (``Trainer.resume`` continues it). Under torchrun every process
    must raise it at the same step (decide on the logged losses, which are means over the processes)."""


class WorkerStopSignals:
    """Stop signals in data-loader workers (the ``worker_init_fn``): ignored while :meth:`training`
    holds, since a signal sent to the whole process group must not kill them mid-step (the training
    process finishes the step and stops them); acted on as usual afterwards, so that a worker left
    behind is still ended by the SIGTERM that stops it at exit."""

    def __init__(self):
        self._training = multiprocessing.Event()

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        self._training.set()
        try:
            yield
        finally:
            self._training.clear()

    def __call__(self, worker_id: int | None = None) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame) -> None:
        if not self._training.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


class NotedSignals:
    """Stop signals received while :func:`stop_signals_noted` holds."""

    def __init__(self):
        self.received: list[tuple[int, Callable]] = []

    def act_on_any(self) -> None:
        """Act on a signal received before, as its handler did: one whose exception was swallowed (raised while a
        finalizer ran, where Python only prints it) stops the run now, before its first step."""
        if self.received:
            signum, handler = self.received[0]
            handler(signum, None)


@contextlib.contextmanager
def stop_signals_noted() -> Iterator[NotedSignals]:
    """While the set-up runs: each stop signal that a Python handler takes (Ctrl-C's raises KeyboardInterrupt,
    the command line's SIGTERM one exits) acts at once as it would, and is noted (see
    :meth:`NotedSignals.act_on_any`). Signals left to the system (SIGTERM's default) are not touched, so they
    still end a process waiting in C code. Off the main thread nothing is noted."""
    noted = NotedSignals()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            if callable(handler := signal.getsignal(sig)):
                def noting(signum, frame, handler=handler):
                    noted.received.append((signum, handler))
                    handler(signum, frame)

                previous[sig] = signal.signal(sig, noting)
    try:
        yield noted
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def stop_after_step_on_interrupt() -> Iterator[Callable[[], int | None]]:
    """Yield a function returning the stop signal received so far (``None`` before one), called after
    every step; the first Ctrl-C or SIGTERM only asks for a stop, and so does one that follows it within
    ``REPEAT_WINDOW_S`` (a launcher such as torchrun passing the same signal on). Once that window has
    passed, the usual handlers are back (put back by the handler or the next call), so a later signal
    acts as usual, even while the process waits in C code. Off the main thread the signals act as usual."""
    received: list[tuple[int, float]] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def ask_to_stop(signum, frame):
        if not received:
            received.append((signum, time.monotonic()))
            process = process_from_environment()  # under torchrun each process that gets it says so
            rank = f"[rank {process.rank}] " if process.distributed else ""
            print(f"\n{rank}{signal.Signals(signum).name}: stopping after this step, with a checkpoint; send it again to stop at "
                  "once (losing the steps since the last checkpoint).", file=sys.stderr, flush=True)
        elif time.monotonic() - received[0][1] >= REPEAT_WINDOW_S:  # asked again: act at once
            restore()
            signal.raise_signal(signum)

    def stop_signal() -> int | None:
        if received and time.monotonic() - received[0][1] >= REPEAT_WINDOW_S:
            restore()
        return received[0][0] if received else None

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in STOP_SIGNALS}
    try:
        yield stop_signal
    finally:
        restore()
