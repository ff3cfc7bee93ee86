"""A real headless Chromium (Debian's ``chromium`` and ``chromium-driver``),
driven by Selenium, for the console's tests and benchmark."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
#: What Chromium needs to run headless as root in a container, with nothing
#: reaching for the network (updates, sync, QUIC probes).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1700",
)


def missing() -> str | None:
    """Why the browser cannot run here, or None."""
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian: apt-get install chromium chromium-driver)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium driver of a fresh headless Chromium, with its own profile;
    quit (and its processes waited for) on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="rigd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()  # Chromium's processes end with its driver's
        if service.process is not None:
            service.process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
