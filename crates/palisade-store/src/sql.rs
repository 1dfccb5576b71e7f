//! The SQL implementation of [`Store`], shared by SQLite and PostgreSQL through sqlx `Any`.

use crate::schema::{self, MIGRATIONS};
use crate::*;
use palisade_core::audit_chain::entry_hash;
use palisade_core::policy::{self, OwnerFacts, RoleChange};
use palisade_core::privilege::Privilege;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Executor, Row};
use std::sync::Arc;
use std::time::Duration;

/// The store over an sqlx `Any` pool.
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    chain_key: Vec<u8>,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Opens (and creates or migrates) the store at `url`: `sqlite://PATH[?mode=rwc]` or
/// `postgres://...`. `chain_key` keys the audit hash chain.
pub async fn open(url: &str, chain_key: Vec<u8>) -> StoreResult<Arc<SqlStore>> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("sqlite:") {
        Backend::Sqlite
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Backend::Postgres
    } else {
        return Err(StoreError::BadUrl);
    };
    let options = AnyPoolOptions::new()
        .max_connections(match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        })
        .acquire_timeout(Duration::from_secs(15))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA busy_timeout = 15000",
                        "PRAGMA foreign_keys = ON",
                    ] {
                        conn.execute(pragma).await?;
                    }
                }
                Ok(())
            })
        });
    let pool = options.connect(url).await?;
    let store = SqlStore {
        pool,
        backend,
        chain_key,
    };
    store.migrate().await?;
    Ok(Arc::new(store))
}

pub(crate) fn b(v: bool) -> i64 {
    i64::from(v)
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn key_of(name: &str) -> String {
    name.trim().to_lowercase()
}

const USER_COLUMNS: &str = "id, username, email, first_name, last_name, phone, note, status, apionly, password_hash, force_password_change, builtin, timezone, sms_email, sms_email_format, contact_method, created_on, created_by, last_login_on, auth_source, mfa_deadline, support_until";
const ROLE_COLUMNS: &str =
    "id, name, description, privileges, builtin, two_fa_required, created_on";
const TOKEN_COLUMNS: &str = "id, user_id, kind, access_id, access_key_enc, bearer_hash, dashboard_id, status, note, created_on, created_by, expires_on, last_used_on, last_auth_ip, recent_ips";
const AUDIT_COLUMNS: &str = "seq, happened_on, username, user_id, token_id, ip, user_agent, method, path, status, action, description, prev_hash, hash";

fn user_from_row(r: &AnyRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        email: r.try_get("email")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        phone: r.try_get("phone")?,
        note: r.try_get("note")?,
        status: r.try_get("status")?,
        apionly: r.try_get::<i64, _>("apionly")? != 0,
        password_hash: r.try_get("password_hash")?,
        force_password_change: r.try_get::<i64, _>("force_password_change")? != 0,
        builtin: r.try_get("builtin")?,
        timezone: r.try_get("timezone")?,
        sms_email: r.try_get("sms_email")?,
        sms_email_format: r.try_get("sms_email_format")?,
        contact_method: r.try_get("contact_method")?,
        created_on: r.try_get("created_on")?,
        created_by: r.try_get("created_by")?,
        last_login_on: r.try_get("last_login_on")?,
        auth_source: r.try_get("auth_source")?,
        mfa_deadline: r.try_get("mfa_deadline")?,
        support_until: r.try_get("support_until")?,
        role_ids: Vec::new(),
    })
}

fn role_from_row(r: &AnyRow) -> StoreResult<RoleRecord> {
    let privileges: String = r.try_get("privileges")?;
    let privileges: Vec<Privilege> = serde_json::from_str(&privileges)
        .map_err(|e| StoreError::Corrupt(format!("role privileges: {e}")))?;
    Ok(RoleRecord {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        privileges,
        builtin: r.try_get::<i64, _>("builtin")? != 0,
        two_fa_required: r.try_get::<i64, _>("two_fa_required")? != 0,
        created_on: r.try_get("created_on")?,
    })
}

fn token_from_row(r: &AnyRow) -> StoreResult<TokenRecord> {
    let kind: String = r.try_get("kind")?;
    let recent: String = r.try_get("recent_ips")?;
    Ok(TokenRecord {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: TokenType::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("token kind `{kind}`")))?,
        access_id: r.try_get("access_id")?,
        access_key_enc: r.try_get("access_key_enc")?,
        bearer_hash: r.try_get("bearer_hash")?,
        dashboard_id: r.try_get("dashboard_id")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
        created_on: r.try_get("created_on")?,
        created_by: r.try_get("created_by")?,
        expires_on: r.try_get("expires_on")?,
        last_used_on: r.try_get("last_used_on")?,
        last_auth_ip: r.try_get("last_auth_ip")?,
        recent_ips: serde_json::from_str(&recent).unwrap_or_default(),
    })
}

fn audit_from_row(r: &AnyRow) -> StoreResult<AuditEntry> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        event: AuditEvent {
            happened_on_ms: r.try_get("happened_on")?,
            username: r.try_get("username")?,
            user_id: r.try_get("user_id")?,
            token_id: r.try_get("token_id")?,
            ip: r.try_get("ip")?,
            user_agent: r.try_get("user_agent")?,
            method: r.try_get("method")?,
            path: r.try_get("path")?,
            status: r.try_get("status")?,
            action: r.try_get("action")?,
            description: r.try_get("description")?,
        },
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

pub(crate) fn privileges_json(p: &[Privilege]) -> StoreResult<String> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl SqlStore {
    async fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await?;
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        conn.execute(begin).await?;
        let result = self.migrate_locked(&mut conn).await;
        match result {
            Ok(()) => {
                conn.execute("COMMIT").await?;
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(e)
            }
        }
    }

    async fn migrate_locked(&self, conn: &mut AnyConnection) -> StoreResult<()> {
        if self.backend == Backend::Postgres {
            conn.execute("SELECT pg_advisory_xact_lock(7268190421)")
                .await?;
        }
        // Under the lock: PostgreSQL's IF NOT EXISTS does not protect concurrent creators.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_on BIGINT NOT NULL)",
        )
        .await?;
        let current: Option<i64> = sqlx::query("SELECT MAX(version) AS v FROM schema_migrations")
            .fetch_one(&mut *conn)
            .await?
            .try_get("v")?;
        let current = current.unwrap_or(0);
        if current > schema::latest_version() {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} is newer than this build of palisade knows ({}); upgrade palisade",
                schema::latest_version()
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            for stmt in schema::statements(m, self.backend) {
                conn.execute(stmt.as_str()).await?;
            }
            sqlx::query(
                "INSERT INTO schema_migrations (version, description, applied_on) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.description)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
            tracing::info!(
                version = m.version,
                description = m.description,
                "applied schema migration"
            );
        }
        Ok(())
    }

    /// Begins a mutating transaction: locks the audit chain head first, which serialises
    /// writers (also across portal instances on PostgreSQL).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) async fn write_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub(crate) async fn append_in(
        &self,
        conn: &mut AnyConnection,
        events: &[AuditEvent],
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        let mut seq: i64 = head.try_get("seq")?;
        let head_hash: String = head.try_get("hash")?;
        let mut prev = [0u8; 32];
        hex::decode_to_slice(&head_hash, &mut prev)
            .map_err(|_| StoreError::Corrupt("audit head hash".into()))?;
        for e in events {
            seq += 1;
            let hash = entry_hash(&self.chain_key, &prev, &chained_fields(seq, e));
            sqlx::query(
                "INSERT INTO audit_log (seq, happened_on, username, user_id, token_id, ip, user_agent, method, path, status, action, description, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(seq)
            .bind(e.happened_on_ms)
            .bind(&e.username)
            .bind(e.user_id)
            .bind(e.token_id)
            .bind(&e.ip)
            .bind(&e.user_agent)
            .bind(&e.method)
            .bind(&e.path)
            .bind(e.status)
            .bind(&e.action)
            .bind(&e.description)
            .bind(hex::encode(prev))
            .bind(hex::encode(hash))
            .execute(&mut *conn)
            .await?;
            prev = hash;
        }
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(seq)
            .bind(hex::encode(prev))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    pub(crate) async fn user_in(
        &self,
        conn: &mut AnyConnection,
        id: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut user = user_from_row(&row)?;
        user.role_ids =
            sqlx::query("SELECT role_id FROM user_roles WHERE user_id = $1 ORDER BY role_id")
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>("role_id"))
                .collect::<Result<_, _>>()?;
        Ok(Some(user))
    }

    pub(crate) async fn administrator_role_id(
        &self,
        conn: &mut AnyConnection,
    ) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT id FROM roles WHERE builtin = 1 AND name_key = $1")
            .bind(ADMINISTRATOR_ROLE)
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("id")?),
            None => None,
        })
    }

    async fn count_i64(&self, conn: &mut AnyConnection, sql: &str, arg: i64) -> StoreResult<i64> {
        let row = sqlx::query(sql).bind(arg).fetch_one(&mut *conn).await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// Applies the role rules to a change of `user` into (roles, status); `None` = deleted.
    async fn check_user_change(
        &self,
        conn: &mut AnyConnection,
        user: &UserRecord,
        after: Option<(&[i64], &str)>,
    ) -> StoreResult<()> {
        let Some(admin_id) = self.administrator_role_id(conn).await? else {
            return Ok(());
        };
        let was_administrator = user.role_ids.contains(&admin_id);
        let (holds_after, active_after) = match after {
            Some((roles, status)) => (roles.contains(&admin_id), status == "active"),
            None => (false, false),
        };
        let active_tokens = self
            .count_i64(
                conn,
                "SELECT COUNT(*) FROM api_tokens WHERE user_id = $1 AND status = 2",
                user.id,
            )
            .await?;
        let active_administrators = self
            .count_i64(
                conn,
                "SELECT COUNT(*) FROM users u JOIN user_roles ur ON ur.user_id = u.id WHERE ur.role_id = $1 AND u.status = 'active'",
                admin_id,
            )
            .await?;
        policy::check_role_change(&RoleChange {
            was_administrator,
            was_active_administrator: was_administrator && user.is_active(),
            holds_administrator_after: holds_after,
            active_after,
            active_tokens: usize::try_from(active_tokens).unwrap_or(usize::MAX),
            active_administrators: usize::try_from(active_administrators).unwrap_or(0),
        })?;
        Ok(())
    }

    pub(crate) async fn set_roles_in(
        &self,
        conn: &mut AnyConnection,
        user_id: i64,
        roles: &[i64],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        for role in roles {
            let exists = self
                .count_i64(conn, "SELECT COUNT(*) FROM roles WHERE id = $1", *role)
                .await?;
            if exists == 0 {
                return Err(StoreError::NotFound(format!("role {role}")));
            }
            sqlx::query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2)")
                .bind(user_id)
                .bind(*role)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn token_in(
        &self,
        conn: &mut AnyConnection,
        id: i64,
    ) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    pub(crate) async fn role_in(
        &self,
        conn: &mut AnyConnection,
        id: i64,
    ) -> StoreResult<Option<RoleRecord>> {
        let row = sqlx::query(&format!("SELECT {ROLE_COLUMNS} FROM roles WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        row.as_ref().map(role_from_row).transpose()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn map_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(what())
    } else {
        StoreError::Database(e)
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.backend
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
            .fetch_all(&mut *conn)
            .await?;
        let mut users: Vec<UserRecord> =
            rows.iter().map(user_from_row).collect::<Result<_, _>>()?;
        let links =
            sqlx::query("SELECT user_id, role_id FROM user_roles ORDER BY user_id, role_id")
                .fetch_all(&mut *conn)
                .await?;
        let mut by_user: std::collections::HashMap<i64, Vec<i64>> = Default::default();
        for l in &links {
            by_user
                .entry(l.try_get("user_id")?)
                .or_default()
                .push(l.try_get("role_id")?);
        }
        for u in &mut users {
            u.role_ids = by_user.remove(&u.id).unwrap_or_default();
        }
        Ok(users)
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        self.user_in(&mut conn, id).await
    }

    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query("SELECT id FROM users WHERE username_key = $1")
            .bind(key_of(username))
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(r) => self.user_in(&mut conn, r.try_get("id")?).await,
            None => Ok(None),
        }
    }

    async fn create_user(&self, new: NewUser, audit: AuditEvent) -> StoreResult<UserRecord> {
        let mut tx = self.write_tx().await?;
        if let Some(admin_id) = self.administrator_role_id(&mut tx).await? {
            // A new user has no tokens, so only the role rules' other half could apply;
            // nothing to check, but keep the lookup cheap and explicit.
            let _ = admin_id;
        }
        let row = sqlx::query(
            "INSERT INTO users (username, username_key, email, first_name, last_name, phone, note, status, apionly, password_hash, force_password_change, builtin, timezone, sms_email, sms_email_format, contact_method, created_on, created_by, auth_source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id",
        )
        .bind(&new.username)
        .bind(key_of(&new.username))
        .bind(&new.email)
        .bind(&new.first_name)
        .bind(&new.last_name)
        .bind(&new.phone)
        .bind(&new.note)
        .bind(&new.status)
        .bind(b(new.apionly))
        .bind(&new.password_hash)
        .bind(b(new.force_password_change))
        .bind(&new.builtin)
        .bind(&new.timezone)
        .bind(&new.sms_email)
        .bind(&new.sms_email_format)
        .bind(&new.contact_method)
        .bind(new.created_on)
        .bind(&new.created_by)
        .bind(if new.auth_source.is_empty() { "local" } else { new.auth_source.as_str() })
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("user `{}`", new.username)))?;
        let id: i64 = row.try_get("id")?;
        self.set_roles_in(&mut tx, id, &new.role_ids).await?;
        let mut audit = audit;
        audit.description = audit.description.replace("{id}", &id.to_string());
        self.append_in(&mut tx, &[audit]).await?;
        let user = self
            .user_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn update_user(
        &self,
        id: i64,
        change: UserChange,
        audit: AuditEvent,
    ) -> StoreResult<UserRecord> {
        let mut tx = self.write_tx().await?;
        let user = self
            .user_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        let roles_after = change
            .role_ids
            .clone()
            .unwrap_or_else(|| user.role_ids.clone());
        let status_after = change.status.clone().unwrap_or_else(|| user.status.clone());
        self.check_user_change(&mut tx, &user, Some((&roles_after, &status_after)))
            .await?;
        let username = change
            .username
            .clone()
            .unwrap_or_else(|| user.username.clone());
        let password_hash = match &change.password_hash {
            Some(h) => h.clone(),
            None => user.password_hash.clone(),
        };
        sqlx::query(
            "UPDATE users SET username = $1, username_key = $2, email = $3, first_name = $4, last_name = $5, phone = $6, note = $7, status = $8, apionly = $9, password_hash = $10, force_password_change = $11, timezone = $12, sms_email = $13, sms_email_format = $14, contact_method = $15, mfa_deadline = $16, support_until = $17, last_login_on = $18 WHERE id = $19",
        )
        .bind(&username)
        .bind(key_of(&username))
        .bind(change.email.as_ref().unwrap_or(&user.email))
        .bind(change.first_name.as_ref().unwrap_or(&user.first_name))
        .bind(change.last_name.as_ref().unwrap_or(&user.last_name))
        .bind(change.phone.as_ref().unwrap_or(&user.phone))
        .bind(change.note.as_ref().unwrap_or(&user.note))
        .bind(&status_after)
        .bind(b(change.apionly.unwrap_or(user.apionly)))
        .bind(&password_hash)
        .bind(b(change.force_password_change.unwrap_or(user.force_password_change)))
        .bind(change.timezone.as_ref().unwrap_or(&user.timezone))
        .bind(change.sms_email.as_ref().unwrap_or(&user.sms_email))
        .bind(change.sms_email_format.as_ref().unwrap_or(&user.sms_email_format))
        .bind(change.contact_method.as_ref().unwrap_or(&user.contact_method))
        .bind(change.mfa_deadline.unwrap_or(user.mfa_deadline))
        .bind(change.support_until.unwrap_or(user.support_until))
        .bind(change.last_login_on.or(user.last_login_on))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("user `{username}`")))?;
        if change.role_ids.is_some() {
            self.set_roles_in(&mut tx, id, &roles_after).await?;
        }
        self.append_in(&mut tx, &[audit]).await?;
        let user = self
            .user_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn delete_user(&self, id: i64, audit: AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let user = self
            .user_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        if user.builtin.is_some() {
            return Err(StoreError::Immutable(format!(
                "`{}` is a built-in account and cannot be deleted",
                user.username
            )));
        }
        self.check_user_change(&mut tx, &user, None).await?;
        sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_roles WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_roles(&self) -> StoreResult<Vec<RoleRecord>> {
        let rows = sqlx::query(&format!("SELECT {ROLE_COLUMNS} FROM roles ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(role_from_row).collect()
    }

    async fn get_role(&self, id: i64) -> StoreResult<Option<RoleRecord>> {
        let mut conn = self.pool.acquire().await?;
        self.role_in(&mut conn, id).await
    }

    async fn get_role_by_name(&self, name: &str) -> StoreResult<Option<RoleRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {ROLE_COLUMNS} FROM roles WHERE name_key = $1"
        ))
        .bind(key_of(name))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(role_from_row).transpose()
    }

    async fn create_role(&self, new: NewRole, audit: AuditEvent) -> StoreResult<RoleRecord> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO roles (name, name_key, description, privileges, builtin, two_fa_required, created_on) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&new.name)
        .bind(key_of(&new.name))
        .bind(&new.description)
        .bind(privileges_json(&new.privileges)?)
        .bind(b(new.builtin))
        .bind(b(new.two_fa_required))
        .bind(new.created_on)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("role `{}`", new.name)))?;
        let id: i64 = row.try_get("id")?;
        let mut audit = audit;
        audit.description = audit.description.replace("{id}", &id.to_string());
        self.append_in(&mut tx, &[audit]).await?;
        let role = self
            .role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id}")))?;
        tx.commit().await?;
        Ok(role)
    }

    async fn update_role(
        &self,
        id: i64,
        change: RoleChangeSet,
        audit: AuditEvent,
    ) -> StoreResult<RoleRecord> {
        let mut tx = self.write_tx().await?;
        let role = self
            .role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id}")))?;
        if role.is_administrator() {
            return Err(StoreError::Immutable(
                "the built-in administrator role cannot be changed; create a custom role instead"
                    .into(),
            ));
        }
        let name = change.name.clone().unwrap_or_else(|| role.name.clone());
        if role.builtin && name != role.name {
            return Err(StoreError::Immutable(
                "built-in roles cannot be renamed".into(),
            ));
        }
        sqlx::query(
            "UPDATE roles SET name = $1, name_key = $2, description = $3, privileges = $4, two_fa_required = $5 WHERE id = $6",
        )
        .bind(&name)
        .bind(key_of(&name))
        .bind(change.description.as_ref().unwrap_or(&role.description))
        .bind(privileges_json(change.privileges.as_ref().unwrap_or(&role.privileges))?)
        .bind(b(change.two_fa_required.unwrap_or(role.two_fa_required)))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("role `{name}`")))?;
        self.append_in(&mut tx, &[audit]).await?;
        let role = self
            .role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id}")))?;
        tx.commit().await?;
        Ok(role)
    }

    async fn delete_role(&self, id: i64, audit: AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let role = self
            .role_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {id}")))?;
        if role.builtin {
            return Err(StoreError::Immutable(format!(
                "`{}` is a built-in role and cannot be deleted",
                role.name
            )));
        }
        let holders = self
            .count_i64(
                &mut tx,
                "SELECT COUNT(*) FROM user_roles WHERE role_id = $1",
                id,
            )
            .await?;
        if holders > 0 {
            return Err(StoreError::InUse(format!(
                "role `{}` is held by {holders} user(s); assign them other roles first",
                role.name
            )));
        }
        sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn role_user_counts(&self) -> StoreResult<Vec<(i64, i64)>> {
        let rows = sqlx::query("SELECT role_id, COUNT(*) AS n FROM user_roles GROUP BY role_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("role_id")?, r.try_get("n")?)))
            .collect()
    }

    async fn create_token(
        &self,
        _proof: policy::TokenPolicyChecked,
        new: NewToken,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.write_tx().await?;
        let owner = self
            .user_in(&mut tx, new.user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", new.user_id)))?;
        let admin_id = self.administrator_role_id(&mut tx).await?;
        // Checked again under the lock: the role may have changed since the caller looked.
        policy::check_token_owner(&OwnerFacts {
            is_support: owner.is_support(),
            holds_administrator: admin_id.is_some_and(|a| owner.role_ids.contains(&a)),
            active: owner.is_active(),
        })?;
        let row = sqlx::query(
            "INSERT INTO api_tokens (user_id, kind, access_id, access_key_enc, bearer_hash, status, note, created_on, created_by, expires_on, dashboard_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(new.user_id)
        .bind(new.kind.as_str())
        .bind(&new.access_id)
        .bind(&new.access_key_enc)
        .bind(&new.bearer_hash)
        .bind(TOKEN_ENABLED)
        .bind(&new.note)
        .bind(new.created_on)
        .bind(&new.created_by)
        .bind(new.expires_on)
        .bind(new.dashboard_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || "token".to_string()))?;
        let id: i64 = row.try_get("id")?;
        let mut audit = audit;
        audit.description = audit.description.replace("{id}", &id.to_string());
        self.append_in(&mut tx, &[audit]).await?;
        let token = self
            .token_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        tx.commit().await?;
        Ok(token)
    }

    async fn list_tokens(&self, owner: Option<i64>) -> StoreResult<Vec<TokenRecord>> {
        let rows = match owner {
            Some(uid) => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id"
                ))
                .bind(uid)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(token_from_row).collect()
    }

    async fn get_token(&self, id: i64) -> StoreResult<Option<TokenRecord>> {
        let mut conn = self.pool.acquire().await?;
        self.token_in(&mut conn, id).await
    }

    async fn find_token_by_access_id(&self, access_id: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE access_id = $1"
        ))
        .bind(access_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn find_token_by_hash(&self, hash_hex: &str) -> StoreResult<Option<TokenRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE bearer_hash = $1"
        ))
        .bind(hash_hex)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn update_token(
        &self,
        id: i64,
        change: TokenChange,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.write_tx().await?;
        let token = self
            .token_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))?;
        let status = change.status.unwrap_or(token.status);
        if status == TOKEN_ENABLED && token.status != TOKEN_ENABLED {
            // Re-enabling is creating power again: the owner must still pass the mandate.
            let owner = self
                .user_in(&mut tx, token.user_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {}", token.user_id)))?;
            let admin_id = self.administrator_role_id(&mut tx).await?;
            policy::check_token_owner(&OwnerFacts {
                is_support: owner.is_support(),
                holds_administrator: admin_id.is_some_and(|a| owner.role_ids.contains(&a)),
                active: owner.is_active(),
            })?;
        }
        sqlx::query("UPDATE api_tokens SET status = $1, note = $2 WHERE id = $3")
            .bind(status)
            .bind(change.note.as_ref().unwrap_or(&token.note))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        let token = self
            .token_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))?;
        tx.commit().await?;
        Ok(token)
    }

    async fn delete_token(&self, id: i64, audit: AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!("API token {id}")));
        }
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_token_use(
        &self,
        id: i64,
        used: TokenUse,
        audit: Option<AuditEvent>,
    ) -> StoreResult<()> {
        let recent = serde_json::to_string(&used.recent_ips).unwrap_or_else(|_| "[]".into());
        match audit {
            Some(event) => {
                let mut tx = self.write_tx().await?;
                sqlx::query("UPDATE api_tokens SET last_used_on = $1, last_auth_ip = $2, recent_ips = $3 WHERE id = $4")
                    .bind(used.at)
                    .bind(&used.ip)
                    .bind(&recent)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                self.append_in(&mut tx, &[event]).await?;
                tx.commit().await?;
            }
            None => {
                sqlx::query("UPDATE api_tokens SET last_used_on = $1, last_auth_ip = $2, recent_ips = $3 WHERE id = $4")
                    .bind(used.at)
                    .bind(&used.ip)
                    .bind(&recent)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
            }
        }
        Ok(())
    }

    async fn set_token_expiry(
        &self,
        id: i64,
        expires_on: i64,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE api_tokens SET expires_on = $1 WHERE id = $2")
            .bind(expires_on)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("API token {id}")));
        }
        self.append_in(&mut tx, &[audit]).await?;
        let token = self
            .token_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {id}")))?;
        tx.commit().await?;
        Ok(token)
    }

    async fn append_audit(&self, events: Vec<AuditEvent>) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        self.append_in(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn scan_audit(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq ASC LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn get_audit(&self, seq: i64) -> StoreResult<Option<AuditEntry>> {
        let row = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq = $1"
        ))
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(audit_from_row).transpose()
    }

    async fn audit_head(&self) -> StoreResult<(i64, String)> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("value")?),
            None => None,
        })
    }

    async fn set_setting(&self, key: &str, value: &str, audit: AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2)")
            .bind(key)
            .bind(value)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }
}
