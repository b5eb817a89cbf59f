"""Tests of pipeline.backtest: case files, realized outcomes, baselines, forward-chained tuning
(a case's forecast never uses its own or a later outcome) and the scores table."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

import pipeline.backtest as bt
from pipeline.analysis import scoring
from pipeline.backtest.tuning import _tuning_set
from pipeline.model.settings import month_index
from pipeline.outputs.schema import BACKTEST_SCHEMA
from pipeline.outputs.tables.backtest import ROW_COLUMNS, build_backtest_table
from pipeline.spec.history import DATA_DIR, load_history
from pipeline.spec.scenario import ScenarioError

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
CREATED = dt.datetime(2026, 11, 29, 3, 0, tzinfo=dt.UTC)


def small_config(tmp_path: Path) -> Path:
    """A copy of configs/ (base + backtest) with a 2 x 2 tuning grid, for fast tests."""
    root = tmp_path / "configs"
    (root / "backtest").mkdir(parents=True)
    # The host's data files are named relative to base.yaml: name the repository's.
    base = (CONFIGS / "base.yaml").read_text().replace("../data/", f"{CONFIGS.parent / 'data'}/")
    (root / "base.yaml").write_text(base)
    for path in (CONFIGS / "backtest").glob("*.yaml"):
        shutil.copy(path, root / "backtest" / path.name)
    cases_path = root / "backtest" / bt.CASES_FILE
    spec = yaml.safe_load(cases_path.read_text())
    knobs = spec["tuning"]["knobs"]
    spec["tuning"]["knobs"] = {
        "korea_reservation_increase_pct": knobs["korea_reservation_increase_pct"][:2],
        "negotiation_length_months": knobs["negotiation_length_months"][1:3],
    }
    spec["tuning"]["untuned"] = {k: spec["tuning"]["untuned"][k] for k in spec["tuning"]["knobs"]}
    # The inputs no longer tuned need a provenance (base.yaml's value; fine for these tests).
    for name in ("us_reservation_share_of_ask", "headline_anchor_pull"):
        spec["priors"]["provenance"][name] = {"evidence_date": "2006-01-01", "evidence": "test"}
    cases_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def copy_data(tmp_path: Path) -> Path:
    out = tmp_path / "data"
    shutil.copytree(DATA_DIR, out)
    return out


def edit_csv(path: Path, key: str, key_value: str, changes: dict[str, str]) -> None:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    hits = [r for r in rows if r[key] == key_value]
    assert len(hits) == 1
    hits[0].update(changes)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def all_priors(fc: bt.CaseForecast) -> dict[str, object]:
    """Every input's spec the model used for a case: tuned, built or dated, else the scenario's."""
    return {
        n: fc.model_priors.get(n, fc.case_priors.specs.get(n, spec))
        for n, spec in fc.case.scenario.inputs.items()
    }


def change_outcome(data_dir: Path, sma: int, first_year: int) -> None:
    """Rewrite one SMA's outcome in both CSV files: first-year increase, months, term, level."""
    edit_csv(
        data_dir / "sma_negotiations.csv",
        "sma_number",
        str(sma),
        {
            "outcome_first_year_pct": "31.0",
            "months_start_to_agreement": "2.5",
            "duration_years": "9",
            # What the prior builder reads: asks, offer, who was in office.
            "us_initial_ask_pct_over_prior_year": "60",
            "korea_initial_offer": "KRW 1tn (+7.0%)",
            "us_president_at_agreement": "Trump",
        },
    )
    edit_csv(
        data_dir / "sma_contributions.csv",
        "year",
        str(first_year),
        {"contribution_krw_bn": "1500.0"},
    )


# --------------------------------------------------------------------------- parsing


def test_parse_helpers() -> None:
    assert bt.parse_date("2008-12 (day not found)", latest=True) == date(2008, 12, 31)
    assert bt.parse_date("2008-12 (day not found)", latest=False) == date(2008, 12, 1)
    assert bt.parse_date("2019-02-10 (initialed)", latest=True) == date(2019, 2, 10)
    assert bt.parse_date("not found (1999)", latest=True) == date(1999, 12, 31)
    assert bt.parse_date("not found", latest=True) is None
    assert bt.parse_number("~7") == 7.0
    assert bt.parse_number("6.8 (USD basis, White Paper)") == 6.8
    assert bt.parse_number("-15.4") == -15.4
    assert bt.parse_number("n/a (first SMA)") is None
    assert bt.parse_first_year_pct("0 (2020) / 13.9 (2021)") == 13.9
    assert bt.parse_first_year_pct("8.3") == 8.3


def test_realized_outcomes_from_data() -> None:
    real = bt.realized_outcomes(load_history())
    expected = {  # sma: (increase %, months, term, lapse), from data/sma_negotiations.csv
        7: (6.6, 7.0, 2.0, False),
        8: (2.5, 5.0, 5.0, False),  # agreed December 2008, before the 7th expired
        9: (5.8, 6.3, 5.0, True),  # 12 days after expiry
        10: (8.2, 11.1, 1.0, True),
        11: (13.9, 17.4, 6.0, True),  # 2021 increase, the year the agreement set
        12: (8.3, 5.4, 5.0, False),
    }
    for sma, (inc, months, term, lapse) in expected.items():
        r = real[sma]
        assert (r.increase_pct, r.months_to_settlement, r.term_years, r.lapse) == (
            inc,
            months,
            term,
            lapse,
        )
    assert real[11].known_from == date(2021, 3, 7)
    assert real[8].known_from == date(2008, 12, 31)
    # Older SMAs: first-year increases and lapses as far as the data go.
    assert [real[n].increase_pct for n in range(1, 7)] == [None, 18.2, 10.0, -15.4, 6.8, -8.9]
    assert [real[n].lapse for n in range(1, 7)] == [False, False, False, None, True, True]
    assert [real[n].months_to_settlement for n in range(1, 7)] == [None] * 6


def test_case_files_match_the_data_and_the_calendar() -> None:
    cases, grid = bt.load_cases(CONFIGS)
    real = bt.realized_outcomes(load_history())
    rows = {int(r["sma_number"]): r for r in load_history().negotiations}
    assert [c.sma_number for c in cases] == [7, 8, 9, 10, 11, 12]
    for case in cases:
        m = case.scenario.model
        start = real[case.sma_number].talks_start
        assert start is not None
        assert (case.talks_start.year, case.talks_start.month) == (start.year, start.month)
        assert case.as_of <= case.talks_start
        # The calendar starts in the year talks open; the agreement in force is the previous SMA.
        assert m.calendar_base_year == case.talks_start.year
        previous_end = int(rows[case.sma_number - 1]["years_covered"][-4:])
        assert case.scenario.host.expiry_fiscal_year == previous_end
        # Regular successor talks open exactly at the known start (so reopened is false).
        lead = case.scenario.inputs["successor_talks_lead_months"]
        expiry_month = (case.scenario.host.expiry_fiscal_year - m.calendar_base_year + 1) * 12
        assert lead.value == expiry_month - month_index(case.talks_start, m.calendar_base_year)
        # No tuned input is set by a case file, and no package channel existed.
        assert not case.own_inputs & set(grid.inputs)
        assert not m.mechanisms.package_deal


def test_load_cases_rejects_leaks_and_tuned_inputs(tmp_path: Path) -> None:
    root = small_config(tmp_path)
    cases_path = root / "backtest" / bt.CASES_FILE
    spec = yaml.safe_load(cases_path.read_text())
    spec["cases"][0]["facts"].append({"date": "2006-12-06", "text": "the agreement"})
    cases_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(ScenarioError, match="after as_of"):
        bt.load_cases(root)
    spec["cases"][0]["facts"].pop()
    cases_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    scenario = root / "backtest" / "sma07.yaml"
    scenario.write_text(
        scenario.read_text()
        + "  negotiation_length_months: {dist: pert, min: 2.0, mode: 6.0, max: 9.0}\n"
    )
    with pytest.raises(ScenarioError, match="tuned or built input"):
        bt.load_cases(root)


# --------------------------------------------------------------------------- baselines


def test_baselines_use_only_what_was_known() -> None:
    real = bt.realized_outcomes(load_history())
    known = bt.known_by(real, date(2013, 7, 2), 9)  # the 9th SMA's talks
    assert [r.sma_number for r in known] == [1, 2, 3, 4, 5, 6, 7, 8]
    samples = bt.baseline_samples(known)
    increases = [18.2, 10.0, -15.4, 6.8, -8.9, 6.6, 2.5]
    assert samples["historical"]["increase_pct"].tolist() == increases
    assert samples["historical"]["months_to_settlement"].tolist() == [7.0, 5.0]
    assert samples["historical"]["lapse"].tolist() == [0, 0, 0, 1, 1, 0, 0]
    prev = samples["previous_repeated"]["increase_pct"]
    assert prev.size == bt.BASELINE_GRID_SIZE
    assert np.median(prev) == pytest.approx(2.5, abs=1e-9)  # the 8th SMA's +2.5%
    assert np.std(prev) == pytest.approx(np.std(increases, ddof=1), rel=2e-3)
    # Nothing is known for months before the 7th SMA: that baseline is left out.
    first = bt.baseline_samples(bt.known_by(real, date(2006, 5, 1), 7))
    assert "months_to_settlement" not in first["historical"]
    # An agreement reached after the as-of date is not known.
    assert [r.sma_number for r in bt.known_by(real, date(2021, 3, 6), 12)][-1] == 10


# --------------------------------------------------------------------------- forward chaining


def test_tuning_uses_only_earlier_cases() -> None:
    cases, _ = bt.load_cases(CONFIGS)
    real = bt.realized_outcomes(load_history())
    sets = {c.sma_number: [o.sma_number for o in _tuning_set(c, cases, real)] for c in cases}
    assert sets == {
        7: [],
        8: [7],
        9: [7, 8],
        10: [7, 8, 9],
        11: [7, 8, 9, 10],
        12: [7, 8, 9, 10, 11],
    }


@pytest.mark.parametrize(("sma", "first_year"), [(10, 2019), (8, 2009)])
def test_changing_a_case_outcome_leaves_its_forecast_unchanged(
    tmp_path: Path, sma: int, first_year: int
) -> None:
    config = small_config(tmp_path)
    kwargs = {"n_trials": 1500, "n_tune_trials": 600, "seed": 42}
    before = bt.backtest_forecasts(config, **kwargs)
    data = copy_data(tmp_path)
    change_outcome(data, sma, first_year)
    after = bt.backtest_forecasts(config, data_dir=data, **kwargs)
    assert bt.realized_outcomes(load_history(data))[sma].increase_pct == 31.0

    changed_case = False
    for b, a in zip(before.forecasts, after.forecasts, strict=True):
        assert b.case.name == a.case.name
        if b.case.sma_number <= sma:
            # Its own (and every earlier) forecast is identical: samples and every input's prior.
            assert b.model_priors == a.model_priors
            assert all_priors(b) == all_priors(a)
            assert b.case_priors.origin == a.case_priors.origin
            for forecaster, by_target in b.samples.items():
                for target, x in by_target.items():
                    np.testing.assert_array_equal(x, a.samples[forecaster][target])
        else:
            assert sma in a.tuned_on and sma in a.history_used
            # The builder sees the changed ask, offer and term (not vacuous for the priors).
            assert all_priors(b) != all_priors(a)
            changed_case |= any(
                not np.array_equal(x, a.samples[f][t], equal_nan=True)
                for f, by_target in b.samples.items()
                for t, x in by_target.items()
            )
    # Not vacuous: the changed outcome does reach later cases (baselines, tuning losses).
    assert changed_case
    col = before.tuning.cases.index(f"sma{sma:02d}")
    assert not np.allclose(before.tuning.loss[:, col], after.tuning.loss[:, col])


def test_the_last_case_outcome_reaches_no_forecast(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    kwargs = {"n_trials": 800, "n_tune_trials": 400, "seed": 3}
    before = bt.backtest_forecasts(config, **kwargs)
    data = copy_data(tmp_path)
    change_outcome(data, 12, 2026)
    after = bt.backtest_forecasts(config, data_dir=data, **kwargs)
    for b, a in zip(before.forecasts, after.forecasts, strict=True):
        assert all_priors(b) == all_priors(a)
        for forecaster, by_target in b.samples.items():
            for target, x in by_target.items():
                np.testing.assert_array_equal(x, a.samples[forecaster][target])


# --------------------------------------------------------------------------- the table


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    config = small_config(tmp_path_factory.mktemp("bt"))
    return bt.run_backtest(
        config, n_trials=3000, n_tune_trials=600, seed=7, run_id="test-run", created_at=CREATED
    )


def test_run_backtest_table_contract(scores: pa.Table) -> None:
    assert scores.schema.equals(BACKTEST_SCHEMA)
    df = scores.to_pandas()
    assert set(df["run_id"]) == {"test-run"}
    assert not df.duplicated(["case", "target", "forecaster", "score"]).any()
    assert set(df["case"]) == {f"sma{n:02d}" for n in range(7, 13)}
    # Each forecast of a numeric target has every score; lapse has brier, log_score and prob.
    per = df.groupby(["case", "target", "forecaster"])["score"].apply(frozenset)
    numeric = {"crps", "log_score", "pit", "covers_50", "covers_80", "covers_90"}
    for (_, target, _), names in per.items():
        assert names == (
            frozenset({"brier", "log_score", "prob"}) if target == "lapse" else numeric
        )
    # The 7th case has no months baseline (no talk length was known in 2006).
    sma07 = df[(df["case"] == "sma07") & (df["target"] == "months_to_settlement")]
    assert set(sma07["forecaster"]) == {"model"}
    assert set(df.loc[df["score"].str.startswith("covers"), "value"]) <= {0.0, 1.0}
    pit = df.loc[df["score"] == "pit", "value"]
    assert ((pit >= 0) & (pit <= 1)).all()
    model = df[df["forecaster"] == "model"]
    assert (model.loc[model["case"] == "sma07", "history_used"] == "").all()
    assert (model.loc[model["case"] == "sma12", "history_used"] == "7,8,9,10,11").all()
    assert df.loc[df["forecaster"] == "model", "priors"].str.contains("korea_reservation").all()
    realized = df[(df["case"] == "sma11") & (df["target"] == "increase_pct")]["realized"]
    assert set(realized) == {13.9}


def test_scores_are_the_scoring_functions_applied_to_the_forecasts(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    result = bt.backtest_forecasts(config, n_trials=1000, n_tune_trials=300, seed=5)
    table = bt.score_forecasts(result, run_id="r", created_at=CREATED).to_pandas()
    fc = result.forecasts[3]  # the 10th SMA
    x = fc.samples["historical"]["increase_pct"]
    row = table[
        (table["case"] == "sma10")
        & (table["target"] == "increase_pct")
        & (table["forecaster"] == "historical")
    ].set_index("score")["value"]
    assert row["crps"] == pytest.approx(scoring.crps_from_samples(x, 8.2))
    assert row["pit"] == pytest.approx(scoring.pit(x, 8.2))
    lapse = table[(table["case"] == "sma10") & (table["target"] == "lapse")]
    model_p = float(np.mean(fc.samples["model"]["lapse"]))
    brier = lapse[(lapse["forecaster"] == "model") & (lapse["score"] == "brier")]["value"]
    assert float(brier.iloc[0]) == pytest.approx((model_p - 1.0) ** 2)


def test_aggregates_and_printed_table(scores: pa.Table) -> None:
    agg = bt.aggregate_scores(scores)
    crps_months = agg.loc[("months_to_settlement", "crps")]
    assert crps_months["cases"] == "8,9,10,11,12"  # cases every forecaster has
    ratios = bt.crps_ratios(scores)
    assert set(ratios) == {"increase_pct", "months_to_settlement"}
    inc = ratios["increase_pct"]
    df = scores.to_pandas()
    crps = df[(df["target"] == "increase_pct") & (df["score"] == "crps")]
    means = crps.groupby("forecaster")["value"].mean()
    best = means.drop("model").idxmin()
    assert inc["best_baseline"] == best
    assert inc["ratio"] == pytest.approx(means["model"] / means[best])
    text = bt.backtest_table(scores)
    assert "CRPS ratio model / best baseline" in text and "sma12" in text
    assert bt.backtest_table(scores.to_pandas()) == text


def test_same_seed_same_scores(scores: pa.Table, tmp_path: Path) -> None:
    config = small_config(tmp_path)
    again = bt.run_backtest(
        config, n_trials=3000, n_tune_trials=600, seed=7, run_id="test-run", created_at=CREATED
    )
    pd.testing.assert_frame_equal(scores.to_pandas(), again.to_pandas())


def test_base_yaml_holds_the_priors_tuned_on_every_case() -> None:
    """configs/base.yaml's tuned inputs are the grid candidates calibrate_defaults chose
    (docs/calibration.md); re-running the calibration itself is slow, so this checks the record."""
    from pipeline.spec.scenario import load_scenario

    base = load_scenario(CONFIGS / "base.yaml")
    _, grid = bt.load_cases(CONFIGS)
    chosen = {
        "korea_reservation_increase_pct": (3.0, 6.0, 12.0),
        "us_reservation_share_of_ask": (0.15, 0.3, 0.5),
        "negotiation_length_months": (3.0, 6.0, 13.5),
        "headline_anchor_pull": (0.02, 0.08, 0.2),
    }
    assert set(chosen) == set(grid.inputs)
    for name, (lo, mode, hi) in chosen.items():
        spec = base.inputs[name]
        assert (spec.min, spec.mode, spec.max) == (lo, mode, hi)  # type: ignore[union-attr]
        assert spec in grid.knobs[name]


def test_score_rows_carry_exactly_the_table_builders_columns() -> None:
    assert tuple(f.name for f in dataclasses.fields(bt.ScoreRow)) == ROW_COLUMNS
    row = bt.ScoreRow(
        case="sma07",
        sma_number=7,
        case_as_of_date=date(2006, 5, 1),
        target="lapse",
        unit="probability",
        forecaster="model",
        score="brier",
        value=0.25,
        realized=0.0,
        forecast_p05=0.5,
        forecast_p50=0.5,
        forecast_p95=0.5,
        n_samples=10,
        defined_share=1.0,
        history_used="",
        priors="",
    )
    table = build_backtest_table([dataclasses.asdict(row)], run_id="r", created_at=CREATED)
    assert table.schema.equals(BACKTEST_SCHEMA)
    assert table.to_pylist()[0]["run_id"] == "r" and table.num_rows == 1
    bad = dataclasses.asdict(row)
    del bad["priors"]
    bad["extra"] = 1
    with pytest.raises(ValueError, match=r"missing columns \['priors'\], unknown \['extra'\]"):
        build_backtest_table([bad], run_id="r", created_at=CREATED)


def test_target_checks_measure_the_documented_targets(scores: pa.Table) -> None:
    df = scores.to_pandas()
    checks = {c.name: c for c in bt.target_checks(scores)}
    assert len(checks) == 8
    model = df[df["forecaster"] == "model"]
    crps = model[(model["target"] == "increase_pct") & (model["score"] == "crps")]["value"]
    assert checks["increase CRPS, 7th-12th [pp]"].value == pytest.approx(crps.mean())
    assert checks["increase CRPS, 7th-12th [pp]"].met == (crps.mean() <= 2.2)
    months = model[(model["target"] == "months_to_settlement") & (model["score"] == "crps")]
    nine_on = months[months["sma_number"] >= 9]["value"].mean()
    assert checks["months CRPS, 9th-12th"].value == pytest.approx(nine_on)
    pits = model[model["score"] == "pit"]["value"]
    assert checks["lowest PIT"].value == pits.min()
    assert checks["highest PIT"].met == (pits.max() <= 0.98)
    assert "calibration targets (docs/calibration.md)" in bt.backtest_table(scores)
    # A missing case makes a target unmeasurable: reported as not met, never as met.
    partial = {c.name: c for c in bt.target_checks(df[df["sma_number"] != 12])}
    assert np.isnan(partial["increase CRPS, 7th-12th [pp]"].value)
    assert not partial["increase CRPS, 7th-12th [pp]"].met
