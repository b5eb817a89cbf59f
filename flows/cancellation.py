"""Prompt shutdown: SIGTERM and SIGINT stop the simulation between blocks.

A signal sets a process-wide flag; every block group checks it before each block
(:func:`pipeline.compose.run_group`'s ``stop``) and raises :class:`~pipeline.compose.Cancelled`,
so worker threads finish within one block instead of running the whole simulation out. The
signal is then passed on (Prefect's SIGTERM handler, Python's KeyboardInterrupt), the flow
records the failed run, and the CLI exits 143 (SIGTERM) or 130 (SIGINT).

Worker processes of the ``processes`` runner (flows/runners.py) see the flag too: the flow
process shares a :func:`shared_stop_event` with them when they start (:func:`init_worker`), sets
it with its own flag, and each worker checks it before each block. Dask worker processes do not
see it (their scheduler cancels them when the client goes away).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from multiprocessing.synchronize import Event as ProcessEvent
from types import FrameType
from typing import Any

_STOP = threading.Event()
_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: The flag shared with worker processes (None until a process runner asks for it; in a worker,
#: the flow process's event).
_SHARED: ProcessEvent | None = None


class Terminated(BaseException):
    """The process received SIGTERM (a BaseException, like KeyboardInterrupt)."""


def stop_requested() -> bool:
    """True once SIGTERM or SIGINT arrived (checked between blocks), in this process or, in a
    worker process, in the flow process."""
    return _STOP.is_set() or (_SHARED is not None and _SHARED.is_set())


def request_stop() -> None:
    _STOP.set()
    if _SHARED is not None:
        _SHARED.set()


def reset() -> None:
    """Clear the flag (a new run in the same process, e.g. in tests)."""
    _STOP.clear()
    if _SHARED is not None:
        _SHARED.clear()


def shared_stop_event() -> ProcessEvent:
    """The stop flag as a process-shared event, for worker processes started with the spawn
    method (pass it to :func:`init_worker` as the pool's initializer argument)."""
    global _SHARED
    if _SHARED is None:
        import multiprocessing

        _SHARED = multiprocessing.get_context("spawn").Event()
        if _STOP.is_set():
            _SHARED.set()
    return _SHARED


def init_worker(shared: ProcessEvent) -> None:
    """Initializer of a worker process: adopt the flow process's stop flag, and let SIGINT
    (Ctrl-C reaches the terminal's whole process group) set the flag instead of raising
    KeyboardInterrupt wherever the worker happens to be; the flow process decides the exit."""
    global _SHARED
    _SHARED = shared
    signal.signal(signal.SIGINT, lambda signum, frame: _STOP.set())


def _chain(previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        request_stop()
        if _quiet_console:
            _silence_console()
        if callable(previous):
            previous(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt
        else:
            raise Terminated(signum)

    return handler


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block: SIGTERM/SIGINT set the stop flag, then reach the previous handler
    (Prefect's, which raises in the main thread). Does nothing outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _chain(previous[s]))
    try:
        yield
    finally:
        for s in _SIGNALS:
            signal.signal(s, previous[s])


def install_exit_handlers(*, quiet_console: bool = True) -> None:
    """For a command-line process: SIGTERM raises :class:`Terminated` (so ``finally`` blocks
    and atexit, which stops the embedded Prefect server, run) and SIGINT KeyboardInterrupt;
    both set the stop flag first.

    With ``quiet_console``, a signal also silences the console's log handlers: every block
    group then fails with Cancelled, and a traceback each is noise (the API keeps the logs).
    """
    global _quiet_console
    _quiet_console = quiet_console
    signal.signal(signal.SIGTERM, _chain(None))
    signal.signal(signal.SIGINT, _chain(None))


_quiet_console = False


def _silence_console() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.CRITICAL)
