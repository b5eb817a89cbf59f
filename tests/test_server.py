"""The embedded Prefect server launched early by the CLI (flows/server.py).

The child process is replaced by tiny stand-ins where only its exit code matters; one test
starts the real server from a launcher process, checks that it answers and becomes the
launcher's API, then kills the launcher with SIGKILL and checks the server stops by itself.
The CLI's own use of it (a run without PREFECT_API_URL) is covered by the signal tests in
test_reliability.py, which also check that no server outlives the CLI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import server as embedded
from flows.server import (
    API_CONFIGURED_EXIT_CODE,
    STARTUP_FAILURE_EXIT_CODE,
    EmbeddedServer,
    ServerStartError,
    start_embedded_server,
)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_api_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No PREFECT_API_URL in os.environ, and whatever a test sets there removed afterwards."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    yield
    os.environ.pop("PREFECT_API_URL", None)


def _stand_in(code: int | None) -> subprocess.Popen[bytes]:
    """A child that exits with ``code`` at once (None: one that runs until stopped)."""
    body = "import time; time.sleep(60)" if code is None else f"raise SystemExit({code})"
    return subprocess.Popen([sys.executable, "-c", body])


def _server_with(monkeypatch: pytest.MonkeyPatch, codes: list[int | None], timeout: float = 20):
    launched: list[int | None] = []

    def launch(self: EmbeddedServer) -> subprocess.Popen[bytes]:
        code = codes[len(launched)]
        launched.append(code)
        return _stand_in(code)

    monkeypatch.setattr(EmbeddedServer, "_launch", launch)
    return EmbeddedServer(startup_timeout_s=timeout), launched


def test_nothing_is_launched_when_the_environment_names_an_api(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:4200/api")
    monkeypatch.setattr(EmbeddedServer, "_launch", lambda self: pytest.fail("launched"))
    assert start_embedded_server() is None


def test_an_api_in_the_profile_is_used_as_is(
    monkeypatch: pytest.MonkeyPatch, no_api_url: None
) -> None:
    server, launched = _server_with(monkeypatch, [API_CONFIGURED_EXIT_CODE])
    server.wait_ready()
    assert launched == [API_CONFIGURED_EXIT_CODE]
    assert server.api_url is None
    assert "PREFECT_API_URL" not in os.environ


def test_a_port_taken_meanwhile_is_retried_on_another(
    monkeypatch: pytest.MonkeyPatch, no_api_url: None
) -> None:
    server, launched = _server_with(
        monkeypatch, [STARTUP_FAILURE_EXIT_CODE, API_CONFIGURED_EXIT_CODE]
    )
    server.wait_ready()
    assert launched == [STARTUP_FAILURE_EXIT_CODE, API_CONFIGURED_EXIT_CODE]


def test_a_server_that_exits_or_never_answers_is_an_error(
    monkeypatch: pytest.MonkeyPatch, no_api_url: None
) -> None:
    server, _ = _server_with(monkeypatch, [1])
    with pytest.raises(ServerStartError, match="exited with code 1"):
        server.wait_ready()
    silent, _ = _server_with(monkeypatch, [None], timeout=0.5)
    with pytest.raises(ServerStartError, match="did not start within"):
        silent.wait_ready()
    process = silent.process
    assert process is not None
    silent.stop()
    assert process.poll() is not None and silent.process is None


def test_the_child_defers_to_an_api_named_in_the_active_profile(tmp_path: Path) -> None:
    """The real child: a profile naming an API means exit 10 and no server."""
    (tmp_path / "profiles.toml").write_text(
        'active = "remote"\n[profiles.remote]\nPREFECT_API_URL = "http://127.0.0.1:4200/api"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "flows.server", str(embedded._free_port()), str(os.getpid())],
        env=env, cwd=ROOT,
        timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == API_CONFIGURED_EXIT_CODE, result.stderr


LAUNCHER = """
import os, time
from flows.server import start_embedded_server
server = start_embedded_server()
server.wait_ready()
print(server.process.pid, os.environ["PREFECT_API_URL"], flush=True)
time.sleep(300)
"""


@pytest.mark.slow
def test_the_real_server_answers_and_stops_itself_when_its_launcher_is_killed(
    tmp_path: Path,
) -> None:
    """A real start (fresh database), its address exported, its API answering; then the
    launching process is killed with SIGKILL (no atexit): the server must stop by itself."""
    import httpx
    import psutil

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env.update(PREFECT_HOME=str(tmp_path), PYTHONPATH=str(ROOT))
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert launcher.stdout is not None
        started = time.monotonic()
        pid_text, api_url = launcher.stdout.readline().split()
        print(f"embedded server ready after {time.monotonic() - started:.1f} s")
        child = int(pid_text)
        assert api_url.startswith("http://127.0.0.1:") and api_url.endswith("/api")
        assert httpx.get(f"{api_url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{api_url}/admin/version", timeout=5).status_code == 200
    finally:
        launcher.kill()
        launcher.wait()
    deadline = time.monotonic() + 30
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the server outlived its killed launcher by 30 s"
        time.sleep(0.2)
