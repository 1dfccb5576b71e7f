"""Authentication, authorisation and input-validation failures, over raw HTTP.

Requests are signed by our own LMv1 signer (palisade_harness.lmv1_signature,
written from the LM v3 reference §1.1 and checked against its test vectors),
not by the server's code nor the SDK's. One server per backend is shared by
the module; the privileged `automation` LMv1 token also reads the audit log.
"""

from __future__ import annotations

import secrets
import time

import pytest

from palisade_harness import (
    STRONG_PASSWORD,
    Token,
    assert_audited,
    assert_error,
    lmv1_authorization,
    lmv1_signature,
    role_id_by_name,
    unique,
    user_by_name,
)

KINDS = ("lmv1", "bearer")


def priv(spec: str) -> dict:
    object_type, object_id, operation = spec.split(":")
    return {"objectType": object_type, "objectId": object_id, "operation": operation}


def missing_id_path() -> str:
    """A never-existing user path, unique per call, to find its audit entry."""
    return f"/setting/admins/{900000000 + secrets.randbelow(99999999)}"


def create_token(rest, admin_id: int, kind: str, note: str = "e2e") -> Token:
    params = {"type": "bearer"} if kind == "bearer" else None
    data = rest.ok("POST", f"/setting/admins/{admin_id}/apitokens", json_body={"note": note}, params=params)
    tok = Token.from_api(data, kind)
    tok.admin_id = admin_id
    return tok


def make_api_user(rest, privileges: list[str], kind: str = "lmv1", prefix: str = "af"):
    role = rest.ok("POST", "/setting/roles", json_body={"name": unique(f"{prefix}-role-"), "privileges": [priv(p) for p in privileges]})
    username = unique(f"{prefix}-")
    user = rest.ok(
        "POST",
        "/setting/admins",
        json_body={"username": username, "email": f"{username}@example.com", "roles": [{"id": role["id"]}], "apionly": True},
    )
    return role, user, create_token(rest, user["id"], kind)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


# --------------------------------------------------------------------------- signer


def test_signer_matches_reference_vectors():
    epoch = "1700000000000"
    assert (
        lmv1_authorization("AID123", "testkey", "GET", "", "/setting/admins/2", epoch)
        == "LMv1 AID123:OWE1ODJkNDk5OWJhZThjNTFlMWE4OTc2NmIyNThjYmFjMmU1YzU5NzIzYTIzZmU5MDU5ZTdiMjEzOGViZDJhNA==:1700000000000"
    )
    body = '{"username": "carol", "email": "c@example.com", "roles": [{"id": 1}]}'
    assert lmv1_signature("testkey", "POST", epoch, body, "/setting/admins") == (
        "MDBkN2Q3YjRmNGQ2NmUxMDljODQxYTZlYjhkODU2ZTBjY2IwOTFiODY0MDJkNDUxZTc5MzU0NjAwNjUzZGE3YQ=="
    )
    assert lmv1_signature("testkey", "DELETE", epoch, "{}", "/setting/admins/5") == (
        "NmFkODI2MTA3MjlhZDZmYjA5NGUwOTlkOWZiMjExNmUwOTIyMjk1MzUwZmM3ZmRiMGZhNDZkZDkwMDQwZmUzMA=="
    )
    assert lmv1_signature("testkey", "PATCH", epoch, '{"status": "suspended"}', "/setting/admins/5") == (
        "MDA1ZmUwMWJjYzZmZjc1MzVjYjY2Y2U3NDdhMGQ2MGMxNTg1ZTFhM2E4NDIzNTUyOTMzOGQwY2VjYTMxZmJmNQ=="
    )


# --------------------------------------------------------------------------- accepted


def test_valid_signature_accepted_with_rate_headers(portal, kind):
    resp = portal.server.rest(portal.token(kind)).call("GET", "/setting/admins", params={"size": 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) >= {"total", "searchId", "items"}
    assert len(body["items"]) <= 2 and body["total"] >= 3
    for h in ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Window"):
        assert resp.headers.get(h, "").isdigit(), f"{h} missing on a normal response: {dict(resp.headers)}"
    assert resp.headers["X-Rate-Limit-Window"] == "60"
    assert int(resp.headers["X-Rate-Limit-Remaining"]) < int(resp.headers["X-Rate-Limit-Limit"])


# --------------------------------------------------------------------------- 401


def test_bad_signature_401(portal):
    rest = portal.server.rest()
    path = missing_id_path()
    wrong_key = Token("lmv1", None, "not-the-key", portal.lmv1.access_id)
    assert_error(rest.call("GET", path, token=wrong_key), 401, 1401)
    assert_audited(portal.rest, method="GET", path=path, status=401)

    # body changed after signing: refused, and nothing is created
    name = unique("tampered-")
    resp = rest.call(
        "POST",
        "/setting/roles",
        token=portal.lmv1,
        json_body={"name": name, "privileges": []},
        sign_body='{"name": "something-else", "privileges": []}',
    )
    assert_error(resp, 401, 1401)
    assert portal.rest.get("/setting/roles", params={"filter": f'name:"{name}"'})["total"] == 0

    # signed over another path
    assert_error(rest.call("GET", "/setting/admins", token=portal.lmv1, sign_path="/setting/roles"), 401, 1401)
    # signed with another method
    assert_error(rest.call("GET", "/setting/admins", authorization=lmv1_authorization(
        portal.lmv1.access_id, portal.lmv1.secret, "POST", "", "/setting/admins")), 401, 1401)


def test_stale_and_future_timestamps_401(portal):
    rest = portal.server.rest(portal.lmv1)
    now_ms = int(time.time() * 1000)
    old_path = missing_id_path()
    assert_error(rest.call("GET", old_path, epoch_ms=str(now_ms - 31 * 60 * 1000)), 401, 1401)
    assert_audited(portal.rest, method="GET", path=old_path, status=401)
    future_path = missing_id_path()
    assert_error(rest.call("GET", future_path, epoch_ms=str(now_ms + 31 * 60 * 1000)), 401, 1401)
    assert_audited(portal.rest, method="GET", path=future_path, status=401)
    # inside the ±30 min window: authenticated (404 for the missing user, not 401)
    assert_error(rest.call("GET", missing_id_path(), epoch_ms=str(now_ms - 29 * 60 * 1000)), 404, 1404)
    assert_error(rest.call("GET", missing_id_path(), epoch_ms=str(now_ms + 29 * 60 * 1000)), 404, 1404)


def test_missing_authorization_401(portal):
    path = missing_id_path()
    assert_error(portal.server.rest().call("GET", path, token=None), 401, 1401)
    assert_audited(portal.rest, method="GET", path=path, status=401)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "LMv1",
        "LMv1 garbage",
        "LMv1 onlyid:sig",
        "LMv1 {aid}:{sig}:not-a-number",
        "LMv1 NOSUCHACCESSID:{sig}:{now}",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        "Bearer pal_doesnotexist0000000000000000",
        "Bearer {secret}",
    ],
    ids=["empty", "scheme-only", "no-colons", "two-parts", "bad-epoch", "unknown-id", "basic", "bearer-empty",
         "bearer-unknown", "lmv1-key-as-bearer"],
)
def test_malformed_or_unknown_credentials_401(portal, header):
    now = str(int(time.time() * 1000))
    sig = lmv1_signature(portal.lmv1.secret, "GET", now, "", "/setting/admins")
    value = header.format(aid=portal.lmv1.access_id, sig=sig, now=now, secret=portal.lmv1.secret)
    resp = portal.server.rest().call("GET", "/setting/admins", authorization=value)
    assert_error(resp, 401, 1401)


def test_disabled_and_deleted_token_401(portal, kind):
    rest = portal.rest
    _, user, tok = make_api_user(rest, ["setting:useraccess:read"], kind)
    client = portal.server.rest(tok)
    assert client.call("GET", "/setting/admins").status_code == 200
    base = f"/setting/admins/{user['id']}/apitokens/{tok.id}"

    rest.ok("PATCH", base, json_body={"status": 1})
    path = missing_id_path()
    assert_error(client.call("GET", path), 401, 1401)
    assert_audited(rest, method="GET", path=path, status=401)

    rest.ok("PATCH", base, json_body={"status": 2})
    assert client.call("GET", "/setting/admins").status_code == 200

    rest.ok("DELETE", base)
    path = missing_id_path()
    assert_error(client.call("GET", path), 401, 1401)
    assert_audited(rest, method="GET", path=path, status=401)
    # a deleted token is gone from the listings
    assert_error(rest.call("PATCH", base, json_body={"status": 2}), 404, 1404)


# --------------------------------------------------------------------------- 403


def test_missing_privilege_and_role_losing_privilege_403(portal, kind):
    rest = portal.rest
    role, _, tok = make_api_user(rest, ["setting:useraccess:read"], kind)
    client = portal.server.rest(tok)
    assert client.call("GET", "/setting/admins").status_code == 200
    # read does not imply write
    assert_error(client.call("POST", "/setting/roles", json_body={"name": unique("x-"), "privileges": []}), 403, 1403)
    # no setting:accesslogs:read
    assert_error(client.call("GET", "/setting/accesslogs"), 403, 1403)

    rest.ok("PATCH", f"/setting/roles/{role['id']}", json_body={"privileges": [priv("setting:accesslogs:read")]})
    path = missing_id_path()
    assert_error(client.call("GET", path), 403, 1403)
    assert_audited(rest, method="GET", path=path, status=403)
    assert client.call("GET", "/setting/accesslogs", params={"size": 1}).status_code == 200


def test_owner_made_administrator_by_db_edit_403(portal, kind):
    rest, store = portal.rest, portal.store
    _, user, tok = make_api_user(rest, ["setting:useraccess:read"], kind)
    client = portal.server.rest(tok)
    assert client.call("GET", "/setting/admins").status_code == 200
    store.sql(
        "INSERT INTO user_roles (user_id, role_id) SELECT u.id, r.id FROM users u, roles r "
        f"WHERE u.username = '{user['username']}' AND r.name = 'administrator'"
    )
    try:
        path = missing_id_path()
        assert_error(client.call("GET", path), 403, 1403)
        assert_audited(rest, method="GET", path=path, status=403)
        assert_error(client.call("GET", "/setting/admins"), 403, 1403)
    finally:
        store.sql(
            "DELETE FROM user_roles WHERE user_id = (SELECT id FROM users WHERE username = "
            f"'{user['username']}') AND role_id = (SELECT id FROM roles WHERE name = 'administrator')"
        )


def test_token_creation_refused_for_admin_holders_and_support(portal):
    rest, store = portal.rest, portal.store
    admin = user_by_name(rest, "admin")
    support = user_by_name(rest, "palisade-support")
    for target, why in ((admin, "administrator"), (support, "support")):
        path = f"/setting/admins/{target['id']}/apitokens"
        for params in (None, {"type": "bearer"}):
            # also with a caller that holds every privilege of administrator
            for caller in (rest, portal.super_rest()):
                err = assert_error(caller.call("POST", path, json_body={"note": "nope"}, params=params), 403, 1403)
                assert why in err["errorMessage"].lower(), err
        assert_audited(rest, method="POST", path=path, status=403)
        assert rest.get(path)["total"] == 0

    # a user holding administrator among other roles
    sup = portal.super_rest()
    admin_role = role_id_by_name(rest, "administrator")
    username = unique("dual-")
    dual = sup.ok(
        "POST",
        "/setting/admins",
        json_body={"username": username, "email": f"{username}@example.com", "password": STRONG_PASSWORD,
                   "roles": [{"id": portal.basic_role["id"]}, {"id": admin_role}]},
    )
    try:
        err = assert_error(sup.call("POST", f"/setting/admins/{dual['id']}/apitokens", json_body={}), 403, 1403)
        assert "administrator" in err["errorMessage"].lower(), err
        res = store.cli("token", "create", username)
        assert res.returncode != 0 and "administrator" in res.stderr.lower(), res
    finally:
        sup.ok("DELETE", f"/setting/admins/{dual['id']}")

    for args in (("admin",), ("admin", "--bearer")):
        res = store.cli("token", "create", *args)
        assert res.returncode != 0, f"CLI created a token for an administrator: {res.stdout}"
        assert "administrator" in res.stderr.lower(), f"refusal should say why: {res.stderr!r}"
        assert "accessKey" not in res.stdout and "bearerToken" not in res.stdout
    for args in (("palisade-support",), ("palisade-support", "--bearer")):
        res = store.cli("token", "create", *args)
        assert res.returncode != 0, f"CLI created a token for the support user: {res.stdout}"
        assert "support" in res.stderr.lower(), f"refusal should say why: {res.stderr!r}"
        assert "accessKey" not in res.stdout and "bearerToken" not in res.stdout
    assert rest.get(f"/setting/admins/{admin['id']}/apitokens")["total"] == 0
    assert rest.get(f"/setting/admins/{support['id']}/apitokens")["total"] == 0


def test_granting_privileges_one_does_not_hold_refused(portal):
    """`automation` (useraccess write, accesslogs read) cannot hand out more than it holds."""
    rest = portal.rest
    admin_role = role_id_by_name(rest, "administrator")
    username = unique("escalate-")
    body = {"username": username, "email": f"{username}@example.com", "roles": [{"id": admin_role}], "apionly": True}
    assert_error(rest.call("POST", "/setting/admins", json_body=body), 403, 1403)
    assert_error(
        rest.call("POST", "/setting/roles", json_body={"name": unique("esc-"), "privileges": [{"objectType": "setting", "objectId": "*", "operation": "manage"}]}),
        403,
        1403,
    )
    assert rest.get("/setting/admins", params={"filter": f'username:"{username}"'})["total"] == 0


def test_assigning_administrator_to_token_holder_refused(portal):
    rest, sup = portal.rest, portal.super_rest()
    admin_role = role_id_by_name(rest, "administrator")
    role, user, tok = make_api_user(rest, ["setting:useraccess:read"])
    uid = user["id"]
    both = [{"id": role["id"]}, {"id": admin_role}]

    err = assert_error(sup.call("PATCH", f"/setting/admins/{uid}", json_body={"roles": both}), 403, 1403)
    assert "token" in err["errorMessage"].lower(), err
    full = {"username": user["username"], "email": user["email"], "roles": both, "apionly": True}
    err = assert_error(sup.call("PUT", f"/setting/admins/{uid}", json_body=full), 403, 1403)
    assert "token" in err["errorMessage"].lower(), err
    assert_audited(rest, method="PATCH", path=f"/setting/admins/{uid}", status=403)
    after = rest.get(f"/setting/admins/{uid}")
    assert {r["name"] for r in after["roles"]} == {role["name"]}
    assert portal.server.rest(tok).call("GET", "/setting/admins").status_code == 200

    # once the user has no token left, the role change is allowed; then no new token
    rest.ok("DELETE", f"/setting/admins/{uid}/apitokens/{tok.id}")
    try:
        patched = sup.ok("PATCH", f"/setting/admins/{uid}", json_body={"roles": both})
        assert "administrator" in {r["name"] for r in patched["roles"]}
        err = assert_error(sup.call("POST", f"/setting/admins/{uid}/apitokens", json_body={}), 403, 1403)
        assert "administrator" in err["errorMessage"].lower(), err
    finally:
        sup.ok("PATCH", f"/setting/admins/{uid}", json_body={"roles": [{"id": role["id"]}]})


def _active_administrators(rest) -> list[dict]:
    users = rest.list_all("/setting/admins")
    return [u for u in users if u.get("status") == "active" and "administrator" in {r["name"] for r in u["roles"]}]


def test_last_active_administrator_cannot_be_removed(portal):
    rest, sup = portal.rest, portal.super_rest()
    admin = user_by_name(rest, "admin")
    assert [u["username"] for u in _active_administrators(rest)] == ["admin"]

    refusals = [
        sup.call("DELETE", f"/setting/admins/{admin['id']}"),
        sup.call("PATCH", f"/setting/admins/{admin['id']}", json_body={"status": "suspended"}),
        # taking the role away leaves no active administrator either
        sup.call("PATCH", f"/setting/admins/{admin['id']}", json_body={"roles": [{"id": portal.basic_role["id"]}]}),
    ]
    for resp in refusals:
        err = assert_error(resp, 403, 1403)
        assert "administrator" in err["errorMessage"].lower(), err
    still = rest.get(f"/setting/admins/{admin['id']}")
    assert still["status"] == "active" and "administrator" in {r["name"] for r in still["roles"]}

    # with a second active administrator, one of them may be suspended ...
    admin_role = role_id_by_name(rest, "administrator")
    username = unique("admin2-")
    admin2 = sup.ok(
        "POST",
        "/setting/admins",
        json_body={"username": username, "email": f"{username}@example.com", "password": STRONG_PASSWORD,
                   "roles": [{"id": admin_role}]},
    )
    try:
        assert sup.ok("PATCH", f"/setting/admins/{admin2['id']}", json_body={"status": "suspended"})["status"] == "suspended"
        # ... but then `admin` is the last active one again
        assert_error(sup.call("PATCH", f"/setting/admins/{admin['id']}", json_body={"status": "suspended"}), 403, 1403)
        assert_error(sup.call("DELETE", f"/setting/admins/{admin['id']}"), 403, 1403)
    finally:
        sup.ok("DELETE", f"/setting/admins/{admin2['id']}")
    assert rest.get(f"/setting/admins/{admin['id']}")["status"] == "active"


# --------------------------------------------------------------------------- 400 / 404 / 409


@pytest.mark.parametrize(
    "case",
    ["too-short", "too-long", "same-as-username", "common"],
)
def test_password_policy_on_create_400(portal, case):
    rest = portal.rest
    basic = portal.basic_role["id"]
    username = unique("policyuser-")
    password = {
        "too-short": "Xq7!mK2#pL9",  # 11
        "too-long": "Aa1!" * 32 + "x",  # 129
        "same-as-username": username,
        "common": "password1234",
    }[case]
    body = {"username": username, "email": f"{username}@example.com", "roles": [{"id": basic}], "password": password}
    err = assert_error(rest.call("POST", "/setting/admins", json_body=body), 400, 1400)
    assert "password" in err["errorMessage"].lower(), err
    assert rest.get("/setting/admins", params={"filter": f'username:"{username}"'})["total"] == 0


def test_password_policy_bounds_and_change_password(portal):
    rest = portal.rest
    basic = portal.basic_role["id"]
    for password in ("Xq7!mK2#pL9v", ("Aa1!" * 32)):  # 12 and 128 characters
        username = unique("pwok-")
        body = {"username": username, "email": f"{username}@example.com", "roles": [{"id": basic}], "password": password}
        created = rest.ok("POST", "/setting/admins", json_body=body)
        assert not created.get("password")

    uid = created["id"]
    err = assert_error(
        rest.call("PATCH", f"/setting/admins/{uid}", params={"changePassword": "True"}, json_body={"password": "short"}), 400, 1400
    )
    assert "password" in err["errorMessage"].lower()
    assert_error(
        rest.call("PATCH", f"/setting/admins/{uid}", params={"changePassword": "true"}, json_body={"password": "password1234"}),
        400,
        1400,
    )
    ok = rest.ok("PATCH", f"/setting/admins/{uid}", params={"changePassword": "True"}, json_body={"password": STRONG_PASSWORD})
    assert not ok.get("password")
    # a password without ?changePassword=true is not applied silently: never a 5xx
    resp = rest.call("PATCH", f"/setting/admins/{uid}", json_body={"password": "Another-Strong-Pass-77", "phone": "+15550002222"})
    assert resp.status_code < 500, resp.text
    assert "Another-Strong-Pass-77" not in resp.text


def test_duplicates_409(portal):
    rest = portal.rest
    basic = portal.basic_role["id"]
    username = unique("dup-")
    body = {"username": username, "email": f"{username}@example.com", "roles": [{"id": basic}], "apionly": True}
    rest.ok("POST", "/setting/admins", json_body=body)
    assert_error(rest.call("POST", "/setting/admins", json_body=body), 409, 1409)
    assert_error(rest.call("POST", "/setting/admins", json_body={**body, "username": "admin"}), 409, 1409)

    name = unique("dup-role-")
    rest.ok("POST", "/setting/roles", json_body={"name": name, "privileges": []})
    assert_error(rest.call("POST", "/setting/roles", json_body={"name": name, "privileges": []}), 409, 1409)
    assert_error(rest.call("POST", "/setting/roles", json_body={"name": "administrator", "privileges": []}), 409, 1409)
    # renaming onto an existing name is a duplicate too
    other = rest.ok("POST", "/setting/roles", json_body={"name": unique("dup-role-"), "privileges": []})
    assert_error(rest.call("PATCH", f"/setting/roles/{other['id']}", json_body={"name": name}), 409, 1409)


def test_unknown_paths_and_ids_404(portal):
    rest = portal.rest
    assert_error(rest.call("GET", "/setting/no-such-resource"), 404, 1404)
    assert_error(rest.call("GET", missing_id_path()), 404, 1404)
    assert_error(rest.call("GET", "/setting/roles/987654321"), 404, 1404)
    assert_error(rest.call("PATCH", "/setting/roles/987654321", json_body={"description": "x"}), 404, 1404)
    assert_error(rest.call("DELETE", missing_id_path()), 404, 1404)
    assert_error(rest.call("GET", "/setting/admins/987654321/apitokens"), 404, 1404)


def test_bad_input_400(portal):
    rest = portal.rest
    basic = portal.basic_role["id"]
    assert_error(rest.call("POST", "/setting/admins", data='{"username": "broken",'), 400, 1400)
    assert_error(rest.call("POST", "/setting/admins", data="not json at all"), 400, 1400)
    username = unique("badtype-")
    assert_error(
        rest.call("POST", "/setting/admins", json_body={"username": username, "email": "x@example.com", "roles": "e2e-basic"}),
        400,
        1400,
    )
    assert_error(
        rest.call("POST", "/setting/admins", json_body={"email": "x@example.com", "roles": [{"id": basic}], "apionly": True}),
        400,
        1400,
    )
    assert_error(rest.call("POST", "/setting/roles", json_body={"privileges": []}), 400, 1400)
    assert_error(rest.call("GET", "/setting/admins", params={"size": "abc"}), 400, 1400)
    assert_error(rest.call("GET", "/setting/admins", params={"filter": 'username:"unterminated'}), 400, 1400)


# --------------------------------------------------------------------------- signing quirks


def _throwaway_user(portal) -> dict:
    rest = portal.rest
    basic = portal.basic_role["id"]
    username = unique("quirk-")
    return rest.ok(
        "POST", "/setting/admins",
        json_body={"username": username, "email": f"{username}@example.com", "roles": [{"id": basic}], "apionly": True},
    )


def test_delete_and_empty_body_signing_quirks(portal):
    rest = portal.rest
    # the SDK: DELETE sends `{}` and signs `{}`
    u = _throwaway_user(portal)
    resp = rest.call("DELETE", f"/setting/admins/{u['id']}", data="{}", sign_body="{}")
    assert resp.status_code == 200, resp.text
    # fallback: body `{}` signed as empty
    u = _throwaway_user(portal)
    resp = rest.call("DELETE", f"/setting/admins/{u['id']}", data="{}", sign_body="")
    assert resp.status_code == 200, resp.text
    # third-party clients: no body at all, signed as empty
    u = _throwaway_user(portal)
    resp = rest.call("DELETE", f"/setting/admins/{u['id']}", data=b"", sign_body="")
    assert resp.status_code == 200, resp.text
    assert_error(rest.call("GET", f"/setting/admins/{u['id']}"), 404, 1404)

    # PATCH without a body: the SDK signs "" and sends `{}`
    u = _throwaway_user(portal)
    resp = rest.call("PATCH", f"/setting/admins/{u['id']}", data="{}", sign_body="")
    assert resp.status_code == 200, resp.text
    # POST (token creation) with `{}` signed as empty
    resp = rest.call("POST", f"/setting/admins/{u['id']}/apitokens", data="{}", sign_body="")
    assert resp.status_code == 200, resp.text
    assert resp.json().get("accessKey")

    # but a non-empty body signed as empty is refused
    assert_error(
        rest.call("PATCH", f"/setting/admins/{u['id']}", json_body={"phone": "+15550003333"}, sign_body=""), 401, 1401
    )


def test_percent_encoded_path_signed_decoded(portal):
    rest = portal.rest
    u = _throwaway_user(portal)
    encoded = "".join(f"%{ord(ch):02X}" for ch in str(u["id"]))
    # URL carries /setting/admins/%3x%3y..., signature covers /setting/admins/<id>
    resp = rest.call("GET", f"/setting/admins/{encoded}")
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == u["id"]

    # the SDK's case: a string id with a space (or a slash), sent as %20 (%2F)
    for path in ("/setting/accesslogs/no%20such%20entry", "/setting/accesslogs/a%2Fb"):
        resp = rest.call("GET", path)  # signed over unquote(path)
        assert resp.status_code in (400, 404), f"signature over the decoded path refused: {resp.status_code} {resp.text}"
        assert_error(resp, resp.status_code)
    # and that route does check the signature
    wrong = Token("lmv1", None, "not-the-key", portal.lmv1.access_id)
    assert_error(rest.call("GET", "/setting/accesslogs/no%20such%20entry", token=wrong), 401, 1401)
