"""Tests of pipeline.backtest.priors: the prior builder (hand-computed), the dated provenance
check (a prior whose evidence postdates a case is refused) and base.yaml's built inputs."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest
import yaml

import pipeline.backtest as bt
from pipeline.backtest.cases import load_cases_and_priors
from pipeline.backtest.priors import NegotiationRecord, records_known_by
from pipeline.spec.catalog import INPUT_NAMES
from pipeline.spec.distributions import DiscreteSpec, LogNormalSpec, TriangularSpec
from pipeline.spec.history import load_history
from pipeline.spec.scenario import ScenarioError, load_scenario
from tests.test_backtest import CONFIGS, small_config

Z95 = 1.6448536269514722


def record(
    n: int, ask: float | None, offer: float | None, term: int, trump: bool = False
) -> NegotiationRecord:
    return NegotiationRecord(n, date(2000 + n, 1, 1), ask, offer, term, trump)


def no_history() -> dict[str, object]:
    _, _, sources = load_cases_and_priors(CONFIGS)
    return {n: d.spec for n, d in sources.no_history.items()}


def test_records_parsed_from_data() -> None:
    recs = bt.negotiation_records(load_history())
    assert (recs[9].us_ask_pct, recs[9].korea_offer_pct, recs[9].term_years) == (15.0, 3.5, 5)
    assert (recs[10].us_ask_pct, recs[10].korea_offer_pct, recs[10].trump_at_agreement) == (
        41.0,
        4.1,
        True,
    )
    assert (recs[11].us_ask_pct, recs[11].korea_offer_pct, recs[11].trump_at_agreement) == (
        470.0,
        10.0,
        False,  # agreed under Biden
    )
    assert recs[7].us_ask_pct is None and recs[6].korea_offer_pct is None
    # The 9th SMA's figures were public only with its agreement (January 2014).
    assert [r.sma_number for r in records_known_by(recs, date(2013, 7, 2), 9)] == list(range(1, 9))


def test_builder_hand_computed() -> None:
    known = [
        record(1, None, None, 3),
        record(2, 15.0, 3.5, 5),
        record(3, 41.0, 4.1, 1, trump=True),
        record(4, 470.0, 10.0, 6),  # a headline figure: not a working-level ask
    ]
    built = bt.build_priors(known, no_history())  # type: ignore[arg-type]
    ask = built["us_working_ask_increase_pct"]
    assert isinstance(ask, LogNormalSpec)
    mu, sd = (math.log(15) + math.log(41)) / 2, abs(math.log(41 / 15)) / math.sqrt(2)
    assert ask.p05 == pytest.approx(math.exp(mu - Z95 * sd), abs=0.01)
    assert ask.p95 == pytest.approx(math.exp(mu + Z95 * sd), abs=0.01)
    offer = built["korea_opening_offer_increase_pct"]
    assert isinstance(offer, TriangularSpec)
    sd_offer = 3.592121  # sample sd of 3.5, 4.1, 10
    assert (offer.min, offer.mode, offer.max) == (
        round(3.5 - sd_offer, 2),
        4.1,
        round(10 + sd_offer, 2),
    )
    normal, pressure = built["term_years_normal"], built["term_years_under_pressure"]
    assert isinstance(normal, DiscreteSpec) and isinstance(pressure, DiscreteSpec)
    assert normal.values == [1, 2, 3, 4, 5, 6]
    # Pseudo-count 0.5 each; 3, 5, 6 once each (the Trump-era 1-year term is not "normal").
    assert normal.probs == pytest.approx(
        [0.5 / 6, 0.5 / 6, 1.5 / 6, 0.5 / 6, 1.5 / 6, 1.5 / 6], abs=1e-4
    )
    # Under pressure: the Trump-era term counts fully, the others half.
    w = [1.5, 0.5, 1.0, 0.5, 1.0, 1.0]
    assert pressure.probs == pytest.approx([x / sum(w) for x in w], abs=1e-4)


def test_builder_falls_back_to_no_history_and_single_values_keep_a_spread() -> None:
    fallback = no_history()
    built = bt.build_priors([record(1, None, None, 3)], fallback)  # type: ignore[arg-type]
    assert built["us_working_ask_increase_pct"] is fallback["us_working_ask_increase_pct"]
    assert built["korea_opening_offer_increase_pct"] is fallback["korea_opening_offer_increase_pct"]
    one = bt.build_priors([record(1, 20.0, 4.0, 3)], fallback)  # type: ignore[arg-type]
    ask, offer = one["us_working_ask_increase_pct"], one["korea_opening_offer_increase_pct"]
    assert isinstance(ask, LogNormalSpec) and isinstance(offer, TriangularSpec)
    assert ask.p05 == pytest.approx(20 * math.exp(-Z95 * 0.5), abs=0.01)
    assert (offer.min, offer.mode, offer.max) == (2.0, 4.0, 6.0)


def test_every_input_of_every_case_has_an_out_of_sample_source() -> None:
    forecasts = bt.backtest_forecasts(CONFIGS, n_trials=200, n_tune_trials=100, seed=1)
    for fc in forecasts.forecasts:
        origin = fc.case_priors.origin
        assert set(origin) == set(INPUT_NAMES)
        for name, where in origin.items():
            # base.yaml's prior only where its evidence predates the case.
            if where.startswith("base.yaml"):
                evidence = date.fromisoformat(where.split("evidence ")[1].rstrip(")"))
                assert evidence <= fc.case.as_of, (fc.case.name, name)
    by_case = {fc.case.name: fc.case_priors.origin for fc in forecasts.forecasts}
    assert by_case["sma07"]["us_working_ask_increase_pct"].startswith("no history")
    assert (
        by_case["sma10"]["us_working_ask_increase_pct"]
        == "built from SMA 1, 2, 3, 4, 5, 6, 7, 8, 9"
    )
    assert by_case["sma12"]["stopgap_prob_past_expiry"].startswith("base.yaml")
    assert by_case["sma11"]["stopgap_prob_past_expiry"].startswith("before")


def _edit_priors(root: Path, edit: dict[str, object]) -> None:
    path = root / "backtest" / bt.CASES_FILE
    spec = yaml.safe_load(path.read_text())
    spec["priors"]["provenance"].update(edit)
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_a_prior_whose_evidence_postdates_a_case_is_refused(tmp_path: Path) -> None:
    root = small_config(tmp_path)
    # Evidence of 2021 and no earlier prior: the 7th-11th cases may not use base.yaml's value.
    _edit_priors(
        root, {"furlough_prob_given_lapse": {"evidence_date": "2020-04-01", "evidence": "x"}}
    )
    with pytest.raises(ScenarioError, match="furlough_prob_given_lapse.*2020-04-01.*2006-05-01"):
        bt.backtest_forecasts(root, n_trials=100, n_tune_trials=50, seed=1)
    # An earlier prior whose own evidence postdates the first case is refused too.
    early = {"spec": {"dist": "uniform", "low": 0.0, "high": 1.0}, "evidence_date": "2007-01-01",
             "evidence": "x"}  # fmt: skip
    _edit_priors(root, {"furlough_prob_given_lapse": {
        "evidence_date": "2020-04-01", "evidence": "x", "before": early}})  # fmt: skip
    with pytest.raises(ScenarioError, match="furlough_prob_given_lapse"):
        bt.backtest_forecasts(root, n_trials=100, n_tune_trials=50, seed=1)


def test_every_input_needs_a_source(tmp_path: Path) -> None:
    root = small_config(tmp_path)
    path = root / "backtest" / bt.CASES_FILE
    spec = yaml.safe_load(path.read_text())
    del spec["priors"]["provenance"]["korea_cpi_pct"]
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ScenarioError, match=r"no source for input\(s\) \['korea_cpi_pct'\]"):
        bt.load_cases(root)


def test_base_yaml_holds_the_built_priors() -> None:
    """configs/base.yaml's built inputs are the builder's priors from all of data/."""
    base = load_scenario(CONFIGS / "base.yaml")
    built = bt.built_defaults(CONFIGS)
    assert set(built) == set(bt.BUILT_INPUTS)
    for name, spec in built.items():
        assert base.inputs[name] == spec, name
