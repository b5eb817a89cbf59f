"""Table builder of the ``histograms`` dataset: every numeric metric on its fixed BI edges."""

from __future__ import annotations

import datetime as dt

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pipeline.analysis.accumulators import BlockSummary, metric_spec, metric_unit
from pipeline.analysis.statistics import bi_histogram
from pipeline.outputs.schema import HISTOGRAMS_SCHEMA
from pipeline.outputs.tables._columns import common_columns, float_column, metric_year_columns


def to_histogram_frame(summary: BlockSummary, *, run_id: str, created_at: dt.datetime) -> pa.Table:
    """The ``histograms`` dataset rows of one scenario (schema.HISTOGRAMS_SCHEMA).

    Every numeric metric on its fixed BI edges, with an open-ended bin at each end so the
    counts of a metric sum to the trials where it is defined.
    """
    parts: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("metric", "bin_index", "lower", "upper", "count", "prob", "dens", "unit")
    }
    calendar = (summary.calendar_base_year, summary.fiscal_year_start_month)
    for metric, acc in summary.metrics.items():
        spec = metric_spec(metric)
        edges, counts = bi_histogram(acc, spec)
        m = counts.size
        lower = np.concatenate([[np.nan], edges])
        upper = np.concatenate([edges, [np.nan]])
        prob = counts / acc.n if acc.n else np.full(m, np.nan)
        parts["metric"].append(np.full(m, metric, dtype=object))
        parts["bin_index"].append(np.arange(m, dtype=np.int32))
        parts["lower"].append(lower)
        parts["upper"].append(upper)
        parts["count"].append(counts)
        parts["prob"].append(prob)
        parts["dens"].append(prob / (upper - lower))
        parts["unit"].append(np.full(m, metric_unit(metric, *calendar), dtype=object))
    cat = {k: np.concatenate(v) if v else np.array([]) for k, v in parts.items()}
    n = cat["count"].size
    cols = common_columns(run_id, created_at, n)
    base_metric, year = metric_year_columns([str(m) for m in cat["metric"]])
    cols.update(
        base_metric=base_metric,
        year=year,
        metric=pa.array(cat["metric"], pa.string()),
        bin_index=pa.array(cat["bin_index"], pa.int32()),
        bin_lower=float_column(cat["lower"]),
        bin_upper=float_column(cat["upper"]),
        count=pa.array(cat["count"], pa.int64()),
        probability=float_column(cat["prob"]),
        density=float_column(cat["dens"]),
        unit=pa.array(cat["unit"], pa.string()),
    )
    return pa.table([cols[f.name] for f in HISTOGRAMS_SCHEMA], schema=HISTOGRAMS_SCHEMA)
