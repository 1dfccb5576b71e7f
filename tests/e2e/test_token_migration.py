"""Token import and the token migration assistant, on both storage backends.

- `palisade token import` loads an administrator's LMv1 token (and a Bearer token) from an
  "older system" under its original owner: the secret on stdin, stored sealed / hashed, the
  token flagged (`imported`, `violatesMandate`) and audited; it keeps working (flagged) while
  `token.imported_violating_until` allows.
- The imported token is used through the unmodified `logicmonitor-sdk` (list the devices of
  one group, add a device property, list collectors); `palisade token migrate ID` proposes
  exactly `host_group:<group>:write` and `setting:collectorgroup.*:read` (prompt mode with
  answers on stdin, and `--yes`), creates an API-only user, a role and a token of the same
  kind; the new token does the same calls and nothing else (403).
- Retirement: disable (the old token answers 401), the grace period (moved with SQL on the
  migration record), deletion by `--finish` or by `serve`'s periodic check; a token used
  during its grace period is kept and its calls reported; every step is in the audit log.
- An administrator-equivalent proposal is refused with an explanation.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import Any, Iterator

import pytest

from palisade_harness import Rest, Store, Token, new_store, sdk_status, unique

DAY_MS = 86_400_000
SETUP_PRIVILEGES = ("host_group:*:manage", "setting:collectorgroup.*:write")


def lm_like_key(n: int = 40) -> str:
    """An access key as another LogicMonitor-style system issues it (not Palisade's format)."""
    alphabet = string.ascii_letters + string.digits + "+=-_[]{}()!"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def lm_like_access_id() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(20))


class Env:
    """One server; `automation` (user access write + audit log read) reads; `setup` made the
    objects the imported tokens touch: device group `group_id` holding device `device_id`,
    another group `other_group` with device `other_device`, and a collector."""

    def __init__(self, store: Store):
        self.store = store
        self.server = store.serve()
        boot = store.bootstrap_automation()
        self.reader: Rest = self.server.rest(boot["lmv1"])
        args = ["role", "add", "e2e-setup"]
        for p in SETUP_PRIVILEGES:
            args += ["--privilege", p]
        store.cli_json(*args)
        store.cli_json("user", "add", "setup", "--email", "setup@example.com", "--role", "e2e-setup", "--api-only")
        setup = self.server.rest(Token.from_cli(store.cli_json("token", "create", "setup")))
        self.group_id = setup.ok("POST", "/device/groups", json_body={"name": unique("apps-"), "parentId": 1})["id"]
        self.other_group = setup.ok("POST", "/device/groups", json_body={"name": unique("db-"), "parentId": 1})["id"]
        self.device_id = setup.ok(
            "POST", "/device/devices",
            json_body={"name": "127.0.0.9", "displayName": unique("app-"), "preferredCollectorId": 0, "hostGroupIds": str(self.group_id)},
        )["id"]
        self.other_device = setup.ok(
            "POST", "/device/devices",
            json_body={"name": "127.0.0.10", "displayName": unique("db-"), "preferredCollectorId": 0, "hostGroupIds": str(self.other_group)},
        )["id"]
        setup.ok("POST", "/setting/collector/collectors", json_body={"description": unique("col-")})

    # ---- helpers
    def import_lmv1(self, owner: str = "admin", **kw: Any) -> tuple[Token, dict]:
        access_id, key = lm_like_access_id(), lm_like_key()
        res = self.store.cli("token", "import", owner, "--access-id", access_id, "--source", "old-portal", input=key + "\n", **kw)
        assert res.returncode == 0, f"import failed: {res.stdout} {res.stderr}"
        assert key not in res.stdout + res.stderr, "the secret must not be echoed"
        data = res.json()
        return Token("lmv1", data["id"], key, access_id), data

    def import_bearer(self, owner: str = "admin") -> tuple[Token, dict]:
        secret = "lmb_" + secrets.token_urlsafe(32)
        res = self.store.cli("token", "import", owner, "--bearer", input=secret + "\n")
        assert res.returncode == 0, f"import failed: {res.stdout} {res.stderr}"
        data = res.json()
        return Token("bearer", data["id"], secret, data["accessId"]), data

    def flush_audit(self) -> None:
        # Reading the audit log waits for queued call records.
        self.reader.get("/setting/accesslogs", params={"size": 1})

    def token_listing(self, token_id: int) -> dict | None:
        items = self.reader.list_all("/setting/admins/apitokens")
        hits = [t for t in items if t["id"] == token_id]
        return hits[0] if hits else None

    def audit(self, needle: str) -> list[dict]:
        self.flush_audit()
        return [e for e in self.reader.list_all("/setting/accesslogs") if needle in (e.get("description") or "")]

    def backdate_disable(self, token_id: int, days: int) -> None:
        self.store.sql(
            f"UPDATE token_migrations SET disabled_on = disabled_on - {days * DAY_MS} WHERE old_token_id = {token_id}"
        )

    def migrate(self, token_id: int, *args: str, input: str | None = None) -> Any:
        res = self.store.cli("token", "migrate", str(token_id), *args, input=input)
        assert res.returncode == 0, f"migrate {args} failed rc={res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        return res

    def the_three_calls(self, token: Token) -> None:
        """List the devices of one group, add a device property, list collectors (SDK)."""
        import logicmonitor_sdk as lm

        api = self.server.sdk(token)
        members = api.get_immediate_device_list_by_device_group_id(self.group_id)
        assert [d.id for d in members.items] == [self.device_id]
        prop = api.add_device_property(self.device_id, lm.EntityProperty(name=unique("tag."), value="x"))
        assert prop.value == "x"
        assert api.get_collector_list(size=50).total >= 1


@pytest.fixture(scope="module")
def env(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with new_store(backend, tmp_path_factory) as store:
        yield Env(store)


def trail(env: Env, token_id: int) -> list[str]:
    """The migration's audit actions about one token, oldest first."""
    mentions = re.compile(rf"token {token_id}\b")
    env.flush_audit()
    entries = env.reader.list_all("/setting/accesslogs")
    return [
        e["action"] for e in reversed(entries)
        if e.get("action") in TRAIL_ACTIONS and mentions.search(e.get("description") or "")
    ]


TRAIL_ACTIONS = {
    "token.import", "role.create", "user.create", "token.create", "token.migration.start",
    "token.migration.disable", "token.migration.regrace", "token.migration.kept", "token.migration.delete",
}


def expected(env: Env) -> list[str]:
    return sorted([f"host_group:{env.group_id}:write", "setting:collectorgroup.*:read"])


# --------------------------------------------------------------------------- import


def test_import_flags_and_keeps_an_administrators_token_working(env: Env) -> None:
    old, data = env.import_lmv1()
    assert data["imported"] is True
    assert data["violatesMandate"] == "owner holds the administrator role"
    assert data["adminName"] == "admin" and data["accessId"] == old.access_id
    assert data["accessKey"] == ""
    # Stored sealed, never in clear; flagged in the listing; audited at once.
    assert old.secret.encode() not in env.store.dump_all()
    listed = env.token_listing(old.id)
    assert listed and listed["imported"] is True and listed["violatesMandate"] == "owner holds the administrator role"
    assert listed["retirement"] is None
    imports = [e for e in env.audit(f"Imported LMv1 API token {old.id} ") if e.get("action") == "token.import"]
    assert imports and "breaks the token mandate" in imports[0]["description"]
    # It works (flagged) ...
    env.the_three_calls(old)
    # ... until the deadline setting says otherwise, and again when it is lifted.
    env.store.cli_json("settings", "set", "token.imported_violating_until", "2020-01-01")
    assert sdk_status(env.server.sdk(old).get_collector_list) == 403
    err = env.server.rest(old).call("GET", "/setting/collector/collectors")
    assert err.status_code == 403 and f"palisade token migrate {old.id}" in err.json()["errorMessage"]
    env.store.cli_json("settings", "set", "token.imported_violating_until", "none")
    assert env.server.sdk(old).get_collector_list().total >= 1
    # A created token for an administrator is still refused: import is the only way in.
    res = env.store.cli("token", "create", "admin")
    assert res.returncode != 0 and "administrator" in res.stderr


def test_import_refuses_secrets_on_the_command_line_and_duplicates(env: Env) -> None:
    res = env.store.cli("token", "import", "admin", "--access-id", lm_like_access_id(), "--secret", "x" * 20)
    assert res.returncode != 0  # no such option: secrets never go through argv
    res = env.store.cli("token", "import", "admin", "--access-id", lm_like_access_id(), input="\n")
    assert res.returncode != 0 and "no secret" in res.stderr
    tok, _ = env.import_lmv1()
    res = env.store.cli("token", "import", "admin", "--access-id", tok.access_id, input=lm_like_key() + "\n")
    assert res.returncode != 0 and "already exists" in res.stderr


# --------------------------------------------------------------------------- migration, prompt mode


def test_migrate_prompt_mode_new_token_and_deletion(env: Env) -> None:
    old, _ = env.import_lmv1()
    env.the_three_calls(old)
    env.flush_audit()

    # The proposal, exactly.
    dry = env.migrate(old.id, "--dry-run").json()
    assert sorted(p["text"] for p in dry["privileges"]) == expected(env)
    assert dry["canConfirm"] is True and dry["refusal"] is None
    assert dry["violatesMandate"] == "owner holds the administrator role"
    by_text = {p["text"]: p for p in dry["privileges"]}
    group_calls = {(c["method"], c["path"]) for c in by_text[f"host_group:{env.group_id}:write"]["covers"]}
    assert group_calls == {
        ("GET", f"/santaba/rest/device/groups/{env.group_id}/devices"),
        ("POST", f"/santaba/rest/device/devices/{env.device_id}/properties"),
    }
    collectors = by_text["setting:collectorgroup.*:read"]
    assert collectors["covers"][0]["count"] >= 1 and collectors["covers"][0]["lastSeenOn"] > 0
    assert "list call" in " ".join(collectors["notes"])
    assert dry["refused"] == [] and dry["failedAuthentication"] == 0

    # Prompt mode: "no" changes nothing ...
    res = env.store.cli("token", "migrate", str(old.id), input="n\n")
    assert res.returncode != 0 and "nothing was changed" in res.stderr
    assert f"host_group:{env.group_id}:write" in res.stderr and "setting:collectorgroup.*:read" in res.stderr
    assert env.token_listing(old.id)["retirement"] is None
    # ... "yes" creates the role, the API-only user and a new LMv1 token (secret once).
    res = env.migrate(old.id, input="y\n")
    started = res.json()
    assert "Create role" in res.stderr
    new = Token.from_cli(started["token"])
    assert new.kind == "lmv1" and new.secret.startswith("palk_")
    assert sorted(p["text"] for p in started["role"]["privileges"]) == expected(env)
    user = env.reader.get(f"/setting/admins/{started['user']['id']}")
    assert user["apionly"] is True and [r["name"] for r in user["roles"]] == [started["role"]["name"]]
    assert started["migration"]["state"] == "retiring" and started["migration"]["replacedBy"] == new.id

    # The new token does the same calls, and nothing else.
    env.the_three_calls(new)
    api = env.server.sdk(new)
    assert sdk_status(api.get_admin_list) == 403
    assert sdk_status(api.get_device_by_id, env.other_device) == 404  # another group: not visible
    assert sdk_status(api.add_device_group, __import__("logicmonitor_sdk").DeviceGroup(name=unique("x"), parent_id=1)) == 403

    # Retiring: the old token still works and shows where it is.
    listed = env.token_listing(old.id)
    assert listed["retirement"]["state"] == "retiring" and listed["retirement"]["replacedBy"] == new.id
    assert env.token_listing(new.id)["replaces"] == old.id
    assert env.server.sdk(old).get_collector_list().total >= 1
    # A second start is refused.
    again = env.store.cli("token", "migrate", str(old.id), "--yes")
    assert again.returncode == 0 and again.json()["state"] == "retiring"

    # Disable (confirmed on stdin): the old token's calls now fail.
    status = env.migrate(old.id, "--confirm-disable", input="y\n").json()
    assert status["state"] == "disabled" and status["graceDays"] == 14 and status["deleteAfter"]
    assert env.token_listing(old.id)["status"] == 1
    assert env.token_listing(old.id)["retirement"]["state"] == "disabled"

    # Within the grace period: waiting.
    out = env.migrate(old.id, "--finish").json()
    assert out["outcome"] == "waiting"
    # After it, unused: deleted.
    env.backdate_disable(old.id, 15)
    out = env.migrate(old.id, "--finish").json()
    assert out["outcome"] == "deleted" and out["migration"]["state"] == "deleted"
    assert env.token_listing(old.id) is None
    assert env.server.rest(old).call("GET", "/setting/collector/collectors").status_code == 401
    env.the_three_calls(new)

    # The audit trail, in order.
    assert trail(env, old.id) == [
        "token.import", "role.create", "user.create", "token.create", "token.migration.start",
        "token.migration.disable", "token.migration.delete",
    ]
    deleted = env.audit(f"Deleted API token {old.id} ")
    assert deleted and deleted[0]["action"] == "token.migration.delete"
    assert env.store.cli_json("audit", "verify")["ok"] is True


# --------------------------------------------------------------------------- silent mode, Bearer, use during grace


def test_migrate_silent_bearer_kept_when_used_during_grace(env: Env) -> None:
    old, data = env.import_bearer()
    assert data["type"] == "bearer" and data["violatesMandate"] == "owner holds the administrator role"
    env.the_three_calls(old)
    env.flush_audit()

    started = env.migrate(old.id, "--yes").json()
    new = Token.from_cli(started["token"])
    assert new.kind == "bearer" and new.secret.startswith("pal_")
    assert sorted(p["text"] for p in started["role"]["privileges"]) == expected(env)
    env.the_three_calls(new)

    env.migrate(old.id, "--confirm-disable", "--yes")
    # Something still uses the old token after it was disabled.
    resp = env.server.rest(old).call("GET", "/setting/collector/collectors")
    assert resp.status_code == 401
    env.flush_audit()
    env.backdate_disable(old.id, 15)
    out = env.migrate(old.id, "--finish").json()
    assert out["outcome"] == "kept", out
    used = {(c["method"], c["path"]): c for c in out["usedBy"]}
    hit = used[("GET", "/santaba/rest/setting/collector/collectors")]
    assert hit["count"] == 1 and hit["ips"] == ["127.0.0.1"] and hit["statuses"] == [401]
    assert out["migration"]["usedDuringGrace"]["count"] == 1
    assert env.token_listing(old.id) is not None, "a token used during its grace period is not deleted"
    kept = env.audit(f"Kept disabled API token {old.id}:")
    assert kept and kept[0]["action"] == "token.migration.kept"
    # Checking again reports again but audits only new uses.
    env.migrate(old.id, "--finish")
    assert len(env.audit(f"Kept disabled API token {old.id}:")) == 1

    # After switching the last user, confirming again restarts the grace period; serve's
    # periodic check (first run a few seconds after start) deletes the token once it passed.
    status = env.migrate(old.id, "--confirm-disable", "--yes").json()
    assert status["state"] == "disabled" and status["usedDuringGrace"] is None and status["deleteAfter"]
    env.backdate_disable(old.id, 15)
    env.server.stop()
    env.server = env.store.serve()
    env.reader = env.server.rest(env.reader.token)
    deadline = time.monotonic() + 30
    while env.token_listing(old.id) is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert env.token_listing(old.id) is None, "serve's periodic check did not delete the retired token"
    st = env.migrate(old.id, "--status").json()
    assert st["state"] == "deleted"
    deleted = env.audit(f"Deleted API token {old.id} ")
    assert deleted and deleted[0]["username"] == "System:TokenRetirementCheck"
    assert trail(env, old.id) == [
        "token.import", "role.create", "user.create", "token.create", "token.migration.start",
        "token.migration.disable", "token.migration.kept", "token.migration.regrace", "token.migration.delete",
    ]


# --------------------------------------------------------------------------- API and refusals


def test_api_proposal_and_administrator_equivalent_refusal(env: Env) -> None:
    old, _ = env.import_lmv1()
    rest = env.server.rest(old)
    # Calls that together need everything Palisade enforces (bad bodies: nothing is created).
    for method, path in [
        ("POST", "/setting/admins"),
        ("POST", "/setting/datasources"),
        ("POST", "/setting/collector/groups"),
        ("POST", "/device/devices"),
    ]:
        assert rest.call(method, path, json_body={}).status_code == 400
    assert rest.call("GET", "/setting/accesslogs", params={"size": 1}).status_code == 200
    env.flush_audit()
    proposal = env.reader.get(f"/setting/admins/apitokens/{old.id}/migration/proposal", params={"days": 7})
    assert proposal["administratorEquivalent"] is True and proposal["canConfirm"] is False
    assert "administrator in all but name" in proposal["refusal"]
    res = env.store.cli("token", "migrate", str(old.id), "--yes")
    assert res.returncode != 0 and "administrator in all but name" in res.stderr
    # Through the API too (the automation user could not grant these anyway).
    resp = env.reader.call("POST", f"/setting/admins/apitokens/{old.id}/migration", json_body={})
    assert resp.status_code == 403 and "administrator in all but name" in resp.json()["errorMessage"]
    assert env.reader.call("GET", f"/setting/admins/apitokens/{old.id}/migration").status_code == 404


def test_api_start_needs_the_privileges_it_grants(env: Env) -> None:
    old, _ = env.import_lmv1()
    env.the_three_calls(old)
    env.flush_audit()
    proposal = env.reader.get(f"/setting/admins/apitokens/{old.id}/migration/proposal")
    assert sorted(p["text"] for p in proposal["privileges"]) == expected(env)
    # `automation` holds user access, not host groups: it cannot hand them out.
    resp = env.reader.call(
        "POST", f"/setting/admins/apitokens/{old.id}/migration",
        json_body={"privileges": [p["text"] for p in proposal["privileges"]]},
    )
    assert resp.status_code == 403 and "cannot grant" in resp.json()["errorMessage"]
    # A stale proposal is refused.
    resp = env.reader.call(
        "POST", f"/setting/admins/apitokens/{old.id}/migration", json_body={"privileges": ["setting:accesslogs:read"]}
    )
    assert resp.status_code == 409
    listing = env.reader.get("/setting/admins/apitokens/migrations")
    assert all(m["tokenId"] != old.id for m in listing["items"])
