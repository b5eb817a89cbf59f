"""The folder layout of the output contract: which datasets exist, how each is partitioned
into hive folders, and the file schema a dataset's files must have (:func:`expected_schema`).

The column schemas themselves are in :mod:`pipeline.outputs.schema`.
"""

from __future__ import annotations

import re
from typing import Final

import pyarrow as pa

from pipeline.outputs.schema import (
    TRIAL_INPUT_PREFIX,
    BACKTEST_SCHEMA,
    DRIFT_SCHEMA,
    HISTOGRAMS_SCHEMA,
    INPUTS_SCHEMA,
    RUNS_SCHEMA,
    SENSITIVITY_SCHEMA,
    SUMMARY_SCHEMA,
    trials_schema,
)

_YEAR_COL_RE: Final[re.Pattern[str]] = re.compile(r"contribution_krw_bn_(\d{4})")

#: Datasets with a fixed file schema; ``trials`` is built by :func:`~pipeline.outputs.schema.trials_schema`.
FIXED_SCHEMAS: Final[dict[str, pa.Schema]] = {
    "runs": RUNS_SCHEMA,
    "summary": SUMMARY_SCHEMA,
    "histograms": HISTOGRAMS_SCHEMA,
    "sensitivity": SENSITIVITY_SCHEMA,
    "backtest": BACKTEST_SCHEMA,
    "drift": DRIFT_SCHEMA,
    "inputs": INPUTS_SCHEMA,
}

#: Datasets partitioned by (as_of_date, scenario); ``runs`` is partitioned by as_of_date only.
SCENARIO_DATASETS: Final[tuple[str, ...]] = (
    "summary",
    "histograms",
    "sensitivity",
    "trials",
    "drift",
    "inputs",
)

#: Hive partition keys and types per dataset.
PARTITIONING: Final[dict[str, pa.Schema]] = {
    "runs": pa.schema([("as_of_date", pa.date32())]),
    **{
        name: pa.schema([("as_of_date", pa.date32()), ("scenario", pa.string())])
        for name in SCENARIO_DATASETS
    },
    # A backtest spans many as-of dates (one per case): partitioned by the day it ran.
    "backtest": pa.schema([("run_date", pa.date32())]),
}


def expected_schema(dataset: str, table_schema: pa.Schema | None = None) -> pa.Schema:
    """The contract's file schema of ``dataset``.

    For ``trials`` the path years are read from ``table_schema``'s column names, and the
    sampled-input columns (``input_<name>``) are taken from it as they are.
    """
    if dataset in FIXED_SCHEMAS:
        return FIXED_SCHEMAS[dataset]
    if dataset == "trials":
        if table_schema is None:
            raise ValueError("the trials schema depends on path years: pass table_schema")
        years = [int(m.group(1)) for n in table_schema.names if (m := _YEAR_COL_RE.fullmatch(n))]
        inputs = [f for f in table_schema if f.name.startswith(TRIAL_INPUT_PREFIX)]
        return trials_schema(years, inputs)
    raise ValueError(f"unknown dataset {dataset!r}; known: {[*FIXED_SCHEMAS, 'trials']}")
