"""Run ``sma-forecast ARGS`` in this process and print its peak resident set size.

``python -m benchmarks._rss run --trials ...`` prints ``PEAK_RSS_MB <value>`` on stderr at the
end, and ``PEAK_CHILD_RSS_MB <value>``: the largest peak of a finished child process
(``getrusage(RUSAGE_CHILDREN)``: the worker processes of the ``processes`` runner, stopped when
the flow ends, or another finished child such as a Prefect server process, whichever is
larger; an overestimate rather than a miss).
"""

from __future__ import annotations

import resource
import sys


def main() -> None:
    from flows.cli import main as cli

    sys.argv = ["sma-forecast", *sys.argv[1:]]
    try:
        cli()
    finally:
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(f"PEAK_RSS_MB {peak_kb / 1024:.1f}", file=sys.stderr, flush=True)
        print(f"PEAK_CHILD_RSS_MB {child_kb / 1024:.1f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
