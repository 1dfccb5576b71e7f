//! [`SigninStore`] over the same SQL pool.

use crate::signin::SigninStore;
use crate::sql::{is_unique_violation, SqlStore};
use crate::*;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::Row;

const SESSION_COLUMNS: &str = "id_hash, user_id, state, auth_method, csrf, ip, user_agent, created_on, last_seen, expires_on, factor_verified_on, data";
const FACTOR_COLUMNS: &str =
    "id, user_id, kind, label, secret_enc, data, confirmed, last_used_step, created_on, last_used_on";
const CHALLENGE_COLUMNS: &str = "id, user_id, session_hash, purpose, channel, factor_id, code_hash, created_on, expires_on, attempts, used";

fn json_of(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

fn session_from_row(r: &AnyRow) -> StoreResult<SessionRecord> {
    let data: String = r.try_get("data")?;
    Ok(SessionRecord {
        id_hash: r.try_get("id_hash")?,
        user_id: r.try_get("user_id")?,
        state: r.try_get("state")?,
        auth_method: r.try_get("auth_method")?,
        csrf: r.try_get("csrf")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        created_on: r.try_get("created_on")?,
        last_seen: r.try_get("last_seen")?,
        expires_on: r.try_get("expires_on")?,
        factor_verified_on: r.try_get("factor_verified_on")?,
        data: json_of(&data),
    })
}

fn factor_from_row(r: &AnyRow) -> StoreResult<FactorRecord> {
    let data: String = r.try_get("data")?;
    Ok(FactorRecord {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        kind: r.try_get("kind")?,
        label: r.try_get("label")?,
        secret_enc: r.try_get("secret_enc")?,
        data: json_of(&data),
        confirmed: r.try_get::<i64, _>("confirmed")? != 0,
        last_used_step: r.try_get("last_used_step")?,
        created_on: r.try_get("created_on")?,
        last_used_on: r.try_get("last_used_on")?,
    })
}

fn challenge_from_row(r: &AnyRow) -> StoreResult<ChallengeRecord> {
    Ok(ChallengeRecord {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        session_hash: r.try_get("session_hash")?,
        purpose: r.try_get("purpose")?,
        channel: r.try_get("channel")?,
        factor_id: r.try_get("factor_id")?,
        code_hash: r.try_get("code_hash")?,
        created_on: r.try_get("created_on")?,
        expires_on: r.try_get("expires_on")?,
        attempts: r.try_get("attempts")?,
        used: r.try_get::<i64, _>("used")? != 0,
    })
}

/// A user's lockout counters (defaults when none are stored yet).
async fn login_state_in(conn: &mut sqlx::AnyConnection, user_id: i64) -> StoreResult<LoginState> {
    let row = sqlx::query(
        "SELECT failures, locked_until, lock_count, sends FROM login_state WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => {
            let sends: String = r.try_get("sends")?;
            LoginState {
                failures: r.try_get("failures")?,
                locked_until: r.try_get("locked_until")?,
                lock_count: r.try_get("lock_count")?,
                sends: serde_json::from_str(&sends).unwrap_or_default(),
            }
        }
        None => LoginState::default(),
    })
}

/// Saves a session's mutable fields.
async fn save_session(conn: &mut sqlx::AnyConnection, s: &SessionRecord) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET state = $1, auth_method = $2, csrf = $3, last_seen = $4, factor_verified_on = $5, data = $6 WHERE id_hash = $7")
        .bind(&s.state)
        .bind(&s.auth_method)
        .bind(&s.csrf)
        .bind(s.last_seen)
        .bind(s.factor_verified_on)
        .bind(s.data.to_string())
        .bind(&s.id_hash)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl SqlStore {
    async fn insert_session(
        &self,
        conn: &mut sqlx::AnyConnection,
        s: &SessionRecord,
    ) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&s.id_hash)
        .bind(s.user_id)
        .bind(&s.state)
        .bind(&s.auth_method)
        .bind(&s.csrf)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .bind(s.created_on)
        .bind(s.last_seen)
        .bind(s.expires_on)
        .bind(s.factor_verified_on)
        .bind(s.data.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl SigninStore for SqlStore {
    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let mut conn = self.pool().acquire().await?;
        self.insert_session(&mut conn, s).await
    }

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn rotate_session(&self, old_hash: &str, new: &SessionRecord) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let gone = sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(old_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            // Another request moved or ended this session first: only one may step up.
            return Err(StoreError::NotFound("session".into()));
        }
        self.insert_session(&mut tx, new).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn modify_session(
        &self,
        id_hash: &str,
        f: crate::SessionChangeFn,
    ) -> StoreResult<Option<SessionRecord>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1"
        ))
        .bind(id_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut s = session_from_row(&row)?;
        f(&mut s);
        // The change may not move the session to another id.
        s.id_hash = id_hash.to_string();
        save_session(&mut tx, &s).await?;
        tx.commit().await?;
        Ok(Some(s))
    }

    async fn update_session(&self, s: &SessionRecord) -> StoreResult<()> {
        let mut conn = self.pool().acquire().await?;
        save_session(&mut conn, s).await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<u64> {
        Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    async fn list_factors(&self, user_id: i64) -> StoreResult<Vec<FactorRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {FACTOR_COLUMNS} FROM factors WHERE user_id = $1 ORDER BY id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(factor_from_row).collect()
    }

    async fn users_with_factors(&self) -> StoreResult<Vec<i64>> {
        let rows = sqlx::query("SELECT DISTINCT user_id FROM factors WHERE confirmed = 1")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("user_id")?))
            .collect()
    }

    async fn get_factor(&self, id: i64) -> StoreResult<Option<FactorRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {FACTOR_COLUMNS} FROM factors WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(factor_from_row).transpose()
    }

    async fn add_factor(
        &self,
        f: &NewFactor,
        audit: Option<AuditEvent>,
    ) -> StoreResult<FactorRecord> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO factors (user_id, kind, label, secret_enc, data, confirmed, created_on) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(f.user_id)
        .bind(&f.kind)
        .bind(&f.label)
        .bind(&f.secret_enc)
        .bind(f.data.to_string())
        .bind(i64::from(f.confirmed))
        .bind(f.created_on)
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        if let Some(mut a) = audit {
            a.description = a.description.replace("{id}", &id.to_string());
            self.append_in(&mut tx, &[a]).await?;
        }
        let row = sqlx::query(&format!(
            "SELECT {FACTOR_COLUMNS} FROM factors WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        let rec = factor_from_row(&row)?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn confirm_factor(
        &self,
        id: i64,
        step: Option<i64>,
        keep_session: &str,
        audit: AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE factors SET confirmed = 1, last_used_step = $1 WHERE id = $2 RETURNING user_id",
        )
        .bind(step)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("factor {id}")))?;
        let user_id: i64 = row.try_get("user_id")?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn consume_totp_step(&self, id: i64, step: i64, now_ms: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE factors SET last_used_step = $1, last_used_on = $2 WHERE id = $3 AND (last_used_step IS NULL OR last_used_step < $1)",
        )
        .bind(step)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn set_factor_data(&self, id: i64, data: &serde_json::Value) -> StoreResult<()> {
        sqlx::query("UPDATE factors SET data = $1 WHERE id = $2")
            .bind(data.to_string())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn touch_factor(&self, id: i64, now_ms: i64) -> StoreResult<()> {
        sqlx::query("UPDATE factors SET last_used_on = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    async fn delete_factor(
        &self,
        id: i64,
        keep_session: &str,
        audit: AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("DELETE FROM factors WHERE id = $1 RETURNING user_id")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("factor {id}")))?;
        let user_id: i64 = row.try_get("user_id")?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id_hash <> $2")
            .bind(user_id)
            .bind(keep_session)
            .execute(&mut *tx)
            .await?;
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn reset_factors(&self, user_id: i64, audit: AuditEvent) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for sql in [
            "DELETE FROM factors WHERE user_id = $1",
            "DELETE FROM recovery_codes WHERE user_id = $1",
            "DELETE FROM challenges WHERE user_id = $1",
            "DELETE FROM sessions WHERE user_id = $1",
        ] {
            sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
        }
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        audit: AuditEvent,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for h in hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(
        &self,
        user_id: i64,
        hash: &str,
        now_ms: i64,
        audit: AuditEvent,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let n = sqlx::query("UPDATE recovery_codes SET used_on = $1 WHERE user_id = $2 AND code_hash = $3 AND used_on IS NULL")
            .bind(now_ms)
            .bind(user_id)
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        self.append_in(&mut tx, &[audit]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn count_recovery_codes(&self, user_id: i64) -> StoreResult<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_on IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn put_challenge(&self, c: &ChallengeRecord) -> StoreResult<()> {
        sqlx::query(&format!(
            "INSERT INTO challenges ({CHALLENGE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(&c.id)
        .bind(c.user_id)
        .bind(&c.session_hash)
        .bind(&c.purpose)
        .bind(&c.channel)
        .bind(c.factor_id)
        .bind(&c.code_hash)
        .bind(c.created_on)
        .bind(c.expires_on)
        .bind(c.attempts)
        .bind(i64::from(c.used))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn get_challenge(&self, id: &str) -> StoreResult<Option<ChallengeRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(challenge_from_row).transpose()
    }

    async fn modify_challenge(
        &self,
        id: &str,
        f: crate::ChallengeChangeFn,
    ) -> StoreResult<Option<(ChallengeRecord, ChallengeRecord)>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM challenges WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let before = challenge_from_row(&row)?;
        let mut after = before.clone();
        f(&mut after);
        sqlx::query("UPDATE challenges SET attempts = $1, used = $2 WHERE id = $3")
            .bind(after.attempts)
            .bind(i64::from(after.used))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some((before, after)))
    }

    async fn get_login_state(&self, user_id: i64) -> StoreResult<LoginState> {
        let mut conn = self.pool().acquire().await?;
        login_state_in(&mut conn, user_id).await
    }

    async fn modify_login_state(
        &self,
        user_id: i64,
        f: crate::LoginStateChangeFn,
    ) -> StoreResult<(LoginState, LoginState)> {
        let mut tx = self.write_tx().await?;
        let before = login_state_in(&mut tx, user_id).await?;
        let after = f(&before);
        let sends = serde_json::to_string(&after.sends).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO login_state (user_id, failures, locked_until, lock_count, sends) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO UPDATE SET failures = $2, locked_until = $3, lock_count = $4, sends = $5",
        )
        .bind(user_id)
        .bind(after.failures)
        .bind(after.locked_until)
        .bind(after.lock_count)
        .bind(sends)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((before, after))
    }

    async fn find_sso_identity(
        &self,
        idp: &str,
        subject: &str,
    ) -> StoreResult<Option<SsoIdentity>> {
        let row = sqlx::query("SELECT idp, subject, user_id, amr, last_login_on FROM sso_identities WHERE idp = $1 AND subject = $2")
            .bind(idp)
            .bind(subject)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            Some(r) => {
                let amr: String = r.try_get("amr")?;
                Some(SsoIdentity {
                    idp: r.try_get("idp")?,
                    subject: r.try_get("subject")?,
                    user_id: r.try_get("user_id")?,
                    amr: serde_json::from_str(&amr).unwrap_or_default(),
                    last_login_on: r.try_get("last_login_on")?,
                })
            }
            None => None,
        })
    }

    async fn put_sso_identity(&self, i: &SsoIdentity) -> StoreResult<()> {
        let amr = serde_json::to_string(&i.amr).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "INSERT INTO sso_identities (idp, subject, user_id, amr, last_login_on) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idp, subject) DO UPDATE SET user_id = $3, amr = $4, last_login_on = $5",
        )
        .bind(&i.idp)
        .bind(&i.subject)
        .bind(i.user_id)
        .bind(amr)
        .bind(i.last_login_on)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn saml_assertion_first_use(
        &self,
        assertion_id: &str,
        expires_on_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool> {
        sqlx::query("DELETE FROM saml_replay WHERE expires_on < $1")
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        match sqlx::query("INSERT INTO saml_replay (assertion_id, expires_on) VALUES ($1, $2)")
            .bind(assertion_id)
            .bind(expires_on_ms)
            .execute(self.pool())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
