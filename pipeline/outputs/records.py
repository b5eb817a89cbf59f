"""Run provenance in the output contract: the ``runs`` record (:class:`RunRecord`), the checks
on scenario names, run ids and UTC timestamps, and the Parquet key-value metadata keys that
``pipeline.outputs.io`` writes into every file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final, Literal

import pyarrow as pa

from pipeline.outputs.schema import OFFICIAL, RUNS_SCHEMA, SCHEMA_VERSION, WHAT_IF

#: Scenario names become folder names (outputs-contract.md).
SCENARIO_NAME_RE: Final[re.Pattern[str]] = re.compile(r"[a-z0-9_-]{1,64}")
#: Run ids become file names; a uuid4 hex or ``new_run_id()`` from io fits.
RUN_ID_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]{1,64}")

#: Parquet key-value metadata keys written into every file by ``pipeline.outputs.io``.
META_SCHEMA_VERSION: Final[bytes] = b"sma_forecast.schema_version"
META_RUN_ID: Final[bytes] = b"sma_forecast.run_id"
META_SEED_ENTROPY: Final[bytes] = b"sma_forecast.seed_entropy"
META_CONFIG_HASH: Final[bytes] = b"sma_forecast.config_hash"

RunStatus = Literal["completed", "failed"]


@dataclass(frozen=True)
class RunRecord:
    """One row of the ``runs`` dataset: provenance of one run attempt.

    ``as_of_date`` is the partition value (a folder name), not a stored column.
    ``n_trials`` is per scenario (the ``n_trials_total`` column is it times the scenarios);
    ``n_trials_effective`` is summed over scenarios (per scenario: the ``n_trials`` of that
    scenario's ``prob`` rows in ``summary``).
    """

    run_id: str
    as_of_date: dt.date
    flow_name: str
    started_at: dt.datetime
    finished_at: dt.datetime
    status: RunStatus
    n_trials: int
    n_trials_effective: int | None
    seed_entropy: int
    chunk_size: int
    sampler: str
    scenarios: tuple[str, ...]
    config_hash: str
    package_version: str
    git_commit: str | None = None
    prefect_flow_run_id: str | None = None
    target_se: float | None = None
    achieved_se: float | None = None
    created_at: dt.datetime | None = None
    """Defaults to ``finished_at``."""
    run_kind: str = OFFICIAL
    """``official`` or ``what-if`` (decided by ``RunRequest.run_kind``)."""
    overrides: str | None = None
    """What-if runs: JSON text of their overrides and files (``RunRequest.overrides_json``)."""
    config_hashes: str | None = None
    """JSON text: scenario -> ``Scenario.config_hash()`` (:func:`scenario_hashes_json`)."""
    evidence_hash: str | None = None
    """``EvidenceState.facts_hash()`` of the evidence as of the date."""

    def __post_init__(self) -> None:
        if not RUN_ID_RE.fullmatch(self.run_id):
            raise ValueError(f"run_id {self.run_id!r} must match {RUN_ID_RE.pattern}")
        if self.status not in ("completed", "failed"):
            raise ValueError(f"status must be 'completed' or 'failed', not {self.status!r}")
        for name in self.scenarios:
            check_scenario_name(name)
        if not re.fullmatch(r"[0-9a-f]{64}", self.config_hash):
            raise ValueError("config_hash must be a lowercase sha256 hex digest")
        if self.run_kind not in (OFFICIAL, WHAT_IF):
            raise ValueError(f"run_kind must be {OFFICIAL!r} or {WHAT_IF!r}, not {self.run_kind!r}")
        if (self.run_kind == WHAT_IF) != (self.overrides is not None):
            raise ValueError("a what-if run records its overrides; an official run has none")
        if not 0 <= self.seed_entropy:
            raise ValueError("seed_entropy must be a non-negative integer")
        for name in ("started_at", "finished_at", "created_at"):
            value = getattr(self, name)
            if value is not None:
                require_utc(value, name)

    @property
    def is_official(self) -> bool:
        return self.run_kind == OFFICIAL

    def to_table(self) -> pa.Table:
        """The record as a one-row table with :data:`RUNS_SCHEMA`."""
        row: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        del row["as_of_date"]
        row["seed_entropy"] = str(self.seed_entropy)
        row["n_trials_total"] = self.n_trials * len(self.scenarios)
        row["scenarios"] = ",".join(self.scenarios)
        row["created_at"] = self.created_at or self.finished_at
        row["schema_version"] = SCHEMA_VERSION
        return pa.Table.from_pylist([row], schema=RUNS_SCHEMA)


def scenario_hashes_json(hashes: Mapping[str, str]) -> str:
    """``runs.config_hashes``: scenario -> configuration hash as compact JSON, sorted by name."""
    return json.dumps(dict(sorted(hashes.items())), separators=(",", ":"))


def check_scenario_name(name: str) -> str:
    """Return ``name`` if it is a valid scenario (folder) name, else raise ValueError."""
    if not SCENARIO_NAME_RE.fullmatch(name):
        raise ValueError(f"scenario name {name!r} must match {SCENARIO_NAME_RE.pattern}")
    return name


def require_utc(value: dt.datetime, name: str) -> dt.datetime:
    """Return ``value`` if it is timezone-aware UTC, else raise ValueError."""
    if value.tzinfo is None or value.utcoffset() != dt.timedelta(0):
        raise ValueError(f"{name} must be a timezone-aware UTC datetime, got {value!r}")
    return value
