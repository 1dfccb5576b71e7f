"""The monitoring core through the unmodified SDKs, on both storage backends.

- `logicmonitor-sdk` creates device groups (static and dynamic) and devices with
  credential properties; credentials read back as `********`, are not stored in
  clear, survive a write that sends the mask, and reach only the collector that
  monitors the device (through the collector protocol).
- Collectors: created through the API (one-time registration secret), registered
  through the protocol, heartbeats fill `isAdminAccount`, `platform`, `hostname`,
  `build`, `upTime`; result batches are deduplicated by batch id.
- `logicmonitor-data-sdk` pushes metrics (LMv1, gzip) that are read back through
  LogicMonitor's instance data endpoint and the Prometheus-compatible API.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator

import pytest
import requests

from palisade_harness import Rest, Token, new_store, sdk_status, unique

MONITOR_PRIVILEGES = (
    "host_group:*:manage",
    "setting:collectorgroup.*:write",
    "setting:datasources:write",
    "setting:accesslogs:read",
)


class Monitoring:
    """A server with an API-only user holding monitoring privileges (LMv1 + Bearer)."""

    def __init__(self, store):
        self.store = store
        self.server = store.serve()
        args = ["role", "add", "e2e-monitor"]
        for p in MONITOR_PRIVILEGES:
            args += ["--privilege", p]
        store.cli_json(*args)
        user = store.cli_json("user", "add", "monitor", "--email", "monitor@example.com", "--role", "e2e-monitor", "--api-only")
        self.lmv1 = Token.from_cli(store.cli_json("token", "create", "monitor"))
        self.bearer = Token.from_cli(store.cli_json("token", "create", "monitor", "--bearer"))
        self.lmv1.admin_id = self.bearer.admin_id = user["id"]
        self.rest = self.server.rest(self.lmv1)
        self.api = self.server.sdk(self.lmv1)

    def collector(self, description: str) -> tuple[int, str]:
        """Creates a collector through the API and registers it through the protocol."""
        created = self.rest.ok("POST", "/setting/collector/collectors", json_body={"description": description})
        secret = created["registrationSecret"]
        assert secret.startswith("palr_")
        resp = requests.post(
            self.server.base + "/api/collector/v1/register",
            json={
                "registrationSecret": secret,
                "report": {
                    "hostname": f"{description}.example",
                    "platform": "Linux",
                    "arch": "x86_64",
                    "build": "e2e-1",
                    "isAdminAccount": False,
                    "privilege": {"user": "palisade", "uid": 990, "groups": ["palisade"], "capabilities": ["cap_net_raw"]},
                    "startedOn": int(time.time() * 1000) - 5000,
                },
            },
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        # The secret is single use.
        again = requests.post(self.server.base + "/api/collector/v1/register", json={"registrationSecret": secret}, timeout=30)
        assert again.status_code == 401, again.text
        return body["collectorId"], body["collectorKey"]

    def protocol(self, key: str, method: str, path: str, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", {})
        headers["Authorization"] = f"Bearer {key}"
        return requests.request(method, self.server.base + "/api/collector/v1" + path, headers=headers, timeout=30, **kw)


@pytest.fixture(scope="module")
def mon(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitoring]:
    with new_store(backend, tmp_path_factory) as store:
        yield Monitoring(store)


def test_groups_devices_and_masked_credentials(mon: Monitoring) -> None:
    import logicmonitor_sdk as lm

    api = mon.api
    group = api.add_device_group(
        lm.DeviceGroup(
            name=unique("linux"),
            parent_id=1,
            custom_properties=[
                lm.NameAndValue(name="snmp.community", value="group-community-Secret"),
                lm.NameAndValue(name="location", value="berlin"),
            ],
        )
    )
    assert group.full_path == group.name
    device = api.add_device(
        lm.Device(
            name="127.0.0.1",
            display_name=unique("web"),
            preferred_collector_id=0,
            host_group_ids=str(group.id),
            custom_properties=[
                lm.NameAndValue(name="ssh.user", value="monitor"),
                lm.NameAndValue(name="ssh.pass", value="device-ssh-Secret"),
            ],
        )
    )
    assert device.type == ""
    assert device.host_group_ids == str(group.id)
    read = api.get_device_by_id(device.id)
    custom = {p.name: p.value for p in read.custom_properties}
    assert custom == {"ssh.user": "monitor", "ssh.pass": "********"}
    inherited = {p.name: p.value for p in read.inherited_properties}
    assert inherited["snmp.community"] == "********" and inherited["location"] == "berlin"
    prop = api.get_device_property_by_name(device.id, "ssh.pass")
    assert prop.value == "********"
    assert api.get_device_group_property_by_name(group.id, "snmp.community").value == "********"

    # Not stored in clear anywhere in the database.
    dump = mon.store.dump_all()
    for secret in (b"device-ssh-Secret", b"group-community-Secret"):
        assert secret not in dump, f"{secret!r} stored in clear"

    # Listing: every item carries what the SDK requires; filters work.
    page = api.get_device_list(filter=f'displayName:"{device.display_name}"', size=50)
    assert [d.id for d in page.items] == [device.id]

    # A write that sends the mask keeps the stored value; a new value replaces it.
    mon.rest.ok(
        "PATCH",
        f"/device/devices/{device.id}",
        params={"opType": "replace"},
        json_body={"customProperties": [{"name": "ssh.pass", "value": "********"}, {"name": "env", "value": "prod"}]},
    )
    props = {p.name: p.value for p in api.get_device_by_id(device.id).custom_properties}
    assert props == {"ssh.user": "monitor", "ssh.pass": "********", "env": "prod"}
    # The mask cannot create a credential out of nothing.
    resp = mon.rest.call("POST", f"/device/devices/{device.id}/properties", json_body={"name": "wmi.pass", "value": "********"})
    assert resp.status_code == 400 and "********" in resp.json()["errorMessage"]

    # Dynamic group: membership by appliesTo over properties.
    dyn = api.add_device_group(lm.DeviceGroup(name=unique("berlin-web"), parent_id=1, applies_to='location == "berlin" && ssh.user'))
    members = api.get_immediate_device_list_by_device_group_id(dyn.id)
    assert [d.id for d in members.items] == [device.id]
    assert str(dyn.id) in api.get_device_by_id(device.id).host_group_ids.split(",")
    # Bad input: clear errors, nothing stored.
    assert sdk_status(api.add_device_group, lm.DeviceGroup(name=unique("bad"), parent_id=1, applies_to="location ==")) == 400
    assert sdk_status(api.add_device, lm.Device(name="x", display_name=device.display_name, preferred_collector_id=0)) == 409
    assert sdk_status(api.get_device_by_id, 999999) == 404
    # Every change is audited.
    entries = mon.rest.list_all("/setting/accesslogs", params={"filter": 'description~"device"'})
    assert any("created device" in e["description"] for e in entries)


def test_collectors_protocol_credentials_and_batches(mon: Monitoring) -> None:
    import logicmonitor_sdk as lm

    api = mon.api
    c1, key1 = mon.collector(unique("col-a"))
    c2, key2 = mon.collector(unique("col-b"))
    group = api.add_device_group(
        lm.DeviceGroup(
            name=unique("snmp"),
            parent_id=1,
            default_collector_id=c2,
            custom_properties=[lm.NameAndValue(name="snmp.community", value="only-for-c2")],
        )
    )
    mine = api.add_device(lm.Device(name="127.0.0.2", display_name=unique("mine"), preferred_collector_id=c1,
                                    custom_properties=[lm.NameAndValue(name="ssh.pass", value="only-for-c1")]))
    theirs = api.add_device(lm.Device(name="127.0.0.3", display_name=unique("theirs"), preferred_collector_id=0,
                                      host_group_ids=str(group.id)))
    assert api.get_device_by_id(theirs.id).current_collector_id == c2

    work1 = mon.protocol(key1, "GET", "/work")
    assert work1.status_code == 200, work1.text
    devices1 = {d["id"]: d for d in work1.json()["devices"]}
    assert mine.id in devices1 and theirs.id not in devices1
    assert devices1[mine.id]["properties"]["ssh.pass"] == "only-for-c1"
    work2 = mon.protocol(key2, "GET", "/work").json()
    devices2 = {d["id"]: d for d in work2["devices"]}
    assert set(devices2) >= {theirs.id} and mine.id not in devices2
    assert devices2[theirs.id]["properties"]["snmp.community"] == "only-for-c2"
    # appliesTo sees that a credential is set (never its value): the SNMP built-ins apply.
    assert {"SNMP_System", "SNMP_Interfaces"} <= set(devices2[theirs.id]["datasources"])
    # Registration created the device of the collector's own host, monitored by it locally.
    col1 = mon.rest.get(f"/setting/collector/collectors/{c1}")
    own = mon.rest.get(f"/device/devices/{col1['collectorDeviceId']}")
    assert own["preferredCollectorId"] == c1 and own["displayName"].endswith(".example")
    assert {"name": "system.collectorhost", "value": "true"} in own["systemProperties"]
    assert own["id"] in devices1
    # Unchanged work: 304 with the ETag.
    etag = work1.headers["ETag"]
    assert mon.protocol(key1, "GET", "/work", headers={"If-None-Match": etag}).status_code == 304
    # Handing out credentials is audited.
    entries = mon.rest.list_all("/setting/accesslogs", params={"filter": 'description~"fetched work"'})
    assert any(f"collector {c1} fetched work" in e["description"] for e in entries)
    # Unknown keys and other collectors' keys are refused.
    assert mon.protocol("palc_nope", "GET", "/work").status_code == 401
    assert requests.get(mon.server.base + "/api/collector/v1/work", timeout=30).status_code == 401

    # Heartbeat: what the collector reports shows on the collector object.
    hb = mon.protocol(key1, "POST", "/heartbeat", json={"report": {
        "hostname": "col-a.example", "platform": "Linux", "arch": "x86_64", "build": "e2e-2",
        "isAdminAccount": True, "privilege": {"user": "root", "uid": 0},
        "startedOn": int(time.time() * 1000) - 60_000}})
    assert hb.status_code == 200, hb.text
    col = api.get_collector_by_id(c1)
    assert col.is_admin_account is True and col.platform == "Linux" and col.hostname == "col-a.example"
    assert col.build == "e2e-2" and col.status == 1 and col.up_time >= 59
    raw = mon.rest.get(f"/setting/collector/collectors/{c1}")
    assert raw["privilege"] == {"user": "root", "uid": 0}

    # Results: a retried batch never counts twice; a device of another collector is refused.
    now_ms = int(time.time() * 1000)
    batch = {"batchId": str(uuid.uuid4()), "results": [
        {"deviceId": mine.id, "datasource": "HostCPU", "instance": "cpu", "timestamp": now_ms, "values": {"usage": 42.5}},
        {"deviceId": theirs.id, "datasource": "HostCPU", "instance": "cpu", "timestamp": now_ms, "values": {"usage": 1.0}},
    ]}
    first = mon.protocol(key1, "POST", "/results", json=batch).json()
    assert first["duplicate"] is False and first["accepted"] == 1 and len(first["refused"]) == 1
    second = mon.protocol(key1, "POST", "/results", json=batch).json()
    assert second["duplicate"] is True and second["accepted"] == 0
    # A datasource the collector may not run shows as denied, naming what it lacks.
    denied = {"batchId": str(uuid.uuid4()), "results": [
        {"deviceId": mine.id, "datasource": "Ping", "timestamp": now_ms, "values": {},
         "status": "denied", "message": "no ICMP socket", "lacks": "CAP_NET_RAW"}]}
    assert mon.protocol(key1, "POST", "/results", json=denied).json()["duplicate"] is False
    listed = {h["dataSourceName"]: h for h in mon.rest.get(f"/device/devices/{mine.id}/devicedatasources")["items"]}
    assert listed["Ping"]["collectionStatus"] == "denied" and listed["Ping"]["collectionLacks"] == "CAP_NET_RAW"
    # The datasource instance is registered and its data is readable.
    hds = [h for h in mon.rest.get(f"/device/devices/{mine.id}/devicedatasources")["items"]
           if h["dataSourceName"] == "HostCPU"]
    assert len(hds) == 1 and hds[0]["collectionStatus"] == "ok"
    inst = mon.rest.get(f"/device/devices/{mine.id}/devicedatasources/{hds[0]['id']}/instances")["items"]
    assert [i["name"] for i in inst] == ["cpu"]
    data = api.get_device_datasource_instance_data(mine.id, hds[0]["id"], inst[0]["id"],
                                                     start=now_ms // 1000 - 60, end=now_ms // 1000 + 60)
    assert data.values == [[42.5]] and data.time == [now_ms]


def test_data_sdk_push_read_back(mon: Monitoring) -> None:
    import logicmonitor_data_sdk
    from logicmonitor_data_sdk.api.metrics import Metrics
    from logicmonitor_data_sdk.models import DataPoint, DataSource, DataSourceInstance, Resource

    # The data SDK keeps the first Configuration as a process-wide default: start afresh.
    logicmonitor_data_sdk.Configuration.set_default(None)
    conf = logicmonitor_data_sdk.Configuration(company="palisade", id=mon.lmv1.access_id, key=mon.lmv1.secret)
    conf._host = mon.server.base + "/rest"
    client = logicmonitor_data_sdk.ApiClient(conf)
    metrics = Metrics(batch=False, interval=0, response_callback=None, api_client=client)
    name = unique("pushed")
    now = int(time.time())
    values = {str(now - 120): "10", str(now - 60): "20", str(now): "30"}
    resp = metrics.send_metrics(
        resource=Resource(ids={"system.displayname": name}, name=name, create=True, properties={"env": "test"}),
        datasource=DataSource(name="PushCPU", display_name="Push CPU", group="e2e"),
        instance=DataSourceInstance(name="core0", display_name="core 0"),
        datapoint=DataPoint(name="busy", aggregation_type="none", type="guage"),
        values=values,
    )
    assert resp is not None
    devices = mon.rest.get("/device/devices", params={"filter": f'displayName:"{name}"'})["items"]
    assert len(devices) == 1
    device = devices[0]
    hds = mon.rest.get(f"/device/devices/{device['id']}/devicedatasources")["items"]
    inst = mon.rest.get(f"/device/devices/{device['id']}/devicedatasources/{hds[0]['id']}/instances")["items"]
    data = mon.rest.get(f"/device/devices/{device['id']}/devicedatasources/{hds[0]['id']}/instances/{inst[0]['id']}/data",
                        params={"start": now - 300, "end": now + 60})
    assert data["dataPoints"] == ["busy"]
    assert data["time"] == [now * 1000, (now - 60) * 1000, (now - 120) * 1000]
    assert data["values"] == [[30.0], [20.0], [10.0]]

    # The Prometheus-compatible API, behind the same token auth.
    bearer = {"Authorization": f"Bearer {mon.bearer.secret}"}
    q = requests.get(mon.server.base + "/api/v1/query", headers=bearer, timeout=30,
                     params={"query": f'PushCPU_busy{{device="{name}"}}', "time": str(now)})
    assert q.status_code == 200, q.text
    result = q.json()["data"]["result"]
    assert len(result) == 1
    assert result[0]["metric"] == {"__name__": "PushCPU_busy", "device": name, "datasource": "PushCPU",
                                   "instance": "core0", "datapoint": "busy"}
    assert float(result[0]["value"][1]) == 30.0
    qr = requests.get(mon.server.base + "/api/v1/query_range", headers=bearer, timeout=30,
                      params={"query": f'sum by (device) (PushCPU_busy{{device="{name}"}}) * 2',
                              "start": str(now - 120), "end": str(now), "step": "60"})
    assert qr.status_code == 200, qr.text
    assert [float(v[1]) for v in qr.json()["data"]["result"][0]["values"]] == [20.0, 40.0, 60.0]
    labels = requests.get(mon.server.base + "/api/v1/labels", headers=bearer, timeout=30).json()["data"]
    assert {"__name__", "device", "datasource", "instance", "datapoint"} <= set(labels)
    series = requests.get(mon.server.base + "/api/v1/series", headers=bearer, timeout=30,
                          params={"match[]": f'{{device="{name}"}}'}).json()["data"]
    assert len(series) == 1
    assert requests.get(mon.server.base + "/api/v1/query", params={"query": "up"}, timeout=30).status_code == 401
    bad = requests.get(mon.server.base + "/api/v1/query", headers=bearer, params={"query": "sum(("}, timeout=30)
    assert bad.status_code == 400 and bad.json()["status"] == "error"

    # Too old without backfill: refused with a reason; accepted after the setting.
    old = str(now - 3600)
    status = requests.post(mon.server.base + "/rest/v2/metric/ingest", timeout=30, data=json.dumps([{
        "resourceIds": {"system.displayname": name}, "dataSource": "PushCPU",
        "instances": [{"instanceName": "core0", "dataPoints": [{"dataPointName": "busy", "values": {old: "1"}}]}]}]),
        headers={"Content-Type": "application/json",
                 "Authorization": mon.lmv1.authorization("POST", json.dumps([{
                     "resourceIds": {"system.displayname": name}, "dataSource": "PushCPU",
                     "instances": [{"instanceName": "core0", "dataPoints": [{"dataPointName": "busy", "values": {old: "1"}}]}]}]),
                     "/v2/metric/ingest")})
    assert status.status_code == 400, status.text
    assert "10 minutes" in status.text or "older" in status.text


def test_second_instance_on_the_same_data_dir_says_where_time_series_are(mon: Monitoring) -> None:
    """The embedded time-series store belongs to one process: a second portal process on the
    same data directory serves everything else and answers 503, naming the reason, where
    time series are needed (never silently empty)."""
    second = mon.store.serve()
    try:
        rest2 = second.rest(mon.lmv1)
        assert rest2.get("/device/devices")["total"] >= 1
        body = [{"resourceIds": {"system.displayname": unique("second")}, "dataSource": "X",
                 "instances": [{"instanceName": "i", "dataPoints": [{"dataPointName": "v",
                                                                    "values": {str(int(time.time())): "1"}}]}]}]
        text = json.dumps(body)
        resp = requests.post(second.base + "/rest/v2/metric/ingest", params={"create": "true"}, data=text, timeout=30,
                             headers={"Content-Type": "application/json",
                                      "Authorization": mon.lmv1.authorization("POST", text, "/v2/metric/ingest")})
        assert resp.status_code == 503, resp.text
        assert "another palisade process" in resp.json()["errorMessage"]
        assert "--tsdb-remote-write-url" in resp.json()["errorMessage"]
    finally:
        second.stop()
    # The first instance still ingests.
    resp = mon.rest.call("GET", "/device/devices")
    assert resp.status_code == 200


def test_datasources_builtin_export_import_and_cli(mon: Monitoring, tmp_path) -> None:
    listed = mon.rest.list_all("/setting/datasources")
    names = {d["name"] for d in listed}
    for builtin in ("HostCPU", "HostMemory", "HostDisk", "HostNetwork", "SNMP_System", "SNMP_Interfaces",
                    "SNMP_HR_Storage", "SNMP_HR_Processor", "Ping", "HTTP"):
        assert builtin in names, builtin
    http = next(d for d in listed if d["name"] == "HTTP")
    assert http["builtin"] is True
    # Export (API and CLI agree, byte for byte), edit, import: a new version, no longer built-in.
    exported = mon.rest.call("GET", f"/setting/datasources/{http['id']}/export").text
    cli = mon.store.cli("datasource", "export", "HTTP")
    assert cli.returncode == 0 and cli.stdout == exported
    doc = json.loads(exported)
    doc["description"] = "checked by e2e"
    path = tmp_path / "HTTP.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    imported = mon.store.cli_json("datasource", "import", str(path))
    assert imported["name"] == "HTTP" and imported["version"] == http["version"] + 1
    again = mon.rest.get(f"/setting/datasources/{http['id']}")
    assert again["description"] == "checked by e2e" and again["builtin"] is False
    # A typo in a field is refused with the field named; nothing changes.
    doc["colectInterval"] = 60
    resp = mon.rest.call("POST", "/setting/datasources/import", data=json.dumps(doc))
    assert resp.status_code == 400 and "colectInterval" in resp.json()["errorMessage"]
    assert mon.rest.get(f"/setting/datasources/{http['id']}")["version"] == imported["version"]
    # Through the API: create, read, delete.
    mine = json.loads(exported)
    mine["name"] = unique("MyHTTP").replace("-", "_")
    created = mon.rest.ok("POST", "/setting/datasources", json_body=mine)
    assert created["name"] == mine["name"] and created["builtin"] is False
    mon.rest.ok("DELETE", f"/setting/datasources/{created['id']}")
    assert mon.rest.call("GET", f"/setting/datasources/{created['id']}").status_code == 404

    # A script module uploaded with its source: the portal reviews it with lint-module's rules.
    script = {
        "name": unique("DiskHealth").replace("-", "_"), "collectMethod": "script", "collectInterval": 300,
        "hasMultiInstances": False, "appliesTo": "true",
        "collector": {"method": "script", "script": "disk-health.sh", "keys": {"Errors": "errors"},
                      "source": "#!/bin/sh\n# reads SMART data\nsudo smartctl -a /dev/sda | grep -c Error\n"},
        "dataPoints": [{"name": "Errors", "type": "gauge"}],
    }
    reviewed = mon.rest.ok("POST", "/setting/datasources", json_body=script)["scriptReview"]
    assert reviewed["reviewed"] is True and reviewed["needsElevation"] is True
    assert [(f["line"], f["rule"]) for f in reviewed["findings"]] == [(3, "elevation")]
    assert "sudoers" in reviewed["findings"][0]["alternative"]
    script_path = tmp_path / "clean.json"
    script["name"] = unique("FreeMem").replace("-", "_")
    script["collector"]["source"] = "#!/bin/sh\nawk '/MemAvailable/ {print \"free=\" $2}' /proc/meminfo\n"
    script_path.write_text(json.dumps(script))
    clean = mon.store.cli_json("datasource", "import", str(script_path))
    assert clean["scriptReview"] == {"reviewed": True, "needsElevation": False, "findings": []}
    del script["collector"]["source"]
    script["name"] = unique("Unreviewed").replace("-", "_")
    unreviewed = mon.rest.ok("POST", "/setting/datasources", json_body=script)["scriptReview"]
    assert unreviewed["reviewed"] is False and "lint-module" in unreviewed["note"]

    # CLI: a collector and its one-time registration secret.
    out = mon.store.cli_json("collector", "add", "--description", "from the cli")
    assert out["registrationSecret"].startswith("palr_")
    reg = requests.post(mon.server.base + "/api/collector/v1/register", timeout=30,
                        json={"registrationSecret": out["registrationSecret"], "report": {"hostname": "cli-col"}})
    assert reg.status_code == 200 and reg.json()["collectorId"] == out["id"]
