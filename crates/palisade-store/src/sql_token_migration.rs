//! [`TokenMigrationStore`] over the same SQL pool.

use crate::sql::{b, key_of, map_unique, privileges_json, SqlStore};
use crate::token_migration::*;
use crate::*;
use async_trait::async_trait;
use palisade_core::policy::{self, OwnerFacts, TokenImportChecked, TokenPolicyChecked};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const MIGRATION_COLUMNS: &str = "old_token_id, new_token_id, new_user_id, role_id, state, started_on, disabled_on, disabled_seq, grace_days, deleted_on, checked_on, data";

fn migration_from_row(r: &AnyRow) -> StoreResult<MigrationRecord> {
    let state: String = r.try_get("state")?;
    let data: String = r.try_get("data")?;
    Ok(MigrationRecord {
        old_token_id: r.try_get("old_token_id")?,
        new_token_id: r.try_get("new_token_id")?,
        new_user_id: r.try_get("new_user_id")?,
        role_id: r.try_get("role_id")?,
        state: RetirementState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("token migration state `{state}`")))?,
        started_on: r.try_get("started_on")?,
        disabled_on: r.try_get("disabled_on")?,
        disabled_seq: r.try_get("disabled_seq")?,
        grace_days: r.try_get("grace_days")?,
        deleted_on: r.try_get("deleted_on")?,
        checked_on: r.try_get("checked_on")?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}

fn import_from_row(r: &AnyRow) -> StoreResult<TokenImport> {
    Ok(TokenImport {
        token_id: r.try_get("token_id")?,
        imported_on: r.try_get("imported_on")?,
        imported_by: r.try_get("imported_by")?,
        source: r.try_get("source")?,
    })
}

fn json_text(v: &serde_json::Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "{}".into())
}

fn with_ids(mut e: AuditEvent, ids: &[(&str, i64)]) -> AuditEvent {
    for (k, v) in ids {
        e.description = e.description.replace(k, &v.to_string());
    }
    e
}

/// `action IN (...)` for the API-call actions, as a literal list (constants, not input).
fn call_actions_sql() -> String {
    CALL_ACTIONS
        .iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqlStore {
    async fn migration_in(
        &self,
        conn: &mut AnyConnection,
        old_token_id: i64,
    ) -> StoreResult<Option<MigrationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM token_migrations WHERE old_token_id = $1"
        ))
        .bind(old_token_id)
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(migration_from_row).transpose()
    }

    async fn insert_token_in(&self, conn: &mut AnyConnection, new: &NewToken) -> StoreResult<i64> {
        let row = sqlx::query(
            "INSERT INTO api_tokens (user_id, kind, access_id, access_key_enc, bearer_hash, status, note, created_on, created_by, expires_on) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
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
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| map_unique(e, || "a token with this access id or secret".to_string()))?;
        Ok(row.try_get("id")?)
    }

    async fn calls_after(
        &self,
        conn: &mut AnyConnection,
        token_id: i64,
        after_seq: i64,
    ) -> StoreResult<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE token_id = $1 AND seq > $2 AND action IN ({})",
            call_actions_sql()
        ))
        .bind(token_id)
        .bind(after_seq)
        .fetch_one(&mut *conn)
        .await?;
        Ok(row.try_get::<i64, _>("n")?)
    }
}

#[async_trait]
impl TokenMigrationStore for SqlStore {
    async fn import_token(
        &self,
        _proof: TokenImportChecked,
        new: NewToken,
        source: String,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord> {
        let mut tx = self.write_tx().await?;
        let owner = self
            .user_in(&mut tx, new.user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {}", new.user_id)))?;
        let admin_id = self.administrator_role_id(&mut tx).await?;
        // Checked again under the lock.
        policy::check_token_import(&OwnerFacts {
            is_support: owner.is_support(),
            holds_administrator: admin_id.is_some_and(|a| owner.role_ids.contains(&a)),
            active: owner.is_active(),
        })?;
        let id = self.insert_token_in(&mut tx, &new).await?;
        sqlx::query(
            "INSERT INTO token_imports (token_id, imported_on, imported_by, source) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(new.created_on)
        .bind(&new.created_by)
        .bind(&source)
        .execute(&mut *tx)
        .await?;
        self.append_in(&mut tx, &[with_ids(audit, &[("{id}", id)])])
            .await?;
        let token = self
            .token_in(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        tx.commit().await?;
        Ok(token)
    }

    async fn list_token_imports(&self) -> StoreResult<Vec<TokenImport>> {
        let rows = sqlx::query(
            "SELECT token_id, imported_on, imported_by, source FROM token_imports ORDER BY token_id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(import_from_row).collect()
    }

    async fn get_token_import(&self, token_id: i64) -> StoreResult<Option<TokenImport>> {
        let row = sqlx::query(
            "SELECT token_id, imported_on, imported_by, source FROM token_imports WHERE token_id = $1",
        )
        .bind(token_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(import_from_row).transpose()
    }

    async fn token_calls(
        &self,
        token_id: i64,
        since_ms: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CallAggregate>> {
        let rows = sqlx::query(&format!(
            "SELECT method, path, status, ip, COUNT(*) AS n, MIN(happened_on) AS first_on, MAX(happened_on) AS last_on \
             FROM audit_log WHERE token_id = $1 AND happened_on >= $2 AND seq > $3 AND action IN ({}) \
             GROUP BY method, path, status, ip ORDER BY MAX(happened_on) DESC LIMIT $4",
            call_actions_sql()
        ))
        .bind(token_id)
        .bind(since_ms)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CallAggregate {
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    status: r.try_get("status")?,
                    ip: r.try_get("ip")?,
                    count: r.try_get("n")?,
                    first_on: r.try_get("first_on")?,
                    last_on: r.try_get("last_on")?,
                })
            })
            .collect()
    }

    async fn start_token_migration(
        &self,
        _proof: TokenPolicyChecked,
        start: StartMigration,
        audit: Vec<AuditEvent>,
    ) -> StoreResult<MigrationStarted> {
        let mut tx = self.write_tx().await?;
        let old = self
            .token_in(&mut tx, start.old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API token {}", start.old_token_id)))?;
        if let Some(m) = self.migration_in(&mut tx, old.id).await? {
            return Err(StoreError::Conflict(format!(
                "a migration of token {} (state {})",
                old.id,
                m.state.as_str()
            )));
        }
        if self.migration_replacing_in(&mut tx, old.id).await? {
            return Err(StoreError::Invalid(format!(
                "token {} is itself a replacement made by the migration assistant; change its role instead",
                old.id
            )));
        }
        // The role.
        let role = &start.role;
        let row = sqlx::query(
            "INSERT INTO roles (name, name_key, description, privileges, builtin, two_fa_required, created_on) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&role.name)
        .bind(key_of(&role.name))
        .bind(&role.description)
        .bind(privileges_json(&role.privileges)?)
        .bind(b(false))
        .bind(b(role.two_fa_required))
        .bind(role.created_on)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("role `{}`", role.name)))?;
        let role_id: i64 = row.try_get("id")?;
        // The API-only user.
        let user = &start.user;
        let row = sqlx::query(
            "INSERT INTO users (username, username_key, email, first_name, last_name, phone, note, status, apionly, password_hash, force_password_change, builtin, timezone, sms_email, sms_email_format, contact_method, created_on, created_by, auth_source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id",
        )
        .bind(&user.username)
        .bind(key_of(&user.username))
        .bind(&user.email)
        .bind(&user.first_name)
        .bind(&user.last_name)
        .bind(&user.phone)
        .bind(&user.note)
        .bind("active")
        .bind(b(true))
        .bind(None::<String>)
        .bind(b(false))
        .bind(None::<String>)
        .bind(&user.timezone)
        .bind(&user.sms_email)
        .bind(&user.sms_email_format)
        .bind(&user.contact_method)
        .bind(user.created_on)
        .bind(&user.created_by)
        .bind("local")
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| map_unique(e, || format!("user `{}`", user.username)))?;
        let user_id: i64 = row.try_get("id")?;
        self.set_roles_in(&mut tx, user_id, &[role_id]).await?;
        // The mandate, checked under the lock on what was just written.
        let owner = self
            .user_in(&mut tx, user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {user_id}")))?;
        let admin_id = self.administrator_role_id(&mut tx).await?;
        policy::check_token_owner(&OwnerFacts {
            is_support: owner.is_support(),
            holds_administrator: admin_id.is_some_and(|a| owner.role_ids.contains(&a)),
            active: owner.is_active(),
        })?;
        // The replacement token.
        let mut new_token = start.token.clone();
        new_token.user_id = user_id;
        let token_id = self.insert_token_in(&mut tx, &new_token).await?;
        // The record.
        sqlx::query(
            "INSERT INTO token_migrations (old_token_id, new_token_id, new_user_id, role_id, state, started_on, grace_days, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(old.id)
        .bind(token_id)
        .bind(user_id)
        .bind(role_id)
        .bind(RetirementState::Retiring.as_str())
        .bind(new_token.created_on)
        .bind(start.grace_days)
        .bind(json_text(&start.data))
        .execute(&mut *tx)
        .await?;
        let ids = [
            ("{roleId}", role_id),
            ("{userId}", user_id),
            ("{tokenId}", token_id),
        ];
        let events: Vec<AuditEvent> = audit.into_iter().map(|e| with_ids(e, &ids)).collect();
        self.append_in(&mut tx, &events).await?;
        let role = self
            .role_in(&mut tx, role_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("role {role_id}")))?;
        let token = self
            .token_in(&mut tx, token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {token_id}")))?;
        let record = self
            .migration_in(&mut tx, old.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {}", old.id)))?;
        tx.commit().await?;
        Ok(MigrationStarted {
            role,
            user: owner,
            token,
            record,
        })
    }

    async fn get_token_migration(&self, old_token_id: i64) -> StoreResult<Option<MigrationRecord>> {
        let mut conn = self.pool().acquire().await?;
        self.migration_in(&mut conn, old_token_id).await
    }

    async fn list_token_migrations(&self) -> StoreResult<Vec<MigrationRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {MIGRATION_COLUMNS} FROM token_migrations ORDER BY old_token_id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(migration_from_row).collect()
    }

    async fn disable_migrated_token(
        &self,
        old_token_id: i64,
        now_ms: i64,
        grace_days: i64,
        data: Option<serde_json::Value>,
        audit: AuditEvent,
    ) -> StoreResult<MigrationRecord> {
        let mut tx = self.write_tx().await?;
        let m = self
            .migration_in(&mut tx, old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {old_token_id}")))?;
        if m.state == RetirementState::Deleted {
            return Err(StoreError::Invalid(format!(
                "token {old_token_id} is already deleted"
            )));
        }
        sqlx::query("UPDATE api_tokens SET status = $1 WHERE id = $2")
            .bind(TOKEN_DISABLED)
            .bind(old_token_id)
            .execute(&mut *tx)
            .await?;
        // Entries after this one are uses after the disabling.
        let head: i64 = sqlx::query("SELECT seq FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?
            .try_get("seq")?;
        self.append_in(&mut tx, &[audit]).await?;
        sqlx::query(
            "UPDATE token_migrations SET state = $1, disabled_on = $2, disabled_seq = $3, grace_days = $4, data = $5 WHERE old_token_id = $6",
        )
        .bind(RetirementState::Disabled.as_str())
        .bind(now_ms)
        .bind(head + 1)
        .bind(grace_days)
        .bind(json_text(data.as_ref().unwrap_or(&m.data)))
        .bind(old_token_id)
        .execute(&mut *tx)
        .await?;
        let m = self
            .migration_in(&mut tx, old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {old_token_id}")))?;
        tx.commit().await?;
        Ok(m)
    }

    async fn note_migration_check(
        &self,
        old_token_id: i64,
        now_ms: i64,
        data: serde_json::Value,
        audit: Option<AuditEvent>,
    ) -> StoreResult<MigrationRecord> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query(
            "UPDATE token_migrations SET checked_on = $1, data = $2 WHERE old_token_id = $3",
        )
        .bind(now_ms)
        .bind(json_text(&data))
        .bind(old_token_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "migration of token {old_token_id}"
            )));
        }
        if let Some(a) = audit {
            self.append_in(&mut tx, &[a]).await?;
        }
        let m = self
            .migration_in(&mut tx, old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {old_token_id}")))?;
        tx.commit().await?;
        Ok(m)
    }

    async fn delete_migrated_token(
        &self,
        old_token_id: i64,
        now_ms: i64,
        audit: AuditEvent,
    ) -> StoreResult<MigrationRecord> {
        let mut tx = self.write_tx().await?;
        let m = self
            .migration_in(&mut tx, old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {old_token_id}")))?;
        let (RetirementState::Disabled, Some(after)) = (m.state, m.disabled_seq) else {
            return Err(StoreError::Invalid(format!(
                "token {old_token_id} is {}, not disabled",
                m.state.as_str()
            )));
        };
        let used = self.calls_after(&mut tx, old_token_id, after).await?;
        if used > 0 {
            return Err(StoreError::InUse(format!(
                "token {old_token_id} was used {used} time(s) after it was disabled; it is kept"
            )));
        }
        sqlx::query("DELETE FROM api_tokens WHERE id = $1")
            .bind(old_token_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE token_migrations SET state = $1, deleted_on = $2, checked_on = $2 WHERE old_token_id = $3")
            .bind(RetirementState::Deleted.as_str())
            .bind(now_ms)
            .bind(old_token_id)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        let m = self
            .migration_in(&mut tx, old_token_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("migration of token {old_token_id}")))?;
        tx.commit().await?;
        Ok(m)
    }
}

impl SqlStore {
    /// Whether the token is the replacement of some migration.
    async fn migration_replacing_in(
        &self,
        conn: &mut AnyConnection,
        token_id: i64,
    ) -> StoreResult<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM token_migrations WHERE new_token_id = $1")
            .bind(token_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }
}
