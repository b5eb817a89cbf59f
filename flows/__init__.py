"""Prefect orchestration of sma-forecast (no model logic here).

Importing the package first applies safe Prefect defaults (flows._env) before Prefect loads.
"""

from flows import _env as _env
