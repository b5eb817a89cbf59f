"""Shared fixtures: ``repo_root``, ``prefect_harness`` and ``prefect_server``.

Prefect is configured here *before* anything imports it: every test session gets its own
temporary ``PREFECT_HOME`` (never the developer's ``~/.prefect``), no inherited API URL or
profile, and the project's defaults from ``flows/_env.py`` (telemetry off, longer start-up
timeout, quiet embedded server). Tests that do not request a Prefect fixture never start a
Prefect server. See docs/dev-notes-prefect.md for the measurements behind this.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

# --- Prefect environment: this must run before `prefect` is imported anywhere. ------------
_PREFECT_HOME = Path(tempfile.mkdtemp(prefix="sma-tests-prefect-home-"))
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = str(_PREFECT_HOME)
for _var in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
    os.environ.pop(_var, None)

import pytest  # noqa: E402

import flows._env  # noqa: E402,F401  (os.environ.setdefault of the project's Prefect defaults)

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (holds pyproject.toml, configs/, flows/, pipeline/)."""
    return REPO_ROOT


# --------------------------------------------------------------------------- harness


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """Run flows in this process against a throw-away Prefect API; yields its URL.

    One embedded server (fresh SQLite database, ~10-15 s to start) for the whole session,
    started only when a test first requests this fixture. Use it in flow tests::

        def test_flow(prefect_harness): ...
        pytestmark = pytest.mark.usefixtures("prefect_harness")  # or a whole module

    ``PREFECT_API_URL`` is exported while it runs, so child processes (dask workers, a CLI
    run in a subprocess) use the same server instead of starting their own.
    """
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    # Prefect configures logging lazily, binding its console handler to the sys.stderr of the
    # moment; inside a test with capfd/-s that stream is closed later ("Logging error").
    ensure_logging_setup()
    # None: wait PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS (flows._env: 120 s), not 30 s.
    with prefect_test_harness(server_startup_timeout=None):
        url = PREFECT_API_URL.value()
        assert url, "prefect_test_harness did not set PREFECT_API_URL"
        os.environ["PREFECT_API_URL"] = url
        try:
            yield url
        finally:
            os.environ.pop("PREFECT_API_URL", None)


# --------------------------------------------------------------------------- real server


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 30.0) -> None:
    """SIGTERM (graceful: serve pauses its schedules, the server closes its database), then
    SIGKILL the process group we created if it has not exited."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children (flow-run subprocesses) too
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=10)


class PrefectServer:
    """A ``prefect server start`` subprocess plus helpers for serve-and-trigger tests."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.api_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self.log = workdir / "server.log"

    # -- environment for every process that talks to this server
    @property
    def env(self) -> dict[str, str]:
        """``os.environ`` plus this server's URL, a client PREFECT_HOME and a 1 s runner poll."""
        env = dict(os.environ)
        env.update(
            PREFECT_API_URL=self.api_url,
            PREFECT_HOME=str(self.workdir / "client-home"),
            # serve() polls for due runs every 10 s by default: an ad hoc run would wait that long.
            PREFECT_RUNNER_POLL_FREQUENCY="1",
        )
        return env

    def start(self, attempts: int = 3) -> None:
        env = dict(os.environ)
        env.pop("PREFECT_API_URL", None)
        env.update(
            PREFECT_HOME=str(self.workdir / "server-home"),
            PREFECT_SERVER_LOGGING_LEVEL="WARNING",  # to server.log, shown when a test fails
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
        )
        for attempt in range(1, attempts + 1):
            self.port = _free_port()
            self.api_url = f"http://127.0.0.1:{self.port}/api"
            with self.log.open("ab") as log:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "prefect", "server", "start",
                     "--host", "127.0.0.1", "--port", str(self.port)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            if self._wait_healthy():
                return
            _stop(self._proc, grace_s=5)
            if attempt == attempts:
                raise RuntimeError(
                    f"prefect server did not become healthy at {self.api_url} within "
                    f"{STARTUP_TIMEOUT_S:.0f} s (x{attempts}); log tail:\n{_tail(self.log)}"
                )

    def _wait_healthy(self) -> bool:
        import httpx

        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False  # exited: port taken or failed migration
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        return False

    def stop(self) -> None:
        for child in reversed(self._children):
            _stop(child)
        self._children.clear()
        if self._proc is not None:
            _stop(self._proc, grace_s=15)
            self._proc = None

    # -- helpers for tests
    def cli(
        self, *args: str, timeout: float = 180, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``prefect ARGS`` against this server, e.g. ``cli("deployment", "run", ...)``."""
        result = subprocess.run(
            [sys.executable, "-m", "prefect", *args], env=self.env, capture_output=True,
            text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"prefect {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    @contextmanager
    def serve(
        self,
        argv: Sequence[str],
        *,
        deployments: Sequence[str] = (),
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 120,
        name: str = "serve",
    ) -> Iterator[subprocess.Popen[bytes]]:
        """Run a serving process (``argv``, e.g. ``[sys.executable, "-m", "flows.cli", "serve"]``)
        until the block exits; wait until each ``"flow-name/deployment-name"`` is registered.

        Stopped with SIGTERM (serve pauses its schedules and exits 0). Its output is in
        ``<workdir>/<name>.log``, printed with the failure if registration times out.
        """
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv), cwd=cwd or REPO_ROOT, env={**self.env, **(env or {})}, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._children.append(proc)
        try:
            deadline = time.monotonic() + timeout
            for deployment in deployments:
                while self.read_deployment(deployment) is None:
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited {proc.returncode}:\n{_tail(log)}")
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{deployment} not registered:\n{_tail(log)}")
                    time.sleep(0.5)
            yield proc
        finally:
            _stop(proc)
            self._children.remove(proc)

    def read_deployment(self, name: str) -> dict[str, Any] | None:
        """The deployment ``"flow-name/deployment-name"`` as JSON, or None if not registered."""
        import httpx

        flow_name, _, deployment_name = name.partition("/")
        response = httpx.get(
            f"{self.api_url}/deployments/name/{flow_name}/{deployment_name}", timeout=10
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def flow_runs(self, deployment: str, limit: int = 10) -> list[dict[str, Any]]:
        """Flow runs of ``"flow-name/deployment-name"`` (JSON), earliest expected start first;
        the server's scheduler adds a cron deployment's upcoming runs within seconds."""
        import httpx

        found = self.read_deployment(deployment)
        if found is None:
            return []
        response = httpx.post(
            f"{self.api_url}/flow_runs/filter",
            json={"deployments": {"id": {"any_": [found["id"]]}}, "limit": limit,
                  "sort": "EXPECTED_START_TIME_ASC"},
            timeout=10,
        )  # fmt: skip
        response.raise_for_status()
        return list(response.json())

    def run_deployment(
        self, name: str, parameters: Mapping[str, Any] | None = None, *, timeout: float = 300
    ) -> FlowRun:
        """Create a flow run of ``name`` and wait for a final state; returns the ``FlowRun``.

        Parameters may be dates, dicts or pydantic models: Prefect's client encodes them to JSON
        and the flow validates them back into its annotated types.
        """
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync here
                name, parameters=dict(parameters or {}), timeout=timeout, poll_interval=1,
                as_subflow=False,
            )  # fmt: skip
        if flow_run.state is None or not flow_run.state.is_final():
            logs = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in self.workdir.glob("*.log"))
            raise TimeoutError(f"flow run {flow_run.id} not finished after {timeout} s\n{logs}")
        return flow_run


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real ``prefect server start`` on a free loopback port (fresh PREFECT_HOME; ~10-15 s),
    for tests of schedules, ``serve`` and ``prefect deployment run``. Tests that request it are
    marked ``server`` automatically (deselect with ``-m "not server"``)::

        @pytest.mark.server
        def test_adhoc(prefect_server, repo_root):
            with prefect_server.serve([sys.executable, "-m", "flows.cli", "serve"],
                                      deployments=["forecast/adhoc"]):
                run = prefect_server.run_deployment("forecast/adhoc", {"n_trials": 100})
            assert run.state.is_completed()
    """
    server = PrefectServer(tmp_path_factory.mktemp("prefect-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: before `-m` deselection, so `-m "not server"` also skips unmarked users.
    for item in items:
        if "prefect_server" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            "server"
        ):
            item.add_marker(pytest.mark.server)
