//! The one action that fixes each finding: words, a web UI link, an API call and a command.

use super::{ApiCall, Fix, ObjectKind, PROPOSED_EXPIRY_MS};
use serde_json::json;

fn link(kind: ObjectKind, id: i64) -> String {
    format!("/ui/{}/{id}", kind.ui_segment())
}

/// A word for a shell command line: as is when it is plain, else single-quoted.
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@'));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn token_path(owner_id: i64, token_id: i64) -> String {
    format!("/santaba/rest/setting/admins/{owner_id}/apitokens/{token_id}")
}

/// A local user without a second factor: they enrol one.
pub fn enrol(user_id: i64, username: &str) -> Fix {
    Fix {
        action: format!(
            "{username} signs in and enrols a second factor (authenticator app, email, SMS, voice or passkey) at /enrol; until then the mandate gate confines them to enrolment once their deadline passes"
        ),
        link: link(ObjectKind::User, user_id),
        api: Some(ApiCall {
            method: "POST",
            path: "/api/me/factors/totp".into(),
            body: Some(json!({})),
            note: Some(format!(
                "called by {username} in their own session (an administrator cannot enrol a factor for someone else); then POST /api/me/factors/{{factorId}}/confirm {{\"code\": \"<first code>\"}}"
            )),
        }),
        cli: None,
    }
}

/// A Linux collector running as root: migrate it in place to a service user.
pub fn collector_migrate(collector_id: i64) -> Fix {
    Fix {
        action: "On the collector's host, migrate the installation in place to the unprivileged service user (identity and buffered data are kept; rollback on failure); its next heartbeat reports the new account".into(),
        link: link(ObjectKind::Collector, collector_id),
        api: None,
        cli: Some("palisade-collector migrate --to-user palisade-collector".into()),
    }
}

/// A Linux collector with capabilities beyond `cap_net_raw`: rewrite its service.
pub fn collector_capabilities(collector_id: i64, user: &str) -> Fix {
    Fix {
        action: "On the collector's host, rewrite the service without --allow-root and with at most CAP_NET_RAW (install keeps the configuration and the state directory), then restart it; its next heartbeat reports the capabilities it holds".into(),
        link: link(ObjectKind::Collector, collector_id),
        api: None,
        cli: Some(format!(
            "palisade-collector install --user {} && systemctl restart palisade-collector",
            shell_word(user)
        )),
    }
}

/// A Windows collector on an administrator account: move it off Administrators, or record
/// a justified exception.
pub fn windows_admin(collector_id: i64, now_ms: i64) -> Fix {
    Fix {
        action: "Run the collector's service and query accounts without Administrator (Performance Monitor Users, Performance Log Users, Event Log Readers, Distributed COM Users, Remote Management Users, WMI namespace rights, WinRM HTTPS); where a technology truly needs Administrator, record a justified exception instead".into(),
        link: link(ObjectKind::Collector, collector_id),
        api: Some(ApiCall {
            method: "PATCH",
            path: format!("/santaba/rest/setting/collector/collectors/{collector_id}"),
            body: Some(json!({
                "complianceException": {
                    "justification": "<which technology needs Administrator, and why>",
                    "expiresOn": (now_ms + PROPOSED_EXPIRY_MS).div_euclid(1000),
                }
            })),
            note: Some("records the exception (audited; needs setting:collectorgroup.<group>:write); the collector is then listed as excepted".into()),
        }),
        cli: None,
    }
}

/// A token with support, administrator or administrator-equivalent power: replace it by a
/// least-privilege token, then retire it.
pub fn replace_token(token_id: i64, owner_id: i64) -> Fix {
    Fix {
        action: "Replace the token with one of an API-only user holding only what its integration uses (the migration assistant proposes the role from the token's recorded calls and creates the user and the new token), then disable this one".into(),
        link: link(ObjectKind::Token, token_id),
        api: Some(ApiCall {
            method: "PATCH",
            path: token_path(owner_id, token_id),
            body: Some(json!({"status": 1})),
            note: Some("disables the old token once its replacement works".into()),
        }),
        cli: Some(format!("palisade token migrate {token_id}")),
    }
}

/// A token unused for 90 days: disable it, watch that nothing breaks, then delete it.
pub fn disable_unused(token_id: i64, owner_id: i64) -> Fix {
    Fix {
        action: "Disable the token, watch that nothing breaks, then delete it".into(),
        link: link(ObjectKind::Token, token_id),
        api: Some(ApiCall {
            method: "PATCH",
            path: token_path(owner_id, token_id),
            body: Some(json!({"status": 1})),
            note: Some(format!("later: DELETE {}", token_path(owner_id, token_id))),
        }),
        cli: None,
    }
}

/// A token without expiry: give it one.
pub fn set_expiry(token_id: i64, owner_id: i64, now_ms: i64) -> Fix {
    Fix {
        action: "Give the token an expiry (here 90 days from now) and rotate it before then".into(),
        link: link(ObjectKind::Token, token_id),
        api: Some(ApiCall {
            method: "PATCH",
            path: token_path(owner_id, token_id),
            body: Some(json!({"expiresOn": (now_ms + PROPOSED_EXPIRY_MS).div_euclid(1000)})),
            note: Some("expiresOn in epoch seconds, in the future (audited)".into()),
        }),
        cli: None,
    }
}

/// A script datasource needing elevation, or without source: import it again with a
/// reviewed source that needs neither root nor Administrator.
pub fn module_import(datasource_id: i64, name: &str, elevation: bool) -> Fix {
    let action = if elevation {
        format!(
            "Rewrite the script of {name} without root or Administrator (each finding names the least-privilege alternative; `palisade-collector lint-module` checks it), then import the definition again with the new script in collector.source"
        )
    } else {
        format!(
            "Upload the script of {name} with its definition (collector.source) so the portal reviews it; collectors then run only that reviewed text"
        )
    };
    Fix {
        action,
        link: link(ObjectKind::Datasource, datasource_id),
        api: Some(ApiCall {
            method: "POST",
            path: "/santaba/rest/setting/datasources/import".into(),
            body: None,
            note: Some(format!(
                "the body is the definition file (GET /santaba/rest/setting/datasources/{datasource_id}/export) with collector.source set to the reviewed script"
            )),
        }),
        cli: Some(format!(
            "palisade datasource import {}",
            shell_word(&format!("{name}.json"))
        )),
    }
}
