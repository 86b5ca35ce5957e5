"""A process that trains one benchmark path on command, so paths interleave step by step and each
has its own peak memory.

Commands over a pipe: ``"flops"`` (one step under ``FlopCounterMode``), ``"step"`` (one timed
step, with its minor page faults and system time), ``"warmed-up"`` (on CUDA: the peak of allocated
memory so far is kept and the peak statistics reset, so the timed steps' own peak shows apart),
``"memory"`` (peak and current RSS; CUDA's max allocated memory over the whole process, warm-up
included, and over the steps since ``"warmed-up"``), ``"stop"``. Every reply is a dict.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
import traceback
from multiprocessing.connection import Connection

import torch
from torch.utils.flop_counter import FlopCounterMode

from gantk.train.distributed import resolve_device
from gantk.train.trainer import tuned_backends
from cases import Case
from hardware import current_rss_bytes, peak_rss_bytes


def serve(case: Case, path: str, threads: int | None, conn: Connection) -> None:
    try:
        if threads:
            torch.set_num_threads(threads)
        cuda = case.device == "cuda"
        sync = torch.cuda.synchronize if cuda else lambda: None
        with tuned_backends(resolve_device(case.device)):  # every path, the plain loops too: the reference sets it
            step = case.stepper(path)
            batches = case.batches()
            conn.send({"ready": True, "rss_after_setup": current_rss_bytes()})
            count = 0
            with_warmup = None  # CUDA's peak up to "warmed-up" (cuDNN's algorithm search runs in the first steps)
            while (command := conn.recv()) != "stop":
                if command == "warmed-up":
                    if cuda:
                        with_warmup = torch.cuda.max_memory_allocated()
                        torch.cuda.reset_peak_memory_stats()
                    conn.send({})
                    continue
                if command == "memory":
                    since = torch.cuda.max_memory_allocated() if cuda else None
                    conn.send({"peak_rss": peak_rss_bytes(), "rss": current_rss_bytes(),
                               "cuda_max_allocated": None if since is None else max(since, with_warmup or 0),
                               "cuda_max_allocated_timed": None if with_warmup is None else since})
                    continue
                batch = batches[count % len(batches)]
                count += 1
                sync()
                if command == "flops":
                    with FlopCounterMode(display=False) as counter:
                        start = time.perf_counter()
                        step(batch)
                        sync()
                    conn.send({"flops": counter.get_total_flops(), "seconds": time.perf_counter() - start})
                else:
                    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                    step(batch)
                    sync()
                    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
                    conn.send({"seconds": seconds, "page_faults": after.ru_minflt - before.ru_minflt,
                               "system_s": after.ru_stime - before.ru_stime})
    except Exception:  # reported to the parent, which stops the run
        conn.send({"error": traceback.format_exc()})


class Worker:
    """Handle on a :func:`serve` process."""

    def __init__(self, case: Case, path: str, threads: int | None = None):
        self.path = path
        context = mp.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(case, path, threads, child), daemon=True)
        self.process.start()
        self.setup: dict = {}

    def wait_ready(self) -> None:
        self.setup = self._reply()

    def _reply(self) -> dict:
        reply = self.conn.recv()
        if "error" in reply:
            self.process.join()
            raise RuntimeError(f"benchmark path {self.path} failed:\n{reply['error']}")
        return reply

    def ask(self, command: str) -> dict:
        self.conn.send(command)
        return self._reply()

    @staticmethod
    def ask_all(workers: list["Worker"], command: str) -> list[dict]:
        """``command`` sent to every worker before any reply is read, so they run it at the same time."""
        for worker in workers:
            worker.conn.send(command)
        return [worker._reply() for worker in workers]

    def stop(self) -> None:
        if self.process.is_alive():
            self.conn.send("stop")
        self.process.join()
