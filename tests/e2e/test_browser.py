"""The sign-in pages in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) through selenium, against `palisade serve --config` with
`public_url = "http://localhost:PORT"` (WebAuthn wants a secure context; localhost
is one) on SQLite.

- password → TOTP enrolment (key read from the page, codes from pyotp) →
  recovery codes → sign-out → password + TOTP code → overview; then a recovery code.
- the first administrator: one-time password → enrolment → forced password change.
- passkeys: enrolment and sign-in with Chromium's virtual authenticator (CDP).

Every page visited is saved as a PNG in `tests/e2e/screenshots/`.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from palisade_harness import FIRST_ADMIN_RE, STRONG_PASSWORD, Server, Store, new_store, unique
from signin_harness import TotpDevice
from web_harness import SESSION_COOKIE, Shots, browser, create_local_user, planned_server, wait_for, wait_path, write_portal_config


@dataclasses.dataclass
class WebPortal:
    store: Store
    server: Server
    public_url: str
    admin_password: str

    def url(self, path: str) -> str:
        return self.public_url + path


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebPortal]:
    with new_store("sqlite", tmp_path_factory) as store:
        srv = planned_server(store)
        public = f"http://localhost:{srv.port}"
        cfg = write_portal_config(store.data_dir.parent / "portal.toml", public_url=public)
        # Each browser gets its own X-Forwarded-For (web_harness.browser): its own sign-in throttle.
        srv.args = ["--config", str(cfg), "--trusted-proxy", "127.0.0.1/32"]
        srv.start()
        m = srv.wait_stdout(FIRST_ADMIN_RE, timeout=10)
        assert m, f"no first-administrator line on stdout: {srv.stdout()!r}"
        # Every local user (including the first administrator) must enrol at once.
        store.cli_json("settings", "set", "mfa.grace_hours", "0")
        yield WebPortal(store, srv, public, m.group(2))


# --------------------------------------------------------------------------- page steps


def by_css(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def present(driver: Any, css: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_elements(By.CSS_SELECTOR, css))


def fill(driver: Any, css: str, text: str) -> None:
    el = wait_for(driver, css)
    el.clear()
    el.send_keys(text)


def sign_in_with_password(driver: Any, web: WebPortal, shot: Shots, username: str, password: str, lands_on: str) -> None:
    driver.get(web.url("/login"))
    wait_for(driver, "#username")
    shot("login")
    fill(driver, "#username", username)
    fill(driver, "#password", password)
    by_css(driver, "#sign-in").click()
    wait_path(driver, lands_on)


def sign_out(driver: Any, shot: Shots) -> None:
    by_css(driver, "#sign-out").click()
    wait_for(driver, "#username")
    wait_path(driver, "/login")
    shot("signed-out")
    assert not driver.get_cookie(SESSION_COOKIE), driver.get_cookies()


def enrol_totp(driver: Any, shot: Shots) -> tuple[TotpDevice, list[str]]:
    """From /enrol: set up an authenticator app; returns the device and the recovery codes shown."""
    wait_for(driver, "#enrol-totp")
    shot("enrol")
    by_css(driver, "#enrol-totp").click()
    secret_el = wait_for(driver, "#totp-secret")
    secret = secret_el.text.strip().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), f"not a base32 key: {secret!r}"
    assert present(driver, "main svg"), "no QR code (SVG) on the TOTP page"
    uri = by_css(driver, "#totp-uri").get_attribute("href")
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri, uri
    shot("totp-setup")
    device = TotpDevice(secret)
    fill(driver, "#confirm-code", device.code())
    by_css(driver, "#confirm").click()
    codes = recovery_codes(driver, shot)
    return device, codes


def recovery_codes(driver: Any, shot: Shots) -> list[str]:
    from selenium.webdriver.common.by import By

    wait_for(driver, "#recovery-codes", timeout=10)
    codes = [li.text.strip() for li in driver.find_elements(By.CSS_SELECTOR, "#recovery-codes li")]
    assert len(codes) >= 5 and all(codes) and len(set(codes)) == len(codes), codes
    assert present(driver, "#continue"), "no Continue link on the enrolled page"
    shot("recovery-codes")
    return codes


def overview(driver: Any, shot: Shots, username: str) -> str:
    welcome = wait_for(driver, "#welcome")
    wait_path(driver, "/ui")  # `/` leads a signed-in user to the web UI's overview
    assert username in welcome.text, welcome.text
    assert present(driver, "#sign-out"), "no sign-out button on the overview"
    shot("overview")
    return welcome.text


# --------------------------------------------------------------------------- tests


def test_totp_enrolment_and_sign_in(web: WebPortal, tmp_path: Path) -> None:
    name = unique("tina")
    create_local_user(web.store, name, STRONG_PASSWORD)
    with browser(tmp_path) as driver:
        shot = Shots(driver, "browser-totp")
        sign_in_with_password(driver, web, shot, name, STRONG_PASSWORD, lands_on="/enrol")
        assert present(driver, "#enrol-passkey"), "public_url is set: the passkey option should be offered"
        device, codes = enrol_totp(driver, shot)
        by_css(driver, "#continue").click()
        overview(driver, shot, name)
        sign_out(driver, shot)

        # Password, then the authenticator's code (a later time step than the enrolment's).
        sign_in_with_password(driver, web, shot, name, STRONG_PASSWORD, lands_on="/login/factor")
        wait_for(driver, "#totp-code")
        assert not present(driver, "#passkey"), "no passkey enrolled: no passkey button expected"
        shot("factor")
        fill(driver, "#totp-code", device.wrong_code())
        by_css(driver, "#verify-totp").click()
        err = wait_for(driver, "p.error")
        wait_path(driver, "/login/factor")
        shot("factor-wrong-code")
        assert err.text, "empty error message"
        fill(driver, "#totp-code", device.code())
        by_css(driver, "#verify-totp").click()
        text = overview(driver, shot, name)
        assert "password" in text, text  # the session's auth method
        sign_out(driver, shot)

        # A recovery code instead of the app.
        sign_in_with_password(driver, web, shot, name, STRONG_PASSWORD, lands_on="/login/factor")
        by_css(driver, "details summary").click()
        fill(driver, "#recovery-code", codes[0])
        shot("factor-recovery")
        by_css(driver, "details form button[type=submit]").click()
        overview(driver, shot, name)
        driver.get(web.url("/account"))
        wait_for(driver, "#factors")
        shot("account")
        body = by_css(driver, "main").text
        assert f"Recovery codes left: {len(codes) - 1}" in body, body


def test_first_admin_one_time_password(web: WebPortal, tmp_path: Path) -> None:
    """admin: one-time password → enrolment (grace 0) → forced password change → overview."""
    new_password = "Juniper-Lantern-97-Quartz"
    with browser(tmp_path) as driver:
        shot = Shots(driver, "browser-admin")
        sign_in_with_password(driver, web, shot, "admin", web.admin_password, lands_on="/enrol")
        _, _ = enrol_totp(driver, shot)
        cont = by_css(driver, "#continue")
        assert cont.get_attribute("href").endswith("/account/password"), cont.get_attribute("href")
        cont.click()
        wait_for(driver, "#current")
        wait_path(driver, "/account/password")
        assert "one use only" in by_css(driver, "main").text
        shot("password-change")
        # Until the password is changed, the overview is out of reach.
        driver.get(web.url("/"))
        assert not present(driver, "#welcome"), f"overview reachable before the password change: {driver.current_url}"
        driver.get(web.url("/account/password"))
        fill(driver, "#current", web.admin_password)
        fill(driver, "#new", new_password)
        by_css(driver, "#change-password").click()
        overview(driver, shot, "admin")
    web.admin_password = new_password


# The page scripts' ceremonies with one change: the options are taken from the JSON
# answer whether or not they are wrapped in `publicKey` (see test_passkey_ceremonies_*).
PASSKEY_SHIM = r"""
function shimB64u(buf){return btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g,'-').replace(/\//g,'_').replace(/=+$/,'');}
function shimUnb64u(s){s=s.replace(/-/g,'+').replace(/_/g,'/');while(s.length%4)s+='=';return Uint8Array.from(atob(s),c=>c.charCodeAt(0));}
window.palisadeRegister = async function(){
  const csrf=document.querySelector('#register-form input[name=csrf]').value;
  const r=await fetch('/api/me/factors/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json(); const o=j.publicKey||j;
  o.challenge=shimUnb64u(o.challenge);o.user.id=shimUnb64u(o.user.id);(o.excludeCredentials||[]).forEach(c=>c.id=shimUnb64u(c.id));
  const c=await navigator.credentials.create({publicKey:o});
  const out={id:c.id,rawId:shimB64u(c.rawId),type:c.type,response:{clientDataJSON:shimB64u(c.response.clientDataJSON),attestationObject:shimB64u(c.response.attestationObject)}};
  document.getElementById('register-credential').value=JSON.stringify(out);
  document.getElementById('register-form').submit();
};
window.palisadePasskey = async function(){
  const csrf=document.querySelector('#passkey-form input[name=csrf]').value;
  const r=await fetch('/api/auth/webauthn/options',{method:'POST',headers:{'X-CSRF-Token':csrf}});
  const j=await r.json(); const o=j.publicKey||j;
  o.challenge=shimUnb64u(o.challenge);(o.allowCredentials||[]).forEach(c=>c.id=shimUnb64u(c.id));
  const c=await navigator.credentials.get({publicKey:o});
  const out={id:c.id,rawId:shimB64u(c.rawId),type:c.type,response:{clientDataJSON:shimB64u(c.response.clientDataJSON),authenticatorData:shimB64u(c.response.authenticatorData),signature:shimB64u(c.response.signature),userHandle:c.response.userHandle?shimB64u(c.response.userHandle):null}};
  document.getElementById('passkey-credential').value=JSON.stringify(out);
  document.getElementById('passkey-form').submit();
};
"""


def virtual_authenticator(driver: Any) -> str:
    driver.execute_cdp_cmd("WebAuthn.enable", {})
    return driver.execute_cdp_cmd(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]


def passkey_flow(web: WebPortal, tmp_path: Path, prefix: str, *, shim: bool) -> None:
    """Enrol a passkey from /enrol, sign out, sign in with password + passkey."""
    name = unique("pia")
    create_local_user(web.store, name, STRONG_PASSWORD)
    with browser(tmp_path) as driver:
        shot = Shots(driver, prefix)
        auth_id = virtual_authenticator(driver)

        sign_in_with_password(driver, web, shot, name, STRONG_PASSWORD, lands_on="/enrol")
        wait_for(driver, "#enrol-passkey")
        shot("enrol")
        if shim:
            driver.execute_script(PASSKEY_SHIM)
        by_css(driver, "#enrol-passkey").click()
        recovery_codes(driver, shot)
        creds = driver.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
        assert len(creds) == 1, creds
        assert creds[0]["rpId"] == "localhost", creds
        by_css(driver, "#continue").click()
        overview(driver, shot, name)
        sign_out(driver, shot)

        sign_in_with_password(driver, web, shot, name, STRONG_PASSWORD, lands_on="/login/factor")
        wait_for(driver, "#passkey")
        assert not present(driver, "#totp-code"), "no TOTP enrolled: no code field expected"
        shot("factor")
        if shim:
            driver.execute_script(PASSKEY_SHIM)
        by_css(driver, "#passkey").click()
        overview(driver, shot, name)
        after = driver.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]
        assert after[0]["signCount"] > creds[0]["signCount"], (creds, after)


def test_passkey_enrolment_and_sign_in(web: WebPortal, tmp_path: Path) -> None:
    """The pages' own passkey buttons, as a user clicks them."""
    passkey_flow(web, tmp_path, "browser-passkey", shim=False)


def test_passkey_ceremonies_with_chromium_authenticator(web: WebPortal, tmp_path: Path) -> None:
    """The server's side of both ceremonies with a real browser credential, independently of
    how the page scripts read the options (the shim accepts them wrapped or bare)."""
    passkey_flow(web, tmp_path, "browser-passkey-shim", shim=True)
