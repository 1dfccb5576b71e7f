"""Push ingest survives `kill -9`: every acknowledged sample is readable after a restart.

`POST /rest/v2/metric/ingest` answers 202 only once the time-series store has made the
samples durable (WAL group commit). Design, per backend:

- `palisade serve` (rate limits lifted), an API-only user with `host_group:*:manage`
  (creating devices) and an LMv1 and a Bearer token made with the CLI;
- PUSHERS threads, each with its own keep-alive connection and its own DEVICES devices,
  send raw ingest requests as the data SDK does (gzip, LMv1 over the uncompressed body,
  `create=true`). Request k of a pusher carries DEVICES x INSTANCES x len(DATAPOINTS)
  samples at one timestamp of its own (even pushers count down from t0, i.e. every
  append is out of order, odd ones count up from t0 - WINDOW: in order), and every value
  encodes (k, device, instance, datapoint); a pusher's series are its own, so (series,
  timestamp) identifies the request of every sample. Each answer is recorded: 202 with
  `errors: []` = acknowledged; no answer = unknown;
- after LOAD_SECONDS of load (counted once every pusher has created its devices) the
  server gets SIGKILL at a moment when requests are in flight;
- `palisade serve` restarts on the same data dir / database and takes one more request per
  pusher; then every acknowledged sample must be there with its value: through `/api/v1/query_range` (step 1 s over each
  pusher's series, Bearer token) and, for one instance per pusher, through LogicMonitor's
  instance data endpoint (LMv1). Samples of unanswered requests may or may not be there.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import threading
import time
from typing import Iterator

import pytest
import requests

from palisade_harness import Store, Token, lmv1_authorization, new_store, unique

PUSHERS = 4
DEVICES = 20
INSTANCES = 5
DATAPOINTS = ("alpha", "beta")
SAMPLES_PER_REQUEST = DEVICES * INSTANCES * len(DATAPOINTS)
# Timestamps are whole seconds inside the 10-minute window; keep a minute of margin.
WINDOW = 540
LOAD_SECONDS = 2.5
MIN_ACKED_SAMPLES = 3000

SERVE_ARGS = ("--token-rate-limit", "100000000", "--ip-rate-limit", "100000000")
PRIVILEGES = ("host_group:*:manage",)


def sample_value(k: int, device: int, instance: int, datapoint: int) -> float:
    """Unique per (request, series) within a pusher: k, then device, instance, datapoint."""
    return float(k * 1000 + device * 10 + instance * len(DATAPOINTS) + datapoint)


@dataclasses.dataclass
class Outcome:
    k: int
    ts: int
    status: int | None  # None: no answer (connection error)
    detail: str = ""


class Pusher(threading.Thread):
    def __init__(self, idx: int, base: str, token: Token, prefix: str, datasource: str, t0: int,
                 stop: threading.Event, killed: threading.Event):
        super().__init__(name=f"pusher-{idx}", daemon=True)
        self.idx = idx
        self.url = base + "/rest/v2/metric/ingest?create=true"
        self.token = token
        self.datasource = datasource
        self.devices = [f"{prefix}-p{idx}-d{d:02d}" for d in range(DEVICES)]
        self.t0 = t0
        self.stop_event = stop
        self.killed = killed
        self.session = requests.Session()  # no retries: a request is sent at most once
        self.outcomes: list[Outcome] = []
        self.in_flight = False
        self.first_ack = threading.Event()

    def ts_of(self, k: int) -> int:
        return self.t0 - k if self.idx % 2 == 0 else self.t0 - WINDOW + 1 + k

    def body(self, k: int) -> str:
        ts = str(self.ts_of(k))
        payloads = []
        for d, dev in enumerate(self.devices):
            payloads.append({
                "resourceName": dev,
                "resourceIds": {"system.displayname": dev},
                "dataSource": self.datasource,
                "dataSourceGroup": "durability",
                "instances": [{
                    "instanceName": f"inst{i}",
                    "dataPoints": [{
                        "dataPointName": dp,
                        "dataPointType": "GAUGE",
                        "dataPointAggregationType": "none",
                        "values": {ts: repr(sample_value(k, d, i, j))},
                    } for j, dp in enumerate(DATAPOINTS)],
                } for i in range(INSTANCES)],
            })
        return json.dumps(payloads, separators=(",", ":"))

    def send(self, k: int) -> Outcome:
        """Sends request k once (no retry) and classifies the answer."""
        text = self.body(k)
        data = gzip.compress(text.encode("utf-8"), compresslevel=1)
        headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            # The data SDK signs the uncompressed body and the path below /rest.
            "Authorization": lmv1_authorization(self.token.access_id or "", self.token.secret, "POST", text,
                                                "/v2/metric/ingest"),
        }
        try:
            resp = self.session.post(self.url, data=data, headers=headers, timeout=30)
        except requests.RequestException as exc:
            return Outcome(k, self.ts_of(k), None, f"{type(exc).__name__} (killed={self.killed.is_set()})")
        detail = ""
        if resp.status_code == 202:
            try:
                body = resp.json()
                if body.get("code") != 202 or body.get("errors"):
                    detail = f"202 with {body!r}"[:500]
            except ValueError:
                detail = f"202 with a non-JSON body {resp.text[:200]!r}"
        else:
            detail = resp.text[:500]
        return Outcome(k, self.ts_of(k), resp.status_code, detail)

    def run(self) -> None:
        for k in range(WINDOW):
            if self.stop_event.is_set():
                return
            self.in_flight = True
            o = self.send(k)
            self.in_flight = False
            self.outcomes.append(o)
            if o.status == 202 and not o.detail:
                self.first_ack.set()
            elif not self.killed.is_set():
                # Not expected before the kill: stop, the test reports it.
                self.stop_event.set()
                return
            elif o.status is None:
                return  # the server is gone

    def acked(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 202 and not o.detail]

    def unanswered(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is None]


@pytest.fixture
def durable_store(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with new_store(backend, tmp_path_factory) as store:
        yield store


def bootstrap(store: Store) -> tuple[Token, Token]:
    args = ["role", "add", "e2e-pusher"]
    for p in PRIVILEGES:
        args += ["--privilege", p]
    store.cli_json(*args)
    store.cli_json("user", "add", "pusher", "--email", "pusher@example.com", "--role", "e2e-pusher", "--api-only")
    lmv1 = Token.from_cli(store.cli_json("token", "create", "pusher"))
    bearer = Token.from_cli(store.cli_json("token", "create", "pusher", "--bearer"))
    assert lmv1.kind == "lmv1" and bearer.kind == "bearer"
    return lmv1, bearer


def read_pusher_series(base: str, bearer: Token, datasource: str, p: Pusher, ts_lo: int, ts_hi: int) -> dict:
    """{(device, instance, datapoint): {ts_seconds: value}} at every second of [ts_lo, ts_hi]."""
    resp = requests.get(
        base + "/api/v1/query_range",
        headers={"Authorization": f"Bearer {bearer.secret}"},
        params={
            "query": f'{{datasource="{datasource}",device=~"{p.devices[0][:-3]}d[0-9]+"}}',
            "start": str(ts_lo),
            "end": str(ts_hi),
            "step": "1",
        },
        timeout=120,
    )
    assert resp.status_code == 200, resp.text[:1000]
    body = resp.json()
    assert body["status"] == "success" and body["data"]["resultType"] == "matrix", str(body)[:1000]
    out: dict = {}
    for series in body["data"]["result"]:
        m = series["metric"]
        key = (m["device"], m["instance"], m["datapoint"])
        assert key not in out, f"series returned twice: {m}"
        out[key] = {int(round(float(t))): float(v) for t, v in series["values"]}
    return out


def test_acknowledged_samples_survive_kill9(durable_store: Store, backend: str) -> None:
    store = durable_store
    started = time.monotonic()
    server = store.serve(*SERVE_ARGS)
    lmv1, bearer = bootstrap(store)
    prefix = unique("dur")
    datasource = f"Durability_{prefix}"

    t0 = int(time.time())
    stop, killed = threading.Event(), threading.Event()
    pushers = [Pusher(i, server.base, lmv1, prefix, datasource, t0, stop, killed) for i in range(PUSHERS)]
    for p in pushers:
        p.start()
    try:
        # Each pusher's first request creates its devices; the measured load starts after.
        deadline = time.monotonic() + 45
        for p in pushers:
            while not p.first_ack.wait(0.1):
                assert not stop.is_set(), f"a request failed before the kill: {[p.outcomes[-1:] for p in pushers]}"
                assert time.monotonic() < deadline, "pushers did not get their first 202 within 45 s"
        load_start = time.monotonic()
        while time.monotonic() - load_start < LOAD_SECONDS:
            assert not stop.is_set(), f"a request failed before the kill: {[p.outcomes[-1:] for p in pushers]}"
            # Do not run out of timestamps before the kill (a fast release build).
            if max(len(p.outcomes) for p in pushers) > WINDOW * 0.8:
                break
            time.sleep(0.02)
        # SIGKILL at a moment when requests are in flight.
        wait_until = time.monotonic() + 2
        while sum(p.in_flight for p in pushers) < min(2, PUSHERS) and time.monotonic() < wait_until:
            time.sleep(0.0005)
        in_flight_at_kill = sum(p.in_flight for p in pushers)
        acked_before_kill = sum(len(p.acked()) for p in pushers) * SAMPLES_PER_REQUEST
        assert server.proc is not None
        killed.set()  # first: a connection error from here on is the kill's
        server.proc.kill()  # SIGKILL: no shutdown, no flush
        server.proc.wait(timeout=10)
        load_seconds = time.monotonic() - load_start
    finally:
        stop.set()
        killed.set()
        for p in pushers:
            p.join(timeout=40)
    assert not any(p.is_alive() for p in pushers), "a pusher thread hangs"
    assert server.proc.returncode == -9, f"server exited on its own ({server.proc.returncode}) before the kill"

    # Nothing but the 202s and the errors caused by the kill.
    bad = [(p.idx, o) for p in pushers for o in p.outcomes if o.status is not None and (o.status != 202 or o.detail)]
    assert not bad, f"unexpected answers: {bad[:5]}"
    early = [(p.idx, o) for p in pushers for o in p.unanswered() if "killed=False" in o.detail]
    assert not early, f"requests failed before the kill: {early[:5]}"

    acked_requests = sum(len(p.acked()) for p in pushers)
    acked = acked_requests * SAMPLES_PER_REQUEST
    unanswered = sum(len(p.unanswered()) for p in pushers)
    print(f"\n[{backend}] load {load_seconds:.1f}s: {acked_requests} requests acked ({acked} samples; "
          f"{acked_before_kill} counted at the kill), {in_flight_at_kill} in flight at SIGKILL, "
          f"{unanswered} without an answer")
    assert acked >= MIN_ACKED_SAMPLES, f"only {acked} samples acknowledged before the kill: not a meaningful test"

    # ---- restart on the same data dir / database and read everything back.
    restart = time.monotonic()
    server2 = store.serve(*SERVE_ARGS)
    restart_s = time.monotonic() - restart

    # The restarted server takes pushes again (its WAL reopened after the torn tail): one
    # more request per pusher, verified with the rest.
    for p in pushers:
        p.url = server2.base + "/rest/v2/metric/ingest?create=true"
        k = max(o.k for o in p.outcomes) + 1
        assert k < WINDOW
        o = p.send(k)
        assert o.status == 202 and not o.detail, f"push after the restart: {o}"
        p.outcomes.append(o)
    acked_after = len(pushers) * SAMPLES_PER_REQUEST

    verified = 0
    missing: list[str] = []
    unanswered_whole = unanswered_partly = unanswered_absent = 0
    for p in pushers:
        acks = p.acked()
        if not acks:
            continue
        lo = min(o.ts for o in p.outcomes)
        hi = max(o.ts for o in p.outcomes)
        got = read_pusher_series(server2.base, bearer, datasource, p, lo, hi)
        for o in acks:
            for d, dev in enumerate(p.devices):
                for i in range(INSTANCES):
                    for j, dp in enumerate(DATAPOINTS):
                        want = sample_value(o.k, d, i, j)
                        have = got.get((dev, f"inst{i}", dp), {}).get(o.ts)
                        if have == want:
                            verified += 1
                        elif len(missing) < 20:
                            missing.append(f"{dev}/inst{i}/{dp}@{o.ts} (request {o.k}): want {want}, read {have}")
        for o in p.unanswered():
            present = sum(
                got.get((dev, f"inst{i}", dp), {}).get(o.ts) == sample_value(o.k, d, i, j)
                for d, dev in enumerate(p.devices) for i in range(INSTANCES) for j, dp in enumerate(DATAPOINTS)
            )
            unanswered_whole += present == SAMPLES_PER_REQUEST
            unanswered_partly += 0 < present < SAMPLES_PER_REQUEST
            unanswered_absent += present == 0
    print(f"[{backend}] restart {restart_s:.1f}s; acked samples {acked} (+{acked_after} after the restart), "
          f"verified {verified}; unanswered requests after restart: {unanswered_whole} whole, "
          f"{unanswered_partly} partly, {unanswered_absent} absent")
    assert verified == acked + acked_after, (
        f"{acked + acked_after - verified} acknowledged samples lost after kill -9, e.g. {missing}"
    )

    # ---- the relational side: every device exactly once, and LM's data endpoint for one
    # instance per pusher sees every acknowledged timestamp with its values.
    rest = server2.rest(lmv1)
    devices = rest.list_all("/device/devices", params={"filter": f'displayName~"{prefix}-p"'})
    names = sorted(d["displayName"] for d in devices)
    assert names == sorted(dev for p in pushers for dev in p.devices), names[:10]
    by_name = {d["displayName"]: d["id"] for d in devices}
    lm_checked = 0
    for p in pushers:
        acks = p.acked()
        d = p.idx % DEVICES
        dev_id = by_name[p.devices[d]]
        hds = [h for h in rest.get(f"/device/devices/{dev_id}/devicedatasources")["items"]
               if h["dataSourceName"] == datasource]
        assert len(hds) == 1, hds
        insts = rest.get(f"/device/devices/{dev_id}/devicedatasources/{hds[0]['id']}/instances")["items"]
        assert sorted(x["name"] for x in insts) == [f"inst{i}" for i in range(INSTANCES)], insts
        inst = next(x for x in insts if x["name"] == f"inst{INSTANCES - 1}")
        lo = min(o.ts for o in p.outcomes)
        hi = max(o.ts for o in p.outcomes)
        data = rest.get(f"/device/devices/{dev_id}/devicedatasources/{hds[0]['id']}/instances/{inst['id']}/data",
                        params={"start": lo, "end": hi + 1})
        assert data["dataPoints"] == sorted(DATAPOINTS), data["dataPoints"]
        rows = dict(zip(data["time"], data["values"]))
        order = sorted(DATAPOINTS)
        for o in acks:
            want = [sample_value(o.k, d, INSTANCES - 1, DATAPOINTS.index(name)) for name in order]
            assert rows.get(o.ts * 1000) == want, f"{p.devices[d]}/inst{INSTANCES - 1} at {o.ts}: {rows.get(o.ts * 1000)} != {want}"
            lm_checked += len(want)
    print(f"[{backend}] LM data endpoint: {lm_checked} samples of {PUSHERS} instances verified; "
          f"total {time.monotonic() - started:.1f}s")
