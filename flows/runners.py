"""Task runners: threads in this process, or Dask (a local cluster or an existing one)."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.spec.request import DEFAULT_WORKERS, RUNNERS


def task_runner(
    runner: str = "threads", *, workers: int = DEFAULT_WORKERS, dask_address: str | None = None
) -> TaskRunner[Any]:
    """The task runner for ``runner``: threads in this process, or Dask.

    Dask: ``dask_address`` (``tcp://host:port``) connects to an existing cluster, whose workers
    need sma-forecast installed and ``PREFECT_API_URL`` set (docs/scaling.md); without one, a
    local cluster of ``workers`` single-threaded worker processes is started with the flow and
    this process's Prefect API is exported to them first (else each worker process would start
    its own embedded server). Same seed and chunk size give the same numbers on any runner.
    """
    if runner == "threads":
        if dask_address:
            raise ValueError("--dask-address needs --runner dask")
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner != "dask":
        raise ValueError(f"unknown runner {runner!r}; allowed: {', '.join(RUNNERS)}")
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
