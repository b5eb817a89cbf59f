"""The embedded Prefect server, started as soon as the CLI has checked a run's inputs.

Left to itself, Prefect starts its embedded (ephemeral) server on the flow's first API call:
the flow process first imports the server application (~3 s of CPU, only to reach the class
that launches it), then waits while the server process imports it again and starts (~5 s).
One core works at a time, and the flow process's own imports and the worker processes' start
come before all of it (docs/scaling.md, "Where a run's time goes").

:func:`start_embedded_server` launches the server process right after the CLI's checks, without
importing Prefect here: the child (``python -m flows.server PORT PARENT_PID``) reads Prefect's settings
and, unless an API is configured there (``PREFECT_API_URL`` in a profile, Prefect Cloud) or
ephemeral mode is off, serves Prefect's own application the way Prefect's
``SubprocessASGIServer`` does (uvicorn on ``prefect.server.api.server:create_app``, ephemeral
mode, no UI, the same database under ``PREFECT_HOME``). The flow process imports the flow and
starts its worker processes on the other core meanwhile; :meth:`EmbeddedServer.wait_ready`,
called just before the flow, makes the server's address this process's ``PREFECT_API_URL``
(worker and Dask processes started later inherit it). With ``PREFECT_API_URL`` in the
environment nothing is launched. The server is stopped when the process exits, as Prefect's
own is, and it stops itself if that process is killed (SIGKILL runs no ``atexit``), which
Prefect's own does not.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

#: Ports Prefect picks its embedded server from (``SubprocessASGIServer._port_range``).
PORT_RANGE = range(8000, 9000)
#: uvicorn's exit code when it cannot start, e.g. its port was taken meanwhile (Prefect then
#: retries on another port, and so do we).
STARTUP_FAILURE_EXIT_CODE = 3
#: The child's exit code when Prefect's settings name an API: use that one, serve nothing.
API_CONFIGURED_EXIT_CODE = 10
#: Seconds between health checks while the server starts (Prefect's own interval).
POLL_SECONDS = 0.1
#: Seconds between the server's checks that the process that launched it is still there.
PARENT_POLL_SECONDS = 1.0
#: What Prefect's SubprocessASGIServer sets for its server: the API only, in ephemeral mode.
SERVER_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}
#: Default of PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS when unset (flows/_env.py sets it).
DEFAULT_STARTUP_TIMEOUT_S = 120.0


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


def _refresh_prefect_settings() -> None:
    # Prefect reads its settings once, at import; this re-reads them (os.environ included).
    from prefect.context import refresh_global_settings_context

    refresh_global_settings_context()


class EmbeddedServer:
    """One embedded Prefect server process (or the child that found an API configured)."""

    def __init__(self, startup_timeout_s: float) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = self._launch()
        self.api_url: str | None = None
        """The server's API address once it is ready (None if an API is configured)."""
        self._waited = False
        atexit.register(self.stop)

    def _launch(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "flows.server", str(self.port), str(os.getpid())],
            env={**os.environ, **SERVER_ENV},
        )

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/api/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self) -> None:
        """Block until the server answers its health check, then make it this process's
        Prefect API; return at once if the child found an API configured, or after the first
        call."""
        if self._waited:
            return
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process is None:
                raise ServerStartError("the embedded Prefect server was stopped")
            code = self.process.poll()
            if code == API_CONFIGURED_EXIT_CODE:
                self.process, self._waited = None, True
                return
            if code == STARTUP_FAILURE_EXIT_CODE:  # e.g. another process took the port
                self.port = _free_port()
                self.process = self._launch()
                continue
            if code is not None:
                raise ServerStartError(f"the embedded Prefect server exited with code {code}")
            if self._healthy():
                self.api_url = f"http://127.0.0.1:{self.port}/api"
                os.environ["PREFECT_API_URL"] = self.api_url
                if "prefect.context" in sys.modules:
                    _refresh_prefect_settings()
                self._waited = True
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


def start_embedded_server() -> EmbeddedServer | None:
    """Launch the embedded Prefect server now, unless ``PREFECT_API_URL`` is set (then None).

    Call :meth:`EmbeddedServer.wait_ready` before the flow (and before starting a Dask cluster,
    whose workers need the API's address).
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    timeout = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")
    return EmbeddedServer(float(timeout) if timeout else DEFAULT_STARTUP_TIMEOUT_S)


def _stop_with_parent(parent_pid: int) -> None:
    """Stop this process (SIGTERM: uvicorn's graceful shutdown) once the process that launched
    it is gone. A CLI killed with SIGKILL runs no ``atexit`` handler, and Prefect's own embedded
    server is then left running for good (docs/dev-notes-prefect.md)."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()


def _serve(port: int, parent_pid: int) -> int:
    """The child: exit :data:`API_CONFIGURED_EXIT_CODE` if Prefect's settings name an API or
    forbid ephemeral mode, else serve Prefect's application on ``port`` until stopped or until
    the parent is gone."""
    _stop_with_parent(parent_pid)
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url or not settings.server.ephemeral.enabled:
        return API_CONFIGURED_EXIT_CODE
    import uvicorn

    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None
    # uvicorn exits with STARTUP_FAILURE_EXIT_CODE itself if it cannot bind the port.
    uvicorn.run(
        "prefect.server.api.server:create_app", factory=True, host="127.0.0.1", port=port,
        log_level="error", lifespan="on", app_dir=str(Path(spec.origin).parent.parent),
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(_serve(int(sys.argv[1]), int(sys.argv[2])))
