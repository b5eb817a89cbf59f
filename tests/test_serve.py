"""The scheduled path: a real `prefect server start`, `sma-forecast serve`, and an ad hoc run
triggered through Prefect that writes outputs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline.outputs import io

pytestmark = pytest.mark.slow


def test_serve_registers_both_deployments_and_runs_adhoc(
    prefect_server: Any, repo_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "outputs"
    argv = [sys.executable, "-m", "flows.cli", "serve", "--output", str(out)]
    with prefect_server.serve(
        argv, cwd=repo_root, deployments=["nightly-forecast/nightly", "forecast/adhoc"]
    ):
        nightly = prefect_server.read_deployment("nightly-forecast/nightly")
        assert [s["schedule"] for s in nightly["schedules"]] == [
            {"cron": "0 2 * * *", "timezone": "Asia/Seoul", "day_or": True}
        ]
        assert nightly["parameters"]["output_dir"] == str(out)
        adhoc = prefect_server.read_deployment("forecast/adhoc")
        assert adhoc["schedules"] == []
        deadline = time.monotonic() + 120
        while not (upcoming := prefect_server.flow_runs("nightly-forecast/nightly", limit=2)):
            assert time.monotonic() < deadline, "the scheduler made no nightly runs"
            time.sleep(1)
        # 02:00 in Seoul is 17:00 UTC the day before.
        assert all(r["expected_start_time"].endswith("T17:00:00Z") for r in upcoming)
        prefect_server.cli(
            "deployment", "run", "forecast/adhoc", "--param", "n_trials=2000",
            "--params", json.dumps({"scenarios": ["hardline"], "seed": 5, "as_of": "2027-03-01",
                                    "chunk_size": 1000,
                                    "overrides": {"us_headline_ask_usd_bn.value": 12}}),
            "--watch", "--watch-timeout", "300",
        )  # fmt: skip
    runs = io.read_dataset(out, "runs").to_pandas()
    assert list(runs.status) == ["completed"]
    assert runs.prefect_flow_run_id.notna().all() and runs.n_trials.iloc[0] == 2000
    # An ad hoc run with overrides is a what-if: recorded in runs, published apart.
    assert list(runs.run_kind) == ["what-if"] and "us_headline_ask_usd_bn" in runs.overrides.iloc[0]
    assert io.read_dataset(out, "summary").num_rows == 0
    summary = io.read_dataset(out / "whatif" / runs.run_id.iloc[0], "summary").to_pandas()
    assert set(summary.scenario) == {"hardline"}
    assert {str(d) for d in summary.as_of_date} == {"2027-03-01"}
