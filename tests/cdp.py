"""A small Chrome DevTools Protocol client over Chromium's ``--remote-debugging-pipe``, standard library only.

The dashboards are a JavaScript application behind a login, so ``chromium --screenshot`` is not enough: the
browser needs the session cookie, time for every chart's query to come back, and a look at the DOM afterwards.
CDP over a pipe (file descriptors 3 and 4, messages separated by NUL bytes) needs no websocket library and no
browser download: Debian's ``chromium`` is driven directly.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")


class CDPError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium with one page target, driven over the DevTools pipe."""

    def __init__(self, user_data_dir: Path, width: int = 1600, height: int = 1200) -> None:
        if not CHROMIUM.exists():
            raise CDPError(f"{CHROMIUM} is missing: `make chromium` installs Debian's chromium package")
        # Our ends of the two pipes are moved above fd 10 so that the child's dup2 onto 3 and 4 cannot clobber them.
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        self._child_in = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
        self._child_out = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._write_fd = to_chrome_w
        self._read_fd = from_chrome_r
        child_in, child_out = self._child_in, self._child_out

        def _wire_pipes() -> None:  # runs in the child before exec: Chromium reads fd 3 and writes fd 4
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        user_data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = user_data_dir / "chromium-stderr.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                # A page in a headless browser counts as hidden: without these its timers and frames are throttled
                # and a screenshot can show a stale frame.
                "--disable-renderer-backgrounding",
                "--disable-background-timer-throttling",
                "--disable-backgrounding-occluded-windows",
                "--mute-audio",
                f"--window-size={width},{height}",
                f"--user-data-dir={user_data_dir}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            pass_fds=(3, 4),
            preexec_fn=_wire_pipes,  # noqa: PLW1509 (no threads are started by the caller in between)
        )
        os.close(self._child_in)
        os.close(self._child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self.width, self.height = width, height

    # -- protocol -------------------------------------------------------------------------------------------------
    def _send(self, method: str, params: dict | None = None, session: bool = True) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session_id:
            message["sessionId"] = self.session_id
        os.write(self._write_fd, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _read_message(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._read_fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._read_fd, 1 << 20)
            if not chunk:
                raise CDPError(f"Chromium closed the DevTools pipe: {self._stderr_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, timeout: float = 60, session: bool = True) -> dict:
        """Send a command and return its result; events read meanwhile are kept in ``self.events``."""
        message_id = self._send(method, params, session=session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise CDPError(f"{method}: no answer within {timeout} s")
            if message.get("id") == message_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Read events for a while (network responses, console messages)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            message = self._read_message(remaining)
            if message is None:
                return
            if "method" in message:
                self.events.append(message)

    def _stderr_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    # -- page -----------------------------------------------------------------------------------------------------
    def open_page(self) -> None:
        # Drive the browser's own first tab (a second, created tab is a background tab that may never paint).
        deadline = time.monotonic() + 30
        pages: list[dict] = []
        while not pages and time.monotonic() < deadline:
            pages = [t for t in self.call("Target.getTargets", session=False)["targetInfos"] if t["type"] == "page"]
            if not pages:
                self.pump(0.2)
        target_id = (
            pages[0]["targetId"]
            if pages
            else self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        )
        attached = self.call("Target.attachToTarget", {"targetId": target_id, "flatten": True}, session=False)
        self.session_id = attached["sessionId"]
        self.call("Page.enable")
        self.call("Page.bringToFront")
        self.call("Network.enable")
        self.call("Runtime.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )

    def set_cookie(self, name: str, value: str, url: str) -> None:
        self.call("Network.setCookie", {"name": name, "value": value, "url": url, "httpOnly": True})

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigating to {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:80]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, poll: float = 1.0) -> Any:
        """Evaluate ``expression`` until it is truthy; return its last value either way."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            self.pump(poll)
        return value

    def screenshot(self, path: Path, settle: float = 4.0, scale: float = 1.0) -> Path:
        """A PNG of the whole page. The viewport is first grown to the page's height and the page given time to
        lay itself out again: ``captureBeyondViewport`` resizes the page while capturing, and a page that redraws
        on resize (as Superset's charts do) is then captured half-drawn."""
        height = int(self.evaluate("document.documentElement.scrollHeight") or self.height)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": max(height, self.height), "deviceScaleFactor": 1, "mobile": False},
        )
        self.pump(settle)
        page = {"x": 0, "y": 0, "width": self.width, "height": max(height, self.height), "scale": scale}
        data = self.call("Page.captureScreenshot", {"format": "png", "clip": page})["data"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                with contextlib.suppress(CDPError, OSError):
                    self.call("Browser.close", session=False, timeout=5)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            self._log.close()
            for fd in (self._write_fd, self._read_fd):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
