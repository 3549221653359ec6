"""The page at `/` in a real browser: Debian's chromium driven by chromedriver through selenium.

The key is given once in a form and kept in the tab's sessionStorage; a search draws the chain
as inline SVG whose nodes name the run, the commit and the workload. The page loads nothing
from anywhere else and breaks none of its own Content-Security-Policy.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.links_fixtures import CONTOSO, Service, links_service  # noqa: F401
from tests.service.test_trace import COMMIT, linked_chain  # noqa: F401 (the `chain` fixture)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT = Path(tempfile.gettempdir()) / "container-mapping-page.png"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1500,1100",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "profile", ignore_errors=True)


def _wait(driver: Any, css: str, timeout: float = 20) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def _search(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = _wait(driver, "#query")
    box.clear()
    box.send_keys(text)
    driver.find_element(By.ID, "search").click()


def _nodes(driver: Any) -> dict[str, list[str]]:
    from selenium.webdriver.common.by import By

    _wait(driver, "svg.chain-picture")
    found: dict[str, list[str]] = {}
    for node in driver.find_elements(By.CSS_SELECTOR, "svg.chain-picture g.node"):
        texts = [t.text for t in node.find_elements(By.TAG_NAME, "text")]
        found.setdefault(node.get_attribute("data-kind"), []).append(" ".join(texts))
    return found


def test_key_once_then_search_a_digest_and_see_the_chain(
    links: Service, chain: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(links.url + "/")
    _wait(browser, "#api-key").send_keys(links.keys[CONTOSO].read)
    browser.find_element(By.ID, "save-key").click()
    _search(browser, chain["amd64"])
    nodes = _nodes(browser)
    assert any("web-app #20261127.1234" in n for n in nodes["run"]), nodes
    assert any(COMMIT[:12] in n for n in nodes["commit"]), nodes
    assert any("Deployment/web" in n and "shop" in n for n in nodes["workload"]), nodes
    assert any(chain["repo"] in n for n in nodes["registry"]), nodes
    assert any(chain["amd64"][:18] in n for n in nodes["image"]), nodes
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chain-picture path.edge")) >= 4
    table = browser.find_element(By.CSS_SELECTOR, "section.image").text
    assert "prod-east" in table and COMMIT in table
    browser.save_screenshot(str(SCREENSHOT))

    assert links.keys[CONTOSO].read not in browser.current_url
    assert "digest=" in browser.current_url
    stored = browser.execute_script("return sessionStorage.getItem('container-mapping.api-key')")
    assert stored == links.keys[CONTOSO].read

    browser.refresh()  # the key is not asked again, and the URL's question runs by itself
    assert any(COMMIT[:12] in n for n in _nodes(browser)["commit"])

    _search(browser, "sha256:" + "5" * 64)
    assert "Nothing is known" in _wait(browser, "#status.error").text
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert [p for p in problems if "404" not in p["message"]] == []  # no CSP or script error


def test_a_refused_key_is_said_and_asked_again(
    links: Service, chain: dict[str, Any], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(links.url + "/")
    _wait(browser, "#api-key").send_keys("not-a-key")
    browser.find_element(By.ID, "save-key").click()
    _search(browser, chain["index"])
    assert "refused this API key" in _wait(browser, "#status.error").text
    assert _wait(browser, "#api-key").is_displayed()


def test_the_page_is_self_contained_and_strict(links: Service) -> None:
    page = httpx.get(links.url + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert " src=" not in page.text and " href=" not in page.text  # nothing loaded from elsewhere
    assert httpx.get(links.url + "/page/trace", params={"digest": "x"}).status_code == 401
