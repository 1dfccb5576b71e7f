//! The one error type of this crate.

/// Why a ceremony (or parsing a stored credential) failed.
///
/// Every variant is a refusal: show the user one generic message ("that security key could not
/// be verified") and log the variant. The variants name the check that failed so that logs and
/// tests can tell them apart; none of them carries secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebauthnError {
    /// A field of the response JSON is missing or has the wrong JSON type.
    #[error("malformed response: {0}")]
    MalformedResponse(&'static str),
    /// A field that must be base64url is not.
    #[error("field {0} is not valid base64url")]
    InvalidBase64(&'static str),
    /// A field is larger than any honest client sends.
    #[error("field {0} is too large")]
    TooLarge(&'static str),
    /// The response's `type` is not `public-key`.
    #[error("credential type is not public-key")]
    WrongCredentialType,
    /// `clientDataJSON` is not UTF-8 JSON with string fields `type`, `challenge` and `origin`.
    #[error("malformed clientDataJSON: {0}")]
    MalformedClientData(String),
    /// `clientDataJSON.type` is not the one of this ceremony (`webauthn.create` when
    /// registering, `webauthn.get` when authenticating).
    #[error("clientDataJSON type is {found:?}, expected {expected:?}")]
    WrongCeremonyType {
        /// The type this ceremony needs.
        expected: &'static str,
        /// The type the client sent.
        found: String,
    },
    /// `clientDataJSON.challenge` is not the challenge of this ceremony.
    #[error("challenge does not match")]
    ChallengeMismatch,
    /// `clientDataJSON.origin` is not one of [`RelyingParty::origins`](crate::RelyingParty::origins).
    #[error("origin {0:?} is not allowed")]
    OriginNotAllowed(String),
    /// `clientDataJSON.crossOrigin` is true: the ceremony ran in a cross-origin iframe.
    #[error("cross-origin ceremonies are not allowed")]
    CrossOrigin,
    /// The authenticator data is truncated, has trailing bytes or carries malformed CBOR.
    #[error("malformed authenticator data: {0}")]
    MalformedAuthenticatorData(&'static str),
    /// The authenticator data's rpIdHash is not SHA-256 of [`RelyingParty::id`](crate::RelyingParty::id).
    #[error("rpIdHash does not match the relying party id")]
    RpIdHashMismatch,
    /// The user-present (UP) flag is not set.
    #[error("user presence flag is not set")]
    UserNotPresent,
    /// The backup-state (BS) flag is set although backup-eligible (BE) is not.
    #[error("backup state flag is set without backup eligibility")]
    InvalidBackupFlags,
    /// The backup-eligible (BE) flag differs from the one recorded at registration; it is a
    /// permanent property of a credential.
    #[error("backup eligibility of the credential changed")]
    BackupEligibilityChanged,
    /// The attestation object is not a CBOR map of `fmt`, `attStmt` and `authData`.
    #[error("malformed attestation object: {0}")]
    MalformedAttestation(&'static str),
    /// A registration's authenticator data has no attested credential data (AT flag).
    #[error("registration carries no attested credential data")]
    MissingCredentialData,
    /// An attestation statement that this crate verifies (`none`, `packed` self attestation)
    /// is wrong.
    #[error("attestation statement is invalid: {0}")]
    InvalidAttestation(&'static str),
    /// The credential public key is not a well-formed COSE key of its algorithm.
    #[error("malformed credential public key: {0}")]
    MalformedPublicKey(&'static str),
    /// The credential public key's COSE algorithm is not supported (by this build).
    #[error("unsupported credential algorithm {0}")]
    UnsupportedAlgorithm(i64),
    /// The response's credential id is not the expected one.
    #[error("credential id does not match")]
    CredentialIdMismatch,
    /// The response's user handle is not the credential's.
    #[error("user handle does not match")]
    UserHandleMismatch,
    /// The assertion signature does not verify under the credential public key.
    #[error("signature is invalid")]
    InvalidSignature,
    /// The signature counter did not increase: the credential's private key may have been
    /// cloned. Refuse the sign-in and tell an administrator.
    #[error("signature counter did not increase: possible cloned authenticator")]
    ClonedAuthenticator,
}
