"""The web UI in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) through selenium, against `palisade serve --config` (SQLite, the
embedded time-series store), one walk through the day-to-day pages:

sign in (password, TOTP enrolment, then password + TOTP code) → add a device with SNMP
credentials (masked afterwards) → push samples through `POST /rest/v2/metric/ingest`
(LMv1) so its graph fills and a threshold opens an alert → acknowledge it with a comment →
create an API-only user and its token (the secret shown once, and it works) → filter the
audit log and export it as CSV and as a printable report → edit a setting (a refused
value first).

Every page visited is saved as a PNG in `tests/e2e/screenshots/` (`ui-NN-*.png`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from palisade_harness import FIRST_ADMIN_RE, STRONG_PASSWORD, Server, Store, Token, new_store, unique
from signin_harness import TotpDevice
from web_harness import (
    SESSION_COOKIE,
    Shots,
    browser,
    client_ip,
    create_local_user,
    planned_server,
    wait_for,
    wait_path,
    write_portal_config,
)

DATASOURCE = "E2EUiLoad"
DATAPOINT = "load"
INSTANCE = "core0"
COMMUNITY = "e2e-community-Xk29"


@dataclasses.dataclass
class UiPortal:
    store: Store
    server: Server
    public_url: str
    ingest: Token

    def url(self, path: str) -> str:
        return self.public_url + path


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiPortal]:
    with new_store("sqlite", tmp_path_factory) as store:
        srv = planned_server(store)
        public = f"http://localhost:{srv.port}"
        cfg = write_portal_config(store.data_dir.parent / "portal.toml", public_url=public)
        srv.args = ["--config", str(cfg), "--trusted-proxy", "127.0.0.1/32"]
        srv.start()
        assert srv.wait_stdout(FIRST_ADMIN_RE, timeout=10), srv.stdout()
        # Local users enrol a second factor at their first sign-in.
        store.cli_json("settings", "set", "mfa.grace_hours", "0")
        # The integration that pushes samples: an API-only user with a custom role.
        store.cli_json("role", "add", "ui-ingest", "--privilege", "host_group:*:manage")
        store.cli_json("user", "add", "ui-ingest", "--email", "ingest@example.com", "--role", "ui-ingest", "--api-only")
        token = Token.from_cli(store.cli_json("token", "create", "ui-ingest", "--note", "e2e ingest"))
        yield UiPortal(store, srv, public, token)


# --------------------------------------------------------------------------- helpers


def css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def fill(driver: Any, selector: str, text: str) -> None:
    el = wait_for(driver, selector)
    el.clear()
    el.send_keys(text)


def choose(driver: Any, selector: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(wait_for(driver, selector)).select_by_value(value)


def go(driver: Any, p: UiPortal, path: str, ready: str) -> None:
    driver.get(p.url(path))
    wait_for(driver, ready)


def wait_text(driver: Any, selector: str, text: str, timeout: float = 15, reload: bool = False) -> Any:
    """The element once its text contains `text` (reloading the page between tries if asked)."""
    deadline = time.monotonic() + timeout
    while True:
        els = driver.find_elements("css selector", selector)
        if els and text in els[0].text:
            return els[0]
        if time.monotonic() > deadline:
            body = driver.find_element("tag name", "body").text
            raise AssertionError(f"{text!r} not in {selector!r} within {timeout}s at {driver.current_url}: {body[:1500]!r}")
        if reload:
            driver.refresh()
        time.sleep(0.3)


def rest(p: UiPortal, method: str, path: str, body: Any) -> requests.Response:
    text = json.dumps(body)
    return requests.request(
        method, p.url("/santaba/rest" + path), data=text, timeout=30,
        headers={"Content-Type": "application/json", "Authorization": p.ingest.authorization(method, text, path)},
    )


def push(p: UiPortal, device: str, values: list[float]) -> None:
    """One sample a minute, the last one now, through the LogicMonitor push API."""
    now = int(time.time())
    series = {str(now - 60 * (len(values) - 1 - i)): str(v) for i, v in enumerate(values)}
    body = [{
        "resourceIds": {"system.displayname": device}, "dataSource": DATASOURCE,
        "instances": [{"instanceName": INSTANCE, "dataPoints": [{"dataPointName": DATAPOINT, "values": series}]}],
    }]
    text = json.dumps(body)
    resp = requests.post(
        p.url("/rest/v2/metric/ingest"), data=text, timeout=30,
        headers={"Content-Type": "application/json", "Authorization": p.ingest.authorization("POST", text, "/v2/metric/ingest")},
    )
    assert resp.status_code == 202, f"ingest -> {resp.status_code}: {resp.text[:500]}"


def sign_in(driver: Any, p: UiPortal, shot: Shots, username: str, lands_on: str) -> None:
    driver.get(p.url("/login"))
    fill(driver, "#username", username)
    fill(driver, "#password", STRONG_PASSWORD)
    shot("login")
    css(driver, "#sign-in").click()
    wait_path(driver, lands_on)


# --------------------------------------------------------------------------- the walk


def test_day_to_day_pages(portal: UiPortal, tmp_path: Path) -> None:
    p = portal
    admin = unique("uiadmin")
    create_local_user(p.store, admin, STRONG_PASSWORD, role="administrator")
    ip = client_ip()
    with browser(tmp_path, forwarded_for=ip) as driver:
        shot = Shots(driver, "ui")

        # ---- sign in: password, TOTP enrolment, then password + TOTP code
        sign_in(driver, p, shot, admin, lands_on="/enrol")
        css(driver, "#enrol-totp").click()
        secret = wait_for(driver, "#totp-secret").text.strip().replace(" ", "")
        device = TotpDevice(secret)
        shot("totp-setup")
        fill(driver, "#confirm-code", device.code())
        css(driver, "#confirm").click()
        wait_for(driver, "#recovery-codes")
        css(driver, "#continue").click()
        wait_for(driver, "#welcome")
        wait_path(driver, "/ui")
        css(driver, "#sign-out").click()
        wait_path(driver, "/login")
        sign_in(driver, p, shot, admin, lands_on="/login/factor")
        fill(driver, "#totp-code", device.code())
        shot("factor")
        css(driver, "#verify-totp").click()
        welcome = wait_for(driver, "#welcome")
        wait_path(driver, "/ui")
        assert admin in welcome.text and "password" in welcome.text, welcome.text
        for link in ("/ui/compliance", "/ui/dashboards", "/ui/devices", "/ui/audit"):
            assert driver.find_elements("css selector", f'nav.main a[href="{link}"]'), f"nav lacks {link}"
        shot("overview")

        # ---- add a device with SNMP v2c credentials
        go(driver, p, "/ui/devices", "#add-device")
        shot("devices")
        css(driver, "#add-device").click()
        wait_for(driver, "#device-form")
        name = unique("e2e-switch-")
        fill(driver, "#name", "192.0.2.10")
        fill(driver, "#displayName", name)
        choose(driver, "#snmp-version", "v2c")
        fill(driver, "#snmp-community", COMMUNITY)
        fill(driver, "#prop-name-0", "location")
        fill(driver, "#prop-value-0", "rack 12")
        shot("device-form")
        css(driver, "#create-device").click()
        wait_text(driver, "#notice", "Device added")
        m = re.search(r"/ui/devices/(\d+)", driver.current_url)
        assert m, driver.current_url
        device_id = int(m.group(1))
        props = css(driver, "#properties").text
        assert "snmp.community" in props and "********" in props, props
        assert COMMUNITY not in driver.page_source, "a credential was rendered"
        shot("device-added")

        # ---- samples pushed through the ingest API: the graph fills, a threshold alerts
        resp = rest(p, "PUT", f"/device/devices/{device_id}/alertsettings",
                    {"thresholds": [{"datasource": DATASOURCE, "datapoint": DATAPOINT, "alertExpr": "> 90"}]})
        assert resp.status_code == 200, resp.text
        push(p, name, [20, 35, 50, 42, 60, 71, 65, 80, 88, 96])
        go(driver, p, f"/ui/devices/{device_id}?range=1h", "#graph-area")
        wait_text(driver, "#graph-area", DATASOURCE, reload=True)
        lines = driver.find_elements("css selector", "#graph-area svg path.line")
        assert lines and lines[0].get_attribute("d").count("L") >= 5, "the graph has no line"
        assert "96" in css(driver, "#graph-area table.legend").text
        shot("device-graph")
        driver.find_element("link text", "24 hours").click()
        wait_text(driver, "#graph-area", "24 hours")
        shot("device-graph-24h")

        # ---- the alert opens; acknowledge it with a comment
        go(driver, p, f"/ui/alerts?q={name}", "#alerts")
        row = wait_text(driver, "#alerts tbody", name, reload=True)
        assert "Critical" in row.text or "Warning" in row.text or "Error" in row.text, row.text
        shot("alerts")
        css(driver, "#alerts tbody th a").click()
        wait_for(driver, "#ack-form")
        shot("alert")
        fill(driver, "#ack-comment", "e2e: looking into it")
        css(driver, "#ack").click()
        wait_text(driver, "#notice", "acknowledged")
        assert "e2e: looking into it" in css(driver, "#ack-info").text
        shot("alert-acked")
        go(driver, p, "/ui", "#alert-summary")
        shot("overview-with-alert")
        # The wall-screen layout: large text, high contrast, remembered until ?wall=0.
        go(driver, p, "/ui?wall=1", "html.wall #alert-summary")
        go(driver, p, "/ui/alerts", "html.wall #alerts")
        shot("wall-alerts")
        go(driver, p, "/ui?wall=0", "#alert-summary")
        assert not driver.find_elements("css selector", "html.wall")

        # ---- an API-only user and its token (the secret once)
        go(driver, p, "/ui/users/new", "#user-form")
        bot = unique("ui-bot-")
        fill(driver, "#u-username", bot)
        fill(driver, "#u-email", f"{bot}@example.com")
        driver.find_element("xpath", "//label[normalize-space()='readonly']/input").click()
        assert css(driver, "#u-apionly").is_selected(), "API-only is the default"
        shot("user-form")
        css(driver, "#create-user").click()
        wait_for(driver, "#add-token")
        assert "API-only" in css(driver, "main").text
        shot("user")
        css(driver, "#add-token").click()
        wait_for(driver, "#token-form")
        fill(driver, "#t-note", "e2e integration")
        shot("token-form")
        css(driver, "#create-token").click()
        secret_el = wait_for(driver, "#token-secret")
        access_key = secret_el.text.strip()
        access_id = css(driver, "#token-access-id").text.strip()
        assert access_key.startswith("palk_"), access_key
        shot("token-created")
        # The secret works, with the owner's privileges.
        tok = Token("lmv1", None, access_key, access_id)
        r = requests.get(p.url("/santaba/rest/device/devices"), timeout=30,
                         headers={"Authorization": tok.authorization("GET", "", "/device/devices")})
        assert r.status_code == 200, r.text
        css(driver, "#back-to-tokens").click()
        wait_for(driver, "#tokens")
        assert access_key not in driver.page_source, "the secret is shown once only"
        assert bot in css(driver, "#tokens").text
        shot("tokens")

        # ---- the audit log: filter, CSV export, printable report
        go(driver, p, "/ui/audit", "#audit")
        fill(driver, "#f-action", "token.create")
        fill(driver, "#f-ip", ip)
        css(driver, "#apply-filters").click()
        table = wait_text(driver, "#audit", "token.create")
        assert admin in table.text and ip in table.text, table.text
        shot("audit-filtered")
        csv_url = css(driver, "#export-csv").get_attribute("href")
        cookie = driver.get_cookie(SESSION_COOKIE)["value"]
        r = requests.get(csv_url, cookies={SESSION_COOKIE: cookie}, headers={"X-Forwarded-For": ip}, timeout=30)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), r.text[:300]
        rows = r.text.strip().splitlines()
        assert rows[0].startswith("id,time_utc,username") and len(rows) >= 2, rows[:3]
        assert all('"token.create"' in row for row in rows[1:]), rows[1:4]
        assert access_key not in r.text
        css(driver, "#export-html").click()
        wait_for(driver, "#report-count")
        assert int(css(driver, "#report-count").text) >= 1
        shot("audit-report")

        # ---- settings: a refused value, then a good one
        go(driver, p, "/ui/settings", "#set-mfa-grace_hours")
        fill(driver, "#set-mfa-grace_hours", "999")
        css(driver, "#save-set-mfa-grace_hours").click()
        err = wait_for(driver, "#form-error")
        assert "0 to 720" in err.text, err.text
        shot("settings-refused")
        fill(driver, "#set-mfa-grace_hours", "48")
        css(driver, "#save-set-mfa-grace_hours").click()
        wait_text(driver, "#notice", "mfa.grace_hours")
        shot("settings-saved")
    assert p.store.cli_json("settings", "get", "mfa.grace_hours") in ("48", {"mfa.grace_hours": "48"}, 48)
