"""The forecast flow on Dask (prefect-dask's DaskTaskRunner) gives the thread runner's numbers.

A real ``distributed.LocalCluster`` with 2 worker processes. The session's ``prefect_harness``
exports ``PREFECT_API_URL`` before the cluster starts, so the worker processes report to the
same Prefect API instead of starting servers of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("prefect_dask")
distributed = pytest.importorskip("distributed")

from pipeline.outputs import io  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

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
def cluster() -> Iterator[distributed.LocalCluster]:
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    ) as local:
        yield local


def _assert_same_numbers(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_existing_cluster_gives_the_thread_runners_numbers(  # type: ignore[no-untyped-def]
    threads_run, cluster, tmp_path: Path
) -> None:
    """--runner dask --dask-address tcp://...: tasks run in both worker processes."""
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
    with pytest.raises(ValueError, match="unknown runner"):
        task_runner("processes")
