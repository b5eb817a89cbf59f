"""A what-if run next to the official forecast of the same as-of date and scenario.

Read from the published Parquet files alone: both runs' ``summary`` rows (the differences and
their Monte Carlo noise are computed as for ``drift``, :func:`pipeline.outputs.drift.
compute_drift`) and both runs' ``inputs`` rows (an input whose distribution text differs is
an override of the what-if; ``runs.overrides`` records what was asked). The official run is
the latest other completed official run of that date and scenario, unless named.

A what-if run publishes under ``<outputs>/whatif/<run_id>/`` (pipeline/outputs/io.py), so the
official forecast and any number of what-ifs of the same date live in one output folder; the
what-if is found there by its ``runs`` row. Output folders of schema version 1, where a
what-if was run with ``--output`` elsewhere, are compared with ``official_dir``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from pipeline.common import PathLike
from pipeline.outputs import io
from pipeline.outputs.drift import compute_drift
from pipeline.outputs.headline import HEADLINE_PROBABILITIES

__all__ = ["COMPARED_PROBABILITIES", "Comparison", "CompareError", "compare_runs"]

#: Probabilities shown in a comparison, besides p10/p50/p90 of the key metrics: the headline's,
#: less the early-reopening one (its name carries a calendar year that depends on the host).
COMPARED_PROBABILITIES: tuple[str, ...] = tuple(
    name for name in HEADLINE_PROBABILITIES if not name.startswith("reopened_before_")
)


class CompareError(ValueError):
    """The runs to compare cannot be found (a user error: the message says what exists)."""


@dataclass(frozen=True)
class Comparison:
    """One scenario of a what-if run against the official run of the same date."""

    scenario: str
    as_of_date: dt.date
    whatif_run_id: str
    official_run_id: str
    rows: pd.DataFrame
    """``drift``-like rows: metric, statistic, value (what-if), previous_value (official),
    change, noise_se (combined Monte Carlo s.e.), z, flagged (beyond noise), unit."""
    overrides: list[tuple[str, str | None, str | None]]
    """(input or setting, official distribution text, what-if text) where they differ."""
    same_seed: bool
    """Both runs used the same seed: the difference is then less noisy than ``noise_se``."""


def _completed(out: Path) -> pd.DataFrame:
    runs = io.read_dataset(out, "runs").to_pandas()
    return runs[runs.status == "completed"]


def _summary_keys(out: Path, run_ids: list[str]) -> pd.DataFrame:
    where = ds.field("run_id").isin(pa.array(run_ids, pa.string()))
    keys = io.read_dataset(
        out, "summary", columns=["run_id", "scenario", "as_of_date", "created_at"], filter=where
    ).to_pandas()
    return keys.drop_duplicates(["run_id", "scenario", "as_of_date"])


def _root(out: Path, done: pd.DataFrame, run_id: str) -> Path:
    """Where a run's datasets are (``whatif/<run_id>/`` for a what-if)."""
    kind = done.loc[done.run_id == run_id, "run_kind"] if "run_kind" in done else None
    value = None if kind is None or kind.empty else kind.iloc[0]
    return io.run_root(out, value if isinstance(value, str) else None, run_id)


def _rows(out: Path, name: str, run_id: str, scenario: str) -> pa.Table:
    where = (ds.field("run_id") == run_id) & (ds.field("scenario") == scenario)
    return io.read_dataset(out, name, filter=where)


def _texts(table: pa.Table) -> dict[str, str]:
    frame = table.to_pandas()
    frame = frame[frame.kind != "description"] if "kind" in frame else frame
    return dict(zip(frame.input.astype(str), frame.distribution.astype(str), strict=True))


def compare_runs(
    whatif_dir: PathLike,
    *,
    official_dir: PathLike | None = None,
    run_id: str | None = None,
    against: str | None = None,
    scenarios: list[str] | None = None,
) -> list[Comparison]:
    """Compare a what-if run with the official run, per scenario.

    ``run_id``: the what-if run (default: the latest completed what-if run in ``whatif_dir``,
    else its latest completed run);
    ``official_dir``: where the official run is (default ``whatif_dir``); ``against``: the
    official run (default, per scenario: the latest other completed run of the same date and
    scenario there); ``scenarios``: default every scenario the what-if run published.
    Raises :class:`CompareError` naming what is available when a run is missing.
    """
    out = Path(whatif_dir)
    official_out = Path(official_dir) if official_dir is not None else out
    done = _completed(out)
    if done.empty:
        raise CompareError(f"no completed run in {out}: run `sma-forecast run --output {out}`")
    if run_id is None:
        whatifs = done[done.run_kind == "what-if"]
        pool = whatifs if not whatifs.empty else done
        run_id = str(pool.sort_values(["created_at", "run_id"]).run_id.iloc[-1])
    elif run_id not in set(done.run_id):
        latest = ", ".join(done.sort_values("created_at").run_id.astype(str).tail(5))
        raise CompareError(f"--run: no completed run {run_id!r} in {out}; latest: {latest}")
    mine_root = _root(out, done, run_id)
    mine = _summary_keys(mine_root, [run_id])
    if mine.empty:
        raise CompareError(
            f"run {run_id!r} has no published summary in {out} (replaced by a later run of "
            "the same date and scenario)"
        )
    published = sorted(set(mine.scenario.astype(str)))
    chosen = scenarios or published
    unknown = [s for s in chosen if s not in published]
    if unknown:
        raise CompareError(
            f"--scenario: run {run_id} has no summary for {', '.join(unknown)}; "
            f"it has: {', '.join(published)}"
        )
    official_done = _completed(official_out)
    seeds = dict(zip(official_done.run_id, official_done.seed_entropy.astype(str), strict=True))
    my_seed = str(done[done.run_id == run_id].seed_entropy.iloc[0])
    # Official runs only (null: schema version 1) in the official folder's own datasets.
    official_only = official_done[official_done.run_kind.fillna("official") == "official"]
    others = [r for r in official_only.run_id.astype(str) if r != run_id]
    keys = _summary_keys(official_out, others) if others else mine.iloc[0:0]
    results = []
    for scenario in chosen:
        day = mine[mine.scenario == scenario].as_of_date.iloc[0]
        if against is not None:
            official = against
            match = keys[(keys.run_id == against) & (keys.scenario == scenario)]
            if match.empty:
                raise CompareError(
                    f"--against: run {against!r} has no published summary of {scenario} in "
                    f"{official_out}"
                )
        else:
            match = keys[(keys.scenario == scenario) & (keys.as_of_date == day)]
            if match.empty:
                raise CompareError(
                    f"no other completed run of {scenario} as of {day} in {official_out} "
                    "(run the official forecast for that date, or name a run with --against)"
                )
            official = str(match.sort_values(["created_at", "run_id"]).run_id.iloc[-1])
        current = _rows(mine_root, "summary", run_id, scenario)
        previous = _rows(official_out, "summary", official, scenario)
        drift = compute_drift(
            current, previous, run_id=run_id, previous_run_id=official,
            created_at=dt.datetime.now(dt.UTC),
        ).to_pandas()  # fmt: skip
        mine_in = _texts(_rows(mine_root, "inputs", run_id, scenario))
        theirs_in = _texts(_rows(official_out, "inputs", official, scenario))
        names = list(dict.fromkeys([*theirs_in, *mine_in]))
        overrides = [
            (n, theirs_in.get(n), mine_in.get(n))
            for n in names
            if theirs_in.get(n) != mine_in.get(n)
        ]
        results.append(
            Comparison(
                scenario=scenario,
                as_of_date=day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)),
                whatif_run_id=run_id,
                official_run_id=official,
                rows=drift,
                overrides=overrides,
                same_seed=seeds.get(official) == my_seed,
            )
        )
    return results
