"""The ``inputs`` dataset: the assumptions each scenario of a run ran with.

It lets the report (and dashboards) show each scenario's assumptions without the YAML files;
the forecast flow builds it with :func:`inputs_table` when a run is published.
"""

from __future__ import annotations

from pipeline.common import plain_number

import datetime as dt
from collections.abc import Mapping
from typing import Final

import numpy as np
import pyarrow as pa

from pipeline.outputs.records import require_utc
from pipeline.outputs.schema import INPUTS_SCHEMA, SCHEMA_VERSION
from pipeline.spec.catalog import INPUT_BY_NAME
from pipeline.spec.distributions import Marginal, marginal
from pipeline.spec.host import HostConfig
from pipeline.spec.scenario import Scenario

__all__ = ["inputs_table"]


#: What the non-random settings mean (pipeline/spec/scenario.py documents them in attribute docstrings,
#: which pydantic does not keep).
_SETTING_DOCS: Final[dict[str, str]] = {
    "calendar_base_year": "First calendar year of the contribution path (model month 0).",
    "horizon_year": "Last calendar year simulated.",
    "administration_change_date": "Inauguration of the next US administration.",
    "escalation_cap_pct": "Cap on CPI-linked escalation [%].",
    "cpi_lag_years": "CPI-linked escalation in year y uses CPI of year y - lag.",
    "furlough_after_lapse_months": "Months of lapse before furloughs can start.",
    "reopening": "The US may force talks before the regular successor negotiation.",
    "package_deal": "A package deal may meet part of the US demand outside the SMA.",
    "troop_lever": "The US may threaten troop-posture changes when talks stall.",
    "deadline": "After the negotiation length both sides table final offers.",
    "lapse_furlough": "A lapse can lead to a furlough of Korean USFK workers.",
}


def _host_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """Rows of the host section, for a host other than the default (Korea, whose rows the
    agreement-calendar rows already state)."""
    host, default = scenario.host, HostConfig()
    shown: tuple[str, ...] = ("name", "currency", "agreement_name", "levels_file", "macro_file")
    shown += ("fiscal_year_start_month", "agreement_expiry_date")
    if all(getattr(host, f) == getattr(default, f) for f in shown):
        return []
    docs = {
        "name": "Host nation.",
        "currency": "Currency of the agreement (ISO 4217); money metrics are named by it.",
        "agreement_name": "The agreement in force.",
        "levels_file": "Levels by fiscal year of the agreement in force (CSV).",
        "macro_file": "Published CPI and defense-budget growth by year (CSV).",
        "fiscal_year_start_month": "First month of the fiscal year (model years are fiscal).",
        "agreement_expiry_date": "Last day covered by the agreement in force.",
    }
    rows = []
    for f in shown:
        value = getattr(host, f)
        text = "none" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)
        rows.append((f"host.{f}", text, docs[f]))
    return rows


def _setting_rows(scenario: Scenario) -> list[tuple[str, str, str]]:
    """(path, value text, meaning) of the non-random model settings and the correlations."""
    rows: list[tuple[str, str, str]] = []
    model, host = scenario.model, scenario.host
    change = scenario.administration_change()
    docs = dict(_SETTING_DOCS)
    docs["administration_change"] = (
        f"US demand intensity changes with the administration in {change.took_office.year}."
        if change is not None
        else "US demand intensity changes with the next administration (none within the path)."
    )
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if name == "mechanisms":
            for mech, minfo in type(value).model_fields.items():
                flag = getattr(value, mech)
                rows.append(
                    (
                        f"model.mechanisms.{mech}",
                        "on" if flag else "off",
                        minfo.description or docs.get(mech, "Model mechanism switch."),
                    )
                )
            continue
        text = (
            "none"
            if value is None
            else value.isoformat()
            if isinstance(value, dt.date)
            else str(value)
        )
        rows.append((f"model.{name}", text, info.description or _SETTING_DOCS.get(name, "")))
        if name == "horizon_year":
            # The agreement calendar, from the host section and the administration calendar.
            expiry = host.expiry_fiscal_year
            rows.append(
                (
                    "model.agreement_expiry_year",
                    str(expiry),
                    f"Last year covered by the agreement in force ({host.agreement_name}: "
                    f"{expiry}).",
                )
            )
            rows.append(
                (
                    "model.administration_change_date",
                    change.took_office.isoformat() if change is not None else "none",
                    _SETTING_DOCS["administration_change_date"],
                )
            )
    rows += _host_rows(scenario)
    rc = scenario.rank_correlation
    if rc is not None:
        pairs = [
            f"{a} ~ {b}: {plain_number(rc.matrix[i][j])}"
            for i, a in enumerate(rc.inputs)
            for j, b in enumerate(rc.inputs)
            if j > i and rc.matrix[i][j] != 0
        ]
        rows.append(
            (
                "rank_correlation",
                "; ".join(pairs) or "none",
                "Spearman rank correlations between inputs (Gaussian copula).",
            )
        )
    else:
        rows.append(("rank_correlation", "none", "Inputs are drawn independently."))
    return rows


def inputs_table(
    scenario: Scenario,
    marginals: Mapping[str, Marginal] | None = None,
    *,
    run_id: str,
    created_at: dt.datetime,
) -> pa.Table:
    """The ``inputs`` dataset rows of one scenario of a run (:data:`INPUTS_SCHEMA`).

    One row with the scenario's description, one per model input (its distribution as stated,
    unit, meaning and the 5/50/95% quantiles of the marginal, clipped to the input's allowed
    range as the sampler clips draws; null for categorical inputs), then one per non-random model
    setting and one for the rank correlations. ``marginals`` are the run plan's
    (``plan.marginals``); they are resolved from the scenario when omitted.

    Partition values (as_of_date, scenario) are not columns: pass the table to
    ``io.publish_run`` under the scenario, as dataset ``"inputs"``.
    """
    require_utc(created_at, "created_at")
    records: list[dict[str, object]] = [
        {
            "input": "description",
            "kind": "description",
            "distribution": scenario.description.strip(),
            "unit": "",
            "description": "What the scenario assumes, in words.",
            "p05": None,
            "p50": None,
            "p95": None,
        }
    ]
    levels = np.array([0.05, 0.5, 0.95])
    for name, spec in scenario.inputs.items():
        info = INPUT_BY_NAME[name]
        dist = marginals[name] if marginals is not None else marginal(spec, info.categories)
        q: list[float | None] = [None, None, None]
        if info.kind != "category":
            values = np.clip(dist.ppf(levels), info.low, info.high)
            q = [float(v) for v in values]
        records.append(
            {
                "input": name,
                "kind": "input",
                "distribution": spec.describe(),
                "unit": info.unit.replace("KRW", scenario.host.currency),
                "description": info.description,
                "p05": q[0],
                "p50": q[1],
                "p95": q[2],
            }
        )
    for path, text, meaning in _setting_rows(scenario):
        records.append(
            {
                "input": path,
                "kind": "setting",
                "distribution": text,
                "unit": "",
                "description": meaning,
                "p05": None,
                "p50": None,
                "p95": None,
            }
        )
    for r in records:
        r.update(run_id=run_id, schema_version=SCHEMA_VERSION, created_at=created_at)
    return pa.Table.from_pylist(records, schema=INPUTS_SCHEMA)
