"""Distribution specs as analysts state them; each spec class owns its behaviour.

A spec is validated data (a 90% interval, min/mode/max, a probability...). Each class resolves
itself into a :class:`~pipeline.spec.marginals.Marginal` (``to_marginal()``: an inverse CDF plus
the equivalent frozen ``scipy.stats`` distribution) and checks that its values fit an input
(``check_support()``). No RNG here.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import special, stats

# The quantile fields a spec may give are the contract's quantile statistics (p01 ... p99).
from pipeline.common import QUANTILE_LEVELS, FloatArray, plain_number
from pipeline.spec.catalog import InputInfo, Kind
from pipeline.spec.marginals import (
    Marginal as Marginal,  # re-exported: callers resolve specs into marginals
)
from pipeline.spec.marginals import (
    TruncatedScipy,
    tabulated_ppf,
    truncated_normal_scores,
)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    #: Kinds of input (the catalog's ``InputInfo.kind``) this family can describe.
    input_kinds: ClassVar[frozenset[Kind]] = frozenset({"continuous"})
    #: Bounded families are checked at the ends of their support; unbounded ones at their 1%
    #: and 99% quantiles (the central 98% must be allowed; the tails are clipped).
    bounded: ClassVar[bool] = True

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        """Resolve the spec into a :class:`Marginal` (``categories``: see CategoricalSpec)."""
        raise NotImplementedError

    def describe(self) -> str:
        """The spec as readable text, e.g. ``PERT(min=0.2, mode=0.55, max=1)``."""
        raise NotImplementedError

    def _check_kind(self, info: InputInfo) -> None:
        if info.kind not in self.input_kinds:
            raise ValueError(_KIND_ERRORS[info.kind].format(name=info.name, info=info))

    def check_support(self, info: InputInfo) -> None:
        """Reject a spec whose values fall outside what the input ``info`` can take.

        Raises ValueError naming the input, what is wrong and what is allowed.
        """
        self._check_kind(info)
        dist = self.to_marginal()
        if self.bounded:
            checks = [("lowest value", dist.support[0]), ("highest value", dist.support[1])]
        else:
            checks = [
                ("1% quantile", float(dist.scipy_dist.ppf(0.01))),
                ("99% quantile", float(dist.scipy_dist.ppf(0.99))),
            ]
        for what, value in checks:
            if not info.low <= value <= info.high:
                raise ValueError(
                    f"{info.name}: {what} is {value:.6g}, outside the allowed range "
                    f"[{info.low:g}, {info.high:g}] ({info.unit})"
                )


class FixedSpec(_Spec):
    """A known value."""

    dist: Literal["fixed"]
    value: float

    input_kinds: ClassVar[frozenset[Kind]] = frozenset({"continuous", "binary", "integer"})

    def describe(self) -> str:
        return f"fixed {plain_number(self.value)}"

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        value = self.value
        return Marginal(
            "fixed", {"value": value}, None, lambda u: np.full(np.shape(u), value), (value, value)
        )

    def check_support(self, info: InputInfo) -> None:
        super().check_support(info)
        if info.kind == "integer":
            _check_whole(info, [self.value])


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

    def describe(self) -> str:
        return f"uniform({plain_number(self.low)} to {plain_number(self.high)})"

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        lo, width = self.low, self.high - self.low
        return Marginal(
            "uniform",
            {"low": lo, "high": self.high},
            stats.uniform(lo, width),
            lambda u: lo + width * u,
            (lo, self.high),
        )


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

    bounded: ClassVar[bool] = False
    #: The family is the exponential of a normal (lognormal) rather than a normal.
    log_scale: ClassVar[bool] = False

    def describe(self) -> str:
        pair = self.quantile_pair()
        if pair is None:
            assert self.mean is not None and self.sd is not None
            body = f"mean={plain_number(self.mean)}, sd={plain_number(self.sd)}"
        else:
            (l1, v1), (l2, v2) = pair
            body = (
                f"p{round(l1 * 100):02d}={plain_number(v1)}, "
                f"p{round(l2 * 100):02d}={plain_number(v2)}"
            )
        text = f"{self.dist}({body})"  # type: ignore[attr-defined]  # dist: on each family
        if self.low is not None or self.high is not None:
            lo = plain_number(self.low) if self.low is not None else "-inf"
            hi = plain_number(self.high) if self.high is not None else "inf"
            text += f" truncated to [{lo}, {hi}]"
        return text

    def location_scale(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal, from mean/sd or from the quantile pair."""
        log = self.log_scale
        pair = self.quantile_pair()
        if pair is None:
            assert self.mean is not None and self.sd is not None  # guaranteed by the validator
            if not log:
                return self.mean, self.sd
            sigma2 = float(np.log1p((self.sd / self.mean) ** 2))
            return float(np.log(self.mean)) - sigma2 / 2, float(np.sqrt(sigma2))
        (q_lo, x_lo), (q_hi, x_hi) = pair
        if log:
            x_lo, x_hi = float(np.log(x_lo)), float(np.log(x_hi))
        z_lo, z_hi = float(special.ndtri(q_lo)), float(special.ndtri(q_hi))
        sigma = (x_hi - x_lo) / (z_hi - z_lo)
        return x_lo - sigma * z_lo, sigma

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        log = self.log_scale
        mu, sigma = self.location_scale()
        lo = self.low if self.low is not None else (0.0 if log else -np.inf)
        hi = self.high if self.high is not None else np.inf
        if log and self.low is not None and self.low <= 0:
            raise ValueError(f"truncation low must be positive for a lognormal (got {self.low})")
        with np.errstate(divide="ignore"):
            t_lo = np.log(lo) if log else lo
            t_hi = np.log(hi) if log else hi
        scores = truncated_normal_scores((t_lo - mu) / sigma, (t_hi - mu) / sigma)

        def ppf(u: FloatArray) -> FloatArray:
            x: FloatArray = mu + sigma * scores(u)
            return np.exp(x) if log else x

        base = stats.lognorm(sigma, scale=np.exp(mu)) if log else stats.norm(mu, sigma)
        truncated = self.low is not None or self.high is not None
        dist: Any = base
        if truncated and not log:
            dist = stats.truncnorm((t_lo - mu) / sigma, (t_hi - mu) / sigma, loc=mu, scale=sigma)
        elif truncated:
            dist = TruncatedScipy(base, float(base.cdf(lo)), float(base.cdf(hi)))
        params = {"mu": mu, "sigma": sigma, "low": lo, "high": hi}
        return Marginal("lognormal" if log else "normal", params, dist, ppf, (lo, hi))

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

    log_scale: ClassVar[bool] = True

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

    def describe(self) -> str:
        shape = "" if self.shape == 4.0 else f", shape={plain_number(self.shape)}"
        return (
            f"PERT(min={plain_number(self.min)}, mode={plain_number(self.mode)}, "
            f"max={plain_number(self.max)}{shape})"
        )

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        lo, hi = self.min, self.max
        alpha = 1 + self.shape * (self.mode - lo) / (hi - lo)
        beta = 1 + self.shape * (hi - self.mode) / (hi - lo)
        return _beta_marginal(self.dist, alpha, beta, lo, hi)


class TriangularSpec(_MinModeMaxSpec):
    """Triangular distribution on [min, max] peaking at mode."""

    dist: Literal["triangular"]

    def describe(self) -> str:
        return (
            f"triangular(min={plain_number(self.min)}, mode={plain_number(self.mode)}, "
            f"max={plain_number(self.max)})"
        )

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        lo, mode, hi = self.min, self.mode, self.max
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

    def describe(self) -> str:
        return (
            f"beta(alpha={plain_number(self.alpha)}, beta={plain_number(self.beta)}) "
            f"on [{plain_number(self.low)}, {plain_number(self.high)}]"
        )

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        return _beta_marginal(self.dist, self.alpha, self.beta, self.low, self.high)


class BernoulliSpec(_Spec):
    """Yes (1) with probability p, else no (0)."""

    dist: Literal["bernoulli"]
    p: float = Field(ge=0, le=1)

    input_kinds: ClassVar[frozenset[Kind]] = frozenset({"continuous", "binary"})
    bounded: ClassVar[bool] = False

    def describe(self) -> str:
        return f"yes with probability {plain_number(self.p)}"

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        p = self.p
        # 1 when u >= 1 - p: raising p only turns 0s into 1s for the same uniforms.
        return Marginal(
            "bernoulli",
            {"p": p},
            stats.bernoulli(p),
            lambda u: (np.asarray(u) >= 1.0 - p).astype(np.float64),
            (0.0, 1.0),
        )


class DiscreteSpec(_Spec):
    """One of a few numbers, with probabilities."""

    dist: Literal["discrete"]
    values: list[float] = Field(min_length=1)
    probs: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> DiscreteSpec:
        _check_probs(self.probs, len(self.values), "values")
        return self

    input_kinds: ClassVar[frozenset[Kind]] = frozenset({"continuous", "integer"})

    def describe(self) -> str:
        pairs = zip(self.values, self.probs, strict=True)
        items = ", ".join(f"{plain_number(v)}: {plain_number(p)}" for v, p in pairs)
        return f"one of {{{items}}}"

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        return _discrete_marginal(self.dist, np.asarray(self.values, dtype=np.float64), self.probs)

    def check_support(self, info: InputInfo) -> None:
        super().check_support(info)
        if info.kind == "integer":
            _check_whole(info, self.values)


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

    input_kinds: ClassVar[frozenset[Kind]] = frozenset({"category"})

    def describe(self) -> str:
        pairs = zip(self.categories, self.probs, strict=True)
        items = ", ".join(f"{c}: {plain_number(p)}" for c, p in pairs)
        return f"one of {{{items}}}"

    def to_marginal(self, categories: tuple[str, ...] = ()) -> Marginal:
        """Samples the index of each category in ``categories`` (the input's full list of
        categories), or in its own list when none is given."""
        universe = list(categories) or self.categories
        values = np.asarray([universe.index(c) for c in self.categories], dtype=np.float64)
        return _discrete_marginal(self.dist, values, self.probs)

    def check_support(self, info: InputInfo) -> None:
        self._check_kind(info)
        bad = [c for c in self.categories if c not in info.categories]
        if bad:
            raise ValueError(
                f"{info.name}: unknown categories {bad}; allowed: {list(info.categories)}"
            )


#: Why a family cannot describe an input of a kind (formatted with the input's name and info).
_KIND_ERRORS: dict[str, str] = {
    "binary": "{name}: a yes/no input takes dist 'bernoulli' or 'fixed' (0 or 1)",
    "category": "{name}: takes dist 'categorical' over {info.categories!r}",
    "integer": "{name}: takes dist 'discrete' or 'fixed' with whole numbers",
    "continuous": "{name}: a categorical distribution needs an input with categories",
}


def _check_whole(info: InputInfo, values: list[float]) -> None:
    if any(v != math.floor(v) for v in values):
        raise ValueError(f"{info.name}: values must be whole numbers of {info.unit}")


def _beta_marginal(kind: str, alpha: float, beta: float, lo: float, hi: float) -> Marginal:
    dist = stats.beta(alpha, beta, loc=lo, scale=hi - lo)
    # Below 1 a shape makes the inverse CDF infinitely steep at an end: use scipy exactly.
    ppf = tabulated_ppf(dist, lo, hi) if min(alpha, beta) >= 1 else dist.ppf
    return Marginal(
        kind, {"alpha": alpha, "beta": beta, "low": lo, "high": hi}, dist, ppf, (lo, hi)
    )


def _discrete_marginal(kind: str, values: FloatArray, probabilities: list[float]) -> Marginal:
    probs = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(probs[order])
    cum[-1] = 1.0
    dist = stats.rv_discrete(values=(values, probs[order]))
    return Marginal(
        kind,
        {"n_values": float(len(values))},
        dist,
        lambda u: values[np.searchsorted(cum, u, side="right")],
        (float(values[0]), float(values[-1])),
    )


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


def marginal(spec: Any, categories: tuple[str, ...] = ()) -> Marginal:
    """Resolve a validated spec into a :class:`Marginal` (``spec.to_marginal(categories)``)."""
    if not isinstance(spec, _Spec):
        raise TypeError(f"not a distribution spec: {spec!r}")
    return spec.to_marginal(categories)
