"""report: the HTML report, rebuilt from the published Parquet files alone.

Owns loading the report's data, one function per figure (matplotlib), the HTML sections and the
build; files are swapped into place by pipeline.outputs.

May import: every layer below it, pandas, pyarrow, matplotlib. Never prefect.
"""

from pipeline.report.build import ReportError, build_report, report_artifact_markdown, report_dir

__all__ = ["ReportError", "build_report", "report_artifact_markdown", "report_dir"]
