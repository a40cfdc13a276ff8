"""The dashboard in a real browser: headless Chromium from Debian's `chromium` package, driven by
Selenium through Debian's `/usr/bin/chromedriver` (never a downloaded driver). One browser session:
log in, watch a pysher client connect and subscribe, see an SDK event in the debug console, send a
test event from the form to that client, no console errors, a screenshot (`make dashboard-screenshot`
copies it into docs).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import signed_http, unique
from test_pysher import PysherClient

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOT_ENV = "REVERB_DASHBOARD_SCREENSHOT"


@pytest.fixture
def browser():
    # Installed by scripts/install-deps.sh: missing means the set-up is broken, not a skip.
    assert Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists(), "chromium / chromium-driver not installed"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to fetch a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1440,1150", "--no-first-run", "--disable-extensions",
                     "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(15)
    yield driver
    driver.quit()


def connections(server) -> bytes:
    return signed_http(server, "GET", f"/apps/{server.app_id}/connections")[2]


def test_dashboard_in_a_browser(reverb_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = reverb_server(env={"REVERB_DASHBOARD_ENABLED": "true"})
    wait = WebDriverWait(browser, 10, poll_frequency=0.1)
    text = lambda element_id: browser.find_element(By.ID, element_id).text  # noqa: E731

    def debug_row(kind: str, needle: str):
        def find(_):
            for row in browser.find_elements(By.CSS_SELECTOR, f"#debug-log tbody tr[data-kind='{kind}']"):
                if needle in row.text:
                    return row
            return False
        return wait.until(find, f"a {kind} row with {needle!r} in the debug console")

    # Not logged in: the page sends the browser to the login form.
    browser.get(f"http://{server.host}:{server.port}/dashboard")
    assert browser.current_url.endswith("/dashboard/login")
    browser.find_element(By.ID, "app_id").send_keys(server.app_id)
    browser.find_element(By.ID, "secret").send_keys(server.secret)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda _: text("stream-state") == "live", "the live stream")
    wait.until(lambda _: text("stat-connections") == "0", "the first overview")

    # The page's own stream is no Pusher connection.
    assert connections(server) == b'{"connections":0}'

    channel = unique("browser-")
    client = PysherClient(server).connect()
    try:
        client.subscribe(channel)
        wait.until(lambda _: text("stat-connections") == "1", "the connection count to rise")
        row = debug_row("subscribed", channel)
        assert client.socket_id in row.text
        debug_row("connection_opened", client.socket_id)

        server.pusher().trigger(channel, "sdk-event", {"from": "sdk"})
        debug_row("api_event", "sdk-event")

        # Bad JSON never leaves the page.
        send_channel = browser.find_element(By.ID, "send-channel")
        send_channel.send_keys(channel)
        browser.find_element(By.ID, "send-event").send_keys("form-event")
        data = browser.find_element(By.ID, "send-data")
        data.clear()
        data.send_keys("{not json")
        browser.find_element(By.ID, "send-submit").click()
        wait.until(lambda _: text("send-result").startswith("Data is not valid JSON"), "the JSON error")
        # Without a channel, the server's validation error is shown (the form's `required` is
        # taken off so that the request is sent).
        browser.execute_script("document.getElementById('send-channel').removeAttribute('required')")
        send_channel.clear()
        data.clear()
        data.send_keys('{"from": "the form"}')
        browser.find_element(By.ID, "send-submit").click()
        wait.until(lambda _: "The channels field is required" in text("send-result"), "the validation error")

        send_channel.send_keys(channel)
        browser.find_element(By.ID, "send-submit").click()
        _, payload, _ = client.wait_event("form-event", channel)
        assert payload == '{"from": "the form"}'
        wait.until(lambda _: text("send-result").startswith("Sent: 200"), "the send result")
        debug_row("api_event", "form-event")

        # The channels view lists the subscribed channel and opens it.
        browser.find_element(By.CSS_SELECTOR, "#channels-form button[type=submit]").click()
        wait.until(lambda _: channel in text("channels-list"), "the channel in the channels view")
        browser.find_element(By.CSS_SELECTOR, "#channels-list button").click()
        wait.until(lambda _: '"subscribers": 1' in text("channel-detail"), "the channel's details")

        assert connections(server) == b'{"connections":1}'
        # Chromium logs every 4xx answer as an error: the one 422 asked for above is expected.
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
                  and not (entry["source"] == "network" and "/events - " in entry["message"] and "422" in entry["message"])]
        assert errors == [], errors

        wait.until(lambda _: text("stat-in") not in ("–", ""), "a rate")
        browser.execute_script("window.scrollTo(0, 0)")
        path = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(path))
        assert path.stat().st_size > 10_000
        if os.environ.get(SCREENSHOT_ENV):
            shutil.copyfile(path, os.environ[SCREENSHOT_ENV])
    finally:
        client.disconnect()
