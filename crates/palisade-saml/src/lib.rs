//! Palisade as a SAML 2.0 service provider (Web Browser SSO profile) that accepts **only
//! signed assertions**, guarded against XML signature wrapping (XSW) and replay.
//!
//! The SP sends an unsigned `AuthnRequest` with the HTTP-Redirect binding
//! ([`SpConfig::authn_request`]) and receives the `Response` with the HTTP-POST binding
//! ([`SpConfig::consume`]). Encrypted assertions, artifact resolution, single logout and
//! signed requests are not supported. Everything is pure Rust: `roxmltree` parses (DTDs and
//! therefore custom entities refused), a built-in Exclusive XML Canonicalization renders the
//! signed bytes, `rsa` + `sha2` verify RSA-SHA256 (PKCS#1 v1.5) signatures, and `x509-cert`
//! reads the configured IdP certificates. The current time is always a parameter.
//!
//! # Validation steps of [`SpConfig::consume`]
//!
//! Every step must pass; the first failure is returned as a [`SamlError`].
//!
//! 1. **Decode**: at most [`MAX_RESPONSE_BYTES`] (256 KiB) decoded, white space in the base64
//!    ignored, UTF-8 required.
//! 2. **Parse**: `roxmltree` with DTDs refused (so no entity expansion beyond the five XML
//!    built-ins and character references) and at most [`MAX_NODES`] nodes; then one
//!    iterative pass that refuses nesting deeper than [`MAX_DEPTH`], processing
//!    instructions, duplicate ID values (`ID`, `Id`, `id` or `xml:id`, anywhere in the
//!    document) and `EncryptedAssertion` (unsupported), and counts every `saml:Assertion` and
//!    `ds:Signature` in the whole document.
//! 3. **Root**: must be `Response` in the SAML 2.0 protocol namespace (matched by namespace
//!    URI, never by prefix), `Version="2.0"`, with an `ID`. Its element children may only
//!    be `Issuer`, `Signature`, `Extensions`, `Status` and `Assertion`.
//! 4. **Status**: the top-level `StatusCode` must be `...:status:Success`.
//! 5. **Destination**: if present, must equal [`SpConfig::acs_url`].
//! 6. **InResponseTo** (Response): with an `expected_request_id` it must be present and
//!    equal; without one (IdP-initiated sign-on) it must be absent, so that a response to
//!    some other request cannot be replayed as unsolicited.
//! 7. **Exactly one Assertion** in the whole document, and it is a direct child of the root.
//! 8. **Signatures**: every `ds:Signature` in the document must be a direct child of the root
//!    `Response` or of that `Assertion` (at most one each), and at least one must exist.
//!    Each one present is verified (all must pass):
//!    - `SignedInfo` holds exactly `CanonicalizationMethod` (exc-c14n, optional
//!      `InclusiveNamespaces PrefixList`), `SignatureMethod` (rsa-sha256 only; rsa-sha1 is
//!      refused) and **one** `Reference`; `Signature` holds nothing but `SignedInfo`,
//!      `SignatureValue` and an optional `KeyInfo` (no `ds:Object`);
//!    - the `Reference URI` must be `#` + the `ID` of the signature's **parent element**
//!      (an enveloped signature of exactly the element that contains it);
//!    - the transforms must be exactly enveloped-signature then exc-c14n; `DigestMethod`
//!      sha256 only;
//!    - the SHA-256 of the exclusive canonical form of the parent element, minus this
//!      `Signature`, must equal `DigestValue`;
//!    - the RSA PKCS#1 v1.5 SHA-256 signature over the exclusive canonical form of
//!      `SignedInfo` must verify with the key of a configured IdP certificate
//!      ([`SpConfig::idp_certificates`]). `KeyInfo` is ignored entirely: a certificate
//!      embedded in the message is never used, so one that is not configured byte for byte
//!      can never contribute.
//! 9. **Assertion** (read only from the element found in step 7, which the verified
//!    signature covers): `Version="2.0"`, `ID`, `IssueInstant` no later than now + skew and
//!    no older than [`SpConfig::max_assertion_age_secs`] + skew; its children only the
//!    SAML 2.0 schema's (`Issuer` first, `Signature`, `Subject`, `Conditions`, `Advice`,
//!    statements).
//! 10. **Issuer**: the Assertion's `Issuer` (and the Response's, if present) must equal
//!     [`SpConfig::idp_entity_id`] (format, if given, `...:nameid-format:entity`).
//! 11. **Conditions** (required): `NotBefore` ≤ now + skew, now − skew < `NotOnOrAfter`;
//!     at least one `AudienceRestriction`, and every one contains [`SpConfig::entity_id`];
//!     an unknown condition type is refused.
//! 12. **Subject**: exactly one plain `NameID` (an `EncryptedID` or `BaseID` is refused) and
//!     a bearer `SubjectConfirmation` whose `SubjectConfirmationData` has `Recipient` equal to
//!     the ACS URL, a `NotOnOrAfter` still in the future (with skew), no `NotBefore`, and the
//!     `InResponseTo` rule of step 6.
//! 13. **AuthnStatement**: at least one; its `SessionNotOnOrAfter`, if any, not passed; the
//!     first one gives `SessionIndex` and `AuthnContextClassRef`.
//! 14. **Replay**: the Assertion `ID` goes through the [`ReplayCache`], remembered until the
//!     later of the bearer and Conditions `NotOnOrAfter` plus skew; a second use fails. This is
//!     the last step, so a refused response never burns an ID.
//!
//! Text values (`NameID`, `Issuer`, attribute values, ...) are read as canonical XML sees
//! them: all text children concatenated, comments skipped. A comment planted in a signed
//! `NameID` (`user@evil.com<!---->.example.com`, which leaves the signature valid) therefore
//! reads as the full signed string `user@evil.com.example.com`, never as `user@evil.com`.
//!
//! # Signature wrapping defences
//!
//! XSW attacks keep a validly signed element somewhere in the document and make the SP read
//! data from a different, attacker-written element. They are stopped by construction:
//!
//! - the signed element is **the parent of the `ds:Signature`**, checked to be the element
//!   whose `ID` the single `Reference` names; no lookup by ID decides what is read;
//! - the Assertion that is read is the one and only `saml:Assertion` in the whole document
//!   (so an evil assertion next to, around or inside the signed one, or a signed one moved
//!   under `Extensions`, `ds:Object` or `Advice`, makes the count ≠ 1), and it must be a
//!   direct child of the root `Response`;
//! - a `ds:Signature` anywhere else than directly in the root or in that Assertion is
//!   refused, as are `ds:Object`, extra `Reference`s and other URIs;
//! - ID values must be unique across the document, so "the element with this ID" has one
//!   meaning for every XML signature implementation;
//! - names are matched by namespace URI and local name, never by prefix.
//!
//! The Exclusive XML Canonicalization implementation is documented in the private `c14n`
//! module; it covers what IdPs produce (elements, attributes, namespace rendering including
//! `InclusiveNamespaces`, escaping, comments removed) and refuses processing instructions.
#![deny(missing_docs)]

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use roxmltree::{Document, Node, NodeType, ParsingOptions};

mod c14n;
mod cert;
mod dsig;
mod error;
mod request;
mod xml;

pub use cert::pem_certificates;
pub use error::SamlError;

use xml::{
    element_children, is, optional_child, parse_datetime, required_child, text_content, NS_DS,
    NS_SAML, NS_SAMLP, NS_XML,
};

/// Largest accepted decoded `SAMLResponse`, in bytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Largest accepted number of XML nodes in a response.
pub const MAX_NODES: u32 = 20_000;
/// Deepest accepted element nesting in a response.
pub const MAX_DEPTH: usize = 48;
/// Default allowed clock difference with the IdP, in seconds.
pub const DEFAULT_CLOCK_SKEW_SECS: i64 = 120;
/// Default maximum age of an assertion (since its `IssueInstant`), in seconds.
pub const DEFAULT_MAX_ASSERTION_AGE_SECS: i64 = 300;

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
const NS_XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// The service provider's configuration for one identity provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpConfig {
    /// This SP's entity ID (the audience the IdP must name).
    pub entity_id: String,
    /// This SP's assertion consumer service URL (HTTP-POST binding): the only accepted
    /// `Destination` and bearer `Recipient`.
    pub acs_url: String,
    /// The IdP's entity ID: the only accepted `Issuer`.
    pub idp_entity_id: String,
    /// The IdP's single sign-on URL (HTTP-Redirect binding).
    pub idp_sso_url: String,
    /// The IdP's signing certificates (X.509 DER; see [`pem_certificates`]). Several allow a
    /// key rollover. Only their RSA public keys are used; validity dates are not checked.
    pub idp_certificates: Vec<Vec<u8>>,
    /// Allowed clock difference with the IdP, in seconds (default 120; clamped to 0..=86400).
    pub clock_skew_secs: i64,
    /// Maximum age of an assertion since its `IssueInstant`, in seconds (default 300).
    pub max_assertion_age_secs: i64,
}

/// An `AuthnRequest` ready for the HTTP-Redirect binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    /// The request ID: keep it with the browser session and expect it as `InResponseTo`.
    pub id: String,
    /// The IdP SSO URL with `SAMLRequest` (and `RelayState`): redirect the browser there.
    pub redirect_url: String,
}

/// The authenticated identity read from a validated assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The IdP entity ID (the assertion's Issuer).
    pub idp: String,
    /// The subject's `NameID` value, exactly as signed.
    pub name_id: String,
    /// The `NameID` `Format`, if given.
    pub name_id_format: Option<String>,
    /// The first `AuthnStatement`'s `SessionIndex`, if given.
    pub session_index: Option<String>,
    /// Attribute values by attribute `Name` (values in document order; values with element
    /// content or `xsi:nil` are skipped; `EncryptedAttribute`s are ignored).
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The first `AuthnStatement`'s `AuthnContextClassRef`, if given.
    pub authn_context_class: Option<String>,
    /// The assertion ID (already recorded in the replay cache).
    pub assertion_id: String,
}

/// Remembers assertion IDs that were accepted, to refuse a second use.
///
/// With several portal instances the implementation must be shared (e.g. a database table
/// with a unique key on the ID).
pub trait ReplayCache {
    /// Returns false if `assertion_id` was already seen; otherwise remembers it until
    /// `expires_at_unix_secs` (after which the assertion is refused as expired anyway) and
    /// returns true.
    fn check_and_remember(&mut self, assertion_id: &str, expires_at_unix_secs: i64) -> bool;
}

/// An in-memory [`ReplayCache`] for tests and a single portal instance.
#[derive(Debug, Clone, Default)]
pub struct MemoryReplayCache {
    seen: HashMap<String, i64>,
}

impl MemoryReplayCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget IDs whose expiry is before `now_unix_secs` (call now and then).
    pub fn purge_expired(&mut self, now_unix_secs: i64) {
        self.seen.retain(|_, expires| *expires >= now_unix_secs);
    }

    /// Number of remembered IDs.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// True when no ID is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_remember(&mut self, assertion_id: &str, expires_at_unix_secs: i64) -> bool {
        if self.seen.contains_key(assertion_id) {
            return false;
        }
        self.seen
            .insert(assertion_id.to_string(), expires_at_unix_secs);
        true
    }
}

/// What the whole-document scan found.
struct Scan<'a, 'i> {
    assertions: Vec<Node<'a, 'i>>,
    signatures: Vec<Node<'a, 'i>>,
}

impl SpConfig {
    /// A configuration with the default clock skew and maximum assertion age.
    pub fn new(
        entity_id: impl Into<String>,
        acs_url: impl Into<String>,
        idp_entity_id: impl Into<String>,
        idp_sso_url: impl Into<String>,
        idp_certificates: Vec<Vec<u8>>,
    ) -> Self {
        Self {
            entity_id: entity_id.into(),
            acs_url: acs_url.into(),
            idp_entity_id: idp_entity_id.into(),
            idp_sso_url: idp_sso_url.into(),
            idp_certificates,
            clock_skew_secs: DEFAULT_CLOCK_SKEW_SECS,
            max_assertion_age_secs: DEFAULT_MAX_ASSERTION_AGE_SECS,
        }
    }

    /// Validate a `SAMLResponse` form value (HTTP-POST binding, base64) and return the
    /// signed identity. See the crate documentation for every step.
    ///
    /// `expected_request_id` is the ID of the `AuthnRequest` this browser session sent
    /// (`None` to accept only IdP-initiated, unsolicited responses); `now_unix_secs` is the
    /// current time; `replay` remembers accepted assertion IDs.
    pub fn consume(
        &self,
        saml_response_b64: &str,
        expected_request_id: Option<&str>,
        now_unix_secs: i64,
        replay: &mut dyn ReplayCache,
    ) -> Result<Identity, SamlError> {
        // 1. Decode.
        let xml_bytes = decode_response(saml_response_b64)?;
        let text = std::str::from_utf8(&xml_bytes).map_err(|_| SamlError::NotUtf8)?;

        // 2. Parse and scan the whole document.
        let options = ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..ParsingOptions::default()
        };
        let doc = Document::parse_with_options(text, options)
            .map_err(|e| SamlError::Xml(e.to_string()))?;
        let scan = scan(&doc)?;
        let now = now_unix_secs;
        let skew = self.clock_skew_secs.clamp(0, 86_400);

        // 3. Root.
        let root = doc.root_element();
        if !is(root, NS_SAMLP, "Response") {
            return Err(SamlError::NotAResponse);
        }
        if root.attribute("Version") != Some("2.0") {
            return Err(SamlError::Malformed("Response Version is not 2.0"));
        }
        if root.attribute("ID").is_none_or(str::is_empty) {
            return Err(SamlError::Malformed("Response without ID"));
        }
        let mut response_issuer = None;
        let mut status = None;
        for child in element_children(root)? {
            if is(child, NS_SAML, "Issuer") {
                if response_issuer.replace(child).is_some() {
                    return Err(SamlError::Malformed("several Response Issuers"));
                }
            } else if is(child, NS_SAMLP, "Status") {
                if status.replace(child).is_some() {
                    return Err(SamlError::Malformed("several Status elements"));
                }
            } else if !(is(child, NS_DS, "Signature")
                || is(child, NS_SAMLP, "Extensions")
                || is(child, NS_SAML, "Assertion"))
            {
                return Err(SamlError::Malformed("unexpected element in Response"));
            }
        }

        // 4. Status.
        let status = status.ok_or(SamlError::Malformed("Response without Status"))?;
        let code = required_child(
            status,
            NS_SAMLP,
            "StatusCode",
            "Status needs one StatusCode",
        )?;
        let code_value = code.attribute("Value").unwrap_or_default();
        if code_value != STATUS_SUCCESS {
            let sub_code = optional_child(code, NS_SAMLP, "StatusCode", "nested StatusCode")?
                .and_then(|c| c.attribute("Value"))
                .map(|v| v.chars().take(256).collect());
            return Err(SamlError::Status {
                code: code_value.chars().take(256).collect(),
                sub_code,
            });
        }

        // 5. Destination.
        if let Some(destination) = root.attribute("Destination") {
            if destination != self.acs_url {
                return Err(SamlError::Destination(
                    destination.chars().take(256).collect(),
                ));
            }
        }

        // 6. InResponseTo on the Response.
        check_in_response_to(root.attribute("InResponseTo"), expected_request_id)?;

        // 7. Exactly one Assertion in the document, a child of the root.
        let assertion = match scan.assertions.as_slice() {
            [only] => *only,
            other => return Err(SamlError::AssertionCount(other.len())),
        };
        if assertion.parent_element().map(|p| p.id()) != Some(root.id()) {
            return Err(SamlError::Malformed(
                "the Assertion is not a child of the Response",
            ));
        }

        // 8. Signatures: only enveloped in the root or the Assertion; all must verify.
        let mut response_signed = false;
        let mut assertion_signed = false;
        for signature in &scan.signatures {
            let parent = signature.parent_element().map(|p| p.id());
            let slot = if parent == Some(root.id()) {
                &mut response_signed
            } else if parent == Some(assertion.id()) {
                &mut assertion_signed
            } else {
                return Err(SamlError::SignaturePlacement);
            };
            if *slot {
                return Err(SamlError::SignaturePlacement);
            }
            *slot = true;
        }
        if !response_signed && !assertion_signed {
            return Err(SamlError::Unsigned);
        }
        let keys = self.keys()?;
        for signature in &scan.signatures {
            dsig::verify_enveloped(*signature, &keys)?;
        }

        // 9.-13. The Assertion (the element the verified signature covers).
        if let Some(issuer) = response_issuer {
            self.check_issuer(issuer)?;
        }
        let checked = self.check_assertion(assertion, expected_request_id, now, skew)?;

        // 14. Replay.
        if !replay.check_and_remember(
            &checked.identity.assertion_id,
            checked.expires_at.saturating_add(skew),
        ) {
            return Err(SamlError::Replay(checked.identity.assertion_id));
        }
        Ok(checked.identity)
    }

    fn keys(&self) -> Result<Vec<rsa::RsaPublicKey>, SamlError> {
        let mut keys = Vec::new();
        let mut first_error = None;
        for der in &self.idp_certificates {
            match cert::rsa_key(der) {
                Ok(key) => keys.push(key),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (keys.is_empty(), first_error) {
            (false, _) => Ok(keys),
            (true, Some(e)) => Err(e),
            (true, None) => Err(SamlError::NoCertificate),
        }
    }

    fn check_issuer(&self, issuer: Node<'_, '_>) -> Result<String, SamlError> {
        let value = text_content(issuer)?;
        if let Some(format) = issuer.attribute("Format") {
            if format != NAMEID_ENTITY {
                return Err(SamlError::Issuer(value.chars().take(256).collect()));
            }
        }
        if value != self.idp_entity_id {
            return Err(SamlError::Issuer(value.chars().take(256).collect()));
        }
        Ok(value)
    }

    fn check_assertion(
        &self,
        assertion: Node<'_, '_>,
        expected_request_id: Option<&str>,
        now: i64,
        skew: i64,
    ) -> Result<CheckedAssertion, SamlError> {
        // 9. Assertion attributes and structure.
        if assertion.attribute("Version") != Some("2.0") {
            return Err(SamlError::Malformed("Assertion Version is not 2.0"));
        }
        let assertion_id = assertion
            .attribute("ID")
            .filter(|id| !id.is_empty())
            .ok_or(SamlError::Malformed("Assertion without ID"))?;
        let issue_instant = parse_datetime(
            assertion
                .attribute("IssueInstant")
                .ok_or(SamlError::Malformed("Assertion without IssueInstant"))?,
        )?;
        if issue_instant > now.saturating_add(skew) {
            return Err(SamlError::NotYetValid("Assertion IssueInstant"));
        }
        let max_age = self.max_assertion_age_secs.max(0).saturating_add(skew);
        if now.saturating_sub(issue_instant) > max_age {
            return Err(SamlError::Expired("Assertion (older than the maximum age)"));
        }
        let children = element_children(assertion)?;
        let mut subject = None;
        let mut conditions = None;
        let mut authn_statements = Vec::new();
        let mut attribute_statements = Vec::new();
        for (index, child) in children.iter().enumerate() {
            let child = *child;
            if is(child, NS_SAML, "Issuer") {
                if index != 0 {
                    return Err(SamlError::Malformed("Assertion Issuer is not first"));
                }
            } else if is(child, NS_SAML, "Subject") {
                if subject.replace(child).is_some() {
                    return Err(SamlError::Malformed("several Subjects"));
                }
            } else if is(child, NS_SAML, "Conditions") {
                if conditions.replace(child).is_some() {
                    return Err(SamlError::Malformed("several Conditions"));
                }
            } else if is(child, NS_SAML, "AuthnStatement") {
                authn_statements.push(child);
            } else if is(child, NS_SAML, "AttributeStatement") {
                attribute_statements.push(child);
            } else if !(is(child, NS_DS, "Signature")
                || is(child, NS_SAML, "Advice")
                || is(child, NS_SAML, "AuthzDecisionStatement")
                || is(child, NS_SAML, "Statement"))
            {
                return Err(SamlError::Malformed("unexpected element in Assertion"));
            }
        }

        // 10. Issuer.
        let issuer = children
            .first()
            .copied()
            .filter(|c| is(*c, NS_SAML, "Issuer"))
            .ok_or(SamlError::Malformed("Assertion without Issuer"))?;
        let idp = self.check_issuer(issuer)?;

        // 11. Conditions.
        let conditions = conditions.ok_or(SamlError::Malformed("Assertion without Conditions"))?;
        let conditions_not_on_or_after = self.check_conditions(conditions, now, skew)?;

        // 12. Subject.
        let subject = subject.ok_or(SamlError::Malformed("Assertion without Subject"))?;
        let (name_id, name_id_format, bearer_not_on_or_after) =
            self.check_subject(subject, expected_request_id, now, skew)?;

        // 13. AuthnStatement.
        let first_authn = *authn_statements
            .first()
            .ok_or(SamlError::Malformed("Assertion without AuthnStatement"))?;
        for statement in &authn_statements {
            parse_datetime(
                statement
                    .attribute("AuthnInstant")
                    .ok_or(SamlError::Malformed("AuthnStatement without AuthnInstant"))?,
            )?;
            if let Some(session_end) = statement.attribute("SessionNotOnOrAfter") {
                if now.saturating_sub(skew) >= parse_datetime(session_end)? {
                    return Err(SamlError::Expired("AuthnStatement SessionNotOnOrAfter"));
                }
            }
        }
        let session_index = first_authn.attribute("SessionIndex").map(str::to_string);
        let authn_context_class = match optional_child(
            first_authn,
            NS_SAML,
            "AuthnContext",
            "several AuthnContexts",
        )? {
            Some(context) => {
                match optional_child(
                    context,
                    NS_SAML,
                    "AuthnContextClassRef",
                    "several AuthnContextClassRefs",
                )? {
                    Some(class) => Some(text_content(class)?),
                    None => None,
                }
            }
            None => None,
        };

        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for statement in attribute_statements {
            read_attributes(statement, &mut attributes)?;
        }

        let expires_at = conditions_not_on_or_after
            .map_or(bearer_not_on_or_after, |c| c.max(bearer_not_on_or_after));
        Ok(CheckedAssertion {
            identity: Identity {
                idp,
                name_id,
                name_id_format,
                session_index,
                attributes,
                authn_context_class,
                assertion_id: assertion_id.to_string(),
            },
            expires_at,
        })
    }

    /// Conditions: time window and audience; returns `NotOnOrAfter` if present.
    fn check_conditions(
        &self,
        conditions: Node<'_, '_>,
        now: i64,
        skew: i64,
    ) -> Result<Option<i64>, SamlError> {
        if let Some(not_before) = conditions.attribute("NotBefore") {
            if now.saturating_add(skew) < parse_datetime(not_before)? {
                return Err(SamlError::NotYetValid("Conditions NotBefore"));
            }
        }
        let not_on_or_after = match conditions.attribute("NotOnOrAfter") {
            Some(t) => {
                let t = parse_datetime(t)?;
                if now.saturating_sub(skew) >= t {
                    return Err(SamlError::Expired("Conditions NotOnOrAfter"));
                }
                Some(t)
            }
            None => None,
        };
        let mut restrictions = 0usize;
        for child in element_children(conditions)? {
            if is(child, NS_SAML, "AudienceRestriction") {
                restrictions += 1;
                let mut found = false;
                for audience in element_children(child)? {
                    if !is(audience, NS_SAML, "Audience") {
                        return Err(SamlError::Malformed(
                            "unexpected element in AudienceRestriction",
                        ));
                    }
                    if text_content(audience)? == self.entity_id {
                        found = true;
                    }
                }
                if !found {
                    return Err(SamlError::Audience);
                }
            } else if !(is(child, NS_SAML, "OneTimeUse") || is(child, NS_SAML, "ProxyRestriction"))
            {
                return Err(SamlError::Malformed("unknown condition"));
            }
        }
        if restrictions == 0 {
            return Err(SamlError::Audience);
        }
        Ok(not_on_or_after)
    }

    /// Subject: the NameID and a valid bearer confirmation; returns (NameID, Format, bearer
    /// NotOnOrAfter).
    fn check_subject(
        &self,
        subject: Node<'_, '_>,
        expected_request_id: Option<&str>,
        now: i64,
        skew: i64,
    ) -> Result<(String, Option<String>, i64), SamlError> {
        let mut name_id = None;
        let mut first_error = None;
        let mut bearer_until = None;
        for child in element_children(subject)? {
            if is(child, NS_SAML, "NameID") {
                if name_id.replace(child).is_some() {
                    return Err(SamlError::Malformed("several NameIDs"));
                }
            } else if is(child, NS_SAML, "EncryptedID") {
                return Err(SamlError::EncryptedAssertionUnsupported);
            } else if is(child, NS_SAML, "SubjectConfirmation") {
                if child.attribute("Method") != Some(CM_BEARER) || bearer_until.is_some() {
                    continue;
                }
                match self.check_bearer(child, expected_request_id, now, skew) {
                    Ok(until) => bearer_until = Some(until),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            } else {
                return Err(SamlError::Malformed("unexpected element in Subject"));
            }
        }
        let name_id = name_id.ok_or(SamlError::Malformed("Subject without NameID"))?;
        let value = text_content(name_id)?;
        if value.is_empty() {
            return Err(SamlError::Malformed("empty NameID"));
        }
        let format = name_id.attribute("Format").map(str::to_string);
        match (bearer_until, first_error) {
            (Some(until), _) => Ok((value, format, until)),
            (None, Some(e)) => Err(e),
            (None, None) => Err(SamlError::SubjectConfirmation(
                "no bearer SubjectConfirmation",
            )),
        }
    }

    fn check_bearer(
        &self,
        confirmation: Node<'_, '_>,
        expected_request_id: Option<&str>,
        now: i64,
        skew: i64,
    ) -> Result<i64, SamlError> {
        let data = optional_child(
            confirmation,
            NS_SAML,
            "SubjectConfirmationData",
            "several SubjectConfirmationData",
        )?
        .ok_or(SamlError::SubjectConfirmation(
            "bearer without SubjectConfirmationData",
        ))?;
        if data.attribute("Recipient") != Some(self.acs_url.as_str()) {
            return Err(SamlError::SubjectConfirmation(
                "Recipient is not this SP's ACS URL",
            ));
        }
        if data.attribute("NotBefore").is_some() {
            return Err(SamlError::SubjectConfirmation(
                "bearer confirmation with NotBefore",
            ));
        }
        let until = parse_datetime(data.attribute("NotOnOrAfter").ok_or(
            SamlError::SubjectConfirmation("bearer without NotOnOrAfter"),
        )?)?;
        if now.saturating_sub(skew) >= until {
            return Err(SamlError::Expired("SubjectConfirmationData NotOnOrAfter"));
        }
        check_in_response_to(data.attribute("InResponseTo"), expected_request_id)?;
        Ok(until)
    }
}

struct CheckedAssertion {
    identity: Identity,
    expires_at: i64,
}

/// `InResponseTo` must equal the expected request ID, or be absent when none is expected.
fn check_in_response_to(found: Option<&str>, expected: Option<&str>) -> Result<(), SamlError> {
    if found == expected {
        Ok(())
    } else {
        Err(SamlError::InResponseTo)
    }
}

fn read_attributes(
    statement: Node<'_, '_>,
    out: &mut BTreeMap<String, Vec<String>>,
) -> Result<(), SamlError> {
    for attribute in element_children(statement)? {
        if is(attribute, NS_SAML, "EncryptedAttribute") {
            continue;
        }
        if !is(attribute, NS_SAML, "Attribute") {
            return Err(SamlError::Malformed(
                "unexpected element in AttributeStatement",
            ));
        }
        let name = attribute
            .attribute("Name")
            .ok_or(SamlError::Malformed("Attribute without Name"))?;
        let values = out.entry(name.to_string()).or_default();
        for value in element_children(attribute)? {
            if !is(value, NS_SAML, "AttributeValue") {
                return Err(SamlError::Malformed("unexpected element in Attribute"));
            }
            if value
                .attribute((NS_XSI, "nil"))
                .is_some_and(|v| v == "true" || v == "1")
            {
                continue;
            }
            if value.children().any(|c| c.is_element()) {
                continue;
            }
            values.push(text_content(value)?);
        }
    }
    Ok(())
}

/// Step 1: size cap, base64 (white space ignored).
fn decode_response(b64: &str) -> Result<Vec<u8>, SamlError> {
    // Base64 grows data by 4/3; allow generous white space on top.
    let encoded_limit = MAX_RESPONSE_BYTES / 3 * 4 * 2;
    if b64.len() > encoded_limit {
        return Err(SamlError::TooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.len() > MAX_RESPONSE_BYTES.div_ceil(3) * 4 {
        return Err(SamlError::TooLarge {
            limit: MAX_RESPONSE_BYTES,
        });
    }
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| SamlError::Base64)
}

/// Step 2: one iterative pass over the document.
fn scan<'a, 'i>(doc: &'a Document<'i>) -> Result<Scan<'a, 'i>, SamlError> {
    let mut depth: HashMap<roxmltree::NodeId, usize> = HashMap::new();
    let mut ids: HashSet<&'a str> = HashSet::new();
    let mut assertions = Vec::new();
    let mut signatures = Vec::new();
    for node in doc.descendants() {
        match node.node_type() {
            NodeType::PI => return Err(SamlError::Malformed("processing instruction")),
            NodeType::Element => {}
            NodeType::Root | NodeType::Text | NodeType::Comment => continue,
        }
        let d = node
            .parent_element()
            .and_then(|p| depth.get(&p.id()).copied())
            .unwrap_or(0)
            + 1;
        if d > MAX_DEPTH {
            return Err(SamlError::TooDeep { limit: MAX_DEPTH });
        }
        depth.insert(node.id(), d);
        for attribute in node.attributes() {
            let is_id = match attribute.namespace() {
                None => matches!(attribute.name(), "ID" | "Id" | "id"),
                Some(ns) => ns == NS_XML && attribute.name() == "id",
            };
            if is_id && !ids.insert(attribute.value()) {
                return Err(SamlError::DuplicateId(
                    attribute.value().chars().take(128).collect(),
                ));
            }
        }
        if is(node, NS_SAML, "Assertion") {
            assertions.push(node);
        } else if is(node, NS_SAML, "EncryptedAssertion") {
            return Err(SamlError::EncryptedAssertionUnsupported);
        } else if is(node, NS_DS, "Signature") {
            signatures.push(node);
        }
    }
    Ok(Scan {
        assertions,
        signatures,
    })
}
