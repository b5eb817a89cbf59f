"""The base layer: type aliases, constants and number formats every layer shares (numpy only).

Nothing here imports another module of the package, so any layer may import it.
"""

from __future__ import annotations

import math
import os
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]
PathLike: TypeAlias = str | os.PathLike[str]

#: Smallest uniform draw kept away from 0 and 1 before an inverse CDF (2**-53: the spacing of
#: float64 just below 1), so every transform stays finite.
UNIT_EPS: Final[float] = 2.0**-53

#: Quantile statistics of numeric metrics, in output order (also the quantile fields that a
#: distribution spec may be given by: p05/p95 and so on).
QUANTILE_LEVELS: Final[dict[str, float]] = {
    "p01": 0.01,
    "p05": 0.05,
    "p10": 0.10,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p90": 0.90,
    "p95": 0.95,
    "p99": 0.99,
}


def plain_number(x: float) -> str:
    """A number as an analyst writes it (no trailing zeros, thousands separators)."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.6g}" if abs(x) >= 1000 else f"{x:.6g}"


def significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, without exponent notation."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    return f"{x:.{max(decimals, 0)}f}"


#: English month abbreviations (index 0 = January), fixed rather than from the locale: they
#: name model month 0 in published units (``month index (0 = Apr 2026)``).
MONTH_ABBREVIATIONS: Final[tuple[str, ...]] = (
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
)  # fmt: skip


def month_index_dates(
    months: npt.ArrayLike, base_year: int, fiscal_year_start_month: int = 1
) -> npt.NDArray[np.datetime64]:
    """Calendar dates of model month indexes (month 0 = the first month of fiscal year
    ``base_year``: month ``fiscal_year_start_month`` of calendar year ``base_year``).

    The whole part picks the month, the fraction the day within it (``floor(fraction x days
    in the month)``), so 18.5 with base 2025 is 16 July 2026, and 16 October 2026 for a fiscal
    year starting in April (the monthly model's resolution is a month; the day only orders
    values inside it). NaN gives NaT.
    """
    if not 1 <= fiscal_year_start_month <= 12:
        raise ValueError(f"fiscal_year_start_month must be 1 to 12, got {fiscal_year_start_month}")
    m = np.atleast_1d(np.asarray(months, dtype=np.float64))
    finite = np.isfinite(m)
    whole = np.floor(np.where(finite, m, 0.0))
    first = np.datetime64(f"{base_year:04d}-{fiscal_year_start_month:02d}", "M")
    month = first + whole.astype(np.int64)
    start = month.astype("datetime64[D]")
    days = ((month + 1).astype("datetime64[D]") - start).astype(np.int64)
    day = np.minimum(np.floor((np.where(finite, m, 0.0) - whole) * days), days - 1)
    out: npt.NDArray[np.datetime64] = start + day.astype(np.int64)
    out[~finite] = np.datetime64("NaT")
    return out
