#!/usr/bin/env python3
"""Draw the backtest's PIT values and interval reliability as a PNG (docs/backtest_pit.png).

    PYTHONPATH=$PWD python tools/pit_chart.py [--out docs/backtest_pit.png] [--config configs]

Left: the model's PIT of each case's outcome (share of trials below it) for the first-year
increase and the months to agreement, with the 0.02 / 0.98 limits of the issue-11 targets; a
calibrated forecaster's PITs look uniform. Right: coverage of the central 50/80/90% intervals
over the six cases against the nominal level (the diagonal). Reads nothing but run_backtest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.backtest import COVERAGE_LEVELS, run_backtest  # noqa: E402

TARGETS = {"increase_pct": "first-year increase", "months_to_settlement": "months to agreement"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/backtest_pit.png")
    parser.add_argument("--config", default="configs")
    args = parser.parse_args()
    df = run_backtest(args.config).to_pandas()
    model = df[df["forecaster"] == "model"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=110)
    for row, (target, label) in enumerate(TARGETS.items()):
        pits = model[(model["target"] == target) & (model["score"] == "pit")]
        y = [row] * len(pits)
        left.scatter(pits["value"], y, s=40, label=label, zorder=3)
        ordered = sorted(zip(pits["value"], pits["case"], strict=True))
        for i, (value, case) in enumerate(ordered):  # alternate above/below: close PITs
            left.annotate(case.removeprefix("sma"), (value, row), textcoords="offset points",
                          xytext=(0, 7 if i % 2 == 0 else -14), ha="center", fontsize=8)  # fmt: skip
        levels = [round(lv * 100) for lv in COVERAGE_LEVELS]
        cover = [
            model[(model["target"] == target) & (model["score"] == f"covers_{lv}")]["value"].mean()
            for lv in levels
        ]
        right.plot([lv / 100 for lv in levels], cover, marker="o", label=label)
    for limit in (0.02, 0.98):
        left.axvline(limit, color="grey", linestyle="--", linewidth=1)
    left.set_xlim(0, 1)
    left.set_ylim(-0.6, 1.6)
    left.set_yticks([0, 1], list(TARGETS.values()))
    left.set_xlabel("PIT of the outcome (number: SMA)")
    left.set_title("PIT per backtest case")
    right.plot([0.4, 1], [0.4, 1], color="grey", linestyle="--", linewidth=1)
    right.set_xlim(0.4, 1)
    right.set_ylim(0, 1.05)
    right.set_xlabel("nominal central interval")
    right.set_ylabel("share of 6 outcomes inside")
    right.set_title("Interval reliability")
    right.legend(loc="lower right", fontsize=8)
    fig.suptitle("Backtest, every input out of sample (run_backtest, seed 20261129)", fontsize=10)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out)
    sys.stdout.write(f"wrote {args.out}\n")


if __name__ == "__main__":
    main()
