"""Drift: what changed since the previous published run of the same scenario.

A run compares each scenario's new ``summary`` rows with those of the latest earlier completed
run of that scenario (:func:`previous_summary`) and writes one ``drift`` row per compared value
(:func:`compute_drift`; schema ``pipeline.outputs.schema.DRIFT_SCHEMA``, documented in docs/outputs.md):

* the p10, p50 and p90 of the key outputs :data:`KEY_METRICS`;
* every yes/no outcome (statistic ``prob``).

A change is **beyond noise** when it is larger than the Monte Carlo noise of the two runs can
explain, and **flagged** when, in addition, nothing else explains it (see What moved it)::

    noise_se       = sqrt(se^2 + previous_se^2)
    flag_threshold = Z_THRESHOLD * noise_se + tolerance
    beyond_noise   = |change| > flag_threshold
    flagged        = beyond_noise and cause in ('none', unknown)

``se`` is the row's ``mc_standard_error`` from ``summary`` for quantiles and ``sqrt(p (1 - p) /
n)`` for probabilities; ``tolerance`` is the sum of the two rows' ``quantile_error_bound`` (a
quantile is only known to within one fine histogram bin) and 0 for probabilities. Where a
standard error is undefined (a point mass, fewer than 2 trials) ``noise_se`` and ``z`` are null
and any change beyond ``tolerance`` is beyond noise: a point mass that moved did not move by chance.

What moved it
-------------
A move beyond noise is only an alarm when nothing explains it. Each run records its provenance
in ``runs`` (per-scenario ``config_hashes``, ``evidence_hash`` of the facts known as of the
date, ``package_version`` and ``git_commit``); :func:`drift_cause` compares the two runs':

* ``calendar``: a later (or earlier) as-of date with the same evidence: time passed. A new as-of
  month moves the start of the simulation (month ``start_month``), so many values move at a
  month boundary with no new information; within a month only the months talks have been open
  (evidence conditioning) change;
* ``evidence``: the facts known as of the date differ (a new or corrected fact);
* ``config``: the scenario's configuration differs (inputs, mechanisms, settings);
* ``code``: another package version or git commit.

``cause`` joins those that apply (``calendar+evidence``), or says ``none``; ``beyond_noise`` is
the test below and ``flagged = beyond_noise and cause in ('none', unknown)``: only moves that
nothing explains raise the alarm. A previous run of schema version 1 or 2 recorded no evidence
or scenario hashes: those causes are then not claimed (only what can be compared is).

Why ``Z_THRESHOLD = 4``
-----------------------
A nightly run compares about 34 values per scenario (12 quantiles and 22 probabilities), some
170 for five scenarios. If only seed noise separated two runs, ``|z| > 3`` would still fire on
0.27% of them, one false alarm every two nights; ``|z| > 4`` fires on 0.006%, about one every 80
nightly runs, and still tolerates quantile standard errors that are underestimated by 20% (their
density estimate is rough). The SE formula treats the two runs as independent; nightly runs use
the configured seed (common random numbers), so their difference is far less noisy than
``noise_se`` says and the test is conservative: a change beyond noise is one the inputs, the
evidence, the as-of date or the code made, not the dice (and ``cause`` says which differ). With the same seed and the same inputs the summary
is bit-identical, every ``change`` is 0.0 and nothing is flagged.
"""

from __future__ import annotations

from pipeline.common import PathLike

import datetime as dt
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipeline.outputs import io
from pipeline.outputs.records import check_scenario_name, require_utc
from pipeline.outputs.schema import DRIFT_SCHEMA, SCHEMA_VERSION

__all__ = [
    "KEY_METRICS",
    "key_metrics",
    "KEY_STATISTICS",
    "Z_THRESHOLD",
    "Cause",
    "PreviousRun",
    "Provenance",
    "compute_drift",
    "drift_artifact_rows",
    "drift_cause",
    "drift_for",
    "previous_summary",
    "run_provenance",
]

#: Numeric outputs whose p10/p50/p90 are compared.
KEY_METRICS: Final[tuple[str, ...]] = (
    "increase_pct",
    "first_year_krw_bn",
    "months_to_settlement_if_settled",
    "contribution_krw_bn_2028",
)
_MONEY_FIRST = re.compile(r"^first_year_[a-z]{3}_bn$")
_MONEY_PATH = re.compile(r"^contribution_[a-z]{3}_bn_(\d{4})$")


def key_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The key outputs among a summary's metric names, in :data:`KEY_METRICS` order: the
    increase, the first year's level and the contribution in the third path year (the last,
    for a shorter path) in the host currency, and the length of talks."""
    names = list(dict.fromkeys(metrics))
    first = [m for m in names if _MONEY_FIRST.match(m)]
    path = sorted((m for m in names if _MONEY_PATH.match(m)), key=lambda m: m[-4:])
    year = path[min(2, len(path) - 1)] if path else None
    wanted = ["increase_pct", *first[:1], "months_to_settlement_if_settled", *([year] if year else [])]
    return tuple(m for m in wanted if m in names)


#: Quantiles of the key metrics that are compared.
KEY_STATISTICS: Final[tuple[str, ...]] = ("p10", "p50", "p90")
#: A change is flagged when it exceeds this many combined Monte Carlo standard errors.
Z_THRESHOLD: Final[float] = 4.0



class Provenance(NamedTuple):
    """What a run of one scenario was made from, as far as it can move the results."""

    as_of_date: dt.date
    config_hash: str | None
    """``Scenario.config_hash()`` of the scenario; None if not recorded."""
    evidence_hash: str | None
    """``EvidenceState.facts_hash()``; None if not recorded."""
    package_version: str | None
    git_commit: str | None


class Cause(NamedTuple):
    """Why two runs of a scenario may differ beyond noise (:func:`drift_cause`)."""

    cause: str
    """'+'-joined ``calendar``, ``evidence``, ``config``, ``code``; or ``none``."""
    detail: str

    @property
    def explained(self) -> bool:
        return self.cause != "none"


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def drift_cause(current: Provenance, previous: Provenance) -> Cause:
    """What differs between two runs of one scenario that can move its values.

    Only what both runs recorded is compared (a hash missing on either side is not claimed
    as a cause)."""
    causes: list[str] = []
    details: list[str] = []
    now, before = current.as_of_date, previous.as_of_date
    if now != before:
        causes.append("calendar")
        text = f"calendar: as of {now} instead of {before}"
        if _month(now) != _month(before):
            text += (f", a new as-of month (the simulation starts in {_month(now)} instead of "
                     f"{_month(before)})")  # fmt: skip
        else:
            text += " in the same month (only the time talks have been open can differ)"
        details.append(text)

    def differs(a: str | None, b: str | None) -> bool:
        return a is not None and b is not None and a != b

    if differs(current.evidence_hash, previous.evidence_hash):
        causes.append("evidence")
        details.append("evidence: the facts known as of the date changed")
    if differs(current.config_hash, previous.config_hash):
        causes.append("config")
        details.append("config: the scenario's configuration changed")
    code = [
        f"{name} {b} -> {a}"
        for name, a, b in (
            ("package", current.package_version, previous.package_version),
            ("commit", (current.git_commit or "")[:12] or None,
             (previous.git_commit or "")[:12] or None),
        )
        if differs(a, b)
    ]  # fmt: skip
    if code:
        causes.append("code")
        details.append("code: " + ", ".join(code))
    if not causes:
        unknown = [
            name
            for name, a, b in (
                ("evidence", current.evidence_hash, previous.evidence_hash),
                ("configuration", current.config_hash, previous.config_hash),
            )
            if a is None or b is None
        ]
        text = "same as-of date, evidence, configuration and code: only Monte Carlo noise"
        if unknown:
            text = (f"same as-of date and code ({' and '.join(unknown)} not recorded by both "
                    "runs)")  # fmt: skip
        return Cause("none", text)
    return Cause("+".join(causes), "; ".join(details))


def run_provenance(output_dir: PathLike, run_id: str, scenario: str) -> Provenance | None:
    """The provenance of ``scenario`` in a published run (None if the run has no runs row)."""
    runs = io.read_dataset(output_dir, "runs", filter=ds.field("run_id") == run_id)
    if runs.num_rows == 0:
        return None
    row = runs.slice(0, 1).to_pylist()[0]
    hashes = row.get("config_hashes")
    config = json.loads(hashes).get(scenario) if hashes else None
    return Provenance(row["as_of_date"], config, row.get("evidence_hash"),
                      row.get("package_version"), row.get("git_commit"))  # fmt: skip


class PreviousRun(NamedTuple):
    """The run a new run is compared with (all None when there is none)."""

    summary: pa.Table | None
    """Its ``summary`` rows of the scenario (with the partition columns)."""
    run_id: str | None
    as_of_date: dt.date | None


class _Row(NamedTuple):
    value: float | None
    se: float | None
    bound: float
    n: int
    unit: str


def _rows(table: pa.Table, keys: tuple[str, ...]) -> dict[tuple[str, str], _Row]:
    """(metric, statistic) -> values of the compared rows of a summary table."""
    wanted = set(KEY_STATISTICS)
    cols = [
        table.column(c).to_pylist()
        for c in (
            "metric",
            "statistic",
            "value",
            "mc_standard_error",
            "quantile_error_bound",
            "n_trials",
            "unit",
        )
    ]
    out: dict[tuple[str, str], _Row] = {}
    for metric, stat, value, se, bound, n, unit in zip(*cols, strict=True):
        if stat == "prob" or (metric in keys and stat in wanted):
            if stat == "prob" and value is not None and n:
                # As docs/outputs.md: the binomial standard error of the proportion.
                se = math.sqrt(max(value * (1.0 - value), 0.0) / n)
            out[(metric, stat)] = _Row(value, se, bound or 0.0, int(n), unit)
    return out


def _order(
    keys: Iterable[tuple[str, str]], metrics: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Key metrics first (in KEY_METRICS order, p10 p50 p90), then probabilities as given."""
    keys = list(keys)
    quant = [(m, s) for m in metrics for s in KEY_STATISTICS if (m, s) in keys]
    return quant + [k for k in keys if k[1] == "prob"]


def compute_drift(
    current: pa.Table,
    previous: pa.Table | None,
    *,
    run_id: str,
    previous_run_id: str | None,
    previous_as_of_date: dt.date | None = None,
    created_at: dt.datetime,
    cause: Cause | None = None,
) -> pa.Table:
    """The ``drift`` rows of one scenario (:data:`~pipeline.outputs.schema.DRIFT_SCHEMA`).

    Parameters
    ----------
    current
        This run's ``summary`` rows of the scenario (``SUMMARY_SCHEMA``; extra columns such as
        the partition columns are ignored).
    previous
        The previous run's ``summary`` rows of the scenario, or None if there is none: then
        every row has null previous values and nothing is flagged.
    run_id, previous_run_id, previous_as_of_date
        Ids written into the rows.
    created_at
        Timezone-aware UTC time of the rows.

    ``cause`` (:func:`drift_cause`) says what differs between the runs; without it (or with
    cause ``none``) every move beyond noise is flagged, with it only unexplained ones are.

    Rows: p10/p50/p90 of the key metrics (:func:`key_metrics`: :data:`KEY_METRICS` for Korea's
    default path), then every ``prob`` row of ``current``. A row
    missing from ``previous`` (a new outcome) or with a null value has a null change and is not
    flagged.
    """
    require_utc(created_at, "created_at")
    metrics = key_metrics(current.column("metric").to_pylist())
    now = _rows(current, metrics)
    before = _rows(previous, metrics) if previous is not None else {}
    if previous is None:
        previous_run_id, previous_as_of_date, cause = None, None, None
    records: list[dict[str, object]] = []
    for key in _order(now, metrics):
        cur = now[key]
        old = before.get(key)
        change = noise = z = threshold = None
        beyond = False
        if old is not None and cur.value is not None and old.value is not None:
            change = cur.value - old.value
            tolerance = cur.bound + old.bound
            if cur.se is not None and old.se is not None:
                noise = math.hypot(cur.se, old.se)
                z = change / noise if noise > 0 else None
                threshold = Z_THRESHOLD * noise + tolerance
            else:
                threshold = tolerance
            beyond = abs(change) > threshold
        records.append(
            {
                "run_id": run_id,
                "previous_run_id": previous_run_id,
                "previous_as_of_date": previous_as_of_date,
                "metric": key[0],
                "statistic": key[1],
                "value": cur.value,
                "previous_value": old.value if old is not None else None,
                "change": change,
                "noise_se": noise,
                "z": z,
                "flag_threshold": threshold,
                "flagged": beyond and not (cause is not None and cause.explained),
                "n_trials": cur.n,
                "previous_n_trials": old.n if old is not None else None,
                "unit": cur.unit,
                "beyond_noise": beyond,
                "cause": cause.cause if cause is not None else None,
                "cause_detail": cause.detail if cause is not None else None,
                "schema_version": SCHEMA_VERSION,
                "created_at": created_at,
            }
        )
    if not records:
        return DRIFT_SCHEMA.empty_table()
    table = pa.Table.from_pylist(records, schema=DRIFT_SCHEMA)
    # from_pylist keeps float NaN as NaN; the contract wants null for undefined values.
    for name in ("value", "previous_value", "change", "noise_se", "z", "flag_threshold"):
        col = table.column(name)
        fixed = pc.if_else(pc.is_nan(col), pa.scalar(None, pa.float64()), col)
        table = table.set_column(
            table.schema.get_field_index(name), DRIFT_SCHEMA.field(name), fixed
        )
    return table.cast(DRIFT_SCHEMA)


def previous_summary(
    output_dir: PathLike,
    scenario: str,
    *,
    as_of: dt.date | None = None,
    exclude_run_id: str | None = None,
) -> PreviousRun:
    """The latest completed published run of ``scenario`` to compare a new run with.

    Candidates are completed runs (``runs.status == 'completed'``) whose ``summary`` partition of
    the scenario is on disk, other than ``exclude_run_id`` (the new run) and, if ``as_of`` is
    given, with ``as_of_date <= as_of``. The latest by (as_of_date, created_at, run_id) wins, so
    a re-run of the same as-of date is compared with the run it is about to replace, and a
    backfill of an old date with the run just before that date. Call this **before**
    publishing the new run (publication replaces a same-date partition).
    """
    check_scenario_name(scenario)
    runs = io.read_dataset(output_dir, "runs", columns=["run_id", "status"])
    completed = pc.filter(runs.column("run_id"), pc.equal(runs.column("status"), "completed"))
    where = ds.field("run_id").isin(pa.array(completed.to_pylist(), pa.string())) & (
        ds.field("scenario") == scenario
    )
    if exclude_run_id is not None:
        where &= ds.field("run_id") != exclude_run_id
    if as_of is not None:
        where &= ds.field("as_of_date") <= pa.scalar(as_of, pa.date32())
    keys = io.read_dataset(
        output_dir, "summary", columns=["run_id", "as_of_date", "created_at"], filter=where
    )
    if keys.num_rows == 0:
        return PreviousRun(None, None, None)
    candidates = sorted(
        set(
            zip(
                keys.column("as_of_date").to_pylist(),
                keys.column("created_at").to_pylist(),
                keys.column("run_id").to_pylist(),
                strict=True,
            )
        )
    )
    as_of_date, _, run_id = candidates[-1]
    summary = io.read_dataset(
        output_dir,
        "summary",
        filter=(ds.field("run_id") == run_id) & (ds.field("scenario") == scenario),
    )
    return PreviousRun(summary, run_id, as_of_date)


def drift_for(
    output_dir: PathLike,
    scenario: str,
    current: pa.Table,
    *,
    run_id: str,
    as_of: dt.date,
    created_at: dt.datetime,
    provenance: Provenance | None = None,
) -> pa.Table:
    """:func:`previous_summary` then :func:`compute_drift`: the ``drift`` table of one scenario
    of a run that is about to be published (call before ``io.publish_run``).

    With this run's ``provenance`` the previous run's is read from ``runs`` and the rows say
    what explains a move (:func:`drift_cause`); only unexplained moves are flagged."""
    previous = previous_summary(output_dir, scenario, as_of=as_of, exclude_run_id=run_id)
    cause = None
    if provenance is not None and previous.run_id is not None:
        before = run_provenance(output_dir, previous.run_id, scenario)
        if before is not None:
            cause = drift_cause(provenance, before)
    return compute_drift(
        current,
        previous.summary,
        run_id=run_id,
        previous_run_id=previous.run_id,
        previous_as_of_date=previous.as_of_date,
        created_at=created_at,
        cause=cause,
    )


def _artifact_number(value: float | None, unit: str) -> str:
    """A value as plain text for the Prefect artifact table (probabilities as 0.xxxx)."""
    if value is None:
        return ""
    if unit == "probability":
        return f"{value:.4f}"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"


_ARTIFACT_COLUMNS: Final[tuple[str, ...]] = (
    "scenario",
    "quantity",
    "previous",
    "now",
    "change",
    "noise_se",
    "z",
    "flagged",
    "cause",
    "unit",
    "previous_run",
)


def drift_artifact_rows(
    drift: Mapping[str, pa.Table], *, all_rows: bool = False
) -> list[dict[str, object]]:
    """Rows for a Prefect table artifact: per scenario, the flagged changes and the key
    medians (every compared value with ``all_rows``); a single row per scenario saying so when
    there was no previous run. Every row has the same keys (:data:`_ARTIFACT_COLUMNS`).

    ``drift`` maps scenario name -> its ``drift`` table (as from :func:`compute_drift`).
    """
    out: list[dict[str, object]] = []
    for scenario, table in drift.items():
        rows = table.to_pylist()
        previous = next((r["previous_run_id"] for r in rows if r["previous_run_id"]), None)
        if previous is None:
            empty = dict.fromkeys(_ARTIFACT_COLUMNS, "")
            out.append(
                {**empty, "scenario": scenario, "quantity": "(no earlier completed run to compare)"}
            )
            continue
        for r in rows:
            key = r["statistic"] != "prob" and r["statistic"] == "p50"
            if not (all_rows or r["flagged"] or key):
                continue
            unit = str(r["unit"])
            out.append(
                {
                    "scenario": scenario,
                    "quantity": f"{r['metric']} {r['statistic']}",
                    "previous": _artifact_number(r["previous_value"], unit),
                    "now": _artifact_number(r["value"], unit),
                    "change": _artifact_number(r["change"], unit),
                    "noise_se": _artifact_number(r["noise_se"], unit),
                    "z": "" if r["z"] is None else f"{r['z']:.1f}",
                    "flagged": "YES" if r["flagged"] else "",
                    "cause": r.get("cause") or "",
                    "unit": unit,
                    "previous_run": f"{r['previous_run_id']} ({r['previous_as_of_date']})",
                }
            )
    return out
