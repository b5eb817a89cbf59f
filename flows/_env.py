"""Safe Prefect defaults, set before Prefect is imported; a user's own values always win."""

from __future__ import annotations

import os

_DEFAULTS = {
    # No network here: Prefect's telemetry and the server's analytics would print errors.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    # The embedded server's first database migration can take longer than the 20 s default.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}

for _key, _value in _DEFAULTS.items():
    os.environ.setdefault(_key, _value)
