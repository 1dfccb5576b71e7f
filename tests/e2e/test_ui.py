"""The web UI in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) through selenium, against `palisade serve --config` (SQLite, the
embedded time-series store), one walk through the day-to-day pages:

sign in (password, TOTP enrolment, then password + TOTP code) → add a device with SNMP
credentials (masked afterwards) → push samples through `POST /rest/v2/metric/ingest`
(LMv1) so its graph fills and a threshold opens an alert → acknowledge it with a comment →
create an API-only user and its token (the secret shown once, and it works) → filter the
audit log and export it as CSV and as a printable report → edit a setting (a refused
value first).

A second walk (`test_collector_migration_and_compliance`, screenshots `uic-NN-*.png`)
covers the rest of the scenario with real processes: sign in with TOTP → a collector
(`palisade collector add`, then `palisade-collector register` and `run` as `nobody`) →
a device with SNMP v2c credentials pointing at a private Debian `snmpd` on 127.0.0.1,
monitored by that collector with a copy of `SNMP_System` collecting every 10 s → its
graph fills → an administrator's imported LMv1 token is used for a few API calls, then
migrated in the UI (proposal → confirm → new secret once → old token disabled) → the
compliance page shows the token mandate clear. It fails (never skips) when `snmpd` or the
collector binary is missing.

Every page visited is saved as a PNG in `tests/e2e/screenshots/` (`ui-NN-*.png`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from palisade_harness import (
    FIRST_ADMIN_RE,
    STRONG_PASSWORD,
    Server,
    Store,
    Token,
    child_env,
    new_store,
    palisade_bin,
    unique,
)
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
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            els = driver.find_elements("css selector", selector)
            if els and text in els[0].text:
                return els[0]
        except StaleElementReferenceException:
            # The page was replaced between finding the element and reading it (a form
            # submission still landing): look again.
            pass
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
        # The unfiltered page may list token.create too: wait for the filtered one.
        deadline = time.monotonic() + 15
        while "action=token.create" not in driver.current_url and time.monotonic() < deadline:
            time.sleep(0.1)
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


# --------------------------------------------------------------------------- real collector

SNMPD = "/usr/sbin/snmpd"
NOBODY = 65534
SETPRIV = ["/usr/bin/setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture()
def snmpd(request: pytest.FixtureRequest) -> int:
    """A private snmpd on 127.0.0.1 (community `public`); its UDP port."""
    if not os.access(SNMPD, os.X_OK):
        pytest.fail(f"{SNMPD} not found: this test needs Debian's snmpd (apt-get install -y snmpd)", pytrace=False)
    work = Path(tempfile.mkdtemp(prefix="palisade-e2e-snmpd-"))
    (work / "persist").mkdir()
    conf = work / "snmpd.conf"
    conf.write_text("rocommunity public 127.0.0.1\n")
    port = free_udp_port()
    log = (work / "snmpd.log").open("w")
    env = dict(os.environ, SNMP_PERSISTENT_DIR=str(work / "persist"), SNMPCONFPATH=str(work))
    proc = subprocess.Popen(
        [SNMPD, "-f", "-Lo", "-C", "-m", "", "-I", "-smux", "-c", str(conf), f"udp:127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
    )

    def finish() -> None:
        stop(proc)
        log.close()
        shutil.rmtree(work, ignore_errors=True)

    request.addfinalizer(finish)
    time.sleep(0.5)
    assert proc.poll() is None, f"snmpd exited: {(work / 'snmpd.log').read_text()}"
    return port


@pytest.fixture()
def collector(portal: UiPortal, request: pytest.FixtureRequest) -> int:
    """A collector created with the CLI, registered and running as `nobody`; its id."""
    binary = Path(palisade_bin()).with_name("palisade-collector")
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} not found: run `cargo build --workspace --bins`", pytrace=False)
    created = portal.store.cli_json("collector", "add", "--description", unique("e2e-ui-collector-"))
    # Not under pytest's tmp_path: nobody cannot enter /tmp/pytest-of-root.
    state = Path(tempfile.mkdtemp(prefix="palisade-e2e-collector-"))
    secret_file = state.parent / (state.name + ".secret")
    secret_file.write_text(created["registrationSecret"])
    os.chown(state, NOBODY, NOBODY)
    os.chown(secret_file, NOBODY, NOBODY)
    log_path = state.parent / (state.name + ".log")
    log = log_path.open("w")
    procs: list[subprocess.Popen] = []

    def finish() -> None:
        for proc in procs:
            stop(proc)
        log.close()
        shutil.rmtree(state, ignore_errors=True)
        secret_file.unlink(missing_ok=True)
        log_path.unlink(missing_ok=True)

    request.addfinalizer(finish)
    portal_url = f"http://127.0.0.1:{portal.server.port}"
    reg = subprocess.run(
        [*SETPRIV, str(binary), "register", "--portal", portal_url, "--secret-file", str(secret_file),
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, env=child_env(), check=False,
    )
    assert reg.returncode == 0, f"register failed: {reg.stdout}\n{reg.stderr}"
    procs.append(subprocess.Popen(
        [*SETPRIV, str(binary), "run", "--state-dir", str(state)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
    ))
    time.sleep(1)
    assert procs[0].poll() is None, f"the collector exited: {log_path.read_text()}"
    return int(created["id"])


def import_fast_snmp_system(store: Store, tmp: Path) -> None:
    """A copy of the built-in SNMP_System collecting every 10 s, applying to devices with
    `snmp.port` (appliesTo never sees credential properties)."""
    res = store.cli("datasource", "export", "SNMP_System")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    doc["collectInterval"] = 10
    doc["appliesTo"] = f"{doc['appliesTo']} || snmp.port"
    path = tmp / "SNMP_System.json"
    path.write_text(json.dumps(doc))
    imported = store.cli_json("datasource", "import", str(path))
    assert imported["name"] == "SNMP_System", imported


def enrol_and_sign_in(driver: Any, p: UiPortal, shot: Shots, admin: str) -> None:
    sign_in(driver, p, shot, admin, lands_on="/enrol")
    css(driver, "#enrol-totp").click()
    device = TotpDevice(wait_for(driver, "#totp-secret").text.strip().replace(" ", ""))
    shot("totp-setup")
    fill(driver, "#confirm-code", device.code())
    css(driver, "#confirm").click()
    wait_for(driver, "#recovery-codes")
    css(driver, "#continue").click()
    wait_for(driver, "#welcome")
    css(driver, "#sign-out").click()
    wait_path(driver, "/login")
    sign_in(driver, p, shot, admin, lands_on="/login/factor")
    fill(driver, "#totp-code", device.code())
    shot("factor")
    css(driver, "#verify-totp").click()
    wait_for(driver, "#welcome")
    wait_path(driver, "/ui")
    shot("overview")


def test_collector_migration_and_compliance(portal: UiPortal, snmpd: int, collector: int, tmp_path: Path) -> None:
    p = portal
    # The first walk ends by setting a grace period: enrol at the first sign-in again.
    p.store.cli_json("settings", "set", "mfa.grace_hours", "0")
    admin = unique("uimig")
    create_local_user(p.store, admin, STRONG_PASSWORD, role="administrator")
    import_fast_snmp_system(p.store, tmp_path)
    with browser(tmp_path, forwarded_for=client_ip()) as driver:
        shot = Shots(driver, "uic")
        enrol_and_sign_in(driver, p, shot, admin)

        # ---- the collector shows up
        go(driver, p, f"/ui/collectors/{collector}", "main h1")
        shot("collector")

        # ---- a device on the private snmpd, monitored by that collector
        go(driver, p, "/ui/devices/new", "#device-form")
        name = unique("e2e-snmpd-")
        fill(driver, "#name", "127.0.0.1")
        fill(driver, "#displayName", name)
        choose(driver, "#collector", str(collector))
        choose(driver, "#snmp-version", "v2c")
        fill(driver, "#snmp-community", "public")
        fill(driver, "#snmp-port", str(snmpd))
        shot("device-form")
        css(driver, "#create-device").click()
        wait_text(driver, "#notice", "Device added")
        m = re.search(r"/ui/devices/(\d+)", driver.current_url)
        assert m, driver.current_url
        device_id = int(m.group(1))
        assert "public" not in css(driver, "#properties").text.split(), "a credential was rendered"
        shot("device-added")

        # ---- its graph fills from the collector's polls
        go(driver, p, f"/ui/devices/{device_id}?range=1h", "#graph-area")
        deadline = time.monotonic() + 100
        while True:
            tabs = driver.find_elements("link text", "SNMP_System")
            if tabs and tabs[0].get_attribute("aria-current") != "true":
                tabs[0].click()
                wait_for(driver, "#graph-area")
            if "SNMP_System" in css(driver, "#graph-area").text and \
                    driver.find_elements("css selector", "#graph-area table.legend"):
                break
            assert time.monotonic() < deadline, f"no SNMP_System data: {css(driver, 'main').text[:2000]}"
            time.sleep(3)
            driver.refresh()
            wait_for(driver, "#graph-area")
        shot("device-graph-from-collector")

        # ---- an administrator's token imported from the old system, used for a few calls
        access_id = "lm" + unique("Ab").replace("-", "")[:18]
        access_key = "Kx9=[old]" + unique("key").replace("-", "") + "+/Zq"
        res = p.store.cli("token", "import", admin, "--access-id", access_id, "--note", "from the old portal",
                          input=access_key + "\n")
        assert res.returncode == 0, f"token import failed: {res.stdout}\n{res.stderr}"
        old = Token("lmv1", None, access_key, access_id)
        for path in ("/device/devices", "/alert/alerts", "/device/devices"):
            r = requests.get(p.url("/santaba/rest" + path), timeout=30,
                             headers={"Authorization": old.authorization("GET", "", path)})
            assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        go(driver, p, "/ui/compliance", "#section-api-tokens")
        assert access_id in css(driver, "#section-api-tokens").text, "the admin token is a finding"
        shot("compliance-before")

        # ---- migrate it in the UI
        go(driver, p, "/ui/tokens", "#tokens")
        migrate = wait_for(driver, f'a[aria-label="Migrate token {access_id}"]')
        shot("tokens-with-migrate")
        migrate.click()
        wait_for(driver, "#migration-form")
        covers = css(driver, "#proposed-privileges").text
        assert "/santaba/rest/device/devices" in covers and "/santaba/rest/alert/alerts" in covers, covers
        shot("migration-proposal")
        bot = unique("migrated-")
        fill(driver, "#m-user", bot)
        fill(driver, "#m-role", bot + "-role")
        css(driver, "#migration-confirm").click()
        new_key = wait_for(driver, "#token-secret").text.strip()
        new_id = css(driver, "#token-access-id").text.strip()
        assert new_key and new_id != access_id
        shot("migration-new-secret")
        new = Token("lmv1", None, new_key, new_id)
        r = requests.get(p.url("/santaba/rest/device/devices"), timeout=30,
                         headers={"Authorization": new.authorization("GET", "", "/device/devices")})
        assert r.status_code == 200, r.text[:300]
        css(driver, "#migration-disable").click()
        wait_text(driver, "#migration-state", "disabled")
        assert new_key not in driver.page_source, "the new secret is shown once"
        shot("migration-disabled")
        r = requests.get(p.url("/santaba/rest/device/devices"), timeout=30,
                         headers={"Authorization": old.authorization("GET", "", "/device/devices")})
        assert r.status_code in (401, 403), f"the old token still works: {r.status_code}"

        # ---- the token mandate is clear: the disabled token is out of scope
        go(driver, p, "/ui/compliance", "#section-api-tokens")
        section = css(driver, "#section-api-tokens")
        assert access_id not in section.text, section.text
        # No token with administrator or support power is left (other tokens may still
        # carry hygiene findings such as a missing expiry).
        for rule in ("token.administrator-owner", "token.support-owner", "token.administrator-equivalent-role"):
            assert rule not in section.text, section.text
        assert driver.find_elements("css selector", "#score-history")
        shot("compliance-after")
