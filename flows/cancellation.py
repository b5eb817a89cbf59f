"""Prompt shutdown: SIGTERM and SIGINT stop the simulation between blocks.

A signal sets a process-wide flag; every block group checks it before each block
(:func:`pipeline.compose.run_group`'s ``stop``) and raises :class:`~pipeline.compose.Cancelled`,
so worker threads finish within one block instead of running the whole simulation out. The
signal is then passed on (Prefect's SIGTERM handler, Python's KeyboardInterrupt), the flow
records the failed run, and the CLI exits 143 (SIGTERM) or 130 (SIGINT). Dask worker
processes do not see the flag (their scheduler cancels them when the client goes away).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

_STOP = threading.Event()
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Terminated(BaseException):
    """The process received SIGTERM (a BaseException, like KeyboardInterrupt)."""


def stop_requested() -> bool:
    """True once SIGTERM or SIGINT arrived (checked between blocks)."""
    return _STOP.is_set()


def request_stop() -> None:
    _STOP.set()


def reset() -> None:
    """Clear the flag (a new run in the same process, e.g. in tests)."""
    _STOP.clear()


def _chain(previous: Any) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        _STOP.set()
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
