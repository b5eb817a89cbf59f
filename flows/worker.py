"""What a worker process of the ``processes`` runner (flows/runners.py) runs when it starts.

Prefect-free on purpose: a pool pickles its initializer by module and name, so the worker
imports this module, not flows.runners, and never loads Prefect (about 2 s of CPU a worker,
which the workers spent while the flow process started the embedded Prefect server on the same
cores). tests/test_dask.py checks that a worker has no Prefect in ``sys.modules``.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Callable
from multiprocessing.synchronize import Event as ProcessEvent

from flows import cancellation


def start(shared: ProcessEvent, warm_up: Callable[[], None] | None = None) -> None:
    """Initializer: adopt the flow process's stop flag (:func:`flows.cancellation.init_worker`),
    import what the offloaded calls need (the model, tables, Sobol' indices and figures) and
    run ``warm_up`` (e.g. :func:`pipeline.compose.warm_up` of the run's scenarios) before the
    first call arrives."""
    cancellation.init_worker(shared)
    import pipeline.compose  # noqa: F401
    import pipeline.report.drawing  # noqa: F401

    if warm_up is not None:
        try:
            warm_up()
        except Exception:  # noqa: BLE001, S110 - it only fills caches: a task meeting the same
            pass  # error reports it, where a failed initializer would break the whole pool

    # At exit, spare the interpreter's final full garbage collection of the imported
    # libraries' objects (~0.15 s of CPU a worker, while the flow waits on its pool's shutdown);
    # atexit handlers run before that collection.
    atexit.register(gc.freeze)


def ready() -> None:
    """Nothing: submitted once per worker so that the pool spawns every process at once."""
