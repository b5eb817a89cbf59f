"""Tiny published forecasts for the drift and report tests, made in plain Python (no Prefect).

:func:`publish_forecast` does what the forecast flow does for a run, in the same order:
simulate each scenario, build its tables, add ``drift`` (against the previous published run,
before publishing) and ``inputs``, then publish everything atomically with ``io.publish_run``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from pipeline.compose import (
    RunSettings,
    config_hash,
    plan_for,
    resolve_scenarios,
    run_scenario,
    scenario_tables,
    sobol_table,
)
from pipeline.outputs import io
from pipeline.outputs.drift import Provenance, drift_for
from pipeline.outputs.records import RunRecord, scenario_hashes_json
from pipeline.outputs.tables.inputs import inputs_table
from pipeline.spec.evidence import evidence_as_of, load_evidence

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
SEED = 20260301
N_TRIALS = 3000
CHUNK = 1500

_counter = itertools.count()


def publish_forecast(
    out: Path,
    scenarios: Sequence[str],
    *,
    as_of: dt.date,
    seed: int = SEED,
    n_trials: int = N_TRIALS,
    overrides: Mapping[str, object] | None = None,
    with_drift: bool = True,
    with_inputs: bool = True,
    with_sobol: bool = True,
    what_if: bool = False,
    trials_sample: int = 0,
) -> tuple[str, dict[str, dict[str, pa.Table]]]:
    """Run and publish ``scenarios`` as of ``as_of``; returns (run_id, tables per scenario)."""
    chosen = resolve_scenarios(CONFIG_DIR, list(scenarios), dict(overrides or {}))
    evidence = evidence_as_of(load_evidence(CONFIG_DIR / "evidence.yaml"), as_of)
    run = RunSettings(
        as_of=as_of, entropy=seed, n_trials=n_trials, chunk_size=CHUNK,
        sensitivity_capacity=n_trials, trials_sample=trials_sample,
    )  # fmt: skip
    # Distinct, increasing run ids and times, as real runs have.
    k = next(_counter)
    started = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC) + dt.timedelta(hours=k)
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{k:08x}"
    created = started + dt.timedelta(minutes=1)
    tables: dict[str, dict[str, pa.Table]] = {}
    effective = 0
    for scenario in chosen:
        result = run_scenario(scenario, run, evidence)
        effective += result.summary.n_effective
        t = scenario_tables(result, run_id=run_id, created_at=created)
        if with_drift:
            made_of = Provenance(as_of, scenario.config_hash(), evidence.facts_hash(), "0.1.0",
                                 "0" * 40)  # fmt: skip
            t["drift"] = drift_for(out, scenario.name, t["summary"], run_id=run_id, as_of=as_of,
                                   created_at=created, provenance=made_of)  # fmt: skip
        if with_inputs:
            plan = plan_for(scenario, run, evidence)
            t["inputs"] = inputs_table(scenario, plan.marginals, run_id=run_id, created_at=created)
        if with_sobol:  # as the flow does: a small design of its own
            rows = sobol_table(scenario, run, evidence, run_id=run_id, created_at=created,
                               n_base=2**7)  # fmt: skip
            t["sensitivity"] = pa.concat_tables([t["sensitivity"], rows])
        tables[scenario.name] = t
    record = RunRecord(
        run_id=run_id, as_of_date=as_of, flow_name="forecast", started_at=started,
        finished_at=created, status="completed", n_trials=n_trials,
        n_trials_effective=effective, seed_entropy=seed, chunk_size=CHUNK,
        sampler=chosen[0].simulation.sampler, scenarios=tuple(s.name for s in chosen),
        config_hash=config_hash(chosen), package_version="0.1.0", git_commit="0" * 40,
        config_hashes=scenario_hashes_json({s.name: s.config_hash() for s in chosen}),
        evidence_hash=evidence.facts_hash(),
        run_kind="what-if" if what_if else "official",
        overrides=json.dumps({"set": dict(overrides or {})}, sort_keys=True) if what_if else None,
    )  # fmt: skip
    io.publish_run(out, record, tables)
    return run_id, tables
