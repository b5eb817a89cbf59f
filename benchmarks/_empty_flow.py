"""An empty Prefect flow, run as its own process: the start-up cost every run pays.

``python -m benchmarks._empty_flow`` imports Prefect with the project's defaults (flows/_env.py),
starts the embedded server (unless PREFECT_API_URL is set), runs a flow with no tasks and exits.
"""

from __future__ import annotations

import flows  # noqa: F401  (the project's Prefect defaults, before Prefect loads)


def main() -> None:
    from prefect import flow

    @flow(name="empty")
    def empty() -> None:
        """Nothing: orchestration cost only."""

    empty()


if __name__ == "__main__":
    main()
