"""Columns shared by the table builders: run id, schema version and UTC creation time, and
float columns with NaN written as null."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.outputs.records import require_utc
from pipeline.outputs.schema import SCHEMA_VERSION, TIMESTAMP


def utc_timestamp(created_at: dt.datetime) -> pa.Scalar:
    """``created_at`` as a UTC microsecond timestamp scalar; raises if it is not UTC."""
    require_utc(created_at, "created_at")
    return pa.scalar(created_at, type=TIMESTAMP)


def common_columns(run_id: str, created_at: dt.datetime, n: int) -> dict[str, pa.Array]:
    """The ``schema_version``, ``created_at`` and ``run_id`` columns of ``n`` rows."""
    return {
        "schema_version": pa.repeat(pa.scalar(SCHEMA_VERSION, pa.int32()), n),
        "created_at": pa.repeat(utc_timestamp(created_at), n),
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
    }


def float_column(x: npt.ArrayLike) -> pa.Array:
    """float64 array with NaN as null (BI tools handle null, not NaN)."""
    return pa.array(np.asarray(x, dtype=np.float64), type=pa.float64(), from_pandas=True)
