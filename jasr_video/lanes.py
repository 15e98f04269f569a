"""CPU lanes: independent parts of one batch run side by side, each on its own share of torch's threads.

On a CPU, torch splits every operation over its threads, and part of each operation's time goes to starting
and joining them, most for MTCNN's small convolutions and for JASRNet at the batch sizes of a few frames.
:class:`Lanes` runs independent work side by side instead, in a small thread pool whose threads each use
``threads // count`` torch threads: the pipeline's detection and tracking of one batch of frames beside the
JASRNet parts of the batch before (:class:`~jasr_video.pipeline.Pipeline`), and parts of a face batch
(:class:`~jasr_video.enhance.BatchEnhancer`). Each part is computed by the same network on the same inputs, so
the results are those of one call over the whole batch, up to float rounding (docs/benchmarks.md, "CPU lanes").

Lane threads set their own OpenMP thread count; the calling thread's count, and torch's setting for threads
started later, are restored as they were.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")

AUTO_LANES = 2  # lanes on a CPU with >= 2 torch threads when ``lanes`` is 0 (automatic)


class Lanes:
    """``count`` worker threads, each running torch with ``threads_each`` threads. :meth:`map` runs a function
    over parts in them and returns the results in order."""

    def __init__(self, count: int, threads_each: int = 1) -> None:
        if count < 2 or threads_each < 1:
            raise ValueError("lanes need count >= 2 and threads_each >= 1")
        self.count, self.threads_each = count, threads_each
        self._start()

    def _start(self) -> None:
        count, threads_each = self.count, self.threads_each
        self._pid = os.getpid()
        ready = threading.Barrier(count + 1)
        saved = torch.get_num_threads()

        def start() -> None:
            torch.get_num_threads()  # torch's once-per-thread setup first: it would later reset the count below
            torch.set_num_threads(threads_each)  # this thread's OpenMP count (and torch's global setting)
            ready.wait()

        self._pool = ThreadPoolExecutor(count, thread_name_prefix="jasr-lane")
        started = [self._pool.submit(start) for _ in range(count)]  # one per thread: each waits for the others
        ready.wait()
        for f in started:
            f.result()
        torch.set_num_threads(saved)  # the caller's count and the global setting back as they were

    def _pool_here(self) -> ThreadPoolExecutor:
        if self._pid != os.getpid():  # a forked child: the parent's threads are not in this process
            self._start()
        return self._pool

    def map(self, fn: Callable[[T], R], parts: Sequence[T]) -> list[R]:
        """[fn(p) for p in parts], run in the lanes (inline for a single part)."""
        if len(parts) <= 1:
            return [fn(p) for p in parts]
        return list(self._pool_here().map(fn, parts))

    def submit(self, fn: Callable[..., R], *args) -> "Future[R]":
        """fn(*args) in a lane; its Future."""
        return self._pool_here().submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


_shared: dict[tuple[int, int], Lanes] = {}
_lock = threading.Lock()


def cpu_lanes(device: torch.device | str, lanes: int = 0) -> Lanes | None:
    """The process's shared :class:`Lanes` for work on `device`: None off the CPU, with ``lanes`` 1, or with
    fewer than 2 torch threads; ``lanes`` 0 = automatic (:data:`AUTO_LANES`, capped by the thread count).
    Each lane gets ``threads // lanes`` of the calling thread's torch threads."""
    if torch.device(device).type != "cpu" or lanes == 1:
        return None
    threads = torch.get_num_threads()
    count = min(lanes or AUTO_LANES, threads)
    if count < 2:
        return None
    key = (count, threads // count)
    with _lock:
        if key not in _shared:
            _shared[key] = Lanes(*key)
        return _shared[key]


def run_all(lanes: Lanes | None, fn: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """[fn(p) for p in parts]: in `lanes`, or in the calling thread when there are none."""
    return lanes.map(fn, parts) if lanes is not None else [fn(p) for p in parts]


def split(n: int, parts: int) -> list[slice]:
    """``range(n)`` cut into at most `parts` consecutive slices of nearly equal length (none empty; none for 0)."""
    if n <= 0:
        return []
    parts = max(1, min(parts, n))
    bounds = [round(i * n / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]
