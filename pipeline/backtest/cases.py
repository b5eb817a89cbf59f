"""Backtest case files: ``configs/backtest/cases.yaml``, its scenario files and the tuning grid.

For every case in ``cases.yaml`` (the 7th to the 12th SMA) the model runs the case's scenario
file (a normal scenario: ``../base.yaml`` plus what was known at the start of those talks) with
talks fixed to open on their known first round. The realized outcomes come from ``data/``
(:mod:`pipeline.backtest.realized`), never from the case files.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from pipeline.backtest.priors import BUILT_INPUTS
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES
from pipeline.spec.distributions import InputSpec, Marginal, marginal
from pipeline.spec.scenario import Scenario, ScenarioError, load_scenario, read_yaml

CASES_FILE: Final[str] = "cases.yaml"
"""Case list and tuning grid, in ``<config_dir>/backtest/``."""


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


class DatedPriorSpec(_Strict):
    """A prior and the date of the latest evidence behind it."""

    spec: dict[str, Any]
    evidence_date: date
    evidence: str = Field(min_length=1)


class ProvenanceSpec(_Strict):
    """Where base.yaml's prior for an input comes from, and what a case before that uses."""

    evidence_date: date
    evidence: str = Field(min_length=1)
    before: DatedPriorSpec | None = None


class PriorsSpec(_Strict):
    """The out-of-sample priors section of cases.yaml (pipeline.backtest.priors)."""

    no_history: dict[str, DatedPriorSpec]
    provenance: dict[str, ProvenanceSpec]


class CasesFile(_Strict):
    """configs/backtest/cases.yaml."""

    cases: list[CaseSpec] = Field(min_length=1)
    tuning: TuningSpec
    priors: PriorsSpec


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


@dataclass(frozen=True)
class DatedPrior:
    """A validated prior with the date of the latest evidence behind it."""

    spec: InputSpec
    evidence_date: date
    evidence: str


@dataclass(frozen=True)
class Provenance:
    """Date of the evidence behind base.yaml's prior for one input, and the earlier prior."""

    evidence_date: date
    evidence: str
    before: DatedPrior | None


@dataclass(frozen=True, eq=False)
class PriorSources:
    """The builder's fallbacks and every other input's provenance (cases.yaml, ``priors``)."""

    no_history: dict[str, DatedPrior]
    provenance: dict[str, Provenance]


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


def _marginal(name: str, spec: Any) -> Marginal:
    """Resolved marginal of an input's spec, cached: tabulating a PERT's inverse CDF is the
    costly part of planning a run, and tuning plans hundreds of runs from a few specs."""
    return _cached_marginal(name, spec.model_dump_json())


@functools.lru_cache(maxsize=1024)
def _cached_marginal(name: str, spec_json: str) -> Marginal:
    return marginal(_SPEC_ADAPTER.validate_json(spec_json), INPUT_BY_NAME[name].categories)


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


def _dated(name: str, raw: DatedPriorSpec, where: str) -> DatedPrior:
    """A dated prior, checked as a scenario's input is (pipeline.spec.distributions)."""
    try:
        spec = _SPEC_ADAPTER.validate_python(raw.spec)
        spec.check_support(INPUT_BY_NAME[name])
    except ValidationError as exc:
        msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ScenarioError(where, name, msg) from None
    except ValueError as exc:
        raise ScenarioError(where, name, str(exc)) from None
    return DatedPrior(spec, raw.evidence_date, raw.evidence)


def _prior_sources(parsed: PriorsSpec, tuned: tuple[str, ...], shown: str) -> PriorSources:
    """Validate the priors section: every input has exactly one out-of-sample source."""
    built = set(BUILT_INPUTS)
    prov = set(parsed.provenance)
    unknown = sorted((prov | set(parsed.no_history)) - set(INPUT_NAMES))
    if unknown:
        raise ScenarioError(shown, "priors", f"unknown input(s) {unknown}")
    if set(parsed.no_history) != built:
        raise ScenarioError(
            shown, "priors.no_history", f"must name exactly the built inputs {sorted(built)}"
        )
    overlap = sorted(prov & (built | set(tuned)))
    if overlap:
        raise ScenarioError(
            shown, "priors.provenance", f"{overlap} are built or tuned: no provenance needed"
        )
    missing = sorted(set(INPUT_NAMES) - prov - built - set(tuned))
    if missing:
        raise ScenarioError(
            shown,
            "priors.provenance",
            f"no source for input(s) {missing}: give the date of the evidence behind each",
        )
    return PriorSources(
        no_history={
            n: _dated(n, d, f"{shown}: priors.no_history") for n, d in parsed.no_history.items()
        },
        provenance={
            n: Provenance(
                p.evidence_date,
                p.evidence,
                None if p.before is None else _dated(n, p.before, f"{shown}: priors.provenance"),
            )
            for n, p in parsed.provenance.items()
        },
    )


def load_cases(config_dir: str | Path) -> tuple[list[Case], TuningGrid]:
    """Read ``<config_dir>/backtest/cases.yaml``, its scenario files and the tuning grid.

    Raises :class:`ScenarioError` naming the file and field when something is invalid, including
    a case file that sets a tuned or built input (tuning or the builder would silently not
    apply to it) and an input with no out-of-sample source (``priors``).
    """
    cases, grid, _ = load_cases_and_priors(config_dir)
    return cases, grid


def load_cases_and_priors(config_dir: str | Path) -> tuple[list[Case], TuningGrid, PriorSources]:
    """:func:`load_cases` plus the priors section (:mod:`pipeline.backtest.priors`)."""
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
    sources = _prior_sources(parsed.priors, grid.inputs, shown)
    cases: list[Case] = []
    seen: set[str] = set()
    for spec in parsed.cases:
        if spec.name in seen:
            raise ScenarioError(shown, "cases", f"duplicate case name {spec.name!r}")
        seen.add(spec.name)
        scenario_path = folder / spec.scenario
        own = read_yaml(scenario_path, str(scenario_path)).get("inputs") or {}
        clash = sorted(set(own) & (set(grid.inputs) | set(BUILT_INPUTS)))
        if clash:
            raise ScenarioError(
                str(scenario_path),
                "inputs",
                f"sets tuned or built input(s) {clash}; those priors come from cases.yaml "
                "(tuning) and data/ (pipeline.backtest.priors)",
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
    return cases, grid, sources
