"""analysis: statistics of simulated trials, into plain dataclasses and arrays.

Owns the mergeable block summaries and their quantiles, Monte Carlo errors, the convergence
gate, proper scores and sensitivity analysis (rank and Sobol').

May import: pipeline.common, pipeline.spec, pipeline.model, numpy, scipy. Never pyarrow,
pandas, prefect or matplotlib: tables are built in pipeline.outputs.
"""
