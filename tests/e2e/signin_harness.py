"""Helpers for the two-factor sign-in tests (`test_two_factor.py`, `test_signin_admin.py`).

- `FakeClock`: runs `palisade serve` (and the CLI) under libfaketime with an
  offset read from a file, so a test can move the portal's clock forward
  (code expiry, lock expiry, step-up window) without sleeping. Only the wall
  clock is shifted; monotonic time (tokio timers) is left alone.
- `Browser`: the session JSON API as a browser would drive it: one cookie
  (`palisade_session`), the CSRF token of the latest answer on every non-GET
  call, and a client address of its own (`X-Forwarded-For`, believed because the
  servers run with `--trusted-proxy 127.0.0.1/32`) so that the per-address
  sign-in throttle of one test does not spill into the next.
- `TotpDevice`: an authenticator app (pyotp) that never reuses a time step.
- `write_config`: the `--config` TOML file.
- audit helpers reading `/setting/accesslogs` by `action`.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests

from palisade_harness import Rest, Server
from receivers import code_in

SESSION_COOKIE = "palisade_session"
MUST_ENROL_CODE = 1412

# --------------------------------------------------------------------------- clock

_LIBFAKETIME_GLOBS = (
    "/usr/lib/*/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1",
    "/usr/local/lib/faketime/libfaketimeMT.so.1",
)


def libfaketime() -> str:
    for pattern in _LIBFAKETIME_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    pytest.fail(
        "libfaketime not found (Debian package `libfaketime`; scripts/test installs it): "
        "the time-dependent sign-in tests move the portal's clock with it",
        pytrace=False,
    )


class FakeClock:
    """The portal's wall clock = real time + `offset` seconds (only ever moved forward)."""

    def __init__(self, directory: Path):
        self.path = directory / "faketime-offset"
        self.offset = 0
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"+{self.offset}\n")
        os.replace(tmp, self.path)  # atomic: the preloaded library never reads half a file

    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": libfaketime(),
            "FAKETIME_TIMESTAMP_FILE": str(self.path),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def advance(self, seconds: int) -> None:
        assert seconds > 0
        self.offset += int(seconds)
        self._write()

    def now(self) -> float:
        return time.time() + self.offset


# --------------------------------------------------------------------------- config


def write_config(
    path: Path,
    *,
    public_url: str | None = None,
    smtp_url: str | None = None,
    smtp_from: str = "palisade@example.com",
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    twilio: dict[str, str] | None = None,
) -> Path:
    """The `--config` TOML. Secrets go to files beside it (mode 0600), as the portal wants."""
    lines: list[str] = []
    if public_url:
        lines.append(f"public_url = {json.dumps(public_url)}")
    if smtp_url:
        lines += ["", "[smtp]", f"url = {json.dumps(smtp_url)}", f"from = {json.dumps(smtp_from)}"]
    if webhook_url:
        secret_file = path.with_name(path.stem + "-webhook-secret")
        secret_file.write_text((webhook_secret or "") + "\n")
        secret_file.chmod(0o600)
        lines += [
            "",
            "[phone]",
            f"webhook_url = {json.dumps(webhook_url)}",
            f"webhook_secret_file = {json.dumps(str(secret_file))}",
        ]
    elif twilio:
        token_file = path.with_name(path.stem + "-twilio-token")
        token_file.write_text(twilio["auth_token"] + "\n")
        token_file.chmod(0o600)
        lines += [
            "",
            "[phone]",
            f"twilio_base_url = {json.dumps(twilio['base_url'])}",
            f"twilio_account_sid = {json.dumps(twilio['account_sid'])}",
            f"twilio_auth_token_file = {json.dumps(str(token_file))}",
            f"twilio_from = {json.dumps(twilio['from'])}",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- TOTP


class TotpDevice:
    """An authenticator app: codes computed with pyotp from the enrolment secret.

    `code()` gives the code of the earliest time step the portal should still
    accept (its window is the current step ±1) that is later than every step
    already used, so a sequence of sign-ins never presents a used step. It
    waits (at most one step) only when all three acceptable steps are used.
    """

    STEP = 30

    def __init__(self, secret: str, clock: Any = None):
        self.totp = pyotp.TOTP(secret)  # SHA-1, 6 digits, 30 s: what the otpauth URI says
        self.clock = clock
        self.last_step: int | None = None

    def now(self) -> float:
        return self.clock.now() if self.clock is not None else time.time()

    def code_at_step(self, step: int) -> str:
        return self.totp.at(step * self.STEP)

    def code(self) -> str:
        while True:
            now = self.now()
            current = int(now // self.STEP)
            into = now - current * self.STEP
            # current-1 only while comfortably inside this step (it dies at the next boundary).
            earliest = current - 1 if into < self.STEP - 8 else current
            step = earliest if self.last_step is None else max(earliest, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                return self.code_at_step(step)
            time.sleep(min(self.STEP - into + 0.05, self.STEP))

    def peek(self) -> str:
        """The code `code()` would give next, without using it up."""
        last = self.last_step
        try:
            return self.code()
        finally:
            self.last_step = last

    def used_code(self) -> str:
        """The code of the last step used (a replay)."""
        assert self.last_step is not None
        return self.code_at_step(self.last_step)

    def wrong_code(self) -> str:
        """A six-digit code the portal cannot accept now (not valid for any nearby step)."""
        current = int(self.now() // self.STEP)
        near = {self.code_at_step(s) for s in range(current - 3, current + 4)}
        for candidate in ("000000", "123456", "999999", "314159"):
            if candidate not in near:
                return candidate
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------- session client

_ip_counter = itertools.count(1)


def fresh_ip() -> str:
    """A distinct documentation address (2001:db8::/32) per browser: only ever a header value."""
    return f"2001:db8::{next(_ip_counter):x}"


class Browser:
    """One browser session on the JSON API. Keeps exactly one cookie and the latest CSRF token."""

    def __init__(self, server: Server, ip: str | None = None, user_agent: str = "e2e-browser/1.0"):
        self.server = server
        self.ip = ip or fresh_ip()
        self.user_agent = user_agent
        self.cookie: str | None = None
        self.csrf: str | None = None
        self.set_cookies: list[str] = []  # every Set-Cookie value seen
        self.http = requests.Session()

    def clone(self) -> "Browser":
        """The same session (cookie, CSRF token, address) on its own connection pool, for
        concurrent requests; the clone's answers do not update this browser."""
        twin = Browser(self.server, ip=self.ip, user_agent=self.user_agent)
        twin.cookie, twin.csrf = self.cookie, self.csrf
        return twin

    # ---- raw
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        csrf: bool | str = True,
        cookie: bool | str = True,
        headers: dict[str, str] | None = None,
        base: str | None = None,
    ) -> requests.Response:
        method = method.upper()
        hdrs = {"Accept": "application/json", "User-Agent": self.user_agent, "X-Forwarded-For": self.ip}
        data = None
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        elif method not in ("GET", "HEAD", "DELETE"):
            hdrs["Content-Type"] = "application/json"
            data = b"{}"
        if cookie is True and self.cookie:
            hdrs["Cookie"] = f"{SESSION_COOKIE}={self.cookie}"
        elif isinstance(cookie, str):
            hdrs["Cookie"] = f"{SESSION_COOKIE}={cookie}"
        if method not in ("GET", "HEAD", "OPTIONS"):
            if csrf is True and self.csrf:
                hdrs["X-CSRF-Token"] = self.csrf
            elif isinstance(csrf, str):
                hdrs["X-CSRF-Token"] = csrf
        if headers:
            hdrs.update(headers)
        resp = self.http.request(
            method, (base or self.server.base) + path, data=data, headers=hdrs, timeout=30, allow_redirects=False
        )
        self.http.cookies.clear()  # the cookie is ours to manage
        self._absorb(resp)
        return resp

    def _absorb(self, resp: requests.Response) -> None:
        for value in resp.raw.headers.getlist("Set-Cookie") if hasattr(resp.raw.headers, "getlist") else []:
            self.set_cookies.append(value)
            jar = SimpleCookie()
            jar.load(value)
            if SESSION_COOKIE in jar:
                morsel = jar[SESSION_COOKIE]
                self.cookie = morsel.value or None
                if morsel["max-age"] in ("0", 0):
                    self.cookie = None
        if resp.headers.get("Content-Type", "").startswith("application/json") and resp.content:
            try:
                body = resp.json()
            except ValueError:
                return
            if isinstance(body, dict):
                token = body.get("csrfToken")
                if token is None and isinstance(body.get("session"), dict):
                    token = body["session"].get("csrfToken")
                if token:
                    self.csrf = token

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        resp = self.request(method, path, body, **kw)
        assert 200 <= resp.status_code < 300, f"{method} {path} -> {resp.status_code}: {resp.text[:800]}"
        return resp.json() if resp.content else None

    # ---- sign-in
    def login(self, username: str, password: str) -> requests.Response:
        return self.request("POST", "/api/auth/login", {"username": username, "password": password})

    def login_ok(self, username: str, password: str) -> dict:
        return self.ok("POST", "/api/auth/login", {"username": username, "password": password})

    def factor(self, method: str, code: str | None = None, challenge_id: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"method": method}
        if code is not None:
            body["code"] = code
        if challenge_id is not None:
            body["challengeId"] = challenge_id
        return self.request("POST", "/api/auth/factor", body)

    def factor_ok(self, method: str, code: str | None = None, challenge_id: str | None = None) -> dict:
        resp = self.factor(method, code, challenge_id)
        assert resp.status_code == 200, f"factor {method} -> {resp.status_code}: {resp.text[:800]}"
        return resp.json()

    def challenge(self, method: str) -> requests.Response:
        return self.request("POST", "/api/auth/challenge", {"method": method})

    def logout(self) -> requests.Response:
        return self.request("POST", "/api/auth/logout")

    def me(self) -> requests.Response:
        return self.request("GET", "/api/me")

    # ---- enrolment
    def enrol_totp(self) -> dict:
        return self.ok("POST", "/api/me/factors/totp", {})

    def enrol_delivery(self, kind: str, to: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"kind": kind}
        if to is not None:
            body["to"] = to
        return self.request("POST", "/api/me/factors/delivery", body)

    def confirm(self, factor_id: int, code: str, challenge_id: str | None = None) -> requests.Response:
        body: dict[str, Any] = {"code": code}
        if challenge_id is not None:
            body["challengeId"] = challenge_id
        return self.request("POST", f"/api/me/factors/{factor_id}/confirm", body)

    # ---- the REST API with the session cookie
    def rest(self, method: str, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.request(method, path, body, base=self.server.rest_base, **kw)


def enrol_totp(browser: Browser, clock: Any = None) -> tuple[TotpDevice, dict]:
    """Enrols an authenticator app; returns the device and the confirm answer."""
    started = browser.enrol_totp()
    uri = pyotp.parse_uri(started["otpauthUri"])
    assert isinstance(uri, pyotp.TOTP)
    assert uri.secret == started["secret"], "otpauth URI and secret disagree"
    assert uri.digits == 6 and uri.interval == 30 and uri.digest().name == "sha1"
    assert started["qrSvg"].lstrip().startswith(("<?xml", "<svg")), started["qrSvg"][:80]
    device = TotpDevice(started["secret"], clock)
    resp = browser.confirm(started["factorId"], device.code())
    assert resp.status_code == 200, f"confirm TOTP -> {resp.status_code}: {resp.text[:800]}"
    return device, resp.json()


# --------------------------------------------------------------------------- flows


def error_message(resp: requests.Response) -> str:
    return resp.json().get("errorMessage", "")


def signed_in_with_factor(sp, user, expect_methods: set[str] | None = None) -> Browser:
    """A browser past the password step of a user who has a factor (state await_factor)."""
    b = sp.browser()
    body = b.login_ok(user["username"], user["password"])
    assert body["state"] == "await_factor", body
    if expect_methods is not None:
        assert set(body["methods"]) == expect_methods, body
    return b


def enrolled_totp_user(sp, prefix: str):
    """A new user who signed in, was confined to enrolment and enrolled TOTP."""
    user = sp.user(prefix)
    b = sp.browser()
    assert b.login_ok(user["username"], user["password"])["state"] == "must_enrol"
    device, confirmed = enrol_totp(b, sp.clock)
    return user, device, confirmed, b


def enrolled_delivery_user(sp, prefix: str, kind: str, to: str | None = None):
    """A new user who enrolled an email/SMS/voice factor with the code the receiver got."""
    user = sp.user(prefix)
    b = sp.browser()
    assert b.login_ok(user["username"], user["password"])["state"] == "must_enrol"
    dest = to or user["email"]
    inbox = sp.smtp if kind == "email" else sp.sms
    before = inbox.count(dest)
    resp = b.enrol_delivery(kind, to)
    assert resp.status_code == 200, resp.text
    started = resp.json()
    msg = inbox.wait(dest, after=before)
    confirm = b.confirm(started["factorId"], code_in(msg.text), started["challengeId"])
    assert confirm.status_code == 200, confirm.text
    assert confirm.json()["session"]["state"] == "active"
    return user, b, confirm.json()


# --------------------------------------------------------------------------- audit


def audit_entries(reader: Rest, *, username: str | None = None, action: str | None = None) -> list[dict]:
    entries = reader.list_all("/setting/accesslogs")
    return [
        e
        for e in entries
        if (username is None or e.get("username") == username) and (action is None or e.get("action") == action)
    ]


def wait_audit(
    reader: Rest, *, action: str, username: str | None = None, contains: str | None = None, count: int = 1, timeout: float = 5.0
) -> list[dict]:
    """Entries with `action` (and username, and a description containing `contains`), at least `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        hits = [
            e
            for e in audit_entries(reader, username=username, action=action)
            if contains is None or contains in (e.get("description") or "")
        ]
        if len(hits) >= count or time.monotonic() > deadline:
            assert len(hits) >= count, (
                f"expected >= {count} audit entries action={action!r} username={username!r} contains={contains!r}; "
                f"got {len(hits)}; actions of that user: "
                f"{[(e.get('action'), e.get('description')) for e in audit_entries(reader, username=username)][-30:]!r}"
            )
            return hits
        time.sleep(0.2)


def assert_must_enrol(resp: requests.Response) -> None:
    assert resp.status_code == 403, f"expected 403/1412, got {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert body.get("errorCode") == MUST_ENROL_CODE, body
