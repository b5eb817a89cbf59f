"""Progress of a running flow, for the CLI: simulation tasks done and the named phase.

Process-wide callbacks, set by the CLI around a flow call; the flow reports through
:func:`report_progress` and :func:`report_phase` and never needs to know who listens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[int, int], None]
PhaseCallback = Callable[[str], None]
_progress: ProgressCallback | None = None
_phase: PhaseCallback | None = None

#: The phases a forecast run reports, in order (the CLI adds "starting Prefect" before them).
PHASES: tuple[str, ...] = ("preparing", "simulating", "building tables", "publishing", "report")


@contextmanager
def progress_reporting(
    callback: ProgressCallback, phase: PhaseCallback | None = None
) -> Iterator[None]:
    """Call ``callback(done, total)`` as simulation tasks finish and ``phase(name)`` as each
    named phase of the run (:data:`PHASES`) starts."""
    global _progress, _phase
    previous, _progress = _progress, callback
    previous_phase, _phase = _phase, phase
    try:
        yield
    finally:
        _progress, _phase = previous, previous_phase


def report_progress(done: int, total: int) -> None:
    """Tell the current callback, if any, that ``done`` of ``total`` tasks have finished."""
    if _progress is not None:
        _progress(done, total)


def report_phase(name: str) -> None:
    """Tell the current phase callback, if any, that phase ``name`` starts."""
    if _phase is not None:
        _phase(name)
