//! Storage-side records: what the store keeps, independent of the wire shapes.

use palisade_core::privilege::Privilege;

/// Built-in user kinds.
pub const BUILTIN_SUPPORT: &str = "support";

/// Name of the built-in support account.
pub const SUPPORT_USERNAME: &str = "palisade-support";

/// Name of the built-in administrator role.
pub const ADMINISTRATOR_ROLE: &str = "administrator";

/// A user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Id.
    pub id: i64,
    /// Unique sign-in name.
    pub username: String,
    /// Email.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Phone.
    pub phone: String,
    /// Note.
    pub note: String,
    /// `active` or `suspended`.
    pub status: String,
    /// API-only.
    pub apionly: bool,
    /// Argon2id PHC string; `None` means no password sign-in.
    pub password_hash: Option<String>,
    /// Must change the password at next sign-in.
    pub force_password_change: bool,
    /// `Some("support")` for the built-in support account.
    pub builtin: Option<String>,
    /// IANA timezone.
    pub timezone: String,
    /// SMS email.
    pub sms_email: String,
    /// `sms` or `fullText`.
    pub sms_email_format: String,
    /// `email` or `smsemail`.
    pub contact_method: String,
    /// Creation time, epoch ms.
    pub created_on: i64,
    /// Who created it.
    pub created_by: String,
    /// Last sign-in, epoch ms.
    pub last_login_on: Option<i64>,
    /// `local` (password) or `sso` (signs in through an identity provider).
    pub auth_source: String,
    /// Per-user two-factor enrolment deadline, overriding the computed one, epoch ms.
    pub mfa_deadline: Option<i64>,
    /// The support account is enabled until then, epoch ms.
    pub support_until: Option<i64>,
    /// Role ids held.
    pub role_ids: Vec<i64>,
}

impl UserRecord {
    /// Whether the user signs in through single sign-on.
    pub fn is_sso(&self) -> bool {
        self.auth_source == "sso"
    }
    /// Whether this is the built-in support account.
    pub fn is_support(&self) -> bool {
        self.builtin.as_deref() == Some(BUILTIN_SUPPORT)
    }
    /// Whether the status is active.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A new user.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Fields as for [`UserRecord`]; `id`, `created_on` are assigned.
    pub username: String,
    /// Email.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Phone.
    pub phone: String,
    /// Note.
    pub note: String,
    /// `active` or `suspended`.
    pub status: String,
    /// API-only.
    pub apionly: bool,
    /// Argon2id hash.
    pub password_hash: Option<String>,
    /// Must change password.
    pub force_password_change: bool,
    /// Built-in kind.
    pub builtin: Option<String>,
    /// Timezone.
    pub timezone: String,
    /// SMS email.
    pub sms_email: String,
    /// SMS email format.
    pub sms_email_format: String,
    /// Contact method.
    pub contact_method: String,
    /// Creator.
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_on: i64,
    /// `local` or `sso`; empty means `local`.
    pub auth_source: String,
    /// Roles.
    pub role_ids: Vec<i64>,
}

/// A change to a user: `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New name.
    pub username: Option<String>,
    /// New email.
    pub email: Option<String>,
    /// New given name.
    pub first_name: Option<String>,
    /// New family name.
    pub last_name: Option<String>,
    /// New phone.
    pub phone: Option<String>,
    /// New note.
    pub note: Option<String>,
    /// New status.
    pub status: Option<String>,
    /// New API-only flag.
    pub apionly: Option<bool>,
    /// New password hash (`Some(None)` removes the password).
    pub password_hash: Option<Option<String>>,
    /// New force-change flag.
    pub force_password_change: Option<bool>,
    /// New timezone.
    pub timezone: Option<String>,
    /// New SMS email.
    pub sms_email: Option<String>,
    /// New SMS email format.
    pub sms_email_format: Option<String>,
    /// New contact method.
    pub contact_method: Option<String>,
    /// New role set.
    pub role_ids: Option<Vec<i64>>,
    /// New per-user enrolment deadline (`Some(None)` clears it).
    pub mfa_deadline: Option<Option<i64>>,
    /// New support window end (`Some(None)` closes it).
    pub support_until: Option<Option<i64>>,
    /// Record a sign-in at this time.
    pub last_login_on: Option<i64>,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Privileges.
    pub privileges: Vec<Privilege>,
    /// Built-in roles cannot be deleted; `administrator` cannot be changed at all.
    pub builtin: bool,
    /// Holders must use a second factor.
    pub two_fa_required: bool,
    /// Creation time, epoch ms.
    pub created_on: i64,
}

impl RoleRecord {
    /// Whether this is the built-in administrator role.
    pub fn is_administrator(&self) -> bool {
        self.builtin && self.name == ADMINISTRATOR_ROLE
    }
}

/// A new role.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Privileges.
    pub privileges: Vec<Privilege>,
    /// Built-in.
    pub builtin: bool,
    /// 2FA required.
    pub two_fa_required: bool,
    /// Creation time, epoch ms.
    pub created_on: i64,
}

/// A change to a role.
#[derive(Debug, Clone, Default)]
pub struct RoleChangeSet {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New privileges.
    pub privileges: Option<Vec<Privilege>>,
    /// New 2FA flag.
    pub two_fa_required: Option<bool>,
}

/// Token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    /// HMAC request signing.
    Lmv1,
    /// Bearer.
    Bearer,
    /// Dashboard widget token: read-only, one dashboard (`dashboard_id`), sent as Bearer.
    Widget,
}

impl TokenType {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Lmv1 => "lmv1",
            TokenType::Bearer => "bearer",
            TokenType::Widget => "widget",
        }
    }
    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lmv1" => Some(TokenType::Lmv1),
            "bearer" => Some(TokenType::Bearer),
            "widget" => Some(TokenType::Widget),
            _ => None,
        }
    }
}

/// Token status: disabled.
pub const TOKEN_DISABLED: i64 = 1;
/// Token status: enabled.
pub const TOKEN_ENABLED: i64 = 2;

/// An API token. The secret itself is never stored in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// Kind.
    pub kind: TokenType,
    /// Public id (LMv1 access id; for Bearer tokens a public handle).
    pub access_id: String,
    /// LMv1 access key, AEAD-encrypted under the master key (base64).
    pub access_key_enc: Option<String>,
    /// Bearer (and widget) token keyed hash (hex).
    pub bearer_hash: Option<String>,
    /// The one dashboard a widget token opens (`None` for LMv1 and Bearer tokens).
    pub dashboard_id: Option<i64>,
    /// 1 disabled, 2 enabled.
    pub status: i64,
    /// Note.
    pub note: String,
    /// Creation time, epoch ms.
    pub created_on: i64,
    /// Creator.
    pub created_by: String,
    /// Expiry, epoch ms.
    pub expires_on: Option<i64>,
    /// Last use, epoch ms.
    pub last_used_on: Option<i64>,
    /// Last source address.
    pub last_auth_ip: Option<String>,
    /// Last few distinct source addresses, newest first.
    pub recent_ips: Vec<String>,
}

/// A new token.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Owner.
    pub user_id: i64,
    /// Kind.
    pub kind: TokenType,
    /// Public id.
    pub access_id: String,
    /// Encrypted LMv1 key.
    pub access_key_enc: Option<String>,
    /// Bearer hash.
    pub bearer_hash: Option<String>,
    /// The dashboard of a widget token.
    pub dashboard_id: Option<i64>,
    /// Note.
    pub note: String,
    /// Creator.
    pub created_by: String,
    /// Creation time, epoch ms.
    pub created_on: i64,
    /// Expiry, epoch ms.
    pub expires_on: Option<i64>,
}

/// A change to a token.
#[derive(Debug, Clone, Default)]
pub struct TokenChange {
    /// New status.
    pub status: Option<i64>,
    /// New note.
    pub note: Option<String>,
}

/// A use of a token.
#[derive(Debug, Clone)]
pub struct TokenUse {
    /// When, epoch ms.
    pub at: i64,
    /// From where.
    pub ip: String,
    /// Recent distinct addresses after this use, newest first.
    pub recent_ips: Vec<String>,
}

/// An audit event to append.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditEvent {
    /// When, epoch ms.
    pub happened_on_ms: i64,
    /// Acting user name.
    pub username: String,
    /// Acting user id.
    pub user_id: Option<i64>,
    /// Token used.
    pub token_id: Option<i64>,
    /// Source address.
    pub ip: String,
    /// User agent.
    pub user_agent: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// HTTP status.
    pub status: Option<i64>,
    /// Machine-readable action.
    pub action: String,
    /// Human-readable description.
    pub description: String,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain.
    pub seq: i64,
    /// The event.
    pub event: AuditEvent,
    /// Previous entry's hash (hex).
    pub prev_hash: String,
    /// This entry's hash (hex).
    pub hash: String,
}

impl AuditEntry {
    /// The fields covered by the chain.
    pub fn chained(&self) -> palisade_core::audit_chain::ChainedFields<'_> {
        chained_fields(self.seq, &self.event)
    }
}

/// The chained fields of an event at a sequence number.
pub fn chained_fields(seq: i64, e: &AuditEvent) -> palisade_core::audit_chain::ChainedFields<'_> {
    palisade_core::audit_chain::ChainedFields {
        seq,
        happened_on_ms: e.happened_on_ms,
        username: &e.username,
        user_id: e.user_id,
        token_id: e.token_id,
        ip: &e.ip,
        user_agent: &e.user_agent,
        method: &e.method,
        path: &e.path,
        status: e.status,
        action: &e.action,
        description: &e.description,
    }
}
