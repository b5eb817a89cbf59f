"""Task runners: threads or worker processes on this machine, or Dask (local or a cluster)."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Self

from prefect.task_runners import (
    ProcessPoolTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
    _initialize_process_pool_worker,
)

from flows import cancellation
from pipeline.spec.request import AUTO_PROCESS_MIN_TRIALS, DEFAULT_WORKERS, RUNNERS


def local_runner(runner: str, *, workers: int, total_trials: int) -> str:
    """The runner ``auto`` stands for: ``processes`` for a run of at least
    :data:`~pipeline.spec.request.AUTO_PROCESS_MIN_TRIALS` trials (all scenarios) on 2 or more
    workers, else ``threads``; any other runner is returned as is.

    Worker processes run the model in parallel (threads take turns on the GIL in its
    month-by-month loop), but each one costs a start (a fresh interpreter importing Prefect,
    numpy, scipy and the pipeline: about 2 s of CPU) that a small run does not earn back.
    """
    if runner != "auto":
        return runner
    return "processes" if workers >= 2 and total_trials >= AUTO_PROCESS_MIN_TRIALS else "threads"


class WorkerProcessRunner(ProcessPoolTaskRunner):
    """Prefect's process pool (spawned worker processes; task parameters and results travel
    pickled) whose workers stop between blocks when the flow process is asked to stop.

    The workers share the flow process's stop flag (:func:`flows.cancellation.shared_stop_event`,
    handed over when each worker starts) and report to the flow process's Prefect API
    (``PREFECT_API_URL`` is exported before the runner is made; else every worker would start an
    embedded server of its own). The runner pickles as its worker count alone: Prefect ships the
    flow, and so its task runner, with every task, and the event can only be inherited.
    """

    def __init__(self, max_workers: int = DEFAULT_WORKERS) -> None:
        super().__init__(
            max_workers=max_workers,
            initializer=cancellation.init_worker,
            initargs=(cancellation.shared_stop_event(),),
        )

    def duplicate(self) -> Self:
        return type(self)(max_workers=self._max_workers)

    def __enter__(self) -> Self:
        """Start the pool, or adopt the one :func:`prestart_workers` started (the same setup
        as ``ProcessPoolTaskRunner.__enter__``, Prefect 3.9, with processes already warm)."""
        warm = _WARM.pop(self._max_workers, None)
        if warm is None:
            return super().__enter__()
        TaskRunner.__enter__(self)
        self._subprocess_message_queue, self._executor = warm
        self._message_forwarding_thread = threading.Thread(
            target=self._forward_subprocess_messages,
            name="ProcessPoolTaskRunnerMessageForwarder",
            daemon=True,
        )
        self._message_forwarding_thread.start()
        self._resolver_executor = ThreadPoolExecutor(max_workers=self._max_workers)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickled_runner, (self._max_workers,))


#: Worker pools started ahead of their flow run, by worker count: (message queue, executor).
_WARM: dict[int, tuple[Any, ProcessPoolExecutor]] = {}


def _import_task_modules() -> None:
    """Run in each new worker: import what a task needs before the first task arrives."""
    import flows.tasks  # noqa: F401


def prestart_workers(workers: int) -> None:
    """Start ``workers`` worker processes now, for the next :class:`WorkerProcessRunner` of that
    size to adopt when its flow run starts.

    A spawned worker spends about 2-4 s importing Prefect, numpy, scipy and the pipeline.
    Started before the flow, that happens while the flow process waits for its embedded
    Prefect server (about 8 s, mostly in one process), not on the run's clock.
    """
    if workers in _WARM:
        return
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_initialize_process_pool_worker,
        initargs=(queue, cancellation.init_worker, (cancellation.shared_stop_event(),)),
    )  # fmt: skip
    for _ in range(workers):  # one process is spawned per submission while none is idle
        executor.submit(_import_task_modules)
    _WARM[workers] = (queue, executor)


def _unpickled_runner(max_workers: int) -> ProcessPoolTaskRunner:
    """A worker's copy of the flow's runner (never used to start processes: Prefect enters it
    around each task but nothing submits to it)."""
    return ProcessPoolTaskRunner(max_workers=max_workers)


def task_runner(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> TaskRunner[Any]:
    """The task runner for ``runner``: threads in this process, worker processes, or Dask
    (``auto`` must be resolved first with :func:`local_runner`).

    Processes and a local Dask cluster: this process's Prefect API is exported to the workers
    first (else each worker process would start its own embedded server). Dask:
    ``dask_address`` (``tcp://host:port``) connects to an existing cluster, whose workers need
    sma-forecast installed and ``PREFECT_API_URL`` set (docs/scaling.md); without one, a local
    cluster of ``workers`` single-threaded worker processes is started with the flow. Same seed
    and chunk size give the same numbers on any runner.
    """
    if dask_address and runner != "dask":
        raise ValueError("--dask-address needs --runner dask")
    if runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner not in RUNNERS or runner == "auto":
        raise ValueError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
    from flows._env import export_api_url

    if runner == "processes":
        prestart_workers(workers)  # before the server starts: both go on at once
        export_api_url()
        return WorkerProcessRunner(max_workers=workers)
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("--runner dask needs the dask extra: pip install -e '.[dask]'") from exc
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    export_api_url()
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "processes": True, "threads_per_worker": 1,
                        "dashboard_address": ":0"},
    )  # fmt: skip
