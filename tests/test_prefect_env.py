"""Prefect runs quietly with the project's defaults (flows/_env.py) and the conftest fixtures work.

Orchestration smoke tests only: no model numbers are checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

# Text users must never see (measured on Prefect 3.9.1 without the defaults; see
# docs/dev-notes-prefect.md).
NOISE = ("Failed to send telemetry", "database is locked", "Traceback", "Error flushing")


def _assert_quiet(text: str) -> None:
    found = [needle for needle in NOISE if needle.lower() in text.lower()]
    assert not found, f"unexpected {found} in output:\n{text[-4000:]}"


def test_env_defaults_never_override_the_user() -> None:
    code = (
        "import os, flows._env as e; "
        "print(os.environ['PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS'], "
        "os.environ['PREFECT_SERVER_ANALYTICS_ENABLED'])"
    )
    env = {**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "7"}
    env.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()  # fmt: skip
    assert out == ["7", "false"]


def test_tiny_flow_runs_quietly_under_the_harness(
    prefect_harness: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from prefect import flow, task, unmapped
    from prefect.cache_policies import NO_CACHE
    from prefect.client.orchestration import get_client
    from prefect.logging import get_run_logger
    from prefect.runtime import flow_run
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=0)
    def scale(block: int, factor: int) -> int:
        return block * factor

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def tiny(n: int = 5) -> tuple[str, int]:
        get_run_logger().info("tiny flow with %d blocks", n)
        return str(flow_run.id), sum(scale.map(range(n), unmapped(3)).result())

    run_id, total = tiny(n=5)

    assert total == 3 * sum(range(5))
    with get_client(sync_client=True) as client:
        recorded = client.read_flow_run(UUID(run_id))
    assert recorded.state is not None and recorded.state.is_completed()
    assert str(client.api_url).startswith(prefect_harness.rstrip("/"))
    captured = capfd.readouterr()
    _assert_quiet(captured.out + captured.err)


@pytest.mark.slow
def test_first_run_on_a_fresh_prefect_home_is_quiet(tmp_path: Path, repo_root: Path) -> None:
    """What a user sees from a flow process's embedded server on a new machine (cold database
    migration, then 150 tasks so that the server is still writing when the process exits)."""
    script = textwrap.dedent(
        """
        import flows  # applies flows._env before Prefect is imported
        from prefect import flow, task
        from prefect.cache_policies import NO_CACHE
        from prefect.task_runners import ThreadPoolTaskRunner

        @task(cache_policy=NO_CACHE)
        def one(i: int) -> int:
            return i

        @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
        def many(n: int) -> int:
            return sum(one.map(range(n)).result())

        print("RESULT", many(150))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    env.pop("DO_NOT_TRACK", None)
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_root, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "RESULT 11175" in result.stdout
    _assert_quiet(output)


DUMMY_FLOWS = """
import datetime as dt
import json

from prefect import flow, serve
from prefect.schedules import Cron
from pydantic import BaseModel, ConfigDict


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    n_trials: int


@flow(name="dummy-nightly")
def nightly() -> None:
    pass


@flow(name="dummy-adhoc")
def adhoc(out_file: str, n: int = 1, spec: Spec | None = None, as_of: dt.date | None = None,
          overrides: dict | None = None) -> None:
    record = {"n": n, "spec": spec.model_dump() if spec else None,
              "spec_type": type(spec).__name__, "as_of": str(as_of),
              "as_of_type": type(as_of).__name__, "overrides": overrides}
    with open(out_file, "a") as fh:
        fh.write(json.dumps(record) + "\\n")


if __name__ == "__main__":
    serve(
        nightly.to_deployment(name="nightly", schedules=[Cron("0 2 * * *", timezone="Asia/Seoul")]),
        adhoc.to_deployment(name="adhoc"),
    )
"""


@pytest.mark.server
@pytest.mark.slow
def test_serve_cron_schedule_and_adhoc_runs(prefect_server: Any, tmp_path: Path) -> None:
    (tmp_path / "dummy_flows.py").write_text(DUMMY_FLOWS)
    out_file = tmp_path / "runs.jsonl"
    serve_cmd = [sys.executable, "dummy_flows.py"]
    with prefect_server.serve(
        serve_cmd, cwd=tmp_path, deployments=["dummy-nightly/nightly", "dummy-adhoc/adhoc"]
    ):
        nightly = prefect_server.read_deployment("dummy-nightly/nightly")
        assert [s["schedule"] for s in nightly["schedules"]] == [
            {"cron": "0 2 * * *", "timezone": "Asia/Seoul", "day_or": True}
        ]
        # 02:00 in Seoul (UTC+9, no DST) is 17:00 UTC.
        deadline = time.monotonic() + 120
        while not (upcoming := prefect_server.flow_runs("dummy-nightly/nightly", limit=3)):
            assert time.monotonic() < deadline, "the scheduler made no runs for the cron"
            time.sleep(1)
        assert all(r["expected_start_time"].endswith("T17:00:00Z") for r in upcoming), upcoming
        # The CLI path: --param values and --params are JSON; --watch waits for a final state.
        prefect_server.cli(
            "deployment", "run", "dummy-adhoc/adhoc", "--param", f"out_file={out_file}",
            "--param", "n=3", "--params",
            json.dumps({"spec": {"name": "base", "n_trials": 100}, "as_of": "2025-01-31",
                        "overrides": {"a.b": [1, 2]}}),
            "--watch", "--watch-timeout", "180",
        )  # fmt: skip
        # The Python path: a date and a plain dict are encoded by Prefect's client.
        import datetime as dt

        run = prefect_server.run_deployment(
            "dummy-adhoc/adhoc",
            {"out_file": str(out_file), "as_of": dt.date(2026, 3, 1),
             "spec": {"name": "alt", "n_trials": 7}},
        )  # fmt: skip
        assert run.state.is_completed(), run.state
    first, second = (json.loads(line) for line in out_file.read_text().splitlines())
    assert first == {
        "n": 3, "spec": {"name": "base", "n_trials": 100}, "spec_type": "Spec",
        "as_of": "2025-01-31", "as_of_type": "date", "overrides": {"a.b": [1, 2]},
    }  # fmt: skip
    assert (second["as_of"], second["as_of_type"], second["spec_type"]) == (
        "2026-03-01", "date", "Spec",
    )  # fmt: skip
