#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The web UI driven in-process (no socket): pages need a signed-in session, forms need the
//! session's CSRF token, credentials are never rendered, a user lacking a privilege gets
//! 403 pages, and changes are audited like the API calls they correspond to.

mod common;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use palisade_server::monitor::pipeline::{self, Point};
use palisade_server::monitor::TsdbHandle;
use palisade_server::portal::Actor;
use palisade_server::signin::session::{self, SessionState};
use palisade_server::{app, AppOptions, AppState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tower::ServiceExt;

struct H {
    state: Arc<AppState>,
    _tmp: common::TempDir,
}

/// A signed-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn harness() -> H {
    let (portal, _clock, tmp) = common::temp_portal("ui").await;
    let tsdb = palisade_tsdb::Tsdb::open(
        tmp.0.join("tsdb"),
        palisade_tsdb::Options {
            background: false,
            ..Default::default()
        },
    )
    .unwrap();
    let (state, _audit) = AppState::new(
        portal,
        AppOptions {
            tsdb: Some(TsdbHandle(Arc::new(tsdb))),
            ..Default::default()
        },
    );
    H { state, _tmp: tmp }
}

impl H {
    /// A local user holding `role`, signed in (second factor within its grace period).
    async fn sign_in(&self, name: &str, role: &str) -> Browser {
        let portal = &self.state.portal;
        let role = portal.store.get_role_by_name(role).await.unwrap().unwrap();
        let user = palisade_server::ops::users::create(
            portal,
            &Actor::cli(),
            serde_json::from_value(serde_json::json!({
                "username": name, "email": format!("{name}@example.com"), "roles": [{"id": role.id}]
            }))
            .unwrap(),
        )
        .await
        .unwrap();
        let (id, s) = session::start(
            portal,
            user.id,
            SessionState::Active,
            "password",
            "127.0.0.1",
            "test",
            true,
        )
        .await
        .unwrap();
        Browser {
            cookie: format!("palisade_session={id}"),
            csrf: s.record.csrf,
        }
    }

    async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let mut req = req;
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    async fn get(&self, b: Option<&Browser>, path: &str) -> (StatusCode, HeaderMap, String) {
        let mut req = Request::builder().method("GET").uri(path);
        if let Some(b) = b {
            req = req.header("cookie", &b.cookie);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        b: &Browser,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("cookie", &b.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap();
        self.send(req).await
    }

    async fn audit(&self) -> Vec<palisade_store::AuditEntry> {
        self.state.audit.flush().await;
        self.state.portal.store.list_audit(None, 500).await.unwrap()
    }

    async fn device_count(&self) -> usize {
        self.state.estate.invalidate();
        self.state
            .estate
            .get(&self.state.portal)
            .await
            .unwrap()
            .devices
            .len()
    }
}

fn location(h: &HeaderMap) -> &str {
    h.get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

const COMMUNITY: &str = "s3cret-community-7Q";
const AUTH_TOKEN: &str = "auth-pass-9Z-very-secret";
const API_KEY: &str = "k3y-SECRET-value";

#[tokio::test]
async fn pages_need_a_signed_in_session() {
    let h = harness().await;
    let (s, hd, _) = h.get(None, "/ui").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(location(&hd), "/login");
    let (s, hd, _) = h.get(None, "/ui/devices").await;
    assert_eq!((s, location(&hd)), (StatusCode::SEE_OTHER, "/login"));
    let (_, hd, _) = h.get(None, "/").await;
    assert_eq!(location(&hd), "/login");

    let admin = h.sign_in("alice", "administrator").await;
    let (_, hd, _) = h.get(Some(&admin), "/").await;
    assert_eq!(location(&hd), "/ui", "`/` leads a signed-in user to the UI");
    let (s, hd, body) = h.get(Some(&admin), "/ui").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let csp = hd["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(hd["cache-control"], "no-store");
    assert!(body.contains("id=\"welcome\"") && body.contains("alice"));
    for link in [
        "/ui/compliance",
        "/ui/dashboards",
        "/ui/devices",
        "/ui/audit",
    ] {
        assert!(
            body.contains(&format!("href=\"{link}\"")),
            "nav lacks {link}"
        );
    }
    assert!(body.contains("class=\"skip\"") && body.contains("id=\"main\""));
    assert!(!body.contains("style="), "no inline style under the CSP");
    // The sign-in page is under the same strict policy now.
    let (_, hd, body) = h.get(None, "/login").await;
    assert!(!hd["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("unsafe-inline"));
    assert!(!body.contains("<style") && !body.contains("onclick"));
    // Unknown UI paths: an HTML 404; API paths keep the JSON one.
    let (s, hd, body) = h.get(Some(&admin), "/ui/no-such-page").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(hd["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(body.contains("no such page"));
    let (s, _, body) = h.get(None, "/no-such").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("errorCode"));
    // Assets are served by the portal itself.
    let (s, hd, css) = h.get(None, "/ui/assets/palisade.css").await;
    assert_eq!(s, StatusCode::OK);
    assert!(hd["content-type"].to_str().unwrap().starts_with("text/css"));
    assert!(css.contains("prefers-contrast"));
}

#[tokio::test]
async fn forms_need_the_csrf_token() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let fields = [("name", "10.0.0.9"), ("displayName", "forged")];
    let (s, _, body) = h.post(&admin, "/ui/devices/new", &fields).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("reload the page"));
    let with_wrong = [("csrf", "not-the-token"), fields[0], fields[1]];
    let (s, _, _) = h.post(&admin, "/ui/devices/new", &with_wrong).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h.device_count().await, 0, "nothing was created");
    let refused = h.audit().await;
    assert!(
        refused
            .iter()
            .any(|e| e.event.action == "api.denied" && e.event.description.contains("CSRF")),
        "refused forms are audited"
    );
    let ok = [("csrf", admin.csrf.as_str()), fields[0], fields[1]];
    let (s, hd, body) = h.post(&admin, "/ui/devices/new", &ok).await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(location(&hd).starts_with("/ui/devices/"), "{hd:?}");
    assert_eq!(h.device_count().await, 1);

    // The dashboard pages' forms sit behind the same guard.
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/dashboards",
            &[("csrf", "not-the-token"), ("name", "forged")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let denied = |entries: &[palisade_store::AuditEntry]| {
        entries
            .iter()
            .filter(|e| {
                e.event.action == "api.denied" && e.event.description.contains("/ui/dashboards")
            })
            .count()
    };
    assert_eq!(denied(&h.audit().await), 1, "audited like any refused form");
    let (s, hd, body) = h
        .post(
            &admin,
            "/ui/dashboards",
            &[("csrf", admin.csrf.as_str()), ("name", "NOC")],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert!(location(&hd).starts_with("/ui/dashboards/"), "{hd:?}");
}

#[tokio::test]
async fn credentials_are_never_rendered_and_changes_are_audited_like_the_api() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let csrf = admin.csrf.clone();
    // Refused (v3 without a user): the form comes back with 400 and without the secrets.
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/devices/new",
            &[
                ("csrf", &csrf),
                ("name", "10.0.0.7"),
                ("snmp_version", "v3"),
                ("snmp_auth_token", AUTH_TOKEN),
                ("prop_name_0", "api.key"),
                ("prop_value_0", API_KEY),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("security name"), "{body}");
    assert!(!body.contains(AUTH_TOKEN) && !body.contains(API_KEY));

    let (s, hd, body) = h
        .post(
            &admin,
            "/ui/devices/new",
            &[
                ("csrf", &csrf),
                ("name", "10.0.0.7"),
                ("displayName", "switch-7"),
                ("snmp_version", "v2c"),
                ("snmp_community", COMMUNITY),
                ("prop_name_0", "api.key"),
                ("prop_value_0", API_KEY),
                ("prop_name_1", "location"),
                ("prop_value_1", "rack 4"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let page = location(&hd).to_string();
    let id: i64 = page
        .trim_start_matches("/ui/devices/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Some data, so the graph area draws lines.
    let now = h.state.portal.now();
    let points: Vec<Point> = (0..10)
        .map(|i| Point {
            device_id: id,
            device: "switch-7".into(),
            datasource: "UiTest".into(),
            instance: "port1".into(),
            datapoint: "inOctets".into(),
            ts_ms: now - (10 - i) * 60_000,
            value: (i * 10) as f64,
        })
        .collect();
    pipeline::accept(&h.state, points, &BTreeMap::new())
        .await
        .unwrap();

    for path in [
        page.as_str(),
        &format!("/ui/devices/{id}?range=24h"),
        "/ui/devices",
        "/ui/devices?q=rack",
        "/ui/audit",
    ] {
        let (s, _, body) = h.get(Some(&admin), path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        for secret in [COMMUNITY, API_KEY] {
            assert!(!body.contains(secret), "{path} shows a credential");
        }
    }
    let (_, _, body) = h.get(Some(&admin), &page).await;
    assert!(body.contains("snmp.community") && body.contains("********"));
    assert!(body.contains("rack 4"));
    assert!(
        body.contains("<svg") && body.contains("class=\"line s0\""),
        "graph drawn"
    );
    assert!(body.contains("UiTest"));

    // Setting a credential property: the form never echoes it on error either.
    let (s, _, body) = h
        .post(
            &admin,
            &format!("/ui/devices/{id}/properties"),
            &[
                ("csrf", &csrf),
                ("action", "set"),
                ("name", "bad name!"),
                ("value", "x"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // Audited as the API call: the operation's entry and the api.call record.
    let entries = h.audit().await;
    let created = entries
        .iter()
        .find(|e| e.event.action == "device.create")
        .expect("device.create audited");
    assert_eq!(created.event.method, "POST");
    assert_eq!(created.event.path, "/santaba/rest/device/devices");
    assert_eq!(created.event.username, "alice");
    assert!(entries.iter().any(|e| e.event.action == "api.call"
        && e.event
            .description
            .contains("POST /santaba/rest/device/devices -> 200 via session (web UI")));
    assert!(entries.iter().any(|e| e.event.action == "api.call"
        && e.event.status == Some(400)
        && e.event.description.contains("/properties")));
    for e in &entries {
        assert!(!e.event.description.contains(COMMUNITY));
    }
}

#[tokio::test]
async fn a_user_lacking_privileges_gets_403_pages() {
    let h = harness().await;
    let reader = h.sign_in("rita", "readonly").await;
    for path in [
        "/ui/users",
        "/ui/audit",
        "/ui/audit/report.csv",
        "/ui/settings",
        "/ui/tokens",
    ] {
        let (s, hd, body) = h.get(Some(&reader), path).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(hd["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(body.contains("id=\"page-error\""), "{path}");
    }
    let (_, _, body) = h.get(Some(&reader), "/ui").await;
    assert!(
        !body.contains("href=\"/ui/users\""),
        "nav hides what the user cannot open"
    );
    assert!(body.contains("href=\"/ui/devices\""));
    let (s, _, body) = h
        .post(
            &reader,
            "/ui/devices/new",
            &[("csrf", &reader.csrf), ("name", "10.9.9.9")],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("host_group"), "{body}");
    assert_eq!(h.device_count().await, 0);
}

#[tokio::test]
async fn tokens_show_their_secret_once_and_follow_the_mandate() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let csrf = admin.csrf.clone();
    let readonly = h
        .state
        .portal
        .store
        .get_role_by_name("readonly")
        .await
        .unwrap()
        .unwrap();
    let rid = readonly.id.to_string();
    let (s, hd, body) = h
        .post(
            &admin,
            "/ui/users/new",
            &[
                ("csrf", &csrf),
                ("username", "grafana-bot"),
                ("email", "bot@example.com"),
                ("role", &rid),
                ("apionly", "1"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    let bot_id = location(&hd).trim_start_matches("/ui/users/").to_string();
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/tokens/new",
            &[
                ("csrf", &csrf),
                ("owner", &bot_id),
                ("type", "lmv1"),
                ("note", "grafana"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let start = body.find("palk_").expect("the access key is shown");
    let secret: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    assert!(secret.len() > 40, "{secret}");
    let (_, _, list) = h.get(Some(&admin), "/ui/tokens").await;
    assert!(
        list.contains("grafana-bot") && !list.contains(&secret),
        "shown once"
    );
    let (_, _, list) = h.get(Some(&admin), &format!("/ui/users/{bot_id}")).await;
    assert!(!list.contains(&secret));

    // The mandate: no token for a holder of the administrator role.
    let alice = h
        .state
        .portal
        .store
        .get_user_by_name("alice")
        .await
        .unwrap()
        .unwrap();
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/tokens/new",
            &[
                ("csrf", &csrf),
                ("owner", &alice.id.to_string()),
                ("type", "bearer"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("id=\"form-error\"") && body.contains("token-form"));
}

#[tokio::test]
async fn audit_exports_and_settings_validation() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let (s, hd, csv) = h
        .get(Some(&admin), "/ui/audit/report.csv?action=user.")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(hd["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(hd["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(csv.starts_with("id,time_utc,username"));
    assert!(csv.contains("\"user.create\""), "{csv}");
    let (s, _, html) = h
        .get(Some(&admin), "/ui/audit/report.html?user=System")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Palisade audit report") && html.contains("user=System"));
    let (s, _, _) = h.get(Some(&admin), "/ui/audit?from=not-a-date").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let entries = h.audit().await;
    assert!(entries.iter().any(|e| e.event.action == "audit.export"));

    let (s, _, body) = h
        .post(
            &admin,
            "/ui/settings",
            &[
                ("csrf", &admin.csrf),
                ("key", "mfa.grace_hours"),
                ("value", "999"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("0 to 720") && body.contains("aria-invalid=\"true\""));
    let (s, hd, _) = h
        .post(
            &admin,
            "/ui/settings",
            &[
                ("csrf", &admin.csrf),
                ("key", "mfa.grace_hours"),
                ("value", "48"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(location(&hd), "/ui/settings?saved=mfa.grace_hours");
    assert_eq!(
        palisade_server::settings::get(&h.state.portal, "mfa.grace_hours")
            .await
            .unwrap(),
        "48"
    );
}

#[tokio::test]
async fn wall_mode_is_remembered() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let (s, hd, body) = h.get(Some(&admin), "/ui?wall=1").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("class=\"wall\"") && body.contains("http-equiv=\"refresh\""));
    assert!(hd["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("palisade_wall=1"));
}

#[tokio::test]
async fn downtime_and_collectors() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let csrf = admin.csrf.clone();
    let (_, hd, _) = h
        .post(
            &admin,
            "/ui/devices/new",
            &[
                ("csrf", &csrf),
                ("name", "10.0.0.5"),
                ("displayName", "web-5"),
            ],
        )
        .await;
    let id = location(&hd)
        .trim_start_matches("/ui/devices/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // A refused SDT comes back with the API's message and status.
    let target = format!("d:{id}");
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/sdts/new",
            &[
                ("csrf", &csrf),
                ("target", &target),
                ("start", "2030-01-01T10:00"),
                ("duration", "0"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("duration"));
    let (s, hd, body) = h
        .post(
            &admin,
            "/ui/sdts/new",
            &[
                ("csrf", &csrf),
                ("target", &target),
                ("start", "2030-01-01T10:00"),
                ("duration", "90"),
                ("comment", "CHG-1234"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&hd), "/ui/sdts?done=created");
    let (_, _, list) = h.get(Some(&admin), "/ui/sdts").await;
    assert!(list.contains("CHG-1234") && list.contains("web-5") && list.contains("R_"));
    // The id from the delete form's action (a bare "R_" could also occur in a random
    // CSRF token on the page).
    let action = "/ui/sdts/R_";
    let at = list.find(action).expect("a delete form for the SDT") + "/ui/sdts/".len();
    let sdt_id: String = list[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let (_, _, page) = h.get(Some(&admin), &format!("/ui/devices/{id}")).await;
    assert!(
        page.contains("CHG-1234"),
        "the device page lists its downtime"
    );
    let (s, _, _) = h
        .post(
            &admin,
            &format!("/ui/sdts/{sdt_id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, _, list) = h.get(Some(&admin), "/ui/sdts").await;
    assert!(!list.contains("CHG-1234"));
    assert!(h
        .audit()
        .await
        .iter()
        .any(|e| e.event.action == "sdt.delete" && e.event.method == "DELETE"));

    // A collector: its registration secret is shown once.
    let (s, _, body) = h
        .post(
            &admin,
            "/ui/collectors/new",
            &[
                ("csrf", &csrf),
                ("description", "dc1 collector"),
                ("group", "0"),
                ("backup", "0"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let start = body
        .find("palr_")
        .expect("the registration secret is shown");
    let secret: String = body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    let (_, _, list) = h.get(Some(&admin), "/ui/collectors").await;
    assert!(list.contains("dc1 collector") && list.contains("Not registered"));
    assert!(!list.contains(&secret));
}

#[tokio::test]
async fn compliance_page_shows_findings_and_needs_the_privilege() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let (s, _, body) = h.get(Some(&admin), "/ui/compliance").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("id=\"section-two-factor\""), "{body}");
    assert!(body.contains("id=\"section-api-tokens\""));
    // alice has no second factor yet (within her grace period): a finding with its fix.
    assert!(body.contains("mfa.in-grace/user/"), "{body}");
    assert!(body.contains("href=\"/api/compliance?format=csv\""));
    assert!(
        body.contains("id=\"score-history\""),
        "the report took a snapshot"
    );
    assert!(
        body.contains("href=\"/ui/compliance\""),
        "in the navigation"
    );

    // The printable report: every mandate, the finding, no navigation.
    let (s, _, body) = h.get(Some(&admin), "/ui/compliance/report.html").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("Palisade compliance report"), "{body}");
    assert!(body.contains("id=\"report-overall\""));
    assert!(body.contains("mfa.in-grace/user/"), "{body}");
    assert!(
        !body.contains("href=\"/ui/devices\""),
        "no navigation on a printout"
    );

    let reader = h.sign_in("rita", "readonly").await;
    let (s, _, body) = h.get(Some(&reader), "/ui/compliance/report.html").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    let (s, _, body) = h.get(Some(&reader), "/ui/compliance").await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("id=\"page-error\""));
    assert!(!body.contains("href=\"/ui/compliance\""), "nav hides it");
}

#[tokio::test]
async fn an_imported_administrator_token_is_migrated_in_the_ui() {
    let h = harness().await;
    let admin = h.sign_in("alice", "administrator").await;
    let csrf = admin.csrf.clone();
    let portal = &h.state.portal;
    let old = palisade_server::ops::token_import::import(
        portal,
        &Actor::cli(),
        palisade_server::ops::token_import::ImportRequest {
            owner: "alice".into(),
            kind: palisade_store::TokenType::Lmv1,
            access_id: Some("lmAB12cd34EF56gh78IJ".into()),
            secret: palisade_core::secret::Secret::new(
                "Zx9[old]Key-from-LM-0123456789abcdef".into(),
            ),
            note: "imported".into(),
            source: "acme.logicmonitor.com".into(),
        },
    )
    .await
    .unwrap();
    for _ in 0..2 {
        let (s, b) = common::lmv1_call(
            &h.state,
            (
                "lmAB12cd34EF56gh78IJ",
                "Zx9[old]Key-from-LM-0123456789abcdef",
            ),
            portal.now(),
            "GET",
            "/santaba/rest/device/devices",
            &serde_json::Value::Null,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    h.state.audit.flush().await;
    let (_, _, body) = h.get(Some(&admin), "/ui/compliance").await;
    assert!(body.contains("lmAB12cd34EF56gh78IJ"), "{body}");
    let (_, _, list) = h.get(Some(&admin), "/ui/tokens").await;
    assert!(list.contains(&format!("/ui/tokens/{}/migrate", old.id)));
    let page = format!("/ui/tokens/{}/migrate", old.id);
    let (s, _, body) = h.get(Some(&admin), &page).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("id=\"migration-form\""), "{body}");
    assert!(body.contains("GET /santaba/rest/device/devices"), "{body}");
    let privs: Vec<String> = body
        .match_indices("name=\"privilege\" value=\"")
        .map(|(i, m)| {
            body[i + m.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect()
        })
        .collect();
    assert!(!privs.is_empty(), "{body}");
    let mut fields: Vec<(&str, &str)> = vec![
        ("csrf", &csrf),
        ("roleName", "inventory-reader"),
        ("username", "inventory-bot"),
    ];
    for p in &privs {
        fields.push(("privilege", p));
    }
    // Without the CSRF token: refused.
    let (s, _, _) = h.post(&admin, &page, &fields[1..]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, body) = h.post(&admin, &page, &fields).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("id=\"token-secret\"") && body.contains("inventory-bot"));
    let (_, _, again) = h.get(Some(&admin), &page).await;
    assert!(again.contains("id=\"migration-state\">retiring"), "{again}");
    assert!(!again.contains("id=\"token-secret\""), "shown once");
    let (s, hd, _) = h
        .post(&admin, &format!("{page}/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location(&hd).ends_with("done=disabled"));
    let (_, _, st) = h.get(Some(&admin), &page).await;
    assert!(st.contains("id=\"migration-state\">disabled"), "{st}");
    let (s, hd, _) = h
        .post(&admin, &format!("{page}/finish"), &[("csrf", &csrf)])
        .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(location(&hd).ends_with("done=waiting"), "{hd:?}");
    let (_, _, body) = h.get(Some(&admin), "/ui/compliance").await;
    assert!(
        !body.contains("lmAB12cd34EF56gh78IJ"),
        "disabled: out of scope"
    );
    let entries = h.audit().await;
    for (action, path) in [
        ("token.migration.disable", "/migration/disable"),
        ("api.call", "/migration/finish"),
    ] {
        assert!(
            entries.iter().any(|e| e.event.action == action
                && (e.event.path.ends_with(path) || e.event.description.contains(path))),
            "{action} {path}"
        );
    }
    // A reader sees neither the page nor its actions.
    let reader = h.sign_in("rita", "readonly").await;
    let (s, _, _) = h.get(Some(&reader), &page).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
