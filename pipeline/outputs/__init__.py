"""outputs: the Parquet contract - schemas, one table builder per dataset, publication, readers.

The only code that writes files under an output folder (atomically, under an exclusive lock),
and the readers of what was published (latest summary, previous run for drift).

May import: every layer below it (common, spec, model, analysis), pyarrow and pandas. Never
prefect or matplotlib.
"""
