"""spec: what a run is asked to do, validated - the first layer of the data flow.

Owns the input catalog, the distribution specs (each spec class turns itself into a marginal,
describes itself and checks its support), scenario files with their overrides, dated evidence,
the SMA history loaders and the run request.

May import: pipeline.common, numpy, scipy, pydantic, yaml. Never the model, analysis, outputs
or report layers, pyarrow, pandas, prefect or matplotlib.
"""
