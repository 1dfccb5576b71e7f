//! The portal: the store, the keys, the clock and password hashing, shared by the HTTP
//! server and the admin CLI so that both apply the same rules.

use crate::keys::Keys;
use crate::passwords::PasswordHashing;
use palisade_core::policy::OwnerFacts;
use palisade_core::privilege::Privilege;
use palisade_store::{AuditEvent, DynStore, RoleRecord, UserRecord};
use std::sync::Arc;

/// A source of the current time, so that tests can set it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Everything an operation needs.
#[derive(Clone)]
pub struct Portal {
    /// Storage.
    pub store: DynStore,
    /// Keys derived from the master key.
    pub keys: Arc<Keys>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Argon2id.
    pub hashing: PasswordHashing,
}

impl std::fmt::Debug for Portal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portal")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

/// Who acts, from where: the source of every audit entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// User name (or `System:cli`).
    pub username: String,
    /// User id.
    pub user_id: Option<i64>,
    /// Token id.
    pub token_id: Option<i64>,
    /// Source address.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
    /// HTTP method.
    pub method: String,
    /// Request path and query.
    pub path: String,
}

impl Actor {
    /// The offline admin CLI, run by whoever can read the data directory.
    pub fn cli() -> Actor {
        Actor {
            username: "System:cli".into(),
            ip: "local".into(),
            user_agent: format!("palisade-cli/{}", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        }
    }

    /// The server itself (bootstrap, housekeeping).
    pub fn system(what: &str) -> Actor {
        Actor {
            username: format!("System:{what}"),
            ip: "local".into(),
            ..Default::default()
        }
    }

    /// An audit event by this actor.
    pub fn event(&self, now_ms: i64, action: &str, description: String) -> AuditEvent {
        // Everything the built-in support account does is marked as support access.
        let description = if self.username == palisade_store::SUPPORT_USERNAME {
            format!("[support access] {description}")
        } else {
            description
        };
        AuditEvent {
            happened_on_ms: now_ms,
            username: self.username.clone(),
            user_id: self.user_id,
            token_id: self.token_id,
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status: None,
            action: action.into(),
            description,
        }
    }
}

impl Portal {
    /// Now, in epoch milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// What the token mandate needs to know about a user, given all roles.
    pub fn owner_facts(user: &UserRecord, roles: &[RoleRecord]) -> OwnerFacts {
        OwnerFacts {
            is_support: user.is_support(),
            holds_administrator: roles
                .iter()
                .any(|r| r.is_administrator() && user.role_ids.contains(&r.id)),
            active: user.is_active(),
        }
    }

    /// The union of the privileges of the user's roles.
    pub fn privileges_of(user: &UserRecord, roles: &[RoleRecord]) -> Vec<Privilege> {
        roles
            .iter()
            .filter(|r| user.role_ids.contains(&r.id))
            .flat_map(|r| r.privileges.iter().cloned())
            .collect()
    }
}
