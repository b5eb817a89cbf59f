"""Hypothesis strategies shared by the property tests (conventions, section 13c).

Everything here draws *plain data* (seeds, paths, flags, numbers); the tests turn it into
scenarios and runs, so a shrunk counterexample prints as something one can paste into
``@example(...)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import strategies as st

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SCENARIO_PATHS: tuple[Path, ...] = tuple(sorted((CONFIG_DIR / "scenarios").glob("*.yaml")))
BASELINE = CONFIG_DIR / "scenarios" / "baseline.yaml"

MECHANISMS: tuple[str, ...] = (
    "reopening",
    "package_deal",
    "troop_lever",
    "administration_change",
    "deadline",
    "lapse_furlough",
    "cuts",
    "stopgap",
    "renegotiation",
    "expiry_pressure",
    "successor_either_way",
)

#: Fixed demand intensities the monotonicity tests compare (a grid, so that each value's
#: scenario is loaded and planned once and cached; 0.1 apart so the median effect of a step is
#: well above the rounding of the interpolated settlement).
INTENSITY_GRID: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(11))

#: Root entropies (any non-negative int is a valid seed; 64 bits is plenty to vary streams).
seeds = st.integers(min_value=0, max_value=2**64 - 1)

#: One of the shipped scenario files.
scenario_paths = st.sampled_from(SCENARIO_PATHS)

#: One of the unit-hypercube samplers.
samplers = st.sampled_from(("mc", "lhs", "sobol"))

#: Every on/off switch of the negotiation model.
mechanism_flags = st.fixed_dictionaries({name: st.booleans() for name in MECHANISMS})


@st.composite
def intensity_pairs(draw: st.DrawFn) -> tuple[float, float]:
    """Two distinct grid intensities ``(lo, hi)`` with ``lo < hi``."""
    lo, hi = draw(
        st.lists(st.sampled_from(INTENSITY_GRID), min_size=2, max_size=2, unique=True).map(sorted)
    )
    return lo, hi


@st.composite
def beta_shapes(draw: st.DrawFn, low: float = 1.0, high: float = 60.0) -> tuple[float, float]:
    """(alpha, beta) of a beta distribution; the default range (>= 1) is the tabulated one."""
    alpha = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    beta = draw(st.floats(low, high, allow_nan=False, allow_infinity=False))
    return alpha, beta


@st.composite
def pert_specs(draw: st.DrawFn) -> dict[str, float | str]:
    """A valid PERT spec as a config would state it (mode anywhere in [min, max])."""
    lo = draw(st.floats(-1e3, 1e3, allow_nan=False))
    width = draw(st.floats(1e-3, 1e3, allow_nan=False))
    share = draw(st.floats(0.0, 1.0))
    shape = draw(st.floats(0.5, 20.0))
    return {
        "dist": "pert",
        "min": lo,
        "mode": lo + share * width,
        "max": lo + width,
        "shape": shape,
    }


@st.composite
def rank_correlation_matrices(draw: st.DrawFn, k: int) -> np.ndarray:
    """A valid (symmetric, unit-diagonal, positive semi-definite) k x k correlation matrix.

    Built as the normalized Gram matrix of k random vectors in R^(k+1), so it is PSD by
    construction; vectors are kept away from zero length so the normalization is stable.
    """
    rows = draw(
        st.lists(
            st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=k + 1, max_size=k + 1).filter(
                lambda r: float(np.linalg.norm(r)) > 0.2
            ),
            min_size=k,
            max_size=k,
        )
    )
    a = np.asarray(rows, dtype=np.float64)
    gram = a @ a.T
    d = np.sqrt(np.diag(gram))
    m = gram / np.outer(d, d)
    m = (m + m.T) / 2.0
    np.fill_diagonal(m, 1.0)
    return np.clip(m, -1.0, 1.0)
