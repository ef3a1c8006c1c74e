"""Concurrency for fan-out: run one task per parent on a bounded thread pool, yield in parent order.

Results come out in the order of the inputs whatever order the tasks finish in, so a fan-out's
records are deterministic (parent order, then page order). At most `window` tasks are submitted
ahead of the one being waited for, so memory stays bounded however many parents there are. The
first failure in input order is raised; when that happens, or when the consumer stops early, the
`stop` event is set (tasks check it between requests and during retry waits), tasks not yet started
are cancelled and the pool is shut down before the exception leaves.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(
    task: Callable[[T], R], items: Iterable[T], concurrency: int, stop: threading.Event,
    window: int | None = None, name: str = "oaamap-http",
) -> Iterator[R]:
    """Apply `task` to every item on `concurrency` threads; yield the results in item order.

    Args:
        task: the work for one item (one request chain); may raise.
        items: the inputs, consumed lazily as the window moves.
        concurrency: threads; 1 runs every task inline, in order, on the calling thread.
        stop: set on failure or early exit so running tasks can give up.
        window: tasks in flight ahead of the one being waited for (default 4 x concurrency).
        name: the worker threads' name prefix.

    Raises:
        Exception: the first exception raised by a task, in item order.
    """
    if concurrency <= 1:
        for item in items:
            yield task(item)
        return
    window = window or concurrency * 4
    iterator = iter(items)
    pending: deque[Future[R]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=name)
    try:
        _fill(pool, task, iterator, pending, window)
        while pending:
            result = pending.popleft().result()
            _fill(pool, task, iterator, pending, window)
            yield result
    finally:
        if pending:
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _fill(pool: ThreadPoolExecutor, task: Callable[[T], R], iterator: Iterator[T],
          pending: deque[Future[R]], window: int) -> None:
    while len(pending) < window:
        try:
            item = next(iterator)
        except StopIteration:
            return
        pending.append(pool.submit(task, item))
