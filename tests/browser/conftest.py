"""pytest wiring for the console's browser tests (docs/console.md, docs/testing.md).

One local stack per session, started exactly as the README's main command starts it
(`pixelfront dev --ingest samples`, no admin token given, so it generates one and prints the
console's address with it), on 127.0.0.1 and a free port, stopped by its PID at the end. One
headless Chromium (Debian's `chromium` and `chromedriver`) driven by Selenium, with Selenium
Manager kept offline (`SE_AVOID_STATS`, an explicit driver `Service`).

Screenshots go to `$PIXELFRONT_SCREENSHOTS` (default: `console-screenshots/` under the cargo
target directory); `PIXELFRONT_SCREENSHOTS=docs/images` refreshes the ones the docs show.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("SE_AVOID_STATS", "true")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
CHROMIUM = os.environ.get("PIXELFRONT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PIXELFRONT_CHROMEDRIVER", "/usr/bin/chromedriver")


def _binary() -> Path:
    """The debug `pixelfront` binary, built when absent or older than the sources."""
    subprocess.run(["cargo", "build", "-q", "-p", "pixelfront"], cwd=REPO, check=True)
    return TARGET / "debug" / "pixelfront"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalStack:
    """`pixelfront dev --ingest samples` on 127.0.0.1; `console_url` is the address it printed."""

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="pixelfront-console-"))
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.lines: list[str] = []
        self.console_url = ""
        env = {k: v for k, v in os.environ.items() if k != "PIXELFRONT_ADMIN_TOKEN"}
        self.proc = subprocess.Popen(
            [str(_binary()), "dev", "--addr", f"127.0.0.1:{self.port}", "--data", str(self.data),
             "--ingest", str(REPO / "samples")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip("\n"))
                m = re.search(r"console: (http://\S+)", line)
                if m:
                    self.console_url = m.group(1)
                if "serving; Ctrl-C to stop" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(300) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("pixelfront dev did not start:\n" + "\n".join(self.lines[-30:]))
        self.token = self.console_url.partition("#token=")[2]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="session")
def stack():
    s = LocalStack()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def browser():
    profile = tempfile.mkdtemp(prefix="pixelfront-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                f"--user-data-dir={profile}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def shots() -> Path:
    d = Path(os.environ.get("PIXELFRONT_SCREENSHOTS", TARGET / "console-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def wait_for(what: str, check, timeout: float = 30, every: float = 0.2):
    """Polls `check()` until it returns something truthy; fails naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # a stale element mid-render: try again
            last = e
        time.sleep(every)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
