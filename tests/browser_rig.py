"""Headless Debian Chromium driven by Selenium, with a fake two-channel microphone fed from a WAV file.

Used by ``tests/test_browser.py``; every helper states why it cannot run
instead of failing (no Chromium, no driver, no Selenium).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def missing() -> str | None:
    """Why a browser test cannot run here, or None when it can."""
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.path.exists(path):
            return f"{path} is missing: install Debian's {pkg} (bash tools/dev.sh setup as root does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the Python package selenium is missing (pip install -e '.[test]')"
    return None


def chromium(wav: Path, downloads: Path) -> Any:
    """A headless Chromium whose microphone plays ``wav`` (looped) and whose downloads land in ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a browser online
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tempfile.mkdtemp(prefix='rtsep-chromium-')}", "--window-size=1000,1100",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False,
                                           "profile.default_content_setting_values.automatic_downloads": 1})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


class Served:
    """``rtsep serve`` in a child process on a free loopback port (``python -m rtsep serve --port 0``)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "rtsep", "serve", "--port", "0", *args],
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            m = re.search(r"ws://([\d.]+):(\d+)", line)
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                self._start_draining()
                return
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"rtsep serve did not start: {line!r}")

    def _start_draining(self) -> None:
        # nobody else reads the server's stderr once it listens: a full pipe would block
        # it mid-session (a stream that never gets "ready"); the tail is kept for failures
        self.tail: deque[str] = deque(maxlen=40)

        def drain() -> None:
            for text in self.proc.stderr:
                self.tail.append(text.rstrip())

        threading.Thread(target=drain, daemon=True).start()

    def log(self) -> str:
        """The server's last stderr lines (for a failing test's message)."""
        return "\n".join(self.tail)

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """Poll ``cond`` until it returns something true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(d.name), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [root_pid]
    while todo:
        p = todo.pop()
        total += times.get(p, 0.0)
        todo += children.get(p, [])
    return total


def have_downloads(folder: Path, names: tuple[str, ...]) -> bool:
    """All named files are complete in ``folder`` (no .crdownload left)."""
    return all((folder / n).exists() for n in names) and not list(folder.glob("*.crdownload"))


def cleanup(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
