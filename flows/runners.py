"""Task runners: threads or worker processes on this machine, or Dask (local or a cluster)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Self, TypeVar

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows import cancellation, worker
from pipeline.spec.request import AUTO_PROCESS_MIN_TRIALS, DEFAULT_WORKERS, RUNNERS

R = TypeVar("R")


def local_runner(runner: str, *, workers: int, total_trials: int, cores: int | None = None) -> str:
    """The runner ``auto`` stands for: ``processes`` for a run of at least
    :data:`~pipeline.spec.request.AUTO_PROCESS_MIN_TRIALS` trials (all scenarios) on 2 or more
    workers, but no more workers than ``cores`` (default: this machine's), else ``threads``;
    any other runner is returned as is.

    More worker processes than cores add no speed, and each holds its own copy of numpy,
    scipy and the pipeline (about 0.2 GB, counted by the run's memory bound in
    pipeline/compose.py for an explicit ``processes`` runner); threads share one.

    Worker processes run the model in parallel (threads take turns on the GIL between the
    core's many numpy calls), but each one costs a start (a fresh interpreter importing Prefect,
    numpy, scipy and the pipeline: about 2 s of CPU) that a small run does not earn back.
    """
    if runner != "auto":
        return runner
    cores = cores if cores is not None else (os.cpu_count() or 1)
    big = total_trials >= AUTO_PROCESS_MIN_TRIALS
    return "processes" if big and 2 <= workers <= cores else "threads"


#: Task threads per worker process of :class:`WorkerProcessRunner`: while one task's work runs
#: in a process, the next task's is already queued for it, so Prefect's bookkeeping between
#: two tasks (finishing one, starting the next: ~0.1 s measured) does not leave it idle.
THREADS_PER_PROCESS = 2


class WorkerProcessRunner(ThreadPoolTaskRunner[Any]):
    """Tasks in threads of the flow process, their numerical work in worker processes.

    Prefect runs and records each task in a thread (a few ms of bookkeeping); the task hands
    its one call into pipeline/ to a pool of ``max_workers`` spawned worker processes
    (:func:`offload`), which never talk to Prefect. Prefect's own ``ProcessPoolTaskRunner``
    was measured at about 0.3 s of CPU per task in its workers (each task rebuilds Prefect's
    settings and API client there; docs/scaling.md): a run's ~35 tasks would spend seconds on
    it. Arguments and results travel pickled: a block group's result is about 0.3 MB (its
    histograms compressed: ~0.05 s to pickle), the first group's about 30 MB (it holds the rank
    sensitivity sample: ~0.1 s).

    The workers share the flow process's stop flag (:func:`flows.cancellation.shared_stop_event`,
    handed over when each one starts), so SIGTERM/SIGINT stop them between blocks too.
    """

    pool: ProcessPoolExecutor | None = None
    """The worker processes, while the runner is entered (a flow run)."""

    def __init__(self, max_workers: int = DEFAULT_WORKERS) -> None:
        self.processes = max_workers
        """Worker processes (``max_workers``); the runner has :data:`THREADS_PER_PROCESS` times
        as many task threads."""
        super().__init__(max_workers=THREADS_PER_PROCESS * max_workers)

    def duplicate(self) -> Self:
        return type(self)(max_workers=self.processes)

    def __enter__(self) -> Self:
        super().__enter__()
        self.pool = _WARM.pop(self.processes, None) or _start_pool(self.processes)
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            super().__exit__(exc_type, exc_value, traceback)
        finally:
            pool, self.pool = self.pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["pool"] = None
        return state


#: Pools started ahead of their flow run (:func:`prestart_workers`), by worker count.
_WARM: dict[int, ProcessPoolExecutor] = {}


def _current_pool() -> ProcessPoolExecutor | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context is not None else None
    return runner.pool if isinstance(runner, WorkerProcessRunner) else None


def offload(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``fn(*args, **kwargs)`` in a worker process if the current flow run is on
    :class:`WorkerProcessRunner`, else here (``fn`` and its arguments must pickle)."""
    pool = _current_pool()
    if pool is None:
        return fn(*args, **kwargs)
    return pool.submit(fn, *args, **kwargs).result()


def offload_each(fn: Callable[..., R], items: Sequence[Any], /, *args: Any) -> list[R]:
    """``[fn(item, *args) for item in items]``, all submitted to the worker processes at once
    (in order of ``items``) if the current flow run is on :class:`WorkerProcessRunner`, else
    computed here one after another."""
    pool = _current_pool()
    if pool is None:
        return [fn(item, *args) for item in items]
    futures = [pool.submit(fn, item, *args) for item in items]
    return [future.result() for future in futures]


def on_worker_processes() -> bool:
    """True inside a flow run on :class:`WorkerProcessRunner`."""
    return _current_pool() is not None


def _start_pool(workers: int, warm_up: Callable[[], None] | None = None) -> ProcessPoolExecutor:
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=worker.start, initargs=(cancellation.shared_stop_event(), warm_up),
    )  # fmt: skip
    for _ in range(workers):  # one process is spawned per submission while none is idle
        executor.submit(worker.ready)
    return executor


def prestart_workers(workers: int, warm_up: Callable[[], None] | None = None) -> None:
    """Start ``workers`` worker processes now, for the next :class:`WorkerProcessRunner` of that
    size to adopt when its flow run starts; each one runs ``warm_up`` (a picklable callable,
    e.g. a ``functools.partial`` of :func:`pipeline.compose.warm_up`) after its imports.

    A spawned worker spends 1-2 s importing numpy, scipy, matplotlib and the pipeline. Started
    before the flow, that happens while the embedded Prefect server starts (several seconds,
    mostly in one process), not on the run's clock.
    """
    if workers not in _WARM:
        _WARM[workers] = _start_pool(workers, warm_up)


def task_runner(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> TaskRunner[Any]:
    """The task runner for ``runner``: threads in this process, worker processes, or Dask
    (``auto`` must be resolved first with :func:`local_runner`).

    Processes: :class:`WorkerProcessRunner`. A local Dask cluster: this process's Prefect API is
    exported to the workers first (else each worker process would start its own embedded
    server). Dask:
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
    if runner == "processes":
        prestart_workers(workers)  # the workers start while the flow starts Prefect
        return WorkerProcessRunner(max_workers=workers)
    try:
        from prefect_dask.task_runners import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("--runner dask needs the dask extra: pip install -e '.[dask]'") from exc
    if dask_address:
        return DaskTaskRunner(address=dask_address)
    from flows._env import export_api_url

    export_api_url()
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": workers, "processes": True, "threads_per_worker": 1,
                        "dashboard_address": ":0"},
    )  # fmt: skip
