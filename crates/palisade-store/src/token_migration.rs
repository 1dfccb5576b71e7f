//! The token migration half of the store interface: tokens imported from older systems, the
//! retirement of a token replaced by a least-privilege one, and the token's API calls read
//! back from the audit log. [`crate::Store`] includes it.
//!
//! Kept in tables of their own (`token_imports`, `token_migrations`) so that a token record
//! stays what it is; both are keyed by token id.

use crate::{
    AuditEvent, NewRole, NewToken, NewUser, RoleRecord, StoreResult, TokenRecord, UserRecord,
};
use async_trait::async_trait;
use palisade_core::policy::{TokenImportChecked, TokenPolicyChecked};

/// Where a replaced token is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetirementState {
    /// The new token exists; the old one still works until its owner confirms.
    Retiring,
    /// The old token is disabled; it is deleted after a grace period without use.
    Disabled,
    /// The old token is deleted.
    Deleted,
}

impl RetirementState {
    /// Stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetirementState::Retiring => "retiring",
            RetirementState::Disabled => "disabled",
            RetirementState::Deleted => "deleted",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "retiring" => Some(RetirementState::Retiring),
            "disabled" => Some(RetirementState::Disabled),
            "deleted" => Some(RetirementState::Deleted),
            _ => None,
        }
    }
}

/// A token's migration to a least-privilege replacement.
#[derive(Debug, Clone, PartialEq)]
pub struct MigrationRecord {
    /// The token being replaced.
    pub old_token_id: i64,
    /// Its replacement.
    pub new_token_id: Option<i64>,
    /// The API-only user holding the replacement.
    pub new_user_id: Option<i64>,
    /// The role made for that user.
    pub role_id: Option<i64>,
    /// Where the old token is.
    pub state: RetirementState,
    /// When the migration started (the old token became "retiring"), epoch ms.
    pub started_on: i64,
    /// When the old token was disabled, epoch ms.
    pub disabled_on: Option<i64>,
    /// The audit chain's length when it was disabled: later entries are later uses.
    pub disabled_seq: Option<i64>,
    /// Days of no use after which the disabled token is deleted.
    pub grace_days: i64,
    /// When the old token was deleted, epoch ms.
    pub deleted_on: Option<i64>,
    /// When the grace period was last checked, epoch ms.
    pub checked_on: Option<i64>,
    /// Everything else, for display: owner, kind, names, privileges, use during grace.
    pub data: serde_json::Value,
}

/// The start of a migration: everything is created in one transaction.
#[derive(Debug, Clone)]
pub struct StartMigration {
    /// The token being replaced.
    pub old_token_id: i64,
    /// The least-privilege role.
    pub role: NewRole,
    /// The API-only user (its roles are set to the new role).
    pub user: NewUser,
    /// The replacement token (its owner is set to the new user).
    pub token: NewToken,
    /// Days of grace, as configured now.
    pub grace_days: i64,
    /// Display data of the record.
    pub data: serde_json::Value,
}

/// What a migration start created.
#[derive(Debug, Clone)]
pub struct MigrationStarted {
    /// The role.
    pub role: RoleRecord,
    /// The API-only user.
    pub user: UserRecord,
    /// The replacement token.
    pub token: TokenRecord,
    /// The migration.
    pub record: MigrationRecord,
}

/// A token imported from an older system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenImport {
    /// The token.
    pub token_id: i64,
    /// When, epoch ms.
    pub imported_on: i64,
    /// Who imported it.
    pub imported_by: String,
    /// Where it came from (free text).
    pub source: String,
}

/// Calls with the same method, path (and query), status and source address, aggregated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallAggregate {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status.
    pub status: Option<i64>,
    /// Source address.
    pub ip: String,
    /// How many.
    pub count: i64,
    /// First, epoch ms.
    pub first_on: i64,
    /// Last, epoch ms.
    pub last_on: i64,
}

/// Audit actions that record an API call (answered, refused, rate limited).
pub const CALL_ACTIONS: [&str; 3] = ["api.call", "api.denied", "api.ratelimited"];

/// Storage for token imports and migrations.
#[async_trait]
pub trait TokenMigrationStore: Send + Sync {
    /// Stores a token brought from an older system under its original owner (even one the
    /// mandate excludes: `proof` comes from [`palisade_core::policy::check_token_import`]),
    /// flagged as imported, with its audit entry (`{id}` in the description is replaced).
    async fn import_token(
        &self,
        proof: TokenImportChecked,
        new: NewToken,
        source: String,
        audit: AuditEvent,
    ) -> StoreResult<TokenRecord>;
    /// Every imported token's import record.
    async fn list_token_imports(&self) -> StoreResult<Vec<TokenImport>>;
    /// One token's import record.
    async fn get_token_import(&self, token_id: i64) -> StoreResult<Option<TokenImport>>;

    /// A token's API calls recorded after audit entry `after_seq` and at or after `since_ms`,
    /// aggregated; at most `limit` aggregates.
    async fn token_calls(
        &self,
        token_id: i64,
        since_ms: i64,
        after_seq: i64,
        limit: i64,
    ) -> StoreResult<Vec<CallAggregate>>;

    /// Creates the role, the API-only user, the replacement token and the migration record
    /// (state retiring) in one transaction. The audit entries are written in order; in their
    /// descriptions `{roleId}`, `{userId}` and `{tokenId}` are replaced.
    async fn start_token_migration(
        &self,
        proof: TokenPolicyChecked,
        start: StartMigration,
        audit: Vec<AuditEvent>,
    ) -> StoreResult<MigrationStarted>;
    /// One migration, by the replaced token.
    async fn get_token_migration(&self, old_token_id: i64) -> StoreResult<Option<MigrationRecord>>;
    /// Every migration.
    async fn list_token_migrations(&self) -> StoreResult<Vec<MigrationRecord>>;
    /// Disables the old token and moves the migration to `disabled` (from `retiring`; from
    /// `disabled` this restarts the grace period), noting the audit chain's length (later
    /// entries are later uses) and replacing `data` when given, in one transaction.
    async fn disable_migrated_token(
        &self,
        old_token_id: i64,
        now_ms: i64,
        grace_days: i64,
        data: Option<serde_json::Value>,
        audit: AuditEvent,
    ) -> StoreResult<MigrationRecord>;
    /// Records a grace-period check (its time, and in `data` what used the token).
    async fn note_migration_check(
        &self,
        old_token_id: i64,
        now_ms: i64,
        data: serde_json::Value,
        audit: Option<AuditEvent>,
    ) -> StoreResult<MigrationRecord>;
    /// Deletes the old token and moves the migration to `deleted`, in one transaction; refused
    /// unless the migration is `disabled` and no API call with the token was recorded after
    /// it was disabled.
    async fn delete_migrated_token(
        &self,
        old_token_id: i64,
        now_ms: i64,
        audit: AuditEvent,
    ) -> StoreResult<MigrationRecord>;
}
