"""The report's figures from a :class:`ReportData`: one function per figure.

Each function picks the figure's numbers from the data, draws it with the matplotlib functions
of pipeline/report/figures.py into the report's (staging) folder and returns the
:class:`Chart` entries the page shows: file name, alt text and the "how to read it" caption.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from pipeline.report import figures
from pipeline.report.data import ReportData, horizon_year, settlement_years, year_words

__all__ = [
    "QUANTILE_LEVELS",
    "REFERENCE_SCENARIO",
    "SECTIONS",
    "TORNADO_TOP",
    "Chart",
    "SectionDrawer",
    "cdf_points",
    "draw_figures",
    "draw_section",
    "first_year_metrics",
    "threshold_shares",
]

#: Published quantiles and their levels: exact points of each metric's distribution.
QUANTILE_LEVELS: Final[dict[str, float]] = {
    "p01": 0.01, "p05": 0.05, "p10": 0.10, "p25": 0.25, "p50": 0.50, "p75": 0.75,
    "p90": 0.90, "p95": 0.95, "p99": 0.99,
}  # fmt: skip

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


def payer_name(currency: str) -> str:
    """Who pays, in words: the outputs name the host by its currency only (KRW: Korea)."""
    return "Korea" if currency == "KRW" else "the host nation"


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


def cdf_points(
    hist: pd.DataFrame | None, quantiles: dict[str, float | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Exact points (x, share of deals at or below x) of one metric's distribution.

    The histogram's closed bin edges give the share below each edge (exact counts); the
    published quantiles add (value, level) points (within their error bound, far below the
    bins). Sorted by x and made non-decreasing; ``min`` and ``max`` close the ends.
    """
    xs: list[float] = []
    fs: list[float] = []
    if hist is not None and len(hist) and hist["count"].sum() > 0:
        full = hist.sort_values("bin_index")
        cum = np.cumsum(full.probability.fillna(0.0).to_numpy(float))
        uppers = full.bin_upper.to_numpy(float)
        ok = ~np.isnan(uppers)
        xs += list(uppers[ok])
        fs += list(cum[ok])
    for key, level in QUANTILE_LEVELS.items():
        value = quantiles.get(key)
        if value is not None and not math.isnan(value):
            xs.append(float(value))
            fs.append(level)
    for key, level in (("min", 0.0), ("max", 1.0)):
        value = quantiles.get(key)
        if value is not None and not math.isnan(value):
            xs.append(float(value))
            fs.append(level)
    if not xs:
        return np.empty(0), np.empty(0)
    order = np.argsort(np.asarray(xs), kind="stable")
    x, f = np.asarray(xs)[order], np.clip(np.asarray(fs)[order], 0.0, 1.0)
    lo = quantiles.get("min")
    hi = quantiles.get("max")
    keep = np.ones(len(x), bool)
    if lo is not None and not math.isnan(lo):
        keep &= x >= lo
    if hi is not None and not math.isnan(hi):
        keep &= x <= hi
    x, f = x[keep], np.maximum.accumulate(f[keep])
    return x, f


def threshold_shares(hist: pd.DataFrame | None, thresholds: list[float]) -> list[float | None]:
    """P(value > t) among the deals for each threshold ``t`` that is a histogram bin edge
    (exact from the counts); None for a threshold that is not an edge."""
    if hist is None or not len(hist) or hist["count"].sum() == 0:
        return [None] * len(thresholds)
    full = hist.sort_values("bin_index")
    prob = full.probability.fillna(0.0).to_numpy(float)
    uppers = full.bin_upper.to_numpy(float)
    out: list[float | None] = []
    for t in thresholds:
        hit = np.flatnonzero(np.isclose(uppers, t))
        out.append(float(prob[hit[0] + 1 :].sum()) if len(hit) else None)
    return out


def first_year_metrics(data: ReportData) -> dict[str, tuple[str, float, str]]:
    """metric -> (axis label, density step, step unit) of the first-year figures."""
    money, currency = money_metric(data)
    return {
        "increase_pct": ("first-year increase [%]", 1.0, "1 pp"),
        money: (f"first-year contribution [{currency} bn]", 10.0, f"10 {currency} bn"),
    }


def _cdfs(
    data: ReportData, metrics: Sequence[str]
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    hists = {
        (str(s), str(m)): g
        for (s, m), g in data.histograms.groupby(["scenario", "metric"], observed=True)
    }
    keys = [*QUANTILE_LEVELS, "min", "max"]
    return {
        (s, m): cdf_points(hists.get((s, m)), _statistics(data, s, m, keys))
        for s in data.scenarios
        for m in metrics
    }


def _distribution_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    scen = data.scenarios
    metrics = first_year_metrics(data)
    figures.distribution_chart(
        folder / "distribution.png",
        scen,
        metrics,
        _cdfs(data, list(metrics)),
        {(s, m): _statistics(data, s, m, list(QUANTILE_LEVELS)) for s in scen for m in metrics},
        {s: data.value(s, "settled_by_horizon", "prob") for s in scen},
        colors,
    )
    return [
        Chart(
            "distribution.png",
            "Distribution of the first-year settlement per scenario",
            "Each bar's height is the share of simulated agreements per unit shown on the axis "
            "(per 1 percentage point, per 10 bn), so bars of different widths compare: the bins "
            "follow the data, narrow where outcomes are dense (their edges are the published "
            "quantiles and histogram edges, exact shares). Trials without an agreement are left "
            "out. The solid line is the median; 80% of agreements fall between the dashed lines "
            "(p10 and p90), whose values head each panel.",
        )
    ]


def _exceedance_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    metrics = {m: label for m, (label, _, _) in first_year_metrics(data).items()}
    figures.exceedance_chart(
        folder / "exceedance.png", data.scenarios, metrics, _cdfs(data, list(metrics)), colors
    )
    return [
        Chart(
            "exceedance.png",
            "Exceedance curves of the first-year increase and contribution, all scenarios",
            "Read a curve at x to get the chance that the new agreement's first year is above x "
            "(among the simulated negotiations that reach an agreement); read it at 50% to get "
            "the median. A curve further right means higher payments. The table below gives "
            "the chances at round thresholds.",
        )
    ]


def _timing_figure(data: ReportData, folder: Path) -> list[Chart]:
    years = settlement_years(data)
    horizon = horizon_year(data)
    text = f"by {horizon}" if horizon else "in the horizon"
    figures.timing_chart(
        folder / "timing.png",
        data.scenarios,
        years,
        {s: [data.value(s, f"settled_in_{y}", "prob") for y in years] for s in data.scenarios},
        {s: data.value(s, "no_deal_by_horizon", "prob") for s in data.scenarios},
        text,
    )
    return [
        Chart(
            "timing.png",
            "When agreement comes: share of negotiations agreeing in each year, and never",
            f"Each bar is one scenario's simulated negotiations, split by the {year_words(data)} the "
            f"agreement comes (darker: later); grey is the share with no agreement {text}. The "
            "bar's blue part left of a year's end is the chance of a deal by then.",
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
    payer = payer_name(money_metric(data)[1])
    return [
        Chart(
            "contribution_path.png",
            f"Fan chart of {payer}'s yearly contribution {span}",
            f"{payer.capitalize()}'s contribution in each {year_words(data)} {span}: the line is "
            "the median, the "
            "shaded bands hold 50%, 80% and 90% of the simulated paths"
            + (
                f"; the dashed line repeats the median of {reference} (the 12th SMA honoured "
                "to its end) for comparison."
                if reference
                else "."
            ),
        )
    ]


def _tornado_range(data: ReportData) -> tuple[float, float] | None:
    """One x range for every scenario's tornado: the medians and every bar end, padded."""
    values = data.tornado[
        data.tornado.statistic.isin(["median_at_low_decile", "median_at_high_decile"])
    ].value.to_numpy(float)
    medians = [data.value(s, "increase_pct", "p50") for s in data.scenarios]
    values = np.concatenate([values, [m for m in medians if m is not None]])
    values = values[np.isfinite(values)]
    if not len(values) or values.min() == values.max():
        return None
    pad = 0.05 * (values.max() - values.min())
    return float(values.min() - pad), float(values.max() + pad)


def _driver_figures(data: ReportData, folder: Path) -> list[Chart]:
    """One tornado chart per scenario, all on the same x scale."""
    tornado_charts = []
    xlim = _tornado_range(data)
    for s in data.scenarios:
        rows = data.tornado[data.tornado.scenario == s]
        name = f"drivers_{s}.png"
        figures.tornado_chart(
            folder / name, s, rows, data.value(s, "increase_pct", "p50"),
            "first-year increase [%]", top=TORNADO_TOP, xlim=xlim,
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


def _sobol_figure(data: ReportData, folder: Path) -> list[Chart]:
    if data.sobol.empty:
        return []
    figures.sobol_chart(folder / "sobol.png", data.scenarios, data.sobol)
    n = int(data.sobol.n_trials.max())
    return [
        Chart(
            "sobol.png",
            "Sobol' indices of the first-year increase per scenario",
            "Share of the variance of the first-year increase due to each input (or group of "
            "correlated inputs, or chance event): the dark bar alone (first order), the light "
            "bar including its interactions with the others (total order), with 95% bootstrap "
            f"intervals; one scale for all scenarios. From a separate design of {n:,} model "
            "runs per scenario; negotiations without an agreement count at the mean increase.",
        )
    ]


def _convergence_figure(data: ReportData, folder: Path, colors: dict[str, str]) -> list[Chart]:
    errors = {
        s: {st: (data.se(s, "increase_pct", st), data.n(s, "increase_pct", st))
            for st in ("p10", "p50", "p90")}
        for s in data.scenarios
    }  # fmt: skip
    targets = [float(t) for t in data.runs.get("target_se", pd.Series(dtype=float)).dropna()]
    target = min(targets) if targets else None
    figures.convergence_chart(folder / "convergence.png", data.scenarios, errors, colors, target)
    return [
        Chart(
            "convergence.png",
            "Monte Carlo error of the first-year increase quantiles against the trial count",
            "How precise the simulation is: each dot is the Monte Carlo standard error of a "
            "quantile of the first-year increase in this run (how much it would move with "
            "another seed), at the number of agreeing trials behind it; the line through it "
            "shows the usual 1/sqrt(n) law: four times the trials halve the error. Compare "
            "the errors with the p10-p90 ranges above: they are what a re-run could change."
            + (" The dashed line is the run's target s.e." if target is not None else ""),
        )
    ]


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


_SECTIONS: dict[str, Callable[[ReportData, Path, dict[str, str]], list[Chart]]] = {
    "compare": _comparison_figure,
    "exceedance": _exceedance_figure,
    "timing": lambda data, folder, colors: _timing_figure(data, folder),
    "distribution": _distribution_figure,
    "path": _path_figure,
    "drivers": lambda data, folder, colors: _driver_figures(data, folder),
    "sobol": lambda data, folder, colors: _sobol_figure(data, folder),
    "history": _history_figure,
    "convergence": _convergence_figure,
}
#: The page's sections with figures (anchors), in page order.
SECTIONS: tuple[str, ...] = tuple(_SECTIONS)
#: Draws the named sections into a folder (e.g. in parallel worker processes, each calling
#: :func:`draw_section`); returns section anchor -> its charts.
SectionDrawer = Callable[[Sequence[str], ReportData, Path], Mapping[str, list[Chart]]]


def draw_section(name: str, data: ReportData, folder: Path) -> list[Chart]:
    """Draw the figures of one section (an anchor of :data:`SECTIONS`) into ``folder``."""
    return _SECTIONS[name](data, folder, figures.scenario_colors(data.scenarios))


def draw_figures(
    data: ReportData, folder: Path, drawer: SectionDrawer | None = None
) -> dict[str, list[Chart]]:
    """Draw every figure of the page into ``folder``; section anchor -> its charts.

    ``drawer`` draws the sections some other way (the figures are independent; a forecast run
    on worker processes draws them there, a few at a time); by default, one after another.
    """
    if drawer is None:
        return {name: draw_section(name, data, folder) for name in SECTIONS}
    drawn = drawer(SECTIONS, data, folder)
    return {name: drawn[name] for name in SECTIONS}
