"""Distribution specs as readable text, for the ``inputs`` dataset (and the report's cells).

Kept apart from the table builder so that they can later become methods of the spec classes
(pipeline/spec/distributions.py) without touching the dataset code.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.spec.distributions import (
    BernoulliSpec,
    BetaSpec,
    CategoricalSpec,
    DiscreteSpec,
    FixedSpec,
    LogNormalSpec,
    NormalSpec,
    PertSpec,
    TriangularSpec,
    UniformSpec,
)

__all__ = ["describe_spec", "plain_number"]


def plain_number(x: float) -> str:
    """A number as an analyst writes it (no trailing zeros, thousands separators)."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.6g}" if abs(x) >= 1000 else f"{x:.6g}"


def _sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, without exponent notation."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(abs(x)))
    return f"{x:.{max(decimals, 0)}f}"


def describe_spec(spec: Any) -> str:
    """A distribution spec as readable text, e.g. ``PERT(min=0.2, mode=0.55, max=1)``."""
    if isinstance(spec, FixedSpec):
        return f"fixed {plain_number(spec.value)}"
    if isinstance(spec, UniformSpec):
        return f"uniform({plain_number(spec.low)} to {plain_number(spec.high)})"
    if isinstance(spec, NormalSpec | LogNormalSpec):
        pair = spec.quantile_pair()
        if pair is None:
            assert spec.mean is not None and spec.sd is not None
            body = f"mean={plain_number(spec.mean)}, sd={plain_number(spec.sd)}"
        else:
            (l1, v1), (l2, v2) = pair
            body = f"p{round(l1 * 100):02d}={plain_number(v1)}, p{round(l2 * 100):02d}={plain_number(v2)}"
        text = f"{spec.dist}({body})"
        if spec.low is not None or spec.high is not None:
            lo = plain_number(spec.low) if spec.low is not None else "-inf"
            hi = plain_number(spec.high) if spec.high is not None else "inf"
            text += f" truncated to [{lo}, {hi}]"
        return text
    if isinstance(spec, PertSpec):
        shape = "" if spec.shape == 4.0 else f", shape={plain_number(spec.shape)}"
        return f"PERT(min={plain_number(spec.min)}, mode={plain_number(spec.mode)}, max={plain_number(spec.max)}{shape})"
    if isinstance(spec, TriangularSpec):
        return f"triangular(min={plain_number(spec.min)}, mode={plain_number(spec.mode)}, max={plain_number(spec.max)})"
    if isinstance(spec, BetaSpec):
        return f"beta(alpha={plain_number(spec.alpha)}, beta={plain_number(spec.beta)}) on [{plain_number(spec.low)}, {plain_number(spec.high)}]"
    if isinstance(spec, BernoulliSpec):
        return f"yes with probability {plain_number(spec.p)}"
    if isinstance(spec, DiscreteSpec):
        items = ", ".join(f"{plain_number(v)}: {plain_number(p)}" for v, p in zip(spec.values, spec.probs, strict=True))
        return f"one of {{{items}}}"
    if isinstance(spec, CategoricalSpec):
        items = ", ".join(f"{c}: {plain_number(p)}" for c, p in zip(spec.categories, spec.probs, strict=True))
        return f"one of {{{items}}}"
    raise TypeError(f"not a distribution spec: {spec!r}")
