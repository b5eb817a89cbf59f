"""The embedded Prefect server, started as soon as the CLI has checked a run's inputs.

Left to itself, Prefect starts its embedded (ephemeral) server on the flow's first API call:
the flow process first imports the server application (~3 s of CPU, only to reach the class
that launches it), then waits while the server process imports it again and starts (~5 s).
One core works at a time, and the flow process's own imports and the worker processes' start
come before all of it (docs/scaling.md, "Where a run's seconds go").

:func:`start_embedded_server` launches the same server process that Prefect would - Prefect's
own command (uvicorn on ``prefect.server.api.server:create_app``, ephemeral mode, no UI), the
same database under ``PREFECT_HOME`` - right after the checks, without importing the server
application here, and makes its address this process's ``PREFECT_API_URL`` (worker and Dask
processes inherit it). The flow process's imports and the workers' start then run on the other
core while the server starts; :meth:`EmbeddedServer.wait_ready` is called just before the flow.
A configured API (``PREFECT_API_URL`` in the environment or the active profile, Prefect Cloud)
is used as is, and no server is started. The server is stopped when the process exits, as
Prefect's own is.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: Ports Prefect picks its embedded server from (``SubprocessASGIServer._port_range``).
PORT_RANGE = range(8000, 9000)
#: Exit code of uvicorn when its port is taken (Prefect then retries on another port).
PORT_IN_USE_EXIT_CODE = 3
#: Seconds between health checks while the server starts (Prefect's own interval).
POLL_SECONDS = 0.1


class ServerStartError(RuntimeError):
    """The embedded server did not answer its health check in time, or exited."""


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    for _ in range(10):
        port = random.choice(PORT_RANGE)
        if _port_is_free(port):
            return port
    raise ServerStartError("no free port for the embedded Prefect server in 8000-8999")


def _prefect_parent_dir() -> str:
    """The folder holding the ``prefect`` package (uvicorn's ``--app-dir``), found without
    importing the server application."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is not installed"
    return str(Path(spec.origin).parent.parent)


class EmbeddedServer:
    """One embedded Prefect server process and its API address."""

    def __init__(self, settings_env: dict[str, str], startup_timeout_s: float) -> None:
        self._env = {
            **os.environ,
            # What Prefect's SubprocessASGIServer sets: serve the API only, in ephemeral mode.
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **settings_env,
        }
        self.startup_timeout_s = startup_timeout_s
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = self._launch()
        self._ready = False
        atexit.register(self.stop)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _launch(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", _prefect_parent_dir(), "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=self._env,
        )  # fmt: skip

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self) -> None:
        """Block until the server answers its health check (at once after the first time)."""
        if self._ready:
            return
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is None:
                raise ServerStartError("the embedded Prefect server was stopped")
            code = self.process.poll()
            if code == PORT_IN_USE_EXIT_CODE:  # another process took the port meanwhile
                self.port = _free_port()
                self.process = self._launch()
                os.environ["PREFECT_API_URL"] = self.api_url
                _refresh_prefect_settings()
                continue
            if code is not None:
                raise ServerStartError(f"the embedded Prefect server exited with code {code}")
            if self._healthy():
                self._ready = True
                return
            time.sleep(POLL_SECONDS)
        raise ServerStartError(
            f"the embedded Prefect server did not start within {self.startup_timeout_s:.0f} s "
            "(PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS)"
        )

    def stop(self) -> None:
        """Stop the server (Prefect's way: SIGTERM, then SIGKILL after 5 s)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _refresh_prefect_settings() -> None:
    # Prefect reads its settings once, at import; this re-reads them (os.environ included).
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


def start_embedded_server() -> EmbeddedServer | None:
    """Launch the embedded Prefect server now, unless an API is configured (then None).

    Its address becomes ``PREFECT_API_URL`` in ``os.environ`` and in Prefect's settings for this
    process, so the flow and every process started from here use it; call
    :meth:`EmbeddedServer.wait_ready` before the flow.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return None
    server = EmbeddedServer(
        settings.to_environment_variables(exclude_unset=True),
        startup_timeout_s=float(settings.server.ephemeral.startup_timeout_seconds),
    )
    os.environ["PREFECT_API_URL"] = server.api_url
    _refresh_prefect_settings()
    return server
