"""Drift between runs: the comparison rows, the flag rule, and which run is "previous"."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from report_fixtures import publish_forecast

from pipeline.outputs import io
from pipeline.outputs.drift import (
    KEY_METRICS,
    KEY_STATISTICS,
    Z_THRESHOLD,
    Provenance,
    compute_drift,
    drift_artifact_rows,
    drift_cause,
    previous_summary,
)
from pipeline.outputs.schema import DRIFT_SCHEMA, SCHEMA_VERSION, SUMMARY_SCHEMA

D1, D2, D3 = dt.date(2026, 2, 20), dt.date(2026, 2, 27), dt.date(2026, 3, 5)
T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
SCENARIOS = ("baseline", "hardline")


def rows(table: pa.Table) -> dict[tuple[str, str], dict[str, object]]:
    return {(r["metric"], r["statistic"]): r for r in table.to_pylist()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Four runs of two scenarios published in order into one output folder:

    first (D1), same (D1, same seed and inputs), changed (D1, Korean CPI p95 raised to 4%),
    other_seed (D2, a different seed; compared with `changed`).
    """
    out = tmp_path_factory.mktemp("drift") / "outputs"
    first, t_first = publish_forecast(out, SCENARIOS, as_of=D1)
    same, t_same = publish_forecast(out, SCENARIOS, as_of=D1)
    changed, t_changed = publish_forecast(
        out, SCENARIOS, as_of=D1, overrides={"korea_cpi_pct.p95": 4.0}
    )
    return {
        "out": out,
        "first": (first, t_first),
        "same": (same, t_same),
        "changed": (changed, t_changed),
    }


# --------------------------------------------------------------------------- on real runs


def test_first_run_has_nothing_to_compare(runs: dict[str, object]) -> None:
    _, tables = runs["first"]  # type: ignore[misc]
    drift = tables["baseline"]["drift"]
    assert drift.schema.equals(DRIFT_SCHEMA, check_metadata=False)
    n_prob = sum(
        1 for s in tables["baseline"]["summary"].column("statistic").to_pylist() if s == "prob"
    )
    assert drift.num_rows == len(KEY_METRICS) * len(KEY_STATISTICS) + n_prob
    for col in ("previous_run_id", "previous_as_of_date", "previous_value", "change", "z"):
        assert drift.column(col).null_count == drift.num_rows, col
    assert not any(drift.column("flagged").to_pylist())


def test_same_seed_and_inputs_give_zero_unflagged_drift(runs: dict[str, object]) -> None:
    first_id, _ = runs["first"]  # type: ignore[misc]
    _, tables = runs["same"]  # type: ignore[misc]
    for scenario in SCENARIOS:
        drift = tables[scenario]["drift"]
        assert set(drift.column("previous_run_id").to_pylist()) == {first_id}
        assert set(drift.column("previous_as_of_date").to_pylist()) == {D1}
        r = drift.to_pylist()
        assert all(x["change"] == 0.0 for x in r), [x for x in r if x["change"] != 0.0]
        assert not any(x["flagged"] for x in r)
        # Zero because the runs are bit-identical, not because noise was unknown.
        noisy = [x for x in r if x["noise_se"] and x["noise_se"] > 0]
        assert len(noisy) >= 20
        assert all(x["z"] == 0.0 for x in noisy)


def test_changed_input_moves_beyond_noise_explained_by_config(runs: dict[str, object]) -> None:
    same_id, _ = runs["same"]  # type: ignore[misc]
    _, tables = runs["changed"]  # type: ignore[misc]
    drift = rows(tables["baseline"]["drift"])
    assert drift[("increase_pct", "p50")]["previous_run_id"] == same_id
    # Higher CPI raises the CPI-indexed 2028 contribution and the KRW first-year amount...
    for key in (("contribution_krw_bn_2028", "p50"), ("first_year_krw_bn", "p50")):
        row = drift[key]
        assert row["beyond_noise"], row
        assert row["change"] > 0 and row["z"] > Z_THRESHOLD
        assert abs(row["change"]) > row["flag_threshold"]
        # ...which the configuration explains: no alarm.
        assert row["cause"] == "config" and not row["flagged"]
        assert row["cause_detail"] == "config: the scenario's configuration changed"
    # ...and leaves the package-deal draw alone (common random numbers: exactly unchanged).
    assert drift[("package_deal", "prob")]["change"] == 0.0
    assert not drift[("package_deal", "prob")]["beyond_noise"]
    moved = {k for k, r in drift.items() if r["beyond_noise"]}
    assert moved <= {
        (m, s) for m in ("contribution_krw_bn_2028", "first_year_krw_bn") for s in KEY_STATISTICS
    }
    assert not any(r["flagged"] for r in drift.values())
    # The other scenario's configuration did not change: its cause is its own.
    hardline = tables["hardline"]["drift"].to_pylist()
    assert {r["cause"] for r in hardline} == {"config"}  # korea_cpi_pct is overridden there too


def test_month_boundary_without_changes_is_explained_as_calendar(tmp_path: Path) -> None:
    """Nightly-style runs on consecutive days across a month boundary, same config, evidence
    and code: values move (the simulation starts a month later) but nothing is flagged."""
    out = tmp_path / "outputs"
    day1, day2 = dt.date(2026, 9, 30), dt.date(2026, 10, 1)
    publish_forecast(out, ["baseline"], as_of=day1, n_trials=3000, with_sobol=False)
    second, tables = publish_forecast(out, ["baseline"], as_of=day2, n_trials=3000,
                                      with_sobol=False)  # fmt: skip
    r = tables["baseline"]["drift"].to_pylist()
    assert {x["previous_as_of_date"] for x in r} == {day1}
    assert {x["cause"] for x in r} == {"calendar"}
    assert r[0]["cause_detail"] == (
        "calendar: as of 2026-10-01 instead of 2026-09-30, a new as-of month "
        "(the simulation starts in 2026-10 instead of 2026-09)"
    )
    assert sum(bool(x["change"]) for x in r) >= 10  # the calendar did move values
    assert not any(x["flagged"] for x in r)  # (a move beyond noise would be explained too)
    # Read back, the published rows say the same.
    published = io.read_dataset(out, "drift").to_pylist()
    assert {x["cause"] for x in published if x["run_id"] == second} == {"calendar"}


def _made_of(day: dt.date = D1, config: str | None = "c1", evidence: str | None = "e1",
             version: str | None = "0.1.0", commit: str | None = "a" * 40) -> Provenance:  # fmt: skip
    return Provenance(day, config, evidence, version, commit)


@pytest.mark.parametrize(
    ("current", "cause"),
    [
        (_made_of(), "none"),
        (_made_of(day=D1 + dt.timedelta(days=1)), "calendar"),
        (_made_of(evidence="e2"), "evidence"),
        (_made_of(config="c2"), "config"),
        (_made_of(commit="b" * 40), "code"),
        (_made_of(version="0.2.0"), "code"),
        (_made_of(day=D3, evidence="e2", config="c2"), "calendar+evidence+config"),
        # Not recorded on one side (a run of schema version 2): not claimed as a cause.
        (_made_of(evidence=None, config=None, commit=None), "none"),
    ],
)
def test_drift_cause(current: Provenance, cause: str) -> None:
    found = drift_cause(current, _made_of())
    assert found.cause == cause
    assert found.explained is (cause != "none")


def test_cause_decides_the_flag() -> None:
    prev = summary([("increase_pct", "p50", 10.0, 0.1, 1000, 0.01)])
    cur = summary([("increase_pct", "p50", 12.0, 0.1, 1000, 0.01)])
    for cause, flagged in ((None, True), (drift_cause(_made_of(), _made_of()), True),
                           (drift_cause(_made_of(evidence="e2"), _made_of()), False)):  # fmt: skip
        (row,) = compute_drift(
            cur, prev, run_id="b", previous_run_id="a", created_at=T0, cause=cause
        ).to_pylist()
        assert row["beyond_noise"] and row["flagged"] is flagged
        assert row["cause"] == (cause.cause if cause is not None else None)


def test_noise_alone_is_not_flagged(tmp_path: Path) -> None:
    """Same inputs, different seeds: changes of the size of the noise, none flagged."""
    out = tmp_path / "outputs"
    publish_forecast(out, ["baseline"], as_of=D2, seed=1)
    _, tables = publish_forecast(out, ["baseline"], as_of=D2, seed=2)
    r = tables["baseline"]["drift"].to_pylist()
    zs = [abs(x["z"]) for x in r if x["z"] is not None]
    assert len(zs) >= 20
    assert sum(z > 0 for z in zs) >= 20  # the seeds did change the numbers
    assert not any(x["flagged"] for x in r), [x for x in r if x["flagged"]]
    assert max(zs) < Z_THRESHOLD


def test_drift_is_published_with_the_run(runs: dict[str, object]) -> None:
    out: Path = runs["out"]  # type: ignore[assignment]
    changed_id, _ = runs["changed"]  # type: ignore[misc]
    table = io.read_dataset(out, "drift")
    assert set(table.column("run_id").to_pylist()) == {changed_id}  # the D1 partitions
    assert set(table.column("scenario").to_pylist()) == set(SCENARIOS)
    for path in (out / "drift").rglob("*.parquet"):
        assert pq.read_schema(path).remove_metadata().equals(DRIFT_SCHEMA.remove_metadata())


def test_artifact_rows(runs: dict[str, object]) -> None:
    _, first = runs["first"]  # type: ignore[misc]
    _, changed = runs["changed"]  # type: ignore[misc]
    none = drift_artifact_rows({"baseline": first["baseline"]["drift"]})
    assert len(none) == 1 and none[0]["scenario"] == "baseline"
    assert none[0]["quantity"] == "(no earlier completed run to compare)"
    out = drift_artifact_rows({s: changed[s]["drift"] for s in SCENARIOS})
    assert not [r for r in out if r["flagged"] == "YES"]  # explained by the configuration
    assert {r["cause"] for r in out} == {"config"}
    assert {r["quantity"] for r in out} >= {"contribution_krw_bn_2028 p50"}
    assert {r["scenario"] for r in out} == set(SCENARIOS)
    assert all(list(r) == list(none[0]) for r in out)  # one set of columns for the artifact
    everything = drift_artifact_rows({"baseline": changed["baseline"]["drift"]}, all_rows=True)
    assert len(everything) == changed["baseline"]["drift"].num_rows


# --------------------------------------------------------------------------- which previous run


def test_previous_summary_choice(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    assert previous_summary(out, "baseline") == (None, None, None)
    early, _ = publish_forecast(out, ["baseline"], as_of=D1, n_trials=1500, with_drift=False)
    late, _ = publish_forecast(out, ["baseline"], as_of=D3, n_trials=1500, with_drift=False)

    prev = previous_summary(out, "baseline")
    assert (prev.run_id, prev.as_of_date) == (late, D3)
    assert prev.summary is not None and set(prev.summary.column("run_id").to_pylist()) == {late}
    # The run being published is never its own previous run.
    assert previous_summary(out, "baseline", exclude_run_id=late).run_id == early
    # A backfill of a date between the two compares with the run before it.
    assert previous_summary(out, "baseline", as_of=D2).run_id == early
    assert previous_summary(out, "baseline", as_of=D1 - dt.timedelta(days=1)).run_id is None
    assert previous_summary(out, "hardline").run_id is None

    # Partitions of a run without a completed runs row (crashed mid-publication) do not count.
    runs_file = out / "runs" / f"as_of_date={D3.isoformat()}" / f"part-{late}.parquet"
    runs_file.unlink()
    assert previous_summary(out, "baseline").run_id == early


# --------------------------------------------------------------------------- the flag rule


def summary(
    entries: list[tuple[str, str, float | None, float | None, int, float | None]],
) -> pa.Table:
    """SUMMARY_SCHEMA rows from (metric, statistic, value, se, n, quantile_error_bound)."""
    return pa.Table.from_pylist(
        [
            {
                "run_id": "r",
                "metric": m,
                "statistic": s,
                "value": v,
                "mc_standard_error": se,
                "n_trials": n,
                "unit": "probability" if s == "prob" else "%",
                "quantile_error_bound": b,
                "schema_version": SCHEMA_VERSION,
                "created_at": T0,
            }
            for m, s, v, se, n, b in entries
        ],
        schema=SUMMARY_SCHEMA,
    )


@pytest.mark.parametrize(
    ("before", "after", "flagged"),
    [
        # quantile: noise = hypot(0.1, 0.1) = 0.1414, threshold = 4 * 0.1414 + 2 * 0.01 = 0.5857
        ((10.0, 0.1), (10.5, 0.1), False),
        ((10.0, 0.1), (10.6, 0.1), True),
        ((10.0, 0.1), (9.3, 0.1), True),
        ((10.0, 0.1), (10.0, 0.1), False),
    ],
)
def test_quantile_flag_threshold(
    before: tuple[float, float], after: tuple[float, float], flagged: bool
) -> None:
    prev = summary([("increase_pct", "p50", before[0], before[1], 1000, 0.01)])
    cur = summary([("increase_pct", "p50", after[0], after[1], 1000, 0.01)])
    (row,) = compute_drift(cur, prev, run_id="b", previous_run_id="a", created_at=T0).to_pylist()
    assert row["flagged"] is flagged
    assert row["noise_se"] == pytest.approx(math.hypot(0.1, 0.1))
    assert row["flag_threshold"] == pytest.approx(Z_THRESHOLD * math.hypot(0.1, 0.1) + 0.02)
    assert row["change"] == pytest.approx(after[0] - before[0])
    assert row["z"] == pytest.approx(row["change"] / row["noise_se"])


def test_probability_flags_and_edge_cases() -> None:
    n = 10_000
    prev = summary(
        [
            ("lapse", "prob", 0.50, None, n, None),
            ("furlough", "prob", 0.50, None, n, None),
            ("reopened", "prob", 0.0, 0.0, n, None),
            ("troop_threat", "prob", 0.0, 0.0, n, None),
            ("increase_pct", "p10", None, None, 0, None),
            ("increase_pct", "p90", 20.0, None, 100, 0.01),  # undefined s.e. (point mass)
            ("not_compared", "mean", 1.0, 0.1, n, None),
        ]
    )
    cur = summary(
        [
            ("lapse", "prob", 0.52, None, n, None),  # z = 0.02 / 0.00707 = 2.8
            ("furlough", "prob", 0.55, None, n, None),  # z = 7.1
            ("reopened", "prob", 0.0, 0.0, n, None),  # degenerate, unchanged
            ("troop_threat", "prob", 1.0, 0.0, n, None),  # degenerate, moved: not chance
            ("increase_pct", "p10", 5.0, 0.1, 100, 0.01),  # undefined before
            ("increase_pct", "p90", 20.015, None, 100, 0.01),  # within the bins' resolution
            ("package_deal", "prob", 0.3, None, n, None),  # new outcome
            ("not_compared", "mean", 5.0, 0.1, n, None),
        ]
    )
    drift = compute_drift(
        cur, prev, run_id="b", previous_run_id="a", previous_as_of_date=D1, created_at=T0
    )
    assert drift.schema.equals(DRIFT_SCHEMA, check_metadata=False)
    r = rows(drift)
    assert ("not_compared", "mean") not in r
    assert not r[("lapse", "prob")]["flagged"]
    assert r[("lapse", "prob")]["noise_se"] == pytest.approx(
        math.sqrt(0.5 * 0.5 / n + 0.52 * 0.48 / n)
    )
    assert r[("furlough", "prob")]["flagged"]
    assert r[("reopened", "prob")]["change"] == 0.0 and r[("reopened", "prob")]["z"] is None
    assert not r[("reopened", "prob")]["flagged"]
    assert r[("troop_threat", "prob")]["flagged"] and r[("troop_threat", "prob")]["z"] is None
    assert r[("increase_pct", "p10")]["change"] is None
    assert not r[("increase_pct", "p10")]["flagged"]
    assert r[("increase_pct", "p90")]["noise_se"] is None
    assert not r[("increase_pct", "p90")]["flagged"]  # 0.015 < 0.02 = two bin widths
    assert r[("package_deal", "prob")]["previous_value"] is None
    assert not r[("package_deal", "prob")]["flagged"]
    # Key quantiles first, then probabilities in summary order.
    assert list(r)[:2] == [("increase_pct", "p10"), ("increase_pct", "p90")]
    assert set(drift.column("previous_as_of_date").to_pylist()) == {D1}


def test_without_previous_run() -> None:
    cur = summary([("lapse", "prob", 0.5, None, 100, None)])
    (row,) = compute_drift(
        cur, None, run_id="b", previous_run_id="ignored", created_at=T0
    ).to_pylist()
    assert row["previous_run_id"] is None and row["previous_value"] is None
    assert row["flagged"] is False and row["value"] == 0.5


def test_created_at_must_be_utc() -> None:
    cur = summary([("lapse", "prob", 0.5, None, 100, None)])
    with pytest.raises(ValueError, match="UTC"):
        compute_drift(
            cur, None, run_id="b", previous_run_id=None, created_at=dt.datetime(2026, 3, 1)
        )
