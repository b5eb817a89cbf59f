"""Quantiles inside a point mass at the min or max are exact, with Monte Carlo s.e. 0."""

from __future__ import annotations

import pickle

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.analysis.accumulators import MetricAccumulator, metric_spec
from pipeline.analysis.statistics import quantiles

SPEC = metric_spec("lapse_months")
P = [0.1, 0.5, 0.9]


def test_mass_at_zero_gives_exact_zero_median() -> None:
    # 60% of trials without lapse, the rest spread over 1..20 months (hand-checkable).
    x = np.concatenate([np.zeros(600), np.linspace(1.0, 20.0, 400)])
    q, bound, se = quantiles(MetricAccumulator.from_values(x, SPEC), SPEC, P)
    assert q[0] == 0.0 and q[1] == 0.0  # exactly, not interpolated inside the fine bin
    assert bound[0] == bound[1] == 0.0
    assert se[0] == se[1] == 0.0
    assert abs(q[2] - np.quantile(x, 0.9)) <= SPEC.width
    assert se[2] > 0


def test_fixed_level_is_exact_at_every_quantile() -> None:
    spec = metric_spec("contribution_krw_bn_2027")
    x = np.full(5000, 1551.1337)
    q, bound, se = quantiles(MetricAccumulator.from_values(x, spec), spec, P)
    assert list(q) == [1551.1337] * 3
    assert list(bound) == [0.0] * 3 and list(se) == [0.0] * 3


@settings(max_examples=60, deadline=None)
@given(
    n_zero=st.integers(0, 300),
    rest=st.lists(st.floats(0.5, 30.0), min_size=1, max_size=200),
    split=st.integers(1, 5),
)
def test_point_mass_counts_merge_like_one_pass(n_zero: int, rest: list[float], split: int) -> None:
    x = np.concatenate([np.zeros(n_zero), np.array(rest)])
    whole = MetricAccumulator.from_values(x, SPEC)
    parts = [MetricAccumulator.from_values(c, SPEC) for c in np.array_split(x, split)]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    assert (merged.n_at_min, merged.n_at_max) == (whole.n_at_min, whole.n_at_max)
    assert merged.n_at_min == int(np.sum(x == x.min()))
    back = pickle.loads(pickle.dumps(merged))
    assert (back.n_at_min, back.n_at_max) == (merged.n_at_min, merged.n_at_max)
    # Every quantile is within its stated bound of numpy's; exact ones exactly.
    q, bound, _ = quantiles(merged, SPEC, P)
    for p, value, b in zip(P, q, bound, strict=True):
        assert abs(value - np.quantile(x, p)) <= b + 1e-9
