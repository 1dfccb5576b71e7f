//! The sign-in half of the store interface: sessions, factors, recovery codes, challenges,
//! lockout counters, SSO identities and SAML replay protection. [`crate::Store`] includes it.

use crate::{
    AuditEvent, ChallengeRecord, FactorRecord, LoginState, NewFactor, SessionRecord, SsoIdentity,
    StoreResult,
};
use async_trait::async_trait;

/// A change to a session, applied atomically.
pub type SessionChangeFn = Box<dyn FnOnce(&mut SessionRecord) + Send>;
/// A change to a challenge, applied atomically.
pub type ChallengeChangeFn = Box<dyn FnOnce(&mut ChallengeRecord) + Send>;
/// A change to lockout counters, applied atomically.
pub type LoginStateChangeFn = Box<dyn FnOnce(&LoginState) -> LoginState + Send>;

/// Storage for sign-in.
#[async_trait]
pub trait SigninStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, s: &SessionRecord) -> StoreResult<()>;
    /// A session by id hash.
    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    /// Replaces a session by a new one (id rotation), atomically.
    async fn rotate_session(&self, old_hash: &str, new: &SessionRecord) -> StoreResult<()>;
    /// Changes a session under the store's write lock (no lost updates between concurrent
    /// requests); `None` when the session no longer exists.
    async fn modify_session(
        &self,
        id_hash: &str,
        f: SessionChangeFn,
    ) -> StoreResult<Option<SessionRecord>>;
    /// Saves a session's state, data, step-up time and last-seen time.
    async fn update_session(&self, s: &SessionRecord) -> StoreResult<()>;
    /// Ends a session.
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Ends every session of a user; returns how many.
    async fn delete_user_sessions(&self, user_id: i64) -> StoreResult<u64>;

    /// Factors of a user.
    async fn list_factors(&self, user_id: i64) -> StoreResult<Vec<FactorRecord>>;
    /// Users that have at least one confirmed factor.
    async fn users_with_factors(&self) -> StoreResult<Vec<i64>>;
    /// One factor.
    async fn get_factor(&self, id: i64) -> StoreResult<Option<FactorRecord>>;
    /// Adds a factor.
    async fn add_factor(
        &self,
        f: &NewFactor,
        audit: Option<AuditEvent>,
    ) -> StoreResult<FactorRecord>;
    /// Marks a factor confirmed (with the TOTP step that confirmed it) and ends the user's
    /// other sessions.
    async fn confirm_factor(
        &self,
        id: i64,
        step: Option<i64>,
        keep_session: &str,
        audit: AuditEvent,
    ) -> StoreResult<()>;
    /// Accepts a TOTP step only if it is newer than the last one used: true when accepted.
    async fn consume_totp_step(&self, id: i64, step: i64, now_ms: i64) -> StoreResult<bool>;
    /// Replaces a factor's non-secret data (e.g. a passkey's signature counter).
    async fn set_factor_data(&self, id: i64, data: &serde_json::Value) -> StoreResult<()>;
    /// Records a factor's use.
    async fn touch_factor(&self, id: i64, now_ms: i64) -> StoreResult<()>;
    /// Removes a factor and ends the user's other sessions.
    async fn delete_factor(
        &self,
        id: i64,
        keep_session: &str,
        audit: AuditEvent,
    ) -> StoreResult<()>;
    /// Removes every factor and recovery code of a user and ends all their sessions.
    async fn reset_factors(&self, user_id: i64, audit: AuditEvent) -> StoreResult<()>;

    /// Replaces a user's recovery codes by these hashes.
    async fn replace_recovery_codes(
        &self,
        user_id: i64,
        hashes: &[String],
        audit: AuditEvent,
    ) -> StoreResult<()>;
    /// Uses a recovery code once: true when it existed unused.
    async fn use_recovery_code(
        &self,
        user_id: i64,
        hash: &str,
        now_ms: i64,
        audit: AuditEvent,
    ) -> StoreResult<bool>;
    /// Unused recovery codes of a user.
    async fn count_recovery_codes(&self, user_id: i64) -> StoreResult<i64>;

    /// Stores a challenge.
    async fn put_challenge(&self, c: &ChallengeRecord) -> StoreResult<()>;
    /// A challenge.
    async fn get_challenge(&self, id: &str) -> StoreResult<Option<ChallengeRecord>>;
    /// Changes a challenge under the store's write lock; `None` when it does not exist.
    async fn modify_challenge(
        &self,
        id: &str,
        f: ChallengeChangeFn,
    ) -> StoreResult<Option<(ChallengeRecord, ChallengeRecord)>>;

    /// A user's lockout counters.
    async fn get_login_state(&self, user_id: i64) -> StoreResult<LoginState>;
    /// Changes a user's lockout counters under the store's write lock: returns (before, after).
    async fn modify_login_state(
        &self,
        user_id: i64,
        f: LoginStateChangeFn,
    ) -> StoreResult<(LoginState, LoginState)>;

    /// The user linked to an IdP subject.
    async fn find_sso_identity(&self, idp: &str, subject: &str)
        -> StoreResult<Option<SsoIdentity>>;
    /// Links (or updates the link of) an IdP subject.
    async fn put_sso_identity(&self, i: &SsoIdentity) -> StoreResult<()>;

    /// Remembers a SAML assertion id until it expires: true when it was not seen before.
    async fn saml_assertion_first_use(
        &self,
        assertion_id: &str,
        expires_on_ms: i64,
        now_ms: i64,
    ) -> StoreResult<bool>;
}
