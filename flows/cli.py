"""``sma-forecast``: a thin command-line shell over the flows.

Exit codes: 0 success; 2 a user error (bad file, option, scenario name, date, an output
folder that cannot be written...), reported in one line with nothing written, or a run that
failed a validity gate (nothing published; the attempt is recorded as failed); 1 an internal
error, or a published run whose HTML report failed; 130 after SIGINT (Ctrl-C) and 143 after
SIGTERM (the run stops between blocks and is recorded as failed).
"""

from __future__ import annotations

import os

# One BLAS thread per process, set before numpy loads: parallelism comes from tasks (threads or
# dask workers, which get the same setting from dask). A multithreaded BLAS call waits for a
# second core: under load it stalled 0.2 ms products for tens of ms, and OpenBLAS's dot
# product rounds differently with 1 and 2 threads (last bit of a block's sum of squares).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import contextlib  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, cast  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402
from rich.table import Table  # noqa: E402

from flows.cancellation import install_exit_handlers  # noqa: E402
from flows.results import BacktestRunResult, ForecastRunResult  # noqa: E402
from pipeline.spec.request import (  # noqa: E402  (no Prefect: checks run before it starts)
    AUTO_PROCESS_MIN_TRIALS,
    DEFAULT_BACKTEST_TRIALS,
    DEFAULT_CONFIG_DIR,
    DEFAULT_OUTPUT_DIR,
    DEFAULT_WORKERS,
    RunRequest,
    allow_local_files,
)

if TYPE_CHECKING:
    from pipeline.compose import PreparedRun

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Monte Carlo forecasts of the US-South Korea cost-sharing (SMA) negotiations.",
)
out = Console()
if not out.is_terminal:
    out.width = 160  # pipes and CI logs: keep tables on one line
err = Console(stderr=True)
T = TypeVar("T")


def _base_default(key: str) -> str:
    """``simulation.<key>`` of the shipped base.yaml, for --help (the file decides at run time)."""
    try:
        import yaml

        with open(Path(DEFAULT_CONFIG_DIR) / "base.yaml", encoding="utf-8") as f:
            value = yaml.safe_load(f)["simulation"][key]
        return f"{value if key == 'seed' else format(value, ',')} from base.yaml"
    except Exception:  # noqa: BLE001 - help text only: a bad file is reported when a run loads it
        return f"simulation.{key} in base.yaml"


def _version(value: bool) -> None:
    if value:
        from flows.provenance import package_version

        out.print(f"sma-forecast {package_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:  # fmt: skip
    """Monte Carlo forecasts of the US-South Korea cost-sharing (SMA) negotiations."""


class UserError(Exception):
    """A problem with what the user asked for (exit code 2)."""


#: Blocks smaller than this many trials are slow when there are many of them (chunk size 1
#: was measured 40x slower per trial).
SMALL_CHUNK = 1_000
#: Longest error line printed [characters] (a message may quote a huge value).
MAX_ERROR_CHARS = 2_000


def _fail(message: str, code: int = 2) -> NoReturn:
    message = " ".join(message.split())  # one line
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 16] + " ... (truncated)"
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _guard(action: Callable[[], T], *, debug: bool = False) -> T:
    """Run ``action``; user errors exit 2 with one line, anything else exits 1."""
    from flows.cancellation import Terminated
    from pipeline.compose import GateError
    from pipeline.spec.scenario import ScenarioError

    try:
        return action()
    except (UserError, ScenarioError) as exc:
        _fail(str(exc))
    except GateError as exc:
        _fail(f"run failed a validity gate: {exc}")
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        _fail("interrupted (SIGINT); the run was recorded as failed, nothing published", 130)
    except Terminated:
        _fail("terminated (SIGTERM); the run was recorded as failed, nothing published", 143)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            traceback.print_exc()
        _fail(f"internal error: {type(exc).__name__}: {exc} (re-run with --debug for details)", 1)


def _parse_date(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--as-of: {text!r} is not a date; use YYYY-MM-DD") from None


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    from pipeline.spec.scenario import parse_override

    overrides: dict[str, Any] = {}
    for item in items:
        key, value = parse_override(item)
        overrides[key] = value
    return overrides


def _check_output(path: str) -> None:
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UserError(f"--output: {path} exists and is not a folder")


def _probe_output(path: str) -> None:
    """Create the output folder and write, fsync and delete a probe file in it, so a
    read-only or full destination fails now, not after the simulation."""
    target = Path(path)
    probe = target / f".probe-{os.getpid()}"
    try:
        target.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"probe")
            os.fsync(fd)
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as exc:
        raise UserError(
            f"--output: {path} is not writable ({exc.strerror or type(exc).__name__})"
        ) from None


def _check_dask_installed(runner: str) -> None:
    if runner == "dask" and importlib.util.find_spec("prefect_dask") is None:
        raise UserError("--runner dask needs the dask extra: pip install -e '.[dask]'")


def _quiet_prefect(verbose: bool) -> None:
    # The console shows warnings only (the API still receives INFO logs for the UI).
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _start_prefect_server() -> Callable[[], None]:
    """Launch the embedded Prefect server now, unless an API is configured (flows/server.py:
    no Prefect import here, the child reads Prefect's settings); returns the wait to call just
    before the flow starts."""
    from flows.server import start_embedded_server

    server = start_embedded_server()
    return server.wait_ready if server is not None else (lambda: None)


def _num(x: float, fmt: str) -> str:
    """``x`` formatted, or ``-`` where it is undefined (NaN: e.g. no trial settles)."""
    return "-" if x != x else format(x, fmt)


def _timing_text(h: dict[str, float]) -> str:
    """One scenario's settlement timing in words: P(no deal), months if settled, years."""
    from pipeline.outputs.headline import horizon_label, settlement_timing

    years = " · ".join(f"{label} {_num(p, '.2f')}" for label, p in settlement_timing(h))
    return (
        f"P(no deal {horizon_label(h)}) {_num(h['p_no_deal_by_horizon'], '.2f')}; months to deal "
        f"among the {_num(h['n_trials_settled'], ',.0f')} trials that settle: p50 "
        f"{_num(h['months_to_settlement_if_settled_p50'], '.1f')} (p10 "
        f"{_num(h['months_to_settlement_if_settled_p10'], '.1f')}, p90 "
        f"{_num(h['months_to_settlement_if_settled_p90'], '.1f')}); agreement in: {years}"
    )


class _ExpectedFailures(logging.Filter):
    """Drop console records carrying a traceback of an expected failure (a validity gate,
    a stopped block group): the CLI reports those in one line; the API keeps the logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        from pipeline.compose import Cancelled, GateError

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, GateError | Cancelled)


def _drop_expected_tracebacks() -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(_ExpectedFailures())


def _print_headline(
    result: ForecastRunResult,
    wall_seconds: float | None = None,
    phase_seconds: dict[str, float] | None = None,
) -> None:
    from flows.console import headline_tables
    from pipeline.outputs.headline import horizon_label

    heads = result.headline
    by = horizon_label(next(iter(heads.values()))) if heads else "by the horizon"
    title = f"SMA forecast as of {result.as_of}  (run {result.run_id})"
    for table in headline_tables(heads, title, out.width):
        out.print(table)
    out.print(
        "Months to deal count only the trials that settle within the horizon; "
        f"the others are the 'none {by}' share."
    )
    if wall_seconds is None:
        timing = f"in {result.seconds:.1f} s"
    else:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in (phase_seconds or {}).items())
        timing = f"in {wall_seconds:.1f} s wall time" + (f" ({steps})" if steps else "")
    out.print(f"{result.n_trials:,} trials per scenario {timing}; outputs in {result.output_dir}")
    if result.target_se is not None and result.achieved_se is not None:
        out.print(
            f"convergence gate: max s.e. of increase_pct p05/p50/p95 {result.achieved_se:.3g} "
            f"pp (target {result.target_se:.3g}) at {result.n_trials:,} trials per scenario"
        )
    if result.report:
        out.print(f"report: {result.report}")
    for warning in result.warnings:
        err.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if result.drift_flags:
        out.print(f"{result.drift_flags} value(s) moved beyond Monte Carlo noise since the "
                  "previous run, with no change of as-of date, evidence, configuration or code "
                  "to explain it (see the report's 'What changed')")  # fmt: skip


ScenarioOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--scenario",
        "-s",
        help="Scenario name or YAML path (repeatable).",
        show_default="every scenario in configs/scenarios",
    ),
]


@app.command()
def run(
    scenario: ScenarioOpt = None,
    trials: Annotated[
        int | None,
        typer.Option(help="Trials per scenario.", show_default=_base_default("n_trials")),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed.", show_default=_base_default("seed"))
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="As-of date YYYY-MM-DD.", show_default="today in Asia/Seoul"),
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option(help="Trials per block.", show_default=_base_default("chunk_size")),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Workers shared by all scenarios (threads or processes, or the dask worker "
            "processes of a local cluster); each scenario's blocks are split into this many "
            "tasks (with --dask-address: tasks per scenario on the cluster)."
        ),
    ] = DEFAULT_WORKERS,
    target_se: Annotated[
        float | None,
        typer.Option(
            help="Convergence gate: add blocks until the largest Monte Carlo s.e. of "
            "increase_pct p05/p50/p95 over scenarios is at most this (percentage points)."
        ),
    ] = None,
    max_trials: Annotated[
        int | None,
        typer.Option(help="Cap on trials per scenario for --target-se.", show_default="10,000,000"),
    ] = None,
    min_effective_trials: Annotated[
        int | None,
        typer.Option(
            help="Fewest trials a scenario must keep after evidence conditioning, else the "
            "run fails and publishes nothing (default 1,000; a smaller run needs all)."
        ),
    ] = None,
    runner: Annotated[
        str,
        typer.Option(
            help="Task runner: threads (this process), processes (worker processes on this "
            "machine), dask, or auto: processes for runs of at least "
            f"{AUTO_PROCESS_MIN_TRIALS:,} trials (all scenarios) on 2 or more workers (at most "
            "one per core), else threads."
        ),
    ] = "auto",
    dask_address: Annotated[
        str | None,
        typer.Option(
            help="Scheduler of an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (--runner dask).",
            show_default="a local cluster of --workers processes",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="INPUT.FIELD=VALUE override (repeatable).", show_default="none"),
    ] = None,
    output: Annotated[str, typer.Option(help="Output folder.")] = DEFAULT_OUTPUT_DIR,
    trials_sample: Annotated[int, typer.Option(help="Trials to write to the trials dataset.")] = 0,
    config_dir: Annotated[
        Path, typer.Option(help="Folder with base.yaml, scenarios/, evidence.yaml.")
    ] = Path(DEFAULT_CONFIG_DIR),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's INFO logs.")] = False,
    debug: Annotated[bool, typer.Option(help="Print tracebacks of internal errors.")] = False,
) -> None:
    """Run the forecast once (by default the nightly job: all scenarios as of today)."""
    import time

    started = time.perf_counter()

    def prepare() -> tuple[RunRequest, PreparedRun]:
        from pipeline.compose import prepare_run

        request = RunRequest.checked(
            scenarios=tuple(scenario) if scenario else None, n_trials=trials, seed=seed,
            as_of=_parse_date(as_of), chunk_size=chunk_size,
            overrides=_parse_overrides(set_ or []), output_dir=output,
            trials_sample=trials_sample, workers=workers, config_dir=str(config_dir),
            target_se=target_se, max_trials=max_trials, runner=runner,
            dask_address=dask_address, min_effective_trials=min_effective_trials,
        )  # fmt: skip
        _check_dask_installed(request.runner)
        _check_output(request.output_dir)
        # The command line may name local scenario files; flow parameters may not.
        allow_local_files([s for s in request.scenarios or () if s.endswith((".yaml", ".yml"))
                           or "/" in s])  # fmt: skip
        # Loads scenarios and evidence: file errors before Prefect starts.
        prepared = prepare_run(request)
        settings = prepared.settings
        _probe_output(request.output_dir)
        blocks = -(-settings.n_trials // settings.chunk_size)
        if settings.chunk_size < SMALL_CHUNK and blocks > SMALL_CHUNK:
            err.print(f"[bold yellow]warning:[/] {blocks:,} blocks of {settings.chunk_size:,} "
                      "trials: small blocks are slow (per-block overhead); results depend on "
                      "the chunk size", highlight=False)  # fmt: skip
        return request, prepared

    install_exit_handlers(quiet_console=not debug)
    request, prepared = _guard(prepare, debug=debug)
    total_trials = prepared.settings.n_trials * len(prepared.scenarios)
    _quiet_prefect(verbose)

    from flows.console import PhaseDisplay

    display = PhaseDisplay(err)
    display.finished("checking", display.started - started)  # options, files, output folder

    def execute() -> ForecastRunResult:
        server_ready = _start_prefect_server()  # starts while this process imports the flow
        from flows.forecast import forecast_flow
        from flows.progress import progress_reporting
        from flows.runners import local_runner, prestart_workers
        from pipeline.compose import warm_up

        chosen = local_runner(request.runner, workers=request.workers, total_trials=total_trials)
        # Fills the caches every task would fill first (no number changes), while the server
        # starts: in each worker process after its imports, or here.
        warm = functools.partial(warm_up, prepared.scenarios, prepared.settings, prepared.evidence)
        if chosen == "processes":
            prestart_workers(request.workers, warm)
        elif chosen == "dask":
            server_ready()  # the cluster's workers are given the API's address when it starts
        flow = forecast_flow(chosen, workers=request.workers,
                             dask_address=request.dask_address)  # fmt: skip
        if not debug:
            _drop_expected_tracebacks()
        with display, progress_reporting(display.progress, display.phase):
            if chosen == "threads":
                with contextlib.suppress(Exception):  # only fills caches; the flow reports errors
                    warm()
            server_ready()
            return cast(ForecastRunResult, flow(**request.flow_parameters()))

    result = _guard(execute, debug=debug)
    _print_headline(result, time.perf_counter() - started, display.seconds)
    if result.report_error is not None:
        _fail(f"the run is published but its HTML report failed ({result.report_error}); the "
              f"earlier page of {result.as_of} was removed; rebuild it with "
              f"`sma-forecast report --as-of {result.as_of}`", 1)  # fmt: skip


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario or evidence YAML files.")],
) -> None:
    """Check scenario files (and evidence.yaml) without running anything."""
    from pipeline.spec.evidence import load_evidence
    from pipeline.spec.scenario import ScenarioError, load_scenario

    bad = 0
    for path in paths:
        try:
            if path.name == "evidence.yaml":
                load_evidence(path)
            else:
                scenario = load_scenario(path)
                out.print(f"[green]ok[/] {path} (scenario {scenario.name})", highlight=False)
                continue
            out.print(f"[green]ok[/] {path} (evidence)", highlight=False)
        except ScenarioError as exc:
            bad += 1
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    if bad:
        raise typer.Exit(2)


def _statistic_text(value: float, unit: str) -> str:
    """A summary value for the terminal: years as integers, other numbers to 4 digits."""
    if value != value:
        return "-"
    if unit == "year":
        return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"
    return f"{value:,.4g}"


@app.command()
def show(
    scenario: Annotated[
        str | None, typer.Option("--scenario", "-s", help="One scenario.", show_default="all")
    ] = None,
    output: Annotated[str, typer.Option(help="Output folder.")] = DEFAULT_OUTPUT_DIR,
    all_: Annotated[
        bool,
        typer.Option("--all", help="Every metric and statistic (default: the headline tables)."),
    ] = False,
) -> None:
    """Print the latest published summary (from the Parquet files alone)."""

    def load() -> Any:
        from pipeline.outputs import io

        if scenario is not None and not re.fullmatch(r"[a-z0-9_-]{1,64}", scenario):
            raise UserError(f"--scenario: {scenario!r} is not a scenario name ([a-z0-9_-]+)")
        if not Path(output).is_dir():
            raise UserError(f"--output: {output} has no outputs yet (run 'sma-forecast run')")
        if any(Path(output, io.STAGING).glob(f"*/{io.JOURNAL}")):
            err.print("[bold yellow]warning:[/] an interrupted publication may hide earlier "
                      "results; run `sma-forecast doctor --repair`", highlight=False)  # fmt: skip
        frame = io.latest_summary(output) if scenario is None else _latest_of(output, scenario)
        if frame.empty:
            if scenario is None:
                raise UserError(f"no published summary in {output}")
            known = sorted(set(io.latest_summary(output).scenario.astype(str)))
            raise UserError(
                f"--scenario: no published summary for {scenario!r} in {output}; published: "
                + (", ".join(known) if known else "none")
            )
        return frame

    import pyarrow as pa

    from flows.console import headline_tables
    from pipeline.outputs.headline import CENSORED_METRICS, headline

    frame = _guard(load)
    columns = ["metric", "statistic", "value", "n_trials"]
    heads = {
        str(name): headline(pa.Table.from_pandas(rows[columns], preserve_index=False))
        for name, rows in frame.groupby("scenario", sort=True)
    }
    if not all_:
        dates = sorted({str(d)[:10] for d in frame.as_of_date})
        runs = sorted(set(frame.run_id))
        title = f"SMA forecast as of {', '.join(dates)}  (run {', '.join(runs)})"
        for table in headline_tables(heads, title, out.width):
            out.print(table)
        out.print("Every metric with its Monte Carlo s.e.: sma-forecast show --all")
        return
    keep = {"p10", "p50", "p90", "mean", "prob"}
    # Censored timings (unsettled trials counted to the horizon) are not timings: not shown.
    frame = frame[frame.statistic.isin(keep) & ~frame.metric.isin(CENSORED_METRICS)]
    for name, rows in frame.groupby("scenario", sort=True):
        table = Table(title=f"{name}  as of {rows.as_of_date.iloc[0]}  (run {rows.run_id.iloc[0]})")
        for col in ("metric", "statistic", "value", "MC s.e.", "n", "unit"):
            table.add_column(
                col, justify="left" if col in ("metric", "statistic", "unit") else "right"
            )
        for row in rows.itertuples():
            se = row.mc_standard_error
            table.add_row(
                row.metric, row.statistic, _statistic_text(row.value, row.unit),
                "" if se != se else f"{se:.2g}", f"{row.n_trials:,}", row.unit,
            )  # fmt: skip
        out.print(table)
        out.print(_timing_text(heads[str(name)]))
    out.print(
        "months_to_settlement (no-deal trials counted to the end of the horizon) is published "
        "but not shown: its quantiles are not times to agreement (docs/outputs.md)."
    )


@app.command()
def report(
    as_of: Annotated[
        str | None, typer.Option(help="As-of date YYYY-MM-DD (default: latest).")
    ] = None,
    run_id: Annotated[
        str | None, typer.Option(help="One run (default: all runs of the date).")
    ] = None,
    output: Annotated[str, typer.Option(help="Output folder.")] = DEFAULT_OUTPUT_DIR,
) -> None:
    """Rebuild the HTML report from the Parquet files alone."""

    def build() -> Path:
        from pipeline.report import ReportError, build_report

        when = _parse_date(as_of)
        if not Path(output).is_dir():
            raise UserError(f"--output: {output} has no outputs yet (run 'sma-forecast run')")
        try:
            return build_report(output, as_of_date=when, run_id=run_id)
        except ReportError as exc:
            raise UserError(str(exc)) from None

    path = _guard(build)
    out.print(f"report: {path}")


def _print_comparison(comparison: Any) -> None:
    """One scenario of `compare`: overrides, then ranges and probabilities side by side."""
    from pipeline.outputs.compare import COMPARED_PROBABILITIES
    from pipeline.outputs.drift import KEY_STATISTICS, key_metrics
    from pipeline.report.format import format_value, quantity_label

    c = comparison
    out.print(
        f"[bold]{escape(c.scenario)}[/] as of {c.as_of_date}: what-if run {c.whatif_run_id} "
        f"vs official run {c.official_run_id}",
        highlight=False,
    )
    if c.overrides:
        for name, official, whatif in c.overrides:
            out.print(f"  overridden: {escape(name)}: {escape(str(official or '-'))} -> "
                      f"{escape(str(whatif or '-'))}", highlight=False)  # fmt: skip
    else:
        out.print("  no input differs (the runs differ in seed, trials, evidence or code)")
    rows = c.rows
    metrics = key_metrics(rows.metric.astype(str).unique())
    keep = (rows.metric.isin(metrics) & rows.statistic.isin(KEY_STATISTICS)) | (
        rows.metric.isin(COMPARED_PROBABILITIES) & (rows.statistic == "prob")
    )
    table = Table(padding=(0, 1))
    for col in ("quantity", "official", "what-if", "difference", "noise (1 s.e.)", ""):
        table.add_column(col, justify="left" if col == "quantity" else "right")

    def num(x: Any, unit: str, signed: bool = False) -> str:
        return format_value(None if x is None or x != x else float(x), unit, signed=signed)

    for r in rows[keep].itertuples(index=False):
        unit = str(r.unit)
        table.add_row(
            quantity_label(str(r.metric), str(r.statistic)), num(r.previous_value, unit),
            num(r.value, unit), num(r.change, unit, signed=True),
            "-" if r.noise_se is None or r.noise_se != r.noise_se
            else "±" + num(r.noise_se, unit, signed=True).lstrip("+"),
            "beyond noise" if bool(r.flagged) else "",
        )  # fmt: skip
    out.print(table)
    if c.same_seed:
        out.print(
            "  Both runs use the same seed: their noise is shared, so the difference is "
            "usually less noisy than the s.e. shown (the combined s.e. of independent runs)."
        )


def _latest_of(output: str, scenario: str) -> Any:
    """The scenario's latest summary; empty (not an error) if it was never published."""
    from pipeline.outputs import io

    try:
        return io.latest_summary(output, scenario)
    except ValueError:
        return io.latest_summary(output).iloc[0:0]


@app.command()
def compare(
    run_id: Annotated[
        str | None,
        typer.Argument(help="The what-if run.", show_default="the latest completed run"),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            help="The official run.",
            show_default="the latest other completed run of the same date and scenario",
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            "-s",
            help="Scenario (repeatable).",
            show_default="every scenario of the what-if run",
        ),
    ] = None,  # fmt: skip
    output: Annotated[
        str, typer.Option(help="Output folder of the what-if run.")
    ] = DEFAULT_OUTPUT_DIR,
    official_output: Annotated[
        str | None,
        typer.Option(help="Output folder of the official run.", show_default="--output"),
    ] = None,
) -> None:
    """Put a what-if run next to the official forecast of the same date and scenario."""

    def load() -> Any:
        from pipeline.outputs.compare import CompareError, compare_runs

        for folder in (output, official_output or output):
            if not Path(folder).is_dir():
                raise UserError(f"{folder} has no outputs yet (run 'sma-forecast run')")
        try:
            return compare_runs(
                output, official_dir=official_output, run_id=run_id, against=against,
                scenarios=scenario or None,
            )  # fmt: skip
        except CompareError as exc:
            raise UserError(str(exc)) from None

    for comparison in _guard(load):
        _print_comparison(comparison)
    out.print(
        "difference = what-if minus official; 'beyond noise' when it exceeds 4 combined Monte "
        "Carlo s.e. (plus the quantile resolution), as in the report's drift section."
    )


@app.command()
def doctor(
    output: Annotated[str, typer.Option(help="Output folder.")] = DEFAULT_OUTPUT_DIR,
    repair: Annotated[
        bool, typer.Option(help="Finish interrupted publications, move damaged files aside.")
    ] = False,
) -> None:
    """Check an output folder: interrupted publications, damaged or foreign files (also in
    the what-if folders under whatif/).

    Exit 0 if nothing is wrong (or everything was repaired), 1 if problems remain.
    """

    def check() -> list[str]:
        from pipeline.outputs import io

        if not Path(output).is_dir():
            raise UserError(f"--output: {output} is not a folder")
        return io.doctor(output, repair=repair)

    problems = _guard(check)
    for problem in problems:
        out.print(problem, highlight=False, markup=False)
    if not problems:
        out.print(f"ok: {output}", highlight=False)
    elif not repair:
        err.print(f"{len(problems)} problem(s); run `sma-forecast doctor --repair`")
        raise typer.Exit(1)


@app.command()
def backtest(
    output: Annotated[str, typer.Option(help="Output folder.")] = DEFAULT_OUTPUT_DIR,
    trials: Annotated[int, typer.Option(help="Model trials per case.")] = DEFAULT_BACKTEST_TRIALS,
    seed: Annotated[int | None, typer.Option(help="Seed (default: base.yaml's).")] = None,
    config_dir: Annotated[Path, typer.Option(help="Folder with base.yaml and backtest/.")] = Path(
        DEFAULT_CONFIG_DIR
    ),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's INFO logs.")] = False,
    debug: Annotated[bool, typer.Option(help="Print tracebacks of internal errors.")] = False,
) -> None:
    """Forecast every past SMA negotiation as of its start, score it against the baselines."""

    def check() -> None:
        from pipeline.backtest import load_cases

        if trials < 100:
            raise UserError(f"--trials must be at least 100 (got {trials})")
        if seed is not None and seed < 0:
            raise UserError(f"--seed must be a non-negative integer (got {seed})")
        _check_output(output)
        load_cases(config_dir)

    _guard(check, debug=debug)
    _quiet_prefect(verbose)

    def execute() -> BacktestRunResult:
        server_ready = _start_prefect_server()
        from flows.backtest import backtest as backtest_flow

        with err.status("backtesting the 7th to 12th SMA negotiations..."):
            server_ready()
            return backtest_flow(
                output_dir=output, n_trials=trials, seed=seed, config_dir=str(config_dir)
            )

    result = _guard(execute, debug=debug)
    out.print(result.table, highlight=False, markup=False)
    out.print(f"run {result.run_id}; scores in {Path(output).resolve() / 'backtest'}")


@app.command()
def serve(
    cron: Annotated[str, typer.Option(help="Cron schedule of the nightly run.")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="Time zone of the schedule.")] = "Asia/Seoul",
    output: Annotated[
        str, typer.Option(help="Output folder (made absolute).")
    ] = DEFAULT_OUTPUT_DIR,
    config_dir: Annotated[Path, typer.Option(help="Config folder.")] = Path(DEFAULT_CONFIG_DIR),
    verbose: Annotated[bool, typer.Option(help="Show Prefect's INFO logs.")] = True,
) -> None:
    """Register 'nightly-forecast/nightly' (cron) and 'forecast/adhoc' and serve them.

    Needs a Prefect server (PREFECT_API_URL), e.g. `prefect server start`.
    """

    def check() -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if not os.environ.get("PREFECT_API_URL"):
            from prefect.settings import PREFECT_API_URL

            if not PREFECT_API_URL.value():
                raise UserError(
                    "serve needs a Prefect server: run `prefect server start` and set "
                    "PREFECT_API_URL=http://127.0.0.1:4200/api"
                )
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UserError(f"--timezone: unknown time zone {timezone!r}") from None
        from prefect.schedules import Cron

        try:
            Cron(cron, timezone=timezone)
        except Exception:  # noqa: BLE001 - prefect raises several types for bad cron strings
            raise UserError(f"--cron: {cron!r} is not a cron expression") from None
        _check_output(output)

    _guard(check)
    _quiet_prefect(verbose)

    def start() -> None:
        from flows.deployments import serve_deployments

        serve_deployments(
            cron=cron, timezone=timezone, output_dir=str(Path(output).resolve()),
            config_dir=str(config_dir.resolve()),
        )  # fmt: skip

    _guard(start)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        # click reports bad options with exit code 2 already; keep other codes.
        sys.exit(exc.code)
    finally:
        # The process is about to exit: spare it the interpreter's final full garbage
        # collection, which walks every object left (Prefect, pydantic, scipy, pandas,
        # matplotlib): ~1 s of CPU after a run, measured. Outputs are committed by now, and
        # atexit handlers (the Prefect server's stop) still run.
        gc.freeze()


if __name__ == "__main__":
    main()
