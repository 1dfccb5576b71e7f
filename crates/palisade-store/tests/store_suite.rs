//! The store suite: every case runs unchanged against both backends, SQLite and PostgreSQL.
//!
//! ```text
//! PALISADE_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo test -p palisade-store --test store_suite
//! ```
//!
//! SQLite cases use a fresh file in a temporary directory. PostgreSQL cases create a fresh
//! database (`palisade_store_<hex>`) on the server named by `PALISADE_TEST_PG_URL` and drop it
//! at the end. PostgreSQL is required: when it is unreachable the PostgreSQL cases fail (they
//! never skip).
//!
//! Each case is one `async fn case_xxx(h: Harness)`; [`on_both_backends!`] turns it into a
//! `sqlite_xxx` and a `postgres_xxx` test.

// Test code throughout (helpers included), so clippy's allow-*-in-tests applies.
#![cfg(test)]

use palisade_core::audit_chain::{ChainBreak, Verifier};
use palisade_core::policy::{
    check_token_owner, OwnerFacts, RoleChangeRefusal, TokenPolicyChecked, TokenRefusal,
};
use palisade_core::privilege::Privilege;
use palisade_store::{
    AuditEntry, AuditEvent, Backend, NewRole, NewToken, NewUser, RoleChangeSet, RoleRecord,
    SqlStore, Store, StoreError, TokenChange, TokenRecord, TokenType, TokenUse, UserChange,
    UserRecord, ADMINISTRATOR_ROLE, BUILTIN_SUPPORT, TOKEN_DISABLED, TOKEN_ENABLED,
};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHAIN_KEY: &[u8] = b"palisade store suite chain key";
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const PG_START: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
const GENESIS_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";

// ------------------------------------------------------------------------------------------
// Harness: fresh databases per test, cleaned up at the end.
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
}

/// The databases one test created; removed when the test ends.
struct Env {
    kind: Kind,
    /// PostgreSQL server URL (`PALISADE_TEST_PG_URL`).
    server_url: String,
    /// SQLite: the directory holding this test's database files.
    dir: PathBuf,
    /// PostgreSQL: databases created, to drop.
    pg_databases: Mutex<Vec<String>>,
}

fn random_hex() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Hides a password in `scheme://user:password@host/...`.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((userinfo, host)) = rest.split_once('@') {
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// `url` with its database (path) replaced by `db`, keeping any `?query`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority..].find('/') {
        Some(i) => &base[..authority + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

async fn pg_admin(url: &str) -> sqlx::PgConnection {
    let why = match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(url))
        .await
    {
        Ok(Ok(conn)) => return conn,
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10 s".to_string(),
    };
    panic!(
        "PostgreSQL is unreachable at {} ({why}). The store suite needs a running PostgreSQL \
         server (the PostgreSQL cases never skip): start it with `{PG_START}`, or point \
         PALISADE_TEST_PG_URL at a server whose role may CREATE DATABASE.",
        redact(url)
    );
}

impl Env {
    async fn new(kind: Kind) -> Env {
        let server_url =
            std::env::var("PALISADE_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string());
        let dir = std::env::temp_dir().join(format!("palisade-store-suite-{}", random_hex()));
        match kind {
            Kind::Sqlite => std::fs::create_dir_all(&dir).expect("create the temp dir"),
            Kind::Postgres => {
                // Fail early, and clearly, when the server is not there.
                let mut conn = pg_admin(&server_url).await;
                conn.execute("SELECT 1")
                    .await
                    .expect("SELECT 1 on PostgreSQL");
                let _ = conn.close().await;
            }
        }
        Env {
            kind,
            server_url,
            dir,
            pg_databases: Mutex::new(Vec::new()),
        }
    }

    /// A URL of a new, empty database.
    async fn fresh_url(&self) -> String {
        match self.kind {
            Kind::Sqlite => {
                let path = self.dir.join(format!("store-{}.db", random_hex()));
                format!("sqlite://{}?mode=rwc", path.display())
            }
            Kind::Postgres => {
                let name = format!("palisade_store_{}", random_hex());
                let mut conn = pg_admin(&self.server_url).await;
                conn.execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "CREATE DATABASE {name} on {} failed: {e}",
                            redact(&self.server_url)
                        )
                    });
                let _ = conn.close().await;
                self.pg_databases
                    .lock()
                    .expect("database list")
                    .push(name.clone());
                with_database(&self.server_url, &name)
            }
        }
    }

    /// Removes what this test created (best effort).
    async fn cleanup(&self) {
        match self.kind {
            Kind::Sqlite => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
            Kind::Postgres => {
                let names = std::mem::take(&mut *self.pg_databases.lock().expect("database list"));
                if names.is_empty() {
                    return;
                }
                let Ok(Ok(mut conn)) = tokio::time::timeout(
                    Duration::from_secs(10),
                    sqlx::PgConnection::connect(&self.server_url),
                )
                .await
                else {
                    eprintln!("could not reconnect to drop test databases {names:?}");
                    return;
                };
                for name in names {
                    let forced = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = conn.execute(forced.as_str()).await {
                        // Servers before PostgreSQL 13 have no FORCE.
                        let plain = format!("DROP DATABASE IF EXISTS {name}");
                        if conn.execute(plain.as_str()).await.is_err() {
                            eprintln!("could not drop test database {name}: {e}");
                        }
                    }
                }
                let _ = conn.close().await;
            }
        }
    }
}

async fn open_store(url: &str) -> Arc<SqlStore> {
    palisade_store::open(url, CHAIN_KEY.to_vec())
        .await
        .unwrap_or_else(|e| panic!("open {}: {e:?}", redact(url)))
}

/// What a case gets: a store on a fresh database, its URL, and a way to make more.
#[derive(Clone)]
struct Harness {
    env: Arc<Env>,
    url: String,
    store: Arc<SqlStore>,
}

impl Harness {
    fn s(&self) -> &dyn Store {
        &*self.store
    }

    /// The backend this test expects.
    fn backend(&self) -> Backend {
        match self.env.kind {
            Kind::Sqlite => Backend::Sqlite,
            Kind::Postgres => Backend::Postgres,
        }
    }

    /// Another store on another fresh database of the same backend.
    async fn fresh(&self) -> Harness {
        let url = self.env.fresh_url().await;
        let store = open_store(&url).await;
        Harness {
            env: self.env.clone(),
            url,
            store,
        }
    }

    /// A separate raw connection pool to this store's database.
    async fn raw(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("raw connection to {}: {e}", redact(&self.url)))
    }
}

/// Runs one case on a fresh database of `kind`, then removes the databases, then re-raises
/// the case's panic, if any.
async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Harness) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let env = Arc::new(Env::new(kind).await);
    let task_env = env.clone();
    let started = Instant::now();
    // The case runs in its own task so that the databases are removed even when it panics
    // (including while the first database is being created or opened).
    let outcome = tokio::spawn(async move {
        let url = task_env.fresh_url().await;
        let store = open_store(&url).await;
        case(Harness {
            env: task_env,
            url,
            store,
        })
        .await
    })
    .await;
    eprintln!("[{kind:?}] case ran in {:?}", started.elapsed());
    env.cleanup().await;
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("the case's task failed: {e}");
    }
}

/// `case_xxx => sqlite_xxx, postgres_xxx;` makes one test per backend from one case.
macro_rules! on_both_backends {
    ($($case:ident => $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $sqlite() {
            run(Kind::Sqlite, $case).await
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $postgres() {
            run(Kind::Postgres, $case).await
        }
    )*};
}

on_both_backends! {
    case_migrations => sqlite_migrations, postgres_migrations;
    case_users_crud => sqlite_users_crud, postgres_users_crud;
    case_roles => sqlite_roles, postgres_roles;
    case_token_mandate => sqlite_token_mandate, postgres_token_mandate;
    case_last_administrator => sqlite_last_administrator, postgres_last_administrator;
    case_tokens => sqlite_tokens, postgres_tokens;
    case_compliance => sqlite_compliance, postgres_compliance;
    case_audit_chain => sqlite_audit_chain, postgres_audit_chain;
    case_atomicity => sqlite_atomicity, postgres_atomicity;
    case_concurrency => sqlite_concurrency, postgres_concurrency;
    case_settings => sqlite_settings, postgres_settings;
    case_concurrent_open => sqlite_concurrent_open, postgres_concurrent_open;
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// An audit event for `action`, with every field set.
fn ev(action: &str) -> AuditEvent {
    AuditEvent {
        happened_on_ms: 1_700_000_000_000,
        username: "suite-actor".into(),
        user_id: Some(4242),
        token_id: None,
        ip: "192.0.2.10".into(),
        user_agent: "store-suite/1".into(),
        method: "POST".into(),
        path: "/santaba/rest/setting/admins".into(),
        status: Some(200),
        action: action.into(),
        description: format!("{action} of {{id}}"),
    }
}

/// A varied event for batches.
fn batch_event(i: i64, tag: &str) -> AuditEvent {
    AuditEvent {
        happened_on_ms: 1_700_000_000_000 + i,
        username: if i % 5 == 0 {
            "System:scheduler".into()
        } else {
            format!("user{i}")
        },
        user_id: (i % 2 == 0).then_some(i),
        token_id: (i % 3 == 0).then_some(1000 + i),
        ip: format!("198.51.100.{}", i % 256),
        user_agent: if i % 4 == 0 {
            String::new()
        } else {
            "agent/1.0".into()
        },
        method: if i % 7 == 0 { "" } else { "GET" }.into(),
        path: format!("/santaba/rest/device/devices/{i}"),
        status: (i % 3 != 0).then_some(200 + i % 5),
        action: "api.call".into(),
        description: format!("{tag} {i}: ünïcödé ✓ 'single' \"double\" {{id}}"),
    }
}

fn new_user(name: &str, roles: &[i64]) -> NewUser {
    NewUser {
        username: name.into(),
        email: format!("{}@example.com", name.to_lowercase()),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        phone: "+1 555 0100".into(),
        note: format!("note for {name}"),
        status: "active".into(),
        apionly: false,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        force_password_change: true,
        builtin: None,
        timezone: "Europe/Paris".into(),
        sms_email: "sms@example.com".into(),
        sms_email_format: "fullText".into(),
        contact_method: "smsemail".into(),
        created_by: "store-suite".into(),
        created_on: 1_700_000_000_123,
        auth_source: "local".into(),
        role_ids: roles.to_vec(),
    }
}

/// The record a store must return for `n` created with `id`.
fn expected_user(id: i64, n: &NewUser) -> UserRecord {
    let mut role_ids = n.role_ids.clone();
    role_ids.sort_unstable();
    UserRecord {
        id,
        username: n.username.clone(),
        email: n.email.clone(),
        first_name: n.first_name.clone(),
        last_name: n.last_name.clone(),
        phone: n.phone.clone(),
        note: n.note.clone(),
        status: n.status.clone(),
        apionly: n.apionly,
        password_hash: n.password_hash.clone(),
        force_password_change: n.force_password_change,
        builtin: n.builtin.clone(),
        timezone: n.timezone.clone(),
        sms_email: n.sms_email.clone(),
        sms_email_format: n.sms_email_format.clone(),
        contact_method: n.contact_method.clone(),
        created_on: n.created_on,
        created_by: n.created_by.clone(),
        last_login_on: None,
        auth_source: "local".into(),
        mfa_deadline: None,
        support_until: None,
        role_ids,
    }
}

fn privilege(object_type: &str, object_id: &str, operation: &str) -> Privilege {
    Privilege::new(object_type, object_id, operation)
}

fn privilege_with_sub(
    object_type: &str,
    object_id: &str,
    operation: &str,
    sub: &str,
    name: Option<&str>,
) -> Privilege {
    Privilege {
        object_type: object_type.into(),
        object_id: object_id.into(),
        operation: operation.into(),
        sub_operation: Some(sub.into()),
        object_name: name.map(str::to_string),
    }
}

fn new_role(name: &str) -> NewRole {
    NewRole {
        name: name.into(),
        description: format!("the {name} role"),
        privileges: vec![privilege("host_group", "*", "read")],
        builtin: false,
        two_fa_required: false,
        created_on: 1_700_000_000_456,
    }
}

fn administrator_role() -> NewRole {
    NewRole {
        name: ADMINISTRATOR_ROLE.into(),
        description: "every privilege".into(),
        privileges: vec![
            privilege("setting", "*", "write"),
            privilege("host_group", "*", "manage"),
        ],
        builtin: true,
        two_fa_required: false,
        created_on: 1_700_000_000_000,
    }
}

/// The mandate's proof for a plain, active user.
fn plain_proof() -> TokenPolicyChecked {
    check_token_owner(&OwnerFacts {
        is_support: false,
        holds_administrator: false,
        active: true,
    })
    .expect("a plain active user passes the mandate")
}

fn lmv1_token(user_id: i64, access_id: &str) -> NewToken {
    NewToken {
        user_id,
        kind: TokenType::Lmv1,
        access_id: access_id.into(),
        access_key_enc: Some(format!("enc:{access_id}")),
        bearer_hash: None,
        dashboard_id: None,
        note: format!("token {access_id}"),
        created_by: "store-suite".into(),
        created_on: 1_700_000_000_789,
        expires_on: Some(1_800_000_000_000),
    }
}

fn bearer_token(user_id: i64, access_id: &str, hash: &str) -> NewToken {
    NewToken {
        user_id,
        kind: TokenType::Bearer,
        access_id: access_id.into(),
        access_key_enc: None,
        bearer_hash: Some(hash.into()),
        dashboard_id: None,
        note: String::new(),
        created_by: "store-suite".into(),
        created_on: 1_700_000_000_790,
        expires_on: None,
    }
}

async fn head(s: &dyn Store) -> i64 {
    s.audit_head().await.expect("audit_head").0
}

/// Walks the whole chain through `scan_audit` pages and checks it against the head.
async fn verify_chain(s: &dyn Store, key: &[u8]) -> Result<i64, ChainBreak> {
    let mut verifier = Verifier::new(key);
    let mut after = 0;
    loop {
        let page = s.scan_audit(after, 7).await.expect("scan_audit");
        if page.is_empty() {
            break;
        }
        for entry in &page {
            verifier.feed(&entry.chained(), &entry.prev_hash, &entry.hash)?;
            after = entry.seq;
        }
    }
    let (seq, hash) = s.audit_head().await.expect("audit_head");
    verifier.finish(seq, &hash)
}

/// Every audit entry, oldest first.
async fn all_entries(s: &dyn Store) -> Vec<AuditEntry> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |e: &AuditEntry| e.seq);
        let page = s.scan_audit(after, 50).await.expect("scan_audit");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

async fn raw_i64(raw: &AnyPool, sql: &str, arg: i64) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .bind(arg)
        .fetch_one(raw)
        .await
        .unwrap_or_else(|e| panic!("raw `{sql}`: {e}"))
}

async fn raw_exec(raw: &AnyPool, sql: &str) -> u64 {
    sqlx::query(sql)
        .execute(raw)
        .await
        .unwrap_or_else(|e| panic!("raw `{sql}`: {e}"))
        .rows_affected()
}

async fn migration_versions(raw: &AnyPool) -> Vec<i64> {
    sqlx::query_scalar::<_, i64>("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(raw)
        .await
        .expect("read schema_migrations")
}

/// A mutation that must succeed and append exactly one audit entry, carrying its action.
/// `|e| op` binds `e` to a fresh event for `action`; `op` is the store call (a future).
macro_rules! ok_step {
    ($s:expr, $action:expr, |$ev:ident| $op:expr) => {{
        let s: &dyn Store = $s;
        let action: &str = $action;
        let before = head(s).await;
        let $ev = ev(action);
        let out = match $op.await {
            Ok(v) => v,
            Err(e) => panic!("`{action}` failed: {e:?}"),
        };
        let after = head(s).await;
        assert_eq!(
            after,
            before + 1,
            "`{action}` must append exactly one audit entry"
        );
        let last = s
            .get_audit(after)
            .await
            .expect("get_audit")
            .expect("the new entry");
        assert_eq!(
            last.event.action, action,
            "the newest entry is `{action}`'s"
        );
        out
    }};
}

/// A mutation that must fail and leave the audit chain untouched; yields the error.
macro_rules! refused {
    ($s:expr, |$ev:ident| $op:expr) => {{
        let s: &dyn Store = $s;
        let before = s.audit_head().await.expect("audit_head");
        let $ev = ev("refused");
        let err = match $op.await {
            Ok(v) => panic!("expected a refusal, got {v:?}"),
            Err(e) => e,
        };
        assert_eq!(
            s.audit_head().await.expect("audit_head"),
            before,
            "a refused mutation must not touch the audit chain ({err:?})"
        );
        err
    }};
}

// ------------------------------------------------------------------------------------------
// 1. migrations
// ------------------------------------------------------------------------------------------

async fn case_migrations(h: Harness) {
    assert_eq!(h.s().backend(), h.backend());
    let (user_id, head_before) = {
        let s = h.s();
        let role = ok_step!(s, "role.create", |e| s.create_role(new_role("keepers"), e));
        let user = ok_step!(s, "user.create", |e| s
            .create_user(new_user("Persisted", &[role.id]), e));
        ok_step!(s, "setting.set", |e| s.set_setting(
            "portal.name",
            "kept",
            e
        ));
        (user.id, s.audit_head().await.expect("audit_head"))
    };
    let raw = h.raw().await;
    assert_eq!(
        migration_versions(&raw).await,
        palisade_store::schema::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    raw.close().await;

    // Close the first store, then reopen the same database: nothing is migrated again and
    // the data is still there.
    let Harness { env, url, store } = h;
    drop(store);
    let reopened = open_store(&url).await;
    let s: &dyn Store = &*reopened;
    let user = s
        .get_user(user_id)
        .await
        .expect("get_user")
        .expect("the user survives a reopen");
    assert_eq!(user.username, "Persisted");
    assert_eq!(user.role_ids.len(), 1);
    assert_eq!(
        s.get_setting("portal.name").await.expect("get_setting"),
        Some("kept".to_string())
    );
    assert_eq!(s.audit_head().await.expect("audit_head"), head_before);
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head_before.0));

    // A third open while the second is still open.
    let third = open_store(&url).await;
    assert_eq!(third.list_users().await.expect("list_users").len(), 1);
    let h = Harness {
        env,
        url: url.clone(),
        store: reopened.clone(),
    };
    let raw = h.raw().await;
    assert_eq!(
        migration_versions(&raw).await,
        palisade_store::schema::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        raw_i64(&raw, "SELECT COUNT(*) FROM audit_head WHERE id = $1", 1).await,
        1
    );
    ok_step!(s, "setting.set", |e| s.set_setting(
        "after.reopen",
        "yes",
        e
    ));
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head_before.0 + 1));

    // A database migrated by a newer build is refused.
    let future = palisade_store::schema::latest_version() + 1;
    raw_exec(
        &raw,
        &format!("INSERT INTO schema_migrations (version, description, applied_on) VALUES ({future}, 'from the future', 0)"),
    )
    .await;
    raw.close().await;
    match palisade_store::open(&url, CHAIN_KEY.to_vec()).await {
        Err(StoreError::Corrupt(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
    assert!(matches!(
        palisade_store::open("mysql://localhost/palisade", CHAIN_KEY.to_vec()).await,
        Err(StoreError::BadUrl)
    ));
}

// ------------------------------------------------------------------------------------------
// 2. users
// ------------------------------------------------------------------------------------------

async fn case_users_crud(h: Harness) {
    let s = h.s();
    let r1 = ok_step!(s, "role.create", |e| s.create_role(new_role("r-one"), e));
    let r2 = ok_step!(s, "role.create", |e| s.create_role(new_role("r-two"), e));

    // Create, with roles given out of order.
    let alice_new = new_user("Alice", &[r2.id, r1.id]);
    let alice = ok_step!(s, "user.create", |e| s.create_user(alice_new.clone(), e));
    assert_eq!(alice, expected_user(alice.id, &alice_new));
    assert_eq!(alice.role_ids, vec![r1.id, r2.id]);
    let entry = s
        .get_audit(head(s).await)
        .await
        .expect("get_audit")
        .expect("entry");
    assert_eq!(
        entry.event.description,
        format!("user.create of {}", alice.id),
        "`{{id}}` in the description is replaced by the new id"
    );

    // Read back by id and by name, case-insensitively.
    assert_eq!(
        s.get_user(alice.id).await.expect("get_user"),
        Some(alice.clone())
    );
    for name in ["Alice", "alice", "ALICE", "aLiCe"] {
        assert_eq!(
            s.get_user_by_name(name).await.expect("get_user_by_name"),
            Some(alice.clone()),
            "lookup by `{name}`"
        );
    }
    assert_eq!(s.get_user_by_name("nobody").await.expect("by name"), None);
    assert_eq!(s.get_user(alice.id + 1000).await.expect("get_user"), None);

    // Duplicate name, different case.
    let err = refused!(s, |e| s.create_user(new_user("ALICE", &[]), e));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.list_users().await.expect("list").len(), 1);

    let bob_new = new_user("bob", &[r1.id]);
    let bob = ok_step!(s, "user.create", |e| s.create_user(bob_new.clone(), e));
    assert_eq!(bob, expected_user(bob.id, &bob_new));

    // Update every field, including the role set.
    let change = UserChange {
        username: Some("Alicia".into()),
        email: Some("alicia@example.org".into()),
        first_name: Some("Alicia".into()),
        last_name: Some("Liddell".into()),
        phone: Some("+44 20 7946 0000".into()),
        note: Some("renamed".into()),
        status: Some("suspended".into()),
        apionly: Some(true),
        password_hash: Some(None),
        force_password_change: Some(false),
        timezone: Some("UTC".into()),
        sms_email: Some("alicia-sms@example.org".into()),
        sms_email_format: Some("sms".into()),
        contact_method: Some("email".into()),
        role_ids: Some(vec![r2.id]),
        mfa_deadline: Some(Some(1_800_000_000_000)),
        support_until: None,
        last_login_on: Some(1_700_000_000_999),
    };
    let updated = ok_step!(s, "user.update", |e| s.update_user(alice.id, change, e));
    let expected = UserRecord {
        id: alice.id,
        username: "Alicia".into(),
        email: "alicia@example.org".into(),
        first_name: "Alicia".into(),
        last_name: "Liddell".into(),
        phone: "+44 20 7946 0000".into(),
        note: "renamed".into(),
        status: "suspended".into(),
        apionly: true,
        password_hash: None,
        force_password_change: false,
        builtin: None,
        timezone: "UTC".into(),
        sms_email: "alicia-sms@example.org".into(),
        sms_email_format: "sms".into(),
        contact_method: "email".into(),
        created_on: alice.created_on,
        created_by: alice.created_by.clone(),
        last_login_on: Some(1_700_000_000_999),
        auth_source: "local".into(),
        mfa_deadline: Some(1_800_000_000_000),
        support_until: None,
        role_ids: vec![r2.id],
    };
    assert_eq!(updated, expected);
    assert_eq!(
        s.get_user(alice.id).await.expect("get"),
        Some(expected.clone())
    );
    assert_eq!(s.get_user_by_name("alice").await.expect("by name"), None);
    assert_eq!(
        s.get_user_by_name("ALICIA").await.expect("by name"),
        Some(expected.clone())
    );

    // A partial change leaves the rest alone; a password can be set again.
    let partial = UserChange {
        note: Some("only the note".into()),
        password_hash: Some(Some("$argon2id$new".into())),
        ..Default::default()
    };
    let updated = ok_step!(s, "user.update", |e| s.update_user(alice.id, partial, e));
    assert_eq!(
        updated,
        UserRecord {
            note: "only the note".into(),
            password_hash: Some("$argon2id$new".into()),
            ..expected.clone()
        }
    );
    // An empty role set removes every role.
    let updated = ok_step!(s, "user.update", |e| s.update_user(
        alice.id,
        UserChange {
            role_ids: Some(vec![]),
            ..Default::default()
        },
        e
    ));
    assert!(updated.role_ids.is_empty());

    // Renaming onto another user's name (other case) conflicts; a missing user is not found.
    let err = refused!(s, |e| s.update_user(
        alice.id,
        UserChange {
            username: Some("BOB".into()),
            ..Default::default()
        },
        e
    ));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = refused!(s, |e| s.update_user(
        bob.id + 1000,
        UserChange::default(),
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let users = s.list_users().await.expect("list_users");
    assert_eq!(
        users.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![alice.id, bob.id]
    );
    assert_eq!(users[1], bob);

    // Delete removes the user, its tokens and its role links.
    let t = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lmv1_token(bob.id, "bob-lm"),
        e
    ));
    ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        bearer_token(bob.id, "bob-bearer", "b0b0"),
        e
    ));
    ok_step!(s, "user.delete", |e| s.delete_user(bob.id, e));
    assert_eq!(s.get_user(bob.id).await.expect("get"), None);
    assert_eq!(s.get_user_by_name("bob").await.expect("by name"), None);
    assert!(s.list_tokens(Some(bob.id)).await.expect("list").is_empty());
    assert_eq!(s.get_token(t.id).await.expect("get_token"), None);
    assert_eq!(
        s.find_token_by_access_id("bob-lm").await.expect("find"),
        None
    );
    assert_eq!(s.find_token_by_hash("b0b0").await.expect("find"), None);
    let raw = h.raw().await;
    for table in ["api_tokens", "user_roles"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = $1");
        assert_eq!(raw_i64(&raw, &sql, bob.id).await, 0, "{table} rows left");
    }
    raw.close().await;
    assert!(s
        .role_user_counts()
        .await
        .expect("counts")
        .iter()
        .all(|(_, n)| *n == 0));
    let err = refused!(s, |e| s.delete_user(bob.id, e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // The name is free again.
    let bob2 = ok_step!(s, "user.create", |e| s.create_user(new_user("Bob", &[]), e));
    assert_ne!(bob2.id, bob.id);

    // The built-in support account cannot be deleted.
    let support = ok_step!(s, "user.create", |e| s.create_user(
        NewUser {
            builtin: Some(BUILTIN_SUPPORT.into()),
            ..new_user("palisade-support", &[])
        },
        e
    ));
    assert!(support.is_support());
    let err = refused!(s, |e| s.delete_user(support.id, e));
    assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");

    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 3. roles
// ------------------------------------------------------------------------------------------

async fn case_roles(h: Harness) {
    let s = h.s();
    let privileges = vec![
        privilege("setting", "useraccess", "read"),
        privilege_with_sub("host_group", "17", "write", "sdt", Some("Linux servers")),
        privilege_with_sub("dashboard_group", "*", "read", "", None),
    ];
    let ops_new = NewRole {
        name: "Operators".into(),
        description: "runs things".into(),
        privileges: privileges.clone(),
        builtin: false,
        two_fa_required: true,
        created_on: 1_700_000_001_000,
    };
    let ops = ok_step!(s, "role.create", |e| s.create_role(ops_new.clone(), e));
    let expected = RoleRecord {
        id: ops.id,
        name: "Operators".into(),
        description: "runs things".into(),
        privileges: privileges.clone(),
        builtin: false,
        two_fa_required: true,
        created_on: 1_700_000_001_000,
    };
    assert_eq!(ops, expected);
    assert_eq!(
        s.get_role(ops.id).await.expect("get_role"),
        Some(expected.clone())
    );
    assert_eq!(
        s.get_role_by_name("operators").await.expect("by name"),
        Some(expected.clone())
    );
    assert_eq!(s.get_role_by_name("nope").await.expect("by name"), None);
    assert_eq!(s.get_role(ops.id + 1000).await.expect("get_role"), None);

    let err = refused!(s, |e| s.create_role(new_role("OPERATORS"), e));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // Privileges round-trip exactly, sub-operations and names included.
    let new_privileges = vec![
        privilege_with_sub("setting", "collectorgroup.3", "write", "install", None),
        privilege_with_sub("host_group", "*", "manage", "remoteSession", Some("All")),
    ];
    let updated = ok_step!(s, "role.update", |e| s.update_role(
        ops.id,
        RoleChangeSet {
            name: Some("Ops".into()),
            description: Some("renamed".into()),
            privileges: Some(new_privileges.clone()),
            two_fa_required: Some(false),
        },
        e
    ));
    let expected = RoleRecord {
        name: "Ops".into(),
        description: "renamed".into(),
        privileges: new_privileges.clone(),
        two_fa_required: false,
        ..expected
    };
    assert_eq!(updated, expected);
    assert_eq!(
        s.get_role(ops.id).await.expect("get_role"),
        Some(expected.clone())
    );
    // A partial change keeps the privileges.
    let updated = ok_step!(s, "role.update", |e| s.update_role(
        ops.id,
        RoleChangeSet {
            description: Some("only this".into()),
            ..Default::default()
        },
        e
    ));
    assert_eq!(updated.privileges, new_privileges);
    assert_eq!(updated.description, "only this");

    let viewers = ok_step!(s, "role.create", |e| s.create_role(new_role("viewers"), e));
    let err = refused!(s, |e| s.update_role(
        viewers.id,
        RoleChangeSet {
            name: Some("ops".into()),
            ..Default::default()
        },
        e
    ));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = refused!(s, |e| s.update_role(
        viewers.id + 1000,
        RoleChangeSet::default(),
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // The built-in administrator role can be neither changed nor deleted.
    let admin = ok_step!(s, "role.create", |e| s.create_role(administrator_role(), e));
    assert!(admin.is_administrator());
    for change in [
        RoleChangeSet {
            description: Some("weaker".into()),
            ..Default::default()
        },
        RoleChangeSet {
            privileges: Some(vec![]),
            ..Default::default()
        },
        RoleChangeSet::default(),
    ] {
        let err = refused!(s, |e| s.update_role(admin.id, change, e));
        assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");
    }
    let err = refused!(s, |e| s.delete_role(admin.id, e));
    assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");
    assert_eq!(
        s.get_role(admin.id).await.expect("get_role"),
        Some(admin.clone())
    );

    // Other built-in roles: changeable but not renamable, not deletable.
    let readonly = ok_step!(s, "role.create", |e| s.create_role(
        NewRole {
            builtin: true,
            ..new_role("readonly")
        },
        e
    ));
    ok_step!(s, "role.update", |e| s.update_role(
        readonly.id,
        RoleChangeSet {
            description: Some("sees data".into()),
            ..Default::default()
        },
        e
    ));
    let err = refused!(s, |e| s.update_role(
        readonly.id,
        RoleChangeSet {
            name: Some("readwrite".into()),
            ..Default::default()
        },
        e
    ));
    assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");
    let err = refused!(s, |e| s.delete_role(readonly.id, e));
    assert!(matches!(err, StoreError::Immutable(_)), "{err:?}");

    // A held role cannot be deleted; counts per role.
    let u1 = ok_step!(s, "user.create", |e| s
        .create_user(new_user("u1", &[ops.id, viewers.id]), e));
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("u2", &[viewers.id]), e));
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("u3", &[admin.id]), e));
    let counts: BTreeMap<i64, i64> = s
        .role_user_counts()
        .await
        .expect("role_user_counts")
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        counts,
        BTreeMap::from([(ops.id, 1), (viewers.id, 2), (admin.id, 1)])
    );
    let err = refused!(s, |e| s.delete_role(viewers.id, e));
    assert!(matches!(err, StoreError::InUse(_)), "{err:?}");
    assert!(s.get_role(viewers.id).await.expect("get_role").is_some());

    // Once unused, it can go.
    ok_step!(s, "user.update", |e| s.update_user(
        u1.id,
        UserChange {
            role_ids: Some(vec![]),
            ..Default::default()
        },
        e
    ));
    ok_step!(s, "role.delete", |e| s.delete_role(ops.id, e));
    assert_eq!(s.get_role(ops.id).await.expect("get_role"), None);
    assert_eq!(s.get_role_by_name("ops").await.expect("by name"), None);
    let err = refused!(s, |e| s.delete_role(ops.id, e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        s.list_roles()
            .await
            .expect("list_roles")
            .iter()
            .map(|r| r.id)
            .collect::<Vec<_>>(),
        vec![viewers.id, admin.id, readonly.id]
    );

    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 4. the token mandate, enforced inside the store
// ------------------------------------------------------------------------------------------

async fn case_token_mandate(h: Harness) {
    let s = h.s();
    let admin = ok_step!(s, "role.create", |e| s.create_role(administrator_role(), e));
    let staff = ok_step!(s, "role.create", |e| s.create_role(new_role("staff"), e));
    // An administrator that stays, so the last-administrator rule does not interfere.
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("root", &[admin.id]), e));
    let carol = ok_step!(s, "user.create", |e| s
        .create_user(new_user("carol", &[staff.id]), e));

    // A plain user may own a token.
    let token = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lmv1_token(carol.id, "carol-1"),
        e
    ));
    assert_eq!(token.status, TOKEN_ENABLED);
    assert_eq!(token.user_id, carol.id);

    // Granting administrator while the token is enabled is refused.
    let grant = || UserChange {
        role_ids: Some(vec![staff.id, admin.id]),
        ..Default::default()
    };
    let err = refused!(s, |e| s.update_user(carol.id, grant(), e));
    assert!(
        matches!(
            err,
            StoreError::RoleChange(RoleChangeRefusal::AdministratorWithTokens(1))
        ),
        "{err:?}"
    );
    assert_eq!(
        s.get_user(carol.id).await.expect("get").map(|u| u.role_ids),
        Some(vec![staff.id])
    );

    // Disabled tokens do not count.
    let disabled = ok_step!(s, "token.update", |e| s.update_token(
        token.id,
        TokenChange {
            status: Some(TOKEN_DISABLED),
            note: None
        },
        e
    ));
    assert_eq!(disabled.status, TOKEN_DISABLED);
    let carol = ok_step!(s, "user.update", |e| s.update_user(carol.id, grant(), e));
    assert!(carol.role_ids.contains(&admin.id));

    // Re-enabling the token of an administrator holder is refused.
    let err = refused!(s, |e| s.update_token(
        token.id,
        TokenChange {
            status: Some(TOKEN_ENABLED),
            note: None
        },
        e
    ));
    assert!(
        matches!(err, StoreError::Token(TokenRefusal::AdministratorRole)),
        "{err:?}"
    );
    assert_eq!(
        s.get_token(token.id).await.expect("get").map(|t| t.status),
        Some(TOKEN_DISABLED)
    );
    // Changing only its note is still fine.
    let noted = ok_step!(s, "token.update", |e| s.update_token(
        token.id,
        TokenChange {
            status: None,
            note: Some("parked".into())
        },
        e
    ));
    assert_eq!(
        (noted.status, noted.note.as_str()),
        (TOKEN_DISABLED, "parked")
    );

    // A proof obtained with forged facts does not get past the store.
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        lmv1_token(carol.id, "carol-2"),
        e
    ));
    assert!(
        matches!(err, StoreError::Token(TokenRefusal::AdministratorRole)),
        "{err:?}"
    );
    assert_eq!(
        s.find_token_by_access_id("carol-2").await.expect("find"),
        None
    );
    assert_eq!(s.list_tokens(Some(carol.id)).await.expect("list").len(), 1);

    // Nor for the built-in support account.
    let support = ok_step!(s, "user.create", |e| s.create_user(
        NewUser {
            builtin: Some(BUILTIN_SUPPORT.into()),
            ..new_user("palisade-support", &[])
        },
        e
    ));
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        bearer_token(support.id, "support-1", "5u99"),
        e
    ));
    assert!(
        matches!(err, StoreError::Token(TokenRefusal::SupportAccount)),
        "{err:?}"
    );
    assert!(s
        .list_tokens(Some(support.id))
        .await
        .expect("list")
        .is_empty());

    // Nor for a suspended user; and a missing owner is not found.
    let dave = ok_step!(s, "user.create", |e| s.create_user(
        NewUser {
            status: "suspended".into(),
            ..new_user("dave", &[staff.id])
        },
        e
    ));
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        lmv1_token(dave.id, "dave-1"),
        e
    ));
    assert!(
        matches!(err, StoreError::Token(TokenRefusal::OwnerSuspended)),
        "{err:?}"
    );
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        lmv1_token(dave.id + 1000, "ghost-1"),
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Two enabled tokens are counted as two.
    let erin = ok_step!(s, "user.create", |e| s
        .create_user(new_user("erin", &[]), e));
    for id in ["erin-1", "erin-2"] {
        ok_step!(s, "token.create", |e| s.create_token(
            plain_proof(),
            lmv1_token(erin.id, id),
            e
        ));
    }
    let err = refused!(s, |e| s.update_user(
        erin.id,
        UserChange {
            role_ids: Some(vec![admin.id]),
            ..Default::default()
        },
        e
    ));
    assert!(
        matches!(
            err,
            StoreError::RoleChange(RoleChangeRefusal::AdministratorWithTokens(2))
        ),
        "{err:?}"
    );

    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 5. one active administrator always remains
// ------------------------------------------------------------------------------------------

async fn case_last_administrator(h: Harness) {
    let s = h.s();
    let admin = ok_step!(s, "role.create", |e| s.create_role(administrator_role(), e));
    let staff = ok_step!(s, "role.create", |e| s.create_role(new_role("staff"), e));
    let first = ok_step!(s, "user.create", |e| s
        .create_user(new_user("first", &[admin.id, staff.id]), e));
    // A suspended holder does not count as an active administrator.
    ok_step!(s, "user.create", |e| s.create_user(
        NewUser {
            status: "suspended".into(),
            ..new_user("sleeper", &[admin.id])
        },
        e
    ));

    let last = |err: &StoreError| {
        matches!(
            err,
            StoreError::RoleChange(RoleChangeRefusal::LastAdministrator)
        )
    };
    let suspend = || UserChange {
        status: Some("suspended".into()),
        ..Default::default()
    };
    let demote = || UserChange {
        role_ids: Some(vec![staff.id]),
        ..Default::default()
    };
    let err = refused!(s, |e| s.update_user(first.id, suspend(), e));
    assert!(last(&err), "suspending the last administrator: {err:?}");
    let err = refused!(s, |e| s.update_user(first.id, demote(), e));
    assert!(last(&err), "demoting the last administrator: {err:?}");
    let err = refused!(s, |e| s.update_user(
        first.id,
        UserChange {
            role_ids: Some(vec![]),
            status: Some("suspended".into()),
            ..Default::default()
        },
        e
    ));
    assert!(last(&err), "{err:?}");
    let err = refused!(s, |e| s.delete_user(first.id, e));
    assert!(last(&err), "deleting the last administrator: {err:?}");
    assert_eq!(
        s.get_user(first.id).await.expect("get"),
        Some(first.clone())
    );

    // Changes that keep them an active administrator are fine.
    ok_step!(s, "user.update", |e| s.update_user(
        first.id,
        UserChange {
            note: Some("still here".into()),
            role_ids: Some(vec![admin.id]),
            ..Default::default()
        },
        e
    ));

    // With a second active administrator, the first can be demoted; then the second is last.
    let second = ok_step!(s, "user.create", |e| s
        .create_user(new_user("second", &[admin.id]), e));
    let demoted = ok_step!(s, "user.update", |e| s.update_user(first.id, demote(), e));
    assert_eq!(demoted.role_ids, vec![staff.id]);
    let err = refused!(s, |e| s.update_user(second.id, suspend(), e));
    assert!(last(&err), "{err:?}");
    let err = refused!(s, |e| s.delete_user(second.id, e));
    assert!(last(&err), "{err:?}");

    // A third one lets the second be suspended, and then deleted.
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("third", &[admin.id]), e));
    ok_step!(s, "user.update", |e| s.update_user(second.id, suspend(), e));
    // A suspended administrator is no longer counted: deleting them is fine.
    ok_step!(s, "user.delete", |e| s.delete_user(second.id, e));
    ok_step!(s, "user.delete", |e| s.delete_user(first.id, e));

    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 6. tokens
// ------------------------------------------------------------------------------------------

async fn case_tokens(h: Harness) {
    let s = h.s();
    let owner = ok_step!(s, "user.create", |e| s
        .create_user(new_user("owner", &[]), e));
    let other = ok_step!(s, "user.create", |e| s
        .create_user(new_user("other", &[]), e));

    let lm_new = lmv1_token(owner.id, "lmv1-AbC123");
    let lm = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lm_new.clone(),
        e
    ));
    let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let bearer_new = bearer_token(owner.id, "bearer-public-1", hash);
    let bearer = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        bearer_new.clone(),
        e
    ));
    let expected_lm = TokenRecord {
        id: lm.id,
        user_id: owner.id,
        kind: TokenType::Lmv1,
        access_id: lm_new.access_id.clone(),
        access_key_enc: lm_new.access_key_enc.clone(),
        bearer_hash: None,
        dashboard_id: None,
        status: TOKEN_ENABLED,
        note: lm_new.note.clone(),
        created_on: lm_new.created_on,
        created_by: lm_new.created_by.clone(),
        expires_on: lm_new.expires_on,
        last_used_on: None,
        last_auth_ip: None,
        recent_ips: vec![],
    };
    assert_eq!(lm, expected_lm);
    let expected_bearer = TokenRecord {
        id: bearer.id,
        user_id: owner.id,
        kind: TokenType::Bearer,
        access_id: "bearer-public-1".into(),
        access_key_enc: None,
        bearer_hash: Some(hash.into()),
        dashboard_id: None,
        status: TOKEN_ENABLED,
        note: String::new(),
        created_on: bearer_new.created_on,
        created_by: "store-suite".into(),
        expires_on: None,
        last_used_on: None,
        last_auth_ip: None,
        recent_ips: vec![],
    };
    assert_eq!(bearer, expected_bearer);

    // Lookups.
    assert_eq!(s.get_token(lm.id).await.expect("get"), Some(lm.clone()));
    assert_eq!(
        s.find_token_by_access_id("lmv1-AbC123")
            .await
            .expect("find"),
        Some(lm.clone())
    );
    assert_eq!(
        s.find_token_by_access_id("bearer-public-1")
            .await
            .expect("find"),
        Some(bearer.clone())
    );
    assert_eq!(
        s.find_token_by_access_id("lmv1-abc123")
            .await
            .expect("find"),
        None,
        "access ids are exact"
    );
    assert_eq!(
        s.find_token_by_hash(hash).await.expect("find"),
        Some(bearer.clone())
    );
    assert_eq!(s.find_token_by_hash("00").await.expect("find"), None);

    // Access ids and bearer hashes are unique.
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        lmv1_token(other.id, "lmv1-AbC123"),
        e
    ));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        bearer_token(other.id, "bearer-public-2", hash),
        e
    ));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let third = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lmv1_token(other.id, "lmv1-other"),
        e
    ));
    assert_eq!(
        s.list_tokens(Some(owner.id)).await.expect("list"),
        vec![lm.clone(), bearer.clone()]
    );
    assert_eq!(
        s.list_tokens(Some(other.id)).await.expect("list"),
        vec![third.clone()]
    );
    assert_eq!(
        s.list_tokens(None).await.expect("list"),
        vec![lm.clone(), bearer.clone(), third.clone()]
    );
    assert!(s
        .list_tokens(Some(other.id + 1000))
        .await
        .expect("list")
        .is_empty());

    // Note and status.
    let noted = ok_step!(s, "token.update", |e| s.update_token(
        lm.id,
        TokenChange {
            status: None,
            note: Some("ci pipeline".into())
        },
        e
    ));
    assert_eq!(
        noted,
        TokenRecord {
            note: "ci pipeline".into(),
            ..lm.clone()
        }
    );
    let off = ok_step!(s, "token.update", |e| s.update_token(
        lm.id,
        TokenChange {
            status: Some(TOKEN_DISABLED),
            note: None
        },
        e
    ));
    assert_eq!(
        (off.status, off.note.as_str()),
        (TOKEN_DISABLED, "ci pipeline")
    );
    let on = ok_step!(s, "token.update", |e| s.update_token(
        lm.id,
        TokenChange {
            status: Some(TOKEN_ENABLED),
            note: Some(String::new())
        },
        e
    ));
    assert_eq!((on.status, on.note.as_str()), (TOKEN_ENABLED, ""));
    assert_eq!(s.get_token(lm.id).await.expect("get"), Some(on.clone()));
    let err = refused!(s, |e| s.update_token(
        third.id + 1000,
        TokenChange::default(),
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Uses: without an event nothing is audited; with one, it is appended.
    let before = head(s).await;
    s.record_token_use(
        bearer.id,
        TokenUse {
            at: 1_700_000_100_000,
            ip: "203.0.113.7".into(),
            recent_ips: vec!["203.0.113.7".into()],
        },
        None,
    )
    .await
    .expect("record_token_use");
    assert_eq!(head(s).await, before, "a known address is not audited");
    let used = s.get_token(bearer.id).await.expect("get").expect("token");
    assert_eq!(used.last_used_on, Some(1_700_000_100_000));
    assert_eq!(used.last_auth_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(used.recent_ips, vec!["203.0.113.7".to_string()]);

    let use_event = AuditEvent {
        token_id: Some(bearer.id),
        ..ev("token.new_ip")
    };
    s.record_token_use(
        bearer.id,
        TokenUse {
            at: 1_700_000_200_000,
            ip: "2001:db8::1".into(),
            recent_ips: vec!["2001:db8::1".into(), "203.0.113.7".into()],
        },
        Some(use_event.clone()),
    )
    .await
    .expect("record_token_use");
    assert_eq!(head(s).await, before + 1, "a new address is audited");
    let last = s
        .get_audit(before + 1)
        .await
        .expect("get_audit")
        .expect("entry");
    assert_eq!(last.event, use_event);
    let used = s.get_token(bearer.id).await.expect("get").expect("token");
    assert_eq!(
        used,
        TokenRecord {
            last_used_on: Some(1_700_000_200_000),
            last_auth_ip: Some("2001:db8::1".into()),
            recent_ips: vec!["2001:db8::1".into(), "203.0.113.7".into()],
            ..bearer.clone()
        }
    );
    // Other tokens are untouched.
    assert_eq!(
        s.get_token(third.id).await.expect("get"),
        Some(third.clone())
    );

    // Delete.
    ok_step!(s, "token.delete", |e| s.delete_token(lm.id, e));
    assert_eq!(s.get_token(lm.id).await.expect("get"), None);
    assert_eq!(
        s.find_token_by_access_id("lmv1-AbC123")
            .await
            .expect("find"),
        None
    );
    let err = refused!(s, |e| s.delete_token(lm.id, e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = refused!(s, |e| s.update_token(
        lm.id,
        TokenChange {
            status: None,
            note: Some("gone".into())
        },
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = refused!(s, |e| s.delete_token(third.id + 1000, e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        s.list_tokens(None).await.expect("list"),
        vec![used.clone(), third.clone()]
    );

    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 7. the audit chain
// ------------------------------------------------------------------------------------------

async fn case_audit_chain(h: Harness) {
    let s = h.s();
    assert_eq!(
        s.audit_head().await.expect("head"),
        (0, GENESIS_HEX.to_string())
    );
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(0));
    assert!(s.list_audit(None, 10).await.expect("list").is_empty());

    // One entry per mutation, of every kind (ok_step! checks "exactly one" each time).
    let admin = ok_step!(s, "role.create", |e| s.create_role(administrator_role(), e));
    let role = ok_step!(s, "role.create", |e| s.create_role(new_role("r"), e));
    ok_step!(s, "role.update", |e| s.update_role(
        role.id,
        RoleChangeSet {
            description: Some("d".into()),
            ..Default::default()
        },
        e
    ));
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("boss", &[admin.id]), e));
    let u = ok_step!(s, "user.create", |e| s
        .create_user(new_user("u", &[role.id]), e));
    ok_step!(s, "user.update", |e| s.update_user(
        u.id,
        UserChange {
            phone: Some("1".into()),
            ..Default::default()
        },
        e
    ));
    let t = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lmv1_token(u.id, "t"),
        e
    ));
    ok_step!(s, "token.update", |e| s.update_token(
        t.id,
        TokenChange {
            status: Some(TOKEN_DISABLED),
            note: None
        },
        e
    ));
    ok_step!(s, "token.use", |e| s.record_token_use(
        t.id,
        TokenUse {
            at: 1,
            ip: "192.0.2.1".into(),
            recent_ips: vec!["192.0.2.1".into()]
        },
        Some(e)
    ));
    ok_step!(s, "setting.set", |e| s.set_setting("k", "v", e));
    ok_step!(s, "token.delete", |e| s.delete_token(t.id, e));
    ok_step!(s, "user.delete", |e| s.delete_user(u.id, e));
    ok_step!(s, "role.delete", |e| s.delete_role(role.id, e));
    ok_step!(s, "audit.append", |e| s.append_audit(vec![e]));
    let after_mutations = head(s).await;
    assert_eq!(after_mutations, 14);

    // A batch of 100, stored exactly as given and in order.
    let batch: Vec<AuditEvent> = (0..100).map(|i| batch_event(i, "batch")).collect();
    s.append_audit(batch.clone()).await.expect("append_audit");
    let total = head(s).await;
    assert_eq!(total, after_mutations + 100);
    s.append_audit(vec![]).await.expect("empty append");
    assert_eq!(head(s).await, total, "an empty batch appends nothing");
    let stored = s.scan_audit(after_mutations, 1000).await.expect("scan");
    assert_eq!(
        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (after_mutations + 1..=total).collect::<Vec<_>>()
    );
    assert_eq!(
        stored.into_iter().map(|e| e.event).collect::<Vec<_>>(),
        batch
    );

    // Links: genesis, each prev_hash is the previous hash, the head is the last hash.
    let entries = all_entries(s).await;
    assert_eq!(entries.len() as i64, total);
    assert_eq!(entries[0].prev_hash, GENESIS_HEX);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash, "link at {}", pair[1].seq);
    }
    let (head_seq, head_hash) = s.audit_head().await.expect("head");
    assert_eq!(head_seq, total);
    assert_eq!(head_hash, entries[entries.len() - 1].hash);

    // The whole chain verifies with the key given to `open`, and not with another.
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(total));
    assert_eq!(
        verify_chain(s, b"another key").await,
        Err(ChainBreak::Modified { seq: 1 })
    );

    // Listing: newest first, before a sequence number, limited.
    let newest = s.list_audit(None, 10).await.expect("list");
    assert_eq!(
        newest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (total - 9..=total).rev().collect::<Vec<_>>()
    );
    assert_eq!(newest[0], entries[entries.len() - 1]);
    let page = s.list_audit(Some(50), 5).await.expect("list");
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![49, 48, 47, 46, 45]
    );
    assert_eq!(page[0], entries[48]);
    let tail = s.list_audit(Some(3), 10).await.expect("list");
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 1]);
    assert!(s.list_audit(Some(1), 10).await.expect("list").is_empty());
    assert!(s.list_audit(None, 0).await.expect("list").is_empty());
    assert_eq!(
        s.get_audit(5).await.expect("get_audit"),
        Some(entries[4].clone())
    );
    assert_eq!(s.get_audit(0).await.expect("get_audit"), None);
    assert_eq!(s.get_audit(total + 1).await.expect("get_audit"), None);

    // Editing a row is found.
    let raw = h.raw().await;
    assert_eq!(
        raw_exec(&raw, "UPDATE audit_log SET description = 'x' WHERE seq = 5").await,
        1
    );
    raw.close().await;
    assert_eq!(
        verify_chain(s, CHAIN_KEY).await,
        Err(ChainBreak::Modified { seq: 5 })
    );

    // Removing a middle row is found, on another fresh store.
    let gap = h.fresh().await;
    let g = gap.s();
    g.append_audit((1..=10).map(|i| batch_event(i, "gap")).collect())
        .await
        .expect("append");
    assert_eq!(verify_chain(g, CHAIN_KEY).await, Ok(10));
    let raw = gap.raw().await;
    assert_eq!(
        raw_exec(&raw, "DELETE FROM audit_log WHERE seq = 5").await,
        1
    );
    assert_eq!(
        verify_chain(g, CHAIN_KEY).await,
        Err(ChainBreak::Gap {
            seq: 6,
            expected: 5
        })
    );
    // And removing the newest rows too.
    let cut = h.fresh().await;
    cut.s()
        .append_audit((1..=10).map(|i| batch_event(i, "cut")).collect())
        .await
        .expect("append");
    let raw_cut = cut.raw().await;
    assert_eq!(
        raw_exec(&raw_cut, "DELETE FROM audit_log WHERE seq > 8").await,
        2
    );
    assert_eq!(
        verify_chain(cut.s(), CHAIN_KEY).await,
        Err(ChainBreak::Truncated { last: 8, head: 10 })
    );
    raw.close().await;
    raw_cut.close().await;
}

// ------------------------------------------------------------------------------------------
// 8. atomicity: a failed mutation leaves nothing behind
// ------------------------------------------------------------------------------------------

async fn case_atomicity(h: Harness) {
    let s = h.s();
    let role = ok_step!(s, "role.create", |e| s.create_role(new_role("base"), e));
    let frank = ok_step!(s, "user.create", |e| s
        .create_user(new_user("frank", &[role.id]), e));
    let raw = h.raw().await;
    let links = |raw: AnyPool| async move {
        raw_i64(
            &raw,
            "SELECT COUNT(*) FROM user_roles WHERE role_id >= $1",
            0,
        )
        .await
    };
    let users = |raw: AnyPool| async move {
        raw_i64(&raw, "SELECT COUNT(*) FROM users WHERE id >= $1", 0).await
    };
    let (links0, users0) = (links(raw.clone()).await, users(raw.clone()).await);
    assert_eq!((links0, users0), (1, 1));

    // Duplicate user name: no entry, no row, no role link.
    let err = refused!(s, |e| s.create_user(new_user("FRANK", &[role.id]), e));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(users(raw.clone()).await, users0);
    assert_eq!(links(raw.clone()).await, links0);

    // The user row is inserted before a missing role is found: it must be rolled back.
    let missing_role = role.id + 1000;
    let err = refused!(s, |e| s
        .create_user(new_user("grace", &[role.id, missing_role]), e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.get_user_by_name("grace").await.expect("by name"), None);
    assert_eq!(users(raw.clone()).await, users0);
    assert_eq!(links(raw.clone()).await, links0);

    // An update that fails after the old role links were removed must restore everything.
    let err = refused!(s, |e| s.update_user(
        frank.id,
        UserChange {
            note: Some("must not stick".into()),
            role_ids: Some(vec![missing_role]),
            ..Default::default()
        },
        e
    ));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        s.get_user(frank.id).await.expect("get"),
        Some(frank.clone())
    );
    assert_eq!(links(raw.clone()).await, links0);

    // Duplicate role name, conflicting token: nothing written.
    let err = refused!(s, |e| s.create_role(new_role("BASE"), e));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.list_roles().await.expect("roles").len(), 1);
    ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        lmv1_token(frank.id, "dup"),
        e
    ));
    let err = refused!(s, |e| s.create_token(
        plain_proof(),
        lmv1_token(frank.id, "dup"),
        e
    ));
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.list_tokens(None).await.expect("tokens").len(), 1);

    // The store keeps working after failures, and the chain is intact.
    ok_step!(s, "user.create", |e| s
        .create_user(new_user("grace", &[role.id]), e));
    assert_eq!(links(raw.clone()).await, links0 + 1);
    raw.close().await;
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
    assert_eq!(head(s).await, 4);
}

// ------------------------------------------------------------------------------------------
// 9. concurrent writers
// ------------------------------------------------------------------------------------------

async fn case_concurrency(h: Harness) {
    let store = h.store.clone();
    let start = head(&*store).await;
    assert_eq!(start, 0);

    // 8 tasks appending 50 events each, 4 tasks creating 5 users each, and 4 tasks racing
    // for the same user name, all at once.
    let mut appenders = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        appenders.push(tokio::spawn(async move {
            for i in 0..50 {
                store
                    .append_audit(vec![batch_event(i, &format!("task-{t}"))])
                    .await
                    .unwrap_or_else(|e| panic!("append from task {t}: {e:?}"));
            }
        }));
    }
    let mut creators = Vec::new();
    for t in 0..4 {
        let store = store.clone();
        creators.push(tokio::spawn(async move {
            for i in 0..5 {
                store
                    .create_user(new_user(&format!("c-{t}-{i}"), &[]), ev("user.create"))
                    .await
                    .unwrap_or_else(|e| panic!("create c-{t}-{i}: {e:?}"));
            }
        }));
    }
    let mut racers = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .create_user(new_user("contested", &[]), ev("user.create"))
                .await
        }));
    }
    for task in appenders.into_iter().chain(creators) {
        task.await.expect("task");
    }
    let mut won = 0;
    for task in racers {
        match task.await.expect("task") {
            Ok(_) => won += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("racing create: {e:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one of the racing creates wins");

    let s: &dyn Store = &*store;
    let total = head(s).await;
    assert_eq!(total, 400 + 20 + 1);
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(total));
    let raw = h.raw().await;
    assert_eq!(
        raw_i64(&raw, "SELECT COUNT(*) FROM audit_log WHERE seq > $1", 0).await,
        total
    );
    raw.close().await;
    let entries = all_entries(s).await;
    let mut per_task: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &entries {
        if let Some((tag, _)) = e.event.description.split_once(' ') {
            if tag.starts_with("task-") {
                per_task
                    .entry(tag.to_string())
                    .or_default()
                    .push(e.event.description.clone());
            }
        }
    }
    assert_eq!(per_task.len(), 8);
    for (tag, got) in &per_task {
        // Every event once, in the order its task appended them.
        let want: Vec<String> = (0..50).map(|i| batch_event(i, tag).description).collect();
        assert_eq!(got, &want, "events of {tag}");
    }
    let users = s.list_users().await.expect("users");
    assert_eq!(users.len(), 21);
    assert_eq!(
        users
            .iter()
            .map(|u| u.username.clone())
            .collect::<BTreeSet<_>>()
            .len(),
        21
    );

    // The role rules hold across concurrent writers.
    let admin = store
        .create_role(administrator_role(), ev("role.create"))
        .await
        .expect("admin role");
    let mut survivor = store
        .create_user(new_user("admin-0", &[admin.id]), ev("user.create"))
        .await
        .expect("admin-0");
    for round in 1..=4 {
        // Two active administrators demote themselves at once: one must remain.
        let newcomer = store
            .create_user(
                new_user(&format!("admin-{round}"), &[admin.id]),
                ev("user.create"),
            )
            .await
            .expect("new admin");
        let demote = |id: i64| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update_user(
                        id,
                        UserChange {
                            role_ids: Some(vec![]),
                            ..Default::default()
                        },
                        ev("user.update"),
                    )
                    .await
            })
        };
        let (a, b) = (demote(survivor.id), demote(newcomer.id));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        let lost = |r: &Result<UserRecord, StoreError>| {
            matches!(
                r,
                Err(StoreError::RoleChange(RoleChangeRefusal::LastAdministrator))
            )
        };
        match (&a, &b) {
            (Ok(_), r) if lost(r) => survivor = newcomer,
            (r, Ok(_)) if lost(r) => {}
            _ => panic!("round {round}: exactly one demotion must win: {a:?} / {b:?}"),
        }
        let active_admins = store
            .list_users()
            .await
            .expect("users")
            .into_iter()
            .filter(|u| u.is_active() && u.role_ids.contains(&admin.id))
            .count();
        assert_eq!(active_admins, 1, "round {round}");

        // Granting administrator and creating a token at once: never both.
        let target = store
            .create_user(new_user(&format!("target-{round}"), &[]), ev("user.create"))
            .await
            .expect("target")
            .id;
        let grant = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .update_user(
                        target,
                        UserChange {
                            role_ids: Some(vec![admin.id]),
                            ..Default::default()
                        },
                        ev("user.update"),
                    )
                    .await
            })
        };
        let mint = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .create_token(
                        plain_proof(),
                        lmv1_token(target, &format!("race-{round}")),
                        ev("token.create"),
                    )
                    .await
            })
        };
        let (grant, mint) = (grant.await.expect("task"), mint.await.expect("task"));
        match (&grant, &mint) {
            (Ok(_), Err(StoreError::Token(TokenRefusal::AdministratorRole))) => {}
            (Err(StoreError::RoleChange(RoleChangeRefusal::AdministratorWithTokens(1))), Ok(_)) => {
            }
            _ => panic!("round {round}: grant {grant:?} / token {mint:?}"),
        }
        let user = store.get_user(target).await.expect("get").expect("user");
        let enabled = store
            .list_tokens(Some(target))
            .await
            .expect("tokens")
            .iter()
            .filter(|t| t.status == TOKEN_ENABLED)
            .count();
        assert!(
            !(user.role_ids.contains(&admin.id) && enabled > 0),
            "round {round}: an administrator owns an enabled token"
        );
        if user.role_ids.contains(&admin.id) {
            // Back to one active administrator for the next round.
            store
                .update_user(
                    target,
                    UserChange {
                        role_ids: Some(vec![]),
                        ..Default::default()
                    },
                    ev("user.update"),
                )
                .await
                .expect("demote the target again");
        }
    }
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// compliance: token expiry, score snapshots, collector exceptions
// ------------------------------------------------------------------------------------------

async fn case_compliance(h: Harness) {
    use palisade_store::compliance::{ComplianceSnapshotDoc, SnapshotScore};
    use palisade_store::inventory::{CollectorDoc, ComplianceException};
    use palisade_store::objects::{self, ObjectQuery};

    let s = h.s();
    // A token without expiry gets one, audited; an unknown token is refused untouched.
    let owner = ok_step!(s, "user.create", |e| s
        .create_user(new_user("expiring", &[]), e));
    let token = ok_step!(s, "token.create", |e| s.create_token(
        plain_proof(),
        NewToken {
            expires_on: None,
            ..lmv1_token(owner.id, "lmv1-expiring")
        },
        e
    ));
    assert_eq!(token.expires_on, None);
    let expiring = ok_step!(s, "token.expiry", |e| s.set_token_expiry(
        token.id,
        4_000_000_000_000,
        e
    ));
    assert_eq!(
        expiring,
        TokenRecord {
            expires_on: Some(4_000_000_000_000),
            ..token.clone()
        }
    );
    assert_eq!(
        s.get_token(token.id)
            .await
            .expect("get")
            .map(|t| t.expires_on),
        Some(Some(4_000_000_000_000))
    );
    let err = refused!(s, |e| s.set_token_expiry(token.id + 1000, 1, e));
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Snapshots: automatic ones are unique per day, on-demand ones are not.
    let snapshot = |day: Option<&str>, taken_on: i64| ComplianceSnapshotDoc {
        taken_on,
        trigger: if day.is_some() { "daily" } else { "on-demand" }.into(),
        day: day.map(str::to_string),
        overall: SnapshotScore {
            id: "overall".into(),
            compliant: 3,
            total: 4,
            score: 75.0,
            ..Default::default()
        },
        sections: vec![SnapshotScore {
            id: "two-factor".into(),
            mandate: 1,
            compliant: 1,
            total: 2,
            score: 50.0,
            findings: 1,
        }],
        ..Default::default()
    };
    let first = objects::create(s, &snapshot(Some("2030-01-01"), 10), None)
        .await
        .expect("first daily snapshot");
    let again = objects::create(s, &snapshot(Some("2030-01-01"), 20), None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    objects::create(s, &snapshot(Some("2030-01-02"), 30), None)
        .await
        .expect("next day");
    for t in [40, 50] {
        objects::create(s, &snapshot(None, t), None)
            .await
            .expect("on-demand");
    }
    let all: Vec<ComplianceSnapshotDoc> = objects::list(s, ObjectQuery::default())
        .await
        .expect("list");
    assert_eq!(
        all.iter().map(|d| d.taken_on).collect::<Vec<_>>(),
        [10, 30, 40, 50]
    );
    assert_eq!(
        all[0],
        ComplianceSnapshotDoc {
            id: first.id,
            ..snapshot(Some("2030-01-01"), 10)
        }
    );

    // A collector's exception and non-compliance date survive the document round trip;
    // documents written before they existed still decode.
    let exception = ComplianceException {
        justification: "Exchange counters need Administrators".into(),
        expires_on: Some(5_000),
        created_by: "ops".into(),
        created_on: 1_000,
    };
    let c = objects::create(
        s,
        &CollectorDoc {
            description: "win".into(),
            compliance_exception: Some(exception.clone()),
            noncompliant_since: Some(900),
            ..Default::default()
        },
        None,
    )
    .await
    .expect("collector");
    let read: Option<CollectorDoc> = objects::get(s, c.id).await.expect("get");
    assert_eq!(
        read.map(|d| (d.compliance_exception, d.noncompliant_since)),
        Some((Some(exception), Some(900)))
    );
    let old = objects::create(s, &CollectorDoc::default(), None)
        .await
        .expect("old collector");
    let raw = h.raw().await;
    raw_exec(
        &raw,
        &format!(
            "UPDATE collectors SET data = '{{\"description\":\"old\",\"groupId\":0}}' WHERE id = {}",
            old.id
        ),
    )
    .await;
    raw.close().await;
    let read: Option<CollectorDoc> = objects::get(s, old.id).await.expect("get old");
    assert_eq!(
        read.map(|d| (d.description, d.compliance_exception, d.noncompliant_since)),
        Some(("old".to_string(), None, None))
    );
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(head(s).await));
}

// ------------------------------------------------------------------------------------------
// 10. settings
// ------------------------------------------------------------------------------------------

async fn case_settings(h: Harness) {
    let s = h.s();
    assert_eq!(s.get_setting("alert.email").await.expect("get"), None);
    ok_step!(s, "setting.set", |e| s.set_setting(
        "alert.email",
        "ops@example.com",
        e
    ));
    assert_eq!(
        s.get_setting("alert.email").await.expect("get").as_deref(),
        Some("ops@example.com")
    );
    let entry = s
        .get_audit(head(s).await)
        .await
        .expect("get")
        .expect("entry");
    assert_eq!(
        entry.event,
        ev("setting.set"),
        "the event is stored as given"
    );

    ok_step!(s, "setting.set", |e| s.set_setting(
        "alert.email",
        "noc@example.com",
        e
    ));
    ok_step!(s, "setting.set", |e| s.set_setting("empty", "", e));
    let text = "ünïcödé ✓ 'single' \"double\"\nsecond line";
    ok_step!(s, "setting.set", |e| s.set_setting("text", text, e));
    assert_eq!(
        s.get_setting("alert.email").await.expect("get").as_deref(),
        Some("noc@example.com")
    );
    assert_eq!(
        s.get_setting("empty").await.expect("get").as_deref(),
        Some("")
    );
    assert_eq!(
        s.get_setting("text").await.expect("get").as_deref(),
        Some(text)
    );
    assert_eq!(
        s.get_setting("Alert.Email").await.expect("get"),
        None,
        "keys are exact"
    );
    let raw = h.raw().await;
    assert_eq!(
        raw_i64(
            &raw,
            "SELECT COUNT(*) FROM settings WHERE length(key) > $1",
            0
        )
        .await,
        3
    );
    raw.close().await;
    assert_eq!(head(s).await, 4);
    assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(4));
}

// ------------------------------------------------------------------------------------------
// 11. several instances opening one new database at once (portals behind a load balancer)
// ------------------------------------------------------------------------------------------

async fn case_concurrent_open(h: Harness) {
    for round in 0..3 {
        let url = h.env.fresh_url().await;
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { palisade_store::open(&url, CHAIN_KEY.to_vec()).await })
            })
            .collect();
        let mut failures = Vec::new();
        for open in opens {
            if let Err(e) = open.await.expect("task") {
                let cause = std::error::Error::source(&e).map(|c| c.to_string());
                failures.push(format!("{e} ({cause:?})"));
            }
        }
        assert!(
            failures.is_empty(),
            "round {round}: {} of 8 concurrent opens of a new database failed: {failures:#?}",
            failures.len()
        );
        let other = Harness {
            env: h.env.clone(),
            url: url.clone(),
            store: open_store(&url).await,
        };
        let raw = other.raw().await;
        assert_eq!(
            migration_versions(&raw).await,
            palisade_store::schema::MIGRATIONS
                .iter()
                .map(|m| m.version)
                .collect::<Vec<_>>()
        );
        raw.close().await;
        let s = other.s();
        assert_eq!(
            s.audit_head().await.expect("head"),
            (0, GENESIS_HEX.to_string())
        );
        ok_step!(s, "setting.set", |e| s.set_setting("opened", "once", e));
        assert_eq!(verify_chain(s, CHAIN_KEY).await, Ok(1));
    }
}
