"""Table builder of the optional ``trials`` dataset: trial-level outcomes of a sample of trials,
with the inputs each trial was simulated with (so users can draw input/output scatters)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.common import FloatArray, month_index_dates
from pipeline.model.outcomes import ESCALATION_RULES, Outcomes
from pipeline.outputs.schema import TRIAL_DATE_FIELDS, trial_input_field, trials_schema
from pipeline.outputs.tables._columns import common_columns, float_column
from pipeline.spec.catalog import INPUT_BY_NAME

#: Trial fields holding calendar years: written as int32 (2031, never 2031.0).
_YEAR_FIELDS = frozenset({"first_year", "stopgap_first_year", "renewal_first_year"})


def _input_column(name: str, values: FloatArray, currency: str) -> tuple[pa.Field, pa.Array]:
    """One sampled input as a column: categories by name, yes/no inputs as bool, everything
    else float64."""
    info = INPUT_BY_NAME[name]
    unit = info.unit.replace("KRW", currency)
    if info.kind == "binary":
        field = trial_input_field(name, pa.bool_(), info.description, "bool")
        return field, pa.array(values > 0.5, pa.bool_(), mask=~np.isfinite(values))
    if info.kind == "category":
        labels = np.array([*info.categories, None], dtype=object)
        codes = np.where(np.isfinite(values), values, -1).astype(np.int64)
        field = trial_input_field(name, pa.string(), info.description, "category")
        return field, pa.array(labels[codes], pa.string())
    return trial_input_field(name, pa.float64(), info.description, unit), float_column(values)


def to_trials_frame(
    outcomes: Outcomes,
    *,
    run_id: str,
    first_trial_index: int | npt.ArrayLike,
    created_at: dt.datetime,
    inputs: Mapping[str, FloatArray] | None = None,
) -> pa.Table:
    """Trial-level rows of ``outcomes`` for the optional ``trials`` dataset.

    Take a sample first (``outcomes.take(...)``). ``first_trial_index`` is either the global
    index of the first row (rows numbered on from it) or every row's global index (after
    evidence conditioning dropped trials). ``inputs`` are the same trials' sampled inputs
    (``run_block``'s second result, taken alike), written as ``input_<name>`` columns after
    the outcomes. NaN becomes null; the escalation rule and categorical inputs are written by
    name, calendar years as int32, and month indexes get a date column beside them.
    """
    n = outcomes.n_trials
    index = np.asarray(first_trial_index, dtype=np.int64)
    if index.ndim == 0:
        index = np.arange(int(index), int(index) + n, dtype=np.int64)
    if index.shape != (n,):
        raise ValueError(f"trial indexes: expected {n}, got {index.shape}")
    cols = common_columns(run_id, created_at, n)
    cols["trial_index"] = pa.array(index, pa.int64())
    names = np.array([*ESCALATION_RULES, None], dtype=object)  # code -1 indexes the None
    arrays = outcomes.arrays()
    for name, arr in arrays.items():
        if name == "escalation_rule":
            cols[name] = pa.array(names[arr], pa.string())
        elif arr.ndim == 2:
            for j, year in enumerate(outcomes.path_years):
                cols[f"{name}_{year}"] = float_column(arr[:, j])
        elif arr.dtype == np.bool_:
            cols[name] = pa.array(arr, pa.bool_())
        elif name in _YEAR_FIELDS:
            whole = np.where(np.isfinite(arr), arr, 0).astype(np.int32)
            cols[name] = pa.array(whole, pa.int32(), mask=~np.isfinite(arr))
        else:
            cols[name] = float_column(arr)
    for date_name, (month_name, _) in TRIAL_DATE_FIELDS.items():
        days = month_index_dates(
            arrays[month_name], outcomes.calendar_base_year, outcomes.fiscal_year_start_month
        )
        cols[date_name] = pa.array(days, pa.date32(), from_pandas=True)
    fields = []
    for name, values in (inputs or {}).items():
        field, column = _input_column(name, np.asarray(values, np.float64), outcomes.currency)
        fields.append(field)
        cols[field.name] = column
    schema = trials_schema(outcomes.path_years, fields)
    return pa.table([cols[f.name] for f in schema], schema=schema)
