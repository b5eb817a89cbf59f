"""Issue 15: never publish a wrong forecast, never get stuck.

Each case reproduces a measured failure on a temp folder: degenerate runs are refused before
or after simulating (nothing published), damaged outputs are skipped and quarantined, hostile
YAML is bounded, parameters cannot name files outside the config folder, and a real CLI run
stops promptly on SIGTERM/SIGINT.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.compose import (
    GateError,
    RunSettings,
    check_headline,
    check_publishable,
    prepare_run,
    run_memory_bytes,
    run_scenario,
)
from pipeline.model.seeding import root_entropy
from pipeline.outputs import io
from pipeline.spec.evidence import evidence_as_of, load_evidence
from pipeline.spec.request import RunRequest, resolve_scenarios
from pipeline.spec.scenario import ScenarioError, read_yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import test_io  # noqa: E402  (synthetic tables and the mid-swap kill child)

runner = CliRunner()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A copy of configs/ to break (with data/ beside it: base.yaml's host files are relative)."""
    folder = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", folder)
    shutil.copytree(ROOT / "data", tmp_path / "data")
    return folder


@pytest.fixture
def output(tmp_path: Path) -> Path:
    folder = tmp_path / "outputs"
    folder.mkdir()
    (folder / "keep.txt").write_text("earlier outputs")
    return folder


def _run(output: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", "--output", str(output), "--trials", "500", *args])
    return result.exit_code, result.output


def _one_line_exit_2(code: int, text: str) -> None:
    assert code == 2, text
    assert text.strip().startswith("error:") and len(text.strip().splitlines()) == 1, text
    assert "Traceback" not in text


def _evidence(config: Path, facts: str) -> None:
    (config / "evidence.yaml").write_text("facts:\n" + facts)


# --------------------------------------------------------------------------- 1. validity gates


@pytest.mark.parametrize("as_of", ["1900-01-01", "2025-12-31", "2032-01-01", "9999-12-31"])
def test_as_of_outside_the_model_calendar_exits_2(output: Path, as_of: str) -> None:
    before = _snapshot(output)
    code, text = _run(output, "--as-of", as_of)
    _one_line_exit_2(code, text)
    assert "--as-of" in text and "2026-01-01 to 2031-12-31" in text
    assert _snapshot(output) == before


def test_contradictory_evidence_names_both_facts(config: Path, output: Path) -> None:
    _evidence(config, "  - {date: 2026-03-01, kind: agreement, text: deal}\n"
                      "  - {date: 2026-06-01, kind: talks_opened, text: talks}\n")  # fmt: skip
    code, text = _run(output, "--config-dir", str(config), "--as-of", "2026-07-01")
    _one_line_exit_2(code, text)
    assert "facts.1 (talks_opened on 2026-06-01)" in text
    assert "facts.0 (agreement on 2026-03-01)" in text


def test_implausible_tentative_deal_is_rejected(config: Path, output: Path) -> None:
    _evidence(config, "  - {date: 2026-03-01, kind: tentative_deal, text: x, increase_pct: 9000}\n")
    code, text = _run(output, "--config-dir", str(config), "--as-of", "2026-07-01")
    _one_line_exit_2(code, text)
    assert "facts.0.increase_pct" in text and "1000" in text


def _conditioned(config: Path, as_of: dt.date, n_trials: int) -> tuple[int, dict[str, object]]:
    request = RunRequest(
        scenarios=("baseline",), n_trials=n_trials, seed=5, as_of=as_of, chunk_size=1000,
        config_dir=str(config),
    )  # fmt: skip
    prepared = prepare_run(request)
    result = run_scenario(prepared.scenarios[0], prepared.settings, prepared.evidence)
    return result.summary.n_effective, {"baseline": result}


def test_too_few_kept_trials_fail_the_gate(config: Path) -> None:
    # Talks open since January 2026 and no agreement by late 2031: almost no trial is left.
    _evidence(config, "  - {date: 2026-01-01, kind: talks_opened, text: talks}\n")
    kept, merged = _conditioned(config, dt.date(2031, 11, 1), 2000)
    assert kept < 1000
    with pytest.raises(GateError, match=r"kept [\d,]+ of 2,000 trials, fewer than the minimum"):
        check_publishable(merged, 2000, 1000)  # type: ignore[arg-type]
    # A smaller stated minimum lets it through, with a warning naming the kept count.
    if kept > 0:
        warnings = check_publishable(merged, 2000, kept)  # type: ignore[arg-type]
        assert warnings and f"kept only {kept:,} of 2,000" in warnings[0]


def test_unconditioned_small_run_passes_the_gate(config: Path) -> None:
    kept, merged = _conditioned(config, dt.date(2026, 11, 1), 500)
    assert kept == 500
    assert check_publishable(merged, 500, 1000) == []  # type: ignore[arg-type]


def test_no_finite_headline_fails_the_gate() -> None:
    with pytest.raises(GateError, match="no finite increase_pct_p10"):
        check_headline("baseline", {"increase_pct_p10": float("nan"), "increase_pct_p50": 1.0,
                                    "increase_pct_p90": 2.0})  # fmt: skip
    check_headline("baseline", {"increase_pct_p10": 0.5, "increase_pct_p50": 1.0,
                                "increase_pct_p90": 2.0})  # fmt: skip


def test_gated_flow_publishes_nothing_and_records_failure(
    prefect_harness: str, config: Path, tmp_path: Path
) -> None:
    from flows.forecast import forecast
    from pipeline.outputs.readers import read_dataset

    _evidence(config, "  - {date: 2026-01-01, kind: talks_opened, text: talks}\n")
    out = tmp_path / "gated"
    with pytest.raises(GateError):
        forecast(scenarios=["baseline"], n_trials=2000, seed=5, as_of=dt.date(2031, 11, 1),
                 chunk_size=1000, output_dir=str(out), config_dir=str(config))  # fmt: skip
    runs = read_dataset(out, "runs").to_pandas()
    assert list(runs.status) == ["failed"]
    assert io.latest_summary(out).empty
    assert not (out / "summary").exists()


# --------------------------------------------------------------------------- 5. fail before work


def test_unwritable_output_fails_before_simulating(tmp_path: Path) -> None:
    code, text = _run(Path("/proc/sma-forecast-outputs"))
    _one_line_exit_2(code, text)
    assert "--output: /proc/sma-forecast-outputs is not writable" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_output_fails_before_simulating(output: Path) -> None:
    output.chmod(0o500)
    try:
        code, text = _run(output)
    finally:
        output.chmod(0o700)
    _one_line_exit_2(code, text)
    assert "is not writable" in text


def test_impossible_date_in_evidence_names_file_and_field(config: Path, output: Path) -> None:
    _evidence(config, "  - date: 2026-13-01\n    kind: statement\n    text: x\n")
    code, text = _run(output, "--config-dir", str(config))
    _one_line_exit_2(code, text)
    assert f"{config / 'evidence.yaml'}: facts.0.date: '2026-13-01' is not a valid date" in text


def test_impossible_date_in_scenario_names_file_and_field(config: Path, output: Path) -> None:
    path = config / "scenarios/baseline.yaml"
    path.write_text(path.read_text() + "\nmodel:\n  administration_change_date: 2029-02-30\n")
    code, text = _run(output, "--config-dir", str(config), "-s", "baseline")
    _one_line_exit_2(code, text)
    assert "baseline.yaml: model.administration_change_date: '2029-02-30'" in text


def test_deep_nesting_exits_2(config: Path, output: Path) -> None:
    path = config / "scenarios/baseline.yaml"
    path.write_text("name: baseline\ndescription: " + "[" * 900 + "]" * 900 + "\n")
    code, text = _run(output, "--config-dir", str(config), "-s", "baseline")
    _one_line_exit_2(code, text)
    assert "baseline.yaml" in text and "nested deeper than" in text


def test_failed_report_exits_1_keeps_parquet_and_removes_stale_page(
    prefect_harness: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.tasks

    out = tmp_path / "out"
    args = ["run", "-s", "baseline", "--trials", "500", "--chunk-size", "250", "--seed", "1",
            "--as-of", "2026-11-29", "--output", str(out)]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    page = io.report_dir(out, dt.date(2026, 11, 29))
    assert (page / "index.html").exists()

    def full_disk(output_dir: str, as_of_date: dt.date) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(flows.tasks, "build_report", full_disk)
    second = runner.invoke(app, args)
    assert second.exit_code == 1, second.output
    assert "report failed" in second.output and "No space left" in second.output
    assert not page.exists()  # the earlier run's page no longer poses as this run's
    latest = io.latest_summary(out)
    runs = io.read_dataset(out, "runs").to_pandas()
    assert list(runs.status) == ["completed", "completed"]
    assert set(latest.run_id) == {runs.sort_values("started_at").run_id.iloc[-1]}


# --------------------------------------------------------------------------- 2. damaged outputs


def _damaged_outputs(out: Path) -> tuple[Path, Path, Path]:
    test_io.publish(out, "run-a", ("base", "no-troops"))
    bad = next((out / "summary").glob("as_of_date=*/scenario=no-troops/*.parquet"))
    bad.write_bytes(bad.read_bytes()[:100])  # truncated
    junk = out / "runs" / f"as_of_date={test_io.DAY}" / "part-junk.parquet"
    junk.write_bytes(b"not parquet at all")
    notes = out / "runs" / "notes.txt"
    notes.write_text("remember to check the runs")
    return bad, junk, notes


def test_readers_skip_damaged_files_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out"
    bad, junk, notes = _damaged_outputs(out)
    with caplog.at_level(logging.WARNING, logger="sma_forecast.outputs"):
        latest = io.latest_summary(out)
        only_base = io.latest_summary(out, "base")
    assert set(latest.scenario) == {"base"} and set(only_base.scenario) == {"base"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for path in (bad, junk, notes):
        assert f"skipping damaged output {path}" in logged


def test_show_and_doctor_on_damaged_outputs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad, junk, notes = _damaged_outputs(out)
    shown = runner.invoke(app, ["show", "--output", str(out), "-s", "base"])
    assert shown.exit_code == 0, shown.output
    check = runner.invoke(app, ["doctor", "--output", str(out)])
    assert check.exit_code == 1
    for path in (bad, junk, notes):
        assert f"damaged {path.relative_to(out)}" in check.output
    assert bad.exists()  # listing only
    repaired = runner.invoke(app, ["doctor", "--output", str(out), "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert not bad.exists() and not junk.exists() and not notes.exists()
    quarantined = sorted(p.name for p in (out / io.QUARANTINE).rglob("*") if p.is_file())
    assert quarantined == sorted([bad.name, junk.name, notes.name])
    assert runner.invoke(app, ["doctor", "--output", str(out)]).output.startswith("ok:")


def test_doctor_checks_what_if_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    test_io.publish(out, "run-a", ("base",))
    run = dataclasses.replace(test_io.make_run("run-w", ("base",)), run_kind="what-if",
                              overrides='{"set": {"x": 1}}')  # fmt: skip
    io.publish_run(out, run, test_io.make_tables("run-w", ("base",)))
    assert io.doctor(out) == []
    good = next((out / "whatif" / "run-w" / "summary").rglob("*.parquet"))
    good.write_bytes(good.read_bytes()[:80])
    stray = out / "whatif" / "run-w" / "notes.txt"
    stray.write_text("stray")
    odd = out / "whatif" / "not a run" / "x.parquet"
    odd.parent.mkdir(parents=True)
    odd.write_bytes(b"junk")
    problems = io.doctor(out)
    for path in (good, stray, odd):
        assert any(f"damaged {path.relative_to(out)}" in p for p in problems), (path, problems)
    assert len(problems) == 3
    io.doctor(out, repair=True)
    assert not good.exists() and not stray.exists() and not odd.exists()
    assert io.doctor(out) == []


def test_a_new_run_replaces_a_damaged_partition(tmp_path: Path) -> None:
    out = tmp_path / "out"
    bad, _, _ = _damaged_outputs(out)
    assert io.doctor(out, repair=True)  # what every run does first
    test_io.publish(out, "run-b", ("base", "no-troops"), seed=3)
    latest = io.latest_summary(out)
    assert set(latest.scenario) == {"base", "no-troops"} and set(latest.run_id) == {"run-b"}


def test_doctor_restores_partitions_of_an_uncommitted_publication(tmp_path: Path) -> None:
    out = tmp_path / "out"
    test_io.publish(out, "run-a", ("base", "no-troops"))
    before = test_io.visible_files(out)
    code = test_io.CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), kill_at=4,
                                out=str(out))  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode == 9
    assert any((out / ".trash").iterdir())  # old partitions aside, the commit never happened
    assert "doctor --repair" in runner.invoke(app, ["show", "--output", str(out)]).output
    check = runner.invoke(app, ["doctor", "--output", str(out)])
    assert check.exit_code == 1 and "interrupted publication of run run-b" in check.output
    assert runner.invoke(app, ["doctor", "--output", str(out), "--repair"]).exit_code == 0
    assert test_io.visible_files(out) == before
    assert set(io.latest_summary(out).run_id) == {"run-a"}


def test_show_and_report_of_a_real_run_survive_damaged_files(
    prefect_harness: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["run", "-s", "baseline", "--trials", "500", "--chunk-size", "250", "--seed", "1",
            "--as-of", "2026-11-29", "--output", str(out)]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    (out / "runs" / "notes.txt").write_text("stray")
    junk = out / "summary/as_of_date=2026-11-29/scenario=hardline/part-x.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"PAR1 junk")
    for command in (["show"], ["show", "-s", "baseline"], ["report"]):
        result = runner.invoke(app, [*command, "--output", str(out)])
        assert result.exit_code == 0, (command, result.output)
    again = runner.invoke(app, [*args[:-2], "--output", str(out), "--seed", "2"])
    assert again.exit_code == 0, again.output  # the run moved them aside first
    assert not junk.exists() and (out / io.QUARANTINE).is_dir()


# --------------------------------------------------------------------------- 3. bounded resources


def _yaml_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        read_yaml(path, "f.yaml")
    return str(info.value)


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    assert "expands to more than 200,000 values" in _yaml_error(tmp_path, "\n".join(lines))
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 500) + "]\n"
    assert "more than 100 aliases" in _yaml_error(tmp_path, many)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    message = _yaml_error(tmp_path, "name: a\ninputs:\n  x: 1\n  x: 2\n")
    assert message == "f.yaml: inputs: duplicate key 'x' at line 4, column 3"


def test_large_file_is_refused_unread(tmp_path: Path) -> None:
    message = _yaml_error(tmp_path, "description: " + "x" * 2_000_000 + "\n")
    assert message == "f.yaml: file is larger than 1,000,000 bytes"


def test_huge_values_give_a_bounded_message(config: Path, output: Path) -> None:
    path = config / "scenarios/baseline.yaml"
    row = "[" + ", ".join(["0.5"] * 800) + "]"
    path.write_text("name: baseline\nrank_correlation:\n  inputs: [krw_per_usd, nope]\n"
                    f"  matrix: [{', '.join([row] * 800)}]\n")  # fmt: skip
    code, text = _run(output, "--config-dir", str(config), "-s", "baseline")
    assert code == 2 and len(text) < 2_500


def test_long_description_is_refused(config: Path, output: Path) -> None:
    path = config / "scenarios/baseline.yaml"
    path.write_text("name: baseline\ndescription: " + "x" * 600_000 + "\n")
    code, text = _run(output, "--config-dir", str(config), "-s", "baseline")
    _one_line_exit_2(code, text)
    assert "description" in text and "at most 5000 characters" in text


def test_tiny_chunks_are_refused_before_work(output: Path) -> None:
    result = runner.invoke(app, ["run", "--output", str(output), "--chunk-size", "1"])
    _one_line_exit_2(result.exit_code, result.output)
    assert "--chunk-size" in result.output and "more than 100,000 blocks" in result.output


def test_memory_in_flight_is_capped_before_work(output: Path) -> None:
    for args, gb in (
        (["--workers", "64", "--chunk-size", "65536", "--trials", "100000000"], "7.9"),
        (["--workers", "256", "--chunk-size", "100", "--trials", "100000"], "17.2"),
    ):
        result = runner.invoke(app, ["run", "--output", str(output), *args])
        _one_line_exit_2(result.exit_code, result.output)
        assert f"--workers: {args[1]}: {args[1]} workers x" in result.output
        assert f"would need about {gb} GB (the bound is 4 GB" in result.output
    # Fewer blocks than workers: only as many groups run, so the estimate uses those.
    assert run_memory_bytes(2, 65_536) < 1e9


def test_worker_processes_count_their_own_libraries(output: Path) -> None:
    """16 worker processes x 0.25 GB of libraries exceed the bound that 16 threads stay under."""
    args = ["--workers", "16", "--trials", "2000000"]
    assert run_memory_bytes(16, 65_536) < 4e9 < run_memory_bytes(16, 65_536, worker_processes=True)
    result = runner.invoke(app, ["run", "--output", str(output), "--runner", "processes", *args])
    _one_line_exit_2(result.exit_code, result.output)
    assert "would need about 6.4 GB" in result.output and "for its process" in result.output


# --------------------------------------------------------------------------- 6. paths


def test_flow_parameters_cannot_name_files_outside_the_config_folder(
    config: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("root:$6$hashedpassword:19000:0:99999:7:::\n")
    with pytest.raises(ScenarioError, match="outside the config folder"):
        resolve_scenarios(config, [str(secret)])
    link = config / "scenarios" / "leak.yaml"
    link.symlink_to(secret)
    with pytest.raises(ScenarioError) as info:
        resolve_scenarios(config, ["leak"])
    assert "outside the config folder" in str(info.value) and "hashed" not in str(info.value)
    with pytest.raises(ScenarioError, match="outside the config folder"):
        prepare_run(RunRequest(scenarios=("baseline",), config_dir=str(config),
                               evidence_file=str(secret)))  # fmt: skip
    base_escape = config / "scenarios" / "escape.yaml"
    base_escape.write_text(f"name: escape\nbase: {secret}\n")
    with pytest.raises(ScenarioError, match="base: resolves outside"):
        resolve_scenarios(config, ["escape"])


def test_cli_reads_a_local_file_but_never_echoes_non_yaml(output: Path, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow.yaml"
    shadow.write_text("root:$6$hashedpassword:19000:0:99999:7:::\n\tdaemon:*:19000\n")
    code, text = _run(output, "-s", str(shadow))
    _one_line_exit_2(code, text)
    assert "hashed" not in text and "daemon" not in text and "19000" not in text


def test_evidence_loader_bounds_apply(tmp_path: Path) -> None:
    path = tmp_path / "evidence.yaml"
    path.write_text("facts:\n  - {date: 2026-01-01, kind: talks_opened, text: a}\n"
                    "  - {date: 2026-01-01, kind: talks_opened, text: a, text: b}\n")  # fmt: skip
    with pytest.raises(ScenarioError, match="facts.1: duplicate key 'text'"):
        load_evidence(path)
    state = evidence_as_of(load_evidence(ROOT / "configs/evidence.yaml"), dt.date(2026, 6, 1))
    assert state.agreement_on is None
    _ = RunSettings(as_of=dt.date(2026, 6, 1), entropy=root_entropy(1), n_trials=1, chunk_size=1)


# --------------------------------------------------------------------------- 4. signals


def _children(pid: int) -> set[int]:
    import psutil

    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


@pytest.mark.parametrize("runner", ["threads", "processes"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_a_real_run_promptly(tmp_path: Path, sig: int, code: int, runner: str) -> None:
    """A run of ~10^9 trials (tens of minutes) gets the signal once it simulates; it must
    exit with 143/130 within the test's timeout, record the failed run, publish nothing and
    leave no embedded Prefect server (and no worker process) behind. The signal goes to the
    CLI process alone: worker processes learn of it through the shared stop flag."""
    import psutil

    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PYTHONPATH"] = str(ROOT)
    env["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "INFO"  # the start line below
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "-s", "baseline", "--trials", "1000000000",
         "--chunk-size", "100000", "--as-of", "2026-11-29", "--output", str(out), "--verbose",
         "--runner", runner],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    started = threading.Event()

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # the flow logs its settings just before simulating
            seen.append(line)
            if "scenario(s)" in line and "n_trials=1000000000" in line:
                started.set()
                return

    threading.Thread(target=watch, daemon=True).start()
    if not started.wait(timeout=120):
        proc.kill()
        pytest.fail("no simulation start within 120 s:\n" + "".join(seen))
    time.sleep(2)  # inside the simulation
    children = _children(proc.pid)
    assert children, "expected the embedded Prefect server as a child process"
    if runner == "processes":  # the server, the 2 workers and multiprocessing's tracker
        assert len(children) >= 4, children
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        rest, _ = proc.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("still running 45 s after the signal")
    seconds = time.monotonic() - sent
    print(f"{signal.Signals(sig).name}: exited {proc.returncode} after {seconds:.1f} s")
    assert proc.returncode == code, rest
    assert "recorded as failed" in rest
    runs = io.read_dataset(out, "runs").to_pandas()
    assert list(runs.status) == ["failed"]
    assert not (out / "summary").exists()
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(c) and psutil.Process(c).status() != "zombie" for c in children):
        assert time.monotonic() < deadline, "a child process (server, worker) outlived the CLI"
        time.sleep(0.2)
