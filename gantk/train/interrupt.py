"""Ctrl-C during training: finish the current step and save a checkpoint before stopping."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving a checkpoint at ``step``."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


@contextlib.contextmanager
def stop_after_step_on_interrupt(enabled: bool = True) -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether Ctrl-C was pressed; the first Ctrl-C only asks for a stop,
    a second one interrupts at once. Without ``enabled`` (or off the main thread) Ctrl-C acts as usual."""
    requested = threading.Event()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def ask_to_stop(signum, frame):
        requested.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
