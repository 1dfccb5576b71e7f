//! Palisade's storage: one interface, [`Store`], with two real backends behind it,
//! SQLite (the embedded default) and PostgreSQL (for several portal instances behind a
//! load balancer).
//!
//! Both backends run the same SQL through sqlx's `Any` driver; only the schema's DDL differs
//! (see [`schema`]). Every mutation is one transaction that also appends its audit entry to
//! the hash chain, so a change and its audit record are committed together or not at all.
//! Mutating transactions start by locking the audit chain head, which serialises writers
//! across portal instances and keeps the chain linear.
//!
//! Rules that must hold across concurrent writers (a token owner never holds
//! `administrator`; one active administrator always remains) are checked inside those
//! transactions with [`palisade_core::policy`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), palisade_store::StoreError> {
//! use palisade_store::Store;
//! let store = palisade_store::open("sqlite://palisade.db", b"chain key".to_vec()).await?;
//! let users = store.list_users().await?;
//! # Ok(()) }
//! ```

pub mod alerting;
pub mod compliance;
pub mod inventory;
pub mod objects;
mod records;
pub mod schema;
mod signin;
mod signin_records;
mod sql;
mod sql_objects;
mod sql_signin;
mod sql_token_migration;
pub mod token_migration;

pub use objects::ObjectStore;
pub use records::*;
pub use signin::{ChallengeChangeFn, LoginStateChangeFn, SessionChangeFn, SigninStore};
pub use signin_records::*;
pub use sql::{open, SqlStore};
pub use token_migration::TokenMigrationStore;

use async_trait::async_trait;
use palisade_core::policy::{RoleChangeRefusal, TokenPolicyChecked, TokenRefusal};
use std::sync::Arc;

/// Errors of the store. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A rule on users and roles refuses the change.
    #[error(transparent)]
    RoleChange(#[from] RoleChangeRefusal),
    /// The token mandate refuses the change.
    #[error(transparent)]
    Token(#[from] TokenRefusal),
    /// The object is in use and cannot be removed.
    #[error("{0}")]
    InUse(String),
    /// A built-in object cannot be changed that way.
    #[error("{0}")]
    Immutable(String),
    /// The database URL is not usable.
    #[error("unsupported database URL (use sqlite://PATH or postgres://...)")]
    BadUrl,
    /// The database failed (connection, I/O, constraint). Details go to the log only.
    #[error("database error")]
    Database(#[source] sqlx::Error),
    /// The change is invalid (refused by a rule checked under the write lock).
    #[error("{0}")]
    Invalid(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Shared handle to a store.
pub type DynStore = Arc<dyn Store>;

/// The storage interface of the portal.
#[async_trait]
pub trait Store: SigninStore + ObjectStore + TokenMigrationStore + Send + Sync + 'static {
    /// Which backend this is.
    fn backend(&self) -> Backend;

    // ---- users ----
    /// All users, by id.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// One user.
    async fn get_user(&self, id: i64) -> StoreResult<Option<UserRecord>>;
    /// One user by name (case-insensitive).
    async fn get_user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Creates a user.
    async fn create_user(&self, new: NewUser, audit: AuditEvent) -> StoreResult<UserRecord>;
    /// Changes a user, checking the role rules inside the transaction.
    async fn update_user(
        &self,
        id: i64,
        change: UserChange,
        audit: AuditEvent,
    ) -> StoreResult<UserRecord>;
    /// Deletes a user and its tokens, checking the role rules.
    async fn delete_user(&self, id: i64, audit: AuditEvent) -> StoreResult<()>;

    // ---- roles ----
    /// All roles, by id.
    async fn list_roles(&self) -> StoreResult<Vec<RoleRecord>>;
    /// One role.
    async fn get_role(&self, id: i64) -> StoreResult<Option<RoleRecord>>;
    /// One role by name.
    async fn get_role_by_name(&self, name: &str) -> StoreResult<Option<RoleRecord>>;
    /// Creates a role.
    async fn create_role(&self, new: NewRole, audit: AuditEvent) -> StoreResult<RoleRecord>;
    /// Changes a role (not a built-in one).
    async fn update_role(
        &self,
        id: i64,
        change: RoleChangeSet,
        audit: AuditEvent,
    ) -> StoreResult<RoleRecord>;
    /// Deletes a role that no user holds (not a built-in one).
    async fn delete_role(&self, id: i64, audit: AuditEvent) -> StoreResult<()>;
    /// How many users hold each role.
    async fn role_user_counts(&self) -> StoreResult<Vec<(i64, i64)>>;

    // ---- tokens ----
    /// Creates a token; the owner passed the mandate (`proof`), and it is checked again in
    /// the transaction.
    async fn create_token(
        &self,
        proof: TokenPolicyChecked,
        new: NewToken,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord>;
    /// Tokens of one owner, or of everyone.
    async fn list_tokens(&self, owner: Option<i64>) -> StoreResult<Vec<TokenRecord>>;
    /// One token.
    async fn get_token(&self, id: i64) -> StoreResult<Option<TokenRecord>>;
    /// The token with this access id.
    async fn find_token_by_access_id(&self, access_id: &str) -> StoreResult<Option<TokenRecord>>;
    /// The Bearer token with this keyed hash.
    async fn find_token_by_hash(&self, hash_hex: &str) -> StoreResult<Option<TokenRecord>>;
    /// Changes status or note.
    async fn update_token(
        &self,
        id: i64,
        change: TokenChange,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord>;
    /// Deletes a token.
    async fn delete_token(&self, id: i64, audit: AuditEvent) -> StoreResult<()>;
    /// Records that a token was used (time, address, recent addresses); `audit` is written
    /// when the address is new.
    async fn record_token_use(
        &self,
        id: i64,
        used: TokenUse,
        audit: Option<AuditEvent>,
    ) -> StoreResult<()>;

    /// Sets a token's expiry (epoch ms); the compliance fix for tokens without one.
    async fn set_token_expiry(
        &self,
        id: i64,
        expires_on: i64,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord>;

    // ---- audit ----
    /// Appends entries to the chain, in order, in one transaction.
    async fn append_audit(&self, events: Vec<AuditEvent>) -> StoreResult<()>;
    /// Entries with `seq < before` (or the newest), newest first, at most `limit`.
    async fn list_audit(&self, before: Option<i64>, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// Entries with `seq > after`, oldest first, at most `limit` (for verification).
    async fn scan_audit(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// One entry.
    async fn get_audit(&self, seq: i64) -> StoreResult<Option<AuditEntry>>;
    /// The chain head: entry count and last hash (hex).
    async fn audit_head(&self) -> StoreResult<(i64, String)>;

    // ---- settings ----
    /// A setting's value.
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets a setting.
    async fn set_setting(&self, key: &str, value: &str, audit: AuditEvent) -> StoreResult<()>;
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}
