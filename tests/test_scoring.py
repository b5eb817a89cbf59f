"""Tests of pipeline.analysis.scoring against hand-computed values, brute force and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.analysis import scoring


def crps_by_integration(samples: np.ndarray, y: float) -> float:
    """CRPS = integral of (F(x) - 1{x >= y})^2 dx for the empirical CDF F, exactly (piecewise)."""
    x = np.sort(samples)
    knots = np.unique(np.concatenate([x, [y]]))
    total = 0.0
    for a, b in zip(knots[:-1], knots[1:], strict=True):
        f = np.mean(x <= a)  # F is constant on [a, b)
        h = 1.0 if a >= y else 0.0
        total += (f - h) ** 2 * (b - a)
    return total


# --------------------------------------------------------------------------- CRPS


def test_crps_hand_computed() -> None:
    # F = 1/3 on [1, 2), 2/3 on [2, 3): (1/3)^2 + (1 - 2/3)^2 = 2/9.
    assert scoring.crps_from_samples([1.0, 2.0, 3.0], 2.0) == pytest.approx(2 / 9, abs=1e-15)
    # y = 5 above every sample: 1/9 + 4/9 + 1 * (5 - 3) = 23/9.
    assert scoring.crps_from_samples([3.0, 1.0, 2.0], 5.0) == pytest.approx(23 / 9, abs=1e-15)
    # One sample: the absolute error.
    assert scoring.crps_from_samples([4.0], 1.5) == pytest.approx(2.5)
    # A point mass at the outcome is perfect.
    assert scoring.crps_from_samples([7.0, 7.0, 7.0], 7.0) == 0.0


def test_crps_drops_nan_and_rejects_bad_input() -> None:
    assert scoring.crps_from_samples([1.0, np.nan, 2.0, 3.0], 2.0) == pytest.approx(2 / 9)
    with pytest.raises(ValueError, match="no"):
        scoring.crps_from_samples([np.nan], 1.0)
    with pytest.raises(ValueError, match="finite"):
        scoring.crps_from_samples([1.0, np.inf], 1.0)
    with pytest.raises(ValueError, match="outcome"):
        scoring.crps_from_samples([1.0], math.nan)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=30),
    st.floats(-150, 150, allow_nan=False),
)
@example([0.0, 0.0, 1.0], 0.0)  # ties at the outcome
def test_crps_equals_the_integral_of_the_squared_cdf_difference(
    values: list[float], y: float
) -> None:
    x = np.asarray(values)
    assert scoring.crps_from_samples(x, y) == pytest.approx(
        crps_by_integration(x, y), rel=1e-9, abs=1e-9
    )
    # Order does not matter, and the score is non-negative.
    assert scoring.crps_from_samples(x[::-1], y) == pytest.approx(scoring.crps_from_samples(x, y))
    assert scoring.crps_from_samples(x, y) >= -1e-12


@pytest.mark.parametrize("y", [-2.0, 0.0, 0.7, 3.0])
def test_crps_of_a_normal_matches_the_closed_form(y: float) -> None:
    mu, sigma, n = 1.0, 2.0, 200_000
    grid = mu + sigma * stats.norm.ppf((np.arange(n) + 0.5) / n)
    z = (y - mu) / sigma
    exact = sigma * (
        z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi)
    )
    assert scoring.crps_from_samples(grid, y) == pytest.approx(exact, abs=1e-4)


# --------------------------------------------------------------------------- PIT


def test_pit_hand_computed() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    assert scoring.pit(x, 2.5) == 0.5
    assert scoring.pit(x, 0.0) == 0.0
    assert scoring.pit(x, 9.0) == 1.0
    # A tie: 1 of 4 below, 1 of 4 at y -> mid-rank 1/4 + 1/8.
    assert scoring.pit(x, 2.0) == 0.375
    # Randomized: 1/4 + V/4 with V the generator's first uniform.
    v = np.random.default_rng(5).random()
    assert scoring.pit(x, 2.0, rng=np.random.default_rng(5)) == pytest.approx(0.25 + v / 4)
    # A point mass at y: mid-rank 0.5.
    assert scoring.pit([3.0, 3.0], 3.0) == 0.5


def test_randomized_pit_of_a_calibrated_discrete_forecast_is_uniform() -> None:
    # Forecast = the true distribution (a discrete one with heavy ties); outcomes drawn from it.
    rng = np.random.default_rng(11)
    values = np.array([1.0, 2.0, 3.0, 5.0])
    probs = np.array([0.1, 0.4, 0.3, 0.2])
    forecast = np.repeat(values, (probs * 1000).astype(int))
    outcomes = rng.choice(values, size=4000, p=probs)
    pits = np.array([scoring.pit(forecast, y, rng=rng) for y in outcomes])
    # Kolmogorov-Smirnov against U(0, 1): a true failure gives p ~ 0; threshold cannot flake.
    assert stats.kstest(pits, "uniform").pvalue > 1e-6
    # The mid-rank PIT is not uniform here (only 4 values), which is why randomization exists.
    mids = np.array([scoring.pit(forecast, y) for y in outcomes])
    assert len(np.unique(mids)) == 4


# --------------------------------------------------------------------------- intervals


def test_central_interval_and_coverage_hand_computed() -> None:
    x = np.arange(1.0, 101.0)  # 1, 2, ..., 100
    # Inverse-CDF quantiles: Q(0.05) = 5 (F(5) = 0.05), Q(0.95) = 95.
    assert scoring.central_interval(x, 0.9) == (5.0, 95.0)
    assert scoring.covers(x, 5.0, 0.9) and scoring.covers(x, 95.0, 0.9)
    assert not scoring.covers(x, 4.9, 0.9) and not scoring.covers(x, 95.5, 0.9)
    assert scoring.central_interval(x, 0.5) == (25.0, 75.0)
    assert scoring.central_interval(x, 0.8) == (10.0, 90.0)
    # Five historical values: sorted -15.4, -8.9, 6.8, 10, 18.2; F = 0.2, 0.4, 0.6, 0.8, 1.
    hist = [18.2, 10.0, -15.4, 6.8, -8.9]
    assert scoring.central_interval(hist, 0.5) == (-8.9, 10.0)
    assert scoring.central_interval(hist, 0.9) == (-15.4, 18.2)
    assert scoring.covers(hist, 8.2, 0.5) and not scoring.covers(hist, 13.9, 0.5)
    with pytest.raises(ValueError, match="level"):
        scoring.central_interval(x, 1.0)


def test_coverage_of_a_calibrated_forecast_matches_its_level() -> None:
    rng = np.random.default_rng(3)
    forecast = rng.normal(0.0, 1.0, 5000)
    outcomes = rng.normal(0.0, 1.0, 3000)
    for level in (0.5, 0.8, 0.9):
        lo, hi = scoring.central_interval(forecast, level)
        share = np.mean((outcomes >= lo) & (outcomes <= hi))
        # Binomial sd of the share is <= 0.0092; 6 sd cannot flake.
        assert share == pytest.approx(level, abs=0.06)
        assert scoring.covers(forecast, 0.0, level)


# --------------------------------------------------------------------------- log score


def test_log_score_hand_computed() -> None:
    # One sample: a normal kernel of sd = min_bandwidth. At its centre: -ln(1/sqrt(2 pi)).
    assert scoring.log_score([0.0], 0.0, min_bandwidth=1.0) == pytest.approx(
        0.5 * math.log(2 * math.pi)
    )
    # One sd away: + 1/2.
    assert scoring.log_score([0.0], 1.0, min_bandwidth=1.0) == pytest.approx(
        0.5 * math.log(2 * math.pi) + 0.5
    )
    # Far away the density floor caps the score at -ln(1e-4).
    assert scoring.log_score([0.0], 100.0, min_bandwidth=1.0) == pytest.approx(-math.log(1e-4))
    assert scoring.log_score([0.0], 100.0, min_bandwidth=1.0, density_floor=1e-2) == (
        pytest.approx(-math.log(1e-2))
    )
    with pytest.raises(ValueError):
        scoring.log_score([0.0], 0.0, min_bandwidth=0.0)


def test_kde_matches_scipy_with_the_same_bandwidth() -> None:
    rng = np.random.default_rng(7)
    x = rng.gamma(3.0, 2.0, 500)
    h = scoring.silverman_bandwidth(x)
    assert h == pytest.approx(
        0.9 * min(np.std(x, ddof=1), stats.iqr(x) / 1.34) * 500**-0.2, rel=1e-12
    )
    kde = stats.gaussian_kde(x, bw_method=h / np.std(x, ddof=1))
    for y in (1.0, 5.0, 12.0):
        assert scoring.kde_density(x, y, min_bandwidth=1e-6) == pytest.approx(
            float(kde(y)[0]), rel=1e-10
        )
    # The bandwidth floor widens a too-narrow kernel.
    assert scoring.kde_density([2.0, 2.0], 2.0, min_bandwidth=0.5) == pytest.approx(
        1 / (0.5 * math.sqrt(2 * math.pi))
    )


def test_log_score_of_a_large_normal_sample_is_near_the_true_density() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 2.0, 20_000)
    exact = -stats.norm(5.0, 2.0).logpdf(6.0)
    assert scoring.log_score(x, 6.0, min_bandwidth=0.1) == pytest.approx(exact, abs=0.03)


# --------------------------------------------------------------------------- yes/no events


def test_brier_and_binary_log_score() -> None:
    assert scoring.brier_score(0.7, True) == pytest.approx(0.09)
    assert scoring.brier_score(0.7, False) == pytest.approx(0.49)
    assert scoring.binary_log_score(0.8, True) == pytest.approx(-math.log(0.8))
    assert scoring.binary_log_score(0.8, False) == pytest.approx(-math.log(0.2))
    assert scoring.binary_log_score(1.0, False) == pytest.approx(-math.log(1e-3))
    with pytest.raises(ValueError):
        scoring.brier_score(1.5, True)


def test_defined_share() -> None:
    assert scoring.defined_share([1.0, np.nan, 2.0, np.nan]) == 0.5
    assert math.isnan(scoring.defined_share([]))
