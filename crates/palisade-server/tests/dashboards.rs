//! Dashboards and widget tokens driven in-process on a real SQLite store: the REST API and
//! its privileges, the audit of every change, and widget tokens — scoped to one dashboard
//! (other dashboards, other endpoints and writes refused), revocable, audited on every use
//! with the source address, listed with the other tokens, and refused to owners the token
//! mandate excludes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use palisade_core::privilege::Privilege;
use palisade_server::portal::{Actor, Clock};
use palisade_server::AppState;
use palisade_store::{RoleChangeSet, TokenRecord};
use serde_json::{json, Value};
use std::sync::Arc;

struct Fixture {
    state: Arc<AppState>,
    clock: Arc<common::TestClock>,
    _tmp: common::TempDir,
    /// dashboard:*:manage, host_group:*:read (LMv1).
    editor: (String, String),
    editor_id: i64,
    /// setting:useraccess:write (LMv1): the token administration of `/setting/admins`.
    admin_tokens: (String, String),
    /// dashboard:<a>:read only, with its role id (created after the dashboards).
    reader_role: i64,
}

async fn user_with(state: &AppState, name: &str, privileges: &[&str]) -> (i64, i64) {
    let cli = Actor::cli();
    let role = palisade_server::ops::roles::create_checked(
        &state.portal,
        &cli,
        format!("{name}-role"),
        String::new(),
        privileges
            .iter()
            .map(|p| Privilege::parse_triple(p).unwrap())
            .collect(),
        false,
    )
    .await
    .unwrap();
    let user = palisade_server::ops::users::create(
        &state.portal,
        &cli,
        serde_json::from_value(json!({"username": name, "email": format!("{name}@example.com"), "apionly": true, "roles": [{"id": role.id}]})).unwrap(),
    )
    .await
    .unwrap();
    (user.id, role.id)
}

async fn fixture() -> Fixture {
    let (portal, clock, tmp) = common::temp_portal("dash").await;
    let editor = common::token_for(
        &portal,
        "editor",
        &["dashboard:*:manage", "host_group:*:read"],
    )
    .await;
    let admin_tokens =
        common::token_for(&portal, "tokenadmin", &["setting:useraccess:write"]).await;
    let editor_id = portal
        .store
        .get_user_by_name("editor")
        .await
        .unwrap()
        .unwrap()
        .id;
    let (state, _task) = AppState::new(portal, Default::default());
    Fixture {
        state,
        clock,
        _tmp: tmp,
        editor,
        editor_id,
        admin_tokens,
        reader_role: 0,
    }
}

impl Fixture {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn lm(
        &self,
        who: &(String, String),
        method: &str,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        common::lmv1_call(
            &self.state,
            (&who.0, &who.1),
            self.now(),
            method,
            path,
            &body,
        )
        .await
    }

    async fn editor(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let e = self.editor.clone();
        self.lm(&e, method, path, body).await
    }

    async fn bearer(
        &self,
        token: &str,
        method: &str,
        path: &str,
    ) -> (StatusCode, HeaderMap, Value) {
        let body = if method == "GET" { "" } else { "{}" };
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        common::send(&self.state, req).await
    }

    async fn audit_since(&self, seq: i64) -> Vec<palisade_store::AuditEntry> {
        self.state.audit.flush().await;
        self.state
            .portal
            .store
            .scan_audit(seq, 10_000)
            .await
            .unwrap()
    }

    async fn head(&self) -> i64 {
        self.state.audit.flush().await;
        self.state.portal.store.audit_head().await.unwrap().0
    }

    async fn dashboard(&self, name: &str) -> i64 {
        let (s, b) = self
            .editor(
                "POST",
                "/santaba/rest/dashboard/dashboards",
                json!({"name": name, "description": "wall"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["owner"], "editor");
        assert_eq!(b["sharable"], true);
        b["id"].as_i64().unwrap()
    }

    async fn widget(&self, body: Value) -> i64 {
        let (s, b) = self
            .editor("POST", "/santaba/rest/dashboard/widgets", body)
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b["id"].as_i64().unwrap()
    }

    async fn token_row(&self, id: i64) -> TokenRecord {
        self.state
            .portal
            .store
            .get_token(id)
            .await
            .unwrap()
            .unwrap()
    }
}

/// Two dashboards with widgets, and a widget token for the first owned by `owner` (a user
/// holding only `dashboard:<a>:read`), issued by the token administrator.
async fn two_dashboards() -> (Fixture, i64, i64, i64, i64, String, i64, i64) {
    let mut f = fixture().await;
    let a = f.dashboard("NOC wall").await;
    let b = f.dashboard("Finance").await;
    let wa = f
        .widget(json!({"dashboardId": a, "name": "Critical alerts", "type": "alert", "filters": {"severity": "critical,error"}}))
        .await;
    f.widget(json!({"dashboardId": a, "name": "All devices", "type": "noc", "deviceGroupId": 1}))
        .await;
    f.widget(json!({"dashboardId": a, "name": "Load", "type": "promql", "query": "sum(rate(x[5m]))", "timescale": "6hour"}))
        .await;
    let wb = f
        .widget(json!({"dashboardId": b, "name": "Other", "type": "alert"}))
        .await;
    let (owner, role) = user_with(
        &f.state,
        "wall-screen",
        &[&format!("dashboard:{a}:read"), "host_group:*:read"],
    )
    .await;
    f.reader_role = role;
    let t = f.admin_tokens.clone();
    let (s, issued) = f
        .lm(
            &t,
            "POST",
            &format!("/santaba/rest/setting/admins/{owner}/apitokens?type=widget"),
            json!({"dashboardId": a, "note": "lobby TV"}),
        )
        .await;
    // The token administrator may not read dashboard A: the creator must.
    assert_eq!(s, StatusCode::NOT_FOUND, "{issued}");
    // The editor (who reads every dashboard) issues it for the wall user... only with
    // setting:useraccess:write; so here it issues one for itself, and the admin test below
    // covers issuing for others.
    let (s, issued) = f
        .editor(
            "POST",
            &format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens"),
            json!({"note": "lobby TV"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{issued}");
    let secret = issued["widgetToken"].as_str().unwrap().to_string();
    assert!(secret.starts_with("palw_"));
    assert_eq!(issued["accessKey"], issued["widgetToken"]);
    assert_eq!(issued["wallPath"], format!("/wall#{secret}"));
    assert_eq!(issued["type"], "widget");
    assert_eq!(issued["dashboardId"], a);
    let tid = issued["id"].as_i64().unwrap();
    (f, a, b, wa, wb, secret, tid, owner)
}

#[tokio::test]
async fn widget_token_reads_its_dashboard_and_nothing_else() {
    let (f, a, b, wa, wb, secret, tid, _owner) = two_dashboards().await;
    let start = f.head().await;
    // Its dashboard, its widgets, their data, the wall view.
    for path in [
        format!("/santaba/rest/dashboard/dashboards/{a}"),
        format!("/santaba/rest/dashboard/dashboards/{a}/widgets"),
        format!("/santaba/rest/dashboard/widgets/{wa}"),
        format!("/santaba/rest/dashboard/widgets/{wa}/data"),
        "/santaba/rest/dashboard/wall".to_string(),
        format!("/santaba/rest/dashboard/wall?id={a}"),
    ] {
        let (s, _, body) = f.bearer(&secret, "GET", &path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
    }
    let (_, h, wall) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    assert_eq!(wall["id"], a);
    let html = wall["html"].as_str().unwrap();
    assert!(
        html.contains("Critical alerts") && html.contains("All devices") && html.contains("Load")
    );
    assert!(!html.contains("Other"), "another dashboard's widget leaked");
    let (_, _, d) = f
        .bearer(
            &secret,
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
        )
        .await;
    assert_eq!(d["userPermission"], "read");
    let (_, _, data) = f
        .bearer(
            &secret,
            "GET",
            &format!("/santaba/rest/dashboard/widgets/{wa}/data"),
        )
        .await;
    assert_eq!(data["type"], "alert");

    // Another dashboard, its widgets, listings, writes and the rest of the API: refused.
    let refused = [
        ("GET", format!("/santaba/rest/dashboard/dashboards/{b}")),
        (
            "GET",
            format!("/santaba/rest/dashboard/dashboards/{b}/widgets"),
        ),
        ("GET", format!("/santaba/rest/dashboard/widgets/{wb}")),
        ("GET", format!("/santaba/rest/dashboard/widgets/{wb}/data")),
        ("GET", format!("/santaba/rest/dashboard/wall?id={b}")),
        ("GET", format!("/santaba/rest/dashboard/dashboards/0{a}")),
        ("GET", "/santaba/rest/dashboard/dashboards".to_string()),
        ("GET", "/santaba/rest/dashboard/widgets".to_string()),
        (
            "GET",
            format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens"),
        ),
        ("PATCH", format!("/santaba/rest/dashboard/dashboards/{a}")),
        ("PUT", format!("/santaba/rest/dashboard/dashboards/{a}")),
        ("DELETE", format!("/santaba/rest/dashboard/dashboards/{a}")),
        ("POST", "/santaba/rest/dashboard/widgets".to_string()),
        ("PATCH", format!("/santaba/rest/dashboard/widgets/{wa}")),
        ("DELETE", format!("/santaba/rest/dashboard/widgets/{wa}")),
        (
            "POST",
            format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens"),
        ),
        ("GET", "/santaba/rest/device/devices".to_string()),
        ("GET", "/santaba/rest/device/groups".to_string()),
        ("GET", "/santaba/rest/alert/alerts".to_string()),
        ("GET", "/santaba/rest/setting/admins".to_string()),
        ("GET", "/santaba/rest/setting/admins/apitokens".to_string()),
        ("GET", "/santaba/rest/setting/accesslogs".to_string()),
        ("GET", "/api/v1/query?query=up".to_string()),
        ("POST", "/rest/v2/metric/ingest".to_string()),
    ];
    for (method, path) in &refused {
        let (s, _, body) = f.bearer(&secret, method, path).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::UNAUTHORIZED,
            "{method} {path} -> {s}: {body}"
        );
        assert!(
            body["errorMessage"]
                .as_str()
                .unwrap_or_default()
                .contains("widget token")
                || s == StatusCode::UNAUTHORIZED,
            "{method} {path}: {body}"
        );
    }
    // Nothing changed.
    let (_, d) = f
        .editor(
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({}),
        )
        .await;
    assert_eq!(d["name"], "NOC wall");

    // Every use, allowed or refused, is in the audit log with the token and the address.
    let entries = f.audit_since(start).await;
    let uses: Vec<_> = entries
        .iter()
        .filter(|e| e.event.token_id == Some(tid))
        .collect();
    assert!(
        uses.len() >= 7 + refused.len(),
        "{} uses audited",
        uses.len()
    );
    assert!(uses
        .iter()
        .all(|e| e.event.ip == "127.0.0.1" && e.event.username == "editor"));
    assert!(uses
        .iter()
        .any(|e| e.event.action == "api.call" && e.event.description.contains("via widget token")));
    assert_eq!(
        uses.iter()
            .filter(|e| e.event.status.unwrap_or(0) >= 400)
            .count(),
        refused.len()
    );
    assert!(
        uses.iter()
            .filter(|e| e.event.action == "api.denied")
            .count()
            >= refused.len() - 1
    );
    // The first use from an address is its own audit event, and last use is recorded.
    assert!(uses.iter().any(|e| e.event.action == "token.new_ip"));
    let row = f.token_row(tid).await;
    assert_eq!(row.last_auth_ip.as_deref(), Some("127.0.0.1"));
    assert!(row.last_used_on.is_some());
}

#[tokio::test]
async fn widget_tokens_are_listed_disabled_and_deleted_with_the_others() {
    let (f, a, _b, _wa, _wb, secret, tid, _owner) = two_dashboards().await;
    f.bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    let t = f.admin_tokens.clone();
    let (s, list) = f
        .lm(
            &t,
            "GET",
            "/santaba/rest/setting/admins/apitokens?type=widget",
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(list["total"], 1);
    let item = &list["items"][0];
    assert_eq!(item["id"], tid);
    assert_eq!(item["type"], "widget");
    assert_eq!(item["dashboardId"], a);
    assert_eq!(item["adminName"], "editor");
    assert_eq!(item["accessKey"], "");
    assert_eq!(item["note"], "lobby TV");
    assert_eq!(item["lastAuthIp"], "127.0.0.1");
    assert!(item["lastUsedOn"].as_i64().unwrap() > 0);
    assert!(item["createdOn"].as_i64().unwrap() > 0);
    assert!(
        !list.to_string().contains(&secret),
        "the secret is never listed"
    );
    // All tokens: LMv1 ones and the widget one, told apart by `type`.
    let (_, all) = f
        .lm(
            &t,
            "GET",
            "/santaba/rest/setting/admins/apitokens",
            json!({}),
        )
        .await;
    let types: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&"lmv1") && types.contains(&"widget"),
        "{types:?}"
    );
    // Stored as a keyed hash only.
    let row = f.token_row(tid).await;
    assert!(row.access_key_enc.is_none());
    assert_ne!(row.bearer_hash.as_deref(), Some(secret.as_str()));
    assert_eq!(
        row.bearer_hash.as_deref(),
        Some(f.state.portal.keys.bearer_hash(&secret).as_str())
    );

    // Disabled through the ordinary token endpoint: refused at once (401), and audited.
    let (s, b) = f
        .lm(
            &t,
            "PATCH",
            &format!(
                "/santaba/rest/setting/admins/{}/apitokens/{tid}",
                f.editor_id
            ),
            json!({"status": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["status"], 1);
    let start = f.head().await;
    let (s, _, body) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let denied = f.audit_since(start).await;
    assert!(denied.iter().any(|e| e.event.token_id == Some(tid)
        && e.event.action == "api.denied"
        && e.event.ip == "127.0.0.1"));
    // Enabled again, then deleted through the ordinary endpoint: unknown from then on.
    f.lm(
        &t,
        "PATCH",
        &format!(
            "/santaba/rest/setting/admins/{}/apitokens/{tid}",
            f.editor_id
        ),
        json!({"status": 2}),
    )
    .await;
    let (s, _, _) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = f
        .lm(
            &t,
            "DELETE",
            &format!(
                "/santaba/rest/setting/admins/{}/apitokens/{tid}",
                f.editor_id
            ),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let entries = f.audit_since(0).await;
    for action in [
        "token.create",
        "token.disable",
        "token.enable",
        "token.delete",
    ] {
        assert!(
            entries.iter().any(|e| e.event.action == action && e.event.description.contains(&tid.to_string())),
            "no {action} entry"
        );
    }
}

#[tokio::test]
async fn revoking_from_the_dashboard_and_deleting_the_dashboard_end_its_tokens() {
    let (f, a, _b, _wa, _wb, secret, tid, _owner) = two_dashboards().await;
    let (s, listed) = f
        .editor(
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(listed["total"], 1);
    let (s, b) = f
        .editor(
            "PATCH",
            &format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens/{tid}"),
            json!({"status": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _, _) = f
        .bearer(
            &secret,
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A second token, then the dashboard goes: its tokens go with it.
    let (_, issued) = f
        .editor(
            "POST",
            &format!("/santaba/rest/dashboard/dashboards/{a}/widgettokens"),
            json!({}),
        )
        .await;
    let second = issued["widgetToken"].as_str().unwrap().to_string();
    let (s, _) = f
        .editor(
            "DELETE",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = f
        .bearer(&second, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(f.state.portal.store.get_token(tid).await.unwrap().is_none());
    let (s, _) = f
        .editor(
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{a}/widgets"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_token_mandate_and_dashboard_read_apply_to_widget_tokens() {
    let (f, a, b, _wa, _wb, _secret, _tid, owner) = two_dashboards().await;
    // The token administrator issues for the wall user only when it can read the dashboard
    // itself: give it read on every dashboard.
    let t = f.admin_tokens.clone();
    let admin_role = f
        .state
        .portal
        .store
        .get_role_by_name("tokenadmin-role")
        .await
        .unwrap()
        .unwrap();
    f.state
        .portal
        .store
        .update_role(
            admin_role.id,
            RoleChangeSet {
                privileges: Some(vec![
                    Privilege::parse_triple("setting:useraccess:write").unwrap(),
                    Privilege::parse_triple("dashboard:*:read").unwrap(),
                ]),
                ..Default::default()
            },
            Actor::cli().event(f.now(), "role.update", "test".into()),
        )
        .await
        .unwrap();
    let issue_for = |who: i64, dash: i64| {
        let t = t.clone();
        let f = &f;
        async move {
            f.lm(
                &t,
                "POST",
                &format!("/santaba/rest/setting/admins/{who}/apitokens?type=widget"),
                json!({"dashboardId": dash}),
            )
            .await
        }
    };
    // The owner must be able to read that dashboard.
    let (s, body) = issue_for(owner, b).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("cannot read dashboard"));
    let (s, ok) = issue_for(owner, a).await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    assert_eq!(ok["adminName"], "wall-screen");
    let secret = ok["widgetToken"].as_str().unwrap().to_string();
    let (s, _, _) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::OK);

    // No widget token for a holder of the administrator role, nor for the support account.
    let users = f.state.portal.store.list_users().await.unwrap();
    let admin = users.iter().find(|u| u.username == "admin").unwrap();
    let support = users.iter().find(|u| u.is_support()).unwrap();
    for who in [admin.id, support.id] {
        let (s, body) = issue_for(who, a).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        let msg = body["errorMessage"].as_str().unwrap();
        assert!(
            msg.contains("administrator") || msg.contains("support"),
            "{msg}"
        );
    }
    // Nor through the operation itself (the signed-in page's path), for the administrator.
    let roles = f.state.portal.store.list_roles().await.unwrap();
    let viewer = palisade_server::dashboards::ops::Viewer {
        actor: Actor::cli(),
        user: admin.clone(),
        privileges: palisade_server::portal::Portal::privileges_of(admin, &roles),
        data_privileges: vec![],
        widget_dashboard: None,
    };
    let refused = palisade_server::dashboards::tokens::issue(
        &f.state,
        &viewer,
        palisade_server::dashboards::tokens::IssueRequest {
            dashboard_id: a,
            ..Default::default()
        },
    )
    .await;
    assert!(
        matches!(&refused, Err(palisade_server::error::ApiError::Forbidden(m)) if m.contains("administrator")),
        "{refused:?}"
    );

    // The owner loses read on the dashboard: the token stops at its next request.
    f.state
        .portal
        .store
        .update_role(
            f.reader_role,
            RoleChangeSet {
                privileges: Some(vec![Privilege::parse_triple("host_group:*:read").unwrap()]),
                ..Default::default()
            },
            Actor::cli().event(f.now(), "role.update", "test".into()),
        )
        .await
        .unwrap();
    let (s, _, body) = f
        .bearer(&secret, "GET", "/santaba/rest/dashboard/wall")
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body["errorMessage"]
        .as_str()
        .unwrap()
        .contains("can no longer read"));
}

#[tokio::test]
async fn dashboard_privileges_and_audit() {
    let f = fixture().await;
    let a = f.dashboard("Ops").await;
    let w = f
        .widget(json!({"dashboardId": a, "name": "CPU", "type": "promql", "query": "avg(cpu)"}))
        .await;
    let reader =
        common::token_for(&f.state.portal, "reader", &[&format!("dashboard:{a}:read")]).await;
    let writer = common::token_for(
        &f.state.portal,
        "writer",
        &[&format!("dashboard:{a}:write")],
    )
    .await;
    // Readers read; only the dashboards they hold a privilege on are listed.
    let b = f.dashboard("Hidden").await;
    let (s, list) = f
        .lm(
            &reader,
            "GET",
            "/santaba/rest/dashboard/dashboards",
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], a);
    let (s, _) = f
        .lm(
            &reader,
            "GET",
            &format!("/santaba/rest/dashboard/dashboards/{b}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = f
        .lm(
            &reader,
            "PATCH",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f
        .lm(
            &reader,
            "POST",
            "/santaba/rest/dashboard/dashboards",
            json!({"name": "mine"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A PromQL widget's data needs host_group:*:read: a message, not a leak.
    let (s, data) = f
        .lm(
            &reader,
            "GET",
            &format!("/santaba/rest/dashboard/widgets/{w}/data"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        data["message"]
            .as_str()
            .unwrap()
            .contains("host_group:*:read"),
        "{data}"
    );
    // Writers change it and its widgets, but do not delete it or make it private.
    let (s, d) = f
        .lm(&writer, "PATCH", &format!("/santaba/rest/dashboard/dashboards/{a}"), json!({"description": "changed", "widgetsConfig": {w.to_string(): {"col": 1, "row": 1, "sizex": 12, "sizey": 1}}}))
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["description"], "changed");
    assert_eq!(d["userPermission"], "write");
    let (s, _) = f
        .lm(
            &writer,
            "PATCH",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({"sharable": false}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f
        .lm(
            &writer,
            "DELETE",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, pw) = f
        .lm(
            &writer,
            "PATCH",
            &format!("/santaba/rest/dashboard/widgets/{w}"),
            json!({"name": "CPU busy"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{pw}");
    assert_eq!(pw["query"], "avg(cpu)");
    // Validation.
    let (s, e) = f
        .editor(
            "POST",
            "/santaba/rest/dashboard/widgets",
            json!({"dashboardId": a, "name": "bad", "type": "promql", "query": "sum("}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    let (s, _) = f
        .editor(
            "POST",
            "/santaba/rest/dashboard/dashboards",
            json!({"name": "ops"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "names are unique within a group");
    // Private dashboards: only their owner (and dashboard:*:manage) see them.
    let (s, _) = f
        .editor(
            "PATCH",
            &format!("/santaba/rest/dashboard/dashboards/{b}"),
            json!({"sharable": false}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let all_reader = common::token_for(&f.state.portal, "allreader", &["dashboard:*:read"]).await;
    let (_, list) = f
        .lm(
            &all_reader,
            "GET",
            "/santaba/rest/dashboard/dashboards",
            json!({}),
        )
        .await;
    assert_eq!(list["total"], 1, "{list}");
    // Every change is audited.
    let entries = f.audit_since(0).await;
    for action in [
        "dashboard.create",
        "dashboard.update",
        "dashboard.widget.create",
        "dashboard.widget.update",
    ] {
        assert!(
            entries.iter().any(|e| e.event.action == action),
            "no {action}"
        );
    }
    let (s, _) = f
        .editor(
            "DELETE",
            &format!("/santaba/rest/dashboard/widgets/{w}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = f
        .editor(
            "DELETE",
            &format!("/santaba/rest/dashboard/dashboards/{a}"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let entries = f.audit_since(0).await;
    assert!(entries
        .iter()
        .any(|e| e.event.action == "dashboard.widget.delete"));
    assert!(entries
        .iter()
        .any(|e| e.event.action == "dashboard.delete" && e.event.username == "editor"));
}

#[tokio::test]
async fn the_wall_page_is_a_strict_static_shell() {
    let f = fixture().await;
    let req = Request::builder().uri("/wall").body(Body::empty()).unwrap();
    let (s, h, _) = common::send(&f.state, req).await;
    assert_eq!(s, StatusCode::OK);
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe")
    );
    assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
    assert_eq!(h.get("cache-control").unwrap(), "no-store");
    for asset in ["/wall/assets/wall.js", "/wall/assets/dashboards.css"] {
        let req = Request::builder().uri(asset).body(Body::empty()).unwrap();
        let (s, h, _) = common::send(&f.state, req).await;
        assert_eq!(s, StatusCode::OK, "{asset}");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    }
    // The signed-in pages need a session.
    let req = Request::builder()
        .uri("/ui/dashboards")
        .body(Body::empty())
        .unwrap();
    let (s, h, _) = common::send(&f.state, req).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{h:?}");
    assert_eq!(h.get("location").unwrap(), "/login");
}
