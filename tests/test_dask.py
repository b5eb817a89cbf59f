"""The forecast flow on worker processes (flows/runners.py) and on Dask (prefect-dask's
DaskTaskRunner) gives the thread runner's numbers.

Dask: a real ``distributed.LocalCluster`` with 2 worker processes. The session's
``prefect_harness`` exports ``PREFECT_API_URL`` before the cluster starts, so the worker
processes report to the same Prefect API instead of starting servers of their own.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.outputs import io

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("prefect_dask") is None
    or importlib.util.find_spec("distributed") is None,
    reason="needs the dask extra",
)

AS_OF = dt.date(2026, 11, 29)
# Small blocks keep it short; several blocks per task so each worker gets whole groups.
PARAMS = {"scenarios": ["baseline", "hardline"], "n_trials": 6000, "seed": 29, "as_of": AS_OF,
          "chunk_size": 1500, "trials_sample": 50}  # fmt: skip


def _published(out: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for name, key in (("summary", ["scenario", "metric", "statistic"]),
                      ("histograms", ["scenario", "metric", "bin_index"]),
                      ("sensitivity", None), ("trials", ["scenario", "trial_index"])):  # fmt: skip
        frame = io.read_dataset(out, name).to_pandas().drop(columns=["run_id", "created_at"])
        key = key or [c for c in frame.columns if frame[c].dtype == object]
        frames[name] = frame.sort_values(key).reset_index(drop=True)
    return frames


@pytest.fixture(scope="module")
def threads_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:  # type: ignore[type-arg]
    from flows.forecast import forecast_flow

    out = tmp_path_factory.mktemp("threads")
    result = forecast_flow("threads", workers=2)(output_dir=str(out), **PARAMS)
    return result, _published(out)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import distributed

    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as local:
        yield local


def _assert_same_numbers(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_worker_processes_give_the_thread_runners_numbers(threads_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--runner processes: the tasks' work runs in 2 worker processes and publishes exactly
    the thread runner's numbers."""
    from flows.forecast import forecast_flow
    from flows.runners import WorkerProcessRunner

    thread_result, thread_tables = threads_run
    flow = forecast_flow("processes", workers=2)
    assert isinstance(flow.task_runner, WorkerProcessRunner)
    result = flow(output_dir=str(tmp_path), **PARAMS)
    assert result.headline == thread_result.headline
    _assert_same_numbers(thread_tables, _published(tmp_path))
    runs = io.read_dataset(tmp_path, "runs").to_pandas()
    assert list(runs.status) == ["completed"] and runs.n_trials.iloc[0] == PARAMS["n_trials"]
    assert runs.n_trials_total.iloc[0] == 2 * PARAMS["n_trials"]
    assert (tmp_path / "reports").is_dir()  # figures drawn in the workers too


def test_offload_runs_in_a_worker_process_only_on_that_runner() -> None:
    import os

    from prefect import flow

    from flows.runners import offload, on_worker_processes, task_runner

    def pids() -> tuple[bool, set[int]]:
        return on_worker_processes(), {offload(os.getpid) for _ in range(4)}

    assert flow(pids, task_runner=task_runner("threads"))() == (False, {os.getpid()})
    on_pool, seen = flow(pids, task_runner=task_runner("processes", workers=2))()
    assert on_pool and os.getpid() not in seen and 1 <= len(seen) <= 2
    assert offload(os.getpid) == os.getpid()  # outside a flow run: here


def _held_until(path: str) -> int:
    """Worker-process work that waits for ``path`` to exist (at most 120 s); its pid."""
    import os
    import time

    deadline = time.monotonic() + 120
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()


def test_processes_runner_hands_over_the_next_tasks_while_its_processes_are_busy(
    tmp_path: Path,
) -> None:
    """2 worker processes, 4 tasks: all 4 reach the pool while the first 2 hold both processes
    (each process has its next call queued, not waiting for Prefect to start the task)."""
    import os
    import time

    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from flows.runners import THREADS_PER_PROCESS, WorkerProcessRunner, offload, task_runner

    runner = task_runner("processes", workers=2)
    assert isinstance(runner, WorkerProcessRunner) and runner.processes == 2
    assert runner.duplicate().processes == 2 and THREADS_PER_PROCESS >= 2
    release = tmp_path / "release"
    handed_over: list[int] = []

    @task(cache_policy=NO_CACHE)
    def held(i: int) -> int:
        handed_over.append(i)
        return offload(_held_until, str(release))

    @flow(task_runner=runner)
    def four() -> tuple[int, set[int]]:
        futures = [held.submit(i) for i in range(4)]
        deadline = time.monotonic() + 120  # a guard against hanging, not a timing assertion
        while len(handed_over) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        reached = len(handed_over)
        release.touch()
        return reached, {f.result() for f in futures}

    reached, pids = four()
    assert reached == 4
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def test_worker_processes_start_without_prefect() -> None:
    """A worker process imports the model and the figures at its start, never Prefect (its
    start overlaps the embedded server's on the same cores; docs/scaling.md)."""
    from prefect import flow

    from flows.runners import offload, task_runner

    probe = "sorted(m for m in ('prefect', 'pipeline.compose', 'matplotlib') if m in " \
        "__import__('sys').modules)"  # fmt: skip

    def loaded() -> list[str]:
        return offload(eval, probe)  # type: ignore[no-any-return]  # eval pickles; a lambda would not

    assert flow(loaded, task_runner=task_runner("processes", workers=2))() == [
        "matplotlib", "pipeline.compose",
    ]  # fmt: skip


def test_each_worker_process_runs_the_warm_up_before_its_first_call(tmp_path: Path) -> None:
    """``prestart_workers(n, warm_up)``: every process runs ``warm_up`` in its initializer (the
    CLI passes ``pipeline.compose.warm_up`` of the run's scenarios)."""
    import functools
    import os

    from flows import runners, worker

    def warmed() -> set[str]:
        return {p.name for p in tmp_path.iterdir()}

    # Path.touch of a per-process file: picklable by reference, and it names the process.
    pool = runners._start_pool(2, functools.partial(_touch_pid_file, tmp_path))
    try:
        pid = pool.submit(os.getpid).result()
        assert str(pid) in warmed()  # before the process took its first call
        pool.submit(worker.ready).result()
    finally:
        pool.shutdown()  # waits for both processes: each has run its initializer
    assert len(warmed()) == 2 and str(os.getpid()) not in warmed()


def test_a_failing_warm_up_leaves_the_worker_processes_working() -> None:
    """The warm-up only fills caches: if it raises, the pool must still take calls (a failed
    initializer would break every process of the pool)."""
    import functools
    import os

    from flows import runners

    failing = runners._start_pool(1, functools.partial(int, "not a number"))  # ValueError
    try:
        assert failing.submit(os.getpid).result(timeout=60) != os.getpid()
    finally:
        failing.shutdown()


def _touch_pid_file(folder: Path) -> None:
    import os

    (folder / str(os.getpid())).touch()


def test_warm_up_fills_the_caches_plans_use_and_changes_no_plan() -> None:
    from datetime import date

    from pipeline.compose import plan_for, prepare_run, warm_up
    from pipeline.spec.marginals import _beta_table
    from pipeline.spec.request import RunRequest

    prepared = prepare_run(RunRequest.checked(n_trials=10_000, as_of=date(2026, 11, 29)))
    cold = [plan_for(s, prepared.settings, prepared.evidence) for s in prepared.scenarios]
    _beta_table.cache_clear()
    warm_up(prepared.scenarios, prepared.settings, prepared.evidence)
    assert _beta_table.cache_info().currsize > 0
    misses = _beta_table.cache_info().misses
    warm = [plan_for(s, prepared.settings, prepared.evidence) for s in prepared.scenarios]
    assert _beta_table.cache_info().misses == misses  # every table was already there
    u = np.random.default_rng(7).random(4_096)
    for a, b in zip(cold, warm, strict=True):
        assert a.marginals.keys() == b.marginals.keys()
        for name in a.marginals:
            np.testing.assert_array_equal(a.marginals[name].ppf(u), b.marginals[name].ppf(u))


@needs_dask
def test_existing_cluster_gives_the_thread_runners_numbers(  # type: ignore[no-untyped-def]
    threads_run, cluster, tmp_path: Path
) -> None:
    """--runner dask --dask-address tcp://...: tasks run in both worker processes."""
    import distributed

    from flows.forecast import forecast_flow

    thread_result, thread_tables = threads_run
    with distributed.Client(cluster) as client:
        client.wait_for_workers(2)
        with distributed.get_task_stream(client) as stream:
            flow = forecast_flow("dask", workers=2, dask_address=cluster.scheduler_address)
            result = flow(output_dir=str(tmp_path), **PARAMS)
    workers = {t["worker"] for t in stream.data}
    assert len(workers) == 2, stream.data  # 2 scenarios x 2 groups over 2 worker processes
    assert result.headline == thread_result.headline
    _assert_same_numbers(thread_tables, _published(tmp_path))
    runs = io.read_dataset(tmp_path, "runs").to_pandas()
    assert list(runs.status) == ["completed"] and runs.n_trials.iloc[0] == PARAMS["n_trials"]
    assert runs.n_trials_total.iloc[0] == 2 * PARAMS["n_trials"]  # per scenario, and the total


@needs_dask
def test_local_cluster_started_by_the_runner(threads_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--runner dask without an address: the runner starts (and stops) a LocalCluster."""
    from flows.forecast import forecast_flow

    _, thread_tables = threads_run
    forecast_flow("dask", workers=2)(output_dir=str(tmp_path), **PARAMS)
    _assert_same_numbers(thread_tables, _published(tmp_path))


def test_runner_arguments_are_checked() -> None:
    from flows.runners import task_runner

    with pytest.raises(ValueError, match="needs --runner dask"):
        task_runner("threads", dask_address="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="needs --runner dask"):
        task_runner("processes", dask_address="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="unknown runner"):
        task_runner("mpi")
    with pytest.raises(ValueError, match="unknown runner"):
        task_runner("auto")  # resolved by local_runner first


def test_auto_runner_uses_processes_for_big_runs_only() -> None:
    from flows.runners import local_runner
    from pipeline.spec.request import AUTO_PROCESS_MIN_TRIALS as BIG

    assert local_runner("auto", workers=2, total_trials=BIG, cores=2) == "processes"
    assert local_runner("auto", workers=2, total_trials=BIG - 1, cores=2) == "threads"
    assert local_runner("auto", workers=1, total_trials=100 * BIG, cores=2) == "threads"
    assert local_runner("auto", workers=3, total_trials=100 * BIG, cores=2) == "threads"
    assert local_runner("auto", workers=8, total_trials=BIG, cores=8) == "processes"
    for chosen in ("threads", "processes", "dask"):
        assert local_runner(chosen, workers=2, total_trials=1) == chosen
