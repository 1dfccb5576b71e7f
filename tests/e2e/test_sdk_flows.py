"""Acceptance flows through the unmodified `logicmonitor-sdk` 3.0.256.

For each backend one server is shared by the whole module; every flow runs
twice, authenticated with an LMv1 token and with a Bearer token of the CLI-
bootstrapped API-only `automation` user (custom role: setting:useraccess:write
+ setting:accesslogs:read).
"""

from __future__ import annotations

import time

import pytest

from palisade_harness import STRONG_PASSWORD, Token, sdk_status, unique

KINDS = ("lmv1", "bearer")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def api(portal, kind):
    return portal.server.sdk(portal.token(kind))


def priv(spec: str) -> dict:
    object_type, object_id, operation = spec.split(":")
    return {"objectType": object_type, "objectId": object_id, "operation": operation}


def role_named(api, name: str):
    page = api.get_role_list(filter=f'name:"{name}"', size=50)
    matches = [r for r in page.items if r.name == name]
    assert len(matches) == 1, f"role {name!r}: {page}"
    return matches[0]


def admin_named(api, username: str):
    page = api.get_admin_list(filter=f'username:"{username}"', size=50)
    matches = [a for a in page.items if a.username == username]
    assert len(matches) == 1, f"user {username!r}: {page}"
    return matches[0]


def role_names(admin) -> set[str]:
    return {r.name for r in (admin.roles or [])}


def all_audit_entries(api) -> list:
    out, offset = [], 0
    while True:
        page = api.get_audit_log_list(size=1000, offset=offset)
        out.extend(page.items)
        offset += len(page.items)
        if len(page.items) < 1000 or offset >= page.total:
            return out


# --------------------------------------------------------------------------- built-ins


def test_builtin_roles_and_users(api, portal):
    roles = api.get_role_list(size=1000)
    names = {r.name for r in roles.items}
    assert {"administrator", "manager", "ackonly", "readonly", "automation-role"} <= names
    assert roles.total == len(roles.items)
    for r in roles.items:
        assert isinstance(r.privileges, list)

    automation = role_named(api, "automation-role")
    granted = {(p.object_type, p.object_id, p.operation) for p in automation.privileges}
    assert granted == {("setting", "useraccess", "write"), ("setting", "accesslogs", "read")}

    admin = admin_named(api, "admin")
    assert "administrator" in role_names(admin)
    assert admin.status == "active"
    assert not admin.password

    support = admin_named(api, "palisade-support")
    assert support.status != "active", "the support user must be created disabled"

    me = admin_named(api, "automation")
    assert me.apionly is True
    assert role_names(me) == {"automation-role"}


# --------------------------------------------------------------------------- users


def test_user_crud_filter_paging(api, kind, portal):
    basic = role_named(api, "e2e-basic")  # a role automation may grant
    prefix = unique(f"flow{kind}")
    created = []
    for i in range(5):
        username = f"{prefix}-{i}"
        body = {
            "username": username,
            "email": f"{username}@example.com",
            "roles": [{"id": basic.id}],
            "firstName": "Flow",
            "lastName": str(i),
        }
        if i < 3:
            body["password"] = STRONG_PASSWORD
        else:
            body["apionly"] = True
        admin = api.add_admin(body)
        assert isinstance(admin.id, int)
        assert admin.username == username
        assert admin.email == f"{username}@example.com"
        assert role_names(admin) == {"e2e-basic"}
        assert not admin.password, "a password must never be echoed back"
        assert bool(admin.apionly) == (i >= 3)
        created.append(admin)
    ids = {a.id for a in created}
    assert len(ids) == 5

    # filter: contains, equality, AND, OR over values
    page = api.get_admin_list(filter=f'username~"{prefix}"', size=1000)
    assert page.total == 5
    assert {a.id for a in page.items} == ids
    one = api.get_admin_list(filter=f'username:"{prefix}-3"')
    assert one.total == 1 and one.items[0].id == created[3].id
    both = api.get_admin_list(filter=f'username~"{prefix}",lastName:"2"')
    assert both.total == 1 and both.items[0].id == created[2].id
    either = api.get_admin_list(filter=f'username:"{prefix}-0"|"{prefix}-1"')
    assert {a.id for a in either.items} == {created[0].id, created[1].id} and either.total == 2
    none = api.get_admin_list(filter=f'username:"{prefix}-nope"')
    assert none.total == 0 and none.items == []

    # paging: size + offset, constant total, no duplicates, full coverage
    seen: list[int] = []
    for offset, expected in ((0, 2), (2, 2), (4, 1), (6, 0)):
        page = api.get_admin_list(filter=f'username~"{prefix}"', size=2, offset=offset)
        assert page.total == 5, (offset, page.total)
        assert len(page.items) == expected, (offset, [a.username for a in page.items])
        seen += [a.id for a in page.items]
    assert sorted(seen) == sorted(ids)

    # `fields` must still carry the SDK's required fields (username, email, roles)
    slim = api.get_admin_list(filter=f'username~"{prefix}"', fields="id,username", size=1000)
    assert {a.id for a in slim.items} == ids

    # get
    target = created[1]
    got = api.get_admin_by_id(target.id)
    assert (got.id, got.username, got.email) == (target.id, target.username, target.email)
    assert role_names(got) == {"e2e-basic"}

    # patch: only the given fields change
    patched = api.patch_admin_by_id(target.id, {"email": f"new-{target.username}@example.org", "phone": "+15551230001"})
    assert patched.email == f"new-{target.username}@example.org"
    assert patched.phone == "+15551230001"
    assert patched.username == target.username and role_names(patched) == {"e2e-basic"}
    again = api.get_admin_by_id(target.id)
    assert again.email == patched.email and again.phone == "+15551230001" and again.first_name == "Flow"

    # put (full update)
    put = api.update_admin_by_id(
        target.id,
        {"username": target.username, "email": patched.email, "roles": [{"id": basic.id}], "firstName": "Put", "lastName": "Full"},
    )
    assert put.first_name == "Put" and put.last_name == "Full"

    # delete
    for victim in created[3:]:
        api.delete_admin_by_id(victim.id)
        assert sdk_status(api.get_admin_by_id, victim.id) == 404
    page = api.get_admin_list(filter=f'username~"{prefix}"', size=1000)
    assert page.total == 3
    assert {a.id for a in page.items} == {a.id for a in created[:3]}


def test_default_page_size_is_50(portal):
    api = portal.server.sdk(portal.lmv1)
    basic = role_named(api, "e2e-basic")  # a role automation may grant
    prefix = unique("page")
    for i in range(52):
        api.add_admin(
            {"username": f"{prefix}-{i:02d}", "email": f"{prefix}-{i}@example.com", "roles": [{"id": basic.id}], "apionly": True}
        )
    page = api.get_admin_list(filter=f'username~"{prefix}"')
    assert page.total == 52
    assert len(page.items) == 50
    page = api.get_admin_list(filter=f'username~"{prefix}"', size=1000)
    assert len(page.items) == 52


# --------------------------------------------------------------------------- roles


def test_role_crud(api, kind):
    name = unique(f"flow-role-{kind}-")
    role = api.add_role(
        {"name": name, "description": "e2e role", "privileges": [priv("setting:useraccess:read")]}
    )
    assert isinstance(role.id, int) and role.name == name and role.description == "e2e role"
    assert [(p.object_type, p.object_id, p.operation) for p in role.privileges] == [("setting", "useraccess", "read")]

    listed = api.get_role_list(filter=f'name:"{name}"')
    assert listed.total == 1 and listed.items[0].id == role.id
    all_roles = api.get_role_list(size=1000)
    paged = api.get_role_list(size=1, offset=1)
    assert paged.total == all_roles.total and len(paged.items) == 1
    assert paged.items[0].id == all_roles.items[1].id

    got = api.get_role_by_id(role.id)
    assert got.name == name and got.description == "e2e role"

    patched = api.patch_role_by_id(role.id, {"description": "patched"})
    assert patched.description == "patched" and patched.name == name
    assert [(p.object_type, p.object_id, p.operation) for p in patched.privileges] == [("setting", "useraccess", "read")]

    patched = api.patch_role_by_id(role.id, {"privileges": [priv("setting:accesslogs:read")]})
    assert [(p.object_type, p.object_id, p.operation) for p in patched.privileges] == [("setting", "accesslogs", "read")]

    put = api.update_role_by_id(
        role.id,
        {"name": name + "-put", "description": "put", "privileges": [priv("setting:useraccess:read"), priv("setting:accesslogs:read")]},
    )
    assert put.name == name + "-put" and put.description == "put" and len(put.privileges) == 2
    assert api.get_role_by_id(role.id).name == name + "-put"

    api.delete_role_by_id(role.id)
    assert sdk_status(api.get_role_by_id, role.id) == 404
    assert api.get_role_list(filter=f'name:"{name}-put"').total == 0


# --------------------------------------------------------------------------- tokens


def _make_service_user(api, kind: str):
    role = api.add_role({"name": unique(f"svc-role-{kind}-"), "privileges": [priv("setting:useraccess:read")]})
    username = unique(f"svc-{kind}-")
    user = api.add_admin(
        {"username": username, "email": f"{username}@example.com", "roles": [{"id": role.id}], "apionly": True}
    )
    return role, user


def _token_from_sdk(t, kind: str) -> Token:
    assert t.access_key, "the secret must be returned once, at creation"
    return Token(kind, t.id, t.access_key, t.access_id, t.admin_id)


def test_token_lifecycle(api, kind, portal):
    server = portal.server
    _, user = _make_service_user(api, kind)

    t1 = api.add_api_token_by_admin_id(user.id, {"note": "lmv1 one"})
    t2 = api.add_api_token_by_admin_id(user.id, {"note": "bearer one"}, type="bearer")
    for t in (t1, t2):
        assert isinstance(t.id, int)
        assert t.admin_id == user.id
        assert t.status == 2
    assert t1.access_id and t1.access_key and t1.access_key != t1.access_id
    assert t2.access_key.startswith("pal_"), "Bearer secret is returned in accessKey"
    lm = _token_from_sdk(t1, "lmv1")
    br = _token_from_sdk(t2, "bearer")

    # both work, with exactly the role's privileges (read, not write)
    for tok in (lm, br):
        client = server.sdk(tok)
        assert client.get_admin_list(size=1).total >= 1
        assert sdk_status(client.add_role, {"name": unique("nope-"), "privileges": []}) == 403

    # listing per user: no secrets, owner + usage recorded
    listed = api.get_api_token_list_by_admin_id(user.id)
    assert listed.total == 2
    by_id = {t.id: t for t in listed.items}
    assert set(by_id) == {t1.id, t2.id}
    assert by_id[t1.id].note == "lmv1 one" and by_id[t2.id].note == "bearer one"
    assert by_id[t1.id].access_id == t1.access_id
    for t in listed.items:
        assert not t.access_key, "a token secret must never be returned again"
        assert t.admin_id == user.id and t.admin_name == user.username
        assert t.status == 2
        assert t.created_on
        assert t.last_used_on, "first use must be recorded"
        assert t.last_auth_ip == "127.0.0.1"

    # listing over all users, filtered by owner
    mine = api.get_api_token_list(filter=f'adminName:"{user.username}"', size=1000)
    assert mine.total == 2 and {t.id for t in mine.items} == {t1.id, t2.id}
    assert all(t.admin_name == user.username and not t.access_key for t in mine.items)
    everyone = api.get_api_token_list(size=1000)
    assert {t1.id, t2.id, portal.lmv1.id, portal.bearer.id} <= {t.id for t in everyone.items}

    # note
    renamed = api.patch_api_token_by_admin_id(user.id, t1.id, {"note": "renamed"})
    assert renamed.note == "renamed" and not renamed.access_key
    assert server.sdk(lm).get_admin_list(size=1).total >= 1

    for tok, tid in ((lm, t1.id), (br, t2.id)):
        client = server.sdk(tok)
        # disable -> 401; enable -> works again
        assert api.patch_api_token_by_admin_id(user.id, tid, {"status": 1}).status == 1
        assert sdk_status(client.get_admin_list, size=1) == 401
        assert api.patch_api_token_by_admin_id(user.id, tid, {"status": 2}).status == 2
        assert client.get_admin_list(size=1).total >= 1
        # disable, watch, delete -> 401
        api.patch_api_token_by_admin_id(user.id, tid, {"status": 1})
        status_of = {t.id: t.status for t in api.get_api_token_list_by_admin_id(user.id).items}
        assert status_of[tid] == 1
        api.delete_api_token_by_id(user.id, tid)
        assert sdk_status(client.get_admin_list, size=1) == 401
    assert api.get_api_token_list_by_admin_id(user.id).total == 0

    # a newly created token works
    extra = {"type": "bearer"} if kind == "bearer" else {}
    t3 = api.add_api_token_by_admin_id(user.id, {"note": "replacement"}, **extra)
    fresh = _token_from_sdk(t3, kind)
    assert server.sdk(fresh).get_admin_by_id(user.id).username == user.username
    assert [t.id for t in api.get_api_token_list_by_admin_id(user.id).items] == [t3.id]


# --------------------------------------------------------------------------- audit log


def test_audit_log(api, kind, portal):
    basic = role_named(api, "e2e-basic")  # a role automation may grant
    username = unique(f"audited-{kind}-")
    user = api.add_admin({"username": username, "email": f"{username}@example.com", "roles": [{"id": basic.id}], "apionly": True})
    api.get_admin_by_id(user.id)
    api.patch_admin_by_id(user.id, {"phone": "+15550001111"})
    before_read = int(time.time())

    entries = all_audit_entries(api)
    assert entries, "audit log is empty"
    for e in entries:
        assert isinstance(e.id, str) and e.id
        assert e.description

    def calls(method: str, path: str) -> list:
        return [
            e
            for e in entries
            if method in e.description
            and path in e.description
            and f"{path}/" not in e.description
            and "200" in e.description.replace(path, "")
            and e.ip == "127.0.0.1"
            and e.username == "automation"
        ]

    get_hits = calls("GET", f"/setting/admins/{user.id}")
    patch_hits = calls("PATCH", f"/setting/admins/{user.id}")
    post_hits = calls("POST", "/setting/admins")
    assert get_hits, "GET /setting/admins/{id} not audited with ip 127.0.0.1"
    assert patch_hits, "PATCH /setting/admins/{id} not audited with ip 127.0.0.1"
    assert post_hits, "POST /setting/admins not audited with ip 127.0.0.1"
    for e in get_hits + patch_hits:
        assert abs(e.happened_on - before_read) < 600, "happenedOn must be epoch seconds"

    # user changes get their own entries, naming the affected user
    assert any(username in e.description for e in entries), "no change entry naming the created user"

    # get by id
    entry = get_hits[-1]
    one = api.get_audit_log_by_id(entry.id)
    assert (one.id, one.username, one.ip, one.description, one.happened_on) == (
        entry.id, entry.username, entry.ip, entry.description, entry.happened_on
    )
    assert sdk_status(api.get_audit_log_by_id, "999999999") == 404

    # filter + paging on the audit log
    mine = api.get_audit_log_list(filter='username:"automation"', size=5)
    assert len(mine.items) == 5 and mine.total >= len(get_hits + patch_hits + post_hits)
    assert all(e.username == "automation" for e in mine.items)

    # raw shape: id is a JSON string, happenedOn a number
    raw = portal.rest.get(f"/setting/accesslogs/{entry.id}")
    assert isinstance(raw["id"], str) and isinstance(raw["happenedOn"], int)


# --------------------------------------------------------------------------- raw list options


def test_list_sort_and_fields_raw(portal):
    """`sort` is not in SDK 3.0.256 but the API takes it (`+f` / `-f`)."""
    rest = portal.rest
    prefix = unique("sort")
    for i in range(3):
        rest.ok(
            "POST",
            "/setting/admins",
            json_body={"username": f"{prefix}-{i}", "email": f"{prefix}{i}@example.com",
                       "roles": [{"id": portal.basic_role["id"]}], "apionly": True},
        )
    flt = f'username~"{prefix}"'
    down = [u["id"] for u in rest.get("/setting/admins", params={"filter": flt, "sort": "-id"})["items"]]
    up = [u["id"] for u in rest.get("/setting/admins", params={"filter": flt, "sort": "+id"})["items"]]
    assert len(up) == 3 and up == sorted(up) and down == sorted(up, reverse=True)

    slim = rest.get("/setting/admins", params={"filter": flt, "fields": "id,username"})
    assert slim["total"] == 3
    for item in slim["items"]:
        assert {"id", "username"} <= set(item)
        # the SDK needs its required fields even when `fields` leaves them out
        assert {"email", "roles"} <= set(item)
