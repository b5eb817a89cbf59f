"""The report page: CSS, one function per section and :func:`render_html`.

Sections read a :class:`ReportData` (the published Parquet files) and return HTML; the
figures are drawn beforehand (pipeline/report/drawing.py) and only linked here.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from pipeline.common import significant
from pipeline.outputs.drift import KEY_STATISTICS, Z_THRESHOLD, key_metrics
from pipeline.report.answer import answer, answer_text
from pipeline.report.data import (
    ReportData,
    as_date,
    horizon_year,
    optional_float,
    settlement_years,
    year_words,
)
from pipeline.report.drawing import Chart, first_year_metrics, money_metric, threshold_shares
from pipeline.report.format import (
    RawHtml,
    escape,
    format_timestamp,
    format_value,
    html_table,
    quantity_label,
)

__all__ = ["render_html"]


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
ul.answer li { margin: 0 0 8px; }
.scroll { overflow-x: auto; max-width: 100%; }
footer { margin-top: 40px; color: #777; font-size: 0.85em; }
"""


def _figure_html(chart: Chart) -> str:
    return (
        f'<figure><img src="{escape(chart.file)}" alt="{escape(chart.alt)}">'
        f"<figcaption>{escape(chart.caption)}</figcaption></figure>"
    )


def _median_range_cell(data: ReportData, s: str, metric: str, unit: str) -> RawHtml:
    p10, p50, p90 = (data.value(s, metric, k) for k in ("p10", "p50", "p90"))
    se = data.se(s, metric, "p50")
    title = (
        f' title="Monte Carlo s.e. of the median: {escape(format_value(se, unit, digits=3))}"'
        if se is not None
        else ""
    )
    if p50 is None:
        return RawHtml('<span class="muted">–</span>')
    mean, sd = data.value(s, metric, "mean"), data.value(s, metric, "sd")
    moments = (
        f'<br><span class="muted">mean {escape(format_value(mean, unit, digits=1))}, '
        f"sd {escape(format_value(sd, unit, digits=1))}</span>"
        if mean is not None and sd is not None
        else ""
    )
    return RawHtml(
        f"<span{title}><b>{escape(format_value(p50, unit, digits=1))}</b></span><br>"
        f'<span class="muted">{escape(format_value(p10, unit, digits=1))} to '
        f"{escape(format_value(p90, unit, digits=1))}</span>{moments}"
    )


def _probability_cell(data: ReportData, s: str, metric: str) -> RawHtml:
    p, se = data.value(s, metric, "prob"), data.se(s, metric, "prob")
    if p is None:
        return RawHtml("–")
    title = f' title="Monte Carlo s.e. {se * 100:.2f} pp"' if se is not None else ""
    return RawHtml(f"<span{title}>{escape(format_value(p, 'probability'))}</span>")


def _answer_section(data: ReportData) -> str:
    """One sentence per scenario: when, the first year, how much, the main risks."""
    money, currency = money_metric(data)
    years = settlement_years(data)
    items = []
    for s in data.scenarios:
        a = answer(s, functools.partial(data.value, s), years, money, currency)
        items.append(f"<li><b>{escape(s)}</b>: {escape(answer_text(a))}</li>")
    return (
        '<h2 id="answer">The forecast in one sentence per scenario</h2>'
        '<ul class="answer">' + "".join(items) + "</ul>"
        '<p class="muted">Years: the share of all simulated negotiations reaching agreement in '
        f"that {year_words(data)}. The first year, increase and amounts describe the agreement in "
        "the negotiations that reach one (median, then p10 to p90: 80% of them fall in that "
        "range); risks are shares of all simulated negotiations.</p>"
    )


def _summary_section(data: ReportData) -> str:
    horizon = horizon_year(data)
    by = f"by {horizon}" if horizon else "in the horizon"
    money, currency = money_metric(data)
    headers = [
        "scenario",
        f"agreement {by}",
        f"no agreement {by}",
        "first-year increase: median (p10 to p90)",
        f"first-year {currency} bn: median (p10 to p90)",
        "months of talks to agreement, if agreed: median (p10 to p90)",
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
                _probability_cell(data, s, "settled_by_horizon"),
                _probability_cell(data, s, "no_deal_by_horizon"),
                _median_range_cell(data, s, "increase_pct", "%"),
                _median_range_cell(data, s, money, f"{currency} bn"),
                _median_range_cell(data, s, "months_to_settlement_if_settled", "months"),
                _probability_cell(data, s, "reopened_before_2029"),
                _probability_cell(data, s, "lapse"),
                _probability_cell(data, s, "furlough"),
                _probability_cell(data, s, "troop_threat"),
                _probability_cell(data, s, "package_deal"),
                f"{data.n(s, 'settled_by_horizon', 'prob'):,}",
            ]
        )
    return (
        '<h2 id="summary">Summary</h2>'
        "<p>One row per scenario. The first-year figures and the months of talks describe the "
        "agreement that replaces or follows the 12th SMA, <b>counting only the simulated "
        f"negotiations that reach an agreement {by}</b> (the second column says how many do, "
        "the third how many do not: for those there is no agreement to time). Probabilities "
        "are shares of all simulated negotiations. Hover a number to see its Monte Carlo "
        "standard error. Under each median and range: the mean and standard deviation.</p>"
        + html_table(headers, rows, cls="wide")
        + _timing_table(data, by)
    )


def _timing_table(data: ReportData, by: str) -> str:
    """The settlement-time distribution: share of trials agreeing in each year, and never."""
    years = settlement_years(data)
    headers = ["scenario", *(str(y) for y in years), f"no agreement {by}"]
    rows: list[list[object]] = [
        [
            s,
            *(_probability_cell(data, s, f"settled_in_{y}") for y in years),
            _probability_cell(data, s, "no_deal_by_horizon"),
        ]
        for s in data.scenarios
    ]
    return (
        '<h3 id="timing">When agreement comes</h3>'
        f"<p>Share of all simulated negotiations that reach agreement in each {year_words(data)}, and "
        f"of those that reach none {by}; each row sums to 100% (up to rounding). The months of talks above are "
        "the timing within the agreeing share only.</p>" + html_table(headers, rows)
    )


def round_thresholds(lo: float, hi: float, bin_width: float, most: int = 5) -> list[float]:
    """Round thresholds spanning [lo, hi]: multiples of the smallest step among 1, 2, 2.5 and
    5 times a power of ten (and a multiple of ``bin_width``) giving at most ``most`` values."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return []
    for power in range(-2, 8):
        for factor in (1.0, 2.0, 2.5, 5.0):
            step = factor * 10.0**power
            if step < bin_width or abs(step / bin_width - round(step / bin_width)) > 1e-9:
                continue
            first, last = math.ceil(lo / step), math.floor(hi / step)
            if 0 < last - first + 1 <= most:
                return [k * step for k in range(first, last + 1)]
    return []


def _exceedance_section(data: ReportData, charts: Sequence[Chart]) -> str:
    """The exceedance chart and the chances at round thresholds, exact from the histograms."""
    parts = ['<h2 id="exceedance">How likely is more than ...?</h2>']
    parts += [_figure_html(c) for c in charts]
    for metric, (label, _, _) in first_year_metrics(data).items():
        hists = data.histograms[data.histograms.metric == metric]
        if hists.empty:
            continue
        widths = (hists.bin_upper - hists.bin_lower).dropna()
        width = float(widths.median()) if len(widths) else 1.0
        los = [data.value(s, metric, "p05") for s in data.scenarios]
        his = [data.value(s, metric, "p95") for s in data.scenarios]
        lo = min((v for v in los if v is not None), default=math.nan)
        hi = max((v for v in his if v is not None), default=math.nan)
        thresholds = round_thresholds(lo, hi, width)
        if not thresholds:
            continue
        unit = label[label.index("[") + 1 : -1] if "[" in label else ""
        signed = unit == "%"
        heads = [
            "scenario",
            *(f"> {t:+g}%" if signed else f"> {t:,.0f} {unit}" for t in thresholds),
        ]
        rows: list[list[object]] = []
        for s in data.scenarios:
            shares = threshold_shares(hists[hists.scenario == s], thresholds)
            rows.append([s, *(format_value(p, "probability") for p in shares)])
        parts.append(
            f"<h3>Chance the {escape(label.split(' [')[0])} is above each threshold, if an "
            "agreement comes</h3>" + html_table(heads, rows)
        )
    return "".join(parts)


def _drift_rows(frame: pd.DataFrame) -> list[list[object]]:
    headline = {
        "settled_by_horizon",
        "reopened_before_2029",
        "lapse",
        "troop_threat",
        "package_deal",
    }
    rows: list[list[object]] = []
    keys = key_metrics(frame.metric.astype(str).unique())
    for r in frame.itertuples(index=False):
        moved = bool(getattr(r, "beyond_noise", r.flagged))
        key = (r.metric in keys and r.statistic in KEY_STATISTICS) or r.metric in headline
        if not (key or moved):
            continue
        unit = str(r.unit)
        label = quantity_label(r.metric, r.statistic)
        z = optional_float(r.z)
        cause = getattr(r, "cause", None)
        mark = (
            '<span class="flagmark">beyond noise, unexplained</span>'
            if r.flagged
            else f"beyond noise ({escape(str(cause))})"
            if moved and isinstance(cause, str)
            else ""
        )
        noise = optional_float(r.noise_se)
        rows.append(
            [
                RawHtml(f'<span class="text">{escape(label)}</span>'),
                format_value(optional_float(r.previous_value), unit),
                format_value(optional_float(r.value), unit),
                format_value(optional_float(r.change), unit, signed=True),
                "–" if noise is None else "±" + format_value(noise, unit).lstrip("+"),
                "–" if z is None else f"{z:+.1f}",
                RawHtml(mark),
                bool(r.flagged),
            ]
        )
    return rows


def _drift_table(rows: list[list[object]]) -> str:
    headers = ["quantity", "previous", "now", "change", "noise (1 s.e.)", "z", ""]
    body = []
    for row in rows:
        cls = ' class="flag"' if row[-1] else ""
        cells = "".join(
            f"<{'th scope=row' if i == 0 else 'td'}>"
            f"{c if isinstance(c, RawHtml) else escape(c)}</{'th' if i == 0 else 'td'}>"
            for i, c in enumerate(row[:-1])
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return (
        '<div class="scroll"><table><thead><tr>'
        + "".join(f"<th scope=col>{escape(h)}</th>" for h in headers)
        + "</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def _drift_section(data: ReportData) -> str:
    parts = [
        '<h2 id="changes">What changed since the previous run</h2>',
        "<p>Each scenario is compared with the latest earlier completed run of the same "
        "scenario: the p10, p50 and p90 of the key outputs and every probability. A change is "
        f"beyond noise when it exceeds {Z_THRESHOLD:g} Monte Carlo standard errors of the "
        "difference (plus the quantile resolution). Simulation noise alone almost never does "
        "that, so such a change comes from a new as-of date (the calendar: a new month moves "
        "the start of the simulation), new evidence, a new configuration or new code; the "
        "column <em>why</em> says which of them differ between the two runs. Only a change "
        "that none of them explains is marked <span class=flagmark>unexplained</span>. Open a "
        "scenario below for its numbers; the <code>drift</code> dataset has every compared "
        "value.</p>",
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
            overview.append([s, RawHtml(f'<span class="muted">{why}</span>'), "–", "", ""])
            continue
        prev_date = frame.previous_as_of_date.dropna()
        when = as_date(prev_date.iloc[0]).isoformat() if len(prev_date) else "?"
        moved_col = frame.beyond_noise if "beyond_noise" in frame else frame.flagged
        flagged = frame[moved_col.fillna(frame.flagged).astype(bool)]
        unexplained = int(frame.flagged.astype(bool).sum())
        causes = frame.cause_detail.dropna() if "cause_detail" in frame else frame.cause.iloc[:0]
        reason = str(causes.iloc[0]) if len(causes) else "not recorded"
        order = flagged.assign(size=flagged.z.abs().fillna(np.inf)).sort_values(
            "size", ascending=False
        )
        largest = "; ".join(
            f"{quantity_label(r.metric, r.statistic)} {format_value(optional_float(r.change), str(r.unit), signed=True)}"
            for r in order.head(3).itertuples(index=False)
        )
        count = (
            f'<span class="flagmark">{len(flagged)} of {len(frame)}, {unexplained} unexplained'
            "</span>"
            if unexplained
            else f"{len(flagged)} of {len(frame)}"
        )
        overview.append(
            [
                s,
                RawHtml(f"<code>{escape(prev.iloc[0])}</code><br>as of {escape(when)}"),
                RawHtml(count),
                RawHtml(f'<span class="text">{escape(largest) or "none"}</span>'),
                RawHtml(f'<span class="text">{escape(reason)}</span>'),
            ]
        )
        details.append(
            f"<details><summary>{escape(s)}: previous, now, change and noise</summary>"
            f"{_drift_table(_drift_rows(frame))}</details>"
        )
    parts.append(
        html_table(
            ["scenario", "compared with run", "changed beyond noise", "largest changes", "why"],
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
            f"<dt><b>{escape(s)}</b></dt><dd>{escape(desc.get(s, '') or '(no description)')}</dd>"
            for s in scen
        )
        + "</dl>"
    )

    def cell(row: Any) -> str:
        text = escape(row.distribution)
        lo, hi = optional_float(row.p05), optional_float(row.p95)
        if row.kind == "input" and lo is not None and hi is not None and lo < hi:
            if row.unit != "yes/no":
                text += (
                    f'<br><span class="muted">90% between {escape(significant(lo))} and {escape(significant(hi))} '
                    f"{escape(row.unit)}</span>"
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
                RawHtml(f'{escape(name)}<br><span class="muted">{escape(first.description)}</span>')
            ]
            for s, t in zip(scen, texts, strict=True):
                if t is None:
                    row.append(RawHtml('<span class="muted">–</span>'))
                    continue
                klass = "diff" if highlight and t != common else ""
                row.append(RawHtml(f'<div class="{klass}">{cell(table[(s, name)])}</div>'))
            rows.append(row)
        return html_table(headers, rows, cls="wide")

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


def _provenance_section(data: ReportData) -> str:
    parts = [
        '<h2 id="provenance">Provenance</h2>',
        "<p>The runs whose results this page shows. The same seed, trial count, chunk size, "
        "code version and configuration reproduce every number exactly.</p>",
    ]
    for r in data.runs.itertuples(index=False):
        shown = [s for s in data.scenarios if data.run_of.get(s) == r.run_id]
        seconds = (pd.Timestamp(r.finished_at) - pd.Timestamp(r.started_at)).total_seconds()
        started, finished = format_timestamp(r.started_at), format_timestamp(r.finished_at)
        rows = [
            ["run id", r.run_id],
            ["as-of date", as_date(r.as_of_date).isoformat()],
            ["scenarios shown from this run", ", ".join(shown)],
            ["all scenarios of the run", str(r.scenarios).replace(",", ", ")],
            ["status", r.status],
            ["started / finished", f"{started} / {finished} ({seconds:.1f} s)"],
            ["trials per scenario", f"{int(r.n_trials):,}"],
            [
                "trials kept after evidence conditioning (all scenarios)",
                "–" if pd.isna(r.n_trials_effective) else f"{int(r.n_trials_effective):,}",
            ],
            ["seed (root entropy)", r.seed_entropy],
            ["sampler / chunk size", f"{r.sampler} / {int(r.chunk_size):,} trials"],
            ["configuration hash (sha256)", r.config_hash],
            [
                "evidence hash (sha256 of the facts known as of the date)",
                ev if isinstance(ev := getattr(r, "evidence_hash", None), str) else "not recorded",
            ],
            ["code version", f"sma-forecast {r.package_version}"],
            ["git commit", r.git_commit if isinstance(r.git_commit, str) else "unknown"],
            [
                "Prefect flow run",
                r.prefect_flow_run_id if isinstance(r.prefect_flow_run_id, str) else "none",
            ],
            ["flow", r.flow_name],
        ]
        parts.append(html_table(["field", "value"], rows, cls="kv"))
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
{answer}
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
    data: ReportData, figures: Mapping[str, Sequence[Chart]], built: dt.datetime
) -> str:
    """The page for ``data`` with the drawn ``figures`` (file names relative to the page)."""
    sections: list[tuple[str, str, str]] = [
        ("summary", "Summary", _summary_section(data)),
        ("exceedance", "Chance of more than ...", _exceedance_section(data, figures["exceedance"])),
        (
            "when",
            "Timing",
            '<h2 id="when">Timing of the agreement</h2>'
            + "".join(_figure_html(c) for c in figures["timing"]),
        ),
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
            '<div class="grid2">'
            + "".join(_figure_html(c) for c in figures["drivers"])
            + "</div>"
            + "".join(_figure_html(c) for c in figures.get("sobol", [])),
        ),
        (
            "history",
            "Forecast history",
            '<h2 id="history">Forecast history</h2>'
            + "".join(_figure_html(c) for c in figures["history"]),
        ),
        (
            "precision",
            "Precision",
            '<h2 id="precision">How precise the simulation is</h2>'
            + "".join(_figure_html(c) for c in figures.get("convergence", [])),
        ),
        ("assumptions", "Assumptions", _assumptions_section(data)),
        ("provenance", "Provenance", _provenance_section(data)),
    ]
    nav = '<a href="#answer">In one sentence</a> <a href="#about">How to read</a> ' + " ".join(
        f'<a href="#{anchor}">{escape(label)}</a>' for anchor, label, _ in sections
    )
    trials = sorted({data.n(s, "settled_by_horizon", "prob") for s in data.scenarios})
    trials_text = f"{trials[0]:,}" if len(trials) == 1 else f"{trials[0]:,} to {trials[-1]:,}"
    run_ids = sorted(set(data.run_of.values()))
    runs_text = (
        f"run <code>{escape(run_ids[0])}</code>" if len(run_ids) == 1 else f"{len(run_ids)} runs"
    )
    return _PAGE.format(
        title=escape(f"SMA forecast as of {data.as_of_date.isoformat()}"),
        css=_CSS,
        as_of=escape(data.as_of_date.isoformat()),
        n_scen=len(data.scenarios),
        trials=escape(trials_text),
        runs=runs_text,
        nav=nav,
        answer=_answer_section(data),
        body="\n".join(section for _, _, section in sections),
        built=escape(built.strftime("%Y-%m-%d %H:%M UTC")),
    )
