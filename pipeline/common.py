"""The base layer: type aliases and constants every layer shares (numpy only).

Nothing here imports another module of the package, so any layer may import it.
"""

from __future__ import annotations

import os
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.int64]
PathLike: TypeAlias = str | os.PathLike[str]

#: Smallest uniform draw kept away from 0 and 1 before an inverse CDF (2**-53: the spacing of
#: float64 just below 1), so every transform stays finite.
UNIT_EPS: Final[float] = 2.0**-53

#: Quantile statistics of numeric metrics, in output order (also the quantile fields that a
#: distribution spec may be given by: p05/p95 and so on).
QUANTILE_LEVELS: Final[dict[str, float]] = {
    "p01": 0.01,
    "p05": 0.05,
    "p10": 0.10,
    "p25": 0.25,
    "p50": 0.50,
    "p75": 0.75,
    "p90": 0.90,
    "p95": 0.95,
    "p99": 0.99,
}
