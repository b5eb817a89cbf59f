"""report: the HTML report, rebuilt from the published Parquet files alone.

Owns reading the report's data (data.py), one function per figure (drawing.py, drawn with the
matplotlib functions of figures.py), labels and number formats (format.py), the HTML page and
its sections (html.py) and the build (build.py). It renders into a staging folder that
pipeline.outputs.io gives it; io swaps the folder into place (the report writes nothing else).

May import: every layer below it, pandas, pyarrow, matplotlib. Never prefect.
"""

from pipeline.report.build import ReportError, build_report, report_artifact_markdown, report_dir

__all__ = ["ReportError", "build_report", "report_artifact_markdown", "report_dir"]
