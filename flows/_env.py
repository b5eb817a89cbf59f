"""Safe Prefect defaults, set before Prefect is imported; a user's own values always win.

Imported first by ``flows/__init__.py`` (so by the CLI and every flow module) and by
``tests/conftest.py``. Only ``os.environ.setdefault`` is used: anything already in the
environment (or exported by the Makefile) is left alone. Measured on Prefect 3.9.1; see
docs/dev-notes-prefect.md.
"""

from __future__ import annotations

import os

DEFAULTS: dict[str, str] = {
    # No network here. The server's analytics heartbeat printed
    # "ERROR | prefect.server.services.telemetry - Failed to send telemetry" on every run.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # SDK analytics (first-run notice and events, interactive terminals only); a standard opt-out.
    "DO_NOT_TRACK": "1",
    # OpenTelemetry spans per run (and an extra label-update API call) and resource metrics.
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    # The embedded (ephemeral) server's first database migration takes 10-11 s on an idle
    # 2-core machine and over 20 s (the default timeout) with a few processes starting at once.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # SQLite wait on connect (default 10 s) when processes share one PREFECT_HOME database.
    "PREFECT_SERVER_DATABASE_TIMEOUT": "30",
    # The embedded server runs as a child process that inherits this environment. When the flow
    # process exits it stops that server mid-write, which printed "Error flushing N events"
    # tracebacks after ~100 or more tasks; SQLite lock retries are logged there too. Errors that
    # matter reach the client as failed API calls. Set WARNING to debug the server.
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    # Run logs at INFO reach the API/UI; the CLI lowers only the console handler.
    "PREFECT_LOGGING_LEVEL": "INFO",
    # dask.distributed prints ~40 INFO lines per LocalCluster start.
    "DASK_LOGGING__DISTRIBUTED": "warning",
}

for _key, _value in DEFAULTS.items():
    os.environ.setdefault(_key, _value)


def export_api_url() -> str:
    """Make this process's Prefect API visible to child processes, and return its URL.

    Without ``PREFECT_API_URL`` each process that talks to Prefect starts its own embedded
    server on the same SQLite file: every dask worker process (DaskTaskRunner with
    ``processes=True``) would add a server start (~4-10 s each) and lock contention. Call this
    before the flow starts its dask cluster; workers inherit ``os.environ`` when spawned.
    """
    from prefect.settings import PREFECT_API_URL

    url = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if not url:
        # The same singleton Prefect's own client would start on first use.
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start()
        url = server.api_url
    os.environ["PREFECT_API_URL"] = url
    return url
