"""The HTML report: built from Parquet alone, every image a real PNG, only existing files
referenced, the content a reader needs, atomic rebuilds; and the ``inputs`` dataset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from report_fixtures import CONFIG_DIR, publish_forecast

import pipeline.spec.evidence
import pipeline.spec.history
import pipeline.spec.scenario
from pipeline.outputs import io
from pipeline.outputs.schema import INPUTS_SCHEMA
from pipeline.outputs.tables.inputs import inputs_table
from pipeline.report import (
    ReportError,
    build_report,
    report_artifact_markdown,
    report_dir,
)
from pipeline.report.data import ReportData, year_words
from pipeline.report.drawing import QUANTILE_LEVELS, cdf_points
from pipeline.report.figures import density_bins
from pipeline.report.format import factor_label, input_label
from pipeline.report.html import round_thresholds
from pipeline.spec.distributions import (
    BernoulliSpec,
    CategoricalSpec,
    DiscreteSpec,
    FixedSpec,
    LogNormalSpec,
    NormalSpec,
    PertSpec,
)
from pipeline.spec.scenario import load_scenario

D1, D2 = dt.date(2026, 2, 27), dt.date(2026, 3, 5)
T0 = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)
SCENARIOS = ("hardline", "status_quo_holds")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """Collects what a page references and the ids it defines."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("src", "href", "srcset", "poster", "data", "action") and value is not None:
                self.refs.append((tag, name, value))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two as-of dates of three scenarios; the second date's run has a changed input."""
    out = tmp_path_factory.mktemp("report") / "outputs"
    first, _ = publish_forecast(out, SCENARIOS, as_of=D1)
    second, _ = publish_forecast(out, SCENARIOS, as_of=D2, overrides={"korea_cpi_pct.p95": 4.0})
    return {"out": out, "first": first, "second": second}


@pytest.fixture(scope="module")
def parquet_only(outputs: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the outputs holding nothing but the Parquet files."""
    src: Path = outputs["out"]  # type: ignore[assignment]
    dst = tmp_path_factory.mktemp("copy") / "outputs"
    for path in src.rglob("*.parquet"):
        if ".staging" in path.parts:
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dst


@pytest.fixture(scope="module")
def report(parquet_only: Path) -> Path:
    """The report of the latest date, built with every config and data reader disabled."""
    mp = pytest.MonkeyPatch()

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report must be built from the Parquet outputs alone")

    for module, name in (
        (pipeline.spec.scenario, "load_scenario"),
        (pipeline.spec.scenario, "read_yaml"),
        (pipeline.spec.history, "load_history"),
        (pipeline.spec.evidence, "load_evidence"),
    ):
        mp.setattr(module, name, forbidden)
    try:
        return build_report(parquet_only)
    finally:
        mp.undo()


# --------------------------------------------------------------------------- files


def test_report_is_written_where_documented(report: Path, parquet_only: Path) -> None:
    assert report == report_dir(parquet_only, D2) / "index.html"
    assert report.parent == parquet_only / "reports" / "as_of_date=2026-03-05"
    assert report.is_file()


def test_every_image_exists_and_is_a_valid_png(report: Path) -> None:
    page = parse(report)
    images = [v for tag, attr, v in page.refs if tag == "img" and attr == "src"]
    # scenarios, exceedance, timing, distribution, fan, history, Sobol, convergence, tornadoes
    assert len(images) == 8 + len(SCENARIOS)
    for src in images:
        path = report.parent / src
        assert path.is_file(), src
        assert path.read_bytes()[:8] == PNG_MAGIC, src
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width >= 400 and img.height >= 300, src
            pixels = np.asarray(img.convert("L"))
            assert pixels.std() > 10, f"{src} looks blank"
    on_disk = {p.name for p in report.parent.glob("*.png")}
    assert on_disk == set(images), "unreferenced or missing PNG files"


def test_html_references_only_files_that_exist(report: Path) -> None:
    page = parse(report)
    assert page.refs
    for tag, attr, value in page.refs:
        if value.startswith("#"):
            assert value[1:] in page.ids, f"dangling anchor {value}"
        elif value.startswith("data:"):
            assert tag == "link", f"unexpected data URI in <{tag} {attr}>"
        else:
            assert "://" not in value and not value.startswith("//"), f"external URL {value}"
            assert (report.parent / value).is_file(), f"{value} does not exist"
    assert "script" not in page.tags
    raw = report.read_text(encoding="utf-8")
    assert "http://" not in raw and "https://" not in raw


def test_rebuild_replaces_the_folder_whole(outputs: dict[str, object]) -> None:
    out: Path = outputs["out"]  # type: ignore[assignment]
    first = build_report(out, as_of_date=D1)
    junk = first.parent / "stale.png"
    junk.write_bytes(b"old")
    again = build_report(out, as_of_date=D1)
    assert again == first and not junk.exists()
    reports = out / "reports"
    assert sorted(p.name for p in reports.iterdir() if not p.name.startswith(".")) == [
        "as_of_date=2026-02-27"
    ]
    assert not any((reports / ".staging").iterdir())
    assert not (reports / ".trash").exists() or not any((reports / ".trash").iterdir())


def test_failed_build_leaves_the_previous_report(
    outputs: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    out: Path = outputs["out"]  # type: ignore[assignment]
    index = build_report(out, as_of_date=D1)
    before = index.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("pipeline.report.figures.history_chart", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build_report(out, as_of_date=D1)
    assert index.read_bytes() == before
    assert not any((out / "reports" / ".staging").iterdir())


# --------------------------------------------------------------------------- content


def test_page_shows_summary_drift_assumptions_and_provenance(
    report: Path, outputs: dict[str, object]
) -> None:
    html = report.read_text(encoding="utf-8")
    text = " ".join(parse(report).text)
    for scenario in SCENARIOS:
        assert scenario in text
    for heading in (
        "Summary",
        "What changed since the previous run",
        "Scenarios side by side",
        "Distribution of the first-year settlement",
        "Contribution path, year by year",
        "What drives the first-year increase",
        "Forecast history",
        "Key assumptions of each scenario",
        "Provenance",
    ):
        assert heading in text, heading
    # drift against the D1 run: the CPI change moved the KRW amounts beyond noise
    assert outputs["first"] in html
    assert "beyond noise" in html and "contribution in 2028 [KRW bn] p50" in html
    # assumptions come from the inputs dataset: hardline's overrides and a mechanism switch
    assert "fixed 10" in html
    assert "PERT(min=0.6, mode=0.85, max=1)" in html
    assert "model.mechanisms.reopening" in html
    assert "normal(p05=1.2, p95=4)" in html  # the overridden CPI prior
    # provenance of the shown run
    assert outputs["second"] in html and "20260301" in html and "sma-forecast 0.1.0" in html
    assert "<th scope=row>trials per scenario</th><td>3,000</td>" in html
    # the CPI change is explained by the configuration, so it is not an unexplained alarm
    assert "config: the scenario&#x27;s configuration changed" in html
    # each chart has a caption saying how to read it
    assert html.count("<figcaption>") == 8 + len(SCENARIOS)
    assert "3 dates" not in html and "2 dates from 2026-02-27 to 2026-03-05" in html


def test_page_states_timing_among_settled_and_the_year_distribution(
    report: Path, parquet_only: Path
) -> None:
    """Months of talks are among agreeing trials, next to P(no deal) and the year shares; the
    censored months_to_settlement quantiles appear nowhere on the page."""
    html = report.read_text(encoding="utf-8")
    summary = io.latest_summary(parquet_only)
    summary = summary[summary.as_of_date == D2]
    assert "months of talks to agreement, if agreed" in html and "no agreement by 2031" in html
    assert "When agreement comes" in html
    table = html[html.index('id="timing"') :]
    table = table[: table.index("</table>")]
    for scenario in SCENARIOS:
        rows = summary[summary.scenario == scenario].set_index(["metric", "statistic"]).value
        settled_p50 = rows[("months_to_settlement_if_settled", "p50")]
        assert f"<b>{settled_p50:.1f}</b>" in html
        censored_p50 = rows[("months_to_settlement", "p50")]
        if abs(censored_p50 - settled_p50) >= 0.05:
            assert f"<b>{censored_p50:.1f}</b>" not in html
        # One row per scenario: a share per year, then no agreement; they add up to 100%.
        row = table[table.index(f"<th scope=row>{scenario}</th>") :]
        row = row[: row.index("</tr>")]
        shares = [float(x) for x in re.findall(r">(\d+\.\d)%<", row)]
        years = [y for y in range(2026, 2032) if ("settled_in_" + str(y), "prob") in rows]
        assert len(shares) == len(years) + 1 == 7
        assert sum(shares) == pytest.approx(100.0, abs=0.35)  # each rounded to 0.1%
        assert shares[-1] == pytest.approx(100 * rows[("no_deal_by_horizon", "prob")], abs=0.05)
    assert "months of talks, no-deal trials counted" not in html


def test_single_date_history_says_so(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    publish_forecast(out, ["baseline"], as_of=D1, n_trials=1500)
    html = build_report(out).read_text(encoding="utf-8")
    assert "Only one forecast date so far" in html
    assert "First published run of this scenario" in html or "first run of this scenario" in html


def test_runs_without_drift_or_inputs_still_render(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    publish_forecast(
        out, ["baseline"], as_of=D1, n_trials=1500, with_drift=False, with_inputs=False
    )
    html = build_report(out).read_text(encoding="utf-8")
    assert "No drift rows were published for this date" in html
    assert "The assumptions were not recorded" in html


def test_report_of_a_run_and_errors(outputs: dict[str, object], tmp_path: Path) -> None:
    out: Path = outputs["out"]  # type: ignore[assignment]
    first: str = outputs["first"]  # type: ignore[assignment]
    index = build_report(out, run_id=first)
    assert index.parent.name == "as_of_date=2026-02-27"
    assert first in index.read_text(encoding="utf-8")
    with pytest.raises(ReportError, match="not 2026-03-05"):
        build_report(out, run_id=first, as_of_date=D2)
    with pytest.raises(ReportError, match="no completed forecast as of 2026-01-01"):
        build_report(out, as_of_date=dt.date(2026, 1, 1))
    with pytest.raises(ReportError, match="nope"):
        build_report(out, run_id="nope")
    with pytest.raises(ReportError, match="no completed forecast"):
        build_report(tmp_path / "empty")


def test_artifact_markdown_links_the_report(report: Path) -> None:
    md = report_artifact_markdown(report, as_of=D2, drift_flags=3)
    assert report.resolve().as_uri() in md and "2026-03-05" in md and "**3**" in md


# --------------------------------------------------------------------------- inputs dataset


def test_inputs_table_describes_every_input_and_setting() -> None:
    scenario = load_scenario(CONFIG_DIR / "scenarios" / "hardline.yaml")
    table = inputs_table(scenario, run_id="r1", created_at=T0)
    assert table.schema.equals(INPUTS_SCHEMA, check_metadata=False)
    rows = {r["input"]: r for r in table.to_pylist()}
    assert rows["description"]["kind"] == "description"
    assert "USD 10bn anchor" in rows["description"]["distribution"]
    inputs = [r for r in rows.values() if r["kind"] == "input"]
    assert [r["input"] for r in inputs] == list(scenario.inputs)
    assert rows["us_headline_ask_usd_bn"]["distribution"] == "fixed 10"
    assert rows["us_headline_ask_usd_bn"]["p05"] == rows["us_headline_ask_usd_bn"]["p95"] == 10
    pert = rows["trump_demand_intensity"]
    assert pert["distribution"] == "PERT(min=0.6, mode=0.85, max=1)"
    assert 0.6 < pert["p05"] < pert["p50"] < pert["p95"] < 1.0
    assert pert["unit"] == "index 0-1" and pert["description"]
    assert rows["escalation_rule"]["p50"] is None  # categories have no quantiles
    assert rows["model.mechanisms.troop_lever"]["distribution"] == "on"
    assert all(r["description"] for r in rows.values()), "every row says what it means"
    assert rows["rank_correlation"]["distribution"].startswith("trump_demand_intensity ~ ")
    # same numbers with the plan's marginals
    from pipeline.model.plan import plan_run

    plan = plan_run(scenario, as_of=D1, entropy=1, n_trials=10)
    assert inputs_table(scenario, plan.marginals, run_id="r1", created_at=T0).equals(table)


def test_inputs_table_publishes_and_reads_back(outputs: dict[str, object]) -> None:
    out: Path = outputs["out"]  # type: ignore[assignment]
    table = io.read_dataset(out, "inputs")
    assert set(table.column("scenario").to_pylist()) == set(SCENARIOS)
    sq = [
        r
        for r in table.to_pylist()
        if r["scenario"] == "status_quo_holds" and r["input"] == "model.mechanisms.reopening"
    ]
    assert {r["distribution"] for r in sq} == {"off"}
    for path in (out / "inputs").rglob("*.parquet"):
        assert pq.read_schema(path).remove_metadata().equals(INPUTS_SCHEMA.remove_metadata())


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (PertSpec(dist="pert", min=0.2, mode=0.55, max=1.0), "PERT(min=0.2, mode=0.55, max=1)"),
        (
            PertSpec(dist="pert", min=0, mode=1, max=2, shape=6),
            "PERT(min=0, mode=1, max=2, shape=6)",
        ),
        (LogNormalSpec(dist="lognormal", p05=15.0, p95=60.0), "lognormal(p05=15, p95=60)"),
        (
            NormalSpec(dist="normal", mean=1.0, sd=0.5, low=0.0),
            "normal(mean=1, sd=0.5) truncated to [0, inf]",
        ),
        (NormalSpec(dist="normal", p05=1330.0, p95=1560.0), "normal(p05=1,330, p95=1,560)"),
        (BernoulliSpec(dist="bernoulli", p=0.7), "yes with probability 0.7"),
        (FixedSpec(dist="fixed", value=10.0), "fixed 10"),
        (
            DiscreteSpec(dist="discrete", values=[3, 5], probs=[0.25, 0.75]),
            "one of {3: 0.25, 5: 0.75}",
        ),
        (
            CategoricalSpec(dist="categorical", categories=["a", "b"], probs=[0.5, 0.5]),
            "one of {a: 0.5, b: 0.5}",
        ),
    ],
)
def test_describe_spec(spec: object, text: str) -> None:
    assert spec.describe() == text  # type: ignore[attr-defined]


def test_page_opens_with_one_sentence_per_scenario(report: Path, parquet_only: Path) -> None:
    """The answer comes before everything else: when, first year, how much (KRW and USD), risks."""
    html = report.read_text(encoding="utf-8")
    top = html[html.index('id="answer"') : html.index('id="about"')]
    summary = io.latest_summary(parquet_only)
    summary = summary[summary.as_of_date == D2]
    for scenario in SCENARIOS:
        rows = summary[summary.scenario == scenario].set_index(["metric", "statistic"]).value
        item = top[top.index(f"<li><b>{scenario}</b>") :]
        item = item[: item.index("</li>")]
        years = {y: rows[(f"settled_in_{y}", "prob")] for y in range(2026, 2032)}
        best = max(years, key=lambda y: years[y])
        assert f"most likely in {best} ({years[best] * 100:.0f}%" in item
        assert f"first year: {round(rows[('first_year', 'p50')])} (median)" in item
        assert f"KRW {rows[('first_year_krw_bn', 'p50')]:,.0f} bn" in item
        assert f"about USD {rows[('first_year_usd_m', 'p50')] / 1000:.2f} bn" in item
        assert f"lapse {rows[('lapse', 'prob')] * 100:.0f}%" in item
        assert f"no agreement by 2031 {rows[('no_deal_by_horizon', 'prob')] * 100:.0f}%" in item


def test_exceedance_table_is_exact_from_the_histogram_counts(
    report: Path, parquet_only: Path
) -> None:
    """P(increase > t) at round thresholds equals the share of the histogram's counts above t."""
    html = report.read_text(encoding="utf-8")
    section = html[html.index('id="exceedance"') : html.index('id="when"')]
    assert "exceedance.png" in section
    hists = io.read_dataset(parquet_only, "histograms").to_pandas()
    hists = hists[(hists.metric == "increase_pct") & (hists.run_id == hists.run_id.max())]
    table = section[section.index("first-year increase is above") :]
    table = table[: table.index("</table>")]
    thresholds = [float(t) for t in re.findall(r"&gt; ([+-][\d.]+)%", table)]
    assert len(thresholds) >= 2 and all(t % 2.5 == 0 for t in thresholds)
    for scenario in SCENARIOS:
        h = hists[hists.scenario == scenario]
        row = table[table.index(f"<th scope=row>{scenario}</th>") :]
        shown = [float(x) for x in re.findall(r">(\d+\.\d)%<", row[: row.index("</tr>")])]
        counts = h["count"].to_numpy()
        expected = [
            100 * counts[h.bin_lower.fillna(-np.inf).to_numpy() >= t].sum() / counts.sum()
            for t in thresholds
        ]
        assert shown == pytest.approx(expected, abs=0.051)  # printed to 0.1%
        assert shown == sorted(shown, reverse=True)


def test_wide_tables_scroll_inside_their_column(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert html.count("<table") == html.count('<div class="scroll"><table')
    assert ".scroll { overflow-x: auto" in html


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-50, 200, allow_nan=False), min_size=5, max_size=400),
    width=st.sampled_from([2.5, 100.0]),
)
def test_cdf_points_are_exact_and_bins_conserve_the_share(
    values: list[float], width: float
) -> None:
    """CDF points from a histogram and quantiles are non-decreasing, within [0, 1], end at 1,
    and the density bins between them hold every deal once."""
    x = np.asarray(values)
    edges = np.arange(-50.0, 200.0 + width, width)
    counts = np.histogram(x, bins=edges)[0]
    inner = pd.DataFrame(
        {"bin_index": np.arange(1, len(counts) + 1), "bin_lower": edges[:-1],
         "bin_upper": edges[1:], "count": counts, "probability": counts / len(x)}
    )  # fmt: skip
    open_bins = pd.DataFrame(
        {"bin_index": [0, len(counts) + 1], "bin_lower": [np.nan, edges[-1]],
         "bin_upper": [edges[0], np.nan], "count": [0, 0], "probability": [0.0, 0.0]}
    )  # fmt: skip
    hist = pd.concat([open_bins.iloc[:1], inner, open_bins.iloc[1:]])
    levels = {k: float(np.quantile(x, q)) for k, q in QUANTILE_LEVELS.items()}
    xs, cdf = cdf_points(hist, {**levels, "min": float(x.min()), "max": float(x.max())})
    assert np.all(np.diff(xs) >= 0) and np.all(np.diff(cdf) >= 0)
    assert cdf[0] >= 0 and cdf[-1] == pytest.approx(1.0)
    tol = 2.0 / len(x) + 1e-9  # a quantile's level vs the sample share at its value
    for t, f in zip(xs, cdf, strict=True):
        assert np.mean(x < t) - tol <= f <= np.mean(x <= t) + tol
    if xs[-1] == xs[0]:
        return  # every deal at one value: no bin to draw
    bin_edges, shares = density_bins(xs, cdf, (xs[-1] - xs[0]) / 60.0)
    assert bin_edges[0] == xs[0] and bin_edges[-1] == xs[-1]
    assert shares.sum() == pytest.approx(cdf[-1] - cdf[0]) and np.all(shares >= 0)


def test_round_thresholds() -> None:
    assert round_thresholds(4.2, 19.0, 2.5) == [5.0, 10.0, 15.0]
    assert round_thresholds(1712.0, 1960.0, 100.0) == [1800.0, 1900.0]
    assert round_thresholds(3.0, 3.0, 2.5) == []
    assert round_thresholds(-20.0, 180.0, 2.5) == [0.0, 50.0, 100.0, 150.0]


def test_tornado_charts_share_one_x_scale(outputs: dict[str, object]) -> None:
    from pipeline.report.data import load_report_data
    from pipeline.report.drawing import _tornado_range

    data = load_report_data(outputs["out"])  # type: ignore[arg-type]
    lo, hi = _tornado_range(data)  # type: ignore[misc]
    bars = data.tornado[data.tornado.statistic.str.startswith("median_at")].value
    assert lo <= bars.min() and bars.max() <= hi
    assert input_label("us_headline_ask_usd_bn", "USD bn per year") == (
        "US headline ask [USD bn per year]"
    )
    assert input_label("package_deal", "yes/no") == "Package deal"
    assert factor_label(
        "group:korea_opening_offer_increase_pct+korea_reservation_increase_pct"
    ) == ("together: Korea's opening offer + Korea's reservation point")
    assert factor_label("event:troop_threat") == "chance event: troop threat"
    assert not data.sobol.empty and set(data.sobol.method) == {"sobol"}


def test_summary_shows_mean_and_sd_and_the_page_has_a_precision_chart(
    report: Path, parquet_only: Path
) -> None:
    html = report.read_text(encoding="utf-8")
    summary = io.latest_summary(parquet_only)
    rows = summary[(summary.as_of_date == D2) & (summary.scenario == SCENARIOS[0])]
    value = rows.set_index(["metric", "statistic"]).value
    mean, sd = value[("increase_pct", "mean")], value[("increase_pct", "sd")]
    assert f"mean {mean:.1f}%, sd {sd:.1f}%" in html
    precision = html[html.index('id="precision"') :]
    assert 'src="convergence.png"' in precision[: precision.index("</figure>")]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("month index (0 = Jan 2026)", "calendar year"),
        ("month index (0 = Apr 2026)", "fiscal year (Apr to Mar)"),
        ("month index (0 = Oct 2026)", "fiscal year (Oct to Sep)"),
    ],
)
def test_report_names_the_years_by_the_month_index_unit(unit: str, expected: str) -> None:
    """The report's years are the model's: fiscal years when month 0 is not a January."""
    empty = pd.DataFrame()
    summary = pd.DataFrame({"metric": ["increase_pct", "talks_start_month"], "unit": ["%", unit]})
    data = ReportData(Path("."), dt.date(2026, 6, 1), ["s"], empty, {}, summary, empty, empty,
                      empty, empty, empty)  # fmt: skip
    assert year_words(data) == expected
    assert year_words(dataclasses.replace(data, summary=summary.iloc[:1])) == "calendar year"


@pytest.mark.parametrize("long_labels", [False, True])
def test_figures_fit_their_text(long_labels: bool) -> None:
    """The measured layout (figures._fit_margins) keeps every panel's text and the figure
    legend inside the figure, and the legend below the panels' text."""
    from matplotlib.lines import Line2D

    from pipeline.report import figures as charts

    fig = charts._figure(8.0, 5.0)
    axes = fig.subplots(2, 2)
    width = 20 if long_labels else 3  # 20: about a third of a panel's width
    for k, ax in enumerate(axes.flat):
        ax.barh(range(4), [1, 2, 3, 4])
        ax.set_yticks(range(4), [f"{'input name ' * (width // 10)}{i}" for i in range(4)])
        ax.set_xlabel("share of variance [0-1]")
        ax.set_title(f"panel {k}", loc="left")
    legend = fig.legend(handles=[Line2D([], [], label="median")], loc="outside lower center")
    charts._fit_margins(fig)
    renderer = fig.canvas.get_renderer()
    tight = [ax.get_tightbbox(renderer) for ax in axes.flat]
    low = legend.get_window_extent(renderer)
    for box in tight:
        assert box.x0 >= 0 and box.y1 <= fig.bbox.height and box.x1 <= fig.bbox.width
        assert box.y0 >= low.y1  # the legend sits below every panel's text
    assert low.y0 >= 0
    for a, b in ((tight[0], tight[1]), (tight[2], tight[3])):  # side by side: no overlap
        assert a.x1 <= b.x0
    assert tight[2].y1 <= tight[0].y0  # rows: no overlap


def test_fan_chart_names_the_payer_by_the_outputs_currency(report: Path) -> None:
    from pipeline.report.drawing import payer_name

    assert "Fan chart of Korea&#x27;s yearly contribution" in report.read_text()
    # Another host's outputs (yen, euro...) do not say Korea.
    assert payer_name("KRW") == "Korea"
    assert payer_name("JPY") == payer_name("EUR") == "the host nation"
