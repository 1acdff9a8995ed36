"""The portal's web UI in a real browser (headless Debian chromium, driven by
selenium and chromium-driver), against a real portal, a gateway that follows
it and the broker — the path a person takes on a first visit:

log in -> define an API with two endpoints (a wrong key template first: the
server's error shows next to its field) -> mint a token -> open the test
console -> subscribe -> records produced to Kafka from here appear on the
page, newest on top -> publish from the page and see it arrive -> the
snippets carry the token, the gateway URL and the endpoint, and Copy puts
them on the clipboard -> download the AsyncAPI document as JSON and YAML ->
find the token by search and revoke it -> log out -> a viewer sees the same
API with no action that changes anything. No script error or CSP violation
on the way.

The UI is the copy embedded in the binary. Screenshots of every step go to the
test's tmp dir; their paths are printed."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from conftest import free_port
from test_portal import PASSWORD, Portal, follow

API = "live-scores"
SPORT = "tennis"


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not shutil.which("chromedriver") or not shutil.which("chromium"):
        pytest.fail("chromium and chromium-driver are needed (scripts/setup installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # A laptop-sized window: the screenshots show what a person would see.
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1366,900"]:
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    # The Copy buttons write to the clipboard; the test reads it back.
    driver.execute_cdp_cmd("Browser.grantPermissions",
                           {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    driver.downloads = downloads
    yield driver
    driver.quit()


class Page:
    """The browser, with explicit waits that say what they waited for."""

    def __init__(self, driver, shots: Path, print_result):
        self.driver = driver
        self.shots = shots
        self.print_result = print_result
        self.step = 0
        self.console: list[dict] = []

    def css(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait(self, what: str, condition, timeout: float = 15.0):
        """Polls `condition()` (exceptions count as not yet) until it is truthy."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception as error:  # the element is not there yet, or was re-rendered
                last = error
            time.sleep(0.05)
        path = self.screenshot(f"timeout-{what}")
        errors = [e.text for e in self.all(".form-error") if e.is_displayed()]
        raise AssertionError(f"timed out waiting for {what} (last: {last!r}); errors on the page: {errors}; "
                             f"screenshot {path}; browser log: {self.browser_log()}")

    def element(self, selector: str, timeout: float = 15.0):
        return self.wait(selector, lambda: (e := self.css(selector)).is_displayed() and e)

    def fill(self, selector: str, text: str) -> None:
        element = self.element(selector)
        element.clear()
        element.send_keys(text)

    def click(self, selector: str) -> None:
        self.wait(f"{selector} to be clickable", lambda: (e := self.css(selector)).is_enabled() and e).click()

    def screenshot(self, name: str) -> Path:
        self.step += 1
        path = self.shots / f"{self.step:02d}-{''.join(c if c.isalnum() else '-' for c in name)}.png"
        self.driver.save_screenshot(str(path))
        return path

    def shot(self, name: str) -> None:
        self.print_result(f"  screenshot: {self.screenshot(name)}")

    def browser_log(self) -> list[dict]:
        self.console += self.driver.get_log("browser")
        return self.console


def test_a_person_defines_an_api_mints_a_token_and_watches_it_live(broker, create_topic, gateway_factory, producer,
                                                                    browser, tmp_path, print_result):
    started = time.monotonic()
    topic = create_topic()
    gateway_port = free_port()
    ws_url = f"ws://127.0.0.1:{gateway_port}/ws"
    portal_dir = tmp_path / "portal"
    portal_dir.mkdir()
    extra = {"gateway_urls": [ws_url]}
    portal = Portal(portal_dir, broker.bootstrap, extra).start()
    try:
        state_file = tmp_path / "gateway-state.json"
        # The page's origin is the portal's: a gateway that checks origins lets exactly it in.
        gateway_factory([topic], follow(portal, state_file) | {
            "listen": {"host": "127.0.0.1", "port": gateway_port}, "limits": {"allowed_origins": [portal.url]}})
        shots = tmp_path / "screenshots"
        shots.mkdir()
        print_result(f"portal UI in chromium: screenshots under {shots}")
        run_the_first_visit(Page(browser, shots, print_result), portal, topic, producer, state_file, ws_url,
                            browser.downloads)
    finally:
        portal.stop()
    print_result(f"portal UI in chromium: the first visit took {time.monotonic() - started:.1f} s end to end")


def run_the_first_visit(page: Page, portal: Portal, topic: str, producer, state_file: Path, ws_url: str,
                        downloads: Path) -> None:
    log_in(page, portal)
    define_the_api(page, topic)
    token = mint_a_token(page)
    watch_live(page, topic, producer, state_file, ws_url, key_id(token))
    check_the_snippets(page, token, ws_url)
    download_the_asyncapi_document(page, downloads)
    search_and_revoke(page)
    withdraw_the_signing_key(page)
    log_out(page)
    a_viewer_only_looks(page, portal)
    # No script error, no Content-Security-Policy violation and no failed
    # request on the way but the two the test provoked.
    provoked = ["/api/v1/login - Failed to load resource: the server responded with a status of 401",
                "/api/v1/apis - Failed to load resource: the server responded with a status of 400"]
    problems = [e for e in page.browser_log()
                if e["level"] == "SEVERE" and not any(p in e["message"] for p in provoked)]
    assert not problems, problems


def log_in(page: Page, portal: Portal) -> None:
    page.driver.get(portal.url + "/")
    page.fill("[data-field=username]", "admin")
    page.fill("[data-field=password]", "not the password")
    page.click("#login-submit")
    page.wait("the refusal", lambda: "bad_credentials" in page.element(".form-error").text)
    page.fill("[data-field=password]", PASSWORD)
    page.shot("login")
    page.click("#login-submit")
    page.element("#logout")
    assert page.css("#whoami").text == "admin"
    # The session token is in sessionStorage, never in the URL.
    session = json.loads(page.driver.execute_script("return sessionStorage.getItem('streamgate.portal.session')"))
    assert session["role"] == "admin" and session["token"] not in page.driver.current_url
    page.shot("apis-empty")


def define_the_api(page: Page, topic: str) -> None:
    page.click("#new-api")
    page.fill("[data-field=name]", API)
    page.fill("[data-field=description]", "Live and final scores")
    page.fill("[data-field='endpoints[0].path']", "/scores/live/{sport}")
    page.fill("[data-field='endpoints[0].topic']", topic)
    page.fill("[data-field='endpoints[0].key']", "live/{sport}")
    page.click("[data-field='endpoints[0].actions[publish]']")
    page.click("#add-endpoint")
    page.fill("[data-field='endpoints[1].path']", "/scores/final/{sport}")
    page.fill("[data-field='endpoints[1].topic']", topic)
    # A key template with another parameter than the path's: the server's
    # error names the field, and the page shows it next to that field.
    page.fill("[data-field='endpoints[1].key']", "final/{game}")
    page.click("#save-api")
    error = page.wait("the field error", lambda: page.element(".form-error"))
    assert "endpoints[1].key" in error.text and "same parameters" in error.text, error.text
    assert page.css("[data-field='endpoints[1].key']").get_attribute("aria-invalid") == "true"
    page.shot("api-form-field-error")
    page.fill("[data-field='endpoints[1].key']", "final/{sport}")
    page.shot("api-form")
    page.click("#save-api")
    # Created: the page moves on to the API's Tokens tab.
    page.element("#mint-form")
    assert page.css("h1").text.startswith(API)


def mint_a_token(page: Page) -> str:
    page.fill("[data-field=subject]", "alice")
    page.fill("#mint-form [data-field=description]", "browser test")
    page.click("#mint-submit")
    token = page.wait("the minted token", lambda: page.element("#minted-token").get_attribute("value"))
    assert token.count(".") == 2, token  # a JWT
    page.wait("the token in the list", lambda: "alice" in page.css("#api-token-table").text)
    page.shot("token-minted")
    return token


def key_id(token: str) -> str:
    """The `kid` of a JWT's header: the portal's signing key."""
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def watch_live(page: Page, topic: str, producer, state_file: Path, ws_url: str, kid: str) -> None:
    page.click("#open-console")
    page.element("#console-subscribe")
    # The gateway URL comes from the portal (GET /api/v1/config), the token from the mint.
    assert page.css("#gateway-urls").get_attribute("value") == ws_url
    assert page.css("#working-token").get_attribute("value").count(".") == 2
    page.fill("[data-param=sport]", SPORT)
    assert page.css("#console-preview").text == f"/scores/live/{SPORT}"
    # The gateway learns the API, and the signing key made for the first
    # token, at its next poll of the portal (every 0.5 s; it saves each state).
    page.wait("the gateway to know the API and the key",
              lambda: API in (saved := state_file.read_text()) and kid in saved, timeout=10)
    page.click("#console-subscribe")
    page.wait("the subscription", lambda: page.css("#console-state").text == "connected"
              and page.css("#console-subscriptions .chip.live"))
    page.shot("console-subscribed")

    producer.produce_one(topic, f"live/{SPORT}", b"15-0")
    producer.produce_one(topic, f"final/{SPORT}", b"belongs to the other endpoint")
    producer.produce_one(topic, f"live/{SPORT}", b"30-0")
    page.wait("the produced records on the page", lambda: len(page.all("#console-messages tr")) >= 2
              and "30-0" in page.all("#console-messages tr")[0].text)
    rows = [row.text for row in page.all("#console-messages tr")]
    assert len(rows) == 2 and "30-0" in rows[0] and "15-0" in rows[1], rows  # newest on top
    assert f"/scores/live/{SPORT}" in rows[0]

    page.fill("#console-payload", "40-0 from the page")
    page.click("#console-publish")
    page.wait("the publish", lambda: "Published" in page.css("#console-publish-result").text)
    page.wait("the published message", lambda: "40-0 from the page" in page.all("#console-messages tr")[0].text)
    assert page.css("#console-count").text == "3"
    page.shot("console-live")


def check_the_snippets(page: Page, token: str, ws_url: str) -> None:
    page.click("#tab-snippets")
    card = page.element(".snippet-card[data-path='/scores/live/{sport}']")
    for language in ["js", "swift", "python"]:
        card.find_element("css selector", f"button[data-language={language}]").click()
        code = card.find_element("css selector", "pre.snippet").get_attribute("textContent")
        assert token in code and ws_url in code and f"/scores/live/{SPORT}" in code, (language, code)
    assert "from streamgate import Client" in code
    card.find_element("css selector", "button.copy").click()
    copied = page.driver.execute_async_script(
        "const done = arguments[0];"
        "navigator.clipboard.readText().then(done, (error) => done(`no clipboard: ${error}`));")
    assert copied == card.find_element("css selector", "pre.snippet").get_attribute("textContent"), copied
    page.shot("snippets")


def download_the_asyncapi_document(page: Page, downloads: Path) -> None:
    for fmt in ["json", "yaml"]:
        link = page.element(f"#download-asyncapi-{fmt}")
        assert link.get_attribute("download") == f"{API}-asyncapi.{fmt}"
    page.click("#download-asyncapi-json")
    path = downloads / f"{API}-asyncapi.json"
    page.wait("the AsyncAPI download", lambda: path.exists() and json.loads(path.read_text()))
    document = json.loads(path.read_text())
    assert document["asyncapi"].startswith("3.") and document["info"]["title"] == API
    assert len(document["channels"]) == 2
    page.click("#download-asyncapi-yaml")
    yaml_path = downloads / f"{API}-asyncapi.yaml"
    page.wait("the YAML download", lambda: yaml_path.exists())
    assert yaml.safe_load(yaml_path.read_text()) == document  # the same document


def search_and_revoke(page: Page) -> None:
    page.click("a[href='#/tokens']")
    page.fill("#token-search", "nobody-has-this")
    page.wait("no match", lambda: "No token matches" in page.css("#token-table").text)
    page.fill("#token-search", "alic")
    page.wait("the token found", lambda: "alice" in page.css("#token-table").text)
    page.click("#token-table button.danger")
    page.driver.switch_to.alert.accept()
    page.wait("the revocation", lambda: "revoked" in page.css("#token-table .badge.status-revoked").text)
    page.shot("token-revoked")


def withdraw_the_signing_key(page: Page) -> None:
    """A leaked key is withdrawn from the keys page: a new one signs."""
    page.click("a[href='#/keys']")
    page.wait("the signing key", lambda: "signing" in page.element("#key-table").text)
    page.click("#key-table button.danger")
    page.driver.switch_to.alert.accept()
    page.wait("the withdrawal", lambda: "withdrawn" in page.css("#key-table .badge.status-revoked").text
              and "signing" in page.css("#key-table").text)
    assert "Withdrew" in page.css("#toast").get_attribute("textContent")
    page.shot("key-withdrawn")


def log_out(page: Page) -> None:
    page.click("#logout")
    page.element("#login-submit")
    assert page.driver.execute_script("return sessionStorage.length") == 0
    page.shot("logged-out")


def a_viewer_only_looks(page: Page, portal: Portal) -> None:
    """A viewer sees the API and its tokens, and no action that changes them."""
    status, reply, _ = portal.call("POST", "/api/v1/users", {"username": "vera", "password": "a viewer's password",
                                                              "role": "viewer"})
    assert status == 201, reply
    page.fill("[data-field=username]", "vera")
    page.fill("[data-field=password]", "a viewer's password")
    page.click("#login-submit")
    page.wait("the API list", lambda: API in page.element("#api-table").text)
    assert not page.all("#new-api") and "Users" not in page.css(".topbar nav").text
    page.click(f"#api-table a[href='#/apis/{API}']")
    page.element("#endpoint-table")
    assert page.all("#download-asyncapi-json") and not page.all("#edit-api") and not page.all("#delete-api")
    page.click("#tab-tokens")
    page.wait("the token list", lambda: "alice" in page.element("#api-token-table").text)
    assert not page.all("#mint-form") and not page.all("#api-token-table button")
    page.shot("viewer")
    log_out(page)
