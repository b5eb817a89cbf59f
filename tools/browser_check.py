#!/usr/bin/env python3
"""Load an HTML page in headless Chromium and check it the way a person would see it.

    python tools/browser_check.py outputs/reports/as_of_date=2026-03-05/index.html \
        [--screenshot shot.png] [--width 1280] [--chromium /usr/bin/chromium] [--timeout 60]

Exit 0 when the page loaded and:

* nothing was written to the console at level error, no script exception was thrown and no
  resource failed to load (Chrome DevTools Protocol events ``Runtime.consoleAPICalled``,
  ``Runtime.exceptionThrown``, ``Log.entryAdded``, ``Network.loadingFailed``);
* the page made no request other than ``file:``/``data:`` URLs (a self-contained page needs no
  network; the machine has none);
* every ``<img>`` decoded (``naturalWidth > 0``);
* nothing overflows the window's width (``--width``, default 1280 px): the document is no wider
  than the window and no element reaches past its right edge unless a parent scrolls or clips
  it (wide tables scroll inside their column);
* the screenshot (``--width`` px wide, 2000 px tall, the top of the page) is not blank: more than 64
  distinct colours and more than 2% of pixels differ from the most common one.

Exit 1 otherwise, with one line per problem on stderr; exit 2 when Chromium cannot be started.

How: Chromium runs ``--headless`` with ``--remote-debugging-port=0`` in a throw-away profile
and writes the port it chose to ``<profile>/DevToolsActivePort``; the script drives the page over
the DevTools WebSocket with the ``websockets`` package (installed with Prefect). Flags turn off
every background download (component updates, sync, QUIC, field trials) so the check works
offline. Uses only the standard library, ``websockets`` and Pillow (a matplotlib dependency).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 1280, 2000
MIN_COLOURS = 64
MIN_INK_SHARE = 0.02
#: Time to let late events (e.g. a lazy image failing) arrive after the load event [s].
SETTLE_S = 0.5

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # root in a container has no user namespace sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
    "--metrics-recording-only",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class BrowserError(RuntimeError):
    """Chromium could not be started or driven."""


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, $CHROMIUM, or chromium/chromium-browser on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


@contextmanager
def _chromium(binary: str, timeout: float, width: int = WIDTH) -> Iterator[str]:
    """Start Chromium; yield the WebSocket URL of its first page target."""
    profile = Path(tempfile.mkdtemp(prefix="browser-check-"))
    log = (profile / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            *CHROMIUM_FLAGS,
            f"--window-size={width},{HEIGHT}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],  # fmt: skip
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its helpers form a process group we can end together
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                tail = (profile / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium exited with {proc.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not open its DevTools port in time")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        yield _page_target(port, deadline)
    finally:
        with_group = proc.pid
        try:
            os.killpg(with_group, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(with_group, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


def _page_target(port: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                targets = json.loads(r.read())
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BrowserError(f"DevTools endpoint not reachable: {exc}") from exc
            time.sleep(0.1)
            continue
        pages = [t for t in targets if t.get("type") == "page"]
        if pages:
            return str(pages[0]["webSocketDebuggerUrl"])
        if time.monotonic() > deadline:
            raise BrowserError("no page target in Chromium")
        time.sleep(0.1)


class _Session:
    """A minimal DevTools client: numbered commands, events collected while waiting."""

    def __init__(self, ws: Any, deadline: float) -> None:
        self.ws, self.deadline, self.next_id = ws, deadline, 0
        self.events: list[dict[str, Any]] = []

    def _recv(self, timeout: float) -> dict[str, Any] | None:
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"timed out waiting for {method}")
            msg = self._recv(left)
            if msg is None:
                continue
            if msg.get("id") == ident:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg.get("result", {})
                return result
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, method: str) -> None:
        while not any(e["method"] == method for e in self.events):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"timed out waiting for {method}")
            msg = self._recv(left)
            if msg is not None and "method" in msg:
                self.events.append(msg)

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            msg = self._recv(left)
            if msg is not None and "method" in msg:
                self.events.append(msg)


#: Document width and the first elements reaching past the window's right edge that no
#: scrolling or clipping parent contains (tag#id.class and right edge in px).
_OVERFLOW_JS = """JSON.stringify({
  page: document.documentElement.scrollWidth,
  elements: Array.from(document.querySelectorAll('body *')).filter(e => {
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= window.innerWidth + 1) return false;
    for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return false;
    }
    return true;
  }).slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
    + (e.className ? '.' + String(e.className).split(' ')[0] : '')
    + ' right edge ' + Math.round(e.getBoundingClientRect().right) + ' px')
})"""


def _problems(events: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for e in events:
        method, p = e["method"], e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            out.append(f"script exception: {text}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {args}")
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(
                f"console error ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip()
            )
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            out.append(
                f"resource failed to load: {p.get('errorText')} (request {p.get('requestId')})"
            )
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                out.append(f"network request to {url} (a self-contained page makes none)")
    return out


def _blank(png: bytes) -> str | None:
    """Why the screenshot looks blank, or None if it shows content."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    colours = img.getcolors(maxcolors=img.width * img.height) or []
    n_bg, background = max(colours)
    ink = 1.0 - n_bg / (img.width * img.height)
    counts = colours
    if len(counts) <= MIN_COLOURS or ink <= MIN_INK_SHARE:
        return (
            f"screenshot looks blank: {len(counts)} colours, {ink:.1%} of pixels differ from "
            f"the background {background}"
        )
    return None


def check_page(
    page: Path,
    *,
    chromium: str,
    screenshot: Path | None = None,
    timeout: float = 60.0,
    full_page: bool = False,
    width: int = WIDTH,
) -> list[str]:
    """Load ``page`` in headless Chromium; return the problems found (empty: all good)."""
    from websockets.sync.client import connect

    url = page.resolve().as_uri()
    deadline = time.monotonic() + timeout
    with _chromium(chromium, timeout, width) as ws_url, connect(ws_url, max_size=2**28) as ws:
        s = _Session(ws, deadline)
        for domain in ("Page", "Runtime", "Log", "Network"):
            s.send(f"{domain}.enable")
        s.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=HEIGHT, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip
        s.events.clear()  # about:blank's own events
        nav = s.send("Page.navigate", url=url)
        if nav.get("errorText"):
            return [f"navigation failed: {nav['errorText']}"]
        s.wait_for("Page.loadEventFired")
        s.drain(SETTLE_S)
        seen = len(s.events)
        problems = _problems(s.events)
        broken = s.send(
            "Runtime.evaluate",
            expression="JSON.stringify(Array.from(document.images)"
            ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')))",
            returnByValue=True,
        )
        for src in json.loads(broken["result"]["value"]):
            problems.append(f"image did not load: {src}")
        text = s.send(
            "Runtime.evaluate", expression="document.body ? document.body.innerText.length : 0",
            returnByValue=True,
        )  # fmt: skip
        if int(text["result"]["value"]) < 20:
            problems.append("the page has (almost) no text")
        wide = s.send("Runtime.evaluate", expression=_OVERFLOW_JS, returnByValue=True)
        found = json.loads(wide["result"]["value"])
        if found["page"] > width:
            problems.append(f"the page is {found['page']} px wide in a {width} px window")
        for what in found["elements"]:
            problems.append(f"element overflows the {width} px window: {what}")
        if full_page:
            size = s.send("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
            shot = s.send(
                "Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True
            )
        else:
            shot = s.send("Page.captureScreenshot", format="png")
        png = base64.b64decode(shot["data"])
        problems += _problems(s.events[seen:])
    if screenshot is not None:
        screenshot.write_bytes(png)
    if (why := _blank(png)) is not None:
        problems.append(why)
    return problems


def _say(text: str, *, err: bool = True) -> None:
    (sys.stderr if err else sys.stdout).write(f"browser_check: {text}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="HTML file to load")
    parser.add_argument("--screenshot", type=Path, help="save the screenshot here (PNG)")
    parser.add_argument(
        "--full-page", action="store_true", help="screenshot the whole page, not the top"
    )
    parser.add_argument(
        "--width", type=int, default=WIDTH, help=f"window width in px (default {WIDTH})"
    )
    parser.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM or PATH)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        _say(f"no such file: {args.page}")
        return 1
    binary = find_chromium(args.chromium)
    if binary is None:
        _say("chromium not found (apt-get install chromium)")
        return 2
    try:
        problems = check_page(
            args.page,
            chromium=binary,
            screenshot=args.screenshot,
            timeout=args.timeout,
            full_page=args.full_page,
            width=args.width,
        )
    except BrowserError as exc:
        _say(str(exc))
        return 2
    for problem in problems:
        _say(problem)
    if problems:
        return 1
    _say(f"OK {args.page} (no console errors, screenshot not blank)", err=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
