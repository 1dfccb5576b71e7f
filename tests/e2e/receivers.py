"""Real peers on loopback for the code-delivery tests.

- `SmtpReceiver`: an aiosmtpd SMTP server (127.0.0.1) that keeps every mail it
  is handed; the tests parse the code out of the delivered message.
- `WebhookReceiver`: an `http.server` SMS/voice gateway that checks Palisade's
  webhook signature (`X-Palisade-Signature: sha256=<hex HMAC-SHA256(secret,
  timestamp + "." + body)>`, `X-Palisade-Timestamp` within 5 minutes) and
  answers 401 to anything unsigned or wrongly signed.
- `TwilioReceiver`: a Twilio-compatible REST API (`POST /2010-04-01/Accounts/
  {sid}/Messages.json` and `Calls.json`, form-encoded, HTTP basic auth with the
  account SID and auth token) answering 201 like Twilio, 401 on bad credentials.

Every receiver records what it got (including refused requests) and lets a
test wait for the next message to one recipient. All of them run in the test
process, in threads, and are stopped by the fixtures that start them.
"""

from __future__ import annotations

import base64
import dataclasses
import email
import email.policy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

CODE_RE = re.compile(r"(?<!\d)(\d{6})(?!\d)")

Clock = Callable[[], float]


@dataclasses.dataclass
class Delivered:
    """One message as a receiver saw it."""

    to: str
    text: str  # what a person reads (mail body, SMS text, spoken text)
    raw: Any  # the parsed mail, JSON payload or form
    accepted: bool  # whether the receiver answered with success
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    path: str = ""
    subject: str = ""
    sender: str = ""
    channel: str = ""


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Delivered] = []
        self._cond = threading.Condition()

    def add(self, msg: Delivered) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def count(self, to: str | None = None) -> int:
        with self._cond:
            return len([m for m in self.messages if to is None or m.to == to])

    def wait(self, to: str, *, after: int = 0, timeout: float = 10.0) -> Delivered:
        """The first message to `to` beyond the first `after` ones to that recipient."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                mine = [m for m in self.messages if m.to == to]
                if len(mine) > after:
                    return mine[after]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.to, m.path, m.accepted) for m in self.messages]
                    raise AssertionError(f"no message #{after + 1} to {to!r} within {timeout}s; got {seen!r}")
                self._cond.wait(left)


def code_in(text: str) -> str:
    """The one six-digit code in a message (spoken digits may be separated by ', ')."""
    codes = set(CODE_RE.findall(text))
    spoken = re.sub(r"(?<=\d), (?=\d)", "", text)
    codes |= set(CODE_RE.findall(spoken))
    assert len(codes) == 1, f"expected exactly one 6-digit code in {text!r}, found {sorted(codes)}"
    return codes.pop()


# --------------------------------------------------------------------------- SMTP


class _SmtpHandler:
    def __init__(self, inbox: _Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        body = parsed.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        for rcpt in envelope.rcpt_tos:
            self.inbox.add(
                Delivered(
                    to=rcpt,
                    text=text,
                    raw=parsed,
                    accepted=True,
                    headers={k: str(v) for k, v in parsed.items()},
                    subject=str(parsed.get("Subject", "")),
                    sender=envelope.mail_from,
                    channel="email",
                )
            )
        return "250 Message accepted for delivery"


class SmtpReceiver(_Inbox):
    """An SMTP server on 127.0.0.1 (plain SMTP, no auth) collecting mail."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpReceiver":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


# --------------------------------------------------------------------------- HTTP peers


class _HttpPeer(_Inbox):
    def __init__(self) -> None:
        super().__init__()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, answer = peer.handle(self.path, {k: v for k, v in self.headers.items()}, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=type(self).__name__, daemon=True)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        raise NotImplementedError

    def start(self):
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def _header(headers: dict[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None


class WebhookReceiver(_HttpPeer):
    """An SMS/voice gateway that verifies Palisade's HMAC signature.

    `clock` is the time the portal believes it is (the portal may run on a
    shifted clock); timestamps more than 5 minutes from it are refused.
    """

    PATH = "/sms"

    def __init__(self, secret: str, clock: Clock = time.time) -> None:
        super().__init__()
        self.secret = secret.encode()
        self.clock = clock

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.PATH}"

    def signature_ok(self, headers: dict[str, str], body: bytes) -> bool:
        ts = _header(headers, "X-Palisade-Timestamp")
        sig = _header(headers, "X-Palisade-Signature")
        if not ts or not sig or not ts.isdigit() or not sig.startswith("sha256="):
            return False
        if abs(self.clock() - int(ts)) > 300:
            return False
        expected = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(sig[len("sha256="):].lower(), expected)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        ok = path == self.PATH and self.signature_ok(headers, body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            ok, payload = False, {}
        self.add(
            Delivered(
                to=str(payload.get("number", "")),
                text=str(payload.get("message", "")),
                raw=payload,
                accepted=ok,
                headers=headers,
                path=path,
                channel=str(payload.get("channel", "")),
            )
        )
        return (200, {"ok": True}) if ok else (401, {"error": "bad signature"})


class TwilioReceiver(_HttpPeer):
    """A Twilio-compatible Messages/Calls API for one account."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth_ok(self, headers: dict[str, str]) -> bool:
        value = _header(headers, "Authorization") or ""
        if not value.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
        except ValueError:
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(password, self.auth_token)

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        prefix = f"/2010-04-01/Accounts/{self.account_sid}/"
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
        kind = {prefix + "Messages.json": "sms", prefix + "Calls.json": "voice"}.get(path, "")
        form_ok = "application/x-www-form-urlencoded" in (_header(headers, "Content-Type") or "")
        ok = bool(kind) and form_ok and self.auth_ok(headers)
        if kind == "voice":
            twiml = form.get("Twiml", "")
            said = re.findall(r"<Say>(.*?)</Say>", twiml)
            text = said[0] if said else ""
        else:
            text = form.get("Body", "")
        self.add(
            Delivered(
                to=form.get("To", ""),
                text=text,
                raw=form,
                accepted=ok,
                headers=headers,
                path=path,
                sender=form.get("From", ""),
                channel=kind,
            )
        )
        if not ok:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        sid = ("SM" if kind == "sms" else "CA") + secrets.token_hex(16)
        return 201, {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From")}


# --------------------------------------------------------------------------- alert webhooks


class AlertHookReceiver(WebhookReceiver):
    """An alert-notification webhook endpoint (docs/alerts.md, "Webhook payload").

    Checks the signature like `WebhookReceiver` (answers 401 when it does not
    verify) and files every request under the alert's device: `to` is
    `alert.monitorObjectName`, `channel` the `event` (open, change, repeat,
    clear), `subject` and `text` the payload's subject; `raw` holds
    `{"payload": <parsed JSON>, "body": <raw bytes as received>}` so a test can
    verify the signature itself.
    """

    PATH = "/alert-hook"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        ok = path == self.PATH and self.signature_ok(headers, body)
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            ok, payload = False, {}
        alert = payload.get("alert") if isinstance(payload.get("alert"), dict) else {}
        subject = str(payload.get("subject", ""))
        self.add(
            Delivered(
                to=str(alert.get("monitorObjectName", "")),
                text=subject,
                raw={"payload": payload, "body": body},
                accepted=ok,
                headers=headers,
                path=path,
                subject=subject,
                channel=str(payload.get("event", "")),
            )
        )
        return (200, {"ok": True}) if ok else (401, {"error": "bad signature"})
