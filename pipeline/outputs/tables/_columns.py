"""Columns shared by the table builders: run id, schema version and UTC creation time, float
columns with NaN written as null, and the tidy columns of per-year and month-index metrics."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.common import MONTH_ABBREVIATIONS, month_index_dates
from pipeline.outputs.records import require_utc
from pipeline.outputs.schema import SCHEMA_VERSION, TIMESTAMP


def utc_timestamp(created_at: dt.datetime) -> pa.Scalar:
    """``created_at`` as a UTC microsecond timestamp scalar; raises if it is not UTC."""
    require_utc(created_at, "created_at")
    return pa.scalar(created_at, type=TIMESTAMP)


def common_columns(run_id: str, created_at: dt.datetime, n: int) -> dict[str, pa.Array]:
    """The ``schema_version``, ``created_at`` and ``run_id`` columns of ``n`` rows."""
    return {
        "schema_version": pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int32()), n),
        "created_at": pa.repeat(utc_timestamp(created_at), n),
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
    }


def float_column(x: npt.ArrayLike) -> pa.Array:
    """float64 array with NaN as null (BI tools handle null, not NaN)."""
    return pa.array(np.asarray(x, dtype=np.float64), type=pa.float64(), from_pandas=True)


#: A per-year metric: ``<name>_<year>`` (``contribution_krw_bn_2028``, ``settled_by_2029``).
YEAR_METRIC_RE: Final[re.Pattern[str]] = re.compile(r"(.+)_((?:19|20)\d\d)")
#: Unit of month-index metrics, naming the calendar month and year of model month 0 (the first
#: month of fiscal year ``calendar_base_year``): ``month index (0 = Jan 2025)`` for Korea,
#: ``month index (0 = Apr 2026)`` for a fiscal year starting in April.
MONTH_INDEX_UNIT_RE: Final[re.Pattern[str]] = re.compile(
    rf"month index \(0 = ({'|'.join(MONTH_ABBREVIATIONS)}) (\d{{4}})\)"
)


def metric_year_columns(metrics: Sequence[str]) -> tuple[pa.Array, pa.Array]:
    """``base_metric`` (the name without its year) and ``year`` (int32, null if the metric is
    not per year) of the given metric names."""
    matches = [YEAR_METRIC_RE.fullmatch(m) for m in metrics]
    base = [m.group(1) if m else name for m, name in zip(matches, metrics, strict=True)]
    years = [int(m.group(2)) if m else None for m in matches]
    return pa.array(base, pa.string()), pa.array(years, pa.int32())


def value_dates(
    values: npt.ArrayLike, units: Sequence[str], statistics: Sequence[str]
) -> pa.Array:
    """``value_date``: the date of values in ``month index (0 = <Mon> <b>)`` units (month 0 is
    the first day of that month), null for other units, missing values and ``sd`` (a spread,
    not a point in time)."""
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    located = np.array([s != "sd" for s in statistics], dtype=bool)
    for unit in set(units):
        if match := MONTH_INDEX_UNIT_RE.fullmatch(unit):
            rows = np.array([u == unit for u in units], dtype=bool) & located
            first = MONTH_ABBREVIATIONS.index(match.group(1)) + 1
            out[rows] = month_index_dates(x[rows], int(match.group(2)), first)
    return pa.array(out, pa.date32(), from_pandas=True)
