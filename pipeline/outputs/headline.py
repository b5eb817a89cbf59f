"""The headline numbers of a run: a few statistics of each scenario's summary table.

Read by the flows (logs, artifacts), the CLI and the report; the statistics themselves are in
the published ``summary`` dataset.
"""

from __future__ import annotations

import pyarrow as pa

#: Metrics and statistics shown in the one-screen summary of a run.
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


def headline(summary: pa.Table) -> dict[str, float]:
    """The headline numbers of one scenario's summary table (for logs, artifacts, the CLI)."""
    rows = {
        (m, s): v
        for m, s, v in zip(
            summary.column("metric").to_pylist(),
            summary.column("statistic").to_pylist(),
            summary.column("value").to_pylist(),
            strict=True,
        )
    }
    out = {f"{m}_{s}": rows.get((m, s)) for m, s in HEADLINE_QUANTILES}
    out.update({f"p_{e}": rows.get((e, "prob")) for e in HEADLINE_PROBABILITIES})
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
