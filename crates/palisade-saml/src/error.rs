//! The typed errors of this crate.

use thiserror::Error;

/// Why a SAML response (or a configured certificate) was refused.
///
/// Every variant is a refusal: the caller answers "sign-in failed" and may log the variant.
/// The messages name the failed check and, at most, values from the (untrusted) message that
/// are needed to diagnose a misconfiguration; they never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SamlError {
    /// The (encoded or decoded) message is larger than the cap.
    #[error("SAML message larger than {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// `SAMLResponse` is not valid base64.
    #[error("SAMLResponse is not valid base64")]
    Base64,
    /// The decoded message is not UTF-8 text.
    #[error("SAML message is not UTF-8")]
    NotUtf8,
    /// The XML parser refused the message (DTDs, entities, syntax, too many nodes).
    #[error("SAML message is not acceptable XML: {0}")]
    Xml(String),
    /// The XML nests deeper than the cap.
    #[error("SAML message nests deeper than {limit} elements")]
    TooDeep {
        /// The cap.
        limit: usize,
    },
    /// The message contains something this strict profile never accepts (processing
    /// instructions, unknown elements where the schema allows none, misplaced elements, ...).
    #[error("SAML message is malformed: {0}")]
    Malformed(&'static str),
    /// The root element is not a SAML 2.0 protocol `Response`.
    #[error("root element is not a SAML 2.0 samlp:Response")]
    NotAResponse,
    /// Two elements carry the same ID (an XML signature wrapping tell-tale).
    #[error("duplicate ID attribute value {0:?}")]
    DuplicateId(String),
    /// The top-level status is not Success.
    #[error("the identity provider answered with status {code}{}", .sub_code.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    Status {
        /// The top-level status code URI.
        code: String,
        /// The second-level status code URI, if any.
        sub_code: Option<String>,
    },
    /// The Response's `Destination` is not this SP's ACS URL.
    #[error("Response Destination {0:?} is not this service provider's ACS URL")]
    Destination(String),
    /// An `InResponseTo` (on the Response or the bearer confirmation) does not match the
    /// request this SP made (or is present on an unsolicited response, or missing).
    #[error("InResponseTo does not match the outstanding request")]
    InResponseTo,
    /// Encrypted assertions (or encrypted NameIDs) are not supported.
    #[error("encrypted assertions and identifiers are not supported: configure the identity provider to sign, not encrypt")]
    EncryptedAssertionUnsupported,
    /// The Response does not contain exactly one Assertion (anywhere in the document).
    #[error("the Response must contain exactly one Assertion, found {0}")]
    AssertionCount(usize),
    /// Neither the Assertion nor the Response carries a signature.
    #[error("the Assertion is not signed (neither it nor the Response carries a ds:Signature)")]
    Unsigned,
    /// A `ds:Signature` is not an enveloped signature of the Response or of the Assertion.
    #[error("a ds:Signature is placed where this profile does not allow one")]
    SignaturePlacement,
    /// The `ds:Reference` is not the single `#ID` reference to the signature's parent.
    #[error("signature reference is not the single reference to its enveloping element: {0}")]
    Reference(&'static str),
    /// An algorithm (canonicalization, transform, digest, signature) outside the allowed set.
    #[error("unsupported or refused algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The digest of the signed element does not match `DigestValue` (the content was changed).
    #[error("digest mismatch: the signed content was modified")]
    DigestMismatch,
    /// The signature over `SignedInfo` does not verify with any configured IdP certificate.
    #[error("signature does not verify with any configured identity provider certificate")]
    BadSignature,
    /// A configured certificate cannot be used (not X.509 DER, not RSA, key too small).
    #[error("identity provider certificate unusable: {0}")]
    Certificate(String),
    /// No usable IdP certificate is configured.
    #[error("no identity provider certificate configured")]
    NoCertificate,
    /// The Assertion's (or Response's) Issuer is not the configured IdP.
    #[error("Issuer {0:?} is not the configured identity provider")]
    Issuer(String),
    /// A time bound says "not yet" (beyond the allowed clock skew).
    #[error("{0} is not yet valid")]
    NotYetValid(&'static str),
    /// A time bound has passed (beyond the allowed clock skew), or the assertion is too old.
    #[error("{0} has expired")]
    Expired(&'static str),
    /// A timestamp is not an `xs:dateTime` with a time zone.
    #[error("invalid timestamp {0:?}")]
    Time(String),
    /// No `AudienceRestriction` names this SP.
    #[error("the assertion's audience restriction does not include this service provider")]
    Audience,
    /// No bearer `SubjectConfirmation` satisfies the Web SSO profile.
    #[error("no valid bearer subject confirmation: {0}")]
    SubjectConfirmation(&'static str),
    /// The assertion ID was seen before (replay).
    #[error("assertion {0:?} was already used")]
    Replay(String),
}
