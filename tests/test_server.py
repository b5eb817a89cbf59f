"""The embedded Prefect server launched early by the CLI (flows/server.py).

The child process is replaced by tiny stand-ins where only its exit code matters; one test
starts the real server and checks that it answers, becomes this process's API and is gone
after ``stop``. The CLI's own use of it (a run without PREFECT_API_URL) is covered by the
signal tests in test_reliability.py, which also check that no server outlives the CLI.
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
        [sys.executable, "-m", "flows.server", str(embedded._free_port())], env=env, cwd=ROOT,
        timeout=120, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == API_CONFIGURED_EXIT_CODE, result.stderr


@pytest.mark.slow
def test_the_real_server_starts_answers_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_api_url: None
) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # A settings refresh in this process would point the session's harness elsewhere.
    monkeypatch.setattr(embedded, "_refresh_prefect_settings", lambda: None)
    server = start_embedded_server()
    assert server is not None
    try:
        started = time.monotonic()
        server.wait_ready()
        print(f"embedded server ready after {time.monotonic() - started:.1f} s")
        assert server.api_url == f"http://127.0.0.1:{server.port}/api"
        assert os.environ["PREFECT_API_URL"] == server.api_url
        import httpx

        assert httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{server.api_url}/admin/version", timeout=5).status_code == 200
    finally:
        process = server.process
        server.stop()
    assert process is not None and process.poll() is not None
