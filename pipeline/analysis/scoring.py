"""Proper scores of a sample forecast against one realized value (pure functions, no IO).

Every function takes the forecast as a 1-D array of samples (Monte Carlo trials, or the values of
an empirical distribution, all equally weighted) and a scalar outcome. NaN samples are dropped
first (for ``increase_pct`` they are trials with no agreement in the horizon; the forecast is then
the distribution *given* an agreement, and :func:`defined_share` says how much of it that is).

Orientation: ``crps`` and ``log_score`` are negatively oriented (lower is better, 0 is perfect
for the CRPS). ``pit`` is a probability in [0, 1]; a calibrated forecaster's PIT values are
uniform. ``covers`` says whether a central interval contains the outcome.

Conventions, stated once:

- The CRPS is that of the empirical distribution of the samples (the "energy" form
  E|X - y| - E|X - X'| / 2 with X, X' drawn from the samples *with* replacement), computed from
  the sorted samples in O(n log n). For a baseline whose forecast *is* an empirical distribution
  of a few historical values this is exact; for Monte Carlo samples it is the standard estimator
  (its bias, E|X - X'| / (2n), is below 1e-4 of the spread at 20,000 trials).
- The log score is -ln f(y) with f a Gaussian kernel density estimate of the samples
  (Silverman's bandwidth, but at least ``min_bandwidth`` in the outcome's unit, so that a
  forecast made of one or a few values still has a density), floored at ``density_floor``
  per unit, so one miss costs at most -ln(density_floor) (9.21 nats at the default 1e-4).
- The PIT is F(y) for a continuous forecast. Samples equal to y (ties: discrete forecasts, a
  point mass such as a censoring value, or a few historical values) are handled by the
  mid-rank F(y-) + (F(y) - F(y-)) / 2 by default, or by the randomized PIT
  F(y-) + V (F(y) - F(y-)), V ~ U(0, 1), when a generator is passed.
- Central intervals use the exact quantiles of the empirical distribution of the samples
  (inverse CDF, ``numpy.quantile(method="inverted_cdf")``): the central ``level`` interval is
  [Q((1 - level) / 2), Q((1 + level) / 2)], closed at both ends, with Q(p) the smallest sample
  value whose empirical CDF reaches p. For a forecast of a handful of values the bounds are
  sample values (no interpolation between them); for Monte Carlo samples the method does not
  matter.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from pipeline.common import FloatArray

#: Default density floor of the log score [1/unit]; caps one miss at -ln(1e-4) = 9.21 nats.
DENSITY_FLOOR = 1e-4

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _clean(samples: npt.ArrayLike) -> FloatArray:
    x = np.asarray(samples, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError("no (non-NaN) samples to score")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples must be finite (or NaN, which is dropped)")
    return x


def _check_outcome(y: float) -> float:
    y = float(y)
    if not math.isfinite(y):
        raise ValueError(f"outcome must be a finite number, got {y!r}")
    return y


def defined_share(samples: npt.ArrayLike) -> float:
    """Share of samples that are not NaN (e.g. trials that reached an agreement) [0-1]."""
    x = np.asarray(samples, dtype=np.float64).ravel()
    return float(np.mean(~np.isnan(x))) if x.size else math.nan


def crps_from_samples(samples: npt.ArrayLike, y: float) -> float:
    """Continuous ranked probability score of the samples' empirical distribution at ``y``.

    CRPS = (1/n) sum_i |x_i - y| - (1/n^2) sum_i (2i - n - 1) x_(i)  (x_(i) sorted, i = 1..n),
    the second term being half the mean absolute difference of all ordered pairs.

    Parameters
    ----------
    samples : forecast samples [unit of y]; NaN dropped.
    y : the realized value [unit].

    Returns
    -------
    float : CRPS [unit of y]; lower is better.

    Examples
    --------
    >>> crps_from_samples([1.0, 2.0, 3.0], 2.0)  # 2/3 - (1/9) * 4
    0.2222222222222222
    """
    x = np.sort(_clean(samples))
    y = _check_outcome(y)
    n = x.size
    weights = 2.0 * np.arange(1, n + 1, dtype=np.float64) - n - 1.0
    return float(np.mean(np.abs(x - y)) - np.dot(weights, x) / (n * n))


def silverman_bandwidth(samples: npt.ArrayLike) -> float:
    """Silverman's rule 0.9 min(sd, IQR / 1.34) n^(-1/5) (0 for fewer than 2 distinct values)."""
    x = _clean(samples)
    if x.size < 2:
        return 0.0
    sd = float(np.std(x, ddof=1))
    q75, q25 = np.quantile(x, [0.75, 0.25])
    iqr = float(q75 - q25) / 1.34
    spread = min(sd, iqr) if iqr > 0 else sd
    return float(0.9 * spread * x.size**-0.2)


def kde_density(samples: npt.ArrayLike, y: float, *, min_bandwidth: float) -> float:
    """Gaussian kernel density of the samples at ``y`` [1/unit] (bandwidth >= min_bandwidth)."""
    if not min_bandwidth > 0:
        raise ValueError("min_bandwidth must be positive")
    x = _clean(samples)
    y = _check_outcome(y)
    h = max(silverman_bandwidth(x), min_bandwidth)
    z = (y - x) / h
    return float(np.mean(np.exp(-0.5 * z * z)) / (h * _SQRT_2PI))


def log_score(
    samples: npt.ArrayLike,
    y: float,
    *,
    min_bandwidth: float,
    density_floor: float = DENSITY_FLOOR,
) -> float:
    """Ignorance score -ln f(y), f a Gaussian KDE of the samples floored at ``density_floor``.

    Parameters
    ----------
    samples : forecast samples [unit]; NaN dropped.
    y : the realized value [unit].
    min_bandwidth : smallest kernel bandwidth [unit] (a forecast of one value gets a normal of
        this sd).
    density_floor : smallest density counted [1/unit].

    Returns
    -------
    float : -ln density [nats]; lower is better.
    """
    if not density_floor > 0:
        raise ValueError("density_floor must be positive")
    return -math.log(max(kde_density(samples, y, min_bandwidth=min_bandwidth), density_floor))


def pit(samples: npt.ArrayLike, y: float, *, rng: np.random.Generator | None = None) -> float:
    """Probability integral transform of ``y`` under the samples' empirical distribution.

    With no ties at ``y`` this is the share of samples below ``y``. Samples equal to ``y`` are
    split: half counted (mid-rank, the default) or a uniform share counted (randomized PIT,
    when ``rng`` is given), so that a calibrated discrete forecast still has uniform PIT values.
    """
    x = _clean(samples)
    y = _check_outcome(y)
    below = float(np.mean(x < y))
    at = float(np.mean(x == y))
    share = 0.5 if rng is None else float(rng.random())
    return below + share * at


def central_interval(samples: npt.ArrayLike, level: float) -> tuple[float, float]:
    """The central ``level`` interval [Q((1-level)/2), Q((1+level)/2)] of the samples (exact
    empirical quantiles, ``inverted_cdf``)."""
    if not 0 < level < 1:
        raise ValueError("level must be in (0, 1)")
    x = _clean(samples)
    lo, hi = np.quantile(x, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], method="inverted_cdf")
    return float(lo), float(hi)


def covers(samples: npt.ArrayLike, y: float, level: float) -> bool:
    """Whether the central ``level`` interval of the samples contains ``y`` (closed interval)."""
    lo, hi = central_interval(samples, level)
    y = _check_outcome(y)
    return lo <= y <= hi


def brier_score(prob: float, happened: bool) -> float:
    """Brier score (p - o)^2 of a probability forecast of a yes/no event; lower is better."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    return (prob - float(happened)) ** 2


def binary_log_score(prob: float, happened: bool, *, floor: float = 1e-3) -> float:
    """-ln of the probability given to what happened, floored at ``floor`` [nats]."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    return -math.log(max(prob if happened else 1.0 - prob, floor))
