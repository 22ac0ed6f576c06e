"""A headless Chromium driven by Selenium for the web page's tests.

Debian's `chromium` and `chromium-driver` packages (one source package, so their
versions match) are used through an explicit Service, with SE_OFFLINE so Selenium's
driver manager never goes online. Without them the browser tests skip, naming the
packages, except in CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
INSTALL = "apt-get install -y --no-install-recommends chromium chromium-driver"


def require_browser() -> None:
    """Skip (fail in CI) unless chromium, its driver and selenium are installed."""
    missing = [p for p in (CHROMIUM, DRIVER) if not os.path.exists(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -r requirements-test.txt)")
    if missing:
        message = f"the browser tests need {', '.join(missing)}: {INSTALL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def chromium(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium of the given viewport (set through CDP: new headless mode makes
    the viewport shorter than --window-size)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    set_viewport(driver, width, height)
    return driver


def set_viewport(driver: Any, width: int, height: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
