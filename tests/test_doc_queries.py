"""Every query in README.md ("Reading the outputs from BI tools") and docs/outputs.md runs
against a real run's outputs: an official run of two scenarios and a what-if of one, same day."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from report_fixtures import publish_forecast

from pipeline.outputs import io

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2026, 3, 5)
DOCS = {"README.md": ROOT / "README.md", "outputs.md": ROOT / "docs" / "outputs.md"}


def _blocks(path: Path, lang: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if path.name == "README.md":
        text = text[text.index("## Reading the outputs from BI tools") :]
        text = text[: text.index("\n## ", 5)]
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip().replace("\n", "").strip("- ")]


SQL = [(n, q) for n, p in DOCS.items() for b in _blocks(p, "sql") for q in _statements(b)]
PYTHON = [(n, b) for n, p in DOCS.items() for b in _blocks(p, "python")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("docs")
    out = root / "outputs"
    official, _ = publish_forecast(out, ["baseline", "hardline"], as_of=DAY, n_trials=1500,
                                   trials_sample=200)  # fmt: skip
    whatif, _ = publish_forecast(out, ["hardline"], as_of=DAY, n_trials=1500,
                                 overrides={"us_headline_ask_usd_bn.value": 12}, what_if=True)  # fmt: skip
    return {"root": root, "official": official, "whatif": whatif}


def test_docs_have_queries_for_every_reader() -> None:
    assert len(SQL) >= 6 and len(PYTHON) >= 4
    text = " ".join(q for _, q in SQL) + " ".join(b for _, b in PYTHON)
    for reader in ("import pandas", "import polars", "pyarrow.dataset", "latest/summary.parquet"):
        assert reader in text, reader


@pytest.mark.parametrize("doc,query", SQL, ids=[f"{n}:{q[:40]}" for n, q in SQL])
def test_sql_query_runs(
    doc: str, query: str, runs: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runs["root"])  # type: ignore[arg-type]
    rows = duckdb.sql(query).df()
    assert len(rows) > 0, query
    if "run_id" in rows and "what-if" not in query:
        assert runs["whatif"] not in set(rows.run_id), "a what-if leaked into an official query"
    if "scenario" in rows and "latest/" in query:
        assert set(rows.scenario) == {"baseline", "hardline"}  # the what-if dropped nothing


@pytest.mark.parametrize("doc,code", PYTHON, ids=[f"{n}:{i}" for i, (n, _) in enumerate(PYTHON)])
def test_python_snippet_runs(
    doc: str, code: str, runs: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(runs["root"])  # type: ignore[arg-type]
    names: dict[str, object] = {}
    exec(compile(code, doc, "exec"), names)  # noqa: S102 - the docs' own code
    frames = [v for k, v in names.items() if not k.startswith("_") and hasattr(v, "shape")]
    assert frames and all(f.shape[0] > 0 for f in frames)  # type: ignore[attr-defined]
    for frame in frames:
        df = frame if isinstance(frame, pd.DataFrame) else frame.to_pandas()  # type: ignore[attr-defined]
        if "run_id" in df and "run_kind" not in df:
            assert runs["whatif"] not in set(df.run_id)
        if "as_of_date" in df and "run_kind" not in df:
            assert pd.Timestamp(df.as_of_date.max()).date() == DAY  # typed: max() works


def test_latest_holds_the_official_run_with_every_key(runs: dict[str, object]) -> None:
    latest = Path(runs["root"]) / "outputs" / "latest"  # type: ignore[arg-type]
    assert sorted(p.name for p in latest.iterdir()) == [
        "histograms.parquet", "path.parquet", "sensitivity.parquet", "summary.parquet",
    ]  # fmt: skip
    summary = pd.read_parquet(latest / "summary.parquet")
    assert set(summary.run_id) == {runs["official"]}
    assert {"scenario", "as_of_date", "run_id"} <= set(summary.columns)
    assert summary.as_of_date.max() == DAY and (summary.as_of_date == DAY).all()
    p50 = summary[(summary.metric == "lapse_months") & (summary.statistic == "p50")]
    assert list(p50.value) == [0.0, 0.0] and list(p50.mc_standard_error) == [0.0, 0.0]
    path = pd.read_parquet(latest / "path.parquet")
    assert str(path.year.dtype) == "int32" and path.year.min() >= 2026
    assert not path.metric.str.contains(r"_\d{4}$").any()


def test_latest_summary_names_known_scenarios(runs: dict[str, object]) -> None:
    out = Path(runs["root"]) / "outputs"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no published scenario 'base'.*known: baseline, hardline"):
        io.latest_summary(out, scenario="base")
    assert set(io.latest_summary(out, scenario="hardline").run_id) == {runs["official"]}
