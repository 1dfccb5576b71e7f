"""The compliance center on both backends, against a real `palisade serve`.

Every kind of violation is seeded through what the portal allows (the CLI, the REST API,
the collector protocol) and, where the portal refuses to create it (tokens of the support
account or of administrators, tokens unused for months, a user whose deadline passed), by
direct SQL on the store, as an older or imported installation would hold it. Each finding
must appear with its fix (UI link, API call, CLI command); the fix is then applied through
the API call or command it names wherever the portal can carry it out (collector-side fixes
are simulated by the heartbeat the fixed collector sends), and the finding must disappear
while its section's score rises. Then the CSV/JSON/text exports, the CLI report in all
three formats, and the history of the scores.
"""

from __future__ import annotations

import calendar
import csv
import io
import json
import secrets
import time
from typing import Any, Iterator

import pytest
import requests

from palisade_harness import STRONG_PASSWORD, Store, Token, assert_error, lmv1_authorization, new_store, unique
from signin_harness import Browser, enrol_totp

DAY_MS = 86_400_000

CENTER_PRIVILEGES = (
    "setting:compliance:read",
    "setting:useraccess:write",
    "setting:accesslogs:read",
    "setting:collectorgroup.*:write",
    "setting:datasources:write",
)


def now_ms() -> int:
    return int(time.time() * 1000)


class Center:
    """A server plus the API-only `auditor` (compliance read and what the fixes need) and
    `bystander` (setting:useraccess:read only: no compliance privilege)."""

    def __init__(self, store: Store):
        self.store = store
        self.server = store.serve("--trusted-proxy", "127.0.0.1/32")
        args = ["role", "add", "e2e-compliance"]
        for p in CENTER_PRIVILEGES:
            args += ["--privilege", p]
        store.cli_json(*args)
        self.auditor = store.cli_json(
            "user", "add", "auditor", "--email", "auditor@example.com", "--role", "e2e-compliance", "--api-only"
        )
        self.bearer = Token.from_cli(store.cli_json("token", "create", "auditor", "--bearer"))
        self.lmv1 = Token.from_cli(store.cli_json("token", "create", "auditor"))
        store.cli_json("role", "add", "e2e-bystander", "--privilege", "setting:useraccess:read")
        store.cli_json(
            "user", "add", "bystander", "--email", "bystander@example.com", "--role", "e2e-bystander", "--api-only"
        )
        self.bystander = Token.from_cli(store.cli_json("token", "create", "bystander", "--bearer"))
        self.http = requests.Session()

    # ---- HTTP
    def call(self, method: str, path: str, body: Any = None, *, token: Token | None = None,
             params: dict | None = None, data: str | None = None) -> requests.Response:
        tok = token or self.bearer
        headers = {"Authorization": f"Bearer {tok.secret}", "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        return self.http.request(method, self.server.base + path, data=data, headers=headers, params=params, timeout=60)

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self.call(method, path, body, **kw)
        assert 200 <= resp.status_code < 300, f"{method} {path} -> {resp.status_code}: {resp.text[:1500]}"
        return resp.json() if resp.content else None

    def report(self) -> dict:
        return self.ok("GET", "/api/compliance")

    def apply_api(self, fix: dict, body: Any = None) -> requests.Response:
        """Carries out the API call a fix names (its own body unless one is given)."""
        api = fix["api"]
        assert api is not None, fix
        return self.call(api["method"], api["path"], body if body is not None else api["body"])

    # ---- the store
    def user(self, prefix: str, *, local: bool = True, role: str = "readonly") -> dict:
        name = unique(prefix + "-")
        args = ["user", "add", name, "--email", f"{name}@example.com", "--role", role]
        if local:
            created = self.store.cli_json(*args, "--password-stdin", input=STRONG_PASSWORD + "\n")
        else:
            created = self.store.cli_json(*args, "--api-only")
        return {"id": created["id"], "username": name, "password": STRONG_PASSWORD}

    def cli_token(self, username: str) -> int:
        return Token.from_cli(self.store.cli_json("token", "create", username)).id

    # ---- collectors
    def collector(self, description: str, report: dict) -> tuple[int, str]:
        created = self.ok("POST", "/santaba/rest/setting/collector/collectors", {"description": description})
        resp = requests.post(
            self.server.base + "/api/collector/v1/register",
            json={"registrationSecret": created["registrationSecret"], "report": report},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["collectorId"], resp.json()["collectorKey"]

    def heartbeat(self, key: str, report: dict) -> None:
        resp = requests.post(
            self.server.base + "/api/collector/v1/heartbeat",
            json={"report": report},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text

    def audit(self, action: str, contains: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            items = self.ok("GET", "/santaba/rest/setting/accesslogs", params={"size": 1000})["items"]
            hits = [e for e in items if e.get("action") == action and contains in (e.get("description") or "")]
            if hits or time.monotonic() > deadline:
                assert hits, f"no audit entry {action!r} containing {contains!r}"
                return hits[0]
            time.sleep(0.2)


def findings(report: dict, rule: str | None = None, kind: str | None = None, oid: int | None = None) -> list[dict]:
    return [
        f for f in report["findings"]
        if (rule is None or f["rule"] == rule)
        and (kind is None or f["object"]["kind"] == kind)
        and (oid is None or f["object"]["id"] == oid)
    ]


def one(report: dict, rule: str, kind: str, oid: int) -> dict:
    hits = findings(report, rule, kind, oid)
    assert len(hits) == 1, f"expected one {rule} finding for {kind} {oid}; findings of it: {findings(report, None, kind, oid)!r}"
    f = hits[0]
    assert f["id"] == f"{rule}/{kind}/{oid}"
    assert f["fix"]["link"] == f"/ui/{kind}s/{oid}", f
    assert f["fix"]["action"], f
    assert isinstance(f["since"], int) and f["since"] > 0, f
    return f


def section(report: dict, sid: str) -> dict:
    hits = [s for s in report["sections"] if s["id"] == sid]
    assert len(hits) == 1, report["sections"]
    return hits[0]


def gone(report: dict, rule: str, kind: str, oid: int) -> None:
    assert not findings(report, rule, kind, oid), findings(report, rule, kind, oid)


def linux_report(host: str, *, uid: int = 990, user: str = "palisade-collector", caps: Any = ("cap_net_raw",),
                 admin: bool = False) -> dict:
    return {
        "hostname": host, "platform": "Linux", "arch": "x86_64", "build": "e2e",
        "isAdminAccount": admin,
        "privilege": {"user": user, "uid": uid, "gid": uid, "groups": [user],
                      "capabilities": caps if isinstance(caps, dict) else list(caps)},
        "startedOn": now_ms() - 5000,
    }


def windows_report(host: str, admin: bool) -> dict:
    return {
        "hostname": host, "platform": "Windows", "arch": "x86_64", "build": "e2e",
        "isAdminAccount": admin,
        "privilege": {"account": "NT SERVICE\\palisade", "elevated": admin},
        "startedOn": now_ms() - 5000,
    }


@pytest.fixture(scope="module")
def center(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Center]:
    with new_store(backend, tmp_path_factory) as store:
        yield Center(store)


# --------------------------------------------------------------------------- gate


def test_the_api_gate_and_the_privilege(center: Center) -> None:
    base = center.server.base
    resp = requests.get(base + "/api/compliance", timeout=30)
    assert_error(resp, 401)
    assert_error(center.call("GET", "/api/compliance", token=center.bystander), 403)
    assert_error(center.call("GET", "/api/compliance/history", token=center.bystander), 403)
    assert "setting:compliance:read" in center.call("GET", "/api/compliance", token=center.bystander).json()["errorMessage"]
    # LMv1 signs the path as requested: /api/compliance
    auth = lmv1_authorization(center.lmv1.access_id, center.lmv1.secret, "GET", "", "/api/compliance")
    resp = requests.get(base + "/api/compliance", headers={"Authorization": auth}, timeout=30)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert [s["id"] for s in report["sections"]] == [
        "two-factor", "linux-collectors", "windows-collectors", "api-tokens", "custom-modules"
    ]
    assert [s["mandate"] for s in report["sections"]] == [1, 2, 3, 4, 2]
    for s in report["sections"]:
        assert 0 <= s["score"] <= 100 and s["compliant"] <= s["total"]
    assert abs(report["generatedOn"] - time.time()) < 120
    # The built-in support account and the API-only users are listed as exempt.
    exempt = {(e["object"]["name"], e["section"]) for e in report["exempt"]}
    assert ("palisade-support", "two-factor") in exempt and ("auditor", "two-factor") in exempt
    # Secrets never appear.
    text = resp.text + center.call("GET", "/api/compliance", params={"format": "csv"}).text
    for secret in (center.bearer.secret, center.lmv1.secret, center.bystander.secret):
        assert secret not in text
    assert_error(center.call("GET", "/api/compliance", params={"format": "xml"}), 400)
    # Every call is audited like the REST API's.
    center.audit("api.call", "GET /api/compliance")


# --------------------------------------------------------------------------- two-factor


def test_two_factor_findings_and_their_fixes(center: Center) -> None:
    store = center.store
    today = now_ms()
    enforcement = time.strftime("%Y-%m-%d", time.gmtime((today - 5 * DAY_MS) / 1000))
    assert store.cli_json("settings", "set", "mfa.enforcement_date", enforcement) == {"mfa.enforcement_date": enforcement}
    enforcement_ms = calendar.timegm(time.strptime(enforcement, "%Y-%m-%d")) * 1000
    late = center.user("late")
    store.sql(f"UPDATE users SET created_on = {today - 10 * DAY_MS} WHERE id = {late['id']}")
    fresh = center.user("fresh")
    glass = center.user("glass")
    sso = center.user("sso")
    store.sql(f"UPDATE users SET auth_source = 'sso' WHERE id = {sso['id']}")
    store.cli_json("settings", "set", "sso.break_glass", f"{glass['username']},no-such-user")

    r = center.report()
    f_late = one(r, "mfa.deadline-passed", "user", late["id"])
    assert f_late["severity"] == "high" and f_late["daysLeft"] == 0
    assert f_late["since"] == enforcement_ms // 1000, (f_late["since"], enforcement_ms)
    assert f_late["fix"]["api"]["method"] == "POST" and f_late["fix"]["api"]["path"] == "/api/me/factors/totp"
    f_fresh = one(r, "mfa.in-grace", "user", fresh["id"])
    assert f_fresh["severity"] == "medium" and f_fresh["daysLeft"] == 3
    f_glass = one(r, "mfa.break-glass-without-factor", "user", glass["id"])
    assert f_glass["severity"] == "critical"
    assert r["sso"] == {"restrict": False, "breakGlass": [glass["username"].lower(), "no-such-user"],
                        "unknownBreakGlass": ["no-such-user"]}
    assert not findings(r, None, "user", sso["id"])
    assert any(e["object"]["id"] == sso["id"] and "single sign-on" in e["reason"] for e in r["exempt"])
    before = section(r, "two-factor")

    # The fix: each signs in and enrols an authenticator app at the API the finding names.
    b = Browser(center.server)
    assert b.login_ok(late["username"], late["password"])["state"] == "must_enrol"
    enrol_totp(b)
    r = center.report()
    gone(r, "mfa.deadline-passed", "user", late["id"])
    after = section(r, "two-factor")
    assert after["compliant"] == before["compliant"] + 1 and after["score"] > before["score"]

    for user, rule in ((glass, "mfa.break-glass-without-factor"), (fresh, "mfa.in-grace")):
        b = Browser(center.server)
        assert b.login_ok(user["username"], user["password"])["state"] == "active"
        enrol_totp(b)
        r2 = center.report()
        gone(r2, rule, "user", user["id"])
        assert section(r2, "two-factor")["score"] > section(r, "two-factor")["score"]
        r = r2


# --------------------------------------------------------------------------- collectors


def test_linux_collectors_root_and_capabilities(center: Center) -> None:
    t0 = int(time.time())
    root_id, root_key = center.collector("legacy-root", linux_report("root.example", uid=0, user="root", caps=(), admin=True))
    caps_id, caps_key = center.collector("caps", linux_report("caps.example"))
    r = center.report()
    f_root = one(r, "collector.root", "collector", root_id)
    assert f_root["severity"] == "high" and abs(f_root["since"] - t0) < 60
    assert f_root["fix"]["cli"] == "palisade-collector migrate --to-user palisade-collector"
    assert f_root["object"]["name"] == "legacy-root"
    assert not findings(r, None, "collector", caps_id)

    # Capabilities beyond cap_net_raw arrive with a heartbeat (the collector's own shape).
    extra = {"effective": ["cap_net_raw", "cap_sys_admin"], "permitted": ["cap_net_raw", "cap_sys_admin"], "ambient": []}
    center.heartbeat(caps_key, linux_report("caps.example", caps=extra, admin=True))
    r = center.report()
    f_caps = one(r, "collector.capabilities", "collector", caps_id)
    assert "cap_sys_admin" in f_caps["detail"] and "cap_net_raw" not in f_caps["detail"].split(":")[-1]
    assert f_caps["fix"]["cli"].startswith("palisade-collector install --user palisade-collector")
    first_since = f_caps["since"]
    time.sleep(1.1)
    center.heartbeat(caps_key, linux_report("caps.example", caps=extra, admin=True))
    assert one(center.report(), "collector.capabilities", "collector", caps_id)["since"] == first_since
    before = section(r, "linux-collectors")
    assert before["total"] >= 2

    # The fixes run on the collector hosts; what the portal sees is the next heartbeat.
    center.heartbeat(root_key, linux_report("root.example"))
    r = center.report()
    gone(r, "collector.root", "collector", root_id)
    mid = section(r, "linux-collectors")
    assert mid["score"] > before["score"]
    center.heartbeat(caps_key, linux_report("caps.example"))
    r = center.report()
    gone(r, "collector.capabilities", "collector", caps_id)
    assert section(r, "linux-collectors")["score"] > mid["score"]


def test_windows_collector_with_and_without_an_exception(center: Center) -> None:
    cid, key = center.collector("exchange-win", windows_report("win.example", admin=True))
    r = center.report()
    f = one(r, "collector.windows-admin", "collector", cid)
    api = f["fix"]["api"]
    assert api["method"] == "PATCH" and api["path"] == f"/santaba/rest/setting/collector/collectors/{cid}"
    proposed = api["body"]["complianceException"]
    assert proposed["expiresOn"] > time.time() + 80 * 86400
    before = section(r, "windows-collectors")

    # Refused: no justification, another platform, no write privilege on the collector group.
    assert_error(center.apply_api(f["fix"], {"complianceException": {"justification": "  "}}), 400)
    linux_id, _ = center.collector("plain-linux", linux_report("plain.example"))
    resp = center.call("PATCH", f"/santaba/rest/setting/collector/collectors/{linux_id}",
                       {"complianceException": {"justification": "we like root"}})
    assert "migrate" in assert_error(resp, 400)["errorMessage"]
    assert_error(center.call("PATCH", api["path"], {"complianceException": {"justification": "x"}},
                             token=center.bystander), 403)

    # The fix's API call, with the justification filled in: the collector is excepted.
    justification = "Exchange 2013 performance counters are readable by Administrators only"
    body = {"complianceException": {"justification": justification, "expiresOn": proposed["expiresOn"]}}
    assert center.apply_api(f["fix"], body).status_code == 200
    r = center.report()
    gone(r, "collector.windows-admin", "collector", cid)
    excepted = [e for e in r["excepted"] if e["object"]["id"] == cid]
    assert len(excepted) == 1
    exc = excepted[0]["exception"]
    assert exc["justification"] == justification and exc["createdBy"] == "auditor"
    assert exc["expiresOn"] == proposed["expiresOn"] and abs(exc["createdOn"] - time.time()) < 60
    assert excepted[0]["rule"] == "collector.windows-admin" and excepted[0]["section"] == "windows-collectors"
    after = section(r, "windows-collectors")
    assert after["excepted"] == before["excepted"] + 1 and after["score"] > before["score"]
    shown = center.ok("GET", f"/santaba/rest/setting/collector/collectors/{cid}")["complianceException"]
    assert shown["justification"] == justification and shown["createdBy"] == "auditor"
    entry = center.audit("collector.exception", f"collector {cid}")
    assert justification in entry["description"] and entry["username"] == "auditor"

    # Without the exception, the finding is back.
    assert center.call("PATCH", api["path"], {"complianceException": None}).status_code == 200
    r = center.report()
    one(r, "collector.windows-admin", "collector", cid)
    assert not [e for e in r["excepted"] if e["object"]["id"] == cid]
    assert center.ok("GET", f"/santaba/rest/setting/collector/collectors/{cid}")["complianceException"] is None
    center.audit("collector.exception", f"removed the compliance exception of collector {cid}")

    # Converted to a non-admin account: the next heartbeat clears it.
    center.heartbeat(key, windows_report("win.example", admin=False))
    r2 = center.report()
    gone(r2, "collector.windows-admin", "collector", cid)
    assert section(r2, "windows-collectors")["score"] > section(r, "windows-collectors")["score"]


# --------------------------------------------------------------------------- tokens


def _seed_token(store: Store, user_id: int, created_on: int) -> int:
    access_id = "seed" + secrets.token_hex(8)
    store.sql(
        "INSERT INTO api_tokens (user_id, kind, access_id, access_key_enc, bearer_hash, status, note, created_on, "
        f"created_by, recent_ips) VALUES ({user_id}, 'bearer', '{access_id}', NULL, '{secrets.token_hex(32)}', 2, "
        f"'imported', {created_on}, 'import', '[]')"
    )
    return int(store.sql_scalar(f"SELECT id FROM api_tokens WHERE access_id = '{access_id}'"))


def test_tokens(center: Center) -> None:
    store = center.store
    today = now_ms()

    # No expiry: every token made by the CLI. The fix's API call gives one (the auditor's
    # own first, so that the section has compliant tokens).
    r = center.report()
    for tok in (center.bearer, center.lmv1):
        f = one(r, "token.no-expiry", "token", tok.id)
        assert f["severity"] == "low" and f["fix"]["api"]["method"] == "PATCH"
        assert f["fix"]["api"]["path"] == f"/santaba/rest/setting/admins/{center.auditor['id']}/apitokens/{tok.id}"
    before = section(r, "api-tokens")
    f = one(r, "token.no-expiry", "token", center.bearer.id)
    assert_error(center.apply_api(f["fix"], {"expiresOn": int(time.time()) - 10}), 400)
    assert center.apply_api(f["fix"]).status_code == 200
    assert center.apply_api(one(r, "token.no-expiry", "token", center.lmv1.id)["fix"]).status_code == 200
    r = center.report()
    gone(r, "token.no-expiry", "token", center.bearer.id)
    assert section(r, "api-tokens")["score"] > before["score"]
    listed = center.ok("GET", f"/santaba/rest/setting/admins/{center.auditor['id']}/apitokens")["items"]
    assert {t["id"]: t["expiresOn"] for t in listed}[center.bearer.id] == f["fix"]["api"]["body"]["expiresOn"]
    center.audit("token.expiry", f"API token {center.bearer.id} ")

    # The support account's token, imported from an older installation.
    support_id = int(store.sql_scalar("SELECT id FROM users WHERE username = 'palisade-support'"))
    support_token = _seed_token(store, support_id, today - 3 * DAY_MS)
    # A holder of the built-in administrator role with a token: refused by the portal, so the
    # role is granted behind its back, as an imported database would hold it.
    legacy = center.user("legacy-admin", local=False)
    legacy_token = center.cli_token(legacy["username"])
    admin_role = int(store.sql_scalar("SELECT id FROM roles WHERE name = 'administrator'"))
    store.sql(f"INSERT INTO user_roles (user_id, role_id) VALUES ({legacy['id']}, {admin_role})")
    refused = center.call("POST", f"/santaba/rest/setting/admins/{legacy['id']}/apitokens", {"note": "x"})
    assert_error(refused, 403)
    # A custom role holding every privilege of administrator (the portal allows it).
    admin_privs = [r_ for r_ in center.ok("GET", "/santaba/rest/setting/roles", params={"size": 100})["items"]
                   if r_["name"] == "administrator"][0]["privileges"]
    everything = unique("everything-")
    args = ["role", "add", everything]
    for p in admin_privs:
        args += ["--privilege", f"{p['objectType']}:{p['objectId']}:{p['operation']}"]
    role = store.cli_json(*args)
    ops_bot = center.user("ops-bot", local=False, role=everything)
    ops_token = center.cli_token(ops_bot["username"])
    # A token unused for 100 days (created 120 days ago).
    stale = center.user("stale-bot", local=False)
    stale_token = center.cli_token(stale["username"])
    store.sql(f"UPDATE api_tokens SET created_on = {today - 120 * DAY_MS}, last_used_on = {today - 100 * DAY_MS} "
              f"WHERE id = {stale_token}")

    r = center.report()
    f_support = one(r, "token.support-owner", "token", support_token)
    f_admin = one(r, "token.administrator-owner", "token", legacy_token)
    f_equiv = one(r, "token.administrator-equivalent-role", "token", ops_token)
    f_stale = one(r, "token.unused", "token", stale_token)
    assert f_support["severity"] == f_admin["severity"] == "critical" and f_equiv["severity"] == "high"
    assert f_support["since"] == (today - 3 * DAY_MS) // 1000
    assert f"`{everything}` (id {role['id']})" in f_equiv["detail"]
    assert f_stale["severity"] == "medium" and f_stale["since"] == (today - 100 * DAY_MS) // 1000
    assert "100 days ago" in f_stale["detail"]
    for f, owner in ((f_support, support_id), (f_admin, legacy["id"]), (f_equiv, ops_bot["id"])):
        assert f["fix"]["cli"] == f"palisade token migrate {f['object']['id']}"
        assert f["fix"]["api"] == {
            "method": "PATCH", "path": f"/santaba/rest/setting/admins/{owner}/apitokens/{f['object']['id']}",
            "body": {"status": 1}, "note": f["fix"]["api"]["note"],
        }
    assert f_stale["fix"]["cli"] is None and f_stale["fix"]["api"]["body"] == {"status": 1}

    # `palisade token migrate` belongs to the migration assistant; its API half (disable the
    # old token) is what the portal carries out here. Each fix removes its findings and raises
    # the score.
    for f in (f_support, f_admin, f_equiv, f_stale):
        score = section(r, "api-tokens")["score"]
        assert center.apply_api(f["fix"]).status_code == 200
        r = center.report()
        assert not findings(r, None, "token", f["object"]["id"]), findings(r, None, "token", f["object"]["id"])
        assert section(r, "api-tokens")["score"] > score, (f["rule"], section(r, "api-tokens"))
        assert any(e["object"]["id"] == f["object"]["id"] and e["reason"].startswith("disabled") for e in r["exempt"])


# --------------------------------------------------------------------------- custom modules


def _script_datasource(name: str, source: str | None) -> dict:
    collector: dict[str, Any] = {"method": "script", "script": "check.sh", "keys": {"Ok": "ok"}}
    if source is not None:
        collector["source"] = source
    return {
        "name": name, "collectMethod": "script", "collectInterval": 300, "hasMultiInstances": False,
        "collector": collector, "dataPoints": [{"name": "Ok", "type": "gauge"}],
    }


def test_custom_modules(center: Center, tmp_path) -> None:
    root_name = unique("NeedsRoot").replace("-", "_")
    created = center.ok("POST", "/santaba/rest/setting/datasources",
                        _script_datasource(root_name, "#!/bin/sh\nsudo smartctl -a /dev/sda >/dev/null && echo ok=1\n"))
    bare_name = unique("Unreviewed").replace("-", "_")
    bare = center.ok("POST", "/santaba/rest/setting/datasources", _script_datasource(bare_name, None))
    r = center.report()
    f_root = one(r, "module.needs-elevation", "datasource", created["id"])
    assert f_root["severity"] == "high" and "line 2: elevation" in f_root["detail"]
    assert f_root["fix"]["api"]["method"] == "POST"
    assert f_root["fix"]["api"]["path"] == "/santaba/rest/setting/datasources/import"
    assert f_root["fix"]["cli"] == f"palisade datasource import {root_name}.json"
    f_bare = one(r, "module.unreviewed", "datasource", bare["id"])
    assert f_bare["severity"] == "medium" and f_bare["fix"]["cli"] == f"palisade datasource import {bare_name}.json"
    before = section(r, "custom-modules")

    # API fix: the exported definition, its script rewritten without sudo, imported again.
    exported = center.call("GET", f"/santaba/rest/setting/datasources/{created['id']}/export")
    assert exported.status_code == 200
    definition = json.loads(exported.text)
    definition["collector"]["source"] = "#!/bin/sh\nsmartctl -H /dev/sda >/dev/null && echo ok=1\n"
    resp = center.call(f_root["fix"]["api"]["method"], f_root["fix"]["api"]["path"], data=json.dumps(definition))
    assert resp.status_code == 200, resp.text
    r = center.report()
    gone(r, "module.needs-elevation", "datasource", created["id"])
    mid = section(r, "custom-modules")
    assert mid["score"] > before["score"]

    # CLI fix: the definition file with its source, imported with the command the fix names.
    path = tmp_path / f"{bare_name}.json"
    path.write_text(json.dumps(_script_datasource(bare_name, "#!/bin/sh\necho ok=1\n")))
    command = f_bare["fix"]["cli"].split()
    assert command[:3] == ["palisade", "datasource", "import"]
    center.store.cli_json(*command[1:3], str(path))
    r = center.report()
    gone(r, "module.unreviewed", "datasource", bare["id"])
    assert section(r, "custom-modules")["score"] > mid["score"]


# --------------------------------------------------------------------------- exports


def _keys(report: dict) -> set[tuple[str, str, int]]:
    return {(f["rule"], f["object"]["kind"], f["object"]["id"]) for f in report["findings"]}


def test_exports_and_the_cli_report(center: Center) -> None:
    # Make sure there is something in every state: a finding, an excepted object, exempt ones.
    formula = '=HYPERLINK("http://attacker.example","open me")'
    cid, _ = center.collector(formula, windows_report("export-win.example", admin=True))
    center.ok("PATCH", f"/santaba/rest/setting/collector/collectors/{cid}",
              {"complianceException": {"justification": "legacy Exchange counters"}})
    center.user("export-late")

    report = center.report()
    resp = center.call("GET", "/api/compliance", params={"format": "csv"})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in resp.headers["Content-Disposition"] and ".csv" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert list(rows[0].keys())[:8] == ["status", "section", "mandate", "rule", "severity", "objectKind", "objectId", "objectName"]
    assert {(r_["rule"], r_["objectKind"], int(r_["objectId"])) for r_ in rows if r_["status"] == "finding"} == _keys(report)
    by_id = {f"{r_['rule']}/{r_['objectKind']}/{r_['objectId']}": r_ for r_ in rows if r_["status"] == "finding"}
    for f in report["findings"]:
        row = by_id[f["id"]]
        assert row["severity"] == f["severity"] and int(row["since"]) == f["since"]
        assert row["fixLink"] == f["fix"]["link"] and row["fixCli"] == (f["fix"]["cli"] or "")
        assert row["fixApiPath"] == ((f["fix"]["api"] or {}).get("path") or "")
    excepted = [r_ for r_ in rows if r_["status"] == "excepted" and int(r_["objectId"]) == cid]
    # a name a spreadsheet would run as a formula stays text
    assert len(excepted) == 1 and excepted[0]["objectName"] == "'" + formula
    assert "legacy Exchange counters" in excepted[0]["detail"]
    assert len([r_ for r_ in rows if r_["status"] == "exempt"]) == len(report["exempt"])

    text = center.call("GET", "/api/compliance", params={"format": "text"})
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert "Windows collectors without Administrator (mandate 3)" in text.text

    # The CLI on the same store while serve runs: the same report in three formats.
    cli_json = center.store.cli_json("compliance", "report", "--format", "json")
    assert _keys(cli_json) == _keys(center.report())
    assert [s["id"] for s in cli_json["sections"]] == [s["id"] for s in report["sections"]]
    cli_csv = center.store.cli("compliance", "report", "--format", "csv")
    assert cli_csv.returncode == 0, cli_csv.stderr
    cli_rows = list(csv.DictReader(io.StringIO(cli_csv.stdout)))
    assert {(r_["rule"], r_["objectKind"], int(r_["objectId"])) for r_ in cli_rows if r_["status"] == "finding"} == _keys(cli_json)
    cli_text = center.store.cli("compliance", "report", "--format", "text")
    assert cli_text.returncode == 0, cli_text.stderr
    assert "Two-factor authentication for local users (mandate 1)" in cli_text.stdout
    assert "cli:    palisade token migrate" in cli_text.stdout or "api:    PATCH" in cli_text.stdout
    for out in (json.dumps(cli_json), cli_csv.stdout, cli_text.stdout):
        assert center.bearer.secret not in out and center.lmv1.secret not in out
    bad = center.store.cli("compliance", "report", "--format", "xml")
    assert bad.returncode != 0


# --------------------------------------------------------------------------- history


def _shift_snapshots(store: Store, ms: int) -> None:
    if store.backend == "sqlite":
        store.sql(
            f"UPDATE compliance_snapshots SET data = json_set(data, '$.takenOn', json_extract(data, '$.takenOn') - {ms}), "
            "lookup = CASE WHEN lookup IS NULL THEN NULL ELSE 'daily:moved-' || id END"
        )
    else:
        store.sql(
            "UPDATE compliance_snapshots SET data = jsonb_set(data::jsonb, '{takenOn}', "
            f"to_jsonb((data::jsonb->>'takenOn')::bigint - {ms}))::text, "
            "lookup = CASE WHEN lookup IS NULL THEN NULL ELSE 'daily:moved-' || id END"
        )


def test_history(center: Center) -> None:
    store = center.store
    # serve took the first daily snapshot when it started.
    history = center.ok("GET", "/api/compliance/history")
    assert history["total"] >= 1 and history["items"][0]["trigger"] == "daily"
    for item in history["items"]:
        assert [s["id"] for s in item["sections"]] == [
            "two-factor", "linux-collectors", "windows-collectors", "api-tokens", "custom-modules"
        ]
        assert item["overall"]["id"] == "overall"
    count = history["total"]

    # Within a day, reports add nothing; an on-demand snapshot is taken at once.
    center.report()
    assert center.ok("GET", "/api/compliance/history")["total"] == count
    taken = center.ok("POST", "/api/compliance/history")
    assert taken["trigger"] == "on-demand" and abs(taken["takenOn"] - time.time()) < 60
    history = center.ok("GET", "/api/compliance/history")
    assert history["total"] == count + 1 and history["items"][-1]["id"] == taken["id"]
    report = center.report()
    assert {s["id"]: s["score"] for s in taken["sections"]} == {s["id"]: s["score"] for s in report["sections"]}

    # Two days later (the stored snapshots moved back), computing the report takes one.
    _shift_snapshots(store, 2 * DAY_MS)
    assert center.ok("GET", "/api/compliance/history", params={"days": 1})["total"] == 0
    center.report()
    history = center.ok("GET", "/api/compliance/history")
    assert history["total"] == count + 2 and history["items"][-1]["trigger"] == "report"
    center.report()
    assert center.ok("GET", "/api/compliance/history")["total"] == count + 2
    assert center.ok("GET", "/api/compliance/history", params={"days": 1})["total"] == 1
    times = [i["takenOn"] for i in history["items"]]
    assert times == sorted(times)
    assert_error(center.call("GET", "/api/compliance/history", params={"days": "-3"}), 400)

    csv_resp = center.call("GET", "/api/compliance/history", params={"format": "csv"})
    assert csv_resp.status_code == 200 and csv_resp.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert len(rows) == 6 * history["total"]
    assert {r_["section"] for r_ in rows} == {"overall", "two-factor", "linux-collectors", "windows-collectors",
                                               "api-tokens", "custom-modules"}

    # The CLI: history in three formats, and an on-demand snapshot.
    cli_history = store.cli_json("compliance", "history")
    assert cli_history["total"] == history["total"]
    snap = store.cli_json("compliance", "snapshot")
    assert snap["trigger"] == "on-demand"
    assert store.cli_json("compliance", "history", "--days", "1")["total"] == 2
    text = store.cli("compliance", "history", "--format", "text")
    assert text.returncode == 0 and "[on-demand] overall" in text.stdout and "api-tokens" in text.stdout
    out = store.cli("compliance", "history", "--format", "csv")
    assert out.returncode == 0
    assert len(list(csv.DictReader(io.StringIO(out.stdout)))) == 6 * (history["total"] + 1)
