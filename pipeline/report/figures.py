"""The report's charts: matplotlib figures drawn from the published tables, saved as PNG.

Every function takes small pandas frames read from the Parquet outputs (pipeline/report/drawing.py
prepares them per figure), draws one figure with the object-oriented API
(``matplotlib.figure.Figure``: no pyplot, no global backend state, the Agg canvas), writes it to
``path`` and returns nothing. Titles, axis labels with units and legends are on the figure; the
one-line "how to read it" captions live in the HTML next to each image.
"""

from __future__ import annotations

import datetime as dt
import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from pipeline.report.format import factor_label, input_label
from pipeline.spec.catalog import INPUT_BY_NAME

__all__ = [
    "DPI",
    "scenario_colors",
    "comparison_chart",
    "density_bins",
    "distribution_chart",
    "exceedance_chart",
    "sobol_chart",
    "timing_chart",
    "convergence_chart",
    "fan_chart",
    "history_chart",
    "tornado_chart",
]

#: Resolution of the PNGs [dots per inch]; figures are sized in inches for a ~1100 px page.
DPI: Final[int] = 100

_STYLE: Final[dict[Any, Any]] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "savefig.facecolor": "white",
    "figure.facecolor": "white",
}
#: Colours of the quantile markers and of the low/high tornado bars.
_INK: Final[str] = "#222222"
_LOW: Final[str] = "#4C78A8"
_HIGH: Final[str] = "#E45756"
_EVENT_COLORS: Final[tuple[str, ...]] = ("#4C78A8", "#F58518", "#E45756", "#54A24B", "#B279A2")


def scenario_colors(scenarios: Sequence[str]) -> dict[str, str]:
    """A fixed colour per scenario, in the order given (tab10)."""
    cmap = mpl.colormaps["tab10"]
    return {s: mpl.colors.to_hex(cmap(i % 10)) for i, s in enumerate(scenarios)}


def _figure(width: float, height: float) -> Figure:
    # No layout engine: _fit_margins lays the figure out once, just before it is saved.
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)  # its renderer measures the text and then draws (one cached buffer)
    return fig


#: Margin kept around the outermost text and between panels [inches].
_PAD: Final[float] = 0.06


def _tick_labels(axes: Sequence[Axes]) -> list[list[str]]:
    """The tick label texts of each panel (updates the ticks; measures no text)."""
    return [[t.get_text() for t in (*ax.get_xticklabels(), *ax.get_yticklabels())] for ax in axes]


def _fit_margins(fig: Figure) -> None:
    """Place the panels so that every tick label, axis label, title, annotation and panel
    legend fits, with the figure legends (at the bottom) below them.

    A measuring pass, like one of constrained layout's two, on the figure's own Agg renderer:
    the space each panel's text takes beyond its frame on each side (its tight bounding box),
    maxed over the panels of each outer edge and each gap between columns and rows. Resized
    panels may pick other ticks (wider labels): only then is the figure measured again.
    Constrained layout cost two passes plus a full draw before the real one; now a figure is
    measured once (rarely twice) and drawn once.
    """
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for _ in range(3):
        before = _measure_and_place(fig, axes)
        if _tick_labels(axes) == before:
            return


def _measure_and_place(fig: Figure, axes: Sequence[Axes]) -> list[list[str]]:
    """One measuring pass of :func:`_fit_margins`; returns the tick labels it measured."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    placed = [ax for ax in axes if ax.get_subplotspec() is not None]
    if not placed:
        return _tick_labels(axes)
    gs = placed[0].get_subplotspec().get_gridspec()  # type: ignore[union-attr]
    nrows, ncols = gs.get_geometry()
    width, height = fig.bbox.width, fig.bbox.height
    pad = _PAD * fig.dpi
    # Space needed beyond the frame [px]: per column (left, right) and per row (top, bottom).
    left, right = np.zeros(ncols), np.zeros(ncols)
    top, bottom = np.zeros(nrows), np.zeros(nrows)
    for ax in placed:
        spec = ax.get_subplotspec()
        frame = ax.get_window_extent(renderer)
        tight = ax.get_tightbbox(renderer)
        if spec is None or tight is None:
            continue
        rows, cols = spec.rowspan, spec.colspan
        left[cols.start] = max(left[cols.start], frame.x0 - tight.x0)
        right[cols.stop - 1] = max(right[cols.stop - 1], tight.x1 - frame.x1)
        top[rows.start] = max(top[rows.start], tight.y1 - frame.y1)
        bottom[rows.stop - 1] = max(bottom[rows.stop - 1], frame.y0 - tight.y0)
    measured = _tick_labels(axes)
    below = sum(legend.get_window_extent(renderer).height + pad for legend in fig.legends)
    x0 = (left[0] + pad) / width
    x1 = 1.0 - (right[-1] + pad) / width
    y0 = (bottom[-1] + below + pad) / height
    y1 = 1.0 - (top[0] + pad) / height
    # GridSpec gaps are fractions of the mean panel size: gap = space * mean panel.
    gap_w = max((right[j] + left[j + 1] + pad for j in range(ncols - 1)), default=0.0)
    gap_h = max((bottom[i] + top[i + 1] + pad for i in range(nrows - 1)), default=0.0)
    mean_w = ((x1 - x0) * width - (ncols - 1) * gap_w) / ncols
    mean_h = ((y1 - y0) * height - (nrows - 1) * gap_h) / nrows
    if mean_w <= 0 or mean_h <= 0:  # the text alone is wider or taller than the figure
        return measured
    fig.subplots_adjust(left=x0, right=x1, bottom=y0, top=y1,
                        wspace=gap_w / mean_w if ncols > 1 else None,
                        hspace=gap_h / mean_h if nrows > 1 else None)  # fmt: skip
    return measured


def _save(fig: Figure, path: Path) -> None:
    _fit_margins(fig)
    fig.savefig(path, format="png", dpi=DPI)


def _stat(stats: Mapping[str, float | None], key: str) -> float:
    """``stats[key]`` as a float; NaN (not drawn) when missing or None."""
    value = stats.get(key)
    return math.nan if value is None else float(value)


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(max_cols, max(n, 1))
    return math.ceil(max(n, 1) / cols), cols


def _hide_unused(axes: np.ndarray[Any, Any], used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


# --------------------------------------------------------------------------- 1. comparison


def comparison_chart(
    path: Path,
    scenarios: Sequence[str],
    increase: Mapping[str, Mapping[str, float | None]],
    probabilities: Mapping[str, Mapping[str, float | None]],
    event_labels: Mapping[str, str],
    colors: Mapping[str, str],
) -> None:
    """Scenarios side by side: first-year increase ranges (left), event probabilities (right).

    ``increase[scenario]`` maps p10/p25/p50/p75/p90 to values [%]; ``probabilities[scenario]``
    maps event metric -> probability; ``event_labels`` gives the events to show, in order.
    """
    n = len(scenarios)
    events = list(event_labels)
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 1.6 + 0.75 * n)
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1.0]})
        ys = np.arange(n)[::-1]
        for y, s in zip(ys, scenarios, strict=True):
            q = increase.get(s, {})
            c = colors[s]
            left.hlines(y, _stat(q, "p10"), _stat(q, "p90"), color=c, lw=2.5, alpha=0.9)
            left.hlines(y, _stat(q, "p25"), _stat(q, "p75"), color=c, lw=9, alpha=0.55)
            left.plot(_stat(q, "p50"), y, "o", color="white", mec=_INK, mew=1.5, ms=8, zorder=3)
            if not math.isnan(_stat(q, "p90")):
                left.annotate(
                    f"{_stat(q, 'p50'):.1f}%  ({_stat(q, 'p10'):.1f} to {_stat(q, 'p90'):.1f})",
                    (_stat(q, "p90"), y),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                )
        left.set_yticks(ys, list(scenarios))
        left.set_ylim(-0.7, n - 0.3)
        left.grid(axis="y", visible=False)
        left.set_xlabel("First-year increase over the contribution it replaces [%]")
        left.set_title("First-year increase, if an agreement is reached", loc="left")
        lo = np.nanmin([_stat(increase.get(s, {}), "p10") for s in scenarios] + [0.0])
        hi = np.nanmax([_stat(increase.get(s, {}), "p90") for s in scenarios] + [1.0])
        left.set_xlim(min(0.0, lo - 1.0), hi + (hi - min(0.0, lo)) * 0.45 + 1.0)
        left.legend(
            handles=[
                Line2D([], [], color="#777777", lw=2.5, label="80% range (p10 to p90)"),
                Line2D([], [], color="#777777", lw=9, alpha=0.55, label="middle 50% (p25 to p75)"),
                Line2D([], [], marker="o", ls="", mfc="white", mec=_INK, label="median (p50)"),
            ],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncols=3,
        )

        height = 0.8 / max(len(events), 1)
        for j, event in enumerate(events):
            vals = [_stat(probabilities.get(s, {}), event) * 100.0 for s in scenarios]
            offs = ys + 0.4 - height * (j + 0.5)
            bars = right.barh(
                offs, vals, height=height * 0.92, color=_EVENT_COLORS[j % len(_EVENT_COLORS)]
            )
            bars.set_label(event_labels[event])
            for yb, v in zip(offs, vals, strict=True):
                if not math.isnan(v):
                    right.text(v + 1.0, yb, f"{v:.0f}%", va="center", fontsize=8)
        right.set_yticks(ys, list(scenarios))
        right.set_ylim(-0.7, n - 0.3)
        right.set_xlim(0, 112)
        right.set_xticks([0, 25, 50, 75, 100])
        right.grid(axis="y", visible=False)
        right.set_xlabel("Probability [%]")
        right.set_title("Chance of key events", loc="left")
        right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2)
        _save(fig, path)


# --------------------------------------------------------------------------- 2. distributions


def density_bins(
    x: np.ndarray[Any, Any], cdf: np.ndarray[Any, Any], min_width: float
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Bins between known points of a CDF: (edges, share in each bin).

    ``x`` ascending and ``cdf`` (share of trials at or below each x, non-decreasing) are exact
    points of the empirical distribution (histogram edges and published quantiles), so each
    bin's share is exact; points closer than ``min_width`` to the previous edge are merged.
    """
    keep = [0]
    for i in range(1, len(x)):
        if x[i] - x[keep[-1]] >= min_width:
            keep.append(i)
    if len(x) > 1 and keep[-1] != len(x) - 1 and x[-1] > x[0]:
        # The last point closes the distribution: it replaces a kept point too close to it.
        if len(keep) > 1:
            keep[-1] = len(x) - 1
        else:
            keep.append(len(x) - 1)
    edges, at = x[keep], cdf[keep]
    return edges, np.diff(at)


def distribution_chart(
    path: Path,
    scenarios: Sequence[str],
    metrics: Mapping[str, tuple[str, float, str]],
    cdfs: Mapping[tuple[str, str], tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    quantiles: Mapping[tuple[str, str], Mapping[str, float | None]],
    settled_share: Mapping[str, float | None],
    colors: Mapping[str, str],
) -> None:
    """Density of the first-year settlement, one row per scenario, one column per metric.

    ``metrics`` maps metric -> (axis label, density step, step unit): the bars show the share
    of deals per ``step`` (e.g. per 1 percentage point); ``cdfs[(scenario, metric)]`` holds
    exact points (x, share at or below x) of its distribution among the trials that agree, and
    the bars are drawn between them (finer where the outcomes are dense);
    ``quantiles[(scenario, metric)]`` gives the p10/p50/p90 lines. The x range of a column
    covers every scenario's p01 to p99.
    """
    n, cols = len(scenarios), list(metrics)
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 0.9 + 2.1 * n)
        axes = np.atleast_2d(fig.subplots(n, len(cols), sharex="col", squeeze=False))
        ranges: dict[str, tuple[float, float]] = {}
        for m in cols:
            los = [_stat(quantiles.get((s, m), {}), "p01") for s in scenarios]
            his = [_stat(quantiles.get((s, m), {}), "p99") for s in scenarios]
            lo, hi = np.nanmin(los + [math.inf]), np.nanmax(his + [-math.inf])
            pad = 0.03 * (hi - lo) if hi > lo else 1.0
            ranges[m] = (lo - pad, hi + pad) if lo < hi else (0.0, 1.0)
        for i, s in enumerate(scenarios):
            for j, m in enumerate(cols):
                ax: Axes = axes[i, j]
                ax.grid(axis="x", visible=False)
                ax.set_xlim(*ranges[m])
                ax.xaxis.set_tick_params(labelbottom=True)  # every panel labelled
                label, step, step_unit = metrics[m]
                if j == 0:
                    share_settled = settled_share.get(s)
                    head = s if share_settled is None else f"{s}: {share_settled:.0%} reach a deal"
                    ax.set_title(head, loc="left")
                ax.set_ylabel(f"% of deals per {step_unit}", fontsize=8.5)
                points = cdfs.get((s, m))
                if points is None or len(points[0]) < 2:
                    ax.text(0.5, 0.5, "no agreement in any trial", ha="center",
                            transform=ax.transAxes)  # fmt: skip
                    continue
                lo, hi = ranges[m]
                edges, share = density_bins(points[0], points[1], (hi - lo) / 60.0)
                width = np.diff(edges)
                height = share / width * step * 100.0
                ax.bar(edges[:-1], height, width=width, align="edge", color=colors[s],
                       alpha=0.75, edgecolor="white", linewidth=0.4)  # fmt: skip
                q = quantiles.get((s, m), {})
                for key, style in (("p10", "--"), ("p50", "-"), ("p90", "--")):
                    if not math.isnan(_stat(q, key)):
                        ax.axvline(_stat(q, key), color=_INK, ls=style, lw=1.3)
                ax.set_title(
                    f"p10 {_stat(q, 'p10'):,.1f} · median {_stat(q, 'p50'):,.1f} · "
                    f"p90 {_stat(q, 'p90'):,.1f}",
                    loc="right", fontsize=8.5, fontweight="normal",
                )  # fmt: skip
                ax.set_ylim(0, max(float(height.max()), 0.1) * 1.1)
        for j, m in enumerate(cols):
            axes[-1, j].set_xlabel(metrics[m][0])
        fig.legend(
            handles=[
                Line2D([], [], color=_INK, ls="-", label="median (p50)"),
                Line2D([], [], color=_INK, ls="--", label="p10 and p90 (80% of deals between)"),
            ],
            loc="outside lower center",
            ncols=2,
        )
        _save(fig, path)


def exceedance_chart(
    path: Path,
    scenarios: Sequence[str],
    metrics: Mapping[str, str],
    cdfs: Mapping[tuple[str, str], tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]],
    colors: Mapping[str, str],
) -> None:
    """Exceedance curves: the chance that the first-year figure is above x, all scenarios on
    one axis per metric. ``cdfs[(scenario, metric)]`` as for :func:`distribution_chart`."""
    cols = list(metrics)
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 4.4)
        axes = np.atleast_1d(fig.subplots(1, len(cols), squeeze=False))[0]
        for ax, m in zip(axes, cols, strict=True):
            lo, hi = math.inf, -math.inf
            for s in scenarios:
                points = cdfs.get((s, m))
                if points is None or len(points[0]) < 2:
                    continue
                x, cdf = points
                ax.plot(x, (1.0 - cdf) * 100.0, color=colors[s], lw=2, label=s)
                inner = x[(cdf > 0.005) & (cdf < 0.995)]
                if len(inner):
                    lo, hi = min(lo, float(inner.min())), max(hi, float(inner.max()))
            if lo < hi:
                pad = 0.05 * (hi - lo)
                ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(0, 100)
            ax.set_yticks([0, 10, 25, 50, 75, 90, 100])
            ax.set_xlabel(metrics[m])
            ax.set_ylabel("chance of more than x [% of deals]")
            ax.set_title(f"Chance the {metrics[m].split(' [')[0]} exceeds x", loc="left")
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6))
        _save(fig, path)


def timing_chart(
    path: Path,
    scenarios: Sequence[str],
    years: Sequence[int],
    shares: Mapping[str, Sequence[float | None]],
    never: Mapping[str, float | None],
    horizon_text: str,
) -> None:
    """When agreement comes: one bar per scenario, split into the share of trials agreeing in
    each year (darker: later) and the share agreeing by none (grey); each bar sums to 100%."""
    n = len(scenarios)
    cmap = mpl.colormaps["Blues"]
    year_colors = [cmap(0.3 + 0.65 * k / max(len(years) - 1, 1)) for k in range(len(years))]
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 2.2 + 0.55 * n)
        ax = fig.subplots()
        ys = np.arange(n)[::-1]
        for y, s in zip(ys, scenarios, strict=True):
            left = 0.0
            parts = [*(shares.get(s, [None] * len(years))), never.get(s)]
            tints = [*year_colors, "#bbbbbb"]
            for k, (p, c) in enumerate(zip(parts, tints, strict=True)):
                value = 0.0 if p is None else float(p) * 100.0
                ax.barh(y, value, left=left, color=c, height=0.7, edgecolor="white", lw=0.5,
                        label=(f"{years[k]}" if k < len(years) else f"none {horizon_text}")
                        if y == ys[0] else None)  # fmt: skip
                if value >= 6.0:
                    dark = k < len(years) and k >= len(years) // 2
                    ax.text(left + value / 2, y, f"{value:.0f}%", ha="center", va="center",
                            fontsize=8.5, color="white" if dark else _INK)  # fmt: skip
                left += value
        ax.set_yticks(ys, list(scenarios))
        ax.set_xlim(0, 100)
        ax.set_xticks([0, 25, 50, 75, 100])
        ax.set_axisbelow(True)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("share of simulated negotiations [%]")
        ax.set_title("Year the agreement comes (or none by the horizon)", loc="left")
        fig.legend(loc="outside lower center", ncols=len(years) + 1, title=None)
        _save(fig, path)


# --------------------------------------------------------------------------- 3. fan chart


def fan_chart(
    path: Path,
    scenarios: Sequence[str],
    paths: Mapping[str, pd.DataFrame],
    colors: Mapping[str, str],
    reference: str | None,
) -> None:
    """Contribution per calendar year with quantile bands, one panel per scenario.

    ``paths[scenario]`` has one row per year (index) and columns p05 p10 p25 p50 p75 p90 p95
    [KRW bn]; ``reference`` names a scenario whose median is drawn in every other panel.
    """
    nrows, ncols = _grid(len(scenarios))
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 0.9 + 3.0 * nrows)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False))
        ref = paths.get(reference) if reference is not None else None
        for ax, s in zip(axes.flat, scenarios, strict=False):
            frame = paths.get(s)
            ax.set_title(s, loc="left")
            if frame is None or frame.empty:
                ax.text(0.5, 0.5, "no contribution path", ha="center", transform=ax.transAxes)
                continue
            years = frame.index.to_numpy(int)
            c = colors[s]
            for lo, hi, alpha in (("p05", "p95", 0.15), ("p10", "p90", 0.25), ("p25", "p75", 0.4)):
                ax.fill_between(years, frame[lo], frame[hi], color=c, alpha=alpha, lw=0)
            ax.plot(years, frame["p50"], color=c, lw=2, marker="o", ms=4)
            if ref is not None and s != reference:
                ax.plot(ref.index.to_numpy(int), ref["p50"], color="#555555", ls="--", lw=1.2)
            ax.set_xticks(years)
            ax.grid(axis="x", visible=False)
        for ax in axes[:, 0]:
            ax.set_ylabel("contribution [KRW bn per year]")
        _hide_unused(axes, len(scenarios))
        handles = [
            Patch(color="#777777", alpha=0.15, label="90% band (p05 to p95)"),
            Patch(color="#777777", alpha=0.3, label="80% band (p10 to p90)"),
            Patch(color="#777777", alpha=0.5, label="middle 50% (p25 to p75)"),
            Line2D([], [], color="#777777", lw=2, marker="o", ms=4, label="median"),
        ]
        if ref is not None:
            handles.append(
                Line2D([], [], color="#555555", ls="--", lw=1.2, label=f"median of {reference}")
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        _save(fig, path)


# --------------------------------------------------------------------------- 4. tornado


def _input_value(name: str, value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    info = INPUT_BY_NAME.get(name)
    if info is not None and info.kind == "category" and 0 <= value < len(info.categories):
        return info.categories[int(value)]
    if unit == "yes/no":
        return "yes" if value >= 0.5 else "no"
    magnitude = abs(value)
    text = (
        f"{value:,.0f}"
        if magnitude >= 100
        else f"{value:.2f}"
        if magnitude < 10
        else f"{value:.1f}"
    )
    return text


def tornado_chart(
    path: Path,
    scenario: str,
    rows: pd.DataFrame,
    median: float | None,
    metric_label: str,
    top: int = 10,
    xlim: tuple[float, float] | None = None,
) -> None:
    """Tornado of one scenario: the median output with each input at its low and high decile.

    ``rows`` are the scenario's ``sensitivity`` rows of method ``tornado`` for one metric;
    ``median`` is the metric's overall p50 (the bars start there); ``xlim`` is the x range
    shared by every scenario's chart, so bars compare across scenarios.
    """
    wide = rows.pivot_table(
        index="input", columns="statistic", values=["value", "input_value", "rank"],
        aggfunc="first",
    )  # fmt: skip
    units = rows.groupby("input").input_unit.first()
    ranked = wide["rank"].min(axis=1).dropna().sort_values().head(top)
    inputs = list(ranked.index)
    with mpl.rc_context(_STYLE):
        fig = _figure(5.8, 1.5 + 0.44 * max(len(inputs), 3))
        ax = fig.subplots()
        if not inputs:
            ax.text(0.5, 0.5, "no sensitivity rows for this scenario", ha="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
            _save(fig, path)
            return
        center = float(median) if median is not None else float(
            np.nanmean(wide["value"].loc[inputs].to_numpy(float))
        )  # fmt: skip
        ys = np.arange(len(inputs))[::-1]
        labels = []
        for y, name in zip(ys, inputs, strict=True):
            lo = float(wide["value"].loc[name].get("median_at_low_decile", math.nan))
            hi = float(wide["value"].loc[name].get("median_at_high_decile", math.nan))
            ax.barh(y, lo - center, left=center, color=_LOW, height=0.7)
            ax.barh(y, hi - center, left=center, color=_HIGH, height=0.7)
            unit = str(units.get(name, ""))
            x_lo = wide["input_value"].loc[name].get("median_at_low_decile")
            x_hi = wide["input_value"].loc[name].get("median_at_high_decile")
            lo_text, hi_text = _input_value(name, x_lo, unit), _input_value(name, x_hi, unit)
            suffix = "" if unit in ("yes/no", "category") else f" {unit}"
            labels.append(f"{input_label(name)}\n{lo_text} vs {hi_text}{suffix}")
        ax.axvline(center, color=_INK, lw=1)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_yticks(ys, labels, fontsize=8.5)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(f"median {metric_label}")
        ax.set_title(scenario, loc="left")
        fig.legend(
            handles=[
                Patch(color=_LOW, label="input low (first value)"),
                Patch(color=_HIGH, label="input high (second value)"),
                Line2D([], [], color=_INK, lw=1, label=f"overall median {center:.1f}"),
            ],
            loc="outside lower center",
            ncols=3,
            fontsize=8,
            handlelength=1.2,
            columnspacing=1.0,
        )
        _save(fig, path)


def sobol_chart(path: Path, scenarios: Sequence[str], rows: pd.DataFrame, top: int = 8) -> None:
    """Sobol' indices of one output, one panel per scenario on one shared 0-1 scale: total
    order (light bar) and first order (dark bar) with their 95% intervals, the ``top``
    factors by total order. ``rows`` are ``sensitivity`` rows of method ``sobol``."""
    nrows, ncols = _grid(len(scenarios), max_cols=2)
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 0.9 + (0.6 + 0.42 * top) * nrows)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False))
        for ax, s in zip(axes.flat, scenarios, strict=False):
            ax.set_title(s, loc="left")
            mine = rows[rows.scenario == s]
            wide = mine.pivot_table(index="input", columns="statistic",
                                    values=["value", "ci_low", "ci_high"], aggfunc="first")  # fmt: skip
            if mine.empty or "total_order" not in wide["value"]:
                ax.text(0.5, 0.5, "no Sobol' indices for this run", ha="center",
                        transform=ax.transAxes)  # fmt: skip
                continue
            order = wide["value"]["total_order"].sort_values(ascending=False).head(top).index
            ys = np.arange(len(order))[::-1]
            for key, color, height in (("total_order", "#9ecae1", 0.75),
                                       ("first_order", "#08519c", 0.4)):  # fmt: skip
                v = wide["value"][key].reindex(order).to_numpy(float)
                lo = wide["ci_low"][key].reindex(order).to_numpy(float)
                hi = wide["ci_high"][key].reindex(order).to_numpy(float)
                ax.barh(ys, np.clip(v, 0, None), height=height, color=color)
                err = np.vstack([np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)])
                ax.errorbar(np.clip(v, 0, None), ys, xerr=err, fmt="none", ecolor=_INK,
                            elinewidth=0.8, capsize=2)  # fmt: skip
            names = [textwrap.fill(factor_label(str(n)), 34) for n in order]
            ax.set_yticks(ys, names, fontsize=8)
            ax.grid(axis="y", visible=False)
            ax.set_xlim(0, 1)
        for ax in axes[-1, :]:
            ax.set_xlabel("share of variance [0-1]")
        _hide_unused(axes, len(scenarios))
        fig.legend(
            handles=[
                Patch(color="#9ecae1", label="total order (alone and with others)"),
                Patch(color="#08519c", label="first order (alone)"),
                Line2D([], [], color=_INK, lw=0.8, label="95% interval"),
            ],
            loc="outside lower center",
            ncols=3,
        )
        _save(fig, path)


def convergence_chart(
    path: Path,
    scenarios: Sequence[str],
    errors: Mapping[str, Mapping[str, tuple[float | None, int]]],
    colors: Mapping[str, str],
    target: float | None = None,
) -> None:
    """Monte Carlo error of the headline quantiles against the trial count, one panel per
    quantile: each scenario's measured s.e. at its trial count (dot) and the 1/sqrt(n) law
    through it (line), from a sixteenth to sixteen times the trials run.

    ``errors[scenario][statistic]`` is (s.e. [pp], trials behind it); ``target`` draws a
    convergence gate's target s.e. as a dashed line.
    """
    stats_ = ("p10", "p50", "p90")
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 3.6)
        axes = fig.subplots(1, len(stats_), sharey=True)
        for ax, st in zip(axes, stats_, strict=True):
            for s in scenarios:
                se, n = errors.get(s, {}).get(st, (None, 0))
                if se is None or not n or not math.isfinite(se) or se <= 0:
                    continue
                ns = np.geomspace(n / 16, n * 16, 50)
                ax.plot(ns, se * np.sqrt(n / ns), color=colors[s], lw=1.2, alpha=0.8, label=s)
                ax.plot([n], [se], "o", color=colors[s], ms=5)
            if target is not None:
                ax.axhline(target, color=_INK, ls="--", lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"first-year increase {st}", loc="left")
            ax.set_xlabel("trials that reach an agreement")
        axes[0].set_ylabel("Monte Carlo s.e. [pp]")
        handles, labels = axes[0].get_legend_handles_labels()
        handles.append(Line2D([], [], marker="o", ls="", color="#777777", label="this run"))
        if target is not None:
            handles.append(Line2D([], [], color=_INK, ls="--", label="target s.e. of the run"))
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 7))
        _save(fig, path)


# --------------------------------------------------------------------------- 5. history


def _day(d: dt.date) -> float:
    """A date as days since 1970-01-01 (the x coordinate of the history chart)."""
    return float((d - dt.date(1970, 1, 1)).days)


def history_chart(
    path: Path,
    scenarios: Sequence[str],
    history: Mapping[str, pd.DataFrame],
    current: dt.date,
    colors: Mapping[str, str],
) -> None:
    """p10/p50/p90 of the first-year increase by as-of date, one panel per scenario.

    ``history[scenario]`` has a date index (as_of_date) and columns p10 p50 p90 [%].
    """
    nrows, ncols = _grid(len(scenarios))
    dates = sorted({d for f in history.values() for d in f.index})
    single = len(dates) <= 1
    step = max(1, math.ceil(len(dates) / 6))
    ticks = dates[::-1][::step][::-1]  # at most 6, always including the latest
    with mpl.rc_context(_STYLE):
        fig = _figure(12.0, 0.9 + 2.8 * nrows)
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False))
        for ax, s in zip(axes.flat, scenarios, strict=False):
            frame = history.get(s)
            ax.set_title(s, loc="left")
            if frame is None or frame.empty:
                ax.text(0.5, 0.5, "no forecasts", ha="center", transform=ax.transAxes)
                continue
            x = [_day(d) for d in frame.index]
            c = colors[s]
            if len(frame) > 1:
                ax.fill_between(x, frame["p10"], frame["p90"], color=c, alpha=0.25, lw=0)
                ax.plot(x, frame["p10"], color=c, lw=0.8, alpha=0.8)
                ax.plot(x, frame["p90"], color=c, lw=0.8, alpha=0.8)
            else:
                ax.vlines(x, frame["p10"], frame["p90"], color=c, lw=6, alpha=0.4)
            ax.plot(x, frame["p50"], color=c, lw=2, marker="o", ms=4)
            ax.axvline(_day(current), color="#999999", ls=":", lw=1)
            ax.set_xticks([_day(d) for d in ticks], [f"{d:%d %b}\n{d:%Y}" for d in ticks])
            ax.margins(x=0.08)
            if single:
                ax.text(0.5, 0.95, f"only one forecast date so far ({dates[0]:%Y-%m-%d})",
                        ha="center", va="top", fontsize=8, color="#555555",
                        transform=ax.transAxes)  # fmt: skip
                d0 = _day(dates[0])
                ax.set_xlim(d0 - 7, d0 + 7)
        for ax in axes[:, 0]:
            ax.set_ylabel("first-year increase [%]")
        for ax in axes[-1, :]:
            ax.set_xlabel("as-of date of the forecast")
        _hide_unused(axes, len(scenarios))
        fig.legend(
            handles=[
                Patch(color="#777777", alpha=0.35, label="p10 to p90"),
                Line2D([], [], color="#777777", lw=2, marker="o", ms=4, label="median (p50)"),
                Line2D([], [], color="#999999", ls=":", label="this report's date"),
            ],
            loc="outside lower center",
            ncols=3,
        )
        _save(fig, path)
