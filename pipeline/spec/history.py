"""Loaders for the sourced SMA history in data/ (the only place those figures live)."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@dataclass(frozen=True)
class History:
    """Sourced history used by the model, calibration and tests."""

    contribution_krw_bn: Mapping[int, float]
    """Korea's SMA contribution per year: actual, agreed or derived values [KRW bn]."""
    cpi_pct: Mapping[int, float]
    """Korean CPI inflation per year [%]."""
    defense_budget_growth_pct: Mapping[int, float]
    """Growth of Korea's main defense budget per year [%]."""
    negotiations: tuple[Mapping[str, str], ...]
    """Rows of sma_negotiations.csv, as text."""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _number(text: str) -> float | None:
    text = text.strip().lstrip("~").replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


@cache
def load_history(data_dir: Path = DATA_DIR) -> History:
    """Read the CSV files in ``data_dir`` (cached per directory)."""
    contributions: dict[int, float] = {}
    for row in _rows(data_dir / "sma_contributions.csv"):
        value = _number(row["contribution_krw_bn"])
        # 'projection' rows are MOFA's estimate, not an agreed amount: the model derives them.
        if value is not None and row["value_status"] in {"actual", "agreed", "derived"}:
            contributions[int(row["year"])] = value
    cpi: dict[int, float] = {}
    defense: dict[int, float] = {}
    for row in _rows(data_dir / "korea_macro.csv"):
        year = int(row["year"])
        if (c := _number(row["cpi_pct"])) is not None:
            cpi[year] = c
        if (g := _number(row["defense_budget_growth_pct"])) is not None:
            defense[year] = g
    negotiations = tuple(MappingProxyType(r) for r in _rows(data_dir / "sma_negotiations.csv"))
    return History(
        contribution_krw_bn=MappingProxyType(contributions),
        cpi_pct=MappingProxyType(cpi),
        defense_budget_growth_pct=MappingProxyType(defense),
        negotiations=negotiations,
    )
