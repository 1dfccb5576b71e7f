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

from palisade_harness import BACKENDS, Rest, Store, Token, new_store


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

    def __init__(self, store: Store, serve_args: list[str]):
        self.store = store
        self.server = store.serve(*serve_args)
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

