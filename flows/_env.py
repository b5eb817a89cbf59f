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

#: glibc malloc: keep up to this much freed memory at the top of the heap [bytes] ...
TRIM_THRESHOLD_BYTES = 512 * 1024 * 1024
#: ... and serve blocks below this size from the heap, not from fresh mmap'd pages [bytes].
MMAP_THRESHOLD_BYTES = 64 * 1024 * 1024


def tune_allocator() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    The simulation core allocates and frees the same few-hundred-kB arrays block after block.
    With glibc's defaults, whether a freed heap top is handed back to the kernel depends on
    where an unrelated small allocation happens to sit; when it is, every block faults its
    pages in again (~10,000 page faults per 65,536-trial block), and the core ran at 1.0-1.2 M
    trials/s instead of 2.2 M/s in the same process (measured). Fixed thresholds make that
    independent of luck; memory held is bounded by the peak in use. A no-op (False) off glibc
    or when MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ are set by the user.
    """
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(
        mallopt(m_trim_threshold, TRIM_THRESHOLD_BYTES)
        and mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)
    )


tune_allocator()


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
