"""What the report shows, read from the published Parquet files alone (never a scenario file).

:func:`load_report_data` picks the runs of one as-of date (or one run) and reads ``runs``,
``summary``, ``histograms``, ``sensitivity`` and, when present, ``drift`` and ``inputs`` into a
:class:`ReportData`.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.common import MONTH_ABBREVIATIONS, PathLike
from pipeline.outputs import io
from pipeline.outputs.tables._columns import MONTH_INDEX_UNIT_RE

__all__ = [
    "ReportData",
    "ReportError",
    "as_date",
    "horizon_year",
    "load_report_data",
    "optional_float",
    "settlement_years",
    "year_words",
]


class ReportError(ValueError):
    """The outputs hold nothing to report for the requested date or run."""


@dataclass(frozen=True)
class ReportData:
    """Everything the report shows, read from the Parquet outputs."""

    output_dir: Path
    as_of_date: dt.date
    scenarios: list[str]
    runs: pd.DataFrame
    """``runs`` rows of the runs whose partitions are shown."""
    run_of: dict[str, str]
    """scenario -> run_id of its shown partition."""
    summary: pd.DataFrame
    histograms: pd.DataFrame
    tornado: pd.DataFrame
    drift: pd.DataFrame
    inputs: pd.DataFrame
    history: pd.DataFrame
    """increase_pct p10/p50/p90 per (scenario, as_of_date) up to this date."""
    stats: dict[str, dict[tuple[str, str], tuple[float | None, float | None, int]]] = field(
        default_factory=dict
    )
    """scenario -> (metric, statistic) -> (value, mc_standard_error, n_trials)."""
    sobol: pd.DataFrame = field(default_factory=pd.DataFrame)
    """``sensitivity`` rows of method ``sobol`` for the first-year increase (may be empty)."""

    def value(self, scenario: str, metric: str, statistic: str) -> float | None:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[0]

    def se(self, scenario: str, metric: str, statistic: str) -> float | None:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[1]

    def n(self, scenario: str, metric: str, statistic: str) -> int:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[2]


def as_date(x: Any) -> dt.date:
    """A date, datetime or ISO string (as pandas returns partition values) as a date."""
    if isinstance(x, dt.datetime):
        return x.date()
    if isinstance(x, dt.date):
        return x
    return dt.date.fromisoformat(str(x)[:10])


def optional_float(x: Any) -> float | None:
    """A float, or None for a missing value (None, NaN, pd.NA)."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return None
    return float(x)


def horizon_year(data: ReportData) -> int | None:
    """The last year of the ``settled_by_YYYY`` metrics shown, if any."""
    years = [
        int(m.rsplit("_", 1)[1])
        for m in data.summary.metric.unique()
        if m.startswith("settled_by_") and m.rsplit("_", 1)[1].isdigit()
    ]
    return max(years) if years else None


def year_words(data: ReportData) -> str:
    """What the years of the outputs are, in words: "calendar year" when model month 0 is a
    January (Korea), else "fiscal year (Apr to Mar)", read from the month-index unit."""
    frame = data.summary
    units = frame.loc[frame.metric == "talks_start_month", "unit"] if "unit" in frame else ()
    for unit in set(units):
        if (match := MONTH_INDEX_UNIT_RE.fullmatch(str(unit))) and match.group(1) != "Jan":
            first = MONTH_ABBREVIATIONS.index(match.group(1))
            return f"fiscal year ({match.group(1)} to {MONTH_ABBREVIATIONS[first - 1]})"
    return "calendar year"


def settlement_years(data: ReportData) -> list[int]:
    """Years of the ``settled_in_YYYY`` metrics shown (the settlement-time distribution; the
    host's fiscal years, calendar years for Korea)."""
    return sorted(
        {
            int(m.rsplit("_", 1)[1])
            for m in data.summary.metric.unique()
            if m.startswith("settled_in_") and m.rsplit("_", 1)[1].isdigit()
        }
    )


def _read_frame(
    out: Path, name: str, where: ds.Expression, columns: list[str] | None = None
) -> pd.DataFrame:
    """Rows of one dataset as a frame, ``as_of_date`` as dates and ``scenario`` as str."""
    table = io.read_dataset(out, name, columns=columns, filter=where)
    frame = table.to_pandas(date_as_object=True)
    if "as_of_date" in frame:
        frame["as_of_date"] = [as_date(d) for d in frame["as_of_date"]]
    if "scenario" in frame:
        frame["scenario"] = frame["scenario"].astype(str)
    return frame


def _choose_runs(
    out: Path,
    done: ds.Expression,
    as_of_date: dt.date | None,
    run_id: str | None,
) -> tuple[dt.date, dict[str, str]]:
    """The as-of date to show and, per scenario, the run whose partition is shown."""
    keys = _read_frame(out, "summary", done, ["run_id", "scenario", "as_of_date", "created_at"])
    keys = keys.drop_duplicates(["run_id", "scenario", "as_of_date"])
    if keys.empty:
        raise ReportError(
            f"no completed forecast in {out}: run `sma-forecast run --output {out}` first"
        )
    if run_id is not None:
        chosen = keys[keys.run_id == run_id]
        if chosen.empty:
            raise ReportError(
                f"run {run_id!r} has no published summary in {out} (unknown, failed, or "
                "replaced by a later run of the same date)"
            )
        day = chosen.as_of_date.iloc[0]
        if as_of_date is not None and as_of_date != day:
            raise ReportError(f"run {run_id!r} is as of {day}, not {as_of_date}")
    else:
        day = as_of_date if as_of_date is not None else max(keys.as_of_date)
        chosen = keys[keys.as_of_date == day]
        if chosen.empty:
            have = ", ".join(sorted({d.isoformat() for d in keys.as_of_date})[-10:])
            raise ReportError(f"no completed forecast as of {day} in {out}; available: {have}")
    chosen = chosen.sort_values(["created_at", "run_id"]).drop_duplicates("scenario", keep="last")
    return day, dict(zip(chosen.scenario, chosen.run_id, strict=True))


def _read_history(
    out: Path, done: ds.Expression, day: dt.date, scenarios: list[str]
) -> pd.DataFrame:
    """increase_pct p10/p50/p90 of the latest completed run per (scenario, as_of_date <= day)."""
    hist_where = (
        done
        & (ds.field("metric") == "increase_pct")
        & ds.field("statistic").isin(pa.array(["p10", "p50", "p90"]))
        & (ds.field("as_of_date") <= pa.scalar(day, pa.date32()))
    )
    history = _read_frame(out, "summary", hist_where)
    history = history[history.scenario.isin(scenarios)]
    if not history.empty:
        latest = (
            history[["scenario", "as_of_date", "created_at", "run_id"]]
            .drop_duplicates()
            .sort_values(["created_at", "run_id"])
            .drop_duplicates(["scenario", "as_of_date"], keep="last")
        )
        history = history.merge(latest[["scenario", "as_of_date", "run_id"]], how="inner")
    return history


def _summary_stats(
    summary: pd.DataFrame,
) -> dict[str, dict[tuple[str, str], tuple[float | None, float | None, int]]]:
    """scenario -> (metric, statistic) -> (value, mc_standard_error, n_trials)."""
    stats: dict[str, dict[tuple[str, str], tuple[float | None, float | None, int]]] = {}
    for s, m, st, v, se, n in zip(
        summary.scenario, summary.metric, summary.statistic, summary.value,
        summary.mc_standard_error, summary.n_trials, strict=True,
    ):  # fmt: skip
        stats.setdefault(s, {})[(m, st)] = (optional_float(v), optional_float(se), int(n))
    return stats


def load_report_data(
    output_dir: PathLike, *, as_of_date: dt.date | None = None, run_id: str | None = None
) -> ReportData:
    """Read what the report of one as-of date (or of one run) shows.

    Default: the latest as-of date with a completed run; every scenario published for that
    date (each partition holds the last run of that date and scenario). With ``run_id``: that
    run's date and the scenarios whose partitions it still holds. Raises :class:`ReportError`
    when there is nothing to show.
    """
    out = Path(output_dir)
    runs = io.read_dataset(out, "runs").to_pandas(date_as_object=True)
    runs["as_of_date"] = [as_date(d) for d in runs["as_of_date"]]
    completed = runs[runs.status == "completed"]
    done = ds.field("run_id").isin(pa.array(completed.run_id.tolist(), pa.string()))
    day, run_of = _choose_runs(out, done, as_of_date, run_id)
    used = completed[completed.run_id.isin(set(run_of.values()))].sort_values(
        "created_at", ascending=False
    )
    order: list[str] = []
    for names in used.scenarios:
        order += [s for s in str(names).split(",") if s in run_of and s not in order]
    order += sorted(s for s in run_of if s not in order)

    ids = pa.array(sorted(set(run_of.values())), pa.string())
    here = (ds.field("as_of_date") == pa.scalar(day, pa.date32())) & ds.field("run_id").isin(ids)
    summary = _read_frame(out, "summary", here)
    summary = summary[
        [run_of.get(s) == r for s, r in zip(summary.scenario, summary.run_id, strict=True)]
    ]
    histograms = _read_frame(
        out,
        "histograms",
        # The first-year level is named in the host currency (first_year_krw_bn for Korea).
        here
        & pc.match_substring_regex(ds.field("metric"), r"^(increase_pct|first_year_[a-z]{3}_bn)$"),
    )
    tornado = _read_frame(
        out,
        "sensitivity",
        here & (ds.field("method") == "tornado") & (ds.field("metric") == "increase_pct"),
    )
    sobol = _read_frame(
        out,
        "sensitivity",
        here & (ds.field("method") == "sobol") & (ds.field("metric") == "increase_pct"),
    )
    return ReportData(
        output_dir=out,
        as_of_date=day,
        scenarios=order,
        runs=used,
        run_of=run_of,
        summary=summary,
        histograms=histograms,
        tornado=tornado,
        drift=_read_frame(out, "drift", here),
        inputs=_read_frame(out, "inputs", here),
        history=_read_history(out, done, day, order),
        stats=_summary_stats(summary),
        sobol=sobol,
    )
