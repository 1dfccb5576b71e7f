"""Single sign-on end to end: OIDC through the test identity provider (`test-idp`),
SAML 2.0 through pysaml2 (`crates/palisade-saml/tests/fixtures/idp.py`), against a
real `palisade serve --config` on both backends.

- SSO users are created at their first sign-in, are linked by (IdP, subject) and
  need no Palisade second factor (`twoFactor.status == "notApplicable"`); the
  provider's `amr` / authentication context is in the `signin.sso` audit entry.
- Refused: a callback without the round trip, a replayed SAML response, a SAML
  response whose NameID was edited after signing (`signin.sso_failure`).
- `sso.restrict`: password sign-in refused except for break-glass accounts,
  SSO still works.
- Once through the browser: the `#sso-oidc-corp` link of the sign-in page.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from selenium.webdriver.common.by import By

from palisade_harness import STRONG_PASSWORD, Rest, Server, Store, new_store, unique, user_by_name
from signin_harness import wait_audit
from web_harness import (
    SAML_IDP_SSO_URL,
    SESSION_COOKIE,
    OidcTestIdp,
    Shots,
    browser,
    client_ip,
    create_local_user,
    planned_server,
    relay_state_of,
    saml_response,
    tamper_name_id,
    wait_for,
    wait_path,
    write_portal_config,
)

OIDC_SUBJECT = "oidc-olivia-7f3a"
OIDC_EMAIL = "olivia@example.com"
OIDC_AMR = ("pwd", "otp")
JSON = {"Accept": "application/json"}


@dataclasses.dataclass
class SsoPortal:
    store: Store
    server: Server
    idp: OidcTestIdp
    public_url: str
    reader: Rest  # automation token: setting:accesslogs:read + setting:useraccess:write

    def url(self, path: str) -> str:
        return self.public_url + path


@pytest.fixture(scope="module")
def sso(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoPortal]:
    with new_store(backend, tmp_path_factory) as store:
        srv = planned_server(store)
        public = f"http://127.0.0.1:{srv.port}"
        secret = secrets.token_urlsafe(24)
        idp = OidcTestIdp(
            client_secret=secret,
            redirect_uri=f"{public}/sso/oidc/corp/callback",
            users=[f"{OIDC_SUBJECT}:{OIDC_EMAIL}:{','.join(OIDC_AMR)}"],
            log_dir=store.data_dir.parent,
        )
        with idp:
            cfg = write_portal_config(
                store.data_dir.parent / "portal.toml", public_url=public, oidc_issuer=idp.issuer, oidc_secret=secret, saml=True
            )
            srv.args = ["--config", str(cfg), "--trusted-proxy", "127.0.0.1/32"]
            srv.start()
            boot = store.bootstrap_automation()
            yield SsoPortal(store, srv, idp, public, srv.rest(boot["lmv1"]))


# --------------------------------------------------------------------------- helpers


def oidc_sign_in(p: SsoPortal) -> requests.Session:
    """The whole OIDC round trip with redirects followed; returns the signed-in session."""
    s = requests.Session()
    r = s.get(p.url("/sso/oidc/corp/login"), timeout=30)
    hops = [(h.status_code, h.headers.get("Location", "")) for h in r.history]
    assert r.status_code == 200, f"OIDC sign-in ended with {r.status_code} at {r.url}: {r.text[:800]}; hops {hops}"
    assert urlsplit(r.url).path == "/ui", f"OIDC sign-in landed on {r.url}; hops {hops}"
    assert hops and hops[0][0] in (302, 303, 307) and hops[0][1].startswith(p.idp.issuer + "/"), hops
    assert any("/sso/oidc/corp/callback?" in loc for _, loc in hops), hops
    assert s.cookies.get(SESSION_COOKIE), f"no {SESSION_COOKIE} cookie after the OIDC round trip; hops {hops}"
    assert 'id="welcome"' in r.text, r.text[:800]
    return s


def saml_begin(p: SsoPortal) -> tuple[str, str]:
    """GET /sso/saml/corp/login: the redirect to the IdP (not followed) and its RelayState."""
    r = requests.get(p.url("/sso/saml/corp/login"), allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), f"{r.status_code}: {r.text[:500]}"
    loc = r.headers["Location"]
    assert loc.startswith(SAML_IDP_SSO_URL + "?"), loc
    relay = relay_state_of(loc)
    assert relay, f"no RelayState in {loc!r}"
    return loc, relay


def saml_post(p: SsoPortal, response_b64: str, relay: str) -> requests.Response:
    return requests.post(
        p.url("/sso/saml/corp/acs"),
        data={"SAMLResponse": response_b64, "RelayState": relay},
        allow_redirects=False,
        timeout=30,
    )


def me(p: SsoPortal, cookie: str) -> dict:
    r = requests.get(p.url("/api/me"), headers=JSON, cookies={SESSION_COOKIE: cookie}, timeout=30)
    assert r.status_code == 200, f"/api/me -> {r.status_code}: {r.text[:500]}"
    return r.json()


def assert_signed_in_by_sso(p: SsoPortal, cookie: str, *, username: str, method: str) -> dict:
    info = me(p, cookie)
    assert info["username"] == username, info
    assert info["twoFactor"]["status"] == "notApplicable", info
    assert info["session"]["state"] == "active", info
    assert info["session"]["authMethod"] == method, info
    assert info["factors"] == [], info
    return info


# --------------------------------------------------------------------------- OIDC


def test_oidc_sign_in_needs_no_palisade_factor(sso: SsoPortal) -> None:
    s = oidc_sign_in(sso)
    info = assert_signed_in_by_sso(sso, s.cookies[SESSION_COOKIE], username=OIDC_EMAIL, method="oidc:corp")
    assert info["email"] == OIDC_EMAIL, info
    # The round-trip cookie is gone once used.
    assert not s.cookies.get("palisade_sso", path="/sso"), s.cookies

    user = user_by_name(sso.reader, OIDC_EMAIL)
    assert user["authSource"] == "sso", user
    assert [r["name"] for r in user["roles"]] == ["readonly"], user

    wait_audit(sso.reader, action="signin.sso", username=OIDC_EMAIL, contains="amr: " + ",".join(OIDC_AMR))

    # A second sign-in of the same subject lands in the same account.
    again = oidc_sign_in(sso)
    assert me(sso, again.cookies[SESSION_COOKIE])["id"] == info["id"]
    same = [u for u in sso.reader.list_all("/setting/admins") if u["email"] == OIDC_EMAIL]
    assert len(same) == 1, same

    # The SSO account has no password sign-in.
    r = requests.post(
        sso.url("/api/auth/login"),
        json={"username": OIDC_EMAIL, "password": STRONG_PASSWORD},
        headers={**JSON, "X-Forwarded-For": client_ip()},
        timeout=30,
    )
    assert r.status_code == 403, f"{r.status_code}: {r.text[:300]}"
    assert SESSION_COOKIE not in r.cookies


def test_oidc_callback_without_round_trip_is_refused(sso: SsoPortal) -> None:
    s = requests.Session()
    start = s.get(sso.url("/sso/oidc/corp/login"), allow_redirects=False, timeout=30)
    assert start.status_code in (302, 303), start.text[:300]
    assert start.headers["Location"].startswith(sso.idp.issuer + "/"), start.headers["Location"]
    assert s.cookies.get("palisade_sso"), "no round-trip cookie"
    # A made-up code and state with the round-trip cookie ...
    bad = s.get(sso.url("/sso/oidc/corp/callback?code=forged&state=forged"), allow_redirects=False, timeout=30)
    assert bad.status_code == 401, f"{bad.status_code}: {bad.text[:300]}"
    assert SESSION_COOKIE not in bad.cookies
    # ... and a callback that never started here.
    stray = requests.get(sso.url("/sso/oidc/corp/callback?code=forged&state=forged"), allow_redirects=False, timeout=30)
    assert stray.status_code == 401, f"{stray.status_code}: {stray.text[:300]}"
    assert SESSION_COOKIE not in stray.cookies
    wait_audit(sso.reader, action="signin.sso_failure", username="oidc:corp", count=2)


# --------------------------------------------------------------------------- SAML


def test_saml_sign_in_and_replay_refused(sso: SsoPortal) -> None:
    loc, relay = saml_begin(sso)
    response = saml_response(sso.public_url, loc, username="alice", attributes={"mail": "alice@example.com"})
    r = saml_post(sso, response, relay)
    assert r.status_code == 303, f"ACS -> {r.status_code}: {r.text[:500]}"
    assert r.headers["Location"] == "/", r.headers
    cookie = r.cookies.get(SESSION_COOKIE)
    assert cookie, f"no session cookie: {r.headers}"
    assert_signed_in_by_sso(sso, cookie, username="alice", method="saml:corp")
    page = requests.get(sso.url("/"), cookies={SESSION_COOKIE: cookie}, timeout=30)
    assert page.status_code == 200 and 'id="welcome"' in page.text, page.text[:500]
    wait_audit(sso.reader, action="signin.sso", username="alice", contains="PasswordProtectedTransport")

    # The same response a second time: a replay.
    again = saml_post(sso, response, relay)
    assert again.status_code == 401, f"replayed response -> {again.status_code}: {again.text[:500]}"
    assert SESSION_COOKIE not in again.cookies
    wait_audit(sso.reader, action="signin.sso_failure", username="saml:corp", contains="replay")


def test_saml_tampered_response_refused(sso: SsoPortal) -> None:
    loc, relay = saml_begin(sso)
    genuine = saml_response(sso.public_url, loc, username="mallory", attributes={"mail": "mallory@example.com"})
    forged = tamper_name_id(genuine)
    r = saml_post(sso, forged, relay)
    assert r.status_code == 401, f"tampered response -> {r.status_code}: {r.text[:500]}"
    assert SESSION_COOKIE not in r.cookies
    wait_audit(sso.reader, action="signin.sso_failure", username="saml:corp", contains="SAML sign-in through corp failed")
    names = {u["username"] for u in sso.reader.list_all("/setting/admins")}
    assert not any(n.startswith("mallor") for n in names), names

    # A response answering another sign-in's request (its own RelayState) is refused too.
    _, other_relay = saml_begin(sso)
    cross = saml_post(sso, genuine, other_relay)
    assert cross.status_code == 401, f"response to another request -> {cross.status_code}: {cross.text[:500]}"

    # The refusals did not burn the genuine response.
    ok = saml_post(sso, genuine, relay)
    assert ok.status_code == 303, f"genuine response after the forged one -> {ok.status_code}: {ok.text[:500]}"
    assert_signed_in_by_sso(sso, ok.cookies[SESSION_COOKIE], username="mallory", method="saml:corp")


def test_saml_mail_attribute_becomes_the_email(sso: SsoPortal) -> None:
    """pysaml2 sends `mail` under its URI name (urn:oid:0.9.2342.19200300.100.1.3,
    FriendlyName `mail`), as most IdPs with the URI name format do."""
    loc, relay = saml_begin(sso)
    r = saml_post(sso, saml_response(sso.public_url, loc, username="bob", attributes={"mail": "bob@example.com"}), relay)
    assert r.status_code == 303, f"ACS -> {r.status_code}: {r.text[:500]}"
    info = me(sso, r.cookies[SESSION_COOKIE])
    assert info["email"] == "bob@example.com", f"SSO user created from SAML has email {info['email']!r}: {info}"


# --------------------------------------------------------------------------- restrict to SSO


def test_restrict_to_sso(sso: SsoPortal, backend: str, tmp_path) -> None:
    lena, glass = unique("lena"), unique("glass")
    for name in (lena, glass):
        create_local_user(sso.store, name, STRONG_PASSWORD)
    ip = client_ip()  # this test's own sign-in throttle

    def api_login(name: str) -> requests.Response:
        return requests.post(
            sso.url("/api/auth/login"),
            json={"username": name, "password": STRONG_PASSWORD},
            headers={**JSON, "X-Forwarded-For": ip},
            timeout=30,
        )

    before = api_login(lena)
    assert before.status_code == 200, f"{before.status_code}: {before.text[:300]}"

    sso.store.cli_json("settings", "set", "sso.restrict", "true")
    sso.store.cli_json("settings", "set", "sso.break_glass", glass)
    try:
        refused = api_login(lena)
        assert refused.status_code == 403, f"{refused.status_code}: {refused.text[:300]}"
        assert "single sign-on" in refused.json().get("errorMessage", ""), refused.text
        assert SESSION_COOKIE not in refused.cookies

        # The sign-in page says why, and still offers single sign-on.
        browser_ip = client_ip()
        with browser(tmp_path, forwarded_for=browser_ip) as driver:
            shot = Shots(driver, f"sso-restrict-{backend}")
            driver.get(sso.url("/login"))
            wait_for(driver, "#username").send_keys(lena)
            wait_for(driver, "#password").send_keys(STRONG_PASSWORD)
            driver.find_element(By.CSS_SELECTOR, "#sign-in").click()
            err = wait_for(driver, "p.error")
            shot("refused")
            assert "restricted to single sign-on" in err.text, err.text
            assert driver.find_elements(By.CSS_SELECTOR, "#sso-oidc-corp") and driver.find_elements(
                By.CSS_SELECTOR, "#sso-saml-corp"
            ), "SSO links missing from the refusal page"
            assert not driver.get_cookie(SESSION_COOKIE), driver.get_cookies()
        hits = wait_audit(sso.reader, action="signin.failure", username=lena, contains="restricted to SSO", count=2)
        assert {ip, browser_ip} <= {e.get("ip") for e in hits}, [(e.get("ip"), e.get("description")) for e in hits]

        # The break-glass account still signs in with its password (and must enrol a factor).
        bg = api_login(glass)
        assert bg.status_code == 200, f"break-glass -> {bg.status_code}: {bg.text[:300]}"
        assert bg.json()["state"] == "must_enrol", bg.json()

        # Single sign-on is not affected.
        s = oidc_sign_in(sso)
        assert_signed_in_by_sso(sso, s.cookies[SESSION_COOKIE], username=OIDC_EMAIL, method="oidc:corp")
        loc, relay = saml_begin(sso)
        r = saml_post(sso, saml_response(sso.public_url, loc, username="carol"), relay)
        assert r.status_code == 303, f"SAML under sso.restrict -> {r.status_code}: {r.text[:500]}"
        assert_signed_in_by_sso(sso, r.cookies[SESSION_COOKIE], username="carol", method="saml:corp")
    finally:
        sso.store.cli_json("settings", "set", "sso.restrict", "false")
        sso.store.cli_json("settings", "set", "sso.break_glass", "")
    after = api_login(lena)
    assert after.status_code == 200, f"after lifting sso.restrict -> {after.status_code}: {after.text[:300]}"


# --------------------------------------------------------------------------- browser


def test_oidc_in_the_browser(sso: SsoPortal, backend: str, tmp_path) -> None:
    with browser(tmp_path) as driver:
        shot = Shots(driver, f"sso-{backend}")
        driver.get(sso.url("/login"))
        wait_for(driver, "#sso-oidc-corp")
        assert driver.find_elements(By.CSS_SELECTOR, "#sso-saml-corp"), "SAML link missing"
        shot("login")
        driver.find_element(By.CSS_SELECTOR, "#sso-oidc-corp").click()
        welcome = wait_for(driver, "#welcome")
        wait_path(driver, "/ui")
        assert OIDC_EMAIL in welcome.text and "oidc:corp" in welcome.text, welcome.text
        assert driver.find_elements(By.CSS_SELECTOR, "#sign-out"), "no sign-out button on the overview"
        shot("overview")
        driver.find_element(By.CSS_SELECTOR, "#sign-out").click()
        wait_for(driver, "#username")
        wait_path(driver, "/login")
        shot("signed-out")
        assert not driver.get_cookie(SESSION_COOKIE), driver.get_cookies()
