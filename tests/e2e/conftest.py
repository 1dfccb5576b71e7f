"""Fixtures of the Palisade end-to-end suite.

Every server-backed test runs once per storage backend (`sqlite`, `postgres`).
A PostgreSQL run gets its own fresh database `palisade_e2e_<random>` created
through psql against PALISADE_TEST_PG_URL and dropped afterwards. Servers are
stopped with SIGTERM at teardown and must exit 0.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import pytest

from pathlib import Path

from palisade_harness import (
    BACKENDS,
    FIRST_ADMIN_RE,
    STRONG_PASSWORD,
    Rest,
    Server,
    Store,
    Token,
    free_port,
    new_store,
    unique,
)
from receivers import SmtpReceiver, WebhookReceiver
from signin_harness import Browser, FakeClock, write_config


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store_factory(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Make extra fresh stores (same backend) inside one test; all cleaned up after."""
    with contextlib.ExitStack() as stack:

        def make() -> Store:
            return stack.enter_context(new_store(backend, tmp_path_factory))

        yield make


@pytest.fixture
def fresh_store(store_factory: Any) -> Store:
    return store_factory()


class Portal:
    """One running server on one store, with an API-only `automation` user.

    The automation user holds a custom role granting setting:useraccess:write
    and setting:accesslogs:read, and one LMv1 and one Bearer token (made with
    the CLI).

    A caller can only grant privileges it holds itself, so users created by
    `automation` get `basic_role` (setting:useraccess:read, made through the
    API). Tests that must assign the built-in `administrator` role through
    the API use `super_rest()`: a token of an API-only user whose *custom*
    role copies all of administrator's privileges (allowed by the mandate,
    which is about the built-in role).
    """

    def __init__(self, store: Store, serve_args: list[str], env: dict[str, str] | None = None):
        self.store = store
        self.server = store.serve(*serve_args, env=env)
        boot = store.bootstrap_automation()
        self.automation_role = boot["role"]
        self.automation_user = boot["user"]
        self.lmv1 = boot["lmv1"]
        self.bearer = boot["bearer"]
        self.rest = self.server.rest(self.lmv1)  # privileged raw client (also reads the audit log)
        self.basic_role = self.rest.ok(
            "POST",
            "/setting/roles",
            json_body={
                "name": "e2e-basic",
                "description": "granted by automation to the users it creates",
                "privileges": [{"objectType": "setting", "objectId": "useraccess", "operation": "read"}],
            },
        )
        self._super: Rest | None = None

    def token(self, kind: str):
        return self.lmv1 if kind == "lmv1" else self.bearer

    def super_rest(self) -> Rest:
        if self._super is None:
            admin_role = [
                r for r in self.rest.get("/setting/roles", params={"size": 1000})["items"] if r["name"] == "administrator"
            ]
            assert len(admin_role) == 1, "built-in administrator role missing"
            privs = [f"{p['objectType']}:{p['objectId']}:{p['operation']}" for p in admin_role[0]["privileges"]]
            assert privs, "administrator role has no privileges"
            args = ["role", "add", "e2e-super"]
            for p in privs:
                args += ["--privilege", p]
            self.store.cli_json(*args)
            self.store.cli_json("user", "add", "e2e-super", "--email", "e2e-super@example.com", "--role", "e2e-super", "--api-only")
            self._super = self.server.rest(Token.from_cli(self.store.cli_json("token", "create", "e2e-super")))
        return self._super


@pytest.fixture(scope="module")
def portal(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    """A module-wide server per backend, default flags."""
    with new_store(backend, tmp_path_factory) as store:
        yield Portal(store, [])


# --------------------------------------------------------------------------- two-factor sign-in


class SigninPortal:
    """A portal for the sign-in tests, with real delivery peers and a movable clock.

    - `palisade serve --config` with `[smtp]` pointing at an aiosmtpd receiver and
      `[phone]` at a webhook receiver that verifies the HMAC signature, both on
      127.0.0.1 in the test process;
    - `--trusted-proxy 127.0.0.1/32`, so each `Browser` has its own client address;
    - the server (and the CLI calls made here) under libfaketime (`clock`);
    - `mfa.grace_hours 0`: a new local user must enrol at their first sign-in;
    - roles `e2e-signin-read` (setting:useraccess:read) and `e2e-signin-admin`
      (setting:useraccess:write, setting:accesslogs:read) for local users;
    - the `automation` API-only user of `Portal` (its LMv1 client `reader` signs
      with the shifted clock and reads the audit log).
    """

    WEBHOOK_SECRET = "e2e-webhook-secret-0123456789"
    READ_ROLE = "e2e-signin-read"
    ADMIN_ROLE = "e2e-signin-admin"

    def __init__(self, store: Store, directory: Path):
        self.store = store
        self.directory = directory
        self.clock = FakeClock(directory)
        self.smtp = SmtpReceiver(free_port()).start()
        self.sms = WebhookReceiver(self.WEBHOOK_SECRET, self.clock.now).start()
        self.config = write_config(
            directory / "palisade.toml",
            smtp_url=self.smtp.url,
            webhook_url=self.sms.url,
            webhook_secret=self.WEBHOOK_SECRET,
        )
        self.portal = Portal(store, self.serve_args(self.config), env=self.clock.env())
        self.server.clock = self.clock
        m = self.server.wait_stdout(FIRST_ADMIN_RE)
        assert m, f"first start printed no first administrator line: {self.server.stdout()!r}"
        self.first_admin = (m.group(1), m.group(2))
        self.cli_json("role", "add", self.READ_ROLE, "--privilege", "setting:useraccess:read")
        self.cli_json(
            "role", "add", self.ADMIN_ROLE,
            "--privilege", "setting:useraccess:write", "--privilege", "setting:accesslogs:read",
        )
        self.cli_json("settings", "set", "mfa.grace_hours", "0")

    @staticmethod
    def serve_args(config: Path) -> list[str]:
        return ["--config", str(config), "--trusted-proxy", "127.0.0.1/32"]

    @property
    def server(self) -> Server:
        return self.portal.server

    @property
    def reader(self) -> Rest:
        """LMv1 client of the API-only `automation` user (user access write, audit log read)."""
        return self.portal.rest

    def cli_json(self, *args: str, input: str | None = None) -> Any:
        res = self.store.cli(*args, input=input, env=self.clock.env())
        assert res.returncode == 0, f"palisade {' '.join(args)} failed rc={res.returncode}\nstdout: {res.stdout}\nstderr: {res.stderr}"
        return res.json()

    def setting(self, key: str, value: str) -> None:
        assert self.cli_json("settings", "set", key, value) == {key: value}

    def user(self, prefix: str = "user", role: str | None = None, password: str = STRONG_PASSWORD) -> dict[str, Any]:
        """A new local user (CLI, --password-stdin); returns {id, username, email, password}."""
        username = unique(prefix + "-")
        created = self.cli_json(
            "user", "add", username, "--email", f"{username}@example.com", "--role", role or self.READ_ROLE,
            "--password-stdin", input=password + "\n",
        )
        assert created["username"] == username and created["apionly"] is False
        return {"id": created["id"], "username": username, "email": f"{username}@example.com", "password": password}

    def browser(self, server: Server | None = None) -> Browser:
        return Browser(server or self.server)

    def serve_other(self, config: Path) -> Server:
        """Another `serve` on the same store with another configuration (same clock)."""
        srv = self.store.serve(*self.serve_args(config), env=self.clock.env())
        srv.clock = self.clock
        return srv

    def restart(self) -> Server:
        """Stops the server (SIGTERM, must exit 0) and starts a new one on the same store."""
        self.server.stop()
        srv = self.store.serve(*self.serve_args(self.config), env=self.clock.env())
        srv.clock = self.clock
        self.portal.server = srv
        self.portal.rest = srv.rest(self.portal.lmv1)
        return srv

    def close(self) -> None:
        self.smtp.stop()
        self.sms.stop()


@pytest.fixture(scope="module")
def signin_portal(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SigninPortal]:
    """A module-wide sign-in portal per backend (see `SigninPortal`)."""
    with new_store(backend, tmp_path_factory) as store:
        sp = SigninPortal(store, tmp_path_factory.mktemp(f"signin-{backend}-"))
        try:
            yield sp
        finally:
            sp.close()


# --------------------------------------------------------------------------- no silent skips


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A skipped test is a failure here: a missing peer (binary, database,
    tool) must not pass silently. Set PALISADE_E2E_ALLOW_SKIP=1 to relax."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and not os.environ.get("PALISADE_E2E_ALLOW_SKIP"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are failures in this suite: {report.longrepr}"

