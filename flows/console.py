"""What the CLI prints: the headline tables (wide or stacked to fit the terminal) and the
named phases of a run with their elapsed time. Rich renderables only; no Prefect, no files."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipeline.outputs.headline import (
    early_talks_key,
    horizon_label,
    money_key,
    settlement_timing,
)

__all__ = ["WIDE_COLUMNS", "PhaseDisplay", "headline_tables", "number"]

#: Terminal width from which the headline is one wide table; narrower, it is stacked.
WIDE_COLUMNS = 120


def number(x: float, fmt: str) -> str:
    """``x`` formatted, or ``-`` where it is undefined (NaN: e.g. no trial settles)."""
    return "-" if x != x else format(x, fmt)


def _range(h: Mapping[str, float], metric: str, fmt: str, unit: str = "") -> str:
    return (
        f"{number(h[f'{metric}_p50'], fmt)}{unit} "
        f"({number(h[f'{metric}_p10'], fmt)}-{number(h[f'{metric}_p90'], fmt)})"
    )


def headline_tables(
    heads: Mapping[str, Mapping[str, float]], title: str, width: int
) -> list[Table]:
    """The headline of every scenario: one wide table from :data:`WIDE_COLUMNS` columns on,
    else stacked tables of at most six columns that fit 80 columns; then the timing table."""
    first = next(iter(heads.values()), {})
    by = horizon_label(first) if heads else "by the horizon"
    _, currency = money_key(dict(first))
    _, early_label = early_talks_key(dict(first))
    wide = width >= WIDE_COLUMNS
    style: dict[str, Any] = {} if wide else {"box": box.SIMPLE_HEAD, "padding": (0, 1)}

    def table(title: str | None, columns: list[str], rows: list[list[str]]) -> Table:
        t = Table(title=title, **style)
        for j, col in enumerate(columns):
            # Numbers never wrap (the column is at least as wide as its longest cell); headers
            # wrap at spaces.
            fit = max((len(row[j]) for row in rows), default=1)
            if col == "scenario":
                t.add_column(col, no_wrap=True, min_width=fit)
            else:
                t.add_column(col, justify="right", min_width=fit)
        for row in rows:
            t.add_row(*row)
        return t

    def p(h: Mapping[str, float], key: str) -> str:
        return number(h.get(key, float("nan")), ".2f")

    def money(h: Mapping[str, float]) -> str:
        return number(h.get(money_key(dict(h))[0], float("nan")), ",.0f")

    def early(h: Mapping[str, float]) -> str:
        return p(h, early_talks_key(dict(h))[0])

    if wide:
        columns = ["scenario", "increase p10", "p50", "p90", f"1st year {currency} bn", "USD m",
                   f"P(no deal {by})", early_label, "P(lapse)", "P(furlough)", "P(package)"]  # fmt: skip
        rows = [
            [name, *(f"{number(h[f'increase_pct_{q}'], '.1f')}%" for q in ("p10", "p50", "p90")),
             money(h), number(h["first_year_usd_m_p50"], ",.0f"), p(h, "p_no_deal_by_horizon"),
             early(h), p(h, "p_lapse"), p(h, "p_furlough"), p(h, "p_package_deal")]
            for name, h in heads.items()
        ]  # fmt: skip
        tables = [table(title, columns, rows)]
    else:
        amounts = [
            [name, _range(h, "increase_pct", ".1f"), money(h),
             number(h["first_year_usd_m_p50"], ",.0f"),
             _range(h, "months_to_settlement_if_settled", ".0f")]
            for name, h in heads.items()
        ]  # fmt: skip
        risks = [
            [name, p(h, "p_no_deal_by_horizon"), early(h), p(h, "p_lapse"), p(h, "p_furlough"),
             p(h, "p_package_deal")]
            for name, h in heads.items()
        ]  # fmt: skip
        tables = [
            table(title, ["scenario", "1st-year increase % p50 (p10-p90)",
                          f"1st year {currency} bn", "USD m", "months to deal if settled"],
                  amounts),
            table("Probabilities", ["scenario", f"no deal {by}",
                                    early_label.removeprefix("P(").removesuffix(")"),
                                    "lapse", "furlough", "package deal"], risks),
        ]  # fmt: skip
    timing = {name: settlement_timing(h) for name, h in heads.items()}
    labels = list(dict.fromkeys(label for pairs in timing.values() for label, _ in pairs))
    months = "months to deal if settled: p50 (p10-p90)"
    rows = []
    for name, pairs in timing.items():
        share = dict(pairs)
        cells = [number(share.get(label, float("nan")), ".2f") for label in labels]
        lead = [_range(heads[name], "months_to_settlement_if_settled", ".1f")] if wide else []
        rows.append([name, *lead, *cells])
    years = table(
        "When agreement comes: months of talks among the trials that settle, "
        "and the share of trials settling in each year",
        ["scenario", months, *labels] if wide else ["scenario", *labels],
        rows,
    )
    return [*tables, years]


class PhaseDisplay:
    """The CLI's live line: the current phase, its elapsed time and, while simulating, the
    tasks done; each finished phase is printed with its seconds, the total at the end."""

    def __init__(self, console: Console, first: str = "starting Prefect") -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        self.started = self.phase_started = time.perf_counter()
        self.name = first
        self.seconds: dict[str, float] = {}
        self.count = ""
        self.job: TaskID = self.bar.add_task(first, total=None, count="")

    def __enter__(self) -> PhaseDisplay:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._close()
        self.bar.stop()

    def _close(self) -> None:
        if self.name:
            now = time.perf_counter()
            self.seconds[self.name] = self.seconds.get(self.name, 0.0) + now - self.phase_started
            done = f"  ({self.count})" if self.count else ""
            self.bar.console.print(f"  {self.name:<18}{now - self.phase_started:7.1f} s{done}",
                                   highlight=False)  # fmt: skip
            self.phase_started, self.name, self.count = now, "", ""

    def finished(self, name: str, seconds: float) -> None:
        """A phase that ran before the display started, printed (and counted) as finished."""
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.bar.console.print(f"  {name:<18}{seconds:7.1f} s", highlight=False)

    def phase(self, name: str) -> None:
        """Phase ``name`` starts: the previous one is printed with its seconds."""
        self._close()
        self.name = name
        self.bar.reset(self.job, description=name, total=None, count="")

    def progress(self, done: int, total: int) -> None:
        """Simulation tasks: ``done`` of ``total`` finished."""
        self.count = f"{done}/{total} task(s)"
        self.bar.update(self.job, completed=done, total=total, count=self.count)

    @property
    def total_seconds(self) -> float:
        """Wall time since the display was created [s]."""
        return time.perf_counter() - self.started
