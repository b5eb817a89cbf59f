"""Merging task results as they finish, with memory bounded whatever the number of tasks."""

from __future__ import annotations

import gc
import queue
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

#: Finished results between two full garbage collections (see :func:`merge_as_completed`).
COLLECT_EVERY = 4


class Future(Protocol[R_co]):
    """What the merge loop needs of a Prefect future."""

    @property
    def task_run_id(self) -> UUID: ...

    def add_done_callback(self, fn: Callable[[Any], None]) -> None: ...

    def result(self) -> R_co: ...


def completed(futures: list[Future[R]]) -> Iterator[Future[R]]:
    """Yield futures as they finish, holding no reference to one once it is yielded.

    ``prefect.futures.as_completed`` keeps every future it was given (and so every task's
    result) until the last one finishes. Here the caller's list is emptied, so a merged
    result can be freed while later groups run.
    """
    done: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()
    count = len(futures)
    for future in futures:
        future.add_done_callback(done.put)
    futures.clear()
    for _ in range(count):
        yield done.get()


def merge_as_completed(
    futures: list[Future[R]],
    owner: Mapping[UUID, str],
    merged: MutableMapping[str, R],
    merge: Callable[[R, R], R],
    on_merged: Callable[[str, bool], None],
) -> None:
    """Merge each finished future's result into ``merged[owner[id]]`` in completion order.

    ``on_merged(key, last)`` runs after each merge; ``last`` is true when that key has no
    future left. ``futures`` is emptied. Futures and their results sit in reference cycles
    inside Prefect, freed only by a full collection (~1 ms inside :func:`frozen_heap`, as the
    flow runs it; 0.2-0.3 s outside): one every :data:`COLLECT_EVERY` results, so memory holds
    the merged results, the tasks still running and at most a few finished ones, however many
    tasks (and trials) the run has.
    """
    left: dict[str, int] = {}
    for future in futures:
        key = owner[future.task_run_id]
        left[key] = left.get(key, 0) + 1
    uncollected = 0
    for future in completed(futures):
        key = owner[future.task_run_id]
        part = future.result()
        merged[key] = part if key not in merged else merge(merged[key], part)
        del future, part
        uncollected += 1
        if uncollected >= COLLECT_EVERY:
            gc.collect()
            uncollected = 0
        left[key] -= 1
        on_merged(key, left[key] == 0)
    gc.collect()


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave every object alive now out of garbage collections until the block ends.

    A full collection scans every tracked object: after Prefect, pydantic, numpy, scipy and
    the pipeline are imported and Prefect's client is running, that is ~0.15-0.3 s of the
    flow process's CPU each time, on the run's critical path (the merge loop collects, and
    Python's own full collections come on top). Frozen (``gc.freeze``), the objects that
    exist before the simulation are skipped, and a collection scans only what the run has
    allocated since: the task futures, their states and results. Unfrozen on the way out,
    so anything that became garbage meanwhile is collected later. If something else froze
    objects already, its arrangement is left alone.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
