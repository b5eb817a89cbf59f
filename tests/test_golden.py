"""The published tables are bit-identical to the recorded golden digests (tests/golden.py).

A refactor must leave every digest unchanged; a change of numbers is a deliberate rewrite of
tests/golden_digests.json, explained in its commit.
"""

from __future__ import annotations

import json

import golden
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[str, str]]:
    payload = json.loads(golden.GOLDEN_FILE.read_text())
    if payload["versions"] != golden.versions():
        pytest.skip(
            f"golden digests were recorded with {payload['versions']}, "
            f"this environment has {golden.versions()}: bit-exact values are version-pinned"
        )
    digests: dict[str, dict[str, str]] = payload["digests"]
    return digests


def test_every_case_is_recorded(recorded: dict[str, dict[str, str]]) -> None:
    assert sorted(recorded) == sorted(c.key for c in golden.cases())


@pytest.mark.parametrize("case", list(golden.cases()), ids=lambda c: c.key)
def test_published_tables_unchanged(case: golden.Case, recorded: dict[str, dict[str, str]]) -> None:
    tables = golden.case_tables(case)
    assert sorted(tables) == sorted(recorded[case.key]), "a table appeared or disappeared"
    changed = [
        name for name, t in tables.items() if golden.table_digest(t) != recorded[case.key][name]
    ]
    assert not changed, f"{case.key}: tables changed: {changed}"


def test_digest_sees_a_one_ulp_change() -> None:
    import numpy as np
    import pyarrow as pa

    values = np.array([0.1, 0.2, 0.3])
    base = pa.table({"value": values})
    nudged = pa.table({"value": np.nextafter(values, 1.0)})
    assert golden.table_digest(base) != golden.table_digest(nudged)
    assert golden.table_digest(base) == golden.table_digest(
        pa.Table.from_batches(base.to_batches(max_chunksize=1))
    )
