"""Scenario files: base + per-scenario YAML, validated into frozen pydantic models.

``load_scenario(path)`` reads a scenario file, merges it over its base file (configs/base.yaml
unless the file names another ``base``), applies ``--set``-style overrides and validates. Every
problem is raised as :class:`ScenarioError` naming the file, the field path and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.common import QUANTILE_LEVELS
from pipeline.spec.catalog import INPUT_BY_NAME, INPUT_NAMES
from pipeline.spec.distributions import (
    InputSpec,
)
from pipeline.spec.history import DATA_DIR
from pipeline.spec.host import (
    DEFAULT_ADMINISTRATIONS,
    Administration,
    HostConfig,
    HostFileError,
    check_calendar,
    levels_column,
    next_administration,
    read_levels,
    read_macro,
)
from pipeline.spec.safe_yaml import YamlProblem, load_bounded, read_text_bounded

SCENARIO_NAME_PATTERN = r"^[a-z0-9_-]{1,64}$"
#: Longest free text (a description) [characters]: it is copied into every report.
MAX_TEXT_CHARS = 5_000
#: Longest problem text of a ScenarioError [characters].
MAX_MESSAGE_CHARS = 2000
DEFAULT_BASE = Path("..") / "base.yaml"


class ScenarioError(ValueError):
    """A scenario file or override is invalid; the message names file, field and what is allowed."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        # Bounded: a message may quote a value, and a value may be huge (a 226 MB matrix).
        if len(problem) > MAX_MESSAGE_CHARS:
            problem = problem[: MAX_MESSAGE_CHARS - 20] + " ... (truncated)"
        self.source, self.field, self.problem = source, field, problem
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(where + problem)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class Mechanisms(_Frozen):
    """Switches for each mechanism of the negotiation model (all on by default)."""

    reopening: bool = True
    """The US may force talks before the regular successor negotiation."""
    package_deal: bool = True
    """A package deal may meet part of the US demand outside the SMA."""
    troop_lever: bool = True
    """The US may threaten troop-posture changes when talks stall."""
    administration_change: bool = True
    """US demand intensity changes with the next administration of ``us_administrations``."""
    deadline: bool = True
    """After the negotiation length both sides table final offers."""
    lapse_furlough: bool = True
    """A lapse can lead to a furlough of Korean USFK workers."""
    cuts: bool = True
    """A troop reduction or fiscal stress lowers both sides' positions, so that a deal can
    freeze or cut the level (neutral in the base file: both events have probability 0)."""
    stopgap: bool = True
    """Talks still open at expiry may agree a stop-gap extension at or near the old level,
    then continue to a multi-year deal."""
    renegotiation: bool = True
    """A new agreement ending inside the horizon is renegotiated (new talks, a new deal)."""
    expiry_pressure: bool = True
    """Final offers come at the latest shortly after the agreement in force expires."""
    successor_either_way: bool = True
    """The next US administration may be harder or softer than Trump (off: at most as hard,
    and the change of administration can only lower the US positions)."""


class ModelConfig(_Frozen):
    """Non-random settings of the negotiation model."""

    calendar_base_year: int = Field(default=2026, ge=1991, le=2100)
    """First (fiscal) year of the contribution path; model month 0 is its first month."""
    horizon_year: int = Field(default=2031, ge=1991, le=2100)
    """Last (fiscal) year simulated."""
    escalation_cap_pct: float = Field(default=5.0, ge=0, le=100)
    """Cap on CPI-linked escalation, for the agreement in force and CPI-linked new deals [%]."""
    cpi_lag_years: int = Field(default=2, ge=0, le=5)
    """CPI-linked escalation in year y uses CPI of year y - lag (the 12th SMA uses 2)."""
    furlough_after_lapse_months: float = Field(default=3.0, ge=0, le=24)
    """Months of lapse before furloughs can start (2020: lapse from January, furlough 1 April)."""
    mechanisms: Mechanisms = Mechanisms()

    @model_validator(mode="after")
    def _years(self) -> ModelConfig:
        if not self.calendar_base_year <= self.horizon_year <= self.calendar_base_year + 20:
            raise ValueError("horizon_year must be within 20 years after calendar_base_year")
        return self


class SimulationConfig(_Frozen):
    """How many trials, in which chunks, with which sampler and seed."""

    n_trials: int = Field(default=200_000, ge=1, le=10**10)
    chunk_size: int = Field(default=65_536, ge=1, le=10**8)
    sampler: Literal["mc", "lhs", "sobol"] = "mc"
    seed: int | None = Field(default=None, ge=0, lt=2**128)
    # Convergence gate (pipeline/analysis/convergence.py). Left out of the config hash while unset, so
    # configs without a gate keep their hashes.
    target_se: float | None = Field(default=None, gt=0, exclude_if=lambda v: v is None)
    """Add blocks until the gate statistic's Monte Carlo s.e. is at most this [percentage
    points]: the largest over scenarios of the s.e. of increase_pct p05, p50 and p95."""
    max_trials: int | None = Field(default=None, ge=1, le=10**10, exclude_if=lambda v: v is None)
    """Cap on trials per scenario for a gated run (default: convergence.DEFAULT_MAX_TRIALS)."""

    @model_validator(mode="after")
    def _gate(self) -> SimulationConfig:
        if self.max_trials is not None and self.max_trials < self.n_trials:
            raise ValueError(
                f"max_trials ({self.max_trials}) must be at least n_trials ({self.n_trials})"
            )
        return self


class RankCorrelation(_Frozen):
    """Spearman rank correlations between named inputs (Gaussian copula)."""

    inputs: list[str] = Field(min_length=2)
    matrix: list[list[float]]

    @field_validator("inputs")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in INPUT_BY_NAME]
        if unknown:
            raise ValueError(f"unknown input(s) {unknown}; allowed: {', '.join(INPUT_NAMES)}")
        if len(set(names)) != len(names):
            raise ValueError("inputs must be distinct")
        return names

    @model_validator(mode="after")
    def _matrix(self) -> RankCorrelation:
        k = len(self.inputs)
        m = np.asarray(self.matrix, dtype=np.float64) if self.matrix else np.zeros((0, 0))
        if m.shape != (k, k):
            raise ValueError(f"matrix must be {k}x{k} to match inputs (got shape {m.shape})")
        if not np.allclose(m, m.T, atol=1e-12):
            raise ValueError("matrix must be symmetric")
        if not np.allclose(np.diag(m), 1.0):
            raise ValueError("matrix must have 1 on the diagonal")
        if np.any(np.abs(m) > 1):
            raise ValueError("correlations must lie in [-1, 1]")
        if np.linalg.eigvalsh(m).min() < -1e-10:
            raise ValueError(
                "matrix is not positive semi-definite (no set of inputs can have these "
                "correlations); lower the largest correlations"
            )
        return self


class Scenario(_Frozen):
    """A validated scenario: base settings merged with one scenario file's overrides."""

    name: str = Field(pattern=SCENARIO_NAME_PATTERN)
    description: str = Field(default="", max_length=MAX_TEXT_CHARS)
    simulation: SimulationConfig = SimulationConfig()
    model: ModelConfig = ModelConfig()
    host: HostConfig = HostConfig()
    us_administrations: list[Administration] = list(DEFAULT_ADMINISTRATIONS)
    """US administrations in the order they took office (spec/host.py)."""
    inputs: dict[str, InputSpec]
    rank_correlation: RankCorrelation | None = None

    @field_validator("us_administrations")
    @classmethod
    def _calendar(cls, administrations: list[Administration]) -> list[Administration]:
        check_calendar(tuple(administrations))
        return administrations

    @model_validator(mode="after")
    def _host(self) -> Scenario:
        # Named "section.field: problem" so the error points at the field (see _format_error).
        base = self.model.calendar_base_year
        try:
            self.host.check_expiry(base)
        except ValueError as exc:
            raise ValueError(f"host.agreement_expiry_date: {exc}") from None
        return self

    def administration_change(self) -> Administration | None:
        """The next US administration taking office within the path (the change the model
        simulates), if any."""
        h, m = self.host, self.model
        return next_administration(
            tuple(self.us_administrations),
            h.fiscal_year_start(m.calendar_base_year),
            h.fiscal_year_start(m.horizon_year + 1),
        )

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, inputs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(inputs) - set(INPUT_NAMES))
        if unknown:
            raise ValueError(f"unknown input(s) {unknown}; allowed: {', '.join(INPUT_NAMES)}")
        missing = [n for n in INPUT_NAMES if n not in inputs]
        if missing:
            raise ValueError(f"missing input(s) {missing}; the base file must give every input")
        for name, spec in inputs.items():
            spec.check_support(INPUT_BY_NAME[name])
        return {n: inputs[n] for n in INPUT_NAMES}

    def early_talks_year(self) -> int | None:
        """The (fiscal) year the next administration takes office in: "early talks" (the
        headline's ``reopened_before_<year>``) open before it; None without a change."""
        change = self.administration_change()
        return self.host.fiscal_year_of(change.took_office) if change is not None else None

    def config_hash(self) -> str:
        """sha256 of the normalized scenario (stable across key order and formatting)."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


# --------------------------------------------------------------------------- loading


def read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """Read a YAML mapping within the limits of :mod:`pipeline.spec.safe_yaml`.

    Every problem is a ScenarioError naming ``shown`` (and the key path where known); the
    message never quotes the content of a file that is not valid YAML.
    """
    try:
        text = read_text_bounded(path)
    except FileNotFoundError:
        raise ScenarioError(shown, "", "file not found") from None
    except IsADirectoryError:
        raise ScenarioError(shown, "", "is a directory, not a scenario file") from None
    except UnicodeDecodeError:
        raise ScenarioError(shown, "", "is not a UTF-8 text file") from None
    except YamlProblem as exc:
        raise ScenarioError(shown, "", exc.problem) from None
    except OSError as exc:
        raise ScenarioError(
            shown, "", f"cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        data = load_bounded(text)
    except YamlProblem as exc:
        problem = exc.problem
        if problem.startswith("invalid YAML: "):
            problem = f"invalid YAML{exc.where()}: " + problem.removeprefix("invalid YAML: ")
        else:
            problem += exc.where()
        raise ScenarioError(shown, ".".join(exc.path), problem) from None
    if data is None:
        raise ScenarioError(shown, "", "file is empty; a scenario needs at least a 'name'")
    if not isinstance(data, dict):
        raise ScenarioError(
            shown, "", f"must be a mapping of keys to values, not {type(data).__name__}"
        )
    return data


def _merge(base: dict[str, Any], override: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Deep-merge override into base; an input's spec is replaced whole (it may change family)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if path != "inputs." and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, f"{path}{key}.")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _has_path(data: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``INPUT.FIELD=VALUE`` (or ``section.field=VALUE``); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", key):
        raise ScenarioError("--set", text, "expected INPUT.FIELD=VALUE, e.g. krw_per_usd.p95=1600")
    try:
        value = load_bounded(raw) if raw.strip() else None
    except YamlProblem:
        raise ScenarioError("--set", key, f"cannot read the value {raw!r}") from None
    return key, value


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for key, value in overrides.items():
        parts = key.split(".")
        if parts[0] in INPUT_BY_NAME:
            parts = ["inputs", *parts]
        elif parts[0] not in Scenario.model_fields:
            raise ScenarioError(
                "--set",
                key,
                f"unknown input or setting '{parts[0]}'; inputs: {', '.join(INPUT_NAMES)}; "
                f"settings: {', '.join(k for k in Scenario.model_fields if k != 'inputs')}",
            )
        if parts[0] == "inputs" and len(parts) == 2 and not isinstance(value, dict):
            # `--set INPUT=VALUE` would replace the whole distribution by a number (a whole
            # spec given as a mapping, e.g. {dist: fixed, value: 3}, is fine).
            spec = data.get("inputs", {}).get(parts[1])
            dist = spec.get("dist") if isinstance(spec, dict) else None
            fields = _spec_fields(dist)
            raise ScenarioError(
                "--set",
                key,
                f"name a field of the input: INPUT.FIELD=VALUE, e.g. {parts[1]}."
                f"{fields[0] if fields else 'FIELD'}=...; fields of '{parts[1]}'"
                + (f" (dist {dist})" if dist else "")
                + f": {', '.join(fields) if fields else 'see its distribution in base.yaml'}",
            )
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ScenarioError("--set", key, f"'{part}' is not a section")
        leaf = parts[-1]
        if parts[0] == "inputs" and len(parts) == 3 and leaf not in target:
            spec = target
            allowed = _spec_fields(spec.get("dist"))
            if allowed and leaf not in allowed:
                raise ScenarioError(
                    "--set",
                    key,
                    f"input '{parts[1]}' (dist {spec.get('dist')}) has no field '{leaf}'; "
                    f"allowed: {', '.join(allowed)}",
                )
            if leaf in QUANTILE_LEVELS:
                # Setting one side of a quantile pair replaces the side already given there
                # (p10 replaces p05; p90 replaces p95), so the spec keeps two quantiles.
                below = QUANTILE_LEVELS[leaf] < 0.5
                for other, level in QUANTILE_LEVELS.items():
                    if other != leaf and other in spec and (level < 0.5) == below:
                        del spec[other]
        target[leaf] = value
    return data


def _spec_fields(dist: Any) -> list[str]:
    for cls in InputSpec.__origin__.__args__:  # type: ignore[attr-defined]
        if cls.model_fields["dist"].annotation.__args__[0] == dist:
            return [f for f in cls.model_fields if f != "dist"]
    return []


def _format_error(
    err: Any,
    raw_scenario: dict[str, Any],
    scenario_src: str,
    base_src: str,
    overrides: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    simulation: dict[str, Any] | None = None,
) -> ScenarioError:
    loc = [str(p) for p in err["loc"]]
    msg = err["msg"].removeprefix("Value error, ")
    # Whole-scenario validators name the field first ("host.agreement_expiry_date: ...").
    if not loc and (named := re.match(r"^([a-z_]+(?:\.[a-z_0-9]+)*): (.*)$", msg, re.S)):
        loc, msg = named.group(1).split("."), named.group(2)
    if not loc:
        loc = [""]
    # Whole-section validators name the input first ("inputs: x: ..."): point at the input.
    if loc == ["inputs"] and (name := msg.split(":", 1)[0]) in INPUT_BY_NAME:
        loc, msg = ["inputs", name], msg.split(":", 1)[1].strip()
    # Drop the union tag pydantic inserts after an input name (inputs.x.pert.max -> inputs.x.max).
    if len(loc) >= 3 and loc[0] == "inputs":
        tag = loc[2]
        if tag in {
            "fixed",
            "uniform",
            "normal",
            "lognormal",
            "pert",
            "triangular",
            "beta",
            "bernoulli",
            "discrete",
            "categorical",
        }:
            loc = loc[:2] + loc[3:]
    field = ".".join(loc)
    source = scenario_src if (not base_src or _has_path(raw_scenario, loc[:2])) else base_src
    for key in overrides or {}:
        parts = key.split(".")
        parts = ["inputs", *parts] if parts[0] in INPUT_BY_NAME else parts
        if loc[: len(parts)] == parts[: len(loc)]:
            source = "--set"
    if loc[0] == "simulation" and len(loc) > 1 and loc[1] in (simulation or {}):
        source = "run settings"
    kind = err["type"]
    if kind == "extra_forbidden":
        if loc[0] == "inputs" and len(loc) == 3:
            spec = (data or {}).get("inputs", {}).get(loc[1], {})
            allowed = _spec_fields(spec.get("dist") if isinstance(spec, dict) else None)
        else:
            allowed = _allowed_at(loc[:-1])
        msg = f"unknown key '{loc[-1]}'" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif kind == "union_tag_invalid":
        msg = (
            "unknown dist; allowed: fixed, uniform, normal, lognormal, pert, triangular, "
            "beta, bernoulli, discrete, categorical"
        )
    elif kind == "union_tag_not_found":
        msg = "missing 'dist' (one of fixed, uniform, normal, lognormal, pert, triangular, beta, bernoulli, discrete, categorical)"
    elif kind in ("float_type", "int_type", "bool_type", "string_type") and "input" in err:
        msg = f"{msg} (got {err['input']!r} of type {type(err['input']).__name__})"
    elif kind == "finite_number":
        msg = "must be a finite number (got NaN or infinity)"
    return ScenarioError(source, field, msg)


def _allowed_at(loc: list[str]) -> list[str]:
    model: Any = Scenario
    for i, part in enumerate(loc):
        if model is Scenario and part == "inputs":
            return []  # unknown input names are reported by the inputs validator
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = field.annotation
        if model is not None and hasattr(model, "__args__"):
            model = next((a for a in model.__args__ if hasattr(a, "model_fields")), None)
        _ = i
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def load_scenario(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    simulation: dict[str, Any] | None = None,
    root: Path | None = None,
) -> Scenario:
    """Read, merge and validate a scenario file.

    Parameters
    ----------
    path : the scenario YAML (its ``base`` key, default ``../base.yaml``, names the base file;
        a file without ``base`` next to no base file is read alone).
    overrides : ``{"us_headline_ask_usd_bn.p95": 12, "simulation.n_trials": 1000}``-style
        values applied after merging.
    simulation : run settings (n_trials, chunk_size, seed, sampler) that replace the file's.
    root : if given, the file and its base must resolve (symlinks followed) inside this
        folder; neither is opened otherwise.
    """
    path = Path(path)
    shown = str(path)
    _check_inside(path, root, shown, "")
    raw = read_yaml(path, shown)
    base_ref = raw.pop("base", None)
    base_src = ""
    base_raw: dict[str, Any] = {}
    data = raw
    if base_ref is not None or (path.parent / DEFAULT_BASE).resolve() != path.resolve():
        base_path = path.parent / (base_ref if base_ref is not None else DEFAULT_BASE)
        if base_ref is not None or base_path.exists():
            base_src = str(base_path)
            _check_inside(base_path, root, shown, "base")
            base_raw = read_yaml(base_path, base_src)
            base_raw.pop("base", None)
            data = _merge(base_raw, raw)
            # Another host nation's section replaces the base's whole: nothing of Korea's
            # (its data files, its agreement) carries over to it unnoticed.
            base_host, own_host = _host_section(base_raw), _host_section(raw)
            if own_host and own_host.get("name", base_host.get("name")) != base_host.get("name"):
                data["host"] = copy.deepcopy(raw["host"])
    if overrides:
        data = _apply_overrides(data, overrides)
    if simulation:
        data = _merge(data, {"simulation": dict(simulation)})
    # The base file's own name never names a scenario: a file without one is named by its stem.
    data["name"] = raw.get("name", path.stem)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _format_error(
            exc.errors()[0], raw, shown, base_src, overrides, data, simulation
        ) from None
    # The host's data files are read once the YAML is valid (its errors come first).
    sources = [(raw, path, shown)] + ([(base_raw, Path(base_src), base_src)] if base_src else [])
    loaded, levels_shown = _read_host_files(data, sources, overrides or {})
    scenario = scenario.model_copy(update={"host": scenario.host.model_copy(update=loaded)})
    try:
        scenario.host.check_levels(scenario.model.calendar_base_year)
    except ValueError as exc:
        raise ScenarioError(levels_shown, levels_column(scenario.host.currency), str(exc)) from None
    return scenario


def _host_section(data: dict[str, Any]) -> dict[str, Any]:
    host = data.get("host", {})
    return host if isinstance(host, dict) else {}


def _read_host_files(
    data: dict[str, Any], sources: list[tuple[dict[str, Any], Path, str]], overrides: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """The host's levels and macro series read from its files (each path relative to the YAML
    file that names it; from ``--set``, to the working directory), and how the levels file is
    shown in messages. ``data`` is the validated scenario's merged YAML."""
    host = _host_section(data)
    for loaded in ("levels", "cpi_pct", "defense_budget_growth_pct"):
        if loaded in host:
            source = next((s for r, _, s in sources if loaded in _host_section(r)), "--set")
            raise ScenarioError(
                source,
                f"host.{loaded}",
                "is read from the host's files; set levels_file or macro_file",
            )
    currency = str(host.get("currency", HostConfig().currency))

    def where(key: str) -> tuple[Path, str] | None:
        text = host.get(key, getattr(HostConfig(), key))
        if text is None:
            return None
        if not isinstance(text, str):
            return None  # pydantic reports the type
        if f"host.{key}" in overrides:
            return Path(text), text
        for raw, file, _ in sources:
            if key in _host_section(raw):
                resolved = file.parent / text
                return resolved, str(resolved)
        # The default host's files (a scenario without a base and no host section).
        resolved = DATA_DIR / Path(text).name
        return resolved, str(resolved)

    section: dict[str, Any] = {}
    levels_where = where("levels_file")
    macro_where = where("macro_file")
    try:
        if levels_where is not None:
            section["levels"] = read_levels(levels_where[0], currency, levels_where[1])
        if macro_where is not None:
            section["cpi_pct"], section["defense_budget_growth_pct"] = read_macro(*macro_where)
    except HostFileError as exc:
        raise ScenarioError(exc.source, exc.field, exc.problem) from None
    return section, levels_where[1] if levels_where else ""


def _check_inside(path: Path, root: Path | None, shown: str, field: str) -> None:
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        raise ScenarioError(shown, field, f"resolves outside the config folder {root}")


def scenario_paths(config_dir: str | Path) -> list[Path]:
    """The scenario files in ``config_dir/scenarios``, sorted by name."""
    return sorted(Path(config_dir, "scenarios").glob("*.yaml"))
