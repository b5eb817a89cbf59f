"""The headline numbers of a run: a few statistics of each scenario's summary table.

Read by the flows (logs, artifacts), the CLI and the report; the statistics themselves are in
the published ``summary`` dataset.
"""

from __future__ import annotations

import re

import pyarrow as pa

#: Metrics and statistics shown in the one-screen summary of a run (Korea's names: the money
#: metric is named in the host currency, the early-talks year is the next administration's).
HEADLINE_QUANTILES: tuple[tuple[str, str], ...] = (
    ("increase_pct", "p10"),
    ("increase_pct", "p50"),
    ("increase_pct", "p90"),
    ("first_year_krw_bn", "p50"),
    ("first_year_usd_m", "p50"),
    ("months_to_settlement", "p50"),
)
HEADLINE_PROBABILITIES: tuple[str, ...] = (
    "reopened_before_2029",
    "settled_by_horizon",
    "lapse",
    "furlough",
    "troop_threat",
    "package_deal",
)


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

    ``early_talks_year``: early talks are counted before January 1 of this year (the year the
    next administration takes office, ``Scenario.administration_change``); None: any early
    talks (``reopened``)."""
    rows = {
        (m, s): v
        for m, s, v in zip(
            summary.column("metric").to_pylist(),
            summary.column("statistic").to_pylist(),
            summary.column("value").to_pylist(),
            strict=True,
        )
    }
    metrics = {m for m, _ in rows}
    money = next((m for m in sorted(metrics) if re.fullmatch(r"first_year_[a-z]{3}_bn", m)), None)
    early = f"reopened_before_{early_talks_year}" if early_talks_year is not None else "reopened"
    names = {"first_year_krw_bn": money or "first_year_krw_bn", "reopened_before_2029": early}
    out = {f"{names.get(m, m)}_{s}": rows.get((names.get(m, m), s)) for m, s in HEADLINE_QUANTILES}
    out.update(
        {f"p_{names.get(e, e)}": rows.get((names.get(e, e), "prob")) for e in HEADLINE_PROBABILITIES}
    )
    n_rows = {
        m: n
        for m, st, n in zip(
            summary.column("metric").to_pylist(),
            summary.column("statistic").to_pylist(),
            summary.column("n_trials").to_pylist(),
            strict=True,
        )
        if st == "prob"
    }
    # Every yes/no outcome over all trials is defined on every kept trial.
    out["n_trials_effective"] = n_rows.get("settled_by_horizon")
    return {k: (float("nan") if v is None else float(v)) for k, v in out.items()}
