"""The report's figures from a :class:`ReportData`: one function per figure.

Each function picks the figure's numbers from the data, draws it with the matplotlib functions
of pipeline/report/figures.py into the report's (staging) folder and returns the
:class:`Chart` entries the page shows: file name, alt text and the "how to read it" caption.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pandas as pd

from pipeline.report import figures
from pipeline.report.data import ReportData, horizon_year

__all__ = ["REFERENCE_SCENARIO", "TORNADO_TOP", "Chart", "draw_figures"]

#: Scenario whose median contribution path is drawn in every fan-chart panel, if present.
REFERENCE_SCENARIO: Final[str] = "status_quo_holds"
#: Inputs shown in the tornado charts.
TORNADO_TOP: Final[int] = 10


@dataclass(frozen=True)
class Chart:
    """One image of the page: its file (relative to the page), alt text and caption."""

    file: str
    alt: str
    caption: str


def _statistics(
    data: ReportData, s: str, metric: str, keys: Sequence[str]
) -> dict[str, float | None]:
    """``{statistic: value}`` of one scenario's metric."""
    return {k: data.value(s, metric, k) for k in keys}


def money_metric(data: ReportData) -> tuple[str, str]:
    """(first-year level metric, currency code) of the run: named in the host currency."""
    for metric in data.summary.metric.unique():
        if found := re.fullmatch(r"first_year_([a-z]{3})_bn", str(metric)):
            return str(metric), found.group(1).upper()
    return "first_year_krw_bn", "KRW"


def _comparison_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    scen = data.scenarios
    horizon = horizon_year(data)
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
    figures.comparison_chart(
        folder / "scenarios.png",
        scen,
        {
            s: _statistics(data, s, "increase_pct", ["p10", "p25", "p50", "p75", "p90"])
            for s in scen
        },
        {s: {e: data.value(s, e, "prob") for e in events} for s in scen},
        events,
        colors,
    )
    return [
        Chart(
            "scenarios.png",
            "Scenarios side by side: first-year increase ranges and event probabilities",
            "Left: each bar is one scenario's range of the first-year increase (thin: 80% of "
            "outcomes, thick: the middle 50%, dot: median); bars further right mean a larger "
            "increase. Right: the chance of each event"
            + (f" by {horizon}" if horizon else "")
            + " under each scenario.",
        )
    ]


def _distribution_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    scen = data.scenarios
    hists = {
        (s, m): g.sort_values("bin_index")
        for (s, m), g in data.histograms.groupby(["scenario", "metric"], observed=True)
    }
    money, currency = money_metric(data)
    metrics = {
        "increase_pct": "first-year increase [%]",
        money: f"first-year contribution [{currency} bn]",
    }
    figures.distribution_chart(
        folder / "distribution.png",
        scen,
        metrics,
        hists,
        {(s, m): _statistics(data, s, m, ["p10", "p50", "p90"]) for s in scen for m in metrics},
        {s: data.value(s, "settled_by_horizon", "prob") for s in scen},
        colors,
    )
    return [
        Chart(
            "distribution.png",
            "Histograms of the first-year settlement per scenario",
            "Each bar is the share of simulated agreements whose first year lands in that bin "
            "(trials without an agreement are left out); the solid line is the median and 80% "
            "of agreements fall between the dashed lines (p10 and p90). Bins: 2.5 % and "
            f"100 {currency} bn wide.",
        )
    ]


def _contribution_paths(data: ReportData, levels: Sequence[str]) -> dict[str, pd.DataFrame]:
    """scenario -> contribution quantiles ``levels`` (columns) per calendar year (index)."""
    paths: dict[str, pd.DataFrame] = {}
    contrib = data.summary[
        data.summary.metric.str.fullmatch(r"contribution_[a-z]{3}_bn_\d{4}")
        & data.summary.statistic.isin(levels)
    ]
    for s, g in contrib.groupby("scenario", observed=True):
        wide = g.assign(year=g.metric.str.rsplit("_", n=1).str[1].astype(int)).pivot_table(
            index="year", columns="statistic", values="value", aggfunc="first"
        )
        paths[str(s)] = wide.reindex(columns=levels).sort_index()
    return paths


def _path_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    paths = _contribution_paths(data, ["p05", "p10", "p25", "p50", "p75", "p90", "p95"])
    reference = REFERENCE_SCENARIO if REFERENCE_SCENARIO in paths else None
    figures.fan_chart(folder / "contribution_path.png", data.scenarios, paths, colors, reference)
    years = sorted({y for f in paths.values() for y in f.index})
    span = f"{years[0]} to {years[-1]}" if years else ""
    return [
        Chart(
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


def _driver_figures(data: ReportData, folder: Path) -> list[Chart]:
    """One tornado chart per scenario."""
    tornado_charts = []
    for s in data.scenarios:
        rows = data.tornado[data.tornado.scenario == s]
        name = f"drivers_{s}.png"
        figures.tornado_chart(
            folder / name, s, rows, data.value(s, "increase_pct", "p50"),
            "first-year increase [%]", top=TORNADO_TOP,
        )  # fmt: skip
        n = int(rows.n_trials.max()) if len(rows) else 0
        tornado_charts.append(
            Chart(
                name,
                f"Tornado chart of the inputs driving the first-year increase in {s}",
                f"{s}: the {TORNADO_TOP} inputs that move the first-year increase most, "
                f"largest first (from {n:,} trials with an agreement).",
            )
        )
    return tornado_charts


def _history_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    history: dict[str, pd.DataFrame] = {}
    for s, g in data.history.groupby("scenario", observed=True):
        wide = g.pivot_table(
            index="as_of_date", columns="statistic", values="value", aggfunc="first"
        )
        history[str(s)] = wide.reindex(columns=["p10", "p50", "p90"]).sort_index()
    dates = sorted({d for f in history.values() for d in f.index})
    figures.history_chart(folder / "history.png", data.scenarios, history, data.as_of_date, colors)
    return [
        Chart(
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


def draw_figures(data: ReportData, folder: Path) -> dict[str, list[Chart]]:
    """Draw every figure of the page into ``folder``; section anchor -> its charts."""
    colors = figures.scenario_colors(data.scenarios)
    return {
        "compare": _comparison_figure(data, folder, colors),
        "distribution": _distribution_figure(data, folder, colors),
        "path": _path_figure(data, folder, colors),
        "drivers": _driver_figures(data, folder),
        "history": _history_figure(data, folder, colors),
    }
