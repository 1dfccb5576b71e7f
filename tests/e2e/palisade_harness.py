"""Helpers for the Palisade end-to-end suite.

Everything here talks to a real `palisade` binary (PALISADE_BIN): the CLI on a
store (data dir + database), `palisade serve` as a child process, the REST API
through our own LMv1 signer (written from the LM v3 reference, independently of
the server) and through the unmodified `logicmonitor-sdk`.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/test"
REST_PREFIX = "/santaba/rest"
# The spec'd line; trailing explanatory text after the password is tolerated.
FIRST_ADMIN_RE = re.compile(r"^first administrator: username=(\S+) password=(\S+)(?:[ \t].*)?$", re.M)

# A password that satisfies the spec'd policy (12..128 chars, not the username,
# not a common password).
STRONG_PASSWORD = "Tangerine-Kettle-42-Orbit"

BACKENDS = ("sqlite", "postgres")


# --------------------------------------------------------------------------- env


def palisade_bin() -> str:
    path = os.environ.get("PALISADE_BIN") or str(REPO_ROOT / "target" / "debug" / "palisade")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"palisade binary not found or not executable at {path!r}: run "
            "`cargo build --workspace --bins` or set PALISADE_BIN",
            pytrace=False,
        )
    return path


def pg_url() -> str:
    return os.environ.get("PALISADE_TEST_PG_URL") or DEFAULT_PG_URL


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    # Never let an outer setting leak into the process under test.
    env.pop("PALISADE_MASTER_KEY_FILE", None)
    env.setdefault("RUST_BACKTRACE", "1")
    if extra:
        env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


# --------------------------------------------------------------------------- PostgreSQL


def _psql(url: str, sql: str, *, check: bool = True) -> subprocess.CompletedProcess:
    argv = ["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-F", "|", url, "-c", sql]
    if check:
        return _checked(argv)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def _checked(argv: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed (rc={proc.returncode}): {argv!r}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def _with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


@contextlib.contextmanager
def fresh_pg_database() -> Iterator[str]:
    """Create `palisade_e2e_<random>` on the test server, yield its URL, drop it after."""
    base = pg_url()
    name = f"palisade_e2e_{secrets.token_hex(6)}"
    try:
        _psql(base, f'CREATE DATABASE "{name}"')
    except AssertionError as exc:
        pytest.fail(f"PostgreSQL at {base} is not usable (PALISADE_TEST_PG_URL): {exc}", pytrace=False)
    try:
        yield _with_database(base, name)
    finally:
        _psql(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


@contextlib.contextmanager
def new_store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    base = tmp_path_factory.mktemp(f"palisade-{backend}-")
    data_dir = base / "data"
    data_dir.mkdir(mode=0o700)
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_pg_database()) if backend == "postgres" else None
        store = Store(backend, data_dir, url)
        try:
            yield store
        finally:
            # SIGTERM whatever still runs; a non-graceful exit fails the teardown.
            errors = []
            for srv in store.servers:
                if srv.running:
                    try:
                        srv.stop()
                    except AssertionError as exc:
                        errors.append(str(exc))
            if errors:
                raise AssertionError("; ".join(errors))


# --------------------------------------------------------------------------- tokens


@dataclasses.dataclass
class Token:
    """An API token as the tests hold it."""

    kind: str  # "lmv1" | "bearer"
    id: int | None
    secret: str  # accessKey (LMv1) or the bearer token
    access_id: str | None = None
    admin_id: int | None = None

    @classmethod
    def from_cli(cls, data: dict[str, Any]) -> "Token":
        if "bearerToken" in data:
            return cls("bearer", data.get("id"), data["bearerToken"], data.get("accessId"))
        return cls("lmv1", data.get("id"), data["accessKey"], data["accessId"])

    @classmethod
    def from_api(cls, data: dict[str, Any], kind: str) -> "Token":
        # The secret is returned once, in accessKey, for both kinds.
        secret = data.get("accessKey") or data.get("bearerToken")
        assert secret, f"token creation response carries no secret: {data!r}"
        return cls(kind, data.get("id"), secret, data.get("accessId"), data.get("adminId"))

    def authorization(self, method: str, sign_body: str, sign_path: str, epoch_ms: str | None = None) -> str:
        if self.kind == "bearer":
            return f"Bearer {self.secret}"
        assert self.access_id, "LMv1 token without accessId"
        return lmv1_authorization(self.access_id, self.secret, method, sign_body, sign_path, epoch_ms)


def lmv1_signature(access_key: str, method: str, epoch_ms: str, body: str, resource_path: str) -> str:
    """base64(lowercase_hex(HMAC-SHA256(accessKey, VERB + epoch + BODY + PATH)))."""
    message = f"{method.upper()}{epoch_ms}{body}{resource_path}"
    digest_hex = hmac.new(access_key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()
    return base64.b64encode(digest_hex.encode("ascii")).decode("ascii")


def lmv1_authorization(
    access_id: str, access_key: str, method: str, body: str, resource_path: str, epoch_ms: str | None = None
) -> str:
    epoch_ms = epoch_ms or str(int(time.time() * 1000))
    sig = lmv1_signature(access_key, method, epoch_ms, body, resource_path)
    return f"LMv1 {access_id}:{sig}:{epoch_ms}"


# --------------------------------------------------------------------------- raw REST

_NO_BODY = object()


class Rest:
    """A raw `requests` client for /santaba/rest with our own LMv1 signer."""

    def __init__(self, server: "Server", token: Token | None = None):
        self.server = server
        self.token = token
        self.session = requests.Session()
        if server.ca_file:
            self.session.verify = server.ca_file

    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = _NO_BODY,
        data: str | bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        token: Token | None | object = _NO_BODY,
        sign_body: str | None = None,
        sign_path: str | None = None,
        epoch_ms: str | None = None,
        authorization: str | None = None,
    ) -> requests.Response:
        """`path` is the resource path as it appears in the URL (may be percent-encoded).

        The body defaults to what the SDK sends: nothing for GET, `{}` otherwise.
        The signature covers the exact body bytes sent and the percent-decoded
        path, unless `sign_body` / `sign_path` override them.
        """
        method = method.upper()
        if json_body is not _NO_BODY:
            body: str | bytes | None = json.dumps(json_body)
        elif data is not None:
            body = data
        elif method == "GET":
            body = None
        else:
            body = "{}"
        body_text = body.decode("utf-8") if isinstance(body, bytes) else (body or "")
        hdrs = {"X-version": "3", "Accept": "application/json", "Content-Type": "application/json"}
        tok = self.token if token is _NO_BODY else token
        clock = getattr(self.server, "clock", None)
        if epoch_ms is None and clock is not None:
            # The server runs on a shifted clock (see signin_harness.FakeClock): sign with its time.
            epoch_ms = str(int(clock.now() * 1000))
        if authorization is not None:
            hdrs["Authorization"] = authorization
        elif tok is not None:
            hdrs["Authorization"] = tok.authorization(  # type: ignore[union-attr]
                method,
                body_text if sign_body is None else sign_body,
                unquote(path) if sign_path is None else sign_path,
                epoch_ms,
            )
        if headers:
            hdrs.update(headers)
        url = self.server.rest_base + path
        if params:
            url += "?" + urlencode(params)  # as the SDK does: form encoding, space as '+'
        prepared = self.session.prepare_request(
            requests.Request(method, url, data=body.encode("utf-8") if isinstance(body, str) else body, headers=hdrs)
        )
        prepared.url = url  # exactly as given: requests would otherwise re-quote the path
        return self.session.send(prepared, timeout=30, verify=self.session.verify)

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.call(method, path, **kw)
        assert 200 <= resp.status_code < 300, f"{method} {path} -> {resp.status_code}: {resp.text[:1000]}"
        return resp.json() if resp.content else None

    # convenience
    def get(self, path: str, **kw: Any) -> Any:
        return self.ok("GET", path, **kw)

    def list_all(self, path: str, params: dict[str, Any] | None = None, page: int = 1000) -> list[dict]:
        items: list[dict] = []
        offset = 0
        while True:
            p = dict(params or {})
            p.update({"size": page, "offset": offset})
            data = self.get(path, params=p)
            batch = data["items"]
            items.extend(batch)
            offset += len(batch)
            if len(batch) < page or offset >= data["total"]:
                return items


def assert_error(resp: requests.Response, status: int, code: int | None = None) -> dict:
    """Assert an LM error response: status, and body {errorMessage, errorCode, errorDetail}."""
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:1000]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:500]!r}") from None
    assert isinstance(body, dict), body
    for key in ("errorMessage", "errorCode", "errorDetail"):
        assert key in body, f"error body lacks {key}: {body!r}"
    assert body["errorCode"] == (code if code is not None else status + 1000), body
    assert isinstance(body["errorMessage"], str) and body["errorMessage"].strip(), body
    return body


def find_audit(
    reader: Rest,
    *,
    method: str,
    path: str,
    status: int,
    ip: str | None = "127.0.0.1",
    timeout: float = 5.0,
) -> list[dict]:
    """Audit entries for `METHOD path -> status` (and ip), polling briefly.

    Matches entries whose description contains the method, the resource path
    (not followed by a further path segment) and the status code.
    """
    path_re = re.compile(re.escape(path) + r"(?![\w/%-])")
    method_re = re.compile(rf"\b{method.upper()}\b")
    status_re = re.compile(rf"(?<!\d){status}(?!\d)")
    deadline = time.monotonic() + timeout
    while True:
        entries = reader.list_all("/setting/accesslogs")
        hits = [
            e
            for e in entries
            if path_re.search(e.get("description") or "")
            and method_re.search(e.get("description") or "")
            and status_re.search((e.get("description") or "").replace(path, " "))
        ]
        if ip is not None:
            hits = [e for e in hits if e.get("ip") == ip]
        if hits or time.monotonic() > deadline:
            return hits
        time.sleep(0.25)


def assert_audited(reader: Rest, *, method: str, path: str, status: int, ip: str | None = "127.0.0.1") -> dict:
    hits = find_audit(reader, method=method, path=path, status=status, ip=ip)
    if not hits:
        near = [
            {k: e.get(k) for k in ("id", "username", "ip", "description")}
            for e in reader.list_all("/setting/accesslogs")
            if path in (e.get("description") or "")
        ]
        raise AssertionError(
            f"no audit entry for {method} {path} -> {status} from ip {ip}; entries mentioning the path: {near!r}"
        )
    return hits[-1]


# --------------------------------------------------------------------------- store + server


@dataclasses.dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"CLI stdout is not JSON: {self.stdout!r} (stderr: {self.stderr!r})") from None


class Store:
    """A Palisade data dir plus its database (SQLite in the dir, or a fresh PostgreSQL db)."""

    def __init__(self, backend: str, data_dir: Path, database_url: str | None):
        self.backend = backend
        self.data_dir = data_dir
        self.database_url = database_url
        self.servers: list[Server] = []

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "palisade.db"

    def global_args(self) -> list[str]:
        args = ["--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args

    # ---- CLI
    def cli(self, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
        proc = subprocess.run(
            [palisade_bin(), *self.global_args(), *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=child_env(env),
            timeout=timeout,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def cli_json(self, *args: str, input: str | None = None) -> Any:
        res = self.cli(*args, input=input)
        assert res.returncode == 0, f"palisade {' '.join(args)} failed rc={res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        return res.json()

    # ---- direct SQL (for tamper / out-of-band edits)
    def sql(self, statement: str) -> list[dict[str, str]]:
        """Run one SQL statement with the sqlite3 / psql CLI; rows as dicts of strings."""
        if self.backend == "sqlite":
            argv = ["sqlite3", "-batch", "-bail", "-cmd", ".timeout 10000", "-csv", "-header", str(self.sqlite_path), statement]
        else:
            assert self.database_url
            argv = ["psql", "-X", "-w", "-q", "-v", "ON_ERROR_STOP=1", "--csv", self.database_url, "-c", statement]
        out = _checked(argv).stdout
        return list(csv.DictReader(io.StringIO(out))) if out.strip() else []

    def sql_scalar(self, statement: str) -> str:
        rows = self.sql(statement)
        assert rows, f"no row from {statement!r}"
        return next(iter(rows[0].values()))

    def dump_all(self) -> bytes:
        """Everything the store keeps on disk (files of the data dir + a PostgreSQL data dump)."""
        blobs = [p.read_bytes() for p in sorted(self.data_dir.rglob("*")) if p.is_file()]
        if self.backend == "postgres":
            assert self.database_url
            blobs.append(_checked(["pg_dump", "--data-only", "--no-owner", self.database_url]).stdout.encode())
        return b"\n".join(blobs)

    # ---- server
    def serve(self, *args: str, tls: tuple[str, str, str] | None = None, env: dict[str, str] | None = None) -> "Server":
        srv = Server(self, list(args), tls=tls, env=env)
        self.servers.append(srv)
        srv.start()
        return srv

    def stop_all(self) -> None:
        for srv in self.servers:
            if srv.running:
                srv.stop()

    # ---- bootstrap of an API-only automation identity
    def bootstrap_automation(self, username: str = "automation", role: str = "automation-role") -> dict[str, Any]:
        role_json = self.cli_json(
            "role", "add", role,
            "--privilege", "setting:useraccess:write",
            "--privilege", "setting:accesslogs:read",
        )
        user_json = self.cli_json("user", "add", username, "--email", f"{username}@example.com", "--role", role, "--api-only")
        lmv1 = Token.from_cli(self.cli_json("token", "create", username, "--note", "e2e lmv1"))
        bearer = Token.from_cli(self.cli_json("token", "create", username, "--bearer", "--note", "e2e bearer"))
        assert lmv1.kind == "lmv1" and bearer.kind == "bearer"
        lmv1.admin_id = bearer.admin_id = user_json["id"]
        return {"role": role_json, "user": user_json, "lmv1": lmv1, "bearer": bearer}


class Server:
    """`palisade serve` as a child process, stdout/stderr captured to files."""

    def __init__(self, store: Store, args: list[str], *, tls: tuple[str, str, str] | None, env: dict[str, str] | None):
        self.store = store
        self.args = args
        self.tls = tls  # (cert, key, ca)
        self.env = env
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        n = len(store.servers)
        self.stdout_path = store.data_dir.parent / f"{store.data_dir.name}-serve{n}.stdout"
        self.stderr_path = store.data_dir.parent / f"{store.data_dir.name}-serve{n}.stderr"
        self.returncode: int | None = None
        # A signin_harness.FakeClock when the server runs on a shifted wall clock, else None.
        self.clock: Any = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def ca_file(self) -> str | None:
        return self.tls[2] if self.tls else None

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def rest_base(self) -> str:
        return self.base + REST_PREFIX

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def start(self, timeout: float = 60) -> None:
        argv = [palisade_bin(), *self.store.global_args(), "serve", "--listen", f"127.0.0.1:{self.port}", *self.args]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=child_env(self.env))
        deadline = time.monotonic() + timeout
        last: Exception | str | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"palisade serve exited early rc={self.proc.returncode}\nargv: {argv}\n"
                    f"stdout: {self.stdout()}\nstderr: {self.stderr()[-4000:]}"
                )
            try:
                r = requests.get(self.base + "/healthz", timeout=2, verify=self.ca_file or True)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"palisade serve not healthy after {timeout}s ({last})\nstderr: {self.stderr()[-4000:]}")

    def wait_stdout(self, pattern: re.Pattern, timeout: float = 5) -> re.Match | None:
        deadline = time.monotonic() + timeout
        while True:
            m = pattern.search(self.stdout())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the server and assert it exits 0 (graceful shutdown)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"palisade serve did not exit within {timeout}s of signal {sig}") from None
        self.returncode = self.proc.returncode
        assert self.returncode == 0, (
            f"palisade serve exited with {self.returncode} after signal {sig}\nstderr: {self.stderr()[-4000:]}"
        )
        return self.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def rest(self, token: Token | None = None) -> Rest:
        return Rest(self, token)

    def sdk(self, token: Token):
        return sdk_client(self, token)


# --------------------------------------------------------------------------- SDK


def sdk_client(server: Server, token: Token):
    import logicmonitor_sdk

    c = logicmonitor_sdk.Configuration()
    c._host = server.rest_base  # `host` is a read-only property in the SDK
    if server.ca_file:
        c.ssl_ca_cert = server.ca_file  # read when ApiClient is built: set first
    if token.kind == "bearer":
        c.auth_type = "Bearer"
        c.bearer_token = token.secret
    else:
        c.auth_type = "lmv1"
        c.access_id = token.access_id
        c.access_key = token.secret
    return logicmonitor_sdk.LMApi(logicmonitor_sdk.ApiClient(c))


def sdk_status(fn, *args, **kwargs) -> int:
    """Call an SDK method expected to fail; return the HTTP status of the ApiException."""
    from logicmonitor_sdk.rest import ApiException

    try:
        fn(*args, **kwargs)
    except ApiException as exc:
        return exc.status
    raise AssertionError(f"{getattr(fn, '__name__', fn)} unexpectedly succeeded")


# --------------------------------------------------------------------------- misc


def make_tls_cert(directory: Path) -> tuple[str, str, str]:
    """Self-signed P-256 cert for 127.0.0.1; returns (cert, key, ca) paths (ca == cert)."""
    cert = directory / "cert.pem"
    key = directory / "key.pem"
    _checked(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
            "-keyout", str(key), "-out", str(cert),
        ]
    )
    return str(cert), str(key), str(cert)


def role_id_by_name(rest: Rest, name: str) -> int:
    data = rest.get("/setting/roles", params={"filter": f'name:"{name}"', "size": 50})
    matches = [r for r in data["items"] if r["name"] == name]
    assert len(matches) == 1, f"role {name!r} not found exactly once: {data!r}"
    return matches[0]["id"]


def user_by_name(rest: Rest, username: str) -> dict:
    data = rest.get("/setting/admins", params={"filter": f'username:"{username}"', "size": 50})
    matches = [u for u in data["items"] if u["username"] == username]
    assert len(matches) == 1, f"user {username!r} not found exactly once: {data!r}"
    return matches[0]
