"""The Parquet output contract as code: the file schema of every dataset.

A leaf module (imports only pipeline.common). docs/outputs.md is the prose version of this
file; change a column only by bumping :data:`SCHEMA_VERSION` and saying so there.

Partition columns (``as_of_date``, ``scenario``) live in hive folder names, never in files,
so the schemas below are the *file* schemas; readers add the partition columns from
:data:`pipeline.outputs.layout.PARTITIONING`. The folder layout and the schema lookup by
dataset name are in :mod:`pipeline.outputs.layout`; the ``runs`` record, name and timestamp
checks and the Parquet metadata keys are in :mod:`pipeline.outputs.records`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pyarrow as pa

from pipeline.common import QUANTILE_LEVELS

#: Version of the layout and columns below; every row and every file carries it.
#: 2: ``runs.run_kind`` and ``runs.overrides``; what-if runs publish under ``whatif/<run_id>/``
#: (files of version 1 stay readable: their runs rows read as official, overrides null).
#: 3: tidy, typed columns (``base_metric``/``year``/``value_date`` in summary, ``base_metric``/
#: ``year`` in histograms; ``runs.n_trials`` per scenario with ``n_trials_total``; provenance
#: hashes in runs; integer years, dates and sampled inputs in trials; drift says the cause).
#: Readers upgrade rows of versions 1 and 2 (pipeline/outputs/readers.py).
SCHEMA_VERSION: Final[int] = 3

#: Values of ``runs.run_kind``.
OFFICIAL: Final[str] = "official"
WHAT_IF: Final[str] = "what-if"

TIMESTAMP: Final[pa.DataType] = pa.timestamp("us", tz="UTC")


def _field(
    name: str, type_: pa.DataType, description: str, unit: str, *, nullable: bool = False
) -> pa.Field:
    """A field with its description and unit in the field metadata."""
    return pa.field(
        name, type_, nullable=nullable, metadata={"description": description, "unit": unit}
    )


def _common_tail() -> list[pa.Field]:
    return [
        _field("schema_version", pa.int32(), "Version of this output contract.", "version"),
        _field("created_at", TIMESTAMP, "When the row was produced.", "UTC timestamp"),
    ]


_RUN_ID = _field("run_id", pa.string(), "Id of the run attempt; joins to runs.run_id.", "id")

RUNS_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field(
            "flow_name", pa.string(), "Name of the flow (or entry point) that made the run.", "name"
        ),
        _field("started_at", TIMESTAMP, "Start of the run.", "UTC timestamp"),
        _field("finished_at", TIMESTAMP, "End of the run (success or failure).", "UTC timestamp"),
        _field("status", pa.string(), "'completed' or 'failed'.", "enum"),
        _field(
            "n_trials",
            pa.int64(),
            "Trials requested per scenario (every scenario of a run has the same count); "
            "summed over scenarios in files of schema version 1 and 2.",
            "trials",
        ),
        _field(
            "n_trials_effective",
            pa.int64(),
            "Trials kept after evidence conditioning, summed over scenarios; null if unknown.",
            "trials",
            nullable=True,
        ),
        _field(
            "seed_entropy",
            pa.string(),
            "Root SeedSequence entropy as a decimal integer (up to 128 bits).",
            "integer",
        ),
        _field("chunk_size", pa.int64(), "Trials per fixed block (seed stream unit).", "trials"),
        _field("sampler", pa.string(), "Sampling method, e.g. 'mc', 'lhs', 'sobol'.", "name"),
        _field(
            "scenarios",
            pa.string(),
            "Comma-separated scenario names of the run, in run order.",
            "names",
        ),
        _field(
            "config_hash",
            pa.string(),
            "sha256 of the normalized configuration of all scenarios of the run.",
            "hex",
        ),
        _field("package_version", pa.string(), "Version of sma-forecast.", "version"),
        _field(
            "git_commit", pa.string(), "Git commit of the code, if known.", "hex", nullable=True
        ),
        _field(
            "prefect_flow_run_id",
            pa.string(),
            "Prefect flow-run id, if run under Prefect.",
            "uuid",
            nullable=True,
        ),
        _field(
            "target_se",
            pa.float64(),
            "Monte Carlo standard error the run aimed for, if any.",
            "unit of the monitored statistic",
            nullable=True,
        ),
        _field(
            "achieved_se",
            pa.float64(),
            "Monte Carlo standard error achieved for the monitored statistic, if any.",
            "unit of the monitored statistic",
            nullable=True,
        ),
        _field(
            "run_kind",
            pa.string(),
            "'official' or 'what-if' (overrides, another config folder or evidence file, or "
            "a scenario file outside configs/scenarios); null in files of schema version 1 "
            "(official).",
            "enum",
            nullable=True,
        ),
        _field(
            "overrides",
            pa.string(),
            "What-if runs: JSON object of what made them one ('set': the --set values, "
            "'config_dir', 'evidence_file', 'scenario_files'); null for official runs.",
            "JSON",
            nullable=True,
        ),
        _field(
            "n_trials_total",
            pa.int64(),
            "Trials requested, summed over the run's scenarios (n_trials x scenarios). "
            "Added in version 3.",
            "trials",
        ),
        _field(
            "config_hashes",
            pa.string(),
            "JSON object: scenario name -> sha256 of its normalized configuration; null in "
            "files before version 3 and for backtests.",
            "JSON",
            nullable=True,
        ),
        _field(
            "evidence_hash",
            pa.string(),
            "sha256 of the evidence facts known as of the run's as_of_date (not of the date "
            "itself); null in files before version 3 and for backtests.",
            "hex",
            nullable=True,
        ),
        *_common_tail(),
    ]
)

_BASE_METRIC = _field(
    "base_metric",
    pa.string(),
    "metric without its year for per-year metrics (contribution_krw_bn for "
    "contribution_krw_bn_2028, settled_by for settled_by_2029); equal to metric otherwise. "
    "Added in version 3.",
    "name",
)
_YEAR = _field(
    "year",
    pa.int32(),
    "Calendar year of a per-year metric (2028 for contribution_krw_bn_2028); null otherwise. "
    "Added in version 3.",
    "year",
    nullable=True,
)

SUMMARY_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field(
            "metric", pa.string(), "Outcome name, units in the name (see docs/outputs.md).", "name"
        ),
        _field("statistic", pa.string(), "mean, sd, min, max, p01..p99 or prob.", "name"),
        _field(
            "value",
            pa.float64(),
            "Value of the statistic; null if no trial defines the metric.",
            "see unit",
            nullable=True,
        ),
        _field(
            "mc_standard_error",
            pa.float64(),
            "Monte Carlo standard error of value; null where undefined.",
            "see unit",
            nullable=True,
        ),
        _field(
            "n_trials",
            pa.int64(),
            "Trials the statistic is computed over (where the metric is defined).",
            "trials",
        ),
        _field("unit", pa.string(), "Unit of value and mc_standard_error.", "text"),
        _field(
            "quantile_error_bound",
            pa.float64(),
            "Quantile rows: max |value - sample quantile|: at most the fine bin width; 0 where "
            "the quantile lies in a point mass (value exact); larger only for a quantile "
            "clamped to the edge of the fine range. Null for other rows.",
            "see unit",
            nullable=True,
        ),
        _BASE_METRIC,
        _YEAR,
        _field(
            "value_date",
            pa.date32(),
            "Metrics in 'month index' units (talks_start_month): value as a calendar date "
            "(the day the fractional month index falls on); null for other metrics or a null "
            "value. Added in version 3.",
            "date",
            nullable=True,
        ),
        *_common_tail(),
    ]
)

HISTOGRAMS_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field("metric", pa.string(), "Outcome name (see docs/outputs.md).", "name"),
        _field(
            "bin_index",
            pa.int32(),
            "0 = below range, 1..K = fixed bins, K+1 = above range.",
            "index",
        ),
        _field(
            "bin_lower",
            pa.float64(),
            "Inclusive lower edge; null for bin 0.",
            "see unit",
            nullable=True,
        ),
        _field(
            "bin_upper",
            pa.float64(),
            "Exclusive upper edge; null for the last bin.",
            "see unit",
            nullable=True,
        ),
        _field("count", pa.int64(), "Trials in the bin.", "trials"),
        _field(
            "probability",
            pa.float64(),
            "count / trials where the metric is defined; null if none.",
            "probability",
            nullable=True,
        ),
        _field(
            "density",
            pa.float64(),
            "probability / bin width; null for the open-ended bins.",
            "1/unit",
            nullable=True,
        ),
        _field("unit", pa.string(), "Unit of the bin edges.", "text"),
        _BASE_METRIC,
        _YEAR,
        *_common_tail(),
    ]
)

#: File schema of the ``sensitivity`` dataset: one row per (run, metric, input, method,
#: statistic), from pipeline/analysis/rank_sensitivity.py and sobol.py (see docs/model.md).
SENSITIVITY_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field("metric", pa.string(), "Output analysed, as in summary.metric.", "name"),
        _field(
            "input",
            pa.string(),
            "Input name (pipeline/spec/catalog.py); for sobol also 'group:a+b' (inputs tied by "
            "rank correlation, one factor) and 'event:<name>' (the model's chance draws).",
            "name",
        ),
        _field("method", pa.string(), "'spearman', 'tornado' or 'sobol'.", "enum"),
        _field(
            "statistic",
            pa.string(),
            "spearman: rank_correlation; tornado: median_at_low_decile, "
            "median_at_high_decile, swing; sobol: first_order, total_order.",
            "enum",
        ),
        _field(
            "value",
            pa.float64(),
            "Value of the statistic; null where undefined.",
            "see unit",
            nullable=True,
        ),
        _field(
            "ci_low",
            pa.float64(),
            "Lower end of the 95% confidence interval.",
            "see unit",
            nullable=True,
        ),
        _field(
            "ci_high",
            pa.float64(),
            "Upper end of the 95% confidence interval.",
            "see unit",
            nullable=True,
        ),
        _field(
            "input_value",
            pa.float64(),
            "Tornado median rows: the input's 10th or 90th percentile (or category code).",
            "see input_unit",
            nullable=True,
        ),
        _field("n_trials", pa.int64(), "Trials (or model evaluations) behind the value.", "trials"),
        _field(
            "rank",
            pa.int32(),
            "Importance rank of the input, 1 = most influential.",
            "rank",
            nullable=True,
        ),
        _field("unit", pa.string(), "Unit of value, ci_low and ci_high.", "text"),
        _field("input_unit", pa.string(), "Unit of the input (and of input_value).", "text"),
        *_common_tail(),
    ]
)

# Units of the per-trial Outcomes fields, for the trials dataset.
_TRIAL_FIELD_DOCS: Final[dict[str, tuple[pa.DataType, str, str]]] = {
    "reopened": (pa.bool_(), "Talks opened early under US pressure.", "bool"),
    "talks_start_month": (pa.float64(), "Model month in which talks open.", "month index"),
    "months_to_settlement": (
        pa.float64(),
        "Months from opening to agreement; censored at the horizon if unsettled.",
        "months",
    ),
    "settled_by_horizon": (pa.bool_(), "An agreement was reached within the horizon.", "bool"),
    "settlement_month": (
        pa.float64(),
        "Model month of agreement; null if unsettled.",
        "month index",
    ),
    "lapse": (pa.bool_(), "At some point no agreement was in force.", "bool"),
    "lapse_months": (pa.float64(), "Months without an agreement in force.", "months"),
    "furlough": (pa.bool_(), "Korean USFK workers were furloughed.", "bool"),
    "troop_threat": (pa.bool_(), "The US made a troop-posture threat.", "bool"),
    "package_deal": (pa.bool_(), "Part of the demand was met outside the SMA.", "bool"),
    "first_year": (pa.int32(), "First calendar year of the new agreement.", "year"),
    "first_year_krw_bn": (pa.float64(), "Contribution in the first year.", "KRW bn"),
    "first_year_usd_m": (pa.float64(), "The same at the sampled exchange rate.", "USD m"),
    "increase_pct": (pa.float64(), "First-year increase over the replaced level.", "%"),
    "term_years": (pa.float64(), "Term of the new agreement.", "years"),
    "escalation_rule": (
        pa.string(),
        "Escalation rule after year one (results.ESCALATION_RULES); null if unsettled.",
        "name",
    ),
    "stopgap": (pa.bool_(), "A stop-gap extension was agreed at expiry.", "bool"),
    "stopgap_months": (pa.float64(), "Length of the stop-gap extension (0: none).", "months"),
    "stopgap_first_year": (pa.int32(), "First year of the stop-gap extension.", "year"),
    "stopgap_level_krw_bn": (pa.float64(), "Contribution under the stop-gap.", "KRW bn"),
    "renegotiated": (pa.bool_(), "The new agreement ended and was renegotiated.", "bool"),
    "renewal_first_year": (pa.int32(), "First year of the first renewal.", "year"),
    "renewal_increase_pct": (pa.float64(), "First-year increase of the first renewal.", "%"),
}

#: Scalar trial fields in column order (every scalar field of results.Outcomes).
TRIAL_SCALAR_FIELDS: Final[tuple[str, ...]] = tuple(_TRIAL_FIELD_DOCS)


#: Date columns of the trials dataset: name -> (month-index field it follows, description).
TRIAL_DATE_FIELDS: Final[dict[str, tuple[str, str]]] = {
    "talks_start_date": ("talks_start_month", "Date on which talks open (talks_start_month)."),
    "settlement_date": ("settlement_month", "Date of agreement (settlement_month); null if none."),
}
#: Prefix of the sampled-input columns of the trials dataset (``input_<catalog name>``).
TRIAL_INPUT_PREFIX: Final[str] = "input_"


def trial_input_field(name: str, type_: pa.DataType, description: str, unit: str) -> pa.Field:
    """The trials column of one sampled input (``input_<name>``)."""
    return _field(f"{TRIAL_INPUT_PREFIX}{name}", type_, f"Sampled input: {description}", unit,
                  nullable=True)  # fmt: skip


def trials_schema(path_years: Sequence[int], inputs: Sequence[pa.Field] = ()) -> pa.Schema:
    """File schema of the ``trials`` dataset for the given contribution-path years.

    Parameters
    ----------
    path_years
        Calendar years of ``Outcomes.contribution_krw_bn`` columns [year].
    inputs
        The sampled-input columns (:func:`trial_input_field`), in catalog order; they follow
        the outcomes so that a user can plot any input against any outcome.
    """
    cols = [
        _RUN_ID,
        _field("trial_index", pa.int64(), "Global index of the trial in the run.", "index"),
    ]
    dates = {after: (name, doc) for name, (after, doc) in TRIAL_DATE_FIELDS.items()}
    for name, (type_, doc, unit) in _TRIAL_FIELD_DOCS.items():
        cols.append(_field(name, type_, doc, unit, nullable=True))
        if name in dates:
            date_name, date_doc = dates[name]
            cols.append(_field(date_name, pa.date32(), date_doc, "date", nullable=True))
    for year in path_years:
        cols.append(
            _field(
                f"contribution_krw_bn_{year}",
                pa.float64(),
                f"Contribution in {year}.",
                "KRW bn",
                nullable=True,
            )
        )
    for year in path_years:
        cols.append(
            _field(
                f"contribution_usd_m_{year}",
                pa.float64(),
                f"Contribution in {year} at the sampled exchange rate.",
                "USD m",
                nullable=True,
            )
        )
    return pa.schema([*cols, *inputs, *_common_tail()])


#: File schema of the ``backtest`` dataset: one row per (case, target, forecaster, score).
BACKTEST_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _field("run_id", pa.string(), "Id of the run attempt; joins to runs.run_id.", "id"),
        _field("case", pa.string(), "Backtest case (configs/backtest/cases.yaml).", "name"),
        _field("sma_number", pa.int32(), "Which SMA negotiation the case forecasts.", "number"),
        _field(
            "case_as_of_date",
            pa.date32(),
            "Date the case's forecast is made as of (not the run's as_of_date).",
            "date",
        ),
        _field("target", pa.string(), "increase_pct, months_to_settlement or lapse.", "name"),
        _field("unit", pa.string(), "Unit of realized and the forecast quantiles.", "text"),
        _field("forecaster", pa.string(), "model, previous_repeated or historical.", "name"),
        _field(
            "score",
            pa.string(),
            "crps, log_score, pit, covers_50/80/90 (1 = inside), brier, prob.",
            "name",
        ),
        _field(
            "value",
            pa.float64(),
            "The score; lower is better for crps, log_score and brier.",
            "crps: unit of target; log_score: nats; others: 0-1",
        ),
        _field("realized", pa.float64(), "The realized outcome (data/).", "see unit"),
        _field(
            "forecast_p05",
            pa.float64(),
            "5% quantile of the forecast (lapse: probability).",
            "see unit",
        ),
        _field("forecast_p50", pa.float64(), "Median of the forecast.", "see unit"),
        _field("forecast_p95", pa.float64(), "95% quantile of the forecast.", "see unit"),
        _field("n_samples", pa.int64(), "Samples the forecast has (non-NaN).", "samples"),
        _field(
            "defined_share",
            pa.float64(),
            "Share of model trials defining the target (agreement in the horizon).",
            "share",
        ),
        _field(
            "history_used",
            pa.string(),
            "Comma-separated SMA numbers whose outcomes the forecast used "
            "(model: the tuning cases; baselines: all SMAs known by as_of_date).",
            "numbers",
        ),
        _field(
            "priors",
            pa.string(),
            "Model rows: the tuned inputs' specs used; empty for baselines.",
            "text",
        ),
        _field("schema_version", pa.int32(), "Version of this output contract.", "1"),
        _field("created_at", TIMESTAMP, "When the row was produced.", "UTC timestamp"),
    ]
)


#: File schema of the ``drift`` dataset: one row per (run, key metric/statistic) comparing a
#: scenario's run with the previous completed run of that scenario (pipeline/outputs/drift.py).
DRIFT_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field(
            "previous_run_id",
            pa.string(),
            "The run compared with: the latest earlier completed run of the scenario; null "
            "if there was none.",
            "id",
            nullable=True,
        ),
        _field(
            "previous_as_of_date",
            pa.date32(),
            "as_of_date of the previous run; null if there was none.",
            "date",
            nullable=True,
        ),
        _field("metric", pa.string(), "Outcome name, as in summary.metric.", "name"),
        _field("statistic", pa.string(), "p10, p50, p90 (key metrics) or prob.", "enum"),
        _field("value", pa.float64(), "This run's value.", "see unit", nullable=True),
        _field(
            "previous_value",
            pa.float64(),
            "The previous run's value; null if none.",
            "see unit",
            nullable=True,
        ),
        _field("change", pa.float64(), "value - previous_value.", "see unit", nullable=True),
        _field(
            "noise_se",
            pa.float64(),
            "Monte Carlo standard error of the change, sqrt(se^2 + previous_se^2) as for "
            "independent seeds; null where a standard error is undefined.",
            "see unit",
            nullable=True,
        ),
        _field(
            "z",
            pa.float64(),
            "change / noise_se; null where noise_se is null or 0.",
            "standard errors",
            nullable=True,
        ),
        _field(
            "flag_threshold",
            pa.float64(),
            "|change| above which the row is flagged: 4 noise_se plus the two quantile error "
            "bounds (0 for probabilities).",
            "see unit",
            nullable=True,
        ),
        _field(
            "flagged",
            pa.bool_(),
            "An unexplained move: beyond_noise, and the two runs share the as-of date, "
            "evidence, configuration and code (cause 'none') or that is unknown (cause null). "
            "Before version 3: beyond_noise.",
            "bool",
        ),
        _field("n_trials", pa.int64(), "This run's n_trials for the row.", "trials"),
        _field(
            "previous_n_trials",
            pa.int64(),
            "The previous run's n_trials for the row; null if none.",
            "trials",
            nullable=True,
        ),
        _field("unit", pa.string(), "Unit of value, previous_value, change and noise_se.", "text"),
        _field(
            "beyond_noise",
            pa.bool_(),
            "|change| > flag_threshold: larger than Monte Carlo noise can explain. Added in "
            "version 3 (what flagged meant before).",
            "bool",
        ),
        _field(
            "cause",
            pa.string(),
            "What differs between the two runs and can move values, '+'-joined from "
            "'calendar' (a later as-of date), 'evidence', 'config', 'code'; 'none' if none of "
            "them differs; null if unknown (no previous run, or provenance not recorded). "
            "Added in version 3.",
            "enum",
            nullable=True,
        ),
        _field(
            "cause_detail",
            pa.string(),
            "The cause in words, e.g. 'calendar: as of 2026-10-01 instead of 2026-09-30, a new "
            "as-of month (the simulation starts in 2026-10 instead of 2026-09)'. Added in "
            "version 3.",
            "text",
            nullable=True,
        ),
        *_common_tail(),
    ]
)

#: File schema of the ``inputs`` dataset: the assumptions of each scenario of a run, one row per
#: model input (its distribution as stated and its 5/50/95% quantiles), per non-random model
#: setting, plus one row with the scenario's description (pipeline/report/: inputs_table).
INPUTS_SCHEMA: Final[pa.Schema] = pa.schema(
    [
        _RUN_ID,
        _field(
            "input",
            pa.string(),
            "Input name (pipeline/spec/catalog.py), setting path (e.g. 'model.mechanisms.reopening', "
            "'rank_correlation') or 'description'.",
            "name",
        ),
        _field("kind", pa.string(), "'input', 'setting' or 'description'.", "enum"),
        _field(
            "distribution",
            pa.string(),
            "input: the distribution as stated, e.g. 'PERT(min=0.2, mode=0.55, max=1)'; "
            "setting: its value; description: the scenario's description.",
            "text",
        ),
        _field("unit", pa.string(), "Unit of the input and of p05/p50/p95; '' otherwise.", "text"),
        _field("description", pa.string(), "What the input or setting means.", "text"),
        _field(
            "p05",
            pa.float64(),
            "input: 5% quantile of the distribution, clipped to the allowed range as sampled; "
            "null for settings and categorical inputs.",
            "see unit",
            nullable=True,
        ),
        _field("p50", pa.float64(), "input: median (as p05).", "see unit", nullable=True),
        _field("p95", pa.float64(), "input: 95% quantile (as p05).", "see unit", nullable=True),
        *_common_tail(),
    ]
)


NUMERIC_STATISTICS: Final[tuple[str, ...]] = ("mean", "sd", "min", "max", *QUANTILE_LEVELS)
