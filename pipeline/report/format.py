"""Labels, number formats and a small HTML table helper for the report page."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any, Final

import pandas as pd

__all__ = [
    "INPUT_LABELS",
    "METRIC_LABELS",
    "RawHtml",
    "escape",
    "event_label",
    "factor_label",
    "format_timestamp",
    "format_value",
    "html_table",
    "input_label",
    "quantity_label",
]


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
    if head == "settled_in" and tail.isdigit():
        return f"agreement during {tail}"
    if head == "reopened_before" and tail.isdigit():
        return f"early talks opened before {tail}"
    if metric.startswith("escalation_rule_"):
        return f"new agreement escalates by {metric.removeprefix('escalation_rule_')} (if agreed)"
    return metric.replace("_", " ")


METRIC_LABELS: Final[dict[str, str]] = {
    "increase_pct": "first-year increase [%]",
    "first_year_krw_bn": "first-year contribution [KRW bn]",
    "months_to_settlement_if_settled": "months of talks to agreement (agreeing trials only)",
    "months_to_settlement": "months of talks, no-deal trials counted to the horizon (censored)",
}


def metric_label(metric: str) -> str:
    """A numeric metric in words; money in the host currency is labelled by its code."""
    if metric in METRIC_LABELS:
        return METRIC_LABELS[metric]
    if found := re.fullmatch(r"first_year_([a-z]{3})_bn", metric):
        return f"first-year contribution [{found.group(1).upper()} bn]"
    if found := re.fullmatch(r"contribution_([a-z]{3})_bn_(\d{4})", metric):
        return f"contribution in {found.group(2)} [{found.group(1).upper()} bn]"
    return metric


def quantity_label(metric: str, statistic: str) -> str:
    """A ``summary`` (metric, statistic) in words, e.g. ``P(lapse: ...)`` or ``... [%] p50``."""
    if statistic == "prob":
        return f"P({event_label(metric)})"
    return f"{metric_label(metric)} {statistic}"


def format_value(value: float | None, unit: str, *, signed: bool = False, digits: int = 2) -> str:
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


def format_timestamp(x: Any) -> str:
    """A timestamp as ``YYYY-MM-DD HH:MM:SS UTC``; ``–`` when missing."""
    if x is None or x is pd.NaT:
        return "–"
    stamp = pd.Timestamp(x).tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def escape(x: object) -> str:
    """``str(x)`` escaped for HTML text and attribute values."""
    return html.escape(str(x), quote=True)


class RawHtml(str):
    """Already-escaped HTML for a table cell."""


def html_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    cls: str = "",
    first_is_head: bool = True,
) -> str:
    """A ``<table>``: cells are escaped unless they are :class:`RawHtml`."""
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if isinstance(cell, RawHtml) else escape(cell)
            tag = "th scope=row" if i == 0 and first_is_head else "td"
            cells.append(f"<{tag}>{text}</{tag.split()[0]}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    klass = f' class="{cls}"' if cls else ""
    table = f"<table{klass}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    # Tables scroll inside their column instead of overflowing the page.
    return f'<div class="scroll">{table}</div>'


#: Short names of the inputs for charts (the catalog's descriptions are sentences).
INPUT_LABELS: Final[dict[str, str]] = {
    "trump_demand_intensity": "Trump demand intensity",
    "post_2029_demand_intensity": "post-2029 demand intensity",
    "us_headline_ask_usd_bn": "US headline ask",
    "headline_anchor_pull": "pull of the headline anchor",
    "us_working_ask_increase_pct": "US working ask",
    "us_reservation_share_of_ask": "US reservation point, share of ask",
    "korea_opening_offer_increase_pct": "Korea's opening offer",
    "korea_reservation_increase_pct": "Korea's reservation point",
    "us_concession_rate_per_month": "US concession speed",
    "korea_concession_rate_per_month": "Korea's concession speed",
    "negotiation_length_months": "length of talks",
    "stalemate_concession_pp_per_month": "stalemate concession",
    "reopen_hazard_per_month": "hazard of early reopening",
    "successor_talks_lead_months": "lead of successor talks",
    "package_deal": "package deal",
    "package_offset_share": "package offset share",
    "troop_threat_prob": "chance of a troop threat",
    "troop_threat_korea_uplift_pct": "uplift after a troop threat",
    "furlough_prob_given_lapse": "chance of furlough in a lapse",
    "krw_per_usd": "exchange rate",
    "korea_cpi_pct": "Korean CPI inflation",
    "korea_defense_budget_growth_pct": "Korean defense budget growth",
    "term_years_under_pressure": "term under pressure",
    "term_years_normal": "term, normal talks",
    "escalation_rule": "escalation rule",
    "fixed_escalation_pct": "fixed escalation",
}


def input_label(name: str, unit: str = "") -> str:
    """An input's short name with its unit, e.g. ``US headline ask [USD bn per year]``."""
    text = INPUT_LABELS.get(name) or name.replace("_", " ")
    text = text[:1].upper() + text[1:]
    return text if unit in ("", "yes/no", "category") else f"{text} [{unit}]"


def factor_label(name: str) -> str:
    """A Sobol' factor in words: an input, a correlated group (``group:a+b``) or one of the
    model's chance events (``event:x``)."""
    if name.startswith("group:"):
        members = [INPUT_LABELS.get(m, m.replace("_", " ")) for m in name[6:].split("+")]
        return "together: " + " + ".join(members)
    if name.startswith("event:"):
        return "chance event: " + name[6:].replace("_", " ")
    return input_label(name)
