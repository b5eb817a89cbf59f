"""One self-contained HTML report per as-of date, built from the Parquet outputs alone.

``build_report(outputs)`` reads ``runs``, ``summary``, ``histograms``, ``sensitivity`` and, when
present, ``drift`` and ``inputs`` (never a scenario file), draws the charts of
pipeline/report/figures.py and writes::

    <outputs>/reports/as_of_date=YYYY-MM-DD/index.html     the page (inline CSS, no script)
    <outputs>/reports/as_of_date=YYYY-MM-DD/*.png          its charts, linked by relative path

The folder is written under ``reports/.staging/`` and renamed into place (the old one goes to
``reports/.trash/`` and is deleted), holding ``flock`` on ``reports/.lock``, so a half-written
report is never visible and a rebuild replaces the whole folder. docs/report.md says how to read
each chart.

The ``inputs`` dataset, which lets the report show each scenario's assumptions without the YAML
files, is made by :func:`inputs_table` when a run is published.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.common import PathLike
from pipeline.outputs import io
from pipeline.outputs.drift import KEY_METRICS, KEY_STATISTICS, Z_THRESHOLD
from pipeline.outputs.records import require_utc
from pipeline.outputs.schema import INPUTS_SCHEMA, SCHEMA_VERSION
from pipeline.report import figures as charts
from pipeline.spec.catalog import INPUT_BY_NAME
from pipeline.spec.distributions import (
    BernoulliSpec,
    BetaSpec,
    CategoricalSpec,
    DiscreteSpec,
    FixedSpec,
    LogNormalSpec,
    Marginal,
    NormalSpec,
    PertSpec,
    TriangularSpec,
    UniformSpec,
    marginal,
)
from pipeline.spec.scenario import Scenario

__all__ = [
    "REFERENCE_SCENARIO",
    "REPORTS",
    "ReportError",
    "build_report",
    "describe_spec",
    "inputs_table",
    "load_report_data",
    "report_artifact_markdown",
    "report_dir",
]

#: Folder under the outputs that holds the reports.
REPORTS: Final[str] = "reports"
#: Scenario whose median contribution path is drawn in every fan-chart panel, if present.
REFERENCE_SCENARIO: Final[str] = "status_quo_holds"
#: Inputs shown in the tornado charts.
TORNADO_TOP: Final[int] = 10


class ReportError(ValueError):
    """The outputs hold nothing to report for the requested date or run."""


def report_dir(output_dir: PathLike, as_of_date: dt.date) -> Path:
    """``<outputs>/reports/as_of_date=YYYY-MM-DD``."""
    return Path(output_dir) / REPORTS / f"as_of_date={as_of_date.isoformat()}"


# --------------------------------------------------------------------------- inputs dataset


def _g(x: float) -> str:
    """A number as an analyst writes it (no trailing zeros, thousands separators)."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.6g}" if abs(x) >= 1000 else f"{x:.6g}"


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, without exponent notation."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    return f"{x:.{max(decimals, 0)}f}"


def describe_spec(spec: Any) -> str:
    """A distribution spec as readable text, e.g. ``PERT(min=0.2, mode=0.55, max=1)``."""
    if isinstance(spec, FixedSpec):
        return f"fixed {_g(spec.value)}"
    if isinstance(spec, UniformSpec):
        return f"uniform({_g(spec.low)} to {_g(spec.high)})"
    if isinstance(spec, NormalSpec | LogNormalSpec):
        pair = spec.quantile_pair()
        if pair is None:
            assert spec.mean is not None and spec.sd is not None
            body = f"mean={_g(spec.mean)}, sd={_g(spec.sd)}"
        else:
            (l1, v1), (l2, v2) = pair
            body = f"p{round(l1 * 100):02d}={_g(v1)}, p{round(l2 * 100):02d}={_g(v2)}"
        text = f"{spec.dist}({body})"
        if spec.low is not None or spec.high is not None:
            lo = _g(spec.low) if spec.low is not None else "-inf"
            hi = _g(spec.high) if spec.high is not None else "inf"
            text += f" truncated to [{lo}, {hi}]"
        return text
    if isinstance(spec, PertSpec):
        shape = "" if spec.shape == 4.0 else f", shape={_g(spec.shape)}"
        return f"PERT(min={_g(spec.min)}, mode={_g(spec.mode)}, max={_g(spec.max)}{shape})"
    if isinstance(spec, TriangularSpec):
        return f"triangular(min={_g(spec.min)}, mode={_g(spec.mode)}, max={_g(spec.max)})"
    if isinstance(spec, BetaSpec):
        return f"beta(alpha={_g(spec.alpha)}, beta={_g(spec.beta)}) on [{_g(spec.low)}, {_g(spec.high)}]"
    if isinstance(spec, BernoulliSpec):
        return f"yes with probability {_g(spec.p)}"
    if isinstance(spec, DiscreteSpec):
        items = ", ".join(f"{_g(v)}: {_g(p)}" for v, p in zip(spec.values, spec.probs, strict=True))
        return f"one of {{{items}}}"
    if isinstance(spec, CategoricalSpec):
        items = ", ".join(f"{c}: {_g(p)}" for c, p in zip(spec.categories, spec.probs, strict=True))
        return f"one of {{{items}}}"
    raise TypeError(f"not a distribution spec: {spec!r}")


#: What the non-random settings mean (pipeline/spec/scenario.py documents them in attribute docstrings,
#: which pydantic does not keep).
_SETTING_DOCS: Final[dict[str, str]] = {
    "calendar_base_year": "First calendar year of the contribution path (model month 0).",
    "horizon_year": "Last calendar year simulated.",
    "agreement_expiry_year": "Last year covered by the agreement in force (12th SMA: 2030).",
    "administration_change_date": "Inauguration of the next US administration.",
    "escalation_cap_pct": "Cap on CPI-linked escalation [%].",
    "cpi_lag_years": "CPI-linked escalation in year y uses CPI of year y - lag.",
    "furlough_after_lapse_months": "Months of lapse before furloughs can start.",
    "reopening": "The US may force talks before the regular successor negotiation.",
    "package_deal": "A package deal may meet part of the US demand outside the SMA.",
    "troop_lever": "The US may threaten troop-posture changes when talks stall.",
    "administration_change": "US demand intensity changes with the administration in 2029.",
    "deadline": "After the negotiation length both sides table final offers.",
    "lapse_furlough": "A lapse can lead to a furlough of Korean USFK workers.",
}


def _setting_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(path, value text, meaning) of the non-random model settings and the correlations."""
    rows: list[tuple[str, str, str]] = []
    model = scenario.model
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if name == "mechanisms":
            for mech, minfo in type(value).model_fields.items():
                flag = getattr(value, mech)
                rows.append(
                    (
                        f"model.mechanisms.{mech}",
                        "on" if flag else "off",
                        minfo.description or _SETTING_DOCS.get(mech, "Model mechanism switch."),
                    )
                )
            continue
        text = (
            "none"
            if value is None
            else value.isoformat()
            if isinstance(value, dt.date)
            else str(value)
        )
        rows.append((f"model.{name}", text, info.description or _SETTING_DOCS.get(name, "")))
    rc = scenario.rank_correlation
    if rc is not None:
        pairs = [
            f"{a} ~ {b}: {_g(rc.matrix[i][j])}"
            for i, a in enumerate(rc.inputs)
            for j, b in enumerate(rc.inputs)
            if j > i and rc.matrix[i][j] != 0
        ]
        rows.append(
            (
                "rank_correlation",
                "; ".join(pairs) or "none",
                "Spearman rank correlations between inputs (Gaussian copula).",
            )
        )
    else:
        rows.append(("rank_correlation", "none", "Inputs are drawn independently."))
    return rows


def inputs_table(
    scenario: Scenario,
    marginals: Mapping[str, Marginal] | None = None,
    *,
    run_id: str,
    created_at: dt.datetime,
) -> pa.Table:
    """The ``inputs`` dataset rows of one scenario of a run (:data:`INPUTS_SCHEMA`).

    One row with the scenario's description, one per model input (its distribution as stated,
    unit, meaning and the 5/50/95% quantiles of the marginal, clipped to the input's allowed
    range as the sampler clips draws; null for categorical inputs), then one per non-random model
    setting and one for the rank correlations. ``marginals`` are the run plan's
    (``plan.marginals``); they are resolved from the scenario when omitted.

    Partition values (as_of_date, scenario) are not columns: pass the table to
    ``io.publish_run`` under the scenario, as dataset ``"inputs"``.
    """
    require_utc(created_at, "created_at")
    records: list[dict[str, object]] = [
        {
            "input": "description",
            "kind": "description",
            "distribution": scenario.description.strip(),
            "unit": "",
            "description": "What the scenario assumes, in words.",
            "p05": None,
            "p50": None,
            "p95": None,
        }
    ]
    levels = np.array([0.05, 0.5, 0.95])
    for name, spec in scenario.inputs.items():
        info = INPUT_BY_NAME[name]
        dist = marginals[name] if marginals is not None else marginal(spec, info.categories)
        q: list[float | None] = [None, None, None]
        if info.kind != "category":
            values = np.clip(dist.ppf(levels), info.low, info.high)
            q = [float(v) for v in values]
        records.append(
            {
                "input": name,
                "kind": "input",
                "distribution": describe_spec(spec),
                "unit": info.unit,
                "description": info.description,
                "p05": q[0],
                "p50": q[1],
                "p95": q[2],
            }
        )
    for path, text, meaning in _setting_rows(scenario):
        records.append(
            {
                "input": path,
                "kind": "setting",
                "distribution": text,
                "unit": "",
                "description": meaning,
                "p05": None,
                "p50": None,
                "p95": None,
            }
        )
    for r in records:
        r.update(run_id=run_id, schema_version=SCHEMA_VERSION, created_at=created_at)
    return pa.Table.from_pylist(records, schema=INPUTS_SCHEMA)


# --------------------------------------------------------------------------- loading


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

    def value(self, scenario: str, metric: str, statistic: str) -> float | None:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[0]

    def se(self, scenario: str, metric: str, statistic: str) -> float | None:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[1]

    def n(self, scenario: str, metric: str, statistic: str) -> int:
        return self.stats.get(scenario, {}).get((metric, statistic), (None, None, 0))[2]


def _as_date(x: Any) -> dt.date:
    if isinstance(x, dt.datetime):
        return x.date()
    if isinstance(x, dt.date):
        return x
    return dt.date.fromisoformat(str(x)[:10])


def _read(
    out: Path, name: str, where: ds.Expression, columns: list[str] | None = None
) -> pd.DataFrame:
    table = io.read_dataset(out, name, columns=columns, filter=where)
    frame = table.to_pandas(date_as_object=True)
    if "as_of_date" in frame:
        frame["as_of_date"] = [_as_date(d) for d in frame["as_of_date"]]
    if "scenario" in frame:
        frame["scenario"] = frame["scenario"].astype(str)
    return frame


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
    runs["as_of_date"] = [_as_date(d) for d in runs["as_of_date"]]
    completed = runs[runs.status == "completed"]
    done = ds.field("run_id").isin(pa.array(completed.run_id.tolist(), pa.string()))
    keys = _read(out, "summary", done, ["run_id", "scenario", "as_of_date", "created_at"])
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
    run_of = dict(zip(chosen.scenario, chosen.run_id, strict=True))
    used = completed[completed.run_id.isin(set(run_of.values()))].sort_values(
        "created_at", ascending=False
    )
    order: list[str] = []
    for names in used.scenarios:
        order += [s for s in str(names).split(",") if s in run_of and s not in order]
    order += sorted(s for s in run_of if s not in order)

    ids = pa.array(sorted(set(run_of.values())), pa.string())
    here = (ds.field("as_of_date") == pa.scalar(day, pa.date32())) & ds.field("run_id").isin(ids)
    summary = _read(out, "summary", here)
    summary = summary[
        [run_of.get(s) == r for s, r in zip(summary.scenario, summary.run_id, strict=True)]
    ]
    histograms = _read(
        out,
        "histograms",
        here & ds.field("metric").isin(pa.array(["increase_pct", "first_year_krw_bn"])),
    )
    tornado = _read(
        out,
        "sensitivity",
        here & (ds.field("method") == "tornado") & (ds.field("metric") == "increase_pct"),
    )
    drift = _read(out, "drift", here)
    inputs = _read(out, "inputs", here)
    hist_where = (
        done
        & (ds.field("metric") == "increase_pct")
        & ds.field("statistic").isin(pa.array(["p10", "p50", "p90"]))
        & (ds.field("as_of_date") <= pa.scalar(day, pa.date32()))
    )
    history = _read(out, "summary", hist_where)
    history = history[history.scenario.isin(order)]
    if not history.empty:
        latest = (
            history[["scenario", "as_of_date", "created_at", "run_id"]]
            .drop_duplicates()
            .sort_values(["created_at", "run_id"])
            .drop_duplicates(["scenario", "as_of_date"], keep="last")
        )
        history = history.merge(latest[["scenario", "as_of_date", "run_id"]], how="inner")

    stats: dict[str, dict[tuple[str, str], tuple[float | None, float | None, int]]] = {}
    for s, m, st, v, se, n in zip(
        summary.scenario, summary.metric, summary.statistic, summary.value,
        summary.mc_standard_error, summary.n_trials, strict=True,
    ):  # fmt: skip
        stats.setdefault(s, {})[(m, st)] = (_num(v), _num(se), int(n))
    return ReportData(
        output_dir=out,
        as_of_date=day,
        scenarios=order,
        runs=used,
        run_of=run_of,
        summary=summary,
        histograms=histograms,
        tornado=tornado,
        drift=drift,
        inputs=inputs,
        history=history,
        stats=stats,
    )


def _num(x: Any) -> float | None:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return None
    return float(x)


# --------------------------------------------------------------------------- labels, formats


def _horizon_year(data: ReportData) -> int | None:
    years = [
        int(m.rsplit("_", 1)[1])
        for m in data.summary.metric.unique()
        if m.startswith("settled_by_") and m.rsplit("_", 1)[1].isdigit()
    ]
    return max(years) if years else None


def event_label(metric: str) -> str:
    """Plain-words name of a yes/no outcome (``summary`` metric with statistic ``prob``)."""
    fixed = {
        "reopened": "talks reopened early under US pressure",
        "settled_by_horizon": "agreement within the horizon",
        "no_deal_by_horizon": "no agreement within the horizon",
        "lapse": "lapse: no agreement in force at some point",
        "furlough": "furlough of Korean USFK workers",
        "troop_threat": "US troop-posture threat",
        "package_deal": "package deal meets part of the demand",
    }
    if metric in fixed:
        return fixed[metric]
    head, _, tail = metric.rpartition("_")
    if head == "settled_by" and tail.isdigit():
        return f"agreement by the end of {tail}"
    if head == "reopened_before" and tail.isdigit():
        return f"early talks opened before {tail}"
    if metric.startswith("escalation_rule_"):
        return f"new agreement escalates by {metric.removeprefix('escalation_rule_')} (if agreed)"
    return metric.replace("_", " ")


METRIC_LABELS: Final[dict[str, str]] = {
    "increase_pct": "first-year increase [%]",
    "first_year_krw_bn": "first-year contribution [KRW bn]",
    "months_to_settlement": "months of talks to agreement",
    "contribution_krw_bn_2028": "contribution in 2028 [KRW bn]",
}


def _fmt(value: float | None, unit: str, *, signed: bool = False, digits: int = 2) -> str:
    """A value for the page: probabilities as %, money with separators."""
    if value is None or math.isnan(value):
        return "–"
    sign = "+" if signed else ""
    if unit == "probability":
        return f"{value * 100:{sign}.1f}{' pp' if signed else '%'}"
    if unit == "%":
        return f"{value:{sign}.{digits}f}{' pp' if signed else '%'}"
    if abs(value) >= 100:
        return f"{value:{sign},.{max(digits - 1, 0)}f}"
    return f"{value:{sign}.{digits}f}"


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    cls: str = "",
    first_is_head: bool = True,
) -> str:
    head = "".join(f"<th scope=col>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if isinstance(cell, _Raw) else _e(cell)
            tag = "th scope=row" if i == 0 and first_is_head else "td"
            cells.append(f"<{tag}>{text}</{tag.split()[0]}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True)
class _Chart:
    file: str
    alt: str
    caption: str


def _quantiles(
    data: ReportData, s: str, metric: str, keys: Sequence[str]
) -> dict[str, float | None]:
    return {k: data.value(s, metric, k) for k in keys}


def _draw_charts(data: ReportData, folder: Path) -> dict[str, list[_Chart]]:
    scen = data.scenarios
    colors = charts.scenario_colors(scen)
    horizon = _horizon_year(data)
    by: dict[str, list[_Chart]] = {}

    events = {
        e: label
        for e, label in (
            ("reopened_before_2029", "early talks before 2029"),
            ("lapse", "lapse (no agreement in force)"),
            ("troop_threat", "US troop-posture threat"),
            ("package_deal", "package deal"),
        )
        if any(data.value(s, e, "prob") is not None for s in scen)
    }
    charts.comparison_chart(
        folder / "scenarios.png",
        scen,
        {s: _quantiles(data, s, "increase_pct", ["p10", "p25", "p50", "p75", "p90"]) for s in scen},
        {s: {e: data.value(s, e, "prob") for e in events} for s in scen},
        events,
        colors,
    )
    by["compare"] = [
        _Chart(
            "scenarios.png",
            "Scenarios side by side: first-year increase ranges and event probabilities",
            "Left: each bar is one scenario's range of the first-year increase (thin: 80% of "
            "outcomes, thick: the middle 50%, dot: median); bars further right mean a larger "
            "increase. Right: the chance of each event"
            + (f" by {horizon}" if horizon else "")
            + " under each scenario.",
        )
    ]

    hists = {
        (s, m): g.sort_values("bin_index")
        for (s, m), g in data.histograms.groupby(["scenario", "metric"], observed=True)
    }
    metrics = {
        "increase_pct": "first-year increase [%]",
        "first_year_krw_bn": "first-year contribution [KRW bn]",
    }
    charts.distribution_chart(
        folder / "distribution.png",
        scen,
        metrics,
        hists,
        {(s, m): _quantiles(data, s, m, ["p10", "p50", "p90"]) for s in scen for m in metrics},
        {s: data.value(s, "settled_by_horizon", "prob") for s in scen},
        colors,
    )
    by["distribution"] = [
        _Chart(
            "distribution.png",
            "Histograms of the first-year settlement per scenario",
            "Each bar is the share of simulated agreements whose first year lands in that bin "
            "(trials without an agreement are left out); the solid line is the median and 80% "
            "of agreements fall between the dashed lines (p10 and p90). Bins: 2.5 % and "
            "100 KRW bn wide.",
        )
    ]

    paths: dict[str, pd.DataFrame] = {}
    levels = ["p05", "p10", "p25", "p50", "p75", "p90", "p95"]
    contrib = data.summary[
        data.summary.metric.str.startswith("contribution_krw_bn_")
        & data.summary.statistic.isin(levels)
    ]
    for s, g in contrib.groupby("scenario", observed=True):
        wide = g.assign(year=g.metric.str.rsplit("_", n=1).str[1].astype(int)).pivot_table(
            index="year", columns="statistic", values="value", aggfunc="first"
        )
        paths[str(s)] = wide.reindex(columns=levels).sort_index()
    reference = REFERENCE_SCENARIO if REFERENCE_SCENARIO in paths else None
    charts.fan_chart(folder / "contribution_path.png", scen, paths, colors, reference)
    years = sorted({y for f in paths.values() for y in f.index})
    span = f"{years[0]} to {years[-1]}" if years else ""
    by["path"] = [
        _Chart(
            "contribution_path.png",
            f"Fan chart of Korea's yearly contribution {span}",
            f"Korea's contribution in each calendar year {span}: the line is the median, the "
            "shaded bands hold 50%, 80% and 90% of the simulated paths"
            + (
                f"; the dashed line repeats the median of {reference} (the 12th SMA honoured "
                "to its end) for comparison."
                if reference
                else "."
            ),
        )
    ]

    tornado_charts = []
    for s in scen:
        rows = data.tornado[data.tornado.scenario == s]
        name = f"drivers_{s}.png"
        charts.tornado_chart(
            folder / name, s, rows, data.value(s, "increase_pct", "p50"),
            "first-year increase [%]", top=TORNADO_TOP,
        )  # fmt: skip
        n = int(rows.n_trials.max()) if len(rows) else 0
        tornado_charts.append(
            _Chart(
                name,
                f"Tornado chart of the inputs driving the first-year increase in {s}",
                f"{s}: the {TORNADO_TOP} inputs that move the first-year increase most, "
                f"largest first (from {n:,} trials with an agreement).",
            )
        )
    by["drivers"] = tornado_charts

    history: dict[str, pd.DataFrame] = {}
    for s, g in data.history.groupby("scenario", observed=True):
        wide = g.pivot_table(
            index="as_of_date", columns="statistic", values="value", aggfunc="first"
        )
        history[str(s)] = wide.reindex(columns=["p10", "p50", "p90"]).sort_index()
    dates = sorted({d for f in history.values() for d in f.index})
    charts.history_chart(folder / "history.png", scen, history, data.as_of_date, colors)
    by["history"] = [
        _Chart(
            "history.png",
            "Forecast history of the first-year increase",
            "How the forecast of the first-year increase moved from one as-of date to the next "
            "(median line, p10 to p90 band; one point per date, the latest run of that date)."
            + (
                " Only one forecast date so far: the history fills in as daily runs accumulate."
                if len(dates) <= 1
                else f" {len(dates)} dates from {dates[0]} to {dates[-1]}."
            ),
        )
    ]
    return by


# --------------------------------------------------------------------------- HTML sections


_CSS: Final[str] = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1d1d1f; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 38px 0 8px; padding-top: 8px; border-top: 2px solid #e5e5e5; }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
p.sub { color: #555; margin: 0 0 16px; }
nav { background: #f5f6f8; padding: 10px 14px; border-radius: 6px; font-size: 0.95em; }
nav a { margin-right: 14px; white-space: nowrap; }
a { color: #1f5fa8; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 9px; text-align: right; vertical-align: top; }
thead th { background: #f0f2f5; text-align: center; }
tbody th { text-align: left; font-weight: 600; }
td.text, th.text { text-align: left; }
table.wide td { text-align: left; }
table.kv td { text-align: left; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.95em; }
tr.flag td, tr.flag th { background: #fff4d6; }
.flagmark { color: #b35c00; font-weight: 700; }
.muted { color: #777; }
.diff { background: #eef6ff; font-weight: 600; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 4px; max-width: 1000px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 6px 22px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } }
details { margin: 6px 0 10px; }
summary { cursor: pointer; font-weight: 600; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; }
.note { background: #f7f7f9; border-left: 4px solid #c9ced6; padding: 8px 12px; font-size: 0.93em; }
footer { margin-top: 40px; color: #777; font-size: 0.85em; }
"""


def _figure_html(chart: _Chart) -> str:
    return (
        f'<figure><img src="{_e(chart.file)}" alt="{_e(chart.alt)}">'
        f"<figcaption>{_e(chart.caption)}</figcaption></figure>"
    )


def _range(data: ReportData, s: str, metric: str, unit: str) -> _Raw:
    p10, p50, p90 = (data.value(s, metric, k) for k in ("p10", "p50", "p90"))
    se = data.se(s, metric, "p50")
    title = (
        f' title="Monte Carlo s.e. of the median: {_e(_fmt(se, unit, digits=3))}"'
        if se is not None
        else ""
    )
    if p50 is None:
        return _Raw('<span class="muted">–</span>')
    return _Raw(
        f"<span{title}><b>{_e(_fmt(p50, unit, digits=1))}</b></span><br>"
        f'<span class="muted">{_e(_fmt(p10, unit, digits=1))} to '
        f"{_e(_fmt(p90, unit, digits=1))}</span>"
    )


def _prob(data: ReportData, s: str, metric: str) -> _Raw:
    p, se = data.value(s, metric, "prob"), data.se(s, metric, "prob")
    if p is None:
        return _Raw("–")
    title = f' title="Monte Carlo s.e. {se * 100:.2f} pp"' if se is not None else ""
    return _Raw(f"<span{title}>{_e(_fmt(p, 'probability'))}</span>")


def _summary_section(data: ReportData) -> str:
    horizon = _horizon_year(data)
    by = f"by {horizon}" if horizon else "in the horizon"
    headers = [
        "scenario",
        f"agreement {by}",
        "first-year increase: median (p10 to p90)",
        "first-year KRW bn: median (p10 to p90)",
        "months of talks: median (p10 to p90)",
        "early talks before 2029",
        "lapse",
        "furlough",
        "troop threat",
        "package deal",
        "trials",
    ]
    rows = []
    for s in data.scenarios:
        rows.append(
            [
                s,
                _prob(data, s, "settled_by_horizon"),
                _range(data, s, "increase_pct", "%"),
                _range(data, s, "first_year_krw_bn", "KRW bn"),
                _range(data, s, "months_to_settlement", "months"),
                _prob(data, s, "reopened_before_2029"),
                _prob(data, s, "lapse"),
                _prob(data, s, "furlough"),
                _prob(data, s, "troop_threat"),
                _prob(data, s, "package_deal"),
                f"{data.n(s, 'settled_by_horizon', 'prob'):,}",
            ]
        )
    return (
        '<h2 id="summary">Summary</h2>'
        "<p>One row per scenario. The first-year figures describe the agreement that replaces "
        "or follows the 12th SMA, <b>counting only the simulated negotiations that reach an "
        f"agreement {by}</b> (the second column says how many do). Probabilities are shares of "
        "all simulated negotiations. Hover a number to see its Monte Carlo standard error.</p>"
        + _table(headers, rows)
    )


def _drift_rows(frame: pd.DataFrame) -> list[list[object]]:
    headline = {
        "settled_by_horizon",
        "reopened_before_2029",
        "lapse",
        "troop_threat",
        "package_deal",
    }
    rows: list[list[object]] = []
    for r in frame.itertuples(index=False):
        key = (r.metric in KEY_METRICS and r.statistic in KEY_STATISTICS) or r.metric in headline
        if not (key or r.flagged):
            continue
        unit = str(r.unit)
        label = _quantity(r.metric, r.statistic)
        z = _num(r.z)
        mark = '<span class="flagmark">beyond noise</span>' if r.flagged else ""
        noise = _num(r.noise_se)
        rows.append(
            [
                _Raw(f'<span class="text">{_e(label)}</span>'),
                _fmt(_num(r.previous_value), unit),
                _fmt(_num(r.value), unit),
                _fmt(_num(r.change), unit, signed=True),
                "–" if noise is None else "±" + _fmt(noise, unit).lstrip("+"),
                "–" if z is None else f"{z:+.1f}",
                _Raw(mark),
                bool(r.flagged),
            ]
        )
    return rows


def _quantity(metric: str, statistic: str) -> str:
    if statistic == "prob":
        return f"P({event_label(metric)})"
    return f"{METRIC_LABELS.get(metric, metric)} {statistic}"


def _drift_table(rows: list[list[object]]) -> str:
    headers = ["quantity", "previous", "now", "change", "noise (1 s.e.)", "z", ""]
    body = []
    for row in rows:
        cls = ' class="flag"' if row[-1] else ""
        cells = "".join(
            f"<{'th scope=row' if i == 0 else 'td'}>"
            f"{c if isinstance(c, _Raw) else _e(c)}</{'th' if i == 0 else 'td'}>"
            for i, c in enumerate(row[:-1])
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        "<table><thead><tr>"
        + "".join(f"<th scope=col>{_e(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table>"
    )


def _drift_section(data: ReportData) -> str:
    parts = [
        '<h2 id="changes">What changed since the previous run</h2>',
        "<p>Each scenario is compared with the latest earlier completed run of the same "
        "scenario: the p10, p50 and p90 of the key outputs and every probability. A change is "
        f"marked <span class=flagmark>beyond noise</span> when it exceeds {Z_THRESHOLD:g} Monte "
        "Carlo standard errors of the difference (plus the quantile resolution). Simulation "
        "noise alone almost never does that, so a marked change comes from new inputs, new "
        "evidence, a new as-of date or new code. Open a scenario below for its numbers; the "
        "<code>drift</code> dataset has every compared value.</p>",
    ]
    if data.drift.empty:
        parts.append(
            '<p class="note">No drift rows were published for this date: the runs shown were '
            "made before drift was recorded.</p>"
        )
        return "".join(parts)
    overview: list[list[object]] = []
    details: list[str] = []
    for s in data.scenarios:
        frame = data.drift[data.drift.scenario == s]
        prev = frame.previous_run_id.dropna()
        if frame.empty or prev.empty:
            why = "no drift recorded" if frame.empty else "first run of this scenario"
            overview.append([s, _Raw(f'<span class="muted">{why}</span>'), "–", ""])
            continue
        prev_date = frame.previous_as_of_date.dropna()
        when = _as_date(prev_date.iloc[0]).isoformat() if len(prev_date) else "?"
        flagged = frame[frame.flagged.astype(bool)]
        order = flagged.assign(size=flagged.z.abs().fillna(np.inf)).sort_values(
            "size", ascending=False
        )
        largest = "; ".join(
            f"{_quantity(r.metric, r.statistic)} {_fmt(_num(r.change), str(r.unit), signed=True)}"
            for r in order.head(3).itertuples(index=False)
        )
        count = (
            f'<span class="flagmark">{len(flagged)} of {len(frame)}</span>'
            if len(flagged)
            else f"0 of {len(frame)}"
        )
        overview.append(
            [
                s,
                _Raw(f"<code>{_e(prev.iloc[0])}</code><br>as of {_e(when)}"),
                _Raw(count),
                _Raw(f'<span class="text">{_e(largest) or "none"}</span>'),
            ]
        )
        details.append(
            f"<details><summary>{_e(s)}: previous, now, change and noise</summary>"
            f"{_drift_table(_drift_rows(frame))}</details>"
        )
    parts.append(
        _table(
            ["scenario", "compared with run", "changed beyond noise", "largest changes"],
            overview,
            cls="wide",
        )
    )
    parts += details
    return "".join(parts)


def _assumptions_section(data: ReportData) -> str:
    parts = ['<h2 id="assumptions">Key assumptions of each scenario</h2>']
    inputs = data.inputs
    if inputs.empty:
        parts.append(
            '<p class="note">The assumptions were not recorded for the runs shown (no '
            "<code>inputs</code> dataset for this date): see the scenario files of the "
            "configuration the runs used.</p>"
        )
        return "".join(parts)
    scen = [s for s in data.scenarios if s in set(inputs.scenario)]
    desc = inputs[inputs.kind == "description"].set_index("scenario").distribution
    parts.append(
        "<dl>"
        + "".join(
            f"<dt><b>{_e(s)}</b></dt><dd>{_e(desc.get(s, '') or '(no description)')}</dd>"
            for s in scen
        )
        + "</dl>"
    )

    def cell(row: Any) -> str:
        text = _e(row.distribution)
        lo, hi = _num(row.p05), _num(row.p95)
        if row.kind == "input" and lo is not None and hi is not None and lo < hi:
            if row.unit != "yes/no":
                text += (
                    f'<br><span class="muted">90% between {_e(_sig(lo))} and {_e(_sig(hi))} '
                    f"{_e(row.unit)}</span>"
                )
        return text

    items = inputs[inputs.kind != "description"]
    order = list(dict.fromkeys(items.input))
    table = {(r.scenario, r.input): r for r in items.itertuples(index=False)}
    differ = []
    for name in order:
        texts = [table[(s, name)].distribution if (s, name) in table else None for s in scen]
        if len(set(texts)) > 1:
            differ.append(name)

    def grid(names: Sequence[str], highlight: bool) -> str:
        headers = ["input or setting", *scen]
        rows: list[list[object]] = []
        for name in names:
            texts = [table[(s, name)].distribution if (s, name) in table else None for s in scen]
            common = max(set(texts), key=texts.count) if texts else None
            first = next(table[(s, name)] for s in scen if (s, name) in table)
            row: list[object] = [
                _Raw(f'{_e(name)}<br><span class="muted">{_e(first.description)}</span>')
            ]
            for s, t in zip(scen, texts, strict=True):
                if t is None:
                    row.append(_Raw('<span class="muted">–</span>'))
                    continue
                klass = "diff" if highlight and t != common else ""
                row.append(_Raw(f'<div class="{klass}">{cell(table[(s, name)])}</div>'))
            rows.append(row)
        return _table(headers, rows, cls="wide")

    if len(scen) > 1:
        parts.append(
            "<p>Where the scenarios differ. Highlighted cells differ from the assumption most "
            "scenarios share; every other input is the same in all scenarios (full list "
            "below). Distributions are as stated in the scenario files; the grey line gives the "
            "interval holding 90% of the sampled values.</p>"
        )
        parts.append(grid(differ, True) if differ else "<p>The scenarios share all inputs.</p>")
    parts.append(
        "<details><summary>All inputs and settings of every scenario</summary>"
        + grid(order, False)
        + "</details>"
    )
    return "".join(parts)


def _ts(x: Any) -> str:
    if x is None or x is pd.NaT:
        return "–"
    stamp = pd.Timestamp(x).tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _provenance_section(data: ReportData) -> str:
    parts = [
        '<h2 id="provenance">Provenance</h2>',
        "<p>The runs whose results this page shows. The same seed, trial count, chunk size, "
        "code version and configuration reproduce every number exactly.</p>",
    ]
    for r in data.runs.itertuples(index=False):
        shown = [s for s in data.scenarios if data.run_of.get(s) == r.run_id]
        n_scen = max(len(str(r.scenarios).split(",")), 1)
        seconds = (pd.Timestamp(r.finished_at) - pd.Timestamp(r.started_at)).total_seconds()
        rows = [
            ["run id", r.run_id],
            ["as-of date", _as_date(r.as_of_date).isoformat()],
            ["scenarios shown from this run", ", ".join(shown)],
            ["all scenarios of the run", str(r.scenarios).replace(",", ", ")],
            ["status", r.status],
            ["started / finished", f"{_ts(r.started_at)} / {_ts(r.finished_at)} ({seconds:.1f} s)"],
            ["trials per scenario", f"{int(r.n_trials) // n_scen:,}"],
            [
                "trials kept after evidence conditioning (all scenarios)",
                "–" if pd.isna(r.n_trials_effective) else f"{int(r.n_trials_effective):,}",
            ],
            ["seed (root entropy)", r.seed_entropy],
            ["sampler / chunk size", f"{r.sampler} / {int(r.chunk_size):,} trials"],
            ["configuration hash (sha256)", r.config_hash],
            ["code version", f"sma-forecast {r.package_version}"],
            ["git commit", r.git_commit if isinstance(r.git_commit, str) else "unknown"],
            [
                "Prefect flow run",
                r.prefect_flow_run_id if isinstance(r.prefect_flow_run_id, str) else "none",
            ],
            ["flow", r.flow_name],
        ]
        parts.append(_table(["field", "value"], rows, cls="kv"))
    return "".join(parts)


_PAGE: Final[str] = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="data:,">
<style>{css}</style>
</head>
<body>
<main>
<h1>US–South Korea defense cost-sharing (SMA) forecast</h1>
<p class="sub">As of <b>{as_of}</b> · {n_scen} scenario(s) · {trials} simulated negotiations per
scenario · {runs}</p>
<nav>{nav}</nav>
<h2 id="about">How to read this page</h2>
<div class="note"><p>The model simulates the next Special Measures Agreement negotiation many
times. Each simulated negotiation draws every uncertain input (US demand intensity, asks,
reservation points, concession speeds, exchange rate, inflation, ...) from the distributions a
<b>scenario</b> states, and plays the talks out month by month: when they open, whether they
lapse, what Korea pays in the first year of the new agreement and every year up to the horizon.
The spread of the results is the forecast's uncertainty.</p>
<p><b>p10, p50, p90</b>: 10% of the simulated outcomes lie below p10, half below the median p50,
90% below p90; so 80% lie between p10 and p90. <b>First-year increase</b> is the first year of
the new agreement over the contribution it replaces, in %. Amounts are in billions of Korean won
(KRW bn). Monte Carlo noise (how much a number would move with another random seed) is far
smaller than the ranges shown; the summary shows it on hover.</p></div>
{body}
<footer>Built {built} from the Parquet outputs only (datasets runs, summary, histograms,
sensitivity, drift, inputs). Rebuild with <code>sma-forecast report --as-of {as_of}</code>.
How to read each chart: docs/report.md in the sma-forecast repository.</footer>
</main>
</body>
</html>
"""


def render_html(
    data: ReportData, figures: Mapping[str, Sequence[_Chart]], built: dt.datetime
) -> str:
    """The page for ``data`` with the drawn ``figures`` (file names relative to the page)."""
    sections: list[tuple[str, str, str]] = [
        ("summary", "Summary", _summary_section(data)),
        ("changes", "What changed", _drift_section(data)),
        (
            "compare",
            "Scenarios compared",
            '<h2 id="compare">Scenarios side by side</h2>'
            + "".join(_figure_html(c) for c in figures["compare"]),
        ),
        (
            "distribution",
            "First-year settlement",
            '<h2 id="distribution">Distribution of the first-year settlement</h2>'
            + "".join(_figure_html(c) for c in figures["distribution"]),
        ),
        (
            "path",
            "Contribution path",
            '<h2 id="path">Contribution path, year by year</h2>'
            + "".join(_figure_html(c) for c in figures["path"]),
        ),
        (
            "drivers",
            "What drives it",
            '<h2 id="drivers">What drives the first-year increase</h2>'
            "<p>Tornado charts: which assumptions matter most. For each input the simulated "
            "negotiations are split by the input's value: the blue bar runs from the overall "
            "median to the median first-year increase of the trials with that input in its "
            "lowest 10%, the red bar to the median of those with it in its highest 10% (the two "
            "input levels are written under the name; yes/no inputs compare no with yes). Long "
            "bars mark the assumptions worth pinning down; a red bar pointing right means a "
            "higher input raises the increase.</p>"
            '<div class="grid2">' + "".join(_figure_html(c) for c in figures["drivers"]) + "</div>",
        ),
        (
            "history",
            "Forecast history",
            '<h2 id="history">Forecast history</h2>'
            + "".join(_figure_html(c) for c in figures["history"]),
        ),
        ("assumptions", "Assumptions", _assumptions_section(data)),
        ("provenance", "Provenance", _provenance_section(data)),
    ]
    nav = '<a href="#about">How to read</a> ' + " ".join(
        f'<a href="#{anchor}">{_e(label)}</a>' for anchor, label, _ in sections
    )
    trials = sorted({data.n(s, "settled_by_horizon", "prob") for s in data.scenarios})
    trials_text = f"{trials[0]:,}" if len(trials) == 1 else f"{trials[0]:,} to {trials[-1]:,}"
    run_ids = sorted(set(data.run_of.values()))
    runs_text = (
        f"run <code>{_e(run_ids[0])}</code>" if len(run_ids) == 1 else f"{len(run_ids)} runs"
    )
    return _PAGE.format(
        title=_e(f"SMA forecast as of {data.as_of_date.isoformat()}"),
        css=_CSS,
        as_of=_e(data.as_of_date.isoformat()),
        n_scen=len(data.scenarios),
        trials=_e(trials_text),
        runs=runs_text,
        nav=nav,
        body="\n".join(section for _, _, section in sections),
        built=_e(built.strftime("%Y-%m-%d %H:%M UTC")),
    )


# --------------------------------------------------------------------------- publication


def _swap_in(stage: Path, final: Path) -> None:
    """Replace ``final`` by ``stage`` with renames (the old folder is deleted afterwards)."""
    root = final.parent
    trash = root / ".trash" / f"{final.name}-{secrets.token_hex(4)}"
    with io.exclusive_lock(root):  # the same lock file the Parquet publication uses
        moved = False
        if final.exists():
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.replace(final, trash)
            moved = True
        try:
            os.replace(stage, final)
        except BaseException:
            if moved:
                os.replace(trash, final)
            raise
    shutil.rmtree(trash, ignore_errors=True)


def build_report(
    output_dir: PathLike,
    *,
    as_of_date: dt.date | None = None,
    run_id: str | None = None,
) -> Path:
    """Build (or rebuild) the HTML report of one as-of date from the Parquet outputs alone.

    Parameters
    ----------
    output_dir
        Root of the outputs (``outputs/``).
    as_of_date
        Date to report; default the latest date with a completed run.
    run_id
        Report this run's date, showing the scenarios whose partitions it still holds.

    Returns
    -------
    Path of ``<output_dir>/reports/as_of_date=YYYY-MM-DD/index.html``.

    Raises :class:`ReportError` if there is no completed run to report.
    """
    data = load_report_data(output_dir, as_of_date=as_of_date, run_id=run_id)
    final = report_dir(output_dir, data.as_of_date)
    stage = final.parent / ".staging" / f"{final.name}-{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    try:
        figures = _draw_charts(data, stage)
        page = render_html(data, figures, dt.datetime.now(dt.UTC))
        (stage / "index.html").write_text(page, encoding="utf-8")
        _swap_in(stage, final)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return final / "index.html"


def report_artifact_markdown(
    index_html: PathLike, *, as_of: dt.date, drift_flags: int | None = None
) -> str:
    """Markdown for a Prefect artifact that links to a built report."""
    path = Path(index_html).resolve()
    lines = [
        f"### SMA forecast report as of {as_of.isoformat()}",
        "",
        f"[Open the report]({path.as_uri()}) (`{path}`)",
        "",
        "Charts, summary table, changes since the previous run, assumptions and provenance; "
        f"rebuild with `sma-forecast report --as-of {as_of.isoformat()}`.",
    ]
    if drift_flags is not None:
        lines += [
            "",
            f"Values changed beyond Monte Carlo noise since the previous run: **{drift_flags}**.",
        ]
    return "\n".join(lines)
