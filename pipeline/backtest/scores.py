"""Scores of the backtest forecasts, their aggregates and the printed summary.

:func:`score_rows` scores every forecast into plain :class:`ScoreRow` records;
:func:`score_forecasts` turns them into the ``backtest`` dataset (a ``pyarrow.Table`` with
``BACKTEST_SCHEMA``, built by :mod:`pipeline.outputs.tables.backtest`), and :func:`run_backtest`
forecasts and scores in one call. :func:`aggregate_scores`, :func:`crps_ratios` and
:func:`backtest_table` summarize a scores table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from pipeline.analysis import scoring
from pipeline.backtest.forecasts import (
    DEFAULT_BACKTEST_TRIALS,
    BacktestForecasts,
    CaseForecast,
    backtest_forecasts,
)
from pipeline.backtest.realized import Realized
from pipeline.backtest.tuning import DEFAULT_TUNE_TRIALS
from pipeline.common import FloatArray
from pipeline.outputs.tables.backtest import build_backtest_table

if TYPE_CHECKING:
    import pyarrow as pa

#: Scored targets: name -> (unit, smallest KDE bandwidth of the log score [unit]; NaN for the
#: yes/no lapse, scored by the Brier and log score of its probability instead).
TARGETS: Final[dict[str, tuple[str, float]]] = {
    "increase_pct": ("%", 0.5),
    "months_to_settlement": ("months", 0.5),
    "lapse": ("probability", math.nan),
}
#: Central interval levels whose coverage is scored.
COVERAGE_LEVELS: Final[tuple[float, ...]] = (0.5, 0.8, 0.9)
#: Forecasters: the model and the naive baselines (which targets each one forecasts).
FORECASTERS: Final[dict[str, tuple[str, ...]]] = {
    "model": ("increase_pct", "months_to_settlement", "lapse"),
    "previous_repeated": ("increase_pct",),
    "historical": ("increase_pct", "months_to_settlement", "lapse"),
}


def _spec_text(spec: Any) -> str:
    data: dict[str, Any] = spec.model_dump(exclude_none=True)
    dist = str(data.pop("dist"))
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in data.items())
    return f"{dist}({args})"


def _priors_text(priors: Mapping[str, Any]) -> str:
    return "; ".join(f"{n}: {_spec_text(s)}" for n, s in priors.items())


def _realized_value(realized: Realized, target: str) -> float | None:
    if target == "lapse":
        return None if realized.lapse is None else float(realized.lapse)
    value = getattr(realized, target)
    return None if value is None else float(value)


def score_samples(samples: npt.ArrayLike, y: float, target: str) -> dict[str, float]:
    """Every score of one forecast of one target (NaN where the forecast has no sample).

    Numeric targets: ``crps``, ``log_score`` (KDE, bandwidth >= the target's floor in
    :data:`TARGETS`), ``pit`` (mid-rank) and ``covers_50/80/90`` (1.0 or 0.0). ``lapse``
    (0/1 samples): ``brier`` and ``log_score`` of the forecast probability.
    """
    x = np.asarray(samples, dtype=np.float64)
    if target == "lapse":
        prob = float(np.mean(x))
        return {
            "brier": scoring.brier_score(prob, bool(y)),
            "log_score": scoring.binary_log_score(prob, bool(y)),
            "prob": prob,
        }
    min_bw = TARGETS[target][1]
    out = {
        "crps": scoring.crps_from_samples(x, y),
        "log_score": scoring.log_score(x, y, min_bandwidth=min_bw),
        "pit": scoring.pit(x, y),
    }
    for level in COVERAGE_LEVELS:
        out[f"covers_{round(level * 100)}"] = float(scoring.covers(x, y, level))
    return out


@dataclass(frozen=True)
class ScoreRow:
    """One score of one forecast: a row of the ``backtest`` dataset without the run's columns
    (``run_id``, ``schema_version``, ``created_at``, added by the table builder)."""

    case: str
    sma_number: int
    case_as_of_date: date
    target: str
    unit: str
    forecaster: str
    score: str
    value: float
    realized: float
    forecast_p05: float
    forecast_p50: float
    forecast_p95: float
    n_samples: int
    defined_share: float
    history_used: str
    """SMA numbers whose outcomes the forecast used, comma separated."""
    priors: str
    """Model rows: the tuned inputs' specs used (empty for the baselines)."""


def _forecast_rows(
    fc: CaseForecast, forecaster: str, target: str, samples: FloatArray
) -> list[ScoreRow]:
    """Every score of one forecaster's forecast of one target (none without an outcome or a
    defined sample)."""
    y = _realized_value(fc.realized, target)
    if y is None:
        return []
    x = samples[~np.isnan(samples)]
    if x.size == 0:
        return []
    q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
    if target == "lapse":
        q05 = q50 = q95 = float(np.mean(x))
    is_model = forecaster == "model"
    used = fc.tuned_on if is_model else fc.history_used
    return [
        ScoreRow(
            case=fc.case.name,
            sma_number=fc.case.sma_number,
            case_as_of_date=fc.case.as_of,
            target=target,
            unit=TARGETS[target][0],
            forecaster=forecaster,
            score=score,
            value=float(value),
            realized=y,
            forecast_p05=float(q05),
            forecast_p50=float(q50),
            forecast_p95=float(q95),
            n_samples=int(x.size),
            defined_share=scoring.defined_share(samples),
            history_used=",".join(str(n) for n in used),
            priors=_priors_text(fc.model_priors) if is_model else "",
        )
        for score, value in score_samples(samples, y, target).items()
    ]


def score_rows(result: BacktestForecasts) -> list[ScoreRow]:
    """One row per (case, target, forecaster, score), in case, forecaster and target order."""
    return [
        row
        for fc in result.forecasts
        for forecaster, by_target in fc.samples.items()
        for target, samples in by_target.items()
        for row in _forecast_rows(fc, forecaster, target, samples)
    ]


def score_forecasts(result: BacktestForecasts, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """The ``backtest`` dataset: :func:`score_rows` as a table with ``BACKTEST_SCHEMA``."""
    rows = [dataclasses.asdict(row) for row in score_rows(result)]
    return build_backtest_table(rows, run_id=run_id, created_at=created_at)


def run_backtest(
    config_dir: str | Path,
    *,
    n_trials: int = DEFAULT_BACKTEST_TRIALS,
    seed: int | None = None,
    run_id: str | None = None,
    data_dir: str | Path | None = None,
    n_tune_trials: int = DEFAULT_TUNE_TRIALS,
    created_at: dt.datetime | None = None,
) -> pa.Table:
    """Forecast and score every backtest case: the plain-Python entry point of the backtest.

    Parameters
    ----------
    config_dir : folder holding ``base.yaml`` and ``backtest/`` (e.g. ``configs``).
    n_trials : model trials per case [trials].
    seed : root seed (default: base.yaml's ``simulation.seed``).
    run_id : id stored in every row (default: a new uuid4 hex).
    data_dir : SMA history folder (default: the repository's ``data/``).
    n_tune_trials : trials per candidate and case while tuning [trials].
    created_at : timestamp of the rows (UTC; default: now).

    Returns
    -------
    pyarrow.Table : one row per (case, target, forecaster, score), schema
        :data:`pipeline.outputs.schema.BACKTEST_SCHEMA`; see :func:`backtest_table` and
        :func:`aggregate_scores`.
    """
    result = backtest_forecasts(
        config_dir, n_trials=n_trials, seed=seed, data_dir=data_dir, n_tune_trials=n_tune_trials
    )
    return score_forecasts(
        result,
        run_id=run_id or uuid.uuid4().hex,
        created_at=created_at or dt.datetime.now(dt.UTC),
    )


def _frame(scores: pa.Table | pd.DataFrame) -> pd.DataFrame:
    return scores if isinstance(scores, pd.DataFrame) else scores.to_pandas()


def aggregate_scores(scores: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Mean of each score over the cases every forecaster of that target has a forecast for.

    Returns a frame indexed by (target, score) with one column per forecaster (the mean over
    the common cases; for ``covers_*`` the share of cases covered), plus ``n_cases`` and
    ``cases`` (which ones). Only forecasters that cover those cases are compared, so a ratio of
    two columns is a like-for-like comparison.
    """
    df = _frame(scores)
    out = []
    for (target, score), grp in df.groupby(["target", "score"], sort=False):
        per = grp.pivot_table(index="sma_number", columns="forecaster", values="value")
        common = per.dropna()
        row: dict[str, Any] = {"target": target, "score": score}
        row.update(common.mean().to_dict())
        row["n_cases"] = len(common)
        row["cases"] = ",".join(str(int(n)) for n in common.index)
        out.append(row)
    frame = pd.DataFrame(out).set_index(["target", "score"])
    ordered = [f for f in FORECASTERS if f in frame.columns]
    return frame[[*ordered, "n_cases", "cases"]]


def crps_ratios(scores: pa.Table | pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per target: mean CRPS of the model over that of the best baseline on common cases.

    Returns {target: {"model": ..., "best_baseline": name, "baseline": ..., "ratio": ...,
    "cases": "8,9,..."}}; a ratio below 1 means the model beats every baseline.
    """
    df = _frame(scores)
    df = df[df["score"] == "crps"]
    out: dict[str, dict[str, Any]] = {}
    for target, grp in df.groupby("target", sort=False):
        per = grp.pivot_table(index="sma_number", columns="forecaster", values="value").dropna()
        baselines = [c for c in per.columns if c != "model"]
        if "model" not in per.columns or not baselines or per.empty:
            continue
        means = per.mean()
        best = min(baselines, key=lambda b: float(means[b]))
        out[str(target)] = {
            "model": float(means["model"]),
            "best_baseline": best,
            "baseline": float(means[best]),
            "ratio": float(means["model"] / means[best]),
            "cases": ",".join(str(int(n)) for n in per.index),
        }
    return out


@dataclass(frozen=True)
class TargetCheck:
    """One calibration target of docs/calibration.md and whether the backtest meets it."""

    name: str
    value: float
    limit: str
    met: bool


def target_checks(scores: pa.Table | pd.DataFrame) -> list[TargetCheck]:
    """The calibration targets (issue 11; docs/calibration.md) measured on a backtest.

    Mean CRPS of the increase <= 2.2 pp over the 7th-12th; months <= 2.74 over the 9th-12th and
    over the 7th-12th; the model's 80% interval holds at least 4 of 6 outcomes for both; no PIT
    below 0.02 or above 0.98; lapse Brier no worse than the historical frequency's. A target
    whose cases are missing from ``scores`` is reported as not met (NaN).
    """
    df = _frame(scores)
    model = df[df["forecaster"] == "model"]

    def mean(target: str, score: str, smas: range, forecaster: str = "model") -> float:
        sel = df[
            (df["forecaster"] == forecaster)
            & (df["target"] == target)
            & (df["score"] == score)
            & df["sma_number"].isin(list(smas))
        ]
        ok = len(sel) == len(smas) and bool(sel["value"].notna().all())
        return float(sel["value"].mean()) if ok else float("nan")

    all_cases = range(7, 13)
    pits = model[(model["score"] == "pit") & model["target"].isin(["increase_pct",
                 "months_to_settlement"])]["value"]  # fmt: skip
    checks = [
        ("increase CRPS, 7th-12th [pp]", mean("increase_pct", "crps", all_cases), "<= 2.2", 2.2),
        ("months CRPS, 9th-12th", mean("months_to_settlement", "crps", range(9, 13)), "<= 2.74",
         2.74),
        ("months CRPS, 7th-12th", mean("months_to_settlement", "crps", all_cases), "<= 2.74",
         2.74),
    ]  # fmt: skip
    out = [TargetCheck(n, v, lim, bool(v <= bound)) for n, v, lim, bound in checks]
    for target, label in (("increase_pct", "increase"), ("months_to_settlement", "months")):
        held = mean(target, "covers_80", all_cases) * len(all_cases)
        out.append(TargetCheck(f"{label} 80% interval holds", held, ">= 4 of 6", bool(held >= 4)))
    low, high = float(pits.min()), float(pits.max())
    out.append(TargetCheck("lowest PIT", low, ">= 0.02", bool(low >= 0.02)))
    out.append(TargetCheck("highest PIT", high, "<= 0.98", bool(high <= 0.98)))
    brier = mean("lapse", "brier", all_cases)
    hist = mean("lapse", "brier", all_cases, "historical")
    out.append(
        TargetCheck("lapse Brier", brier, f"<= {hist:.3f} (historical)", bool(brier <= hist))
    )
    return out


def backtest_table(scores: pa.Table | pd.DataFrame) -> str:
    """A plain-text summary of a backtest (per case, then aggregated), for printing.

    Parameters
    ----------
    scores : the table returned by :func:`run_backtest` (or a pandas copy of it).

    Returns
    -------
    str : the text, ending in a newline; the caller prints it.
    """
    df = _frame(scores)
    lines: list[str] = []
    forecasters = [f for f in FORECASTERS if f in set(df["forecaster"])]
    for target in [t for t in TARGETS if t in set(df["target"])]:
        unit = TARGETS[target][0]
        sub = df[df["target"] == target]
        main = "brier" if target == "lapse" else "crps"
        lines.append(f"{target} [{unit}]  ({main}: lower is better)")
        header = f"  {'case':<7}{'real':>7}{'model p05-p50-p95':>22}"
        for f in forecasters:
            header += f"{f[:17]:>18}"
        if target != "lapse":
            header += f"{'model PIT':>11}{'50/80/90':>10}"
        lines.append(header)
        for case, grp in sub.groupby("case", sort=True):
            by = grp.set_index(["forecaster", "score"])["value"]
            model = grp[grp["forecaster"] == "model"]
            real = float(grp["realized"].iloc[0])
            if not model.empty:
                m = model.iloc[0]
                fan = f"{m.forecast_p05:6.1f} {m.forecast_p50:6.1f} {m.forecast_p95:6.1f}"
                if target == "lapse":
                    fan = f"P={m.forecast_p50:.2f}"
            else:
                fan = "-"
            line = f"  {case:<7}{real:>7.1f}{fan:>22}"
            for f in forecasters:
                v = by.get((f, main))
                line += f"{v:>18.3f}" if v is not None and not pd.isna(v) else f"{'-':>18}"
            if target != "lapse" and ("model", "pit") in by.index:
                cov = "".join(
                    "y" if by.get(("model", f"covers_{round(lv * 100)}")) == 1.0 else "n"
                    for lv in COVERAGE_LEVELS
                )
                line += f"{by[('model', 'pit')]:>11.2f}{cov:>10}"
            lines.append(line)
        agg = aggregate_scores(sub)
        if (target, main) in agg.index:
            row = agg.loc[(target, main)]
            line = f"  {'mean':<7}{'':>7}{'(cases ' + str(row['cases']) + ')':>22}"
            for f in forecasters:
                v = row.get(f)
                line += f"{v:>18.3f}" if v is not None and not pd.isna(v) else f"{'-':>18}"
            lines.append(line)
        if target != "lapse":
            model_rows = sub[sub["forecaster"] == "model"]
            cov = ", ".join(
                f"{round(lv * 100)}%: "
                f"{model_rows[model_rows['score'] == f'covers_{round(lv * 100)}']['value'].mean():.2f}"
                for lv in COVERAGE_LEVELS
            )
            lines.append(f"  model interval coverage over all cases: {cov}")
        lines.append("")
    ratios = crps_ratios(df)
    for target, r in ratios.items():
        lines.append(
            f"CRPS ratio model / best baseline ({r['best_baseline']}) for {target}: "
            f"{r['ratio']:.2f}  ({r['model']:.3f} / {r['baseline']:.3f}; cases {r['cases']})"
        )
    checks = target_checks(df)
    lines.append("")
    lines.append(f"calibration targets (docs/calibration.md): {sum(c.met for c in checks)} of "
                 f"{len(checks)} met")  # fmt: skip
    for c in checks:
        lines.append(f"  {'met   ' if c.met else 'MISSED'} {c.name:<32}{c.value:>8.3f}  {c.limit}")
    return "\n".join(lines) + "\n"
