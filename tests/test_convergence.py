"""Convergence gate (pipeline/analysis/convergence.py): the monitored statistic, the round rule, the
config fields, and that a gated run equals an ungated run of its final trial count."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.analysis import convergence as conv
from pipeline.analysis.accumulators import BlockSummary, MetricAccumulator, metric_spec
from pipeline.analysis.statistics import summary_rows
from pipeline.compose import (
    GroupResult,
    RunSettings,
    block_groups,
    merge_groups,
    resolve_scenarios,
    run_group,
    run_scenario,
    scenario_tables,
)
from pipeline.spec.evidence import evidence_as_of, load_evidence
from pipeline.spec.scenario import SimulationConfig, load_scenario

AS_OF = dt.date(2026, 11, 29)
CHUNK = 1024
SEED = 11
REPO = Path(__file__).resolve().parent.parent


@functools.cache
def _evidence():  # type: ignore[no-untyped-def]
    return evidence_as_of(load_evidence(REPO / "configs" / "evidence.yaml"), AS_OF)


def _run(n_trials: int) -> RunSettings:
    return RunSettings(as_of=AS_OF, entropy=SEED, n_trials=n_trials, chunk_size=CHUNK,
                       sensitivity_capacity=500)  # fmt: skip


def _gated(names: list[str], n_trials: int, target: float, cap: int) -> tuple[dict, int, float]:  # type: ignore[type-arg]
    """The flow's rounds in plain Python: blocks in order, groups per round, merged."""
    scenarios = resolve_scenarios(REPO / "configs", names)
    run = _run(conv.first_round(n_trials, CHUNK, cap))
    merged: dict[str, GroupResult] = {}
    done = 0
    while True:
        n_blocks = math.ceil(run.n_trials / CHUNK)
        for sc in scenarios:
            for group in block_groups(n_blocks - done, 3):
                part = run_group(sc, run, _evidence(), [done + b for b in group])
                merged[sc.name] = merge_groups(merged[sc.name], part) if sc.name in merged else part
        done = n_blocks
        se = conv.achieved_se({k: v.summary for k, v in merged.items()})
        decision = conv.next_round(run.n_trials, se, target, chunk_size=CHUNK, max_trials=cap)
        if decision.stop:
            return merged, run.n_trials, se
        run = dataclasses.replace(run, n_trials=decision.n_trials)


def _values(result: GroupResult) -> dict[tuple[str, str], float]:
    return {(r.metric, r.statistic): r.value for r in summary_rows(result.summary)}


# --------------------------------------------------------------------------- round rule


def test_first_round_is_whole_blocks_within_the_cap() -> None:
    assert conv.first_round(3000, 1024, 10**6) == 3072
    assert conv.first_round(2048, 1024, 10**6) == 2048
    assert conv.first_round(3000, 1024, 2500) == 2500  # the cap may end on a partial block
    with pytest.raises(ValueError):
        conv.first_round(0, 1024, 10)


def test_stop_when_at_target_or_cap() -> None:
    assert conv.next_round(4096, 0.05, 0.05, chunk_size=1024, max_trials=10**6).stop
    d = conv.next_round(4096, 0.2, 0.05, chunk_size=1024, max_trials=4096)
    assert d.stop and d.n_trials == 4096 and "cap" in d.reason


@pytest.mark.parametrize(
    ("n", "se", "target", "chunk", "cap"),
    [(4096, 0.1, 0.05, 1024, 10**7), (4096, 0.051, 0.05, 1024, 10**7), (10_000, 1.0, 0.01, 4096,
     10**9), (8192, math.inf, 0.05, 1024, 10**7), (4096, 0.2, 0.05, 1000, 9_999)],
)  # fmt: skip
def test_next_round_grows_by_whole_blocks_toward_the_predicted_n(
    n: int, se: float, target: float, chunk: int, cap: int
) -> None:
    d = conv.next_round(n, se, target, chunk_size=chunk, max_trials=cap)
    assert not d.stop
    assert n < d.n_trials <= min(cap, math.ceil(n * conv.MAX_GROWTH / chunk) * chunk)
    assert d.n_trials % chunk == 0 or d.n_trials == cap
    if math.isfinite(se) and d.n_trials < cap:
        predicted = n * (se / target) ** 2  # s.e. ~ 1/sqrt(n)
        assert d.n_trials >= min(predicted, n * conv.MAX_GROWTH)


# --------------------------------------------------------------------------- the statistic


def test_statistic_is_the_published_standard_error() -> None:
    run = _run(4096)
    results = {
        name: run_scenario(sc, run, _evidence())
        for name, sc in ((s.name, s) for s in resolve_scenarios(REPO / "configs",
                                                                ["baseline", "drawn_out"]))
    }  # fmt: skip
    published = []
    for result in results.values():
        rows = summary_rows(result.summary)
        se = {r.statistic: r.mc_standard_error for r in rows if r.metric == conv.GATE_METRIC}
        assert conv.quantile_standard_errors(result.summary) == pytest.approx(
            {q: se[q] for q in conv.GATE_QUANTILES}, rel=0, abs=0
        )
        published += [se[q] for q in conv.GATE_QUANTILES]
    assert conv.achieved_se({k: v.summary for k, v in results.items()}) == max(published)
    assert 0 < max(published) < 5  # percentage points


def _summary_with(values: np.ndarray) -> BlockSummary:
    spec = metric_spec(conv.GATE_METRIC)
    acc = MetricAccumulator.from_values(values, spec)
    return BlockSummary(2026, (2026,), values.size, values.size, {conv.GATE_METRIC: acc}, {})


def test_point_mass_counts_as_converged_and_too_few_trials_do_not() -> None:
    assert conv.quantile_standard_errors(_summary_with(np.full(5000, 7.5))) == dict.fromkeys(
        conv.GATE_QUANTILES, 0.0
    )
    few = conv.quantile_standard_errors(_summary_with(np.linspace(0, 10, conv.MIN_DEFINED - 1)))
    assert all(v == math.inf for v in few.values())
    # Spread beyond the histogram (> 1000%): cannot be measured. A point mass there is exact
    # (counted at the maximum), so its error is 0.
    beyond = conv.quantile_standard_errors(_summary_with(np.linspace(2000.0, 3000.0, 5000)))
    assert all(v == math.inf for v in beyond.values())
    exact = conv.quantile_standard_errors(_summary_with(np.full(5000, 5000.0)))
    assert all(v == 0.0 for v in exact.values())


# --------------------------------------------------------------------------- config


def test_config_fields_and_hash_without_a_gate_is_unchanged() -> None:
    sim = SimulationConfig(target_se=0.02, max_trials=10**6)
    assert (sim.target_se, sim.max_trials) == (0.02, 10**6)
    assert "target_se" not in SimulationConfig().model_dump()  # old config hashes stay valid
    assert "target_se" in sim.model_dump()
    for bad in ({"target_se": 0.0}, {"target_se": -1.0}, {"max_trials": 0},
                {"n_trials": 1000, "max_trials": 999}):  # fmt: skip
        with pytest.raises(ValidationError):
            SimulationConfig(**bad)  # type: ignore[arg-type]
    scenario = load_scenario(REPO / "configs" / "scenarios" / "baseline.yaml",
                             simulation={"target_se": 0.05, "max_trials": 500_000})  # fmt: skip
    assert scenario.simulation.target_se == 0.05


# --------------------------------------------------------------------------- reproducibility


def test_gated_run_equals_ungated_run_of_its_final_size() -> None:
    """Blocks are added in block order in whole blocks: the gate's result is the plain run's."""
    merged, n_final, se = _gated(["baseline", "drawn_out"], 1500, target=0.35, cap=40_000)
    assert 2048 < n_final <= 40_000 and n_final % CHUNK == 0  # several rounds, whole blocks
    assert se <= 0.35
    for name, sc in ((s.name, s) for s in resolve_scenarios(REPO / "configs",
                                                            ["baseline", "drawn_out"])):  # fmt: skip
        plain = run_scenario(sc, _run(n_final), _evidence(), n_groups=2)
        assert plain.summary.n_trials == merged[name].summary.n_trials == n_final
        a, b = _values(plain), _values(merged[name])
        assert a.keys() == b.keys()
        for key, value in a.items():
            if key[1] in ("mean", "sd"):  # Chan-merged moments: equal up to float rounding
                assert b[key] == pytest.approx(value, rel=1e-12, nan_ok=True), key
            else:  # counts, histograms, quantiles, min/max: exactly
                assert (b[key] == value) or (math.isnan(b[key]) and math.isnan(value)), key
        # The bounded sensitivity sample is the same first trials.
        created = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
        ta = scenario_tables(plain, run_id="20261129T000000Z-00000000", created_at=created)
        tb = scenario_tables(merged[name], run_id="20261129T000000Z-00000000", created_at=created)
        assert ta["sensitivity"].equals(tb["sensitivity"])


def test_cap_ends_the_run_even_on_a_partial_block() -> None:
    merged, n_final, se = _gated(["drawn_out"], 1024, target=1e-6, cap=5000)
    assert n_final == 5000 and se > 1e-6
    plain = run_scenario(resolve_scenarios(REPO / "configs", ["drawn_out"])[0], _run(5000),
                         _evidence())  # fmt: skip
    assert (
        _values(plain)[("increase_pct", "p50")]
        == _values(merged["drawn_out"])[("increase_pct", "p50")]
    )


# --------------------------------------------------------------------------- the flow


@pytest.mark.slow
def test_flow_gate_records_target_and_achieved_se(prefect_harness: str, tmp_path: Path) -> None:
    from flows.forecast import forecast
    from pipeline.outputs import io

    result = forecast(
        scenarios=["baseline", "drawn_out"], n_trials=1500, seed=SEED, as_of=AS_OF,
        chunk_size=CHUNK, output_dir=str(tmp_path), target_se=0.35, max_trials=40_000,
    )  # fmt: skip
    _, n_final, se = _gated(["baseline", "drawn_out"], 1500, target=0.35, cap=40_000)
    assert result.n_trials == n_final and result.achieved_se == se
    runs = io.read_dataset(tmp_path, "runs").to_pandas()
    assert list(runs.target_se) == [0.35] and list(runs.achieved_se) == [se]
    assert list(runs.n_trials) == [n_final] and list(runs.n_trials_total) == [2 * n_final]
    summary = io.read_dataset(tmp_path, "summary").to_pandas()
    rows = summary[(summary.metric == conv.GATE_METRIC)
                   & summary.statistic.isin(conv.GATE_QUANTILES)]  # fmt: skip
    assert rows.mc_standard_error.max() == se
    for name in ("baseline", "drawn_out"):
        sc = resolve_scenarios(REPO / "configs", [name])[0]
        plain = _values(run_scenario(sc, _run(n_final), _evidence()))
        mine = rows[rows.scenario == name].set_index("statistic").value
        for q in conv.GATE_QUANTILES:
            assert mine[q] == plain[(conv.GATE_METRIC, q)]
