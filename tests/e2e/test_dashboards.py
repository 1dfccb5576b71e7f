"""Dashboards, widgets and widget tokens end to end, on both storage backends
(docs/dashboards.md).

- The unmodified `logicmonitor-sdk` builds a dashboard and its widgets (`add_dashboard`,
  `add_widget` with its `AlertWidget`, `NOCWidget`/`DeviceNOCItem` and `NormalGraphWidget`
  models, and a raw body for Palisade's `promql` type), reads them back (`get_dashboard_by_id`,
  `get_dashboard_list`, `get_widget_list_by_dashboard_id`, `get_widget_by_id`,
  `get_widget_data_by_id`), changes and removes them (`patch_dashboard_by_id`,
  `patch_widget_by_id`, `delete_widget_by_id`).
- Real data: devices in a group, samples pushed with `logicmonitor-data-sdk`, a critical
  alert opened by the datasource's threshold.
- A widget token (Bearer `palw_…`) through the SDK: its dashboard and widget data only;
  other dashboards, listings, devices, writes refused; every use audited with the forwarded
  source address; listed with the other tokens (type `widget`, owner, created, last used and
  from where); disabled and deleted through the ordinary token endpoints; refused for the
  built-in administrator (the token mandate).
- Headless Chromium opens the wall screen `/wall#<token>`, sees the graph, the alert and the
  device health widgets, and saves screenshots in tests/e2e/screenshots/; then a signed-in
  user lists, edits and views dashboards and issues a widget token on the pages.
"""

from __future__ import annotations

import gc
import time
from typing import Any, Callable, Iterator

import pytest
import requests

from palisade_harness import STRONG_PASSWORD, Token, new_store, sdk_status, unique
from web_harness import Shots, browser, console, wait_for, wait_path

PRIVILEGES = (
    "dashboard:*:manage",
    "host_group:*:manage",
    "setting:datasources:write",
    "setting:accesslogs:read",
    "setting:useraccess:write",
)
USERNAME = "dash-editor"
DATASOURCE = "E2EDashLoad"
INSTANCE = "core0"
DATAPOINT = "load"
TV_IP = "203.0.113.50"


def wait_until(what: str, probe: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {last!r})")
        time.sleep(0.2)


class DashPortal:
    """A server (trusting 127.0.0.1 as a proxy, so requests can name their client address),
    an API-only dashboard editor, a group of three devices with pushed samples and one
    critical alert, and a dashboard of four widgets built through the SDK."""

    def __init__(self, store, backend: str):
        import logicmonitor_data_sdk
        import logicmonitor_sdk as lm
        from logicmonitor_data_sdk.api.metrics import Metrics

        self.backend = backend
        self.store = store
        self.server = store.serve("--trusted-proxy", "127.0.0.1/32")
        args = ["role", "add", "e2e-dash"]
        for p in PRIVILEGES:
            args += ["--privilege", p]
        store.cli_json(*args)
        user = store.cli_json("user", "add", USERNAME, "--email", f"{USERNAME}@example.com", "--role", "e2e-dash", "--api-only")
        self.user_id = user["id"]
        self.lmv1 = Token.from_cli(store.cli_json("token", "create", USERNAME))
        self.lmv1.admin_id = user["id"]
        self.rest = self.server.rest(self.lmv1)
        self.api = self.server.sdk(self.lmv1)

        logicmonitor_data_sdk.Configuration.set_default(None)
        conf = logicmonitor_data_sdk.Configuration(company="palisade", id=self.lmv1.access_id, key=self.lmv1.secret)
        conf._host = self.server.base + "/rest"
        self.metrics = Metrics(batch=False, interval=0, response_callback=None,
                               api_client=logicmonitor_data_sdk.ApiClient(conf))

        # A datasource whose datapoint opens a critical alert at the first sample over 90.
        self.rest.ok("POST", "/setting/datasources", json_body={
            "name": DATASOURCE, "displayName": "E2E dash load", "group": "e2e", "appliesTo": "",
            "collectMethod": "script", "collectInterval": 60,
            "collector": {"method": "script", "script": "load.sh", "keys": {DATAPOINT: "load"}},
            "dataPoints": [{"name": DATAPOINT, "type": "gauge", "alertExpr": "> 60 80 90",
                            "alertTransitionInterval": 1, "alertClearTransitionInterval": 1}],
        })
        self.group = self.api.add_device_group(lm.DeviceGroup(name=unique("e2e-wall-"), parent_id=1))
        self.devices = {}
        for role in ("hot", "fine", "silent"):
            name = unique(f"web-{role}-")
            self.devices[role] = self.api.add_device(lm.Device(
                name="127.0.0.1", display_name=name, preferred_collector_id=0, host_group_ids=str(self.group.id)))
        now = int(time.time())
        for i, v in enumerate([35.0, 48.0, 61.0, 72.0, 95.0]):
            self.push(self.devices["hot"].display_name, now - 240 + i * 60, v)
        for i, v in enumerate([12.0, 18.0, 15.0, 22.0, 19.0]):
            self.push(self.devices["fine"].display_name, now - 240 + i * 60, v)
        hot = self.devices["hot"].display_name
        wait_until("the critical alert", lambda: [
            a for a in self.api.get_alert_list(size=100).items if a.monitor_object_name == hot and a.severity == 4])

        # The dashboard and its widgets, through the SDK.
        self.dashboard = self.api.add_dashboard(lm.Dashboard(
            name=unique("NOC wall "), description="lobby screen", group_id=1, sharable=True))
        assert self.dashboard.id and self.dashboard.owner == USERNAME
        hds = self.rest.get(f"/device/devices/{self.devices['hot'].id}/devicedatasources")["items"]
        inst = self.rest.get(f"/device/devices/{self.devices['hot'].id}/devicedatasources/{hds[0]['id']}/instances")["items"]
        self.graph = self.api.add_widget(lm.NormalGraphWidget(
            name="Load of the hot server", dashboard_id=self.dashboard.id, type="ngraph",
            h_id=self.devices["hot"].id, ds_name=DATASOURCE, dsi_id=inst[0]["id"], graph_id=0))
        self.alerts = self.api.add_widget(lm.AlertWidget(
            name="Active alerts", dashboard_id=self.dashboard.id, type="alert"))
        self.health = self.api.add_widget(lm.NOCWidget(
            name="Web servers", dashboard_id=self.dashboard.id, type="noc",
            items=[lm.DeviceNOCItem(type="device", device_group_full_path=self.group.full_path or self.group.name,
                                    device_display_name="*", data_source_display_name="*", instance_name="*",
                                    data_point_name="*", name="##RESOURCENAME##", group_by="device")]))
        self.promql = self.api.add_widget(body={
            "name": "Load by device (PromQL)", "dashboardId": self.dashboard.id, "type": "promql",
            "query": f"max by (device) ({DATASOURCE}_{DATAPOINT})", "timescale": "1hour"})
        self.other = self.api.add_dashboard(lm.Dashboard(name=unique("Finance "), group_id=1))
        self.other_widget = self.api.add_widget(lm.AlertWidget(name="Other", dashboard_id=self.other.id, type="alert"))

    def push(self, device: str, ts: int, value: float) -> None:
        from logicmonitor_data_sdk.models import DataPoint, DataSource, DataSourceInstance, Resource

        resp = self.metrics.send_metrics(
            resource=Resource(ids={"system.displayname": device}, name=device, create=False),
            datasource=DataSource(name=DATASOURCE, display_name="E2E dash load", group="e2e"),
            instance=DataSourceInstance(name=INSTANCE, display_name="core 0"),
            datapoint=DataPoint(name=DATAPOINT, aggregation_type="none", type="guage"),
            values={str(ts): repr(float(value))},
        )
        assert isinstance(resp, tuple) and resp[1] == 202, f"push refused: {resp!r}"

    def issue(self, note: str = "lobby TV") -> dict:
        return self.rest.ok("POST", f"/dashboard/dashboards/{self.dashboard.id}/widgettokens", json_body={"note": note})

    def widget_sdk(self, secret: str):
        return self.server.sdk(Token("bearer", None, secret))

    def as_tv(self, secret: str, path: str, method: str = "GET") -> requests.Response:
        return requests.request(method, self.server.rest_base + path, timeout=30,
                                headers={"Authorization": f"Bearer {secret}", "X-Forwarded-For": TV_IP,
                                         "Content-Type": "application/json"},
                                data=None if method == "GET" else "{}")

    def close(self) -> None:
        self.api = self.metrics = None
        gc.collect()


@pytest.fixture(scope="module")
def dash(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashPortal]:
    with new_store(backend, tmp_path_factory) as store:
        dp = DashPortal(store, backend)
        try:
            yield dp
        finally:
            dp.close()


def test_sdk_dashboards_and_widgets(dash: DashPortal) -> None:
    import logicmonitor_sdk as lm

    api = dash.api
    d = api.get_dashboard_by_id(dash.dashboard.id)
    assert d.name == dash.dashboard.name and d.description == "lobby screen" and d.group_id == 1 and d.sharable
    names = [x.name for x in api.get_dashboard_list(size=100).items]
    assert dash.dashboard.name in names and dash.other.name in names
    widgets = api.get_widget_list_by_dashboard_id(dash.dashboard.id, size=100).items
    assert sorted(w.type for w in widgets) == ["alert", "ngraph", "noc", "promql"]
    graph = api.get_widget_by_id(dash.graph.id)
    # The SDK gets its own widget model back; the instance named by id was resolved to names.
    assert isinstance(graph, lm.NormalGraphWidget) and graph.ds_name == DATASOURCE and graph.dsi_name == INSTANCE
    assert graph.h_id == dash.devices["hot"].id
    assert isinstance(api.get_widget_by_id(dash.alerts.id), lm.AlertWidget)
    noc = api.get_widget_by_id(dash.health.id)
    assert isinstance(noc, lm.NOCWidget) and noc.items[0].device_group_full_path == (dash.group.full_path or dash.group.name)

    # Widget data in the SDK's WidgetData shapes, computed from the real samples and alerts.
    g = api.get_widget_data_by_id(dash.graph.id)
    assert isinstance(g, lm.GraphPlot) and [line.label for line in g.lines] == [DATAPOINT]
    assert max(v for v in g.lines[0].data if v is not None) == 95.0
    a = api.get_widget_data_by_id(dash.alerts.id)
    assert isinstance(a, lm.AlertWidgetData)
    assert any(x.monitor_object_name == dash.devices["hot"].display_name and x.severity == 4 for x in a.items)
    n = dash.rest.get(f"/dashboard/widgets/{dash.health.id}/data")
    status = {i["name"]: i["status"] for i in n["items"]}
    assert status == {dash.devices["hot"].display_name: "alerting", dash.devices["fine"].display_name: "ok",
                      dash.devices["silent"].display_name: "nodata"}, status
    p = dash.rest.get(f"/dashboard/widgets/{dash.promql.id}/data")
    assert {line["label"].split('"')[1] for line in p["lines"]} == {dash.devices["hot"].display_name,
                                                                     dash.devices["fine"].display_name}

    # Changes through the SDK, each audited.
    patched = api.patch_dashboard_by_id(dash.dashboard.id, lm.Dashboard(name=dash.dashboard.name, description="lobby wall"))
    assert patched.description == "lobby wall"
    w = api.patch_widget_by_id(dash.alerts.id, lm.AlertWidget(name="Alerts now", dashboard_id=dash.dashboard.id, type="alert"))
    assert w.name == "Alerts now"
    extra = api.add_widget(lm.AlertWidget(name="temporary", dashboard_id=dash.dashboard.id, type="alert"))
    api.delete_widget_by_id(extra.id)
    assert sdk_status(api.get_widget_by_id, extra.id) == 404
    # Refused input, with LogicMonitor's error body.
    assert sdk_status(api.add_widget, body={"name": "x", "dashboardId": dash.dashboard.id, "type": "promql", "query": "sum(("}) == 400
    actions = {e.get("action") for e in dash.rest.list_all("/setting/accesslogs")}
    assert {"dashboard.create", "dashboard.update", "dashboard.widget.create", "dashboard.widget.update",
            "dashboard.widget.delete"} <= actions


def test_widget_token_scope_audit_listing_and_revocation(dash: DashPortal) -> None:
    issued = dash.issue()
    secret, tid = issued["widgetToken"], issued["id"]
    assert secret.startswith("palw_") and issued["type"] == "widget" and issued["dashboardId"] == dash.dashboard.id
    assert issued["wallPath"] == f"/wall#{secret}"

    # Through the SDK (Bearer): its dashboard and its widgets' data.
    tv = dash.widget_sdk(secret)
    assert tv.get_dashboard_by_id(dash.dashboard.id).name == dash.dashboard.name
    assert len(tv.get_widget_list_by_dashboard_id(dash.dashboard.id).items) == 4
    assert tv.get_widget_data_by_id(dash.alerts.id).items
    # Nothing else: other dashboards, listings, devices, writes.
    assert sdk_status(tv.get_dashboard_by_id, dash.other.id) == 403
    assert sdk_status(tv.get_widget_data_by_id, dash.other_widget.id) == 403
    assert sdk_status(tv.get_dashboard_list) == 403
    assert sdk_status(tv.get_device_list) == 403
    assert sdk_status(tv.get_alert_list) == 403
    assert sdk_status(tv.get_admin_list) == 403
    import logicmonitor_sdk as lm
    assert sdk_status(tv.patch_dashboard_by_id, dash.dashboard.id, lm.Dashboard(name="pwned")) == 403
    assert sdk_status(tv.delete_widget_by_id, dash.graph.id) == 403
    assert requests.get(dash.server.base + "/api/v1/query", params={"query": "up"}, timeout=30,
                        headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    assert dash.api.get_dashboard_by_id(dash.dashboard.id).name == dash.dashboard.name

    # Uses from the TV's address: audited with it, and shown as the token's last use.
    r = dash.as_tv(secret, "/dashboard/wall")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store", r.text
    assert "Load of the hot server" in r.json()["html"]
    denied = dash.as_tv(secret, f"/dashboard/dashboards/{dash.other.id}")
    assert denied.status_code == 403 and "widget token" in denied.json()["errorMessage"]
    entries = wait_until("the TV's audited calls", lambda: [
        e for e in dash.rest.list_all("/setting/accesslogs") if e.get("tokenId") == tid and e.get("ip") == TV_IP])
    assert any(e["action"] == "api.call" and "/dashboard/wall" in e["description"] and "widget token" in e["description"]
               for e in entries), entries
    assert any(e["action"] == "api.denied" and f"/dashboard/dashboards/{dash.other.id}" in e["description"] for e in entries)
    assert any(e["action"] == "token.new_ip" for e in entries)

    listed = dash.rest.get("/setting/admins/apitokens", params={"type": "widget", "size": 100})["items"]
    mine = [t for t in listed if t["id"] == tid]
    assert len(mine) == 1, listed
    t = mine[0]
    assert t["type"] == "widget" and t["adminName"] == USERNAME and t["dashboardId"] == dash.dashboard.id
    assert t["lastAuthIp"] == TV_IP and TV_IP in t["recentIps"] and t["lastUsedOn"] > 0 and t["createdOn"] > 0
    assert t["accessKey"] == "" and secret not in str(listed)
    kinds = {x["type"] for x in dash.rest.get("/setting/admins/apitokens", params={"size": 1000})["items"]}
    assert {"lmv1", "widget"} <= kinds

    # Disabled through the ordinary token endpoint: refused at once; enabled again; deleted.
    path = f"/setting/admins/{dash.user_id}/apitokens/{tid}"
    assert dash.rest.ok("PATCH", path, json_body={"status": 1})["status"] == 1
    assert dash.as_tv(secret, "/dashboard/wall").status_code == 401
    assert dash.rest.ok("PATCH", path, json_body={"status": 2})["status"] == 2
    assert dash.as_tv(secret, "/dashboard/wall").status_code == 200
    dash.rest.ok("DELETE", path)
    assert dash.as_tv(secret, "/dashboard/wall").status_code == 401
    actions = [e["action"] for e in dash.rest.list_all("/setting/accesslogs") if str(tid) in (e.get("description") or "")]
    assert {"token.create", "token.disable", "token.enable", "token.delete"} <= set(actions), actions

    # The token mandate: no widget token for the built-in administrator.
    admin = [u for u in dash.rest.get("/setting/admins", params={"size": 100})["items"] if u["username"] == "admin"][0]
    r = dash.rest.call("POST", f"/setting/admins/{admin['id']}/apitokens", params={"type": "widget"},
                       json_body={"dashboardId": dash.dashboard.id})
    assert r.status_code == 403 and "administrator" in r.json()["errorMessage"], r.text


def test_wall_screen_in_chromium(dash: DashPortal, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    issued = dash.issue("browser check")
    secret = issued["widgetToken"]
    shot_prefix = f"dashboards-{dash.backend}"
    with browser(tmp_path, forwarded_for="203.0.113.77") as driver:
        driver.set_window_size(1920, 1080)
        shot = Shots(driver, shot_prefix)
        driver.get(dash.server.base + issued["wallPath"])
        wait_for(driver, "#wall .grid")
        wait_for(driver, f"#widget-{dash.graph.id} svg.graph polyline")
        wait_for(driver, f"#widget-{dash.alerts.id} table.alerts tr.sev4")
        wait_for(driver, f"#widget-{dash.health.id} .tile.alerting")
        wait_for(driver, f"#widget-{dash.promql.id} svg.graph polyline")
        assert driver.find_element(By.CSS_SELECTOR, "#wall-title").text == dash.dashboard.name
        tiles = {el.get_attribute("data-status") for el in driver.find_elements(By.CSS_SELECTOR, ".tile")}
        assert tiles == {"alerting", "ok", "nodata"}, tiles
        assert dash.devices["hot"].display_name in driver.find_element(By.CSS_SELECTOR, "table.alerts").text
        assert "Updated" in driver.find_element(By.CSS_SELECTOR, "#wall-status").text
        shot("wall")
        problems = [m for m in console(driver) if "SEVERE" in m or "Content Security Policy" in m]
        assert not problems, problems
        # The token never reached the server in a URL: only the TV's authorized API calls.
        entries = dash.rest.list_all("/setting/accesslogs")
        assert all(secret not in (e.get("description") or "") + (e.get("path") or "") for e in entries)
        assert any(e.get("ip") == "203.0.113.77" and e.get("tokenId") == issued["id"] for e in entries)

        # Revoked: the screen says so at its next refresh (here: a reload).
        dash.rest.ok("PATCH", f"/setting/admins/{dash.user_id}/apitokens/{issued['id']}", json_body={"status": 1})
        driver.refresh()
        wait_until("the refusal on the screen",
                   lambda: "Not allowed (401)" in driver.find_element(By.CSS_SELECTOR, "#wall-status").text)
        shot("wall-revoked")


def test_dashboard_pages_for_a_signed_in_user(dash: DashPortal, tmp_path) -> None:
    from selenium.webdriver.common.by import By

    username = unique("noc-")
    role = unique("e2e-dash-ui-")
    dash.store.cli_json("role", "add", role, "--privilege", "dashboard:*:manage", "--privilege", "host_group:*:read")
    dash.store.cli_json("user", "add", username, "--email", f"{username}@example.com", "--role", role,
                        "--password-stdin", input=STRONG_PASSWORD + "\n")
    with browser(tmp_path) as driver:
        driver.set_window_size(1600, 1000)
        shot = Shots(driver, f"dashboards-ui-{dash.backend}")
        driver.get(dash.server.base + "/login")
        wait_for(driver, "#username").send_keys(username)
        driver.find_element(By.CSS_SELECTOR, "#password").send_keys(STRONG_PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "#sign-in").click()
        wait_path(driver, "/ui")  # `/` leads a signed-in user to the web UI
        driver.get(dash.server.base + "/ui/dashboards")
        wait_for(driver, "#dashboards")
        assert dash.dashboard.name in driver.find_element(By.CSS_SELECTOR, "#dashboards").text
        shot("list")
        name = unique("Ops ")
        driver.find_element(By.CSS_SELECTOR, "#dash-name").send_keys(name)
        driver.find_element(By.CSS_SELECTOR, "#create").click()
        wait_for(driver, "#add-health")
        # A device health widget of the e2e group, full width.
        form = driver.find_element(By.CSS_SELECTOR, "#add-health")
        form.find_element(By.NAME, "name").send_keys("Web servers")
        form.find_element(By.CSS_SELECTOR, f"select[name=deviceGroupId] option[value='{dash.group.id}']").click()
        form.find_element(By.CSS_SELECTOR, "select[name=width] option[value='12']").click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_for(driver, "#widget-list li")
        form = driver.find_element(By.CSS_SELECTOR, "#add-promql")
        form.find_element(By.NAME, "name").send_keys("Load")
        form.find_element(By.NAME, "query").send_keys(f"max by (device) ({DATASOURCE}_{DATAPOINT})")
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait_until("two widgets", lambda: len(driver.find_elements(By.CSS_SELECTOR, "#widget-list li")) == 2)
        driver.find_element(By.CSS_SELECTOR, "#token-note").send_keys("ops room")
        driver.find_element(By.CSS_SELECTOR, "#issue").click()
        url = wait_for(driver, "#wall-url").text
        assert url.startswith("/wall#palw_")
        shot("edit-token-issued")
        assert "ops room" in driver.find_element(By.CSS_SELECTOR, "#widget-tokens").text
        driver.find_element(By.CSS_SELECTOR, "#view-dashboard").click()
        wait_for(driver, ".tile.alerting")
        wait_for(driver, "svg.graph polyline")
        shot("view")
        # The token issued on the page opens the wall.
        driver.get(dash.server.base + url)
        wait_for(driver, "#wall .tile.alerting")
        assert driver.find_element(By.CSS_SELECTOR, "#wall-title").text == name
        shot("wall")
    created = [d for d in dash.api.get_dashboard_list(size=100).items if d.name == name]
    assert len(created) == 1 and created[0].owner == username
