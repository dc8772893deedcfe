"""An ordered, progress-reporting map over worker processes (the CPU-bound synthesis uses every core)."""

from __future__ import annotations

import multiprocessing
import os
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


def _single_threaded() -> None:
    cv2.setNumThreads(1)  # one process per core: nested threads would only contend


def ordered_map(
    fn: Callable[[In], Out], items: Iterable[In], desc: str, workers: int | None = None
) -> list[Out]:
    items = list(items)
    workers = min(worker_count() if workers is None else workers, max(1, len(items)))
    if workers == 1:
        return [fn(item) for item in tqdm(items, desc=desc, unit="item")]
    # forkserver: workers come from a clean server process, never forked from a parent whose OpenCV
    # thread pool is running (that deadlocks the child)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_single_threaded) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="item"))
