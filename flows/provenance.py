"""Provenance of a run: the package version and git commit recorded in ``runs``."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version

from pipeline.spec.request import REPO_ROOT


def package_version() -> str:
    """The installed sma-forecast version ("0+unknown" when run from a bare checkout)."""
    try:
        return version("sma-forecast")
    except PackageNotFoundError:
        return "0+unknown"


def git_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=5, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
