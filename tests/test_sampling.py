"""Unit hypercube samplers, the Gaussian copula and the ppf transform.

One generic suite runs over every sampler (conventions 14: shape, bounds, n = 0, d = 0, replay);
then each sampler's own promise (LHS strata, Sobol blocks = one sequence, Sobol balance); then the
copula. Statistical tolerances:

* Spearman rank correlation at n = 10**5: the standard error of a sample Spearman rho is about
  (1 - rho**2) / sqrt(n) <= 3.2e-3, so the stated 0.02 is >= 6 SE (and also covers the
  projection of a non-PSD normal-score matrix, which the test matrices do not need).
* Marginals after correlation: KS at a fixed seed, p > 1e-4 (see test_distributions.py).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from scipy import stats
from strategies import BASELINE, rank_correlation_matrices

from pipeline.model.sampling import (
    copula_plan,
    correlate,
    sample_inputs,
    transform,
    unit_hypercube,
)
from pipeline.model.seeding import sampler_seed
from pipeline.spec.catalog import INPUT_NAMES
from pipeline.spec.distributions import marginal
from pipeline.spec.scenario import load_scenario

SAMPLERS = ("mc", "lhs", "sobol")
SEED = 20_261_129
RHO_TOL = 0.02
P_MIN = 1e-4


def draw(
    method: str,
    n: int,
    d: int,
    *,
    seed: int = SEED,
    offset: int = 0,
) -> np.ndarray:
    """A fresh generator and a fresh scramble seed from one integer, as run.sample_block does."""
    with warnings.catch_warnings():
        # Sobol warns when n is not a power of two; blocks of any size are part of the contract.
        warnings.filterwarnings(
            "ignore", message=".*balance properties of Sobol", category=UserWarning
        )
        return unit_hypercube(
            n,
            d,
            rng=np.random.default_rng(seed),
            method=method,  # type: ignore[arg-type]
            offset=offset,
            scramble_seed=sampler_seed(seed),
        )


# --------------------------------------------------------------------------- generic suite


@pytest.fixture(params=SAMPLERS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class TestEverySampler:
    """What every unit-hypercube sampler promises (scipy's QMCEngineTests pattern)."""

    @pytest.mark.parametrize(("n", "d"), [(1, 1), (7, 3), (256, 5), (1000, 26)])
    def test_shape_dtype_bounds(self, method: str, n: int, d: int) -> None:
        u = draw(method, n, d)
        assert u.shape == (n, d) and u.dtype == np.float64
        assert np.all(u > 0.0) and np.all(u < 1.0)  # strictly inside: inverse CDFs stay finite

    @pytest.mark.parametrize("d", [0, 1, 26])
    def test_zero_samples(self, method: str, d: int) -> None:
        u = draw(method, 0, d)
        assert u.shape == (0, d) and u.dtype == np.float64

    @pytest.mark.parametrize("n", [0, 1, 64])
    def test_zero_dimensions(self, method: str, n: int) -> None:
        u = draw(method, n, 0)
        assert u.shape == (n, 0) and u.dtype == np.float64

    def test_replay_with_same_seed(self, method: str) -> None:
        np.testing.assert_array_equal(draw(method, 300, 4), draw(method, 300, 4))

    def test_different_seed_differs(self, method: str) -> None:
        assert not np.array_equal(draw(method, 300, 4), draw(method, 300, 4, seed=SEED + 1))

    def test_roughly_uniform(self, method: str) -> None:
        """Each column KS-uniform at n = 4096 (p > 1e-4, fixed seed)."""
        u = draw(method, 4096, 3)
        for j in range(3):
            assert stats.kstest(u[:, j], "uniform").pvalue > P_MIN

    def test_transform_order_and_types(self, method: str) -> None:
        specs = load_scenario(BASELINE).inputs
        margs = {name: marginal(spec) for name, spec in specs.items()}
        u = draw(method, 128, len(INPUT_NAMES))
        out = transform(u, INPUT_NAMES, margs)
        assert list(out) == list(INPUT_NAMES)
        for j, name in enumerate(INPUT_NAMES):
            assert out[name].shape == (128,) and out[name].dtype == np.float64
            np.testing.assert_array_equal(out[name], margs[name].ppf(u[:, j]))


def test_unknown_sampler_rejected() -> None:
    with pytest.raises(ValueError, match="unknown sampler 'halton'; allowed: mc, lhs, sobol"):
        unit_hypercube(4, 2, rng=np.random.default_rng(0), method="halton")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- per-sampler promises


@pytest.mark.parametrize("n", [1, 10, 997])
def test_lhs_hits_each_stratum_once_per_column(n: int) -> None:
    u = draw("lhs", n, 6)
    strata = np.floor(u * n).astype(np.int64)
    for j in range(6):
        np.testing.assert_array_equal(np.sort(strata[:, j]), np.arange(n))


@pytest.mark.parametrize("m", [4, 10])
def test_sobol_power_of_two_is_balanced(m: int) -> None:
    """The first 2**m scrambled Sobol points put one point in each 1/2**m slice of each axis."""
    n = 2**m
    u = draw("sobol", n, 5)
    strata = np.floor(u * n).astype(np.int64)
    for j in range(5):
        np.testing.assert_array_equal(np.sort(strata[:, j]), np.arange(n))


@pytest.mark.parametrize("block", [256, 1000, 1024])
def test_sobol_blocks_with_offsets_are_one_sequence(block: int) -> None:
    """Blocks taken at offsets b * block (each with a fresh scramble seed from the run's entropy,
    as run.sample_block does) concatenate to exactly the run's one long sequence."""
    total = 4 * block
    whole = draw("sobol", total, 7)
    parts = [draw("sobol", block, 7, offset=b * block, seed=SEED) for b in range(4)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_sobol_ignores_block_rng() -> None:
    """Only the scramble seed matters: the sequence is run-wide, not per block."""
    a = unit_hypercube(
        64, 3, rng=np.random.default_rng(1), method="sobol", scramble_seed=sampler_seed(SEED)
    )
    b = unit_hypercube(
        64, 3, rng=np.random.default_rng(2), method="sobol", scramble_seed=sampler_seed(SEED)
    )
    np.testing.assert_array_equal(a, b)


def test_sobol_same_scramble_seed_object_gives_same_sequence() -> None:
    ss = sampler_seed(SEED)
    a = unit_hypercube(64, 3, rng=np.random.default_rng(1), method="sobol", scramble_seed=ss)
    b = unit_hypercube(64, 3, rng=np.random.default_rng(1), method="sobol", scramble_seed=ss)
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- copula

N_COPULA = 10**5


@pytest.fixture(scope="module")
def baseline_draws() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str], np.ndarray]:
    """10**5 baseline draws with and without the base rank correlation (same uniforms)."""
    scenario = load_scenario(BASELINE)
    rc = scenario.rank_correlation
    assert rc is not None
    margs = {name: marginal(spec) for name, spec in scenario.inputs.items()}
    plan = copula_plan(INPUT_NAMES, rc.inputs, np.asarray(rc.matrix))
    correlated = sample_inputs(
        INPUT_NAMES, margs, N_COPULA, rng=np.random.default_rng(SEED), plan=plan
    )
    independent = sample_inputs(
        INPUT_NAMES, margs, N_COPULA, rng=np.random.default_rng(SEED), plan=None
    )
    return correlated, independent, list(rc.inputs), np.asarray(rc.matrix)


def test_copula_achieves_base_rank_correlation(baseline_draws: tuple) -> None:
    """Spearman rho of the base scenario's correlated inputs within 0.02 of the stated matrix."""
    correlated, _, names, matrix = baseline_draws
    rho = stats.spearmanr(np.column_stack([correlated[n] for n in names])).statistic
    np.testing.assert_allclose(rho, matrix, atol=RHO_TOL)


def test_copula_leaves_other_inputs_uncorrelated_and_unchanged(baseline_draws: tuple) -> None:
    correlated, independent, names, _ = baseline_draws
    others = [n for n in INPUT_NAMES if n not in names]
    for name in others:
        np.testing.assert_array_equal(correlated[name], independent[name])
    rho = stats.spearmanr(correlated["trump_demand_intensity"], correlated["krw_per_usd"])
    assert abs(rho.statistic) < RHO_TOL


def test_copula_keeps_marginals(baseline_draws: tuple) -> None:
    """Each correlated input still follows its marginal: KS vs scipy_dist, p > 1e-4 (fixed seed)."""
    correlated, _, names, _ = baseline_draws
    scenario = load_scenario(BASELINE)
    for name in names:
        dist = marginal(scenario.inputs[name]).scipy_dist
        assert stats.kstest(correlated[name], dist.cdf).pvalue > P_MIN, name


def _random_rank_matrix(k: int, seed: int) -> np.ndarray:
    """A random valid correlation matrix (normalized Gram matrix of k random vectors)."""
    a = np.random.default_rng(seed).normal(size=(k, k + 2))
    gram = a @ a.T
    d = np.sqrt(np.diag(gram))
    return gram / np.outer(d, d)


def test_copula_achieves_random_4x4_rank_correlation() -> None:
    matrix = _random_rank_matrix(4, seed=2024)
    assert np.abs(matrix[np.triu_indices(4, 1)]).max() > 0.3  # not a trivial test matrix
    names = ["a", "b", "c", "d", "e"]
    plan = copula_plan(names, ["d", "a", "c", "b"], matrix)
    u = correlate(draw("mc", N_COPULA, 5), plan)
    rho = stats.spearmanr(u[:, [3, 0, 2, 1]]).statistic
    np.testing.assert_allclose(rho, matrix, atol=RHO_TOL)
    for j in range(5):
        assert stats.kstest(u[:, j], "uniform").pvalue > P_MIN
    assert np.all(u > 0.0) and np.all(u < 1.0)


def test_copula_without_plan_is_identity() -> None:
    u = draw("mc", 50, 3)
    assert correlate(u, None) is u


def test_copula_perfect_correlation_is_planned() -> None:
    """A singular (rho = 1) but valid matrix is projected, not rejected, and gives rho ~ 1."""
    plan = copula_plan(["a", "b"], ["a", "b"], np.ones((2, 2)))
    u = correlate(draw("mc", 10_000, 2), plan)
    assert stats.spearmanr(u).statistic > 0.999


@settings(max_examples=30, deadline=None, derandomize=True)
@given(matrix=rank_correlation_matrices(4))
def test_copula_plan_valid_for_any_valid_matrix(matrix: np.ndarray) -> None:
    """Any valid rank matrix gives a usable plan: the implied normal-score correlation has a
    unit diagonal, and correlated uniforms stay strictly inside (0, 1)."""
    plan = copula_plan(["a", "b", "c", "d"], ["a", "b", "c", "d"], matrix)
    implied = plan.cholesky @ plan.cholesky.T
    np.testing.assert_allclose(np.diag(implied), 1.0, rtol=1e-9)
    assert np.all(np.isfinite(plan.cholesky))
    u = correlate(draw("mc", 200, 4), plan)
    assert np.all(u > 0.0) and np.all(u < 1.0)
