"""backtest: forecast every past SMA negotiation as of its start and score it out of sample.

Owns the case files, the realized outcomes parsed from data/, forward-chained tuning, the
naive baselines, scoring and the calibration of the base priors.

May import: pipeline.common, spec, model, analysis, outputs (schemas and table builders),
numpy, scipy, pandas. Never prefect or matplotlib.
"""

from pipeline.backtest.baselines import BASELINE_GRID_SIZE, baseline_samples
from pipeline.backtest.calibration import (
    Calibration,
    built_defaults,
    calibrate_defaults,
    describe_priors,
)
from pipeline.backtest.cases import (
    CASES_FILE,
    Case,
    CaseFact,
    CasesFile,
    CaseSpec,
    TuningGrid,
    TuningSpec,
    load_cases,
)
from pipeline.backtest.forecasts import (
    DEFAULT_BACKTEST_TRIALS,
    BacktestForecasts,
    CaseForecast,
    backtest_forecasts,
)
from pipeline.backtest.priors import (
    BUILT_INPUTS,
    CasePriors,
    NegotiationRecord,
    build_priors,
    case_priors,
    negotiation_records,
)
from pipeline.backtest.realized import (
    Realized,
    known_by,
    parse_date,
    parse_first_year_pct,
    parse_number,
    realized_outcomes,
)
from pipeline.backtest.scores import (
    COVERAGE_LEVELS,
    FORECASTERS,
    TARGETS,
    ScoreRow,
    TargetCheck,
    aggregate_scores,
    backtest_table,
    crps_ratios,
    run_backtest,
    score_forecasts,
    score_rows,
    score_samples,
    target_checks,
)
from pipeline.backtest.tuning import DEFAULT_TUNE_TRIALS, TuningTable, start_offset_months

__all__ = [
    "TargetCheck",
    "target_checks",
    "BUILT_INPUTS",
    "CasePriors",
    "NegotiationRecord",
    "build_priors",
    "case_priors",
    "negotiation_records",
    "BASELINE_GRID_SIZE",
    "CASES_FILE",
    "COVERAGE_LEVELS",
    "DEFAULT_BACKTEST_TRIALS",
    "DEFAULT_TUNE_TRIALS",
    "FORECASTERS",
    "TARGETS",
    "BacktestForecasts",
    "Calibration",
    "Case",
    "CaseFact",
    "CaseForecast",
    "CaseSpec",
    "CasesFile",
    "Realized",
    "ScoreRow",
    "TuningGrid",
    "TuningSpec",
    "TuningTable",
    "aggregate_scores",
    "backtest_forecasts",
    "backtest_table",
    "built_defaults",
    "baseline_samples",
    "calibrate_defaults",
    "crps_ratios",
    "describe_priors",
    "known_by",
    "load_cases",
    "parse_date",
    "parse_first_year_pct",
    "parse_number",
    "realized_outcomes",
    "run_backtest",
    "score_forecasts",
    "score_rows",
    "score_samples",
    "start_offset_months",
]
