"""Tests of pipeline.backtest.recalibration: the transforms (hand-computed) and forward chaining
(a case's recalibration is fitted only on earlier cases' outcomes)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import pipeline.backtest as bt
from pipeline.backtest.recalibration import inflate, mix, recalibrate
from tests.test_backtest import small_config


def test_inflate_and_mix_hand_computed() -> None:
    x = np.array([1.0, 2.0, 3.0, np.nan])
    np.testing.assert_allclose(inflate(x, 2.0), [0.0, 2.0, 4.0])
    np.testing.assert_allclose(inflate(x, 3.0, floor=0.0), [0.0, 2.0, 5.0])
    np.testing.assert_array_equal(mix(x, np.array([10.0]), 0.0), [1.0, 2.0, 3.0])
    m = mix(np.array([0.0, 1.0]), np.array([10.0, 20.0]), 0.5, n=4)
    # Two quantiles of the model (at 1/4 and 3/4) and two of the history (inverted CDF).
    np.testing.assert_allclose(m, [0.25, 0.75, 10.0, 20.0])


@pytest.fixture(scope="module")
def forecasts(tmp_path_factory: pytest.TempPathFactory) -> bt.BacktestForecasts:
    config = small_config(tmp_path_factory.mktemp("rc"))
    return bt.backtest_forecasts(config, n_trials=1500, n_tune_trials=300, seed=5)


@pytest.mark.parametrize("method", ["spread", "mixture"])
def test_recalibration_is_forward_chained(
    forecasts: bt.BacktestForecasts, method: str, tmp_path: Path
) -> None:
    rows = recalibrate(forecasts, method)  # type: ignore[arg-type]
    first = [r for r in rows if r.case == "sma07"]
    assert first and all(r.parameter == (1.0 if method == "spread" else 0.0) for r in first)
    assert all(not r.fitted_on for r in first)
    assert {r.fitted_on for r in rows if r.case == "sma12"} == {
        ("sma07", "sma08", "sma09", "sma10", "sma11")
    }
    # Moving the last case's outcome far away changes no case's parameter or score before it.
    moved = [
        fc
        if fc.case.name != "sma12"
        else dataclasses.replace(
            fc,
            realized=dataclasses.replace(
                fc.realized, increase_pct=60.0, months_to_settlement=40.0
            ),  # fmt: skip
        )
        for fc in forecasts.forecasts
    ]
    again = recalibrate(dataclasses.replace(forecasts, forecasts=moved), method)  # type: ignore[arg-type]
    for a, b in zip(rows, again, strict=True):
        if a.case != "sma12":
            assert a == b
        else:
            assert a.parameter == b.parameter  # fitted on the 7th-11th only
    # Moving an earlier case's outcome can move later choices (not vacuous): the 7th far out.
    far = [
        dataclasses.replace(fc, realized=dataclasses.replace(fc.realized, increase_pct=60.0))
        if fc.case.name == "sma07"
        else fc
        for fc in forecasts.forecasts
    ]
    shifted = recalibrate(dataclasses.replace(forecasts, forecasts=far), method)  # type: ignore[arg-type]
    assert any(
        a.parameter != b.parameter for a, b in zip(rows, shifted, strict=True) if a.case == "sma08"
    )
