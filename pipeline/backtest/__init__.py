"""backtest: forecast every past SMA negotiation as of its start and score it out of sample.

Owns the case files, the realized outcomes parsed from data/, forward-chained tuning, the
naive baselines, scoring and the calibration of the base priors.

May import: pipeline.common, spec, model, analysis, outputs (schemas and table builders),
numpy, scipy, pandas. Never prefect or matplotlib.
"""
