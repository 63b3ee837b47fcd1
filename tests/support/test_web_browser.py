"""The support view in Debian's headless Chromium, driven by Selenium through chromedriver.

The browser logs in through the form, reads the home page, a listing and an
office, switches the language, presses "Försök igen" and sees outcomes arrive
without a reload. On every page axe-core (vendored from npm, ``axe-core``
4.10.3, MPL-2.0, its checksum pinned below) runs inside the page and must
find no serious or critical violation. Screenshots go to
``artifacts/screenshots/`` (kept by CI, ignored by git). Without chromium and
chromedriver the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from availability import unavailable
from sqlalchemy import Engine
from sqlmodel import Session
from web_server import PASSWORD, Served, serve

from syndication.store.repository import record_status

VENDOR = Path(__file__).parent / "vendor"
AXE = VENDOR / "axe.min.js"
AXE_SHA256 = "880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage",
]
RUN_AXE = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(
  r => done(r.violations.map(v => [v.id, v.impact, v.help, v.nodes.length])),
  e => done([['axe-error', 'critical', String(e), 0]]));
"""


def test_the_vendored_axe_core_is_the_pinned_release() -> None:
    assert hashlib.sha256(AXE.read_bytes()).hexdigest() == AXE_SHA256
    assert AXE.read_text()[:20].startswith("/*! axe v4.10.3")
    assert (VENDOR / "axe.LICENSE").read_text().startswith("Mozilla Public License, version 2.0")


def binaries() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver must be installed for CI's browser tests")
        unavailable("chromium or chromedriver missing (apt-get install chromium chromium-driver)")
    return chromium, driver


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_argument("--window-size=1280,900")
    options.add_argument("--lang=sv-SE")
    options.add_experimental_option("prefs", {"intl.accept_languages": "sv-SE,sv,en"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    browser.set_script_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def served(seeded: Engine) -> Iterator[Served]:
    with serve(seeded) as running:
        yield running


def accessible(driver: Any, name: str) -> None:
    """axe-core in the page finds nothing serious or critical; a screenshot is saved."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.execute_script(AXE.read_text())
    violations = driver.execute_async_script(RUN_AXE)
    grave = [v for v in violations if v[1] in ("serious", "critical")]
    assert not grave, f"{name}: {grave}"


def wait_until(driver: Any, script: str, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: d.execute_script(script))


def width_fits(driver: Any, width: int) -> None:
    scroll = driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll} px wide at a {width} px window"


def log_in(driver: Any, served: Served, path: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(served.url(path))
    assert driver.execute_script("return location.pathname") == "/login"
    accessible(driver, "login")
    driver.find_element(By.ID, "username").send_keys("anna")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "submit").click()
    wait_until(driver, f"return location.pathname === {path!r}")


def test_home_office_and_the_language_switch(driver: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    log_in(driver, served, "/")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Vad är fel just nu"
    assert driver.find_element(By.ID, "activity").get_attribute("role") == "img"
    assert driver.get_cookie("session") is None or driver.execute_script(
        "return document.cookie") == "", "the session cookie must be HttpOnly"
    width_fits(driver, 1280)
    accessible(driver, "home-sv")
    driver.find_element(By.ID, "lang-en").click()
    wait_until(driver, "return document.documentElement.lang === 'en'")
    assert driver.find_element(By.TAG_NAME, "h1").text == "What is wrong right now"
    accessible(driver, "home-en")
    driver.get(served.url("/offices/OFF1"))
    assert "Transfer all failed" in driver.page_source, "the switch is remembered"
    driver.find_element(By.ID, "lang-sv").click()
    wait_until(driver, "return document.documentElement.lang === 'sv'")
    assert driver.find_element(By.ID, "retry-all").text.startswith("Överför alla misslyckade")
    width_fits(driver, 1280)
    accessible(driver, "office")


def test_a_listing_try_again_and_outcomes_arriving_without_reload(
        driver: Any, served: Served, seeded: Engine) -> None:
    from selenium.webdriver.common.by import By

    log_in(driver, served, "/listings/FAIL")
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.status-row")
    assert [(r.get_attribute("data-marketplace"), r.get_attribute("data-state"))
            for r in rows] == [("hemnet", "failed"), ("hittahem", "queued")]
    assert "422 missing price" in rows[0].text and "Hemnet mäklarsupport" in rows[0].text
    assert served.password_hash not in driver.page_source
    accessible(driver, "listing")
    driver.execute_script("window.notReloaded = true")
    with Session(seeded) as session:
        record_status(session, "FAIL", "hittahem", "published", action="create",
                      at=served.clock())
        session.commit()
    wait_until(driver, "return document.querySelector("
                       "'tr[data-marketplace=\"hittahem\"] .state-label')"
                       ".textContent === 'Publicerad'")
    assert driver.execute_script("return window.notReloaded === true"), "no reload"

    driver.find_element(By.CSS_SELECTOR, "tr[data-marketplace='hemnet'] form.retry button").click()
    wait_until(driver, "return location.search === '?done=queued'")
    assert "Köad igen" in driver.find_element(By.ID, "notice").text
    driver.execute_script("window.notReloaded = true")
    wait_until(driver, "return !document.querySelector('#pairs tr[data-state=\"queued\"]')")
    assert driver.execute_script("return window.notReloaded === true")
    accessible(driver, "listing-after-retry")

    driver.set_window_size(375, 800)
    driver.get(served.url("/listings/FAIL"))
    width_fits(driver, 375)
    accessible(driver, "listing-phone")
