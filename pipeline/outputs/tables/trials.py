"""Table builder of the optional ``trials`` dataset: trial-level outcomes of a sample of trials."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from pipeline.model.outcomes import ESCALATION_RULES, Outcomes
from pipeline.outputs.schema import trials_schema
from pipeline.outputs.tables._columns import common_columns, float_column


def to_trials_frame(
    outcomes: Outcomes, *, run_id: str, first_trial_index: int, created_at: dt.datetime
) -> pa.Table:
    """Trial-level rows of ``outcomes`` for the optional ``trials`` dataset.

    Take a sample first (``outcomes.take(...)``); ``trial_index`` numbers the rows from
    ``first_trial_index``. NaN becomes null; the escalation rule is written by name.
    """
    n = outcomes.n_trials
    schema = trials_schema(outcomes.path_years)
    cols = common_columns(run_id, created_at, n)
    cols["trial_index"] = pa.array(np.arange(first_trial_index, first_trial_index + n), pa.int64())
    names = np.array([*ESCALATION_RULES, None], dtype=object)  # code -1 indexes the None
    for name, arr in outcomes.arrays().items():
        if name == "escalation_rule":
            cols[name] = pa.array(names[arr], pa.string())
        elif arr.ndim == 2:
            for j, year in enumerate(outcomes.path_years):
                cols[f"{name}_{year}"] = float_column(arr[:, j])
        elif arr.dtype == np.bool_:
            cols[name] = pa.array(arr, pa.bool_())
        else:
            cols[name] = float_column(arr)
    return pa.table([cols[f.name] for f in schema], schema=schema)
