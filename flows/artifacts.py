"""Prefect artifacts of a forecast run: summary, headline table, drift table, report link."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pyarrow as pa
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipeline.outputs.drift import drift_artifact_rows
from pipeline.outputs.headline import early_talks_key, horizon_label, money_key, settlement_timing
from pipeline.report.build import report_artifact_markdown


def _num(x: float, fmt: str) -> str:
    return "–" if x != x else format(x, fmt)


def summary_markdown(as_of: date, run_id: str, heads: dict[str, dict[str, float]]) -> str:
    """The run's headline numbers as markdown tables: the headline, then when agreement comes.

    Months to deal count only the trials that settle within the horizon, next to the chance
    of no deal; no censored value is shown as a median.
    """
    first = next(iter(heads.values()), {})
    currency, early_label = money_key(first)[1], early_talks_key(first)[1]
    by = horizon_label(first) if heads else "by the horizon"
    lines = [
        f"### SMA forecast as of {as_of.isoformat()} (run `{run_id}`)",
        "",
        f"| scenario | increase p10 | p50 | p90 | first year {currency} bn p50 "
        f"| P(no deal {by}) | months to deal if settled: p50 (p10-p90) "
        f"| {early_label} | P(lapse) | P(package) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, h in heads.items():
        lines.append(
            f"| {name} | {_num(h['increase_pct_p10'], '.1f')}% "
            f"| {_num(h['increase_pct_p50'], '.1f')}% | {_num(h['increase_pct_p90'], '.1f')}% "
            f"| {_num(h.get(money_key(h)[0], math.nan), ',.0f')} "
            f"| {h['p_no_deal_by_horizon']:.2f} "
            f"| {_num(h['months_to_settlement_if_settled_p50'], '.1f')} "
            f"({_num(h['months_to_settlement_if_settled_p10'], '.1f')}-"
            f"{_num(h['months_to_settlement_if_settled_p90'], '.1f')}) "
            f"| {h.get(early_talks_key(h)[0], math.nan):.2f} "
            f"| {h['p_lapse']:.2f} | {h['p_package_deal']:.2f} |"
        )
    timing = {name: dict(settlement_timing(h)) for name, h in heads.items()}
    labels = list(dict.fromkeys(label for t in timing.values() for label in t))
    lines += [
        "",
        "When agreement comes (share of trials settling in each year):",
        "",
        "| scenario | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for name, t in timing.items():
        cells = " | ".join(_num(t.get(label, float("nan")), ".2f") for label in labels)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def publish_artifacts(
    *,
    as_of: date,
    run_id: str,
    heads: dict[str, dict[str, float]],
    drift: dict[str, pa.Table],
    drift_flags: int,
    report: Path | None,
) -> None:
    """Create the run's artifacts in the Prefect API (visible in the UI)."""
    create_table_artifact(
        key="sma-forecast-drift", table=drift_artifact_rows(drift),
        description="Changes since the previous published run (flagged: beyond MC noise)",
    )  # fmt: skip
    if report is not None:
        create_markdown_artifact(
            key="sma-forecast-report",
            markdown=report_artifact_markdown(report, as_of=as_of, drift_flags=drift_flags),
            description=f"HTML report for {as_of}",
        )
    create_markdown_artifact(
        key="sma-forecast-summary",
        markdown=summary_markdown(as_of, run_id, heads),
        description=f"SMA forecast as of {as_of}",
    )
    create_table_artifact(
        key="sma-forecast-headline",
        table=[{"scenario": n, **{k: round(v, 4) for k, v in h.items()}} for n, h in heads.items()],
        description="Headline numbers per scenario",
    )
