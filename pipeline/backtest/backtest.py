"""Backtest: forecast each past SMA negotiation as of its start and score it against history.

For every case in ``configs/backtest/cases.yaml`` (the 7th to the 12th SMA) the model runs the
case's scenario file (a normal scenario: ``../base.yaml`` plus what was known at the start of
those talks) with talks fixed to open on their known first round. The realized outcomes come
from ``data/`` (parsed here from ``sma_negotiations.csv``), never from the case files.

Priors tuned from history use *forward chaining*: the forecast for a case uses the candidate
priors that scored best on the earlier cases whose agreement was public by the case's as-of
date, so neither its own outcome nor any later one can reach it (a test changes one case's
outcome and checks its forecast stays identical). Naive baselines get the same treatment: they
use only SMAs agreed before the as-of date.

Entry points: :func:`run_backtest` (one row per case, target, forecaster and score, as a
``pyarrow.Table`` with :data:`BACKTEST_SCHEMA`), :func:`backtest_table` (a printable summary),
:func:`aggregate_scores`, and :func:`calibrate_defaults` (the priors tuned on every case, which is
how ``configs/base.yaml`` was calibrated; docs/calibration.md).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import itertools
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from scipy import special

from pipeline.analysis import scoring
from pipeline.common import FloatArray
from pipeline.model.outcomes import Outcomes
from pipeline.model.plan import Plan, run_block
from pipeline.model.sampling import CopulaPlan, copula_plan
from pipeline.model.seeding import root_entropy
from pipeline.model.settings import model_settings
from pipeline.outputs.schema import BACKTEST_SCHEMA, SCHEMA_VERSION
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES
from pipeline.spec.distributions import InputSpec, Marginal, marginal
from pipeline.spec.history import DATA_DIR, History, load_history
from pipeline.spec.scenario import Scenario, ScenarioError, load_scenario, read_yaml

CASES_FILE: Final[str] = "cases.yaml"
"""Case list and tuning grid, in ``<config_dir>/backtest/``."""

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
#: Samples drawn from a baseline's normal distribution (a deterministic quantile grid).
BASELINE_GRID_SIZE: Final[int] = 2000
#: Default trials per run of a candidate while tuning (cheap; common random numbers).
DEFAULT_TUNE_TRIALS: Final[int] = 4000


# --------------------------------------------------------------------------- case files


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, allow_inf_nan=False)


class CaseFact(_Strict):
    """A dated piece of context known when the forecast was made (documentation only)."""

    date: date
    text: str
    source: str = ""


class CaseSpec(_Strict):
    """One backtest case as written in cases.yaml."""

    name: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    sma_number: int = Field(ge=1, le=100)
    scenario: str
    as_of: date
    talks_start: date
    facts: list[CaseFact] = []

    @model_validator(mode="after")
    def _dates(self) -> CaseSpec:
        if self.as_of > self.talks_start:
            raise ValueError(
                "as_of must not be after talks_start (forecasts are made at the start of talks)"
            )
        late = [f.date.isoformat() for f in self.facts if f.date > self.as_of]
        if late:
            raise ValueError(f"facts dated after as_of {self.as_of}: {', '.join(late)}")
        return self


class TuningSpec(_Strict):
    """Candidate priors for the tuned inputs (the grid is the product of the knobs)."""

    untuned: dict[str, Any]
    knobs: dict[str, list[Any]]

    @model_validator(mode="after")
    def _inputs(self) -> TuningSpec:
        unknown = sorted((set(self.untuned) | set(self.knobs)) - set(INPUT_NAMES))
        if unknown:
            raise ValueError(f"unknown input(s) {unknown}")
        if set(self.untuned) != set(self.knobs):
            raise ValueError("untuned and knobs must name the same inputs")
        if any(not values for values in self.knobs.values()):
            raise ValueError("every knob needs at least one candidate")
        return self


class CasesFile(_Strict):
    """configs/backtest/cases.yaml."""

    cases: list[CaseSpec] = Field(min_length=1)
    tuning: TuningSpec


@dataclass(frozen=True, eq=False)
class Case:
    """A loaded backtest case: its metadata and validated scenario."""

    name: str
    sma_number: int
    as_of: date
    talks_start: date
    scenario: Scenario
    scenario_path: Path
    own_inputs: frozenset[str]
    """Inputs the case file itself sets (the rest come from base.yaml)."""


@dataclass(frozen=True, eq=False)
class TuningGrid:
    """The tuned inputs: candidate specs per input, and the specs used with no history."""

    untuned: dict[str, InputSpec]
    knobs: dict[str, tuple[InputSpec, ...]]

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.knobs)

    def candidates(self) -> list[dict[str, InputSpec]]:
        """Every combination of the knobs' candidates, in a fixed order (first knob slowest)."""
        names = self.inputs
        return [
            dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(self.knobs[n] for n in names))
        ]


_SPEC_ADAPTER: TypeAdapter[Any] = TypeAdapter(InputSpec)


def _validate_spec(name: str, raw: Any, where: str) -> InputSpec:
    try:
        spec = _SPEC_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ScenarioError(where, name, err["msg"].removeprefix("Value error, ")) from None
    info = INPUT_BY_NAME[name]
    lo, hi = _marginal(name, spec).support
    if not (info.low <= lo and hi <= info.high):
        raise ScenarioError(
            where, name, f"values [{lo:g}, {hi:g}] outside allowed [{info.low:g}, {info.high:g}]"
        )
    return spec  # type: ignore[no-any-return]


def load_cases(config_dir: str | Path) -> tuple[list[Case], TuningGrid]:
    """Read ``<config_dir>/backtest/cases.yaml``, its scenario files and the tuning grid.

    Raises :class:`ScenarioError` naming the file and field when something is invalid, including
    a case file that sets a tuned input (tuning would silently not apply to it).
    """
    folder = Path(config_dir) / "backtest"
    path = folder / CASES_FILE
    shown = str(path)
    raw = read_yaml(path, shown)
    try:
        parsed = CasesFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_ = ".".join(str(p) for p in err["loc"])
        raise ScenarioError(shown, field_, err["msg"].removeprefix("Value error, ")) from None
    grid = TuningGrid(
        untuned={
            n: _validate_spec(n, s, f"{shown}: tuning.untuned")
            for n, s in parsed.tuning.untuned.items()
        },
        knobs={
            n: tuple(_validate_spec(n, s, f"{shown}: tuning.knobs") for s in specs)
            for n, specs in parsed.tuning.knobs.items()
        },
    )
    cases: list[Case] = []
    seen: set[str] = set()
    for spec in parsed.cases:
        if spec.name in seen:
            raise ScenarioError(shown, "cases", f"duplicate case name {spec.name!r}")
        seen.add(spec.name)
        scenario_path = folder / spec.scenario
        own = read_yaml(scenario_path, str(scenario_path)).get("inputs") or {}
        clash = sorted(set(own) & set(grid.inputs))
        if clash:
            raise ScenarioError(
                str(scenario_path),
                "inputs",
                f"sets tuned input(s) {clash}; tuned priors come from cases.yaml (tuning)",
            )
        scenario = load_scenario(scenario_path)
        if scenario.name != spec.name:
            raise ScenarioError(
                str(scenario_path), "name", f"must equal the case name {spec.name!r}"
            )
        cases.append(
            Case(
                spec.name,
                spec.sma_number,
                spec.as_of,
                spec.talks_start,
                scenario,
                scenario_path,
                frozenset(own),
            )
        )
    cases.sort(key=lambda c: c.talks_start)
    return cases, grid


# --------------------------------------------------------------------------- realized outcomes

_DATE_RE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
_NUMBER_RE = re.compile(r"^\s*~?\s*(-?\d+(?:\.\d+)?)")


def parse_date(text: str, *, latest: bool) -> date | None:
    """First ``YYYY[-MM[-DD]]`` in ``text``; a missing month or day is filled with the latest
    (or earliest) day it could be, so "2008-12 (day not found)" is 31 Dec 2008 when latest."""
    m = _DATE_RE.search(text or "")
    if m is None:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else (12 if latest else 1)
    if m.group(3):
        day = int(m.group(3))
    else:
        day = calendar.monthrange(year, month)[1] if latest else 1
    return date(year, month, day)


def parse_number(text: str) -> float | None:
    """Leading number of a cell ("~7" -> 7.0, "6.8 (USD basis)" -> 6.8); None if none."""
    m = _NUMBER_RE.match(text or "")
    return float(m.group(1)) if m else None


def parse_first_year_pct(text: str) -> float | None:
    """First-year increase [%] from ``outcome_first_year_pct``.

    Where the cell lists several years ("0 (2020) / 13.9 (2021)": a lapse year frozen at the old
    level, then the negotiated year) the *last* one counts: it is the increase the new agreement
    set, which is what the model's ``increase_pct`` measures for a deal settled during a lapse.
    """
    if not text:
        return None
    return parse_number(text.split("/")[-1])


@dataclass(frozen=True)
class Realized:
    """What happened in one SMA negotiation, parsed from data/sma_negotiations.csv."""

    sma_number: int
    talks_start: date | None
    """First formal round (earliest day consistent with the cell)."""
    known_from: date | None
    """When the outcome was public: the agreement date, else the signing date, else entry into
    force (latest day consistent with the cell)."""
    increase_pct: float | None
    """First-year increase over the level replaced [%] (see :func:`parse_first_year_pct`)."""
    months_to_settlement: float | None
    """Months from the first formal round to the (tentative) agreement [months]."""
    term_years: float | None
    """Duration of the agreement [years]."""
    lapse: bool | None
    """The agreement was reached after the previous one expired (None: unknown)."""


def realized_outcomes(history: History | None = None) -> dict[int, Realized]:
    """Every SMA's outcome by number, from ``history.negotiations`` (data/sma_negotiations.csv).

    Lapse: for SMAs with a known agreement date, whether it falls after the 1 January following
    the previous SMA's last covered year (the model's definition: no agreement in force); for
    older ones, from the ``lapse_or_gap`` text ("none..." no, "not found" unknown, else yes).
    """
    history = history or load_history()
    rows = sorted(history.negotiations, key=lambda r: int(r["sma_number"]))
    out: dict[int, Realized] = {}
    previous_end: int | None = None
    for row in rows:
        number = int(row["sma_number"])
        agreed = parse_date(row["agreement_date"], latest=True)
        known_from = (
            agreed
            or parse_date(row["signing_date"], latest=True)
            or parse_date(row["entry_into_force"], latest=True)
        )
        lapse: bool | None
        gap_text = row["lapse_or_gap"].strip().lower()
        if agreed is not None and previous_end is not None:
            lapse = agreed >= date(previous_end + 1, 1, 1)
        elif gap_text.startswith("none"):
            lapse = False
        elif gap_text.startswith("not found") or not gap_text:
            lapse = None
        else:
            lapse = True
        out[number] = Realized(
            sma_number=number,
            talks_start=parse_date(row["negotiation_start"], latest=False),
            known_from=known_from,
            increase_pct=parse_first_year_pct(row["outcome_first_year_pct"]),
            months_to_settlement=parse_number(row["months_start_to_agreement"]),
            term_years=parse_number(row["duration_years"]),
            lapse=lapse,
        )
        years = re.findall(r"\d{4}", row["years_covered"])
        previous_end = int(years[-1]) if years else None
    return out


def known_by(realized: Mapping[int, Realized], day: date, before_sma: int) -> list[Realized]:
    """SMAs numbered below ``before_sma`` whose outcome was public by ``day``, in order."""
    return [
        r
        for n, r in sorted(realized.items())
        if n < before_sma and r.known_from is not None and r.known_from <= day
    ]


# --------------------------------------------------------------------------- model runs


def _marginal(name: str, spec: Any) -> Marginal:
    """Resolved marginal of an input's spec, cached: tabulating a PERT's inverse CDF is the
    costly part of planning a run, and tuning plans hundreds of runs from a few specs."""
    return _cached_marginal(name, spec.model_dump_json())


@functools.lru_cache(maxsize=1024)
def _cached_marginal(name: str, spec_json: str) -> Marginal:
    return marginal(_SPEC_ADAPTER.validate_json(spec_json), INPUT_BY_NAME[name].categories)


@dataclass(frozen=True, eq=False)
class _Runner:
    """Runs one case's scenario with some inputs replaced (cheap to call many times)."""

    case: Case
    history: History
    copula: CopulaPlan | None

    @classmethod
    def for_case(cls, case: Case, history: History) -> _Runner:
        rc = case.scenario.rank_correlation
        plan = copula_plan(INPUT_NAMES, rc.inputs, np.asarray(rc.matrix)) if rc else None
        return cls(case, history, plan)

    def run(self, priors: Mapping[str, Any], *, entropy: int, n_trials: int) -> Outcomes:
        inputs = {n: priors.get(n, self.case.scenario.inputs[n]) for n in INPUT_NAMES}
        # The priors were validated on loading; model_copy keeps the scenario's other fields.
        scenario = self.case.scenario.model_copy(update={"inputs": inputs})
        chunk = min(n_trials, scenario.simulation.chunk_size)
        plan = Plan(
            scenario=scenario,
            settings=model_settings(
                scenario,
                self.case.as_of,
                talks_open_on=self.case.talks_start,
                history=self.history,
            ),
            marginals={n: _marginal(n, s) for n, s in inputs.items()},
            copula=self.copula,
            entropy=entropy,
            n_trials=n_trials,
            chunk_size=chunk,
        )
        return Outcomes.concatenate([run_block(plan, b)[0] for b in range(plan.n_blocks)])


def start_offset_months(talks_start: date) -> float:
    """Months from the start of the model month talks open in to the first round [months].

    The model counts ``months_to_settlement`` from the start of the month talks open; the data
    count from the first round (23 April 2024 is 0.73 months into month April)."""
    days = calendar.monthrange(talks_start.year, talks_start.month)[1]
    return (talks_start.day - 1) / days


def _model_samples(outcomes: Outcomes, talks_start: date) -> dict[str, FloatArray]:
    """The model's forecast of each target, on the data's definitions (months from the first
    round; NaN increase where no agreement is reached within the horizon)."""
    months = outcomes.months_to_settlement - start_offset_months(talks_start)
    return {
        "increase_pct": outcomes.increase_pct,
        "months_to_settlement": np.maximum(months, 0.0),
        "lapse": outcomes.lapse.astype(np.float64),
    }


def _tuning_loss(samples: Mapping[str, FloatArray], truth: Realized) -> float:
    """CRPS of the increase [pp] plus CRPS of the months [months]: the tuning objective."""
    if truth.increase_pct is None or truth.months_to_settlement is None:
        raise ValueError(f"SMA {truth.sma_number}: no realized increase or months to tune on")
    return scoring.crps_from_samples(
        samples["increase_pct"], truth.increase_pct
    ) + scoring.crps_from_samples(samples["months_to_settlement"], truth.months_to_settlement)


@dataclass(frozen=True, eq=False)
class TuningTable:
    """Tuning loss of every candidate on every case usable for tuning."""

    candidates: list[dict[str, InputSpec]]
    cases: tuple[str, ...]
    loss: FloatArray
    """(n_candidates, n_cases) CRPS(increase) + CRPS(months) [pp + months]."""

    def best(self, on: Sequence[str]) -> int | None:
        """Index of the candidate with the lowest mean loss over cases ``on`` (None if empty);
        ties go to the earlier candidate."""
        if not on:
            return None
        cols = [self.cases.index(c) for c in on]
        return int(np.argmin(self.loss[:, cols].mean(axis=1)))


def _tuning_table(
    cases: Sequence[Case],
    runners: Mapping[str, _Runner],
    realized: Mapping[int, Realized],
    grid: TuningGrid,
    *,
    entropy: int,
    n_trials: int,
) -> TuningTable:
    usable = [
        c
        for c in cases
        if (r := realized.get(c.sma_number)) is not None
        and r.increase_pct is not None
        and r.months_to_settlement is not None
    ]
    candidates = grid.candidates()
    loss = np.empty((len(candidates), len(usable)))
    for j, case in enumerate(usable):
        truth = realized[case.sma_number]
        for i, priors in enumerate(candidates):
            out = runners[case.name].run(priors, entropy=entropy, n_trials=n_trials)
            loss[i, j] = _tuning_loss(_model_samples(out, case.talks_start), truth)
    return TuningTable(candidates, tuple(c.name for c in usable), loss)


def _tuning_set(case: Case, cases: Sequence[Case], realized: Mapping[int, Realized]) -> list[Case]:
    """Earlier cases whose agreement was public by this case's as-of date."""
    out = []
    for other in cases:
        r = realized.get(other.sma_number)
        if (
            other.sma_number < case.sma_number
            and r is not None
            and r.known_from is not None
            and r.known_from <= case.as_of
            and r.increase_pct is not None
            and r.months_to_settlement is not None
        ):
            out.append(other)
    return out


# --------------------------------------------------------------------------- baselines


def _normal_grid(mean: float, sd: float, size: int = BASELINE_GRID_SIZE) -> FloatArray:
    """Deterministic samples of N(mean, sd^2): its quantiles at (i + 0.5) / size."""
    u = (np.arange(size, dtype=np.float64) + 0.5) / size
    return np.asarray(mean + sd * special.ndtri(u), dtype=np.float64)


def baseline_samples(known: Sequence[Realized]) -> dict[str, dict[str, FloatArray]]:
    """Naive forecasts from the SMAs known at the time, as samples, by forecaster and target.

    - ``previous_repeated`` (increase): the previous agreement's first-year increase, with the
      historical spread: N(previous, s^2), s the sd of all known first-year increases.
    - ``historical`` (increase, months, lapse): the empirical distribution of the known values
      (each value one equally weighted sample; lapse as 0/1 values).

    A forecaster or target without enough history (no value, or fewer than two values for a
    spread) is left out.
    """
    increases = [r.increase_pct for r in known if r.increase_pct is not None]
    months = [r.months_to_settlement for r in known if r.months_to_settlement is not None]
    lapses = [float(r.lapse) for r in known if r.lapse is not None]
    out: dict[str, dict[str, FloatArray]] = {"previous_repeated": {}, "historical": {}}
    previous = known[-1].increase_pct if known else None
    if previous is not None and len(increases) >= 2:
        sd = float(np.std(increases, ddof=1))
        out["previous_repeated"]["increase_pct"] = _normal_grid(previous, sd)
    if increases:
        out["historical"]["increase_pct"] = np.asarray(increases, dtype=np.float64)
    if months:
        out["historical"]["months_to_settlement"] = np.asarray(months, dtype=np.float64)
    if lapses:
        out["historical"]["lapse"] = np.asarray(lapses, dtype=np.float64)
    return out


# --------------------------------------------------------------------------- forecasts


@dataclass(frozen=True, eq=False)
class CaseForecast:
    """All forecasts for one case (what the scores are computed from)."""

    case: Case
    realized: Realized
    model_priors: dict[str, InputSpec]
    """The tuned inputs' specs the model used for this case."""
    tuned_on: tuple[int, ...]
    """SMA numbers whose outcomes chose ``model_priors`` (empty: untuned)."""
    history_used: tuple[int, ...]
    """SMA numbers known at the as-of date (what the baselines use)."""
    samples: dict[str, dict[str, FloatArray]]
    """forecaster -> target -> samples (NaN: no agreement within the model horizon)."""


@dataclass(frozen=True, eq=False)
class BacktestForecasts:
    """Forecasts of every case plus the tuning table behind the model's priors."""

    forecasts: list[CaseForecast]
    tuning: TuningTable
    entropy: int
    n_trials: int


def backtest_forecasts(
    config_dir: str | Path,
    *,
    n_trials: int = 20_000,
    seed: int | None = None,
    data_dir: str | Path | None = None,
    n_tune_trials: int = DEFAULT_TUNE_TRIALS,
) -> BacktestForecasts:
    """Forecast every backtest case (model with forward-chained priors, and the baselines).

    Parameters
    ----------
    config_dir : folder holding ``base.yaml`` and ``backtest/``.
    n_trials : trials of each case's reported model forecast.
    seed : root seed (default: base.yaml's ``simulation.seed``); every case and candidate uses
        the same uniforms (common random numbers).
    data_dir : folder of the SMA history CSV files (default: the repository's ``data/``).
    n_tune_trials : trials per candidate and case while tuning.
    """
    if n_trials < 1 or n_tune_trials < 1:
        raise ValueError("n_trials and n_tune_trials must be positive")
    cases, grid = load_cases(config_dir)
    history = load_history(Path(data_dir) if data_dir is not None else DATA_DIR)
    realized = realized_outcomes(history)
    missing = [c.name for c in cases if c.sma_number not in realized]
    if missing:
        raise ValueError(f"no row in sma_negotiations.csv for case(s) {missing}")
    entropy = root_entropy(seed if seed is not None else cases[0].scenario.simulation.seed)
    runners = {c.name: _Runner.for_case(c, history) for c in cases}
    # Only cases that some later case may learn from need the whole grid.
    learners = {o.name for c in cases for o in _tuning_set(c, cases, realized)}
    table = _tuning_table(
        [c for c in cases if c.name in learners],
        runners,
        realized,
        grid,
        entropy=entropy,
        n_trials=n_tune_trials,
    )
    forecasts = []
    for case in cases:
        tuning_cases = _tuning_set(case, cases, realized)
        best = table.best([c.name for c in tuning_cases])
        priors = grid.untuned if best is None else table.candidates[best]
        outcomes = runners[case.name].run(priors, entropy=entropy, n_trials=n_trials)
        known = known_by(realized, case.as_of, case.sma_number)
        samples = {
            "model": _model_samples(outcomes, case.talks_start),
            **baseline_samples(known),
        }
        forecasts.append(
            CaseForecast(
                case=case,
                realized=realized[case.sma_number],
                model_priors=dict(priors),
                tuned_on=tuple(c.sma_number for c in tuning_cases),
                history_used=tuple(r.sma_number for r in known),
                samples=samples,
            )
        )
    return BacktestForecasts(forecasts, table, entropy, n_trials)


# --------------------------------------------------------------------------- scores


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


def score_forecasts(result: BacktestForecasts, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """One row per (case, target, forecaster, score), with :data:`BACKTEST_SCHEMA`."""
    rows: list[dict[str, Any]] = []
    for fc in result.forecasts:
        for forecaster, by_target in fc.samples.items():
            for target, samples in by_target.items():
                y = _realized_value(fc.realized, target)
                if y is None:
                    continue
                x = samples[~np.isnan(samples)]
                if x.size == 0:
                    continue
                q05, q50, q95 = np.quantile(x, [0.05, 0.5, 0.95], method="inverted_cdf")
                if target == "lapse":
                    q05 = q50 = q95 = float(np.mean(x))
                is_model = forecaster == "model"
                used = fc.tuned_on if is_model else fc.history_used
                for score, value in score_samples(samples, y, target).items():
                    rows.append(
                        {
                            "run_id": run_id,
                            "case": fc.case.name,
                            "sma_number": fc.case.sma_number,
                            "case_as_of_date": fc.case.as_of,
                            "target": target,
                            "unit": TARGETS[target][0],
                            "forecaster": forecaster,
                            "score": score,
                            "value": float(value),
                            "realized": y,
                            "forecast_p05": float(q05),
                            "forecast_p50": float(q50),
                            "forecast_p95": float(q95),
                            "n_samples": int(x.size),
                            "defined_share": scoring.defined_share(samples),
                            "history_used": ",".join(str(n) for n in used),
                            "priors": _priors_text(fc.model_priors) if is_model else "",
                            "schema_version": SCHEMA_VERSION,
                            "created_at": created_at,
                        }
                    )
    return pa.Table.from_pylist(rows, schema=BACKTEST_SCHEMA)


def run_backtest(
    config_dir: str | Path,
    *,
    n_trials: int = 20_000,
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
        :data:`BACKTEST_SCHEMA`; see :func:`backtest_table` and :func:`aggregate_scores`.
    """
    result = backtest_forecasts(
        config_dir, n_trials=n_trials, seed=seed, data_dir=data_dir, n_tune_trials=n_tune_trials
    )
    return score_forecasts(
        result,
        run_id=run_id or uuid.uuid4().hex,
        created_at=created_at or dt.datetime.now(dt.UTC),
    )


# --------------------------------------------------------------------------- aggregates


def _frame(scores: pa.Table | pd.DataFrame) -> pd.DataFrame:
    return scores.to_pandas() if isinstance(scores, pa.Table) else scores


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
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True, eq=False)
class Calibration:
    """The priors tuned on every case (what configs/base.yaml uses) and the table behind them."""

    priors: dict[str, InputSpec]
    mean_loss: float
    """Mean tuning loss of those priors over the cases [pp + months]."""
    untuned_loss: float
    """Mean tuning loss of the untuned priors over the same cases [pp + months]."""
    table: TuningTable


def calibrate_defaults(
    config_dir: str | Path,
    *,
    n_trials: int = DEFAULT_TUNE_TRIALS,
    seed: int | None = None,
    data_dir: str | Path | None = None,
) -> Calibration:
    """Tune the priors on *every* backtest case: the values for configs/base.yaml.

    The same grid and loss as the backtest's forward chaining, with all outcomes known (as they
    are for a forecast made today). docs/calibration.md records the result.
    """
    cases, grid = load_cases(config_dir)
    history = load_history(Path(data_dir) if data_dir is not None else DATA_DIR)
    realized = realized_outcomes(history)
    entropy = root_entropy(seed if seed is not None else cases[0].scenario.simulation.seed)
    runners = {c.name: _Runner.for_case(c, history) for c in cases}
    table = _tuning_table(cases, runners, realized, grid, entropy=entropy, n_trials=n_trials)
    best = table.best(list(table.cases))
    if best is None:
        raise ValueError("no case has a realized increase and months to calibrate on")
    by_name = {c.name: c for c in cases}
    untuned = [
        _tuning_loss(
            _model_samples(
                runners[name].run(grid.untuned, entropy=entropy, n_trials=n_trials),
                by_name[name].talks_start,
            ),
            realized[by_name[name].sma_number],
        )
        for name in table.cases
    ]
    return Calibration(
        priors=table.candidates[best],
        mean_loss=float(table.loss[best].mean()),
        untuned_loss=float(np.mean(untuned)),
        table=table,
    )


def describe_priors(priors: Mapping[str, Any]) -> str:
    """The priors as YAML-like ``input: {dist: ..., ...}`` lines (for docs and reports)."""
    return "\n".join(
        f"{n}: {json.dumps(s.model_dump(exclude_none=True))}" for n, s in priors.items()
    )
