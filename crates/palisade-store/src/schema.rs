//! Versioned schema migrations.
//!
//! Each migration is written once, in a dialect-neutral form; `{ID}` stands for the
//! auto-increment primary key, which is the only DDL that differs between SQLite and
//! PostgreSQL. Integers are 64-bit (`BIGINT`), booleans are stored as 0/1 integers and binary
//! data as text (hex or base64), so the same queries decode alike on both backends.
//! Migrations run in order inside a transaction each, under a lock, and are recorded in
//! `schema_migrations`; a portal never runs against a schema newer than it knows.

use crate::Backend;

/// One migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version, increasing from 1.
    pub version: i64,
    /// What it does.
    pub description: &'static str,
    /// Statements, separated by `;`.
    pub sql: &'static str,
}

/// All migrations, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, roles, API tokens, audit log, settings",
        sql: r#"
CREATE TABLE users (
    id {ID},
    username TEXT NOT NULL,
    username_key TEXT NOT NULL UNIQUE,
    email TEXT NOT NULL,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    apionly BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT,
    force_password_change BIGINT NOT NULL DEFAULT 0,
    builtin TEXT,
    timezone TEXT NOT NULL DEFAULT '',
    sms_email TEXT NOT NULL DEFAULT '',
    sms_email_format TEXT NOT NULL DEFAULT 'sms',
    contact_method TEXT NOT NULL DEFAULT 'email',
    created_on BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    last_login_on BIGINT
);
CREATE TABLE roles (
    id {ID},
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    privileges TEXT NOT NULL,
    builtin BIGINT NOT NULL DEFAULT 0,
    two_fa_required BIGINT NOT NULL DEFAULT 0,
    created_on BIGINT NOT NULL
);
CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id BIGINT NOT NULL REFERENCES roles(id),
    PRIMARY KEY (user_id, role_id)
);
CREATE TABLE api_tokens (
    id {ID},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    access_id TEXT NOT NULL UNIQUE,
    access_key_enc TEXT,
    bearer_hash TEXT UNIQUE,
    status BIGINT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_on BIGINT NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    expires_on BIGINT,
    last_used_on BIGINT,
    last_auth_ip TEXT,
    recent_ips TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    happened_on BIGINT NOT NULL,
    username TEXT NOT NULL,
    user_id BIGINT,
    token_id BIGINT,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT,
    action TEXT NOT NULL,
    description TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"#,
    },
    Migration {
        version: 2,
        description:
            "sign-in: sessions, second factors, recovery codes, challenges, lockout, SSO identities",
        sql: r#"
ALTER TABLE users ADD COLUMN auth_source TEXT NOT NULL DEFAULT 'local';
ALTER TABLE users ADD COLUMN mfa_deadline BIGINT;
ALTER TABLE users ADD COLUMN support_until BIGINT;
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    csrf TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    expires_on BIGINT NOT NULL,
    factor_verified_on BIGINT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE TABLE factors (
    id {ID},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    secret_enc TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    confirmed BIGINT NOT NULL DEFAULT 0,
    last_used_step BIGINT,
    created_on BIGINT NOT NULL,
    last_used_on BIGINT
);
CREATE INDEX factors_user ON factors(user_id);
CREATE TABLE recovery_codes (
    id {ID},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_on BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);
CREATE TABLE challenges (
    id TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    session_hash TEXT NOT NULL,
    purpose TEXT NOT NULL,
    channel TEXT NOT NULL,
    factor_id BIGINT,
    code_hash TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    expires_on BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    used BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX challenges_user ON challenges(user_id);
CREATE TABLE login_state (
    user_id BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    lock_count BIGINT NOT NULL DEFAULT 0,
    sends TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE sso_identities (
    idp TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amr TEXT NOT NULL DEFAULT '[]',
    last_login_on BIGINT,
    PRIMARY KEY (idp, subject)
);
CREATE TABLE saml_replay (
    assertion_id TEXT PRIMARY KEY,
    expires_on BIGINT NOT NULL
)
"#,
    },
    Migration {
        version: 3,
        description: "monitoring: device groups, devices, collectors, datasources, instances, SDTs, alerts, result batches",
        sql: r#"
CREATE TABLE device_groups (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX device_groups_ref ON device_groups(ref_id);
CREATE INDEX device_groups_flag ON device_groups(flag);
CREATE TABLE devices (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX devices_ref ON devices(ref_id);
CREATE INDEX devices_flag ON devices(flag);
CREATE TABLE collector_groups (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX collector_groups_ref ON collector_groups(ref_id);
CREATE INDEX collector_groups_flag ON collector_groups(flag);
CREATE TABLE collectors (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX collectors_ref ON collectors(ref_id);
CREATE INDEX collectors_flag ON collectors(flag);
CREATE TABLE datasources (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX datasources_ref ON datasources(ref_id);
CREATE INDEX datasources_flag ON datasources(flag);
CREATE TABLE sdts (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX sdts_ref ON sdts(ref_id);
CREATE INDEX sdts_flag ON sdts(flag);
CREATE TABLE alert_chains (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX alert_chains_ref ON alert_chains(ref_id);
CREATE INDEX alert_chains_flag ON alert_chains(flag);
CREATE TABLE alert_rules (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX alert_rules_ref ON alert_rules(ref_id);
CREATE INDEX alert_rules_flag ON alert_rules(flag);
CREATE TABLE alerts (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX alerts_ref ON alerts(ref_id);
CREATE INDEX alerts_flag ON alerts(flag);
INSERT INTO device_groups (lookup, ref_id, flag, data, created_on, updated_on) VALUES ('0/', 0, 0, '{"name":"","parentId":0}', 0, 0);
CREATE TABLE device_datasources (
    id {ID},
    device_id BIGINT NOT NULL,
    datasource TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    UNIQUE (device_id, datasource)
);
CREATE TABLE instances (
    id {ID},
    hds_id BIGINT NOT NULL REFERENCES device_datasources(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    properties TEXT NOT NULL DEFAULT '{}',
    created_on BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    UNIQUE (hds_id, name)
);
CREATE TABLE collector_batches (
    collector_id BIGINT NOT NULL,
    batch_id TEXT NOT NULL,
    received_on BIGINT NOT NULL,
    PRIMARY KEY (collector_id, batch_id)
);
CREATE INDEX collector_batches_received ON collector_batches(received_on);
CREATE TABLE alert_states (
    series TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_on BIGINT NOT NULL
)
"#,
    },
    // Dashboards (docs/dashboards.md): two document tables and the dashboard of a widget
    // token on its API token row.
    Migration {
        version: 4,
        description: "dashboards, widgets, widget tokens",
        sql: r#"
CREATE TABLE dashboards (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX dashboards_ref ON dashboards(ref_id);
CREATE INDEX dashboards_flag ON dashboards(flag);
CREATE TABLE dashboard_widgets (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX dashboard_widgets_ref ON dashboard_widgets(ref_id);
CREATE INDEX dashboard_widgets_flag ON dashboard_widgets(flag);
ALTER TABLE api_tokens ADD COLUMN dashboard_id BIGINT
"#,
    },
    // ---- token migration assistant and token import (docs/token-migration.md) ----
    Migration {
        version: 5,
        description: "token migration: imported tokens, retirement of replaced tokens, audit log by token",
        sql: r#"
CREATE TABLE token_imports (
    token_id BIGINT PRIMARY KEY REFERENCES api_tokens(id) ON DELETE CASCADE,
    imported_on BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
CREATE TABLE token_migrations (
    old_token_id BIGINT PRIMARY KEY,
    new_token_id BIGINT,
    new_user_id BIGINT,
    role_id BIGINT,
    state TEXT NOT NULL,
    started_on BIGINT NOT NULL,
    disabled_on BIGINT,
    disabled_seq BIGINT,
    grace_days BIGINT NOT NULL,
    deleted_on BIGINT,
    checked_on BIGINT,
    data TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX token_migrations_new ON token_migrations(new_token_id);
CREATE INDEX audit_log_token ON audit_log(token_id, seq)
"#,
    },
    // ---- compliance center (docs/compliance.md) ----
    Migration {
        version: 6,
        description: "compliance: daily and on-demand snapshots of the compliance scores",
        sql: r#"
CREATE TABLE compliance_snapshots (
    id {ID},
    lookup TEXT UNIQUE,
    ref_id BIGINT,
    flag BIGINT NOT NULL DEFAULT 0,
    data TEXT NOT NULL,
    created_on BIGINT NOT NULL,
    updated_on BIGINT NOT NULL
);
CREATE INDEX compliance_snapshots_ref ON compliance_snapshots(ref_id);
CREATE INDEX compliance_snapshots_flag ON compliance_snapshots(flag)
"#,
    },
];

/// The statements of a migration for a backend.
pub fn statements(m: &Migration, backend: Backend) -> Vec<String> {
    let id = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    };
    m.sql
        .split(';')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("{ID}", id))
        .collect()
}

/// The newest schema version this build knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
        }
        assert!(statements(&MIGRATIONS[0], Backend::Postgres)
            .iter()
            .all(|s| !s.contains("{ID}")));
    }
}
