"""The report in a real browser: headless Chromium loads it with no console errors, nothing
overflows the window at 1400 and 800 px and its screenshot is not blank
(tools/browser_check.py). Screenshots go to $SMA_TEST_ARTIFACTS when set (else the test's
temporary folder). Skipped when Chromium is not installed (Debian: ``apt-get install
chromium``); select with ``-m browser``."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import REPO_ROOT, publish_forecast

from pipeline.report import build_report

sys.path.insert(0, str(REPO_ROOT / "tools"))
from browser_check import find_chromium  # noqa: E402

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed"),
]

TOOL = REPO_ROOT / "tools" / "browser_check.py"


def check(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), str(page), *extra],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "outputs"
    publish_forecast(out, ["baseline", "hardline"], as_of=dt.date(2026, 2, 27), n_trials=2000)
    publish_forecast(
        out,
        ["baseline", "hardline"],
        as_of=dt.date(2026, 3, 5),
        n_trials=2000,
        overrides={"korea_cpi_pct.p95": 4.0},
    )
    return build_report(out)


def test_report_loads_without_console_errors_and_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    result = check(report, "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_fails_on_console_errors_and_missing_files(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body>"
        "<h1>A page with problems, and enough text to count as content.</h1>"
        "<img src='missing.png' alt='gone'>"
        "<script>console.error('deliberate error');</script></body></html>"
    )
    result = check(page)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "deliberate error" in result.stderr
    assert "missing.png" in result.stderr


def test_check_fails_on_a_blank_page(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text(
        "<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body></body></html>"
    )
    result = check(page)
    assert result.returncode == 1
    assert "blank" in result.stderr


@pytest.mark.parametrize("width", [1400, 800])
def test_report_fits_the_window_at_desktop_and_narrow_widths(
    report: Path, tmp_path: Path, width: int
) -> None:
    folder = Path(os.environ.get("SMA_TEST_ARTIFACTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"report-{width}px.png"
    result = check(report, "--width", str(width), "--full-page", "--screenshot", str(shot))
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_fails_on_an_element_wider_than_the_window(tmp_path: Path) -> None:
    page = tmp_path / "wide.html"
    page.write_text(
        "<!DOCTYPE html><html><head><link rel=icon href='data:,'></head><body>"
        "<h1>A page with a table far wider than the window, and enough text.</h1>"
        "<table id=wide style='width:2000px'><tr><td>cell</td></tr></table></body></html>"
    )
    result = check(page, "--width", "800")
    assert result.returncode == 1
    assert "table#wide" in result.stderr
