//! Adding a device: name, display name, group, preferred collector, SNMP v2c community or v3
//! user with authentication and privacy passwords (password fields, never filled in again
//! after an error), and other properties; `POST /santaba/rest/device/devices`.

use super::components::{self as c, Field, FormData, Query};
use super::ctx::Ui;
use super::data;
use super::layout::PageOpts;
use crate::error::ApiError;
use crate::monitor::devices::may;
use crate::monitor::estate::ROOT_GROUP;
use crate::routes::devices as api;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use maud::{html, Markup};
use palisade_core::privilege::Level;
use palisade_core::property::is_credential;
use serde_json::{json, Value};

/// What the add-device form holds (secrets are never kept for a re-render).
#[derive(Debug, Default, Clone)]
struct DeviceForm {
    name: String,
    display: String,
    description: String,
    group: String,
    collector: String,
    snmp_version: String,
    snmp_port: String,
    snmp_security: String,
    snmp_auth: String,
    snmp_priv: String,
    extra: Vec<(String, String)>,
}

const EXTRA_ROWS: usize = 4;

impl DeviceForm {
    fn from(f: &FormData) -> Self {
        DeviceForm {
            name: f.get("name").into(),
            display: f.get("displayName").into(),
            description: f.get("description").into(),
            group: f.get("group").into(),
            collector: f.get("collector").into(),
            snmp_version: f.get("snmp_version").into(),
            snmp_port: f.get("snmp_port").into(),
            snmp_security: f.get("snmp_security").into(),
            snmp_auth: f.get("snmp_auth").into(),
            snmp_priv: f.get("snmp_priv").into(),
            extra: (0..EXTRA_ROWS)
                .map(|i| {
                    (
                        f.get(&format!("prop_name_{i}")).to_string(),
                        f.raw(&format!("prop_value_{i}")).to_string(),
                    )
                })
                .collect(),
        }
    }
}

fn opts(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

async fn device_form(ui: &Ui, f: &DeviceForm, error: Option<&str>) -> Result<Markup, ApiError> {
    let state = ui.state();
    let estate = state.estate.get(&state.portal).await?;
    let reader = ui.reader();
    let mut groups: Vec<(String, String)> = Vec::new();
    if may(&reader, [ROOT_GROUP], Level::Manage) {
        groups.push((String::new(), "(no group: the root)".into()));
    }
    let mut static_groups: Vec<(String, String)> = estate
        .groups
        .values()
        .filter(|n| n.doc.id != ROOT_GROUP && n.applies_to.is_none())
        .filter(|n| {
            let mut scope = n.ancestors.clone();
            scope.push(n.doc.id);
            may(&reader, scope, Level::Manage)
        })
        .map(|n| (n.doc.id.to_string(), n.full_path.clone()))
        .collect();
    static_groups.sort_by_key(|a| a.1.to_lowercase());
    groups.extend(static_groups);
    let mut collectors = vec![(String::from("0"), String::from("None"))];
    if ui.can_collectors(Level::Read) {
        for c in data::visible_collectors(ui).await? {
            let label = if c.description.is_empty() {
                format!("#{}", c.id)
            } else {
                format!("#{} {}", c.id, c.description)
            };
            collectors.push((c.id.to_string(), label));
        }
    }
    let versions = opts(&[
        ("", "No SNMP"),
        ("v2c", "SNMP v2c (community)"),
        ("v3", "SNMP v3 (user)"),
    ]);
    let auths = opts(&[
        ("SHA-256", "SHA-256"),
        ("SHA-512", "SHA-512"),
        ("SHA-384", "SHA-384"),
        ("SHA-224", "SHA-224"),
        ("SHA", "SHA-1 (old devices)"),
        ("MD5", "MD5 (old devices)"),
    ]);
    let privs = opts(&[
        ("AES-128", "AES-128"),
        ("AES-256", "AES-256"),
        ("AES-192", "AES-192"),
        ("DES", "DES (old devices)"),
    ]);
    let secret_note = if error.is_some() {
        "For your safety, credentials are not kept after an error: enter them again."
    } else {
        "Stored sealed; shown as ******** afterwards."
    };
    Ok(html! {
        (c::form_error(error))
        form method="post" action="/ui/devices/new" id="device-form" {
            (ui.csrf())
            (c::input("name", "name", "Host name or IP address", &f.name, Field { required: true, invalid: error.is_some() && f.name.is_empty(), ..Default::default() }))
            (c::input("displayName", "displayName", "Display name", &f.display, Field { hint: "Unique; defaults to the host name", ..Default::default() }))
            (c::input("description", "description", "Description", &f.description, Field::default()))
            (c::select("group", "group", "Group", &groups, &f.group, "Static groups where you may add devices"))
            (c::select("collector", "collector", "Preferred collector", &collectors, &f.collector, ""))
            fieldset {
                legend { "SNMP" }
                (c::select("snmp-version", "snmp_version", "Version", &versions, &f.snmp_version, "Prefer SNMP v3 with authentication and privacy"))
                (c::input("snmp-port", "snmp_port", "Port", &f.snmp_port, Field { kind: "number", hint: "Default 161", ..Default::default() }))
                div data-snmp="v2c" {
                    (c::secret_input("snmp-community", "snmp_community", "Community", secret_note))
                }
                div data-snmp="v3" {
                    (c::input("snmp-security", "snmp_security", "Security name (user)", &f.snmp_security, Field::default()))
                    (c::select("snmp-auth", "snmp_auth", "Authentication protocol", &auths, &f.snmp_auth, ""))
                    (c::secret_input("snmp-auth-token", "snmp_auth_token", "Authentication password", secret_note))
                    (c::select("snmp-priv", "snmp_priv", "Privacy protocol", &privs, &f.snmp_priv, ""))
                    (c::secret_input("snmp-priv-token", "snmp_priv_token", "Privacy password", secret_note))
                }
            }
            fieldset {
                legend { "Other properties" }
                p.hint { "Names ending in .pass, .password, .key, .secret or .token are credentials: sealed, and shown masked." }
                @for (i, (n, v)) in f.extra.iter().enumerate() {
                    div.rows {
                        div { (c::input(&format!("prop-name-{i}"), &format!("prop_name_{i}"), &format!("Property {} name", i + 1), n, Field::default())) }
                        div { (c::input(&format!("prop-value-{i}"), &format!("prop_value_{i}"), &format!("Property {} value", i + 1), if is_credential(n) { "" } else { v }, Field::default())) }
                    }
                }
            }
            button type="submit" id="create-device" { "Add device" }
            " " a href="/ui/devices" { "Cancel" }
        }
    })
}

/// `GET /ui/devices/new`.
pub(crate) async fn new_form(ui: Ui, q: Query) -> Response {
    let mut f = DeviceForm {
        extra: vec![(String::new(), String::new()); EXTRA_ROWS],
        group: q.get("group").to_string(),
        ..Default::default()
    };
    if f.group.is_empty() {
        f.group = String::new();
    }
    let r = match device_form(&ui, &f, None).await {
        Ok(body) => Ok(ui.page_with(
            "Add a device",
            body,
            PageOpts {
                narrow: true,
                ..Default::default()
            },
        )),
        Err(e) => Err(e),
    };
    ui.respond(r)
}

/// The device's custom properties from the form; a 400 for incomplete SNMP settings.
fn properties_of(f: &DeviceForm, form: &FormData) -> Result<Vec<Value>, ApiError> {
    let mut props: Vec<Value> = Vec::new();
    let mut put = |n: &str, v: &str| props.push(json!({"name": n, "value": v}));
    match f.snmp_version.as_str() {
        "" => {}
        "v2c" => {
            let community = form.raw("snmp_community");
            if community.is_empty() {
                return Err(ApiError::BadRequest("SNMP v2c needs a community".into()));
            }
            put("snmp.version", "v2c");
            put("snmp.community", community);
        }
        "v3" => {
            if f.snmp_security.is_empty() {
                return Err(ApiError::BadRequest(
                    "SNMP v3 needs a security name (user)".into(),
                ));
            }
            put("snmp.version", "v3");
            put("snmp.security", &f.snmp_security);
            let auth = form.raw("snmp_auth_token");
            if !auth.is_empty() {
                put(
                    "snmp.auth",
                    if f.snmp_auth.is_empty() {
                        "SHA-256"
                    } else {
                        &f.snmp_auth
                    },
                );
                put("snmp.authToken", auth);
            }
            let privacy = form.raw("snmp_priv_token");
            if !privacy.is_empty() {
                if auth.is_empty() {
                    return Err(ApiError::BadRequest(
                        "SNMP v3 privacy needs authentication too".into(),
                    ));
                }
                put(
                    "snmp.priv",
                    if f.snmp_priv.is_empty() {
                        "AES-128"
                    } else {
                        &f.snmp_priv
                    },
                );
                put("snmp.privToken", privacy);
            }
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown SNMP version `{other}`"
            )))
        }
    }
    if !f.snmp_port.is_empty() {
        if f.snmp_version.is_empty() {
            return Err(ApiError::BadRequest(
                "an SNMP port needs an SNMP version".into(),
            ));
        }
        put("snmp.port", &f.snmp_port);
    }
    for (n, v) in &f.extra {
        if !n.is_empty() {
            put(n, v);
        }
    }
    Ok(props)
}

/// `POST /ui/devices/new`: `POST /santaba/rest/device/devices`.
pub(crate) async fn create(ui: Ui, form: FormData) -> Response {
    let f = DeviceForm::from(&form);
    let result = async {
        let props = properties_of(&f, &form)?;
        let collector: i64 = if f.collector.is_empty() {
            0
        } else {
            f.collector
                .parse()
                .map_err(|_| ApiError::BadRequest("the collector must be a collector id".into()))?
        };
        let mut body = json!({
            "name": f.name,
            "description": f.description,
            "preferredCollectorId": collector,
            "hostGroupIds": f.group,
            "customProperties": props,
        });
        if !f.display.is_empty() {
            body["displayName"] = json!(f.display);
        }
        let state = ui.state.clone();
        let bytes = Bytes::from(body.to_string());
        ui.act("POST", "/santaba/rest/device/devices", |caller| {
            api::create_device(State(state), caller, bytes)
        })
        .await
    }
    .await;
    match result {
        Ok(device) => {
            let id = device.0["id"].as_i64().unwrap_or(0);
            ui.see_other(&format!("/ui/devices/{id}?done=created"))
        }
        Err(e) => {
            let body = device_form(&ui, &f, Some(&super::error::message(&e))).await;
            match body {
                Ok(markup) => ui.form_error(e, |_| markup, "Add a device"),
                Err(e2) => ui.respond(Err(e2)),
            }
        }
    }
}
