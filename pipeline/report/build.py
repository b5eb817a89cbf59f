"""One self-contained HTML report per as-of date, built from the Parquet outputs alone.

``build_report(outputs)`` reads ``runs``, ``summary``, ``histograms``, ``sensitivity`` and, when
present, ``drift`` and ``inputs`` (never a scenario file; pipeline/report/data.py), draws the
figures (pipeline/report/drawing.py, figures.py), renders the page (pipeline/report/html.py)
and has :func:`pipeline.outputs.io.publish_report` publish::

    <outputs>/reports/as_of_date=YYYY-MM-DD/index.html     the page (inline CSS, no script)
    <outputs>/reports/as_of_date=YYYY-MM-DD/*.png          its charts, linked by relative path

The folder is written under ``reports/.staging/`` and renamed into place (the old one goes to
``reports/.trash/`` and is deleted), holding ``flock`` on ``reports/.lock``, so a half-written
report is never visible and a rebuild replaces the whole folder. docs/report.md says how to read
each chart.

The ``inputs`` dataset, which lets the report show each scenario's assumptions without the YAML
files, is made by :func:`pipeline.outputs.tables.inputs.inputs_table` when a run is published.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipeline.common import PathLike
from pipeline.outputs import io
from pipeline.outputs.io import report_dir
from pipeline.report.data import ReportError, load_report_data
from pipeline.report.drawing import SectionDrawer, draw_figures
from pipeline.report.html import render_html

__all__ = ["ReportError", "build_report", "report_artifact_markdown", "report_dir"]


def build_report(
    output_dir: PathLike,
    *,
    as_of_date: dt.date | None = None,
    run_id: str | None = None,
    drawer: SectionDrawer | None = None,
) -> Path:
    """Build (or rebuild) the HTML report of one as-of date from the Parquet outputs alone.

    Parameters
    ----------
    output_dir
        Root of the outputs (``outputs/``).
    as_of_date
        Date to report; default the latest date with a completed run.
    run_id
        Report this run's date, showing the scenarios whose partitions it still holds.
    drawer
        Draws the figures' sections (e.g. in parallel); default one after another here.

    Returns
    -------
    Path of ``<output_dir>/reports/as_of_date=YYYY-MM-DD/index.html``.

    Raises :class:`ReportError` if there is no completed run to report.
    """
    data = load_report_data(output_dir, as_of_date=as_of_date, run_id=run_id)

    def write(stage: Path) -> None:
        figures = draw_figures(data, stage, drawer)
        page = render_html(data, figures, dt.datetime.now(dt.UTC))
        (stage / "index.html").write_text(page, encoding="utf-8")

    return io.publish_report(output_dir, data.as_of_date, write) / "index.html"


def report_artifact_markdown(
    index_html: PathLike, *, as_of: dt.date, drift_flags: int | None = None
) -> str:
    """Markdown for a Prefect artifact that links to a built report."""
    path = Path(index_html).resolve()
    lines = [
        f"### SMA forecast report as of {as_of.isoformat()}",
        "",
        f"[Open the report]({path.as_uri()}) (`{path}`)",
        "",
        "Charts, summary table, changes since the previous run, assumptions and provenance; "
        f"rebuild with `sma-forecast report --as-of {as_of.isoformat()}`.",
    ]
    if drift_flags is not None:
        lines += [
            "",
            "Values changed beyond Monte Carlo noise since the previous run with no change of "
            f"as-of date, evidence, configuration or code to explain them: **{drift_flags}**.",
        ]
    return "\n".join(lines)
