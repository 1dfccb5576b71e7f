"""Operating the portal: first start, master key, health, TLS, signals, rate
limits, trusted proxies, the audit chain and the CLI next to a running server.

The module shares one bootstrapped store per backend; each test starts the
server(s) it needs with its own flags and stops them (SIGTERM, exit 0).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import time
from typing import Iterator

import pytest
import requests

from palisade_harness import (
    FIRST_ADMIN_RE,
    Server,
    Store,
    Token,
    assert_audited,
    assert_error,
    find_audit,
    make_tls_cert,
    new_store,
    sdk_client,
    unique,
)

RATE_HEADERS = ("X-Rate-Limit-Limit", "X-Rate-Limit-Remaining", "X-Rate-Limit-Window")


class Ops:
    def __init__(self, store: Store, boot: dict):
        self.store = store
        self.lmv1: Token = boot["lmv1"]
        self.bearer: Token = boot["bearer"]
        self.role = boot["role"]

    def new_tokens(self) -> tuple[Token, Token]:
        """A new API-only user (automation role) with one LMv1 and one Bearer token, via the CLI."""
        username = unique("ops-")
        self.store.cli_json("user", "add", username, "--email", f"{username}@example.com", "--role", self.role["name"], "--api-only")
        lmv1 = Token.from_cli(self.store.cli_json("token", "create", username))
        bearer = Token.from_cli(self.store.cli_json("token", "create", username, "--bearer"))
        return lmv1, bearer

    @contextlib.contextmanager
    def serving(self, *args: str, **kw) -> Iterator[Server]:
        srv = self.store.serve(*args, **kw)
        try:
            yield srv
        finally:
            if srv.running:
                srv.stop()


@pytest.fixture(scope="module")
def ops(backend, tmp_path_factory) -> Iterator[Ops]:
    with new_store(backend, tmp_path_factory) as store:
        first = store.serve()
        boot = store.bootstrap_automation()
        first.stop()
        yield Ops(store, boot)


def _missing_path() -> str:
    return f"/setting/admins/{800000000 + int.from_bytes(os.urandom(3), 'big')}"


# --------------------------------------------------------------------------- first start


def test_first_start_prints_admin_password_once(fresh_store):
    srv = fresh_store.serve()
    m = srv.wait_stdout(FIRST_ADMIN_RE)
    assert m, f"no first-administrator line on stdout: {srv.stdout()!r}"
    assert m.group(1) == "admin"
    password = m.group(2)
    assert len(password) >= 12
    assert len(FIRST_ADMIN_RE.findall(srv.stdout())) == 1
    srv.stop()
    assert password not in srv.stderr(), "the one-time password must not reach the logs"
    assert password.encode() not in fresh_store.dump_all(), "the password must not be stored in clear"

    again = fresh_store.serve()
    time.sleep(0.5)
    assert requests.get(again.base + "/healthz", timeout=5).status_code == 200
    again.stop()
    assert "first administrator" not in again.stdout()
    assert "password=" not in again.stdout()
    assert password not in again.stdout() + again.stderr()


def test_master_key_created_with_mode_0600(ops):
    key = ops.store.data_dir / "master.key"
    assert key.is_file(), f"no master.key in {ops.store.data_dir}"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.stat().st_size > 0


def test_token_secrets_not_stored_in_clear(ops):
    dump = ops.store.dump_all()
    assert ops.lmv1.secret.encode() not in dump, "LMv1 access keys must be encrypted at rest"
    assert ops.bearer.secret.encode() not in dump, "Bearer tokens must be stored only as hashes"


def test_master_key_file_env(ops, tmp_path):
    default_key = ops.store.data_dir / "master.key"
    moved = tmp_path / "elsewhere" / "palisade-master.key"
    moved.parent.mkdir()
    shutil.move(str(default_key), str(moved))
    try:
        with ops.serving(env={"PALISADE_MASTER_KEY_FILE": str(moved)}) as srv:
            # LMv1 keys are decrypted with the key from the env-named file
            assert srv.rest(ops.lmv1).call("GET", "/setting/admins").status_code == 200
        assert not default_key.exists(), "with PALISADE_MASTER_KEY_FILE set, no key is created in the data dir"
    finally:
        if default_key.exists():
            default_key.unlink()
        shutil.move(str(moved), str(default_key))


# --------------------------------------------------------------------------- health, signals


def test_healthz_without_auth(ops):
    with ops.serving() as srv:
        r = requests.get(srv.base + "/healthz", timeout=5)
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}
        assert_error(srv.rest().call("GET", "/setting/admins", token=None), 401, 1401)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_exit_zero(ops, sig):
    srv = ops.store.serve()
    assert srv.rest(ops.lmv1).call("GET", "/setting/admins").status_code == 200
    assert srv.stop(sig) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(srv.base + "/healthz", timeout=2)


# --------------------------------------------------------------------------- TLS


def test_tls(ops, tmp_path):
    tls = make_tls_cert(tmp_path)
    with ops.serving(tls=tls) as srv:
        assert srv.base.startswith("https://")
        r = requests.get(srv.base + "/healthz", timeout=5, verify=tls[2])
        assert r.status_code == 200 and r.json() == {"status": "ok"}

        for tok in (ops.lmv1, ops.bearer):
            api = sdk_client(srv, tok)
            assert api.get_admin_list(size=1).total >= 1
            assert api.get_role_list(filter='name:"readonly"').total == 1

        # plain http to the TLS port does not work
        plain_ok = False
        try:
            plain_ok = requests.get(f"http://127.0.0.1:{srv.port}/healthz", timeout=5).status_code == 200
        except requests.RequestException:
            pass
        assert not plain_ok, "plain http must not be served on the TLS port"

        # an unknown CA is refused by the client (the cert is not silently trusted)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(srv.base + "/healthz", timeout=5)


# --------------------------------------------------------------------------- rate limits


def _rate_headers(resp: requests.Response) -> tuple[str, str, str]:
    missing = [h for h in RATE_HEADERS if h not in resp.headers]
    assert not missing, f"missing {missing} on HTTP {resp.status_code}: {dict(resp.headers)}"
    return tuple(resp.headers[h] for h in RATE_HEADERS)  # type: ignore[return-value]


def _clear_of_window_edge(window: int = 60, margin: float = 3.0) -> None:
    """Counting windows may be aligned to multiples of the window: do not start next to an edge."""
    pos = time.time() % window
    if pos > window - margin:
        time.sleep(window - pos + 0.2)


def test_token_rate_limit(ops):
    with ops.serving("--token-rate-limit", "5", "--rate-limit-window-secs", "60") as srv:
        lmv1, bearer = ops.new_tokens()  # tokens never used before
        _clear_of_window_edge()
        client = srv.rest(lmv1)
        remaining = []
        for _ in range(5):
            r = client.call("GET", "/setting/admins", params={"size": 1})
            assert r.status_code == 200, r.text
            limit, rem, window = _rate_headers(r)
            assert (limit, window) == ("5", "60")
            remaining.append(int(rem))
        assert remaining == [4, 3, 2, 1, 0]

        r = client.call("GET", "/setting/admins", params={"size": 1})
        assert_error(r, 429, 1429)
        assert _rate_headers(r) == ("5", "0", "60")

        # (Not checked through the SDK: its urllib3 retries a 429 GET after
        # Retry-After, i.e. it blocks until the window ends.)
        # the limit is per token: another token of the same user still works
        assert srv.rest(bearer).call("GET", "/setting/admins").status_code == 200


def test_ip_rate_limit(ops):
    with ops.serving("--ip-rate-limit", "4", "--rate-limit-window-secs", "60") as srv:
        clients = [srv.rest(tok) for tok in ops.new_tokens()]
        _clear_of_window_edge()
        statuses = []
        for i in range(5):
            r = clients[i % 2].call("GET", "/setting/admins", params={"size": 1})
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert_error(r, 429, 1429)
                _rate_headers(r)
                break
        # each token made at most 3 calls, far below its own limit (1000):
        # the 5th call from this IP must be refused
        assert 429 in statuses, f"per-IP limit of 4 not enforced: {statuses}"


# --------------------------------------------------------------------------- proxies


def test_forwarded_for_only_from_trusted_proxy(ops):
    with ops.serving("--trusted-proxy", "10.0.0.0/8", "--trusted-proxy", "127.0.0.0/8") as srv:
        reader = srv.rest(ops.lmv1)
        path = _missing_path()
        r = reader.call("GET", path, headers={"X-Forwarded-For": "203.0.113.9"})
        assert_error(r, 404, 1404)
        assert_audited(reader, method="GET", path=path, status=404, ip="203.0.113.9")

        # a client-supplied left part of the chain is not trusted: the address
        # that our trusted proxy saw (the right-most untrusted hop) is recorded
        path = _missing_path()
        reader.call("GET", path, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
        assert_audited(reader, method="GET", path=path, status=404, ip="203.0.113.9")

    with ops.serving() as srv:
        reader = srv.rest(ops.lmv1)
        path = _missing_path()
        r = reader.call("GET", path, headers={"X-Forwarded-For": "203.0.113.9"})
        assert_error(r, 404, 1404)
        assert_audited(reader, method="GET", path=path, status=404, ip="127.0.0.1")
        assert not find_audit(reader, method="GET", path=path, status=404, ip="203.0.113.9", timeout=0)


# --------------------------------------------------------------------------- CLI next to serve


def test_cli_works_while_serving(ops):
    with ops.serving() as srv:
        reader = srv.rest(ops.lmv1)
        role_name = unique("cli-role-")
        role = ops.store.cli_json("role", "add", role_name, "--privilege", "setting:useraccess:read")
        assert isinstance(role["id"], int) and role["name"] == role_name
        assert reader.get(f"/setting/roles/{role['id']}")["name"] == role_name

        username = unique("cli-user-")
        user = ops.store.cli_json("user", "add", username, "--email", f"{username}@example.com", "--role", role_name, "--api-only")
        assert isinstance(user["id"], int) and user["username"] == username
        assert user["email"] == f"{username}@example.com"
        assert {r["name"] for r in user["roles"]} == {role_name}
        assert user.get("apionly") is True
        assert reader.get(f"/setting/admins/{user['id']}")["username"] == username

        for extra in ((), ("--bearer",)):
            tok = Token.from_cli(ops.store.cli_json("token", "create", username, *extra, "--note", "from cli"))
            assert isinstance(tok.id, int)
            if extra:
                assert tok.secret.startswith("pal_")
            assert srv.rest(tok).call("GET", "/setting/admins").status_code == 200
        listed = reader.get(f"/setting/admins/{user['id']}/apitokens")
        assert listed["total"] == 2 and all(t["note"] == "from cli" for t in listed["items"])

        # a user with a password, read from stdin
        pw_user = unique("cli-pw-")
        made = ops.store.cli_json(
            "user", "add", pw_user, "--email", f"{pw_user}@example.com", "--role", "readonly", "--password-stdin",
            input="Stdin-Supplied-Pass-93\n",
        )
        assert made["username"] == pw_user and not made.get("password")
        weak = ops.store.cli("user", "add", unique("cli-weak-"), "--email", "w@example.com", "--role", "readonly",
                             "--password-stdin", input="short\n")
        assert weak.returncode != 0 and weak.stderr.strip()
        dup = ops.store.cli("user", "add", username, "--email", "d@example.com", "--role", "readonly", "--api-only")
        assert dup.returncode != 0 and dup.stderr.strip()
        bad_role = ops.store.cli("user", "add", unique("cli-x-"), "--email", "x@example.com", "--role", "no-such-role", "--api-only")
        assert bad_role.returncode != 0 and bad_role.stderr.strip()

        verify = ops.store.cli("audit", "verify")
        assert verify.returncode == 0, verify
        assert verify.json()["ok"] is True


# --------------------------------------------------------------------------- audit chain


def _audit_verify(store: Store) -> tuple[int, dict]:
    res = store.cli("audit", "verify")
    return res.returncode, res.json()


def _seqs(store: Store) -> list[int]:
    return [int(r["seq"]) for r in store.sql("SELECT seq FROM audit_log ORDER BY seq")]


def test_audit_verify_detects_edit_and_delete(fresh_store):
    store = fresh_store
    srv = store.serve()
    boot = store.bootstrap_automation()
    rest = srv.rest(boot["lmv1"])
    for _ in range(6):
        rest.call("GET", "/setting/admins", params={"size": 1})
        rest.call("GET", _missing_path())
    rc, out = _audit_verify(store)  # while serve runs
    assert rc == 0 and out["ok"] is True, out
    entries = rest.list_all("/setting/accesslogs")
    srv.stop()  # no writer while we tamper

    count_before = len(_seqs(store))
    rc, out = _audit_verify(store)
    assert rc == 0, out
    assert out["ok"] is True, out
    assert count_before <= out["entries"] <= len(_seqs(store))
    assert out["entries"] >= 12

    seqs = _seqs(store)
    edited = seqs[len(seqs) // 2]
    # firstBrokenId names the row the way the API does: the entry id is the seq
    api_ids = {e["id"] for e in entries}
    assert str(edited) in api_ids, f"audit entry ids are expected to be the seq numbers: {sorted(api_ids)[:10]}"

    store.sql(f"CREATE TABLE e2e_backup AS SELECT * FROM audit_log WHERE seq = {edited}")
    store.sql(f"UPDATE audit_log SET description = 'x' WHERE seq = {edited}")
    rc, out = _audit_verify(store)
    assert rc == 1, out
    assert out["ok"] is False and out["firstBrokenId"] == str(edited), out
    assert out.get("reason"), out

    # restoring the original row makes the chain whole again
    store.sql(
        f"UPDATE audit_log SET description = (SELECT description FROM e2e_backup) WHERE seq = {edited}"
    )
    store.sql("DROP TABLE e2e_backup")
    rc, out = _audit_verify(store)
    assert rc == 0 and out["ok"] is True, out

    seqs = _seqs(store)
    victim = seqs[len(seqs) // 3]
    following = seqs[seqs.index(victim) + 1]
    store.sql(f"DELETE FROM audit_log WHERE seq = {victim}")
    rc, out = _audit_verify(store)
    assert rc == 1, out
    assert out["ok"] is False and out["firstBrokenId"] in (str(victim), str(following)), out
    assert out.get("reason"), out
