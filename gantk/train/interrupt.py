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
            print(f"\n{signal.Signals(signum).name}: stopping after this step, with a checkpoint; send it again to stop at "
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
