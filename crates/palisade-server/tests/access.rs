//! The proposal can never drift from enforcement: for every route of the table in
//! `palisade_core::access`, a token holding exactly what the token migration assistant
//! proposes for one call of it is not refused (403, or 404 for an object it cannot see) by
//! the gate or the handler; and one holding nothing is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use palisade_core::access::{requirement, Requirement, Scope, Target};
use palisade_core::token_migration::{propose, Call};
use palisade_server::access::resolve;
use palisade_server::portal::Portal;
use palisade_server::AppState;
use palisade_store::alerting::AlertDoc;
use palisade_store::objects;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const NOW: i64 = 1_800_000_000_000;

async fn call(
    state: &Arc<AppState>,
    who: (&str, &str),
    method: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let (s, b) = common::lmv1_call(state, who, NOW, method, path, body).await;
    (s.as_u16(), b)
}

/// The privileges the assistant proposes for one successful call.
async fn proposed(portal: &Portal, state: &AppState, method: &str, path: &str) -> Vec<String> {
    let mut scopes: BTreeMap<Target, Option<Scope>> = BTreeMap::new();
    if let Requirement::Object { target, .. } = requirement(method, path) {
        let s = resolve(portal, &state.estate, &target).await.unwrap();
        scopes.insert(target, s);
    }
    let resolver = |t: &Target| scopes.get(t).cloned().flatten();
    propose(&[Call::new(method, path, 200, NOW)], &resolver).privilege_texts()
}

#[tokio::test]
async fn every_route_is_allowed_with_exactly_the_proposed_privileges() {
    let (portal, _clock, _tmp) = common::temp_portal("access").await;
    let all = ["host_group:*:manage", "setting:*:write"];
    let root = common::token_for(&portal, "everything", &all).await;
    let (state, _task) = AppState::new(portal.clone(), Default::default());
    let su = (root.0.as_str(), root.1.as_str());

    // Fixtures: group g below g0, device d in g (and d2 to delete), a collector group and
    // a collector, an SDT, an alert, a device property.
    let (_, g0) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/device/groups",
        &json!({"name": "top", "parentId": 1}),
    )
    .await;
    let g0 = g0["id"].as_i64().unwrap();
    let (_, g) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/device/groups",
        &json!({"name": "apps", "parentId": g0}),
    )
    .await;
    let g = g["id"].as_i64().unwrap();
    let (_, g3) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/device/groups",
        &json!({"name": "doomed", "parentId": g}),
    )
    .await;
    let g3 = g3["id"].as_i64().unwrap();
    let mk_device = |name: &'static str| json!({"name": "127.0.0.5", "displayName": name, "preferredCollectorId": 0, "hostGroupIds": g.to_string()});
    let (_, d) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/device/devices",
        &mk_device("web"),
    )
    .await;
    let d = d["id"].as_i64().unwrap();
    let (_, d2) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/device/devices",
        &mk_device("old"),
    )
    .await;
    let d2 = d2["id"].as_i64().unwrap();
    let (s, _) = call(
        &state,
        su,
        "POST",
        &format!("/santaba/rest/device/devices/{d}/properties"),
        &json!({"name": "env", "value": "prod"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &state,
        su,
        "POST",
        &format!("/santaba/rest/device/groups/{g}/properties"),
        &json!({"name": "team", "value": "a"}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, cg) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/setting/collector/groups",
        &json!({"name": "site-a"}),
    )
    .await;
    let cg = cg["id"].as_i64().unwrap();
    let (_, cg2) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/setting/collector/groups",
        &json!({"name": "site-b"}),
    )
    .await;
    let cg2 = cg2["id"].as_i64().unwrap();
    let (_, c) = call(
        &state,
        su,
        "POST",
        "/santaba/rest/setting/collector/collectors",
        &json!({"description": "c1", "collectorGroupId": cg}),
    )
    .await;
    let c = c["id"].as_i64().unwrap();
    let sdt_body = json!({"type": "ResourceSDT", "deviceId": d, "sdtType": "oneTime", "startDateTime": NOW, "endDateTime": NOW + 3_600_000, "comment": "c"});
    let (s, sdt) = call(&state, su, "POST", "/santaba/rest/sdt/sdts", &sdt_body).await;
    assert_eq!(s, 200, "{sdt}");
    let sdt = sdt["id"].as_str().unwrap().to_string();
    let (s, sdt2) = call(&state, su, "POST", "/santaba/rest/sdt/sdts", &sdt_body).await;
    assert_eq!(s, 200, "{sdt2}");
    let sdt2 = sdt2["id"].as_str().unwrap().to_string();
    let alert = objects::create(
        portal.store.as_ref(),
        &AlertDoc {
            monitor_object_id: d,
            alert_type: "dataSourceAlert".into(),
            severity: 3,
            ..Default::default()
        },
        None,
    )
    .await
    .unwrap();
    state.estate.invalidate();
    let a = format!("DS{}", alert.id);

    let r = "/santaba/rest";
    let routes: Vec<(&str, String, Value)> = vec![
        ("GET", format!("{r}/device/devices"), json!(null)),
        ("GET", format!("{r}/device/devices/{d}"), json!(null)),
        (
            "PATCH",
            format!("{r}/device/devices/{d}"),
            json!({"description": "x"}),
        ),
        (
            "PUT",
            format!("{r}/device/devices/{d}"),
            json!({"name": "127.0.0.5", "displayName": "web"}),
        ),
        (
            "GET",
            format!("{r}/device/devices/{d}/properties"),
            json!(null),
        ),
        (
            "GET",
            format!("{r}/device/devices/{d}/properties/env"),
            json!(null),
        ),
        (
            "POST",
            format!("{r}/device/devices/{d}/properties"),
            json!({"name": "new.one", "value": "1"}),
        ),
        (
            "PUT",
            format!("{r}/device/devices/{d}/properties/env"),
            json!({"name": "env", "value": "dev"}),
        ),
        (
            "GET",
            format!("{r}/device/devices/{d}/devicedatasources"),
            json!(null),
        ),
        ("GET", format!("{r}/device/devices/{d}/sdts"), json!(null)),
        (
            "GET",
            format!("{r}/device/devices/{d}/alertsettings"),
            json!(null),
        ),
        (
            "PUT",
            format!("{r}/device/devices/{d}/alertsettings"),
            json!({"thresholds": []}),
        ),
        ("GET", format!("{r}/device/groups"), json!(null)),
        ("GET", format!("{r}/device/groups/{g}"), json!(null)),
        (
            "PATCH",
            format!("{r}/device/groups/{g}"),
            json!({"description": "x"}),
        ),
        ("GET", format!("{r}/device/groups/{g}/devices"), json!(null)),
        (
            "GET",
            format!("{r}/device/groups/{g}/properties"),
            json!(null),
        ),
        (
            "GET",
            format!("{r}/device/groups/{g}/properties/team"),
            json!(null),
        ),
        (
            "POST",
            format!("{r}/device/groups/{g}/properties"),
            json!({"name": "owner", "value": "b"}),
        ),
        (
            "PUT",
            format!("{r}/device/groups/{g}/properties/team"),
            json!({"name": "team", "value": "c"}),
        ),
        ("GET", format!("{r}/device/groups/{g}/sdts"), json!(null)),
        (
            "GET",
            format!("{r}/device/groups/{g}/alertsettings"),
            json!(null),
        ),
        (
            "PUT",
            format!("{r}/device/groups/{g}/alertsettings"),
            json!({"thresholds": []}),
        ),
        (
            "POST",
            format!("{r}/device/devices"),
            json!({"name": "127.0.0.6", "displayName": "new", "preferredCollectorId": 0, "hostGroupIds": g.to_string()}),
        ),
        (
            "POST",
            format!("{r}/device/groups"),
            json!({"name": "child", "parentId": g}),
        ),
        ("GET", format!("{r}/setting/admins"), json!(null)),
        ("GET", format!("{r}/setting/roles"), json!(null)),
        ("GET", format!("{r}/setting/admins/apitokens"), json!(null)),
        ("GET", format!("{r}/setting/accesslogs"), json!(null)),
        ("GET", format!("{r}/setting/datasources"), json!(null)),
        (
            "GET",
            format!("{r}/setting/collector/collectors"),
            json!(null),
        ),
        (
            "GET",
            format!("{r}/setting/collector/collectors/{c}"),
            json!(null),
        ),
        (
            "PATCH",
            format!("{r}/setting/collector/collectors/{c}"),
            json!({"description": "c2"}),
        ),
        (
            "POST",
            format!("{r}/setting/collector/collectors/{c}/registration"),
            json!({}),
        ),
        (
            "POST",
            format!("{r}/setting/collector/collectors"),
            json!({"description": "c3", "collectorGroupId": cg}),
        ),
        ("GET", format!("{r}/setting/collector/groups"), json!(null)),
        (
            "GET",
            format!("{r}/setting/collector/groups/{cg}"),
            json!(null),
        ),
        (
            "POST",
            format!("{r}/setting/collector/groups"),
            json!({"name": "site-c"}),
        ),
        ("GET", format!("{r}/sdt/sdts"), json!(null)),
        ("GET", format!("{r}/sdt/sdts/{sdt}"), json!(null)),
        (
            "PATCH",
            format!("{r}/sdt/sdts/{sdt}"),
            json!({"comment": "changed"}),
        ),
        ("POST", format!("{r}/sdt/sdts"), sdt_body.clone()),
        ("GET", format!("{r}/alert/alerts"), json!(null)),
        ("GET", format!("{r}/alert/alerts/{a}"), json!(null)),
        (
            "POST",
            format!("{r}/alert/alerts/{a}/note"),
            json!({"ackComment": "looking"}),
        ),
        (
            "POST",
            format!("{r}/alert/alerts/{a}/ack"),
            json!({"ackComment": "mine"}),
        ),
        ("GET", format!("{r}/setting/alert/chains"), json!(null)),
        ("GET", format!("{r}/setting/alert/rules"), json!(null)),
        ("GET", "/api/v1/labels".to_string(), json!(null)),
        (
            "GET",
            format!("{r}/setting/admins/apitokens/migrations"),
            json!(null),
        ),
        // Deletions last.
        ("DELETE", format!("{r}/sdt/sdts/{sdt2}"), json!(null)),
        (
            "DELETE",
            format!("{r}/device/devices/{d}/properties/new.one"),
            json!(null),
        ),
        ("DELETE", format!("{r}/device/devices/{d2}"), json!(null)),
        ("DELETE", format!("{r}/device/groups/{g3}"), json!(null)),
        (
            "DELETE",
            format!("{r}/setting/collector/groups/{cg2}"),
            json!(null),
        ),
        (
            "DELETE",
            format!("{r}/setting/collector/collectors/{c}"),
            json!(null),
        ),
    ];
    for (n, (method, path, body)) in routes.iter().enumerate() {
        let privileges = proposed(&portal, &state, method, path).await;
        assert!(!privileges.is_empty(), "{method} {path}: nothing proposed");
        let refs: Vec<&str> = privileges.iter().map(String::as_str).collect();
        // Nothing granted: refused (or, for hidden objects, absent).
        let none =
            common::token_for(&portal, &format!("none-{n}"), &["setting:accesslogs:read"]).await;
        let needs_no_accesslogs = !privileges.iter().any(|p| p == "setting:accesslogs:read");
        if needs_no_accesslogs && !matches!(requirement(method, path), Requirement::List { .. }) {
            let (s, b) = call(&state, (&none.0, &none.1), method, path, body).await;
            // A body naming an object the caller cannot see is a bad request (400).
            let body_named = matches!(requirement(method, path), Requirement::Body { .. });
            assert!(
                matches!(s, 403 | 404) || (body_named && s == 400),
                "{method} {path} without privileges answered {s}: {b}"
            );
        }
        // Exactly the proposal: neither the gate nor the handler refuses.
        let who = common::token_for(&portal, &format!("exact-{n}"), &refs).await;
        let (s, b) = call(&state, (&who.0, &who.1), method, path, body).await;
        assert!(
            s != 403 && !(s == 404 && *method == "GET"),
            "{method} {path} with exactly {privileges:?} answered {s}: {b}"
        );
        // (503: no time-series store in this test.)
        assert!(s < 500 || s == 503, "{method} {path} answered {s}: {b}");
    }
}

#[test]
fn proposals_name_specific_groups() {
    // A sanity check of the table itself, independent of the portal.
    assert_eq!(
        requirement("GET", "/santaba/rest/device/devices/3"),
        Requirement::Object {
            target: Target::Device(3),
            level: palisade_core::privilege::Level::Read,
            hidden: true
        }
    );
}
