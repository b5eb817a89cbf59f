"""Evidence and "as of": later facts change nothing; open talks condition the trials."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from pipeline.analysis.statistics import summary_rows
from pipeline.compose import RunSettings, resolve_scenarios, run_scenario
from pipeline.model.conditioning import condition_mask
from pipeline.spec.evidence import Evidence, Fact, evidence_as_of, load_evidence
from pipeline.spec.scenario import ScenarioError

AS_OF = dt.date(2027, 6, 1)
RUN = RunSettings(as_of=AS_OF, entropy=11, n_trials=20_000, chunk_size=4096,
                  sensitivity_capacity=0)  # fmt: skip


def _scenario(repo_root: Path):  # type: ignore[no-untyped-def]
    return resolve_scenarios(repo_root / "configs", ["baseline"])[0]


def _rows(result):  # type: ignore[no-untyped-def]
    return {(r.metric, r.statistic): r for r in summary_rows(result.summary)}


def test_fact_after_as_of_changes_nothing(repo_root: Path) -> None:
    scenario = _scenario(repo_root)
    later = Evidence(facts=[Fact(date=AS_OF + dt.timedelta(days=1), kind="talks_opened",
                                 text="talks open tomorrow")])  # fmt: skip
    state = evidence_as_of(later, AS_OF)
    assert state.facts == () and state.talks_open_on is None
    with_later = run_scenario(scenario, RUN, state)
    without = run_scenario(scenario, RUN, evidence_as_of(Evidence(), AS_OF))
    a, b = _rows(with_later), _rows(without)
    assert a.keys() == b.keys()
    assert all(a[k].value == b[k].value or (np.isnan(a[k].value) and np.isnan(b[k].value))
               for k in a)  # fmt: skip


def test_talks_open_for_k_months_shift_months_above_k(repo_root: Path) -> None:
    scenario = _scenario(repo_root)
    opened = dt.date(2026, 11, 1)
    state = evidence_as_of(
        Evidence(facts=[Fact(date=opened, kind="talks_opened", text="round 1")]), AS_OF
    )
    k = state.months_open_without_agreement
    assert 6.9 < k < 7.1
    result = run_scenario(scenario, RUN, state)
    rows = _rows(result)
    assert rows[("months_to_settlement", "min")].value > k
    assert rows[("months_to_settlement", "p01")].value > k
    # Conditioning rejects the trials that would have settled already; it reports how many remain.
    assert 0 < result.summary.n_effective < result.summary.n_trials
    assert rows[("talks_start_month", "p50")].value == pytest.approx(10.0)  # November 2026
    unconditioned = run_scenario(scenario, RUN, evidence_as_of(Evidence(), AS_OF))
    assert unconditioned.summary.n_effective == unconditioned.summary.n_trials


def test_condition_mask_is_none_without_open_talks() -> None:
    state = evidence_as_of(Evidence(facts=[Fact(date=dt.date(2025, 7, 8), kind="statement",
                                                text="USD 10bn")]), AS_OF)  # fmt: skip
    assert condition_mask(None, state) is None  # type: ignore[arg-type]


def test_an_agreement_ends_conditioning() -> None:
    facts = [
        Fact(date=dt.date(2026, 11, 1), kind="talks_opened", text="r1"),
        Fact(date=dt.date(2027, 3, 1), kind="agreement", text="deal", increase_pct=9.0),
    ]
    assert evidence_as_of(Evidence(facts=facts), AS_OF).months_open_without_agreement == 0


def test_bad_evidence_file_names_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "evidence.yaml"
    path.write_text("facts:\n  - date: 2026-01-01\n    kind: rumour\n    text: x\n")
    with pytest.raises(ScenarioError) as info:
        load_evidence(path)
    assert str(path) in str(info.value) and "facts.0.kind" in str(info.value)


def test_shipped_evidence_loads(repo_root: Path) -> None:
    state = evidence_as_of(load_evidence(repo_root / "configs" / "evidence.yaml"), AS_OF)
    assert state.facts and state.talks_open_on is None
