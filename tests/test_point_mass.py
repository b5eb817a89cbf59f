"""Quantiles inside a point mass (at the min or max, or strictly between them) are exact, with
Monte Carlo s.e. 0 where the whole Hall-Sheather window lies inside the mass."""

from __future__ import annotations

import functools
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


def test_interior_fixed_level_is_exact() -> None:
    """The issue's case: 2027 fixed by the agreement in force in most trials, other levels
    below and above it: p10/p50/p90 read the level itself (before: 1551.11/1551.15/1551.19)."""
    spec = metric_spec("contribution_krw_bn_2027")
    level = 1551.1463
    x = np.concatenate([np.full(8500, level), np.linspace(1400.0, 1550.0, 750),
                        np.linspace(1552.0, 1800.0, 750)])  # fmt: skip
    blocks = [MetricAccumulator.from_values(b, spec) for b in np.array_split(x, 7)]
    acc = functools.reduce(MetricAccumulator.merge, blocks)
    q, bound, se = quantiles(acc, spec, [0.05, 0.1, 0.5, 0.9, 0.95])
    assert list(q[1:4]) == [level] * 3 and list(bound[1:4]) == [0.0] * 3
    assert se[2] == 0.0  # the window of the median lies inside the mass
    assert list(np.quantile(x, [0.1, 0.5, 0.9])) == [level] * 3
    assert q[0] < level < q[4] and bound[0] > 0 and bound[4] > 0  # outside the mass: as before


def test_a_bin_with_two_values_is_not_an_atom() -> None:
    spec = metric_spec("contribution_krw_bn_2027")
    x = np.concatenate([np.full(600, 1551.10), np.full(400, 1551.15), [1400.0, 1800.0]])
    acc = MetricAccumulator.from_values(x, spec)
    assert acc.atom_bins.size == 0  # 1551.10 and 1551.15 share a 0.1-wide bin
    q, bound, _ = quantiles(acc, spec, [0.5])
    assert bound[0] == spec.width and abs(q[0] - np.median(x)) <= spec.width


@settings(max_examples=80, deadline=None)
@given(
    atoms=st.lists(st.sampled_from([3.0, 3.004, 7.25, 12.0]), min_size=0, max_size=300),
    rest=st.lists(st.floats(0.5, 30.0), min_size=1, max_size=200),
    split=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_interior_atoms_do_not_depend_on_grouping(
    atoms: list[float], rest: list[float], split: int, seed: int
) -> None:
    """Blocks merged in any order and grouping give the same atoms (worker count does not
    matter), and every quantile stays within its bound of numpy's (exact ones exactly)."""
    x = np.random.default_rng(seed).permutation(np.array(atoms + rest))
    blocks = [MetricAccumulator.from_values(c, SPEC) for c in np.array_split(x, split)]
    left = functools.reduce(MetricAccumulator.merge, blocks)
    order = np.random.default_rng(seed + 1).permutation(len(blocks))
    shuffled = [blocks[i] for i in order]
    half = len(shuffled) // 2
    tree = (
        functools.reduce(MetricAccumulator.merge, shuffled[:half]).merge(
            functools.reduce(MetricAccumulator.merge, shuffled[half:])
        )
        if half
        else shuffled[0]
    )
    for other in (tree, pickle.loads(pickle.dumps(left))):
        assert other.atom_bins.tolist() == left.atom_bins.tolist()
        assert other.atom_values.tolist() == left.atom_values.tolist()
    p = [0.1, 0.25, 0.5, 0.75, 0.9]
    q, bound, _ = quantiles(left, SPEC, p)
    for level, value, b in zip(p, q, bound, strict=True):
        assert abs(value - np.quantile(x, level)) <= b + 1e-9
        if b == 0.0:
            assert value == np.quantile(x, level)
