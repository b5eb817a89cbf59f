"""The headline numbers of a run: a few statistics of each scenario's summary table.

Read by the flows (logs, artifacts), the CLI and the report; the statistics themselves are in
the published ``summary`` dataset. Timing is stated as it is: months to agreement among the
trials that settle (``months_to_settlement_if_settled``), next to the chance of no deal by the
horizon and the share of trials settling in each calendar year. The censored
``months_to_settlement`` (unsettled trials counted to the horizon) is never a headline number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyarrow as pa

#: Metrics and statistics shown in the one-screen summary of a run (Korea's names: the money
#: metric is named in the host currency, the early-talks year is the next administration's).
HEADLINE_QUANTILES: tuple[tuple[str, str], ...] = (
    ("increase_pct", "p10"),
    ("increase_pct", "p50"),
    ("increase_pct", "p90"),
    ("first_year_krw_bn", "p50"),
    ("first_year_usd_m", "p50"),
    ("months_to_settlement_if_settled", "p10"),
    ("months_to_settlement_if_settled", "p50"),
    ("months_to_settlement_if_settled", "p90"),
)
HEADLINE_PROBABILITIES: tuple[str, ...] = (
    "reopened_before_2029",
    "settled_by_horizon",
    "no_deal_by_horizon",
    "lapse",
    "furlough",
    "troop_threat",
    "package_deal",
)
#: Metrics whose quantiles mix timings with a censoring value (unsettled trials carry the months
#: to the end of the horizon): published for compatibility, never shown as a timing.
CENSORED_METRICS: tuple[str, ...] = ("months_to_settlement",)
#: Prefix of the settlement-time distribution: ``settled_in_<year>`` probabilities.
SETTLED_IN: str = "settled_in_"


def money_key(head: dict[str, float]) -> tuple[str, str]:
    """(key, currency code) of a headline's first-year level in the host currency."""
    for key in head:
        if found := re.fullmatch(r"first_year_([a-z]{3})_bn_p50", key):
            return key, found.group(1).upper()
    return "first_year_krw_bn_p50", "KRW"


def early_talks_key(head: dict[str, float]) -> tuple[str, str]:
    """(key, label) of a headline's probability of early talks: before the year the next US
    administration takes office, or at all when none does within the path."""
    for key in head:
        if found := re.fullmatch(r"p_reopened_before_(\d{4})", key):
            return key, f"P(reopen<{found.group(1)})"
    return "p_reopened", "P(reopen)"


def headline(summary: pa.Table, *, early_talks_year: int | None = 2029) -> dict[str, float]:
    """The headline numbers of one scenario's summary table (for logs, artifacts, the CLI).

    Keys: ``<metric>_<statistic>`` of :data:`HEADLINE_QUANTILES`, ``p_<event>`` of
    :data:`HEADLINE_PROBABILITIES` (the money metric named in the host currency, early talks
    counted before January 1 of ``early_talks_year``, the year the next administration takes
    office; None: any early talks), ``p_settled_in_<year>`` for every year of the
    settlement-time distribution, ``n_trials_effective`` (trials kept) and ``n_trials_settled``
    (trials behind the timing quantiles). NaN where the summary has no value.
    """
    metric = summary.column("metric").to_pylist()
    statistic = summary.column("statistic").to_pylist()
    value = summary.column("value").to_pylist()
    n_trials = summary.column("n_trials").to_pylist()
    rows = {(m, s): v for m, s, v in zip(metric, statistic, value, strict=True)}
    n_rows = {(m, s): n for m, s, n in zip(metric, statistic, n_trials, strict=True)}
    money = next((m for m in sorted(set(metric)) if re.fullmatch(r"first_year_[a-z]{3}_bn", m)), None)
    early = f"reopened_before_{early_talks_year}" if early_talks_year is not None else "reopened"
    names = {"first_year_krw_bn": money or "first_year_krw_bn", "reopened_before_2029": early}
    out = {f"{names.get(m, m)}_{s}": rows.get((names.get(m, m), s)) for m, s in HEADLINE_QUANTILES}
    out.update(
        {f"p_{names.get(e, e)}": rows.get((names.get(e, e), "prob")) for e in HEADLINE_PROBABILITIES}
    )
    years = sorted(
        int(m.removeprefix(SETTLED_IN))
        for m, s in rows
        if s == "prob" and m.startswith(SETTLED_IN) and m.removeprefix(SETTLED_IN).isdigit()
    )
    out.update({f"p_{SETTLED_IN}{y}": rows.get((f"{SETTLED_IN}{y}", "prob")) for y in years})
    # Every yes/no outcome over all trials is defined on every kept trial.
    out["n_trials_effective"] = n_rows.get(("settled_by_horizon", "prob"))
    out["n_trials_settled"] = n_rows.get(("months_to_settlement_if_settled", "p50"))
    return {k: (float("nan") if v is None else float(v)) for k, v in out.items()}


def settlement_years(head: Mapping[str, float]) -> list[int]:
    """Calendar years of a headline's settlement-time distribution, ascending."""
    prefix = f"p_{SETTLED_IN}"
    return sorted(
        int(k.removeprefix(prefix))
        for k in head
        if k.startswith(prefix) and k.removeprefix(prefix).isdigit()
    )


def settlement_timing(head: Mapping[str, float]) -> list[tuple[str, float]]:
    """The settlement-time distribution of a headline as (label, share of trials) pairs.

    One pair per calendar year (label ``"2027"``: agreement during that year), then
    ``("none by <last year>", P(no deal by the horizon))``; the shares sum to 1.
    """
    pairs = [(str(y), head[f"p_{SETTLED_IN}{y}"]) for y in settlement_years(head)]
    pairs.append((f"none {horizon_label(head)}", head.get("p_no_deal_by_horizon", float("nan"))))
    return pairs


def horizon_label(head: Mapping[str, float]) -> str:
    """``"by <last year of the distribution>"`` (or ``"by the horizon"`` if it has none)."""
    years = settlement_years(head)
    return f"by {years[-1]}" if years else "by the horizon"
