//! Records of sign-in: sessions, second factors, recovery codes, code challenges, lockout
//! counters and SSO identities.

use serde_json::Value;

/// A browser session. The session id itself is never stored: only its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 (hex) of the opaque session id.
    pub id_hash: String,
    /// The user.
    pub user_id: i64,
    /// `await_factor`, `must_enrol`, `password_change` or `active`.
    pub state: String,
    /// How the user signed in: `password`, `password+totp`, `oidc:<idp>`, `saml:<idp>`, ...
    pub auth_method: String,
    /// CSRF token for state-changing browser requests.
    pub csrf: String,
    /// Source address at creation.
    pub ip: String,
    /// User agent at creation.
    pub user_agent: String,
    /// Created, epoch ms.
    pub created_on: i64,
    /// Last request, epoch ms (idle timeout).
    pub last_seen: i64,
    /// Absolute end, epoch ms.
    pub expires_on: i64,
    /// When a second factor was last verified in this session (step-up), epoch ms.
    pub factor_verified_on: Option<i64>,
    /// Pending state of a step (enrolment in progress, SSO round trip, ...).
    pub data: Value,
}

/// A second factor.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorRecord {
    /// Id.
    pub id: i64,
    /// Owner.
    pub user_id: i64,
    /// `totp`, `email`, `sms`, `voice` or `webauthn`.
    pub kind: String,
    /// Label shown to the user.
    pub label: String,
    /// Secret sealed under the master key (TOTP seed).
    pub secret_enc: Option<String>,
    /// Non-secret data: destination address or number, WebAuthn credential.
    pub data: Value,
    /// Confirmed by a first successful use.
    pub confirmed: bool,
    /// Last TOTP time step accepted (replay guard).
    pub last_used_step: Option<i64>,
    /// Created, epoch ms.
    pub created_on: i64,
    /// Last used, epoch ms.
    pub last_used_on: Option<i64>,
}

/// A new factor.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFactor {
    /// Owner.
    pub user_id: i64,
    /// Kind.
    pub kind: String,
    /// Label.
    pub label: String,
    /// Sealed secret.
    pub secret_enc: Option<String>,
    /// Data.
    pub data: Value,
    /// Confirmed already (e.g. WebAuthn, proven at registration).
    pub confirmed: bool,
    /// Created, epoch ms.
    pub created_on: i64,
}

/// A one-time code sent by email, SMS or voice, bound to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// Random id.
    pub id: String,
    /// User.
    pub user_id: i64,
    /// The session it is bound to.
    pub session_hash: String,
    /// `signin` or `enrol`.
    pub purpose: String,
    /// `email`, `sms` or `voice`.
    pub channel: String,
    /// The factor it verifies.
    pub factor_id: Option<i64>,
    /// Keyed hash of the code (hex).
    pub code_hash: String,
    /// Created, epoch ms.
    pub created_on: i64,
    /// Expires, epoch ms.
    pub expires_on: i64,
    /// Wrong entries so far.
    pub attempts: i64,
    /// Used (or voided).
    pub used: bool,
}

/// Failed sign-in counters of a user, kept in the database so a restart does not reset them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginState {
    /// Consecutive failures.
    pub failures: i64,
    /// Locked until, epoch ms.
    pub locked_until: Option<i64>,
    /// Locks so far (the lock doubles each time).
    pub lock_count: i64,
    /// Times codes were sent recently, epoch ms.
    pub sends: Vec<i64>,
}

/// A link from an identity provider's subject to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    /// Palisade's id of the identity provider (`oidc:<name>`, `saml:<name>`).
    pub idp: String,
    /// The subject (OIDC `sub`, SAML NameID).
    pub subject: String,
    /// The user.
    pub user_id: i64,
    /// Authentication methods the IdP reported at the last sign-in.
    pub amr: Vec<String>,
    /// Last sign-in, epoch ms.
    pub last_login_on: Option<i64>,
}
