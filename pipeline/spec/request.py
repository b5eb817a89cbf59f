"""The run request: what one forecast run is asked to do, validated once, every default here.

The CLI, both forecast flows, the deployments and the tests build a :class:`RunRequest`; its
field checks are the only place run settings are validated. Loading what it names (scenario
files, evidence) happens in :func:`pipeline.compose.prepare_run`, which raises
:class:`~pipeline.spec.scenario.ScenarioError` naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.spec.scenario import (
    SCENARIO_NAME_PATTERN,
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_paths,
)

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
#: Folder with base.yaml, scenarios/, evidence.yaml and backtest/.
DEFAULT_CONFIG_DIR: Final[str] = str(REPO_ROOT / "configs")
DEFAULT_OUTPUT_DIR: Final[str] = "outputs"
#: Parallel tasks per scenario (worker threads or processes, or of a Dask cluster).
DEFAULT_WORKERS: Final[int] = 2
#: Model trials per past negotiation in a backtest.
DEFAULT_BACKTEST_TRIALS: Final[int] = 20_000
#: Task runners of the forecast flow; ``auto``: processes for big runs, else threads.
RUNNERS: Final[tuple[str, ...]] = ("auto", "threads", "processes", "dask")
Runner = Literal["auto", "threads", "processes", "dask"]
#: Fewest trials (over all scenarios) for which ``auto`` runs the tasks in worker processes
#: rather than threads: below it, starting the processes costs more than they gain
#: (docs/scaling.md, "On one machine").
AUTO_PROCESS_MIN_TRIALS: Final[int] = 2_000_000
#: The negotiation's calendar: "today" and the nightly schedule are in Seoul.
SEOUL: Final[str] = "Asia/Seoul"

#: The command-line option of each field (for error messages that name what the user typed).
CLI_OPTIONS: Final[dict[str, str]] = {
    "scenarios": "--scenario",
    "n_trials": "--trials",
    "overrides": "--set",
    "output_dir": "--output",
}


def today_in_seoul(now: dt.datetime | None = None) -> date:
    """Today's date in Asia/Seoul (the negotiation's calendar)."""
    from zoneinfo import ZoneInfo

    return (now or dt.datetime.now(dt.UTC)).astimezone(ZoneInfo(SEOUL)).date()


class RunRequest(BaseModel):
    """One forecast run as asked for (None: take the value from the scenario files)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scenarios: tuple[str, ...] | None = None
    """Scenario names (configs/scenarios/<name>.yaml) or YAML paths; None or empty: all."""
    n_trials: int | None = Field(default=None, ge=1, le=10**10)
    """Trials per scenario (default: the first scenario's simulation.n_trials)."""
    seed: int | None = Field(default=None, ge=0, lt=2**128)
    """Root seed (default: the first scenario's simulation.seed; none there: fresh entropy)."""
    as_of: date | None = None
    """Date of the forecast (default: today in Seoul)."""
    chunk_size: int | None = Field(default=None, ge=1, le=10**8)
    """Trials per block (default: simulation.chunk_size). Results depend on it."""
    overrides: dict[str, Any] = Field(default_factory=dict)
    """``INPUT.FIELD`` or ``section.field`` -> value, applied to every scenario."""
    output_dir: str = DEFAULT_OUTPUT_DIR
    trials_sample: int = Field(default=0, ge=0, le=10**7)
    """Trials written to the optional ``trials`` dataset (0: none)."""
    workers: int = Field(default=DEFAULT_WORKERS, ge=1, le=256)
    """Parallel tasks per scenario (block groups); never changes the numbers."""
    config_dir: str = DEFAULT_CONFIG_DIR
    evidence_file: str | None = None
    """Evidence YAML (default: <config_dir>/evidence.yaml)."""
    target_se: float | None = Field(default=None, gt=0)
    """Convergence gate target [percentage points] (default: simulation.target_se)."""
    max_trials: int | None = Field(default=None, ge=1, le=10**10)
    """Cap on trials per scenario of a gated run (default: simulation.max_trials)."""
    min_effective_trials: int | None = Field(default=None, ge=0, le=10**10)
    """Fewest trials a scenario must keep after evidence conditioning to be published
    (default: compose.DEFAULT_MIN_EFFECTIVE_TRIALS; a run of fewer trials needs all of them)."""
    runner: Runner = "auto"
    """Task runner (flows/runners.py); ``auto`` picks processes or threads by the run's size."""
    dask_address: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9+]*://\S+$")
    """Scheduler of an existing Dask cluster (with runner 'dask')."""

    @model_validator(mode="after")
    def _consistent(self) -> RunRequest:
        if self.dask_address is not None and self.runner != "dask":
            raise ValueError("--dask-address needs --runner dask")
        return self

    @classmethod
    def checked(cls, **fields: Any) -> RunRequest:
        """Build a request; an invalid field raises ScenarioError naming its CLI option and
        what is allowed (e.g. ``--trials: must be at least 1 (got 0)``)."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            name = str(err["loc"][0]) if err["loc"] else ""
            option = CLI_OPTIONS.get(name, "--" + name.replace("_", "-")) if name else "run"
            raise ScenarioError(option, "", _problem(err)) from None

    def flow_parameters(self) -> dict[str, Any]:
        """The ``forecast`` flow's parameters for this request (the runner is chosen apart)."""
        params = self.model_dump(exclude={"runner", "dask_address"})
        params["scenarios"] = list(self.scenarios) if self.scenarios else None
        return params

    @property
    def evidence_path(self) -> Path:
        return Path(self.evidence_file or Path(self.config_dir) / "evidence.yaml")

    def whatif_reasons(self) -> dict[str, Any]:
        """What makes this run a what-if (empty: an official run).

        The one place that decides: ``--set`` overrides (``set``), a config folder other than
        configs/ (``config_dir``), an evidence file other than <configs>/evidence.yaml
        (``evidence_file``), scenario files outside configs/scenarios (``scenario_files``).
        Paths are resolved (absolute), so the record says exactly which file was read.
        """
        reasons: dict[str, Any] = {}
        if self.overrides:
            reasons["set"] = dict(self.overrides)
        default = Path(DEFAULT_CONFIG_DIR).resolve()
        if Path(self.config_dir).resolve() != default:
            reasons["config_dir"] = str(Path(self.config_dir).resolve())
        if self.evidence_file is not None:
            evidence = Path(self.evidence_file).resolve()
            if evidence != default / "evidence.yaml":
                reasons["evidence_file"] = str(evidence)
        files = [
            str(Path(name).resolve())
            for name in self.scenarios or ()
            if (name.endswith((".yaml", ".yml")) or "/" in name)
            and Path(name).resolve().parent != default / "scenarios"
        ]
        if files:
            reasons["scenario_files"] = files
        return reasons

    @property
    def run_kind(self) -> Literal["official", "what-if"]:
        """``official`` unless :meth:`whatif_reasons` finds a reason."""
        return "what-if" if self.whatif_reasons() else "official"

    def overrides_json(self) -> str | None:
        """The ``runs.overrides`` text: :meth:`whatif_reasons` as sorted JSON (None: official)."""
        reasons = self.whatif_reasons()
        return json.dumps(reasons, sort_keys=True, default=str) if reasons else None

    def resolved_as_of(self) -> date:
        return self.as_of or today_in_seoul()


_BOUND_WORDS: Final[dict[str, tuple[str, str]]] = {
    "greater_than_equal": ("ge", "must be at least"),
    "greater_than": ("gt", "must be greater than"),
    "less_than_equal": ("le", "must be at most"),
    "less_than": ("lt", "must be below"),
}


def _problem(err: Mapping[str, Any]) -> str:
    """A validation error in words: what is allowed and what was given."""
    kind = str(err.get("type", ""))
    got = err.get("input")
    if kind in _BOUND_WORDS:
        key, words = _BOUND_WORDS[kind]
        return f"{words} {err.get('ctx', {}).get(key)} (got {got!r})"
    if kind == "string_pattern_mismatch":
        return f"{got!r} is not an address like tcp://host:8786"
    if kind == "literal_error":
        return f"{got!r} is not one of {', '.join(RUNNERS)}"
    return str(err["msg"]).removeprefix("Value error, ")


_LOCAL_FILES: set[Path] = set()


def allow_local_files(paths: Sequence[str | Path]) -> None:
    """Let this process read these scenario or evidence files outside the config folder.

    Only the command line calls it, for the paths its user typed: a flow parameter (the ad
    hoc deployment, an API call) can name scenarios only inside the config folder.
    """
    _LOCAL_FILES.update(Path(p).resolve() for p in paths)


def confined(path: str | Path, root: str | Path, option: str) -> Path:
    """``path`` if it resolves (symlinks followed) inside ``root`` or was allowed by
    :func:`allow_local_files`; else ScenarioError (the file is not opened)."""
    resolved = Path(path).resolve()
    if resolved in _LOCAL_FILES or resolved.is_relative_to(Path(root).resolve()):
        return Path(path)
    raise ScenarioError(
        option, str(path),
        f"resolves outside the config folder {root}; only files there can be named here "
        "(the command line accepts a local YAML path)",
    )  # fmt: skip


def resolve_scenarios(
    config_dir: str | Path,
    names: Sequence[str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> list[Scenario]:
    """Load scenarios by name (configs/scenarios/<name>.yaml) or path; all of them if none.

    Raises ScenarioError for an unknown name, a bad file or a bad override.
    """
    scenario_dir = Path(config_dir) / "scenarios"
    if not names:
        paths = scenario_paths(config_dir)
        if not paths:
            raise ScenarioError(str(scenario_dir), "", "no scenario files (*.yaml) found")
    else:
        paths = []
        for name in names:
            looks_like_path = name.endswith((".yaml", ".yml")) or "/" in name
            if looks_like_path:
                paths.append(confined(name, config_dir, "--scenario"))
                continue
            if not re.fullmatch(SCENARIO_NAME_PATTERN, name):
                raise ScenarioError(
                    "--scenario", name,
                    "a scenario name must match [a-z0-9_-]{1,64} (it becomes a folder name)",
                )  # fmt: skip
            path = scenario_dir / f"{name}.yaml"
            if not path.exists():
                known = ", ".join(p.stem for p in scenario_paths(config_dir)) or "none"
                raise ScenarioError("--scenario", name, f"unknown scenario; known: {known}")
            paths.append(confined(path, config_dir, "--scenario"))
    if not names:
        paths = [confined(p, config_dir, str(p)) for p in paths]
    root = Path(config_dir)
    scenarios = [
        load_scenario(p, dict(overrides or {}), root=None if _allowed(p) else root) for p in paths
    ]
    seen: set[str] = set()
    for scenario in scenarios:
        if scenario.name in seen:
            raise ScenarioError("--scenario", scenario.name, "scenario given twice")
        seen.add(scenario.name)
    return scenarios


def _allowed(path: Path) -> bool:
    return path.resolve() in _LOCAL_FILES
