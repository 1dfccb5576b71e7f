"""Alerting end to end, on both storage backends (docs/alerts.md).

A real `palisade serve --config` whose `[smtp]` points at an aiosmtpd receiver, and a
chain whose webhook destination is a real HTTP receiver that checks the HMAC signature.
An API-only user with a custom monitoring role drives everything through the unmodified
`logicmonitor-sdk` (raw REST only where the SDK has no model: datasources, the chain's
Palisade-shaped destinations, and requests the SDK refuses to build) and pushes samples
with the unmodified `logicmonitor-data-sdk`, one sample per "poll", timestamps a minute
apart inside the 10-minute ingest window.

- Threshold from the datasource definition (`alertExpr "> 60 80 90"`, trigger after 3
  polls, clear after 2): exactly one critical alert opens on the 3rd poll over 90, an email
  and a signed webhook announce it, 2 polls back under clear it, and both destinations get
  the clear.
- SDT: a one-time ResourceSDT (SDK `add_sdt`) marks the device's new alert `sdted` and
  nothing is sent for it; once the SDT is deleted the alert is announced.
- Ack and notes through the SDK, the ack's audit entry, an ack without a comment refused.
- Bad SDTs (end before start, unknown timezone) refused with a clear message, nothing stored.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from palisade_harness import Token, assert_audited, assert_error, free_port, new_store, unique
from receivers import AlertHookReceiver, Delivered, SmtpReceiver
from signin_harness import write_config

MONITOR_PRIVILEGES = (
    "host_group:*:manage",
    "setting:collectorgroup.*:write",
    "setting:datasources:write",
    "setting:accesslogs:read",
)
USERNAME = "alert-monitor"
ONCALL = "oncall@example.com"
SENDER = "palisade-alerts@example.com"
HOOK_SECRET = "e2e-alert-hook-secret-0123456789"

DATASOURCE = "E2ELoad"
DATAPOINT = "load"
INSTANCE = "core0"
ALERT_EXPR = "> 60 80 90"
TRIGGER = 3  # alertTransitionInterval
CLEAR = 2  # alertClearTransitionInterval
POLL = 60  # collectInterval, seconds

WAIT = 10.0  # seconds for anything the portal does right away
SDT_TICK_WAIT = 25.0  # the SDT end is noticed by the 10 s background tick


# --------------------------------------------------------------------------- helpers


def wait_until(what: str, probe: Callable[[], Any], timeout: float = WAIT, interval: float = 0.1) -> Any:
    """Calls `probe` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(interval)


def mails_about(smtp: SmtpReceiver, device: str) -> list[Delivered]:
    return [m for m in list(smtp.messages) if f" {device} " in m.subject]


def hooks_about(hook: AlertHookReceiver, device: str) -> list[Delivered]:
    return [m for m in list(hook.messages) if m.to == device]


def docs_verify(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    """The verification snippet of docs/alerts.md, written independently of the receiver."""
    hdr = {k.lower(): v for k, v in headers.items()}
    ts = hdr["x-palisade-timestamp"]
    if abs(time.time() - int(ts)) > 300:
        return False
    expected = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, hdr["x-palisade-signature"])


def assert_signed(msg: Delivered) -> dict:
    """The webhook request verified (receiver and docs' snippet) and only with the right secret."""
    body = msg.raw["body"]
    assert msg.accepted, f"the receiver refused the webhook signature: {msg.headers!r}"
    assert docs_verify(HOOK_SECRET.encode(), msg.headers, body)
    assert not docs_verify(b"another-secret-of-16-bytes-or-more", msg.headers, body)
    assert not docs_verify(HOOK_SECRET.encode(), msg.headers, body + b" ")
    assert msg.path == AlertHookReceiver.PATH
    assert {k.lower(): v for k, v in msg.headers.items()}["content-type"].startswith("application/json")
    return msg.raw["payload"]


def sdk_error(fn, *args, **kwargs) -> tuple[int, dict]:
    """Calls an SDK method expected to fail with an HTTP error: (status, LM error body)."""
    from logicmonitor_sdk.rest import ApiException

    try:
        fn(*args, **kwargs)
    except ApiException as exc:
        body = exc.body.decode() if isinstance(exc.body, bytes) else exc.body
        try:
            parsed = json.loads(body)
        except (TypeError, ValueError):
            raise AssertionError(f"error body is not JSON: {body!r}") from None
        return exc.status, parsed
    raise AssertionError(f"{getattr(fn, '__name__', fn)} unexpectedly succeeded")


# --------------------------------------------------------------------------- the portal


class AlertingPortal:
    """A server with `[smtp]`, a monitoring API user, a datasource, a chain and a rule."""

    def __init__(self, store, directory: Path):
        import logicmonitor_data_sdk
        import logicmonitor_sdk as lm
        from logicmonitor_data_sdk.api.metrics import Metrics

        self.store = store
        self.smtp = SmtpReceiver(free_port()).start()
        self.hook = AlertHookReceiver(HOOK_SECRET).start()
        self.hook_url = f"http://127.0.0.1:{self.hook.port}{AlertHookReceiver.PATH}"
        config = write_config(directory / "palisade.toml", smtp_url=self.smtp.url, smtp_from=SENDER)
        self.server = store.serve("--config", str(config))

        args = ["role", "add", "e2e-alerting"]
        for p in MONITOR_PRIVILEGES:
            args += ["--privilege", p]
        store.cli_json(*args)
        user = store.cli_json("user", "add", USERNAME, "--email", f"{USERNAME}@example.com", "--role", "e2e-alerting", "--api-only")
        self.lmv1 = Token.from_cli(store.cli_json("token", "create", USERNAME))
        self.lmv1.admin_id = user["id"]
        self.rest = self.server.rest(self.lmv1)
        self.api = self.server.sdk(self.lmv1)

        # The data SDK keeps the first Configuration as a process-wide default: start afresh.
        logicmonitor_data_sdk.Configuration.set_default(None)
        conf = logicmonitor_data_sdk.Configuration(company="palisade", id=self.lmv1.access_id, key=self.lmv1.secret)
        conf._host = self.server.base + "/rest"
        self.metrics = Metrics(batch=False, interval=0, response_callback=None,
                               api_client=logicmonitor_data_sdk.ApiClient(conf))

        # The datasource whose datapoint carries the default threshold.
        ds = self.rest.ok("POST", "/setting/datasources", json_body={
            "name": DATASOURCE,
            "displayName": "E2E load",
            "description": "pushed by the e2e suite; applies to no device",
            "group": "e2e",
            "appliesTo": "",
            "collectMethod": "script",
            "collectInterval": POLL,
            "collector": {"method": "script", "script": "load.sh", "keys": {DATAPOINT: "load"}},
            "dataPoints": [{
                "name": DATAPOINT,
                "type": "gauge",
                "alertExpr": ALERT_EXPR,
                "alertTransitionInterval": TRIGGER,
                "alertClearTransitionInterval": CLEAR,
            }],
        })
        assert ds["name"] == DATASOURCE and ds["dataPoints"][0]["alertExpr"] == ALERT_EXPR, ds

        # The chain: Palisade's destination shape (the SDK's `Chain` model has no address or URL).
        chain = self.rest.ok("POST", "/setting/alert/chains", json_body={
            "name": unique("e2e-oncall-"),
            "description": "email + signed webhook",
            "repeatInterval": 0,
            "destinations": [
                {"type": "email", "addr": ONCALL},
                {"type": "webhook", "url": self.hook_url, "secret": HOOK_SECRET},
            ],
        })
        assert HOOK_SECRET not in json.dumps(chain), "the webhook secret is never returned"
        self.chain_id, self.chain_name = chain["id"], chain["name"]
        read = self.api.get_escalation_chain_by_id(self.chain_id)
        assert read.name == self.chain_name and len(read.destinations) == 2
        assert HOOK_SECRET not in self.rest.call("GET", f"/setting/alert/chains/{self.chain_id}").text

        # The rule, through the SDK: every alert goes to the chain.
        self.rule_name = unique("e2e-everything-")
        rule = self.api.add_alert_rule(lm.AlertRule(
            name=self.rule_name, priority=100, level_str="All", escalating_chain_id=self.chain_id,
            send_anomaly_suppressed_alert=False,
        ))
        assert rule.name == self.rule_name and rule.escalating_chain_id == self.chain_id and rule.id
        self.rule_id = rule.id
        assert [r.id for r in self.api.get_alert_rule_list(size=1000).items if r.name == self.rule_name] == [rule.id]
        assert self.api.get_alert_rule_by_id(rule.id, fields="name").name == self.rule_name

        self.group = self.api.add_device_group(lm.DeviceGroup(name=unique("e2e-alerting-"), parent_id=1))

    def close(self) -> None:
        self.smtp.stop()
        self.hook.stop()
        # Let the SDK clients (and their thread pools) go now, not at interpreter exit.
        self.api = self.metrics = None
        gc.collect()

    # ---- devices and samples

    def device(self, prefix: str):
        import logicmonitor_sdk as lm

        name = unique(prefix)
        dev = self.api.add_device(lm.Device(name="127.0.0.1", display_name=name, preferred_collector_id=0,
                                            host_group_ids=str(self.group.id)))
        assert dev.display_name == name
        return dev

    def push(self, device: str, ts: int, value: float) -> None:
        """One poll: one sample of E2ELoad/core0/load for `device` at `ts` (epoch seconds)."""
        from logicmonitor_data_sdk.models import DataPoint, DataSource, DataSourceInstance, Resource

        resp = self.metrics.send_metrics(
            resource=Resource(ids={"system.displayname": device}, name=device, create=False),
            datasource=DataSource(name=DATASOURCE, display_name="E2E load", group="e2e"),
            instance=DataSourceInstance(name=INSTANCE, display_name="core 0"),
            datapoint=DataPoint(name=DATAPOINT, aggregation_type="none", type="guage"),
            values={str(ts): repr(float(value))},
        )
        # (data, HTTP status, headers): LogicMonitor's 202 "accepted".
        assert isinstance(resp, tuple) and resp[1] == 202, f"push refused: {resp!r}"

    def polls(self, device: str, start: int, values: list[float]) -> int:
        """Pushes one poll per value, POLL seconds apart from `start`; returns the next poll's time."""
        ts = start
        for v in values:
            self.push(device, ts, v)
            ts += POLL
        return ts

    # ---- alerts

    def active(self, device: str) -> list:
        page = self.api.get_alert_list(filter=f'monitorObjectName:"{device}"', size=100)
        return [a for a in page.items if a.monitor_object_name == device]

    def cleared(self, device: str) -> list:
        page = self.api.get_alert_list(filter=f'monitorObjectName:"{device}",cleared:true', size=100)
        return [a for a in page.items if a.monitor_object_name == device]

    def open_alert(self, device: str, t0: int, values: list[float]):
        """Pushes `values` (the last TRIGGER of them over the critical level); returns the one alert."""
        self.polls(device, t0, values)
        alerts = wait_until(f"an alert for {device}", lambda: self.active(device))
        assert len(alerts) == 1, alerts
        return alerts[0]


@pytest.fixture(scope="module")
def alerting(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertingPortal]:
    with new_store(backend, tmp_path_factory) as store:
        ap = AlertingPortal(store, tmp_path_factory.mktemp(f"alerting-{backend}-"))
        try:
            yield ap
        finally:
            ap.close()


# --------------------------------------------------------------------------- tests


def test_threshold_opens_once_notifies_signed_and_clears(alerting: AlertingPortal) -> None:
    ap = alerting
    dev = ap.device("e2e-load-")
    name = dev.display_name
    t0 = int(time.time()) - 540

    # Under the threshold, then over the critical level: TRIGGER - 1 polls are not enough.
    ts = ap.polls(name, t0, [30.0, 95.0, 96.0])
    assert ap.active(name) == [], "an alert opened before alertTransitionInterval polls"
    assert mails_about(ap.smtp, name) == [] and hooks_about(ap.hook, name) == []
    # The third poll over it opens exactly one critical alert.
    opened_at = ts
    a = ap.open_alert(name, ts, [97.0])
    ts += POLL
    assert a.severity == 4
    assert a.sdted is False
    assert a.cleared is False and a.acked is False
    assert a.type == "dataSourceAlert"
    assert a.id.startswith("DS"), a.id
    assert a.monitor_object_id == dev.id and a.monitor_object_name == name
    assert a.resource_template_name == DATASOURCE
    assert a.instance_name == INSTANCE
    assert a.data_point_name == DATAPOINT
    assert a.threshold == "> 90"
    assert a.alert_value == "97"
    assert a.start_epoch == opened_at
    assert ap.api.get_alert_by_id(a.id).id == a.id
    # The whole active list holds it once.
    everything = ap.api.get_alert_list(size=1000).items
    assert [x.id for x in everything if x.monitor_object_name == name] == [a.id]

    # The email, through the configured [smtp] server.
    subject = f"[Palisade] critical: {name} {DATASOURCE} {INSTANCE} {DATAPOINT} = 97 (> 90)"
    mail = wait_until(f"the open email for {name}", lambda: mails_about(ap.smtp, name))[0]
    assert mail.subject == subject, mail.subject
    assert mail.to == ONCALL and mail.sender == SENDER
    for line in (f"Device: {name} (id {dev.id})", f"Datasource: {DATASOURCE}", f"Datapoint: {DATAPOINT}",
                 "Event: open", "Severity: critical", "Value: 97", "Threshold: > 90", f"Alert: {a.id}",
                 f"Rule: {ap.rule_name}", f"Chain: {ap.chain_name}"):
        assert line in mail.text, f"{line!r} not in the email body:\n{mail.text}"

    # The webhook, signed with the chain's secret.
    hook = wait_until(f"the open webhook for {name}", lambda: hooks_about(ap.hook, name))[0]
    payload = assert_signed(hook)
    assert {k.lower(): v for k, v in hook.headers.items()}["x-palisade-event"] == "open"
    assert payload["event"] == "open" and payload["subject"] == subject
    assert abs(payload["sentAt"] - time.time()) < 120
    body_alert = payload["alert"]
    assert body_alert["id"] == a.id and body_alert["severity"] == 4 and body_alert["sdted"] is False
    assert body_alert["dataPointName"] == DATAPOINT and body_alert["monitorObjectName"] == name
    assert body_alert["rule"] == ap.rule_name and body_alert["chain"] == ap.chain_name
    # Routing is recorded on the alert.
    routed = wait_until("rule and chain on the alert", lambda: (lambda x: x if x.rule else None)(ap.api.get_alert_by_id(a.id)))
    assert routed.rule == ap.rule_name and routed.chain == ap.chain_name

    # One poll back under is not enough; CLEAR polls clear it.
    ts = ap.polls(name, ts, [10.0])
    assert [x.id for x in ap.active(name)] == [a.id]
    ap.polls(name, ts, [10.0])
    cleared_at = ts
    wait_until(f"the alert of {name} cleared", lambda: ap.active(name) == [])
    gone = ap.cleared(name)
    assert [x.id for x in gone] == [a.id], gone
    assert gone[0].cleared is True and gone[0].end_epoch == cleared_at
    raw = ap.rest.get(f"/alert/alerts/{a.id}")
    assert raw["cleared"] is True and raw["clearValue"] == "10", raw
    assert a.id in [x["id"] for x in ap.rest.get("/alert/alerts", params={"filter": "cleared:*", "size": 1000})["items"]]
    assert a.id not in [x.id for x in ap.api.get_alert_list(size=1000).items]

    # The clear reaches both destinations.
    clear_subject = f"[Palisade] cleared: {name} {DATASOURCE} {INSTANCE} {DATAPOINT} = 10"
    mails = wait_until(f"the clear email for {name}", lambda: (lambda m: m if len(m) >= 2 else None)(mails_about(ap.smtp, name)))
    assert mails[1].subject == clear_subject, mails[1].subject
    assert "Event: clear" in mails[1].text and mails[1].to == ONCALL
    hooks = wait_until(f"the clear webhook for {name}", lambda: (lambda h: h if len(h) >= 2 else None)(hooks_about(ap.hook, name)))
    clear = assert_signed(hooks[1])
    assert clear["event"] == "clear" and clear["subject"] == clear_subject
    assert clear["alert"]["id"] == a.id and clear["alert"]["cleared"] is True
    # Exactly one open and one clear each.
    assert [m.subject for m in mails_about(ap.smtp, name)] == [subject, clear_subject]
    assert [h.channel for h in hooks_about(ap.hook, name)] == ["open", "clear"]


def test_sdt_marks_the_alert_and_holds_notifications(alerting: AlertingPortal) -> None:
    import logicmonitor_sdk as lm

    ap = alerting
    dev = ap.device("e2e-sdt-")
    name = dev.display_name
    now_ms = int(time.time() * 1000)
    created = ap.api.add_sdt(lm.ResourceSDT(
        type="ResourceSDT", sdt_type="oneTime", device_id=dev.id,
        start_date_time=now_ms - 60_000, end_date_time=now_ms + 3_600_000, comment="e2e patching",
    ))
    assert isinstance(created, lm.ResourceSDT), type(created)
    assert isinstance(created.id, str) and created.id.startswith("R_"), created.id
    assert created.type == "ResourceSDT" and created.sdt_type == "oneTime"
    assert created.device_id == dev.id and created.device_display_name == name
    assert created.start_date_time == now_ms - 60_000 and created.end_date_time == now_ms + 3_600_000
    assert created.is_effective is True and created.admin == USERNAME and created.comment == "e2e patching"
    one = ap.api.get_sdt_by_id(created.id)
    assert isinstance(one, lm.ResourceSDT) and one.id == created.id and one.device_id == dev.id
    listed = [s for s in ap.api.get_sdt_list(size=1000).items if s.id == created.id]
    assert len(listed) == 1 and isinstance(listed[0], lm.ResourceSDT) and listed[0].is_effective is True
    assert [s["id"] for s in ap.rest.get(f"/device/devices/{dev.id}/sdts")["items"]] == [created.id]

    # Over the threshold during the SDT: the alert opens, marked sdted.
    t0 = int(time.time()) - 540
    a = ap.open_alert(name, t0, [95.0] * TRIGGER)
    seen_at = time.monotonic()
    assert a.sdted is True and a.severity == 4 and a.cleared is False
    assert ap.api.get_alert_by_id(a.id).sdted is True

    # A barrier: an alert on another device, opened after this one, is announced, so the
    # notifier has already handled the SDT alert (it handles wake-ups in order)...
    other = ap.device("e2e-barrier-").display_name
    ap.open_alert(other, t0, [95.0] * TRIGGER)
    wait_until("the barrier's email", lambda: mails_about(ap.smtp, other))
    wait_until("the barrier's webhook", lambda: hooks_about(ap.hook, other))
    # ...and a few seconds on, nothing was sent for the device in SDT.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - seen_at)))
    assert mails_about(ap.smtp, name) == [], [m.subject for m in mails_about(ap.smtp, name)]
    assert hooks_about(ap.hook, name) == [], [h.subject for h in hooks_about(ap.hook, name)]
    assert ap.api.get_alert_by_id(a.id).sdted is True

    # Deleting the SDT is allowed; the alert is then announced as new.
    ap.api.delete_sdt_by_id(created.id)
    status, err = sdk_error(ap.api.get_sdt_by_id, created.id)
    assert status == 404 and err["errorMessage"], err
    assert created.id not in [s.id for s in ap.api.get_sdt_list(size=1000).items]
    mail = wait_until(f"the email for {name} after the SDT", lambda: mails_about(ap.smtp, name), timeout=SDT_TICK_WAIT)[0]
    assert mail.subject == f"[Palisade] critical: {name} {DATASOURCE} {INSTANCE} {DATAPOINT} = 95 (> 90)"
    hook = wait_until(f"the webhook for {name} after the SDT", lambda: hooks_about(ap.hook, name))[0]
    payload = assert_signed(hook)
    assert payload["event"] == "open" and payload["alert"]["id"] == a.id and payload["alert"]["sdted"] is False
    assert ap.api.get_alert_by_id(a.id).sdted is False


def test_ack_and_note_through_the_sdk_are_audited(alerting: AlertingPortal) -> None:
    import logicmonitor_sdk as lm

    ap = alerting
    name = ap.device("e2e-ack-").display_name
    t0 = int(time.time()) - 540
    a = ap.open_alert(name, t0, [50.0] + [99.0] * TRIGGER)
    assert a.acked is False and a.severity == 4
    path = f"/alert/alerts/{a.id}/ack"

    # Without a comment: refused with a message, nothing changes. (The SDK refuses to build
    # such a request itself, so it goes raw.)
    with pytest.raises(ValueError):
        lm.AlertAck()
    for body in ({}, {"ackComment": ""}, {"ackComment": "   "}):
        err = assert_error(ap.rest.call("POST", path, json_body=body), 400)
        assert "ackComment" in err["errorMessage"], err
    assert ap.api.get_alert_by_id(a.id).acked is False

    comment = unique("on it, disk cleanup ")
    before = int(time.time())
    ap.api.ack_alert_by_id(body=lm.AlertAck(ack_comment=comment), id=a.id)
    acked = ap.api.get_alert_by_id(a.id)
    assert acked.acked is True
    assert acked.acked_by == USERNAME
    assert acked.ack_comment == comment
    assert before - 5 <= acked.acked_epoch <= time.time() + 5
    assert acked.cleared is False and acked.severity == 4

    note = unique("root cause: log rotation ")
    ap.api.add_alert_note_by_id(body=lm.AlertAck(ack_comment=note), id=a.id)
    notes = ap.rest.get(f"/alert/alerts/{a.id}")["notes"]
    assert [(n["by"], n["comment"]) for n in notes] == [(USERNAME, note)], notes
    status, err = sdk_error(ap.api.add_alert_note_by_id, body=lm.AlertAck(ack_comment="x"), id="DS999999")
    assert status == 404 and err["errorMessage"], err

    # The ack is in the access log: the change itself and the API call.
    entries = ap.rest.list_all("/setting/accesslogs")
    acks = [e for e in entries if e.get("action") == "alert.ack"]
    assert any(e["username"] == USERNAME and f"acknowledged alert {a.id}: {comment}" in e["description"] for e in acks), acks
    assert_audited(ap.rest, method="POST", path=f"/alert/alerts/{a.id}/ack", status=200)
    assert_audited(ap.rest, method="POST", path=f"/alert/alerts/{a.id}/ack", status=400)

    # Once cleared, an alert can no longer be acknowledged.
    ap.polls(name, t0 + (1 + TRIGGER) * POLL, [10.0] * CLEAR)
    wait_until(f"the alert of {name} cleared", lambda: ap.active(name) == [])
    status, err = sdk_error(ap.api.ack_alert_by_id, body=lm.AlertAck(ack_comment="late"), id=a.id)
    assert status == 400 and "cleared" in err["errorMessage"], err
    assert ap.rest.get(f"/alert/alerts/{a.id}")["ackComment"] == comment


def test_bad_sdt_input_is_refused_and_stores_nothing(alerting: AlertingPortal) -> None:
    import logicmonitor_sdk as lm

    ap = alerting
    dev = ap.device("e2e-badsdt-")
    before = sorted(s.id for s in ap.api.get_sdt_list(size=1000).items)
    now_ms = int(time.time() * 1000)

    status, err = sdk_error(ap.api.add_sdt, lm.ResourceSDT(
        type="ResourceSDT", sdt_type="oneTime", device_id=dev.id,
        start_date_time=now_ms + 3_600_000, end_date_time=now_ms,
    ))
    assert status == 400 and err["errorCode"] == 1400, err
    assert "endDateTime" in err["errorMessage"] and "must be after startDateTime" in err["errorMessage"], err

    status, err = sdk_error(ap.api.add_sdt, lm.ResourceSDT(
        type="ResourceSDT", sdt_type="oneTime", device_id=dev.id, timezone="Mars/Olympus",
        start_date_time=now_ms, end_date_time=now_ms + 3_600_000,
    ))
    assert status == 400 and err["errorCode"] == 1400, err
    assert "unknown timezone" in err["errorMessage"] and "Mars/Olympus" in err["errorMessage"], err

    # Nothing was stored.
    assert sorted(s.id for s in ap.api.get_sdt_list(size=1000).items) == before
    assert ap.rest.get(f"/device/devices/{dev.id}/sdts")["items"] == []
    assert_audited(ap.rest, method="POST", path="/sdt/sdts", status=400)
