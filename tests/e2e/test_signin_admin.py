"""Administration of two-factor sign-in, through the session JSON API and the SDK.

The module's `signin_portal` (one per backend, see conftest) has `mfa.grace_hours
0`. The first administrator `admin` signs in with the one-time password printed
at first start (`first_admin` fixture), enrols TOTP (pyotp) and replaces the
password; the tests then use that administrator's session for resets, per-user
deadlines, support access and settings. The restrict-to-SSO test runs last: it
turns password sign-in off for everyone but the break-glass account, and back on.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
import secrets
from typing import Any

import pytest

from palisade_harness import assert_error, free_port, sdk_status, unique
from receivers import code_in
from signin_harness import (
    Browser,
    TotpDevice,
    assert_must_enrol,
    audit_entries,
    enrol_totp,
    enrolled_totp_user,
    error_message,
    signed_in_with_factor,
    wait_audit,
)

SUPPORT = "palisade-support"


@dataclasses.dataclass
class Admin:
    username: str
    id: int
    password: str
    browser: Browser
    device: TotpDevice
    states: list[str]
    admin_route_while_password_change: Any
    stepped_up_at: float = 0.0

    def step_up(self, clock) -> None:
        """Verifies the administrator's own factor in this session (POST /api/auth/factor while active)."""
        before = self.browser.cookie
        body = self.browser.factor_ok("totp", self.device.code())
        assert body["state"] == "active", body
        assert self.browser.cookie != before, "a step-up must rotate the session id"
        self.stepped_up_at = clock.now()

    def ensure_step_up(self, clock) -> None:
        if clock.now() - self.stepped_up_at > 4 * 60:
            self.step_up(clock)


@pytest.fixture(scope="module")
def first_admin(signin_portal) -> Admin:
    """The first administrator: one-time password → must enrol (grace 0) → TOTP → password change → active."""
    sp = signin_portal
    name, one_time = sp.first_admin
    assert name == "admin"
    b = sp.browser()
    states = [b.login_ok(name, one_time)["state"]]
    assert_must_enrol(b.request("GET", "/api/admin/two-factor"))
    device, confirmed = enrol_totp(b, sp.clock)
    states.append(confirmed["session"]["state"])
    during = b.request("GET", "/api/admin/two-factor")
    assert_error(b.rest("GET", "/setting/admins"), 403, 1403)  # REST is closed during the password change
    new_password = "Kestrel-Harbour-" + secrets.token_hex(6)
    changed = b.ok("POST", "/api/auth/password", {"currentPassword": one_time, "newPassword": new_password})
    states.append(changed["state"])
    me = b.ok("GET", "/api/me")
    return Admin(name, me["id"], new_password, b, device, states, during, stepped_up_at=sp.clock.now())


# --------------------------------------------------------------------------- first administrator


def test_first_administrator_enrols_then_replaces_the_one_time_password(signin_portal, first_admin):
    sp = signin_portal
    assert first_admin.states == ["must_enrol", "password_change", "active"], first_admin.states
    assert_error(first_admin.admin_route_while_password_change, 403, 1403)
    assert "password" in error_message(first_admin.admin_route_while_password_change)
    # The one-time password is gone; the new one works (with the factor).
    assert_error(sp.browser().login("admin", sp.first_admin[1]), 401, 1401)
    b = signed_in_with_factor(sp, {"username": "admin", "password": first_admin.password}, {"totp", "recovery"})
    assert b.factor_ok("totp", first_admin.device.code())["state"] == "active"
    assert b.ok("GET", "/api/me")["twoFactor"]["status"] == "satisfied"
    wait_audit(sp.reader, action="mfa.enrol", username="admin")
    wait_audit(sp.reader, action="user.password", username="admin")
    # A session of the administrator role uses the REST API (no token can: tokens are never
    # held by administrators), and its calls are audited as session calls.
    assert b.rest("GET", "/setting/accesslogs").status_code == 200
    role = b.rest("POST", "/setting/roles", {"name": unique("by-admin-session-"), "privileges": []})
    assert role.status_code == 200, role.text
    wait_audit(sp.reader, action="api.call", username="admin", contains="POST /santaba/rest/setting/roles -> 200 via session")


# --------------------------------------------------------------------------- overview


def test_two_factor_overview(signin_portal, first_admin):
    sp = signin_portal
    with_factor, _, _, _ = enrolled_totp_user(sp, "overview-on")
    without = sp.user("overview-off")
    data = first_admin.browser.ok("GET", "/api/admin/two-factor")
    rows = {r["username"]: r for r in data["items"]}
    assert data["total"] == len(data["items"])
    on, off = rows[with_factor["username"]], rows[without["username"]]
    assert on["twoFAEnabled"] is True and on["twoFactor"]["status"] == "satisfied", on
    assert [f["kind"] for f in on["factors"]] == ["totp"] and "secret" not in str(on["factors"]), on
    assert off["twoFAEnabled"] is False and off["twoFactor"]["status"] == "mustEnrol", off
    assert rows["automation"]["twoFactor"]["status"] == "notApplicable", rows["automation"]
    assert rows[SUPPORT]["kind"] == "support"
    # Session-only: an API token does not reach it, and a user without the privilege is refused.
    resp = sp.reader.session.get(sp.server.base + "/api/admin/two-factor", headers={"Authorization": "Bearer " + sp.portal.bearer.secret})
    assert resp.status_code == 401, resp.text
    nobody = sp.user("no-useraccess", role="readonly")
    nb = sp.browser()
    assert nb.login_ok(nobody["username"], nobody["password"])["state"] == "must_enrol"
    enrol_totp(nb, sp.clock)
    assert_error(nb.request("GET", "/api/admin/two-factor"), 403, 1403)


def test_rest_twofa_enabled_reflects_enrolment(signin_portal):
    """`twoFAEnabled` on /santaba/rest/setting/admins says whether the user has a second factor."""
    sp = signin_portal
    with_factor, _, _, _ = enrolled_totp_user(sp, "twofa-on")
    without = sp.user("twofa-off")
    assert sp.reader.get(f"/setting/admins/{without['id']}")["twoFAEnabled"] is False
    got = sp.reader.get(f"/setting/admins/{with_factor['id']}")
    assert got["twoFAEnabled"] is True, (
        f"user {with_factor['username']} has a confirmed TOTP factor but /setting/admins/{with_factor['id']} "
        f"says twoFAEnabled={got['twoFAEnabled']!r}"
    )
    listed = {u["username"]: u for u in sp.reader.list_all("/setting/admins")}
    assert listed[with_factor["username"]]["twoFAEnabled"] is True
    enabled = {u["username"] for u in sp.reader.list_all("/setting/admins", params={"filter": "twoFAEnabled:true"})}
    disabled = {u["username"] for u in sp.reader.list_all("/setting/admins", params={"filter": "twoFAEnabled:false"})}
    assert with_factor["username"] in enabled and with_factor["username"] not in disabled
    assert without["username"] in disabled and without["username"] not in enabled


# --------------------------------------------------------------------------- reset


def test_admin_reset_needs_a_recent_step_up_and_ends_the_sessions(signin_portal, first_admin):
    sp = signin_portal
    target, _, _, tb = enrolled_totp_user(sp, "reset-me")
    admin = first_admin
    path = f"/api/admin/users/{target['id']}/two-factor/reset"

    # A user with read-only user access may not reset.
    reader_user, _, _, rb = enrolled_totp_user(sp, "reset-reader")
    assert_error(rb.request("POST", path), 403, 1403)

    # The administrator's own factor is older than five minutes: refused.
    sp.clock.advance(6 * 60)
    resp = admin.browser.request("POST", path)
    assert_error(resp, 403, 1403)
    assert "second factor" in error_message(resp), resp.text
    assert [f["kind"] for f in tb.ok("GET", "/api/me")["factors"]] == ["totp"], "refused reset changed something"

    # Step up (the administrator's TOTP), then the reset works.
    admin.step_up(sp.clock)
    assert admin.browser.ok("POST", path) == {}
    # The user's sessions ended; at the next sign-in they are confined to enrolment again.
    assert tb.request("GET", "/api/me").status_code == 401
    b = sp.browser()
    assert b.login_ok(target["username"], target["password"])["state"] == "must_enrol"
    me = b.ok("GET", "/api/me")
    assert me["factors"] == [] and me["recoveryCodesLeft"] == 0, me
    reset = wait_audit(sp.reader, action="mfa.reset", username="admin", contains=target["username"])
    assert len(reset) == 1, reset
    wait_audit(sp.reader, action="signin.success", username="admin", contains="totp")
    assert_error(admin.browser.request("POST", "/api/admin/users/99999999/two-factor/reset"), 404, 1404)


# --------------------------------------------------------------------------- deadlines


def test_per_user_deadline_override(signin_portal, first_admin):
    sp = signin_portal
    user = sp.user("deadline")
    path = f"/api/admin/users/{user['id']}/two-factor/deadline"
    b = sp.browser()
    assert b.login_ok(user["username"], user["password"])["state"] == "must_enrol"

    # Extended by an hour: the user signs in without enrolling, in grace.
    later = int(sp.clock.now()) + 3600
    assert first_admin.browser.ok("PUT", path, {"deadline": later}) == {}
    b2 = sp.browser()
    assert b2.login_ok(user["username"], user["password"])["state"] == "active"
    me = b2.ok("GET", "/api/me")
    assert me["twoFactor"]["status"] == "grace" and me["twoFactor"]["deadline"] == later, me
    assert b2.rest("GET", "/setting/admins").status_code == 200
    rows = {r["username"]: r for r in first_admin.browser.ok("GET", "/api/admin/two-factor")["items"]}
    assert rows[user["username"]]["twoFactor"]["deadline"] == later

    # Moved into the past while signed in: applies at the next request.
    assert first_admin.browser.ok("PUT", path, {"deadline": int(sp.clock.now()) - 60}) == {}
    assert_must_enrol(b2.rest("GET", "/setting/admins"))
    assert b2.ok("GET", "/api/me")["session"]["state"] == "must_enrol"

    # Back to the computed deadline (grace 0 here): must enrol.
    assert first_admin.browser.ok("PUT", path, {"deadline": None}) == {}
    assert sp.browser().login_ok(user["username"], user["password"])["state"] == "must_enrol"
    wait_audit(sp.reader, action="mfa.deadline", username="admin", contains=user["username"], count=3)
    # Only with the user-access write privilege.
    other, _, _, ob = enrolled_totp_user(sp, "deadline-reader")
    assert_error(ob.request("PUT", path, {"deadline": later}), 403, 1403)


# --------------------------------------------------------------------------- support access


def open_support(sp, admin: Admin, minutes: int = 30) -> dict:
    admin.ensure_step_up(sp.clock)
    opened = admin.browser.ok("POST", "/api/admin/support-access", {"minutes": minutes})
    assert opened["username"] == SUPPORT and len(opened["password"]) >= 16, opened
    return opened


def test_support_access(signin_portal, first_admin):
    sp = signin_portal
    admin = first_admin
    assert_error(sp.browser().login(SUPPORT, "anything-at-all-123"), 401, 1401)
    assert_error(admin.browser.request("POST", "/api/admin/support-access", {"minutes": 1}), 400, 1400)

    opened = open_support(sp, admin)
    s = sp.browser()
    assert s.login_ok(SUPPORT, opened["password"])["state"] == "must_enrol"
    assert_must_enrol(s.rest("GET", "/setting/roles"))
    device, confirmed = enrol_totp(s, sp.clock)
    assert confirmed["session"]["state"] == "active"
    assert s.ok("GET", "/api/me")["username"] == SUPPORT
    s.rest("GET", "/setting/roles")
    s.rest("POST", "/setting/roles", {"name": unique("support-role-"), "privileges": []})
    wait_audit(sp.reader, action="support.open", username="admin")
    wait_audit(sp.reader, action="mfa.enrol", username=SUPPORT)
    wait_audit(sp.reader, action="api.call", username=SUPPORT, contains="/setting/roles", count=2)
    mine = audit_entries(sp.reader, username=SUPPORT)
    assert len(mine) >= 5, mine
    untagged = [e["description"] for e in mine if "[support access]" not in e["description"]]
    assert not untagged, f"support actions audited without [support access]: {untagged}"

    # Closing ends the session and the password.
    assert admin.browser.ok("DELETE", "/api/admin/support-access") == {}
    assert s.request("GET", "/api/me").status_code == 401
    assert s.rest("GET", "/setting/roles").status_code == 401
    assert_error(sp.browser().login(SUPPORT, opened["password"]), 401, 1401)
    wait_audit(sp.reader, action="support.close", username="admin")


def test_support_access_reopened_needs_a_fresh_enrolment(signin_portal, first_admin):
    """Each opening hands out a one-time password to whoever provides support this time;
    they must enrol their own factor at first sign-in, not meet the previous window's one."""
    sp = signin_portal
    admin = first_admin
    for round_ in range(2):
        opened = open_support(sp, admin)
        s = sp.browser()
        state = s.login_ok(SUPPORT, opened["password"])["state"]
        if state == "must_enrol":
            enrol_totp(s, sp.clock)
        assert admin.browser.ok("DELETE", "/api/admin/support-access") == {}
        assert state == "must_enrol", (
            f"support access opening #{round_ + 1}: the support account signed in with the new one-time "
            f"password reached state {state!r}; a new opening must require a fresh enrolment "
            f"(the previous opening's factor should not carry over)"
        )


def test_support_window_expires(signin_portal, first_admin):
    sp = signin_portal
    opened = open_support(sp, first_admin, minutes=5)
    s = sp.browser()
    assert s.login_ok(SUPPORT, opened["password"])["state"] in ("must_enrol", "await_factor")
    assert s.request("POST", "/api/auth/logout").status_code == 200
    s2 = sp.browser()
    s2.login_ok(SUPPORT, opened["password"])
    sp.clock.advance(5 * 60 + 5)
    assert s2.request("POST", "/api/auth/logout").status_code == 401, "the session outlived the support window"
    assert_error(sp.browser().login(SUPPORT, opened["password"]), 401, 1401)
    wait_audit(sp.reader, action="signin.failure", username=SUPPORT, contains="[support access]")


# --------------------------------------------------------------------------- settings


def test_settings_through_the_admin_api(signin_portal, first_admin):
    sp = signin_portal
    a = first_admin.browser
    current = a.ok("GET", "/api/admin/settings")
    assert current["mfa.grace_hours"]["value"] == "0" and current["mfa.grace_hours"]["help"], current
    original = current["mfa.enforcement_date"]["value"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", original), "a new portal enforces from its install day"
    assert_error(a.request("PUT", "/api/admin/settings", {"mfa.grace_hours": 721}), 400, 1400)
    assert_error(a.request("PUT", "/api/admin/settings", {"no.such.setting": "1"}), 400, 1400)
    assert_error(a.request("PUT", "/api/admin/settings", {"mfa.enforcement_date": "soon"}), 400, 1400)
    try:
        # An enforcement date in the future: new users have until then.
        assert a.ok("PUT", "/api/admin/settings", {"mfa.enforcement_date": "2099-01-01"}) == {"mfa.enforcement_date": "2099-01-01"}
        assert sp.cli_json("settings", "get", "mfa.enforcement_date") == {"mfa.enforcement_date": "2099-01-01"}
        user = sp.user("future")
        b = sp.browser()
        assert b.login_ok(user["username"], user["password"])["state"] == "active"
        me = b.ok("GET", "/api/me")
        assert me["twoFactor"] == {**me["twoFactor"], "status": "grace", "deadline": calendar.timegm((2099, 1, 1, 0, 0, 0))}, me
        # No enforcement date and no role requirement: two-factor is optional.
        assert a.ok("PUT", "/api/admin/settings", {"mfa.enforcement_date": "none"}) == {"mfa.enforcement_date": ""}
        b2 = sp.browser()
        assert b2.login_ok(user["username"], user["password"])["state"] == "active"
        assert b2.ok("GET", "/api/me")["twoFactor"]["status"] == "optional"
        # ... except for members of a role that requires two-factor: their own grace (0 here).
        strict = sp.reader.ok("POST", "/setting/roles", json_body={
            "name": unique("strict-"), "twoFARequired": True,
            "privileges": [{"objectType": "setting", "objectId": "useraccess", "operation": "read"}],
        })
        assert strict["twoFARequired"] is True, strict
        member = sp.user("strict", role=strict["name"])
        assert sp.browser().login_ok(member["username"], member["password"])["state"] == "must_enrol"
    finally:
        assert a.ok("PUT", "/api/admin/settings", {"mfa.enforcement_date": original}) == {"mfa.enforcement_date": original}
    wait_audit(sp.reader, action="setting.change", username="admin", contains="mfa.enforcement_date", count=3)
    assert sp.browser().login_ok(user["username"], user["password"])["state"] == "must_enrol"
    # Only with the user-access write privilege.
    _, _, _, rb = enrolled_totp_user(sp, "settings-reader")
    assert rb.ok("GET", "/api/admin/settings")["mfa.grace_hours"]["value"] == "0"
    assert_error(rb.request("PUT", "/api/admin/settings", {"mfa.grace_hours": "1"}), 403, 1403)


# --------------------------------------------------------------------------- SDK bulk edit


def test_bulk_patch_contacts_with_sdk(signin_portal):
    """An API-only user with setting:useraccess:write patches email and phone of several users
    with the official SDK; the new contacts are where codes go."""
    sp = signin_portal
    api = sp.server.sdk(sp.portal.bearer)
    users = [sp.user("bulk") for _ in range(5)]
    patched = {}
    for u in users:
        email = f"{u['username']}@contacts.example.org"
        phone = "+1555" + f"{free_port() % 10_000_000:07d}"
        got = api.patch_admin_by_id(u["id"], {"email": email, "phone": phone})
        assert got.email == email and got.phone == phone and got.username == u["username"]
        patched[u["id"]] = (email, phone)
    for u in users:
        again = api.get_admin_by_id(u["id"])
        assert (again.email, again.phone) == patched[u["id"]]
        assert again.username == u["username"] and {r.name for r in again.roles} == {sp.READ_ROLE}
    changes = [e for e in audit_entries(sp.reader, username="automation") if e.get("action", "").startswith("user.")]
    for u in users:
        assert any(u["username"] in e["description"] for e in changes), (u["username"], changes[:5])
    assert sdk_status(api.patch_admin_by_id, 99999999, {"phone": "+15550000000"}) == 404

    # Changing a user's roles, or suspending them, through the SDK ends their sessions.
    moved = users[2]
    mb = sp.browser()
    assert mb.login_ok(moved["username"], moved["password"])["state"] == "must_enrol"
    assert {r.name for r in api.patch_admin_by_id(moved["id"], {"roles": [{"id": sp.portal.basic_role["id"]}]}).roles} == {"e2e-basic"}
    assert mb.request("GET", "/api/me").status_code == 401
    victim = users[1]
    vb = sp.browser()
    assert vb.login_ok(victim["username"], victim["password"])["state"] == "must_enrol"
    assert api.patch_admin_by_id(victim["id"], {"status": "suspended"}).status == "suspended"
    assert vb.request("GET", "/api/me").status_code == 401
    assert_error(sp.browser().login(victim["username"], victim["password"]), 401, 1401)

    # The patched contacts are the default destinations of enrolment codes.
    u = users[0]
    email, phone = patched[u["id"]]
    b = sp.browser()
    assert b.login_ok(u["username"], u["password"])["state"] == "must_enrol"
    me = b.ok("GET", "/api/me")
    assert me["email"] == email, me
    started = b.ok("POST", "/api/me/factors/delivery", {"kind": "sms"})
    sms = sp.sms.wait(phone)
    assert sms.accepted
    confirmed = b.confirm(started["factorId"], code_in(sms.text), started["challengeId"])
    assert confirmed.status_code == 200, confirmed.text
    started = b.ok("POST", "/api/me/factors/delivery", {"kind": "email"})
    mail = sp.smtp.wait(email)
    assert b.confirm(started["factorId"], code_in(mail.text), started["challengeId"]).status_code == 200


# --------------------------------------------------------------------------- restrict to SSO (last)


def test_restrict_to_sso_keeps_only_break_glass_passwords(signin_portal):
    sp = signin_portal
    local = sp.user("sso-local")
    glass = sp.user("break-glass")
    sp.setting("mfa.grace_hours", "72")
    try:
        # Before: with 72 h of grace a new local user signs in without a factor.
        b = sp.browser()
        assert b.login_ok(local["username"], local["password"])["state"] == "active"
        assert b.ok("GET", "/api/me")["twoFactor"]["status"] == "grace"

        sp.setting("sso.restrict", "true")
        sp.setting("sso.break_glass", glass["username"])
        resp = sp.browser().login(local["username"], local["password"])
        assert_error(resp, 403, 1403)
        assert "single sign-on" in error_message(resp), resp.text
        assert_error(sp.browser().login(local["username"], "Wrong-Password-12345"), 401, 1401)
        wait_audit(sp.reader, action="signin.failure", username=local["username"], contains="restricted to SSO")

        # The break-glass account signs in with its password but must have a second factor,
        # grace period or not.
        g = sp.browser()
        assert g.login_ok(glass["username"], glass["password"])["state"] == "must_enrol"
        assert_must_enrol(g.rest("GET", "/setting/admins"))
        device, confirmed = enrol_totp(g, sp.clock)
        assert confirmed["session"]["state"] == "active"
        assert g.rest("GET", "/setting/admins").status_code == 200
        g.logout()
        g2 = signed_in_with_factor(sp, glass, {"totp", "recovery"})
        assert g2.factor_ok("totp", device.code())["state"] == "active"
        wait_audit(sp.reader, action="setting.change", contains="sso.restrict")
    finally:
        sp.setting("sso.restrict", "false")
        sp.setting("sso.break_glass", "")
        sp.setting("mfa.grace_hours", "0")
    assert sp.browser().login_ok(local["username"], local["password"])["state"] == "must_enrol"
