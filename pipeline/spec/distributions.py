"""Distribution specs as analysts state them, and their conversion to fast marginals.

A spec is inert, validated data (a 90% interval, min/mode/max, a probability...). ``marginal(spec)``
resolves it once into a :class:`Marginal`: an inverse CDF that maps uniforms in [0, 1) to values,
plus the equivalent frozen ``scipy.stats`` distribution (used by tests and docs). No RNG here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special, stats

# The quantile fields a spec may give are the contract's quantile statistics (p01 ... p99).
from pipeline.common import QUANTILE_LEVELS, FloatArray

#: Nodes of tabulated inverse CDFs (beta/PERT), clustered in the tails (Chebyshev spacing).
_TABLE_NODES = 4097
#: Below this distance from 0 or 1 tabulated inverse CDFs use the exact (slow) scipy ppf.
_TAIL_U = 1e-3


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)


class FixedSpec(_Spec):
    """A known value."""

    dist: Literal["fixed"]
    value: float


class UniformSpec(_Spec):
    """Every value in [low, high] equally likely."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _check(self) -> UniformSpec:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class _LocationScaleSpec(_Spec):
    """Mean/sd or exactly two quantiles (p05/p95, p10/p90, ...), with optional truncation."""

    mean: float | None = None
    sd: float | None = Field(default=None, gt=0)
    p01: float | None = None
    p05: float | None = None
    p10: float | None = None
    p25: float | None = None
    p50: float | None = None
    p75: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    low: float | None = None
    """Truncate below this value (the quantiles describe the distribution before truncation)."""
    high: float | None = None
    """Truncate above this value."""

    def quantile_pair(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """((level, value), (level, value)) in increasing level, or None for mean/sd."""
        given = [(lvl, getattr(self, k)) for k, lvl in QUANTILE_LEVELS.items()]
        given = [(lvl, v) for lvl, v in given if v is not None]
        return (given[0], given[1]) if given else None

    @model_validator(mode="after")
    def _check(self) -> _LocationScaleSpec:
        named = [k for k in QUANTILE_LEVELS if getattr(self, k) is not None]
        moments = [k for k in ("mean", "sd") if getattr(self, k) is not None]
        if moments and named:
            raise ValueError("give either mean and sd or two quantiles, not both")
        if moments and len(moments) != 2:
            raise ValueError("give both mean and sd")
        if not moments and len(named) != 2:
            raise ValueError(
                "give mean and sd, or exactly two quantiles such as p05 and p95 "
                f"(got {', '.join(named) or 'none'})"
            )
        if len(named) == 2:
            lo_key, hi_key = named
            if not getattr(self, lo_key) < getattr(self, hi_key):
                raise ValueError(
                    f"{lo_key} ({getattr(self, lo_key)}) must be below {hi_key} "
                    f"({getattr(self, hi_key)})"
                )
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"truncation low ({self.low}) must be below high ({self.high})")
        return self


class NormalSpec(_LocationScaleSpec):
    """Normal distribution, optionally truncated to [low, high]."""

    dist: Literal["normal"]


class LogNormalSpec(_LocationScaleSpec):
    """Lognormal distribution (positive values), optionally truncated to [low, high]."""

    dist: Literal["lognormal"]

    @model_validator(mode="after")
    def _positive(self) -> LogNormalSpec:
        for key in [*QUANTILE_LEVELS, "mean"]:
            value = getattr(self, key)
            if value is not None and value <= 0:
                raise ValueError(f"{key} must be positive for a lognormal (got {value})")
        return self


class _MinModeMaxSpec(_Spec):
    min: float
    mode: float
    max: float

    @model_validator(mode="after")
    def _check(self) -> _MinModeMaxSpec:
        if not (self.min <= self.mode <= self.max and self.min < self.max):
            raise ValueError(
                f"need min <= mode <= max and min < max (got {self.min}, {self.mode}, {self.max})"
            )
        return self


class PertSpec(_MinModeMaxSpec):
    """(Modified) PERT: a beta distribution on [min, max] peaking at mode."""

    dist: Literal["pert"]
    shape: float = Field(default=4.0, gt=0)
    """Weight of the mode (4 is the classic PERT)."""


class TriangularSpec(_MinModeMaxSpec):
    """Triangular distribution on [min, max] peaking at mode."""

    dist: Literal["triangular"]


class BetaSpec(_Spec):
    """Beta(alpha, beta) scaled to [low, high]."""

    dist: Literal["beta"]
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> BetaSpec:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class BernoulliSpec(_Spec):
    """Yes (1) with probability p, else no (0)."""

    dist: Literal["bernoulli"]
    p: float = Field(ge=0, le=1)


class DiscreteSpec(_Spec):
    """One of a few numbers, with probabilities."""

    dist: Literal["discrete"]
    values: list[float] = Field(min_length=1)
    probs: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> DiscreteSpec:
        _check_probs(self.probs, len(self.values), "values")
        return self


class CategoricalSpec(_Spec):
    """One of a few named options, with probabilities (sampled as the option's index)."""

    dist: Literal["categorical"]
    categories: list[str] = Field(min_length=1)
    probs: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CategoricalSpec:
        _check_probs(self.probs, len(self.categories), "categories")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("categories must be distinct")
        return self


def _check_probs(probs: list[float], n: int, what: str) -> None:
    if len(probs) != n:
        raise ValueError(f"probs has {len(probs)} entries but {what} has {n}")
    if abs(sum(probs) - 1.0) > 1e-9:
        raise ValueError(f"probs must sum to 1 (got {sum(probs):.6g})")


InputSpec = Annotated[
    FixedSpec
    | UniformSpec
    | NormalSpec
    | LogNormalSpec
    | PertSpec
    | TriangularSpec
    | BetaSpec
    | BernoulliSpec
    | DiscreteSpec
    | CategoricalSpec,
    Field(discriminator="dist"),
]


@dataclass(frozen=True, eq=False)
class Marginal:
    """A resolved distribution: ``ppf`` maps uniforms in [0, 1) to values."""

    kind: str
    params: dict[str, float]
    """Resolved parameters (e.g. mu and sigma of a normal fitted to a 90% interval)."""
    scipy_dist: Any
    """The equivalent frozen scipy.stats distribution (None for a fixed value)."""
    _ppf: Any = field(repr=False)
    support: tuple[float, float] = (-np.inf, np.inf)

    def ppf(self, u: FloatArray) -> FloatArray:
        """Inverse CDF, vectorized; float64 out."""
        return np.asarray(self._ppf(u), dtype=np.float64)

    @property
    def is_constant(self) -> bool:
        return self.kind == "fixed"


def _truncated_normal_scores(z_low: float, z_high: float) -> Any:
    """Map uniforms to standard normal scores truncated to [z_low, z_high].

    Works on the lower tail of the normal (reflecting when the window lies above 0), where
    ndtr keeps full relative precision: truncating to [8, 9] standard deviations stays exact.
    """
    if z_low == -np.inf and z_high == np.inf:
        return special.ndtri
    flip = z_low > 0
    a, b = (-z_high, -z_low) if flip else (z_low, z_high)
    f_a, f_b = float(special.ndtr(a)), float(special.ndtr(b))
    if not f_b > f_a:
        raise ValueError("the truncation bounds leave no probability mass")
    width = f_b - f_a
    if flip:
        # u -> 1 - u keeps the map increasing after reflection.
        return lambda u: -special.ndtri(f_a + width * (1.0 - np.asarray(u)))
    return lambda u: special.ndtri(f_a + width * np.asarray(u))


@functools.lru_cache(maxsize=256)
def _beta_table(
    alpha: float, beta: float, loc: float, scale: float, a: float, b: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Nodes, exact quantiles and slopes of a beta inverse-CDF table (read-only).

    Cached per process: building one costs ~5 ms of scipy ppf calls, and every task that
    plans a scenario (and every scenario sharing a prior) needs the same tables.
    """
    nodes = 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, _TABLE_NODES)))
    values = stats.beta(alpha, beta, loc=loc, scale=scale).ppf(nodes)
    values[0], values[-1] = a, b
    slopes = np.diff(values) / np.diff(nodes)
    for arr in (nodes, values, slopes):
        arr.flags.writeable = False
    return nodes, values, slopes


def _tabulated_ppf(dist: Any, a: float, b: float) -> Any:
    """Inverse CDF by interpolation in a Chebyshev-spaced table of exact quantiles.

    scipy's beta ppf runs at ~1 M draws/s here against ~60 M/s for the table. Within
    [_TAIL_U, 1 - _TAIL_U] the interpolation error is below 1e-5 of the range (tests check
    it); in the tails, where a beta ppf behaves like u**(1/alpha), the exact ppf is used (about
    0.2% of draws).
    """
    m = _TABLE_NODES - 1
    nodes, values, slopes = _beta_table(*dist.args, dist.kwds["loc"], dist.kwds["scale"], a, b)

    def ppf(u: FloatArray) -> FloatArray:
        # Same result as np.interp(u, nodes, values), but the cell is found in O(1) by
        # inverting the node spacing instead of a binary search per value.
        u = np.asarray(u, dtype=np.float64)
        # (arccos(1 - 2u) * m / pi) with one temporary; take() is faster than fancy indexing.
        guess = np.multiply(u, 2.0)
        np.subtract(1.0, guess, out=guess)
        np.arccos(guess, out=guess)
        np.multiply(guess, m / np.pi, out=guess)
        cell = guess.astype(np.intp)
        np.clip(cell, 0, m - 1, out=cell)
        # Rounding can put u one cell off near a node: step back or forward once.
        cell -= u < nodes.take(cell)
        step = np.add(cell, 1)
        np.minimum(step, m, out=step)
        cell += u >= nodes.take(step)
        np.clip(cell, 0, m - 1, out=cell)
        x: FloatArray = np.subtract(u, nodes.take(cell), out=guess)
        x *= slopes.take(cell)
        x += values.take(cell)
        tail = (u < _TAIL_U) | (u > 1.0 - _TAIL_U)
        if tail.any():
            x[tail] = dist.ppf(u[tail])
        return x

    return ppf


def _location_scale(spec: _LocationScaleSpec, log: bool) -> tuple[float, float]:
    pair = spec.quantile_pair()
    if pair is None:
        assert spec.mean is not None and spec.sd is not None  # guaranteed by the validator
        if not log:
            return spec.mean, spec.sd
        sigma2 = float(np.log1p((spec.sd / spec.mean) ** 2))
        return float(np.log(spec.mean)) - sigma2 / 2, float(np.sqrt(sigma2))
    (q_lo, x_lo), (q_hi, x_hi) = pair
    if log:
        x_lo, x_hi = float(np.log(x_lo)), float(np.log(x_hi))
    z_lo, z_hi = float(special.ndtri(q_lo)), float(special.ndtri(q_hi))
    sigma = (x_hi - x_lo) / (z_hi - z_lo)
    return x_lo - sigma * z_lo, sigma


def marginal(spec: Any, categories: tuple[str, ...] = ()) -> Marginal:
    """Resolve a validated spec into a :class:`Marginal`.

    A categorical spec samples the index of its category in ``categories`` (the input's full
    list of categories), or in its own list when none is given.
    """
    if isinstance(spec, FixedSpec):
        value = spec.value
        return Marginal(
            "fixed", {"value": value}, None, lambda u: np.full(np.shape(u), value), (value, value)
        )
    if isinstance(spec, UniformSpec):
        lo, width = spec.low, spec.high - spec.low
        return Marginal(
            "uniform",
            {"low": lo, "high": spec.high},
            stats.uniform(lo, width),
            lambda u: lo + width * u,
            (lo, spec.high),
        )
    if isinstance(spec, NormalSpec | LogNormalSpec):
        log = isinstance(spec, LogNormalSpec)
        mu, sigma = _location_scale(spec, log)
        lo = spec.low if spec.low is not None else (0.0 if log else -np.inf)
        hi = spec.high if spec.high is not None else np.inf
        if log and spec.low is not None and spec.low <= 0:
            raise ValueError(f"truncation low must be positive for a lognormal (got {spec.low})")
        with np.errstate(divide="ignore"):
            t_lo = np.log(lo) if log else lo
            t_hi = np.log(hi) if log else hi
        scores = _truncated_normal_scores((t_lo - mu) / sigma, (t_hi - mu) / sigma)

        def ppf(u: FloatArray) -> FloatArray:
            x: FloatArray = mu + sigma * scores(u)
            return np.exp(x) if log else x

        base = stats.lognorm(sigma, scale=np.exp(mu)) if log else stats.norm(mu, sigma)
        truncated = spec.low is not None or spec.high is not None
        dist: Any = base
        if truncated and not log:
            dist = stats.truncnorm((t_lo - mu) / sigma, (t_hi - mu) / sigma, loc=mu, scale=sigma)
        elif truncated:
            dist = _TruncatedScipy(base, float(base.cdf(lo)), float(base.cdf(hi)))
        params = {"mu": mu, "sigma": sigma, "low": lo, "high": hi}
        return Marginal("lognormal" if log else "normal", params, dist, ppf, (lo, hi))
    if isinstance(spec, PertSpec | BetaSpec):
        if isinstance(spec, PertSpec):
            lo, hi = spec.min, spec.max
            alpha = 1 + spec.shape * (spec.mode - lo) / (hi - lo)
            beta = 1 + spec.shape * (hi - spec.mode) / (hi - lo)
        else:
            lo, hi, alpha, beta = spec.low, spec.high, spec.alpha, spec.beta
        dist = stats.beta(alpha, beta, loc=lo, scale=hi - lo)
        # Below 1 a shape makes the inverse CDF infinitely steep at an end: use scipy exactly.
        ppf = _tabulated_ppf(dist, lo, hi) if min(alpha, beta) >= 1 else dist.ppf
        return Marginal(
            spec.dist, {"alpha": alpha, "beta": beta, "low": lo, "high": hi}, dist, ppf, (lo, hi)
        )
    if isinstance(spec, TriangularSpec):
        lo, mode, hi = spec.min, spec.mode, spec.max
        c = (mode - lo) / (hi - lo)

        def tri_ppf(u: FloatArray) -> FloatArray:
            u = np.asarray(u, dtype=np.float64)
            left = lo + np.sqrt(u * (hi - lo) * (mode - lo))
            right = hi - np.sqrt((1 - u) * (hi - lo) * (hi - mode))
            return np.where(u < c, left, right)

        return Marginal(
            "triangular",
            {"min": lo, "mode": mode, "max": hi},
            stats.triang(c, loc=lo, scale=hi - lo),
            tri_ppf,
            (lo, hi),
        )
    if isinstance(spec, BernoulliSpec):
        p = spec.p
        # 1 when u >= 1 - p: raising p only turns 0s into 1s for the same uniforms.
        return Marginal(
            "bernoulli",
            {"p": p},
            stats.bernoulli(p),
            lambda u: (np.asarray(u) >= 1.0 - p).astype(np.float64),
            (0.0, 1.0),
        )
    if isinstance(spec, DiscreteSpec | CategoricalSpec):
        probs = np.asarray(spec.probs, dtype=np.float64)
        if isinstance(spec, DiscreteSpec):
            values = np.asarray(spec.values, dtype=np.float64)
        else:
            universe = list(categories) or spec.categories
            values = np.asarray([universe.index(c) for c in spec.categories], dtype=np.float64)
        order = np.argsort(values, kind="stable")
        values, cum = values[order], np.cumsum(probs[order])
        cum[-1] = 1.0
        dist = stats.rv_discrete(values=(values, probs[order]))
        return Marginal(
            spec.dist,
            {"n_values": float(len(values))},
            dist,
            lambda u: values[np.searchsorted(cum, u, side="right")],
            (float(values[0]), float(values[-1])),
        )
    raise TypeError(f"not a distribution spec: {spec!r}")


class _TruncatedScipy:
    """cdf/ppf of a scipy distribution truncated by inverse-CDF bounds (for tests and docs)."""

    def __init__(self, base: Any, f_low: float, f_high: float) -> None:
        self.base, self.f_low, self.f_high = base, f_low, f_high

    def cdf(self, x: Any) -> Any:
        return np.clip((self.base.cdf(x) - self.f_low) / (self.f_high - self.f_low), 0.0, 1.0)

    def ppf(self, q: Any) -> Any:
        return self.base.ppf(self.f_low + (self.f_high - self.f_low) * np.asarray(q))
