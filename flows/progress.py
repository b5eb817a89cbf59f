"""Progress of a running flow, for the CLI's progress bar (a process-wide callback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[int, int], None]
_progress: ProgressCallback | None = None


@contextmanager
def progress_reporting(callback: ProgressCallback) -> Iterator[None]:
    """Call ``callback(done, total)`` as simulation tasks finish (the CLI's progress bar)."""
    global _progress
    previous, _progress = _progress, callback
    try:
        yield
    finally:
        _progress = previous


def report_progress(done: int, total: int) -> None:
    """Tell the current callback, if any, that ``done`` of ``total`` tasks have finished."""
    if _progress is not None:
        _progress(done, total)
