"""An ordered, progress-reporting map over worker processes (the CPU-bound synthesis uses every core).

Each worker is its own process group: the terminal's Ctrl-C (sent to the foreground group) reaches the
parent alone, which then kills each worker's group, the worker with its ffmpeg at one stroke, instead of
waiting for the queued items; the parent's handlers (:mod:`progrestore.entry`) report the interrupt.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

import cv2
from tqdm import tqdm

In = TypeVar("In")
Out = TypeVar("Out")

WORKERS_ENV = "PROGRESTORE_WORKERS"


def worker_count() -> int:
    """``$PROGRESTORE_WORKERS`` if set, else every core. It changes speed only, never the outputs."""
    value = os.environ.get(WORKERS_ENV, "")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"{WORKERS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return os.cpu_count() or 1


def _end_with_parent(sentinel: int) -> None:
    """A parent killed outright (SIGKILL, a closed terminal) cleans nothing up; its workers, which would
    wait on its queue for ever, end themselves with their ffmpeg once its sentinel pipe closes."""
    multiprocessing.connection.wait([sentinel])
    os.killpg(0, signal.SIGKILL)


def _init_worker() -> None:
    os.setpgid(0, 0)  # a group of its own: out of the terminal's reach, and killed as one by the parent
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent alone decides how a Ctrl-C ends
    parent = multiprocessing.parent_process()  # the main process, not the forkserver
    if parent is not None:
        threading.Thread(target=_end_with_parent, args=(parent.sentinel,), daemon=True).start()
    cv2.setNumThreads(1)  # one process per core: nested threads would only contend


def _end_workers(pool: ProcessPoolExecutor) -> None:
    """Kill every worker with its children (ffmpeg), then reap the pool without running what was queued."""
    processes = list((pool._processes or {}).values())  # Python 3.14 has pool.kill_workers() for this
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:  # not yet in its own group (its initializer has not run)
                os.kill(process.pid, signal.SIGKILL)
    pool.shutdown(wait=True, cancel_futures=True)


def ordered_map(
    fn: Callable[[In], Out], items: Iterable[In], desc: str, workers: int | None = None
) -> list[Out]:
    items = list(items)
    workers = min(worker_count() if workers is None else workers, max(1, len(items)))
    if workers == 1:
        with tqdm(items, desc=desc, unit="item") as bar:
            return [fn(item) for item in bar]
    # forkserver: workers come from a clean server process, never forked from a parent whose OpenCV
    # thread pool is running (that deadlocks the child)
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    try:
        with tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="item") as bar:
            results = list(bar)
    except BaseException:  # an interrupt, or one item's error: the other workers' work is moot
        _end_workers(pool)
        raise
    pool.shutdown()
    return results
