"""README's `sma-forecast` examples are valid as written: every one parses, every `run` passes
the checks made before Prefect starts, and `show`, `report` and `validate` run for real."""

from __future__ import annotations

import datetime as dt
import glob
import re
import shlex
from pathlib import Path

import click
import pytest
import typer
from report_fixtures import publish_forecast
from typer.testing import CliRunner

import flows.forecast
from flows.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _examples() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r"^(?:\.venv/bin/)?sma-forecast (.*)$", text, flags=re.MULTILINE)
    commands = []
    for line in lines:
        args = shlex.split(line.split("#", 1)[0])
        expanded: list[str] = []
        for a in args:
            expanded += sorted(glob.glob(str(ROOT / a))) if "*" in a else [a]
        commands.append(expanded)
    return commands


EXAMPLES = _examples()


def test_readme_has_examples_of_every_command() -> None:
    used = {args[0] for args in EXAMPLES}
    assert {"run", "show", "compare", "validate", "report", "backtest", "serve"} <= used


@pytest.mark.parametrize("args", EXAMPLES, ids=[" ".join(a)[:60] for a in EXAMPLES])
def test_example_parses(args: list[str]) -> None:
    group = typer.main.get_command(app)
    ctx = click.Context(group, info_name="sma-forecast")
    command = group.get_command(ctx, args[0])  # type: ignore[attr-defined]
    assert command is not None, args[0]
    command.make_context(args[0], list(args[1:]), parent=ctx)  # raises on a bad option


class _Stop(Exception):
    """Raised instead of starting Prefect: the example got past every user check."""


@pytest.mark.parametrize(
    "args", [a for a in EXAMPLES if a[0] == "run"], ids=lambda a: " ".join(a)[:60]
)
def test_run_examples_pass_the_checks(
    args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def stop(*a: object, **k: object) -> None:
        raise _Stop

    monkeypatch.setattr(flows.forecast, "forecast_flow", stop)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "_Stop" in result.output, result.output


def test_show_report_and_validate_examples_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    publish_forecast(tmp_path / "outputs", ["baseline", "hardline"], as_of=dt.date(2026, 3, 5),
                     n_trials=1500)  # fmt: skip
    for args in EXAMPLES:
        if args[0] in ("show", "report", "validate"):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
