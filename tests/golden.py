"""Golden digests of the published tables: "same numbers" checked, not assumed.

For each default scenario, with every model mechanism on and with each one switched off in
turn (plus two samplers and a later as-of date), the run's tables (summary, histograms,
sensitivity, inputs, trials sample) are built on the plain path at a fixed seed, trial count,
chunk size and as-of date, and reduced to one sha256 per table. ``tests/test_golden.py``
compares them with ``tests/golden_digests.json``.

The digests are bit-exact, so they are pinned to the numpy, scipy and pyarrow versions recorded
in the file (numpy/scipy streams and special functions change across versions); the test is
skipped with a message under other versions. Rewrite the file only when a change of numbers
is intended, and say so in the commit::

    .venv/bin/python -m tests.golden --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pyarrow as pa

REPO_ROOT = Path(__file__).resolve().parent.parent
GOLDEN_FILE = Path(__file__).resolve().parent / "golden_digests.json"
CONFIG_DIR = REPO_ROOT / "configs"
SCENARIOS = (
    "baseline",
    "drawn_out",
    "fiscal_stress",
    "hardline",
    "package_deal",
    "status_quo_holds",
)
MECHANISMS = (
    "reopening",
    "package_deal",
    "troop_lever",
    "administration_change",
    "deadline",
    "lapse_furlough",
    "cuts",
    "stopgap",
    "renegotiation",
    "expiry_pressure",
    "successor_either_way",
)
SEED = 20261207
N_TRIALS = 3000
CHUNK_SIZE = 1000
TRIALS_SAMPLE = 40
AS_OF = dt.date(2026, 9, 15)
CREATED_AT = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
RUN_ID = "golden"
PINNED_PACKAGES = ("numpy", "scipy", "pyarrow")


@dataclass(frozen=True)
class Case:
    """One golden run: a scenario with overrides at an as-of date."""

    key: str
    scenario: str
    overrides: tuple[tuple[str, Any], ...] = ()
    as_of: dt.date = AS_OF


def cases() -> Iterator[Case]:
    """Every golden case (ordered, stable keys)."""
    for scenario in SCENARIOS:
        yield Case(f"{scenario}/all_on", scenario)
        for mechanism in MECHANISMS:
            yield Case(
                f"{scenario}/{mechanism}_off",
                scenario,
                ((f"model.mechanisms.{mechanism}", False),),
            )
    for sampler in ("lhs", "sobol"):
        yield Case(f"baseline/sampler_{sampler}", "baseline", (("simulation.sampler", sampler),))
    yield Case("baseline/as_of_2028-06-01", "baseline", as_of=dt.date(2028, 6, 1))


def table_digest(table: pa.Table) -> str:
    """sha256 over column names, types and values (exact float reprs), independent of chunking."""
    digest = hashlib.sha256()
    for field, column in zip(table.schema, table.columns, strict=True):
        digest.update(f"{field.name}:{field.type}\n".encode())
        digest.update(repr(column.to_pylist()).encode())
    return digest.hexdigest()


def case_tables(case: Case) -> dict[str, pa.Table]:
    """The tables one golden case publishes (plain path; no Prefect)."""
    from pipeline.compose import (
        RunSettings,
        plan_for,
        resolve_scenarios,
        run_scenario,
        scenario_tables,
    )
    from pipeline.model.seeding import root_entropy
    from pipeline.outputs.tables.inputs import inputs_table
    from pipeline.spec.evidence import evidence_as_of, load_evidence

    (scenario,) = resolve_scenarios(CONFIG_DIR, [case.scenario], dict(case.overrides))
    evidence = evidence_as_of(load_evidence(CONFIG_DIR / "evidence.yaml"), case.as_of)
    run = RunSettings(
        as_of=case.as_of,
        entropy=root_entropy(SEED),
        n_trials=N_TRIALS,
        chunk_size=CHUNK_SIZE,
        trials_sample=TRIALS_SAMPLE,
    )
    result = run_scenario(scenario, run, evidence, n_groups=2)
    tables = scenario_tables(result, run_id=RUN_ID, created_at=CREATED_AT)
    tables["inputs"] = inputs_table(
        scenario, plan_for(scenario, run, evidence).marginals, run_id=RUN_ID, created_at=CREATED_AT
    )
    return tables


def compute() -> dict[str, dict[str, str]]:
    """Digest of every table of every case."""
    return {
        case.key: {name: table_digest(t) for name, t in sorted(case_tables(case).items())}
        for case in cases()
    }


def versions() -> dict[str, str]:
    return {name: version(name) for name in PINNED_PACKAGES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {GOLDEN_FILE.name}")
    args = parser.parse_args()
    digests = compute()
    if args.write:
        payload = {"versions": versions(), "digests": digests}
        GOLDEN_FILE.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(digests)} cases to {GOLDEN_FILE}")
    else:
        golden = json.loads(GOLDEN_FILE.read_text())["digests"]
        bad = [k for k in digests if digests[k] != golden.get(k)]
        print(f"{len(digests) - len(bad)}/{len(digests)} cases identical; differ: {bad}")


if __name__ == "__main__":
    main()
