"""model: seeding, sampling and the simulation core - numbers in, numbers out.

Owns the seed streams, the samplers and copula, the model settings and run plan of a scenario,
the simulation of the negotiation (simulate; the bargaining, solved phase by phase, in
bargaining) and the per-trial outcomes container.

May import: pipeline.common, pipeline.spec, numpy, scipy. Never pyarrow, pandas, prefect or
matplotlib (tests/test_layers.py checks), nor the analysis, outputs or report layers.
"""
