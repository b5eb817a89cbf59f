"""Sampling: unit hypercube -> rank correlation (Gaussian copula) -> marginal inverse CDFs.

Swapping plain Monte Carlo for Latin hypercube or scrambled Sobol changes only the hypercube.
Columns follow ``pipeline.spec.catalog.INPUT_NAMES``, so the same seed gives every scenario the same
uniforms for the same input (common random numbers) whatever its distributions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special
from scipy.stats import qmc

from pipeline.common import UNIT_EPS, FloatArray
from pipeline.spec.distributions import Marginal

Sampler = Literal["mc", "lhs", "sobol"]

# Keep uniforms strictly inside (0, 1) so inverse CDFs stay finite.
#: Rows per matrix product in the copula (below OpenBLAS's multithreading threshold).
_MATMUL_ROWS = 8192


@dataclass(frozen=True, eq=False)
class CopulaPlan:
    """Cholesky factor of the normal-score correlation for a subset of columns."""

    columns: tuple[int, ...]
    cholesky: FloatArray


def copula_plan(
    names: Sequence[str], correlated: Sequence[str], rank_matrix: FloatArray
) -> CopulaPlan:
    """Plan a Gaussian copula that gives ``correlated`` inputs the Spearman ``rank_matrix``.

    The normal-score (Pearson) correlation that yields Spearman rho is 2 sin(pi rho / 6); the
    result is projected to the nearest positive semi-definite matrix if needed.
    """
    pearson = 2.0 * np.sin(np.pi * np.asarray(rank_matrix, dtype=np.float64) / 6.0)
    vals, vecs = np.linalg.eigh(pearson)
    if vals.min() < 1e-12:
        vals = np.clip(vals, 1e-12, None)
        pearson = (vecs * vals) @ vecs.T
        d = np.sqrt(np.diag(pearson))
        pearson = pearson / np.outer(d, d)
    cols = tuple(list(names).index(n) for n in correlated)
    return CopulaPlan(cols, np.linalg.cholesky(pearson).astype(np.float64))


def unit_hypercube(
    n: int,
    d: int,
    *,
    rng: np.random.Generator,
    method: Sampler = "mc",
    offset: int = 0,
    scramble_seed: np.random.SeedSequence | None = None,
) -> FloatArray:
    """``n`` points in [0, 1)^d.

    ``mc`` draws from ``rng``; ``lhs`` stratifies within this block; ``sobol`` takes points
    ``offset .. offset + n`` of one scrambled Sobol sequence shared by the whole run (so blocks
    together form the run's sequence whatever the worker count).
    """
    if n == 0 or d == 0:
        return np.empty((n, d), dtype=np.float64)
    if method == "mc":
        # Drawn input by input and returned as a transposed view, so each input's column is
        # contiguous for its inverse CDF.
        u = rng.random((d, n)).T
    elif method == "lhs":
        u = qmc.LatinHypercube(d, rng=rng).random(n)
    elif method == "sobol":
        # A copy: scipy spawns from the generator's SeedSequence, which would change the caller's.
        seed_copy = (
            None if scramble_seed is None
            else np.random.SeedSequence(scramble_seed.entropy, spawn_key=scramble_seed.spawn_key)
        )  # fmt: skip
        engine = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(seed_copy))
        if offset:
            engine.fast_forward(offset)
        u = engine.random(n)
    else:
        raise ValueError(f"unknown sampler {method!r}; allowed: mc, lhs, sobol")
    return np.clip(u, UNIT_EPS, 1.0 - UNIT_EPS, out=u)


def correlate(u: FloatArray, plan: CopulaPlan | None) -> FloatArray:
    """Impose the planned rank correlation on the planned columns of ``u`` (in place)."""
    if plan is None or not plan.columns:
        return u
    cols = list(plan.columns)
    scores = u[:, cols]
    special.ndtri(scores, out=scores)
    z = np.empty_like(scores)
    # Row blocks small enough that BLAS runs each product on one thread: a multithreaded
    # product waits for a second core, which under load (other workers, other processes)
    # stalled 0.2 ms products for tens of ms. Rows are independent (same values).
    factor = plan.cholesky.T
    for lo in range(0, scores.shape[0], _MATMUL_ROWS):
        hi = lo + _MATMUL_ROWS
        np.matmul(scores[lo:hi], factor, out=z[lo:hi])
    u[:, cols] = np.clip(special.ndtr(z, out=z), UNIT_EPS, 1.0 - UNIT_EPS, out=z)
    return u


def transform(
    u: FloatArray, names: Sequence[str], marginals: Mapping[str, Marginal]
) -> dict[str, FloatArray]:
    """Map each column of uniforms through its input's inverse CDF."""
    return {name: marginals[name].ppf(u[:, j]) for j, name in enumerate(names)}


def sample_inputs(
    names: Sequence[str],
    marginals: Mapping[str, Marginal],
    n: int,
    *,
    rng: np.random.Generator,
    method: Sampler = "mc",
    plan: CopulaPlan | None = None,
    offset: int = 0,
    scramble_seed: np.random.SeedSequence | None = None,
) -> dict[str, FloatArray]:
    """Draw ``n`` joint samples of the named inputs."""
    u = unit_hypercube(
        n, len(names), rng=rng, method=method, offset=offset, scramble_seed=scramble_seed
    )
    return transform(correlate(u, plan), names, marginals)
