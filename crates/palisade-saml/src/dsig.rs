//! Verification of one enveloped XML signature (`ds:Signature`) in the single shape this
//! profile accepts:
//!
//! ```text
//! <ds:Signature>                                  child of the signed element
//!   <ds:SignedInfo>
//!     <ds:CanonicalizationMethod Algorithm="exc-c14n"/>   [InclusiveNamespaces]
//!     <ds:SignatureMethod Algorithm="rsa-sha256"/>
//!     <ds:Reference URI="#<ID of the signature's parent>">  exactly one
//!       <ds:Transforms> enveloped-signature, exc-c14n [InclusiveNamespaces] </ds:Transforms>
//!       <ds:DigestMethod Algorithm="sha256"/>
//!       <ds:DigestValue>...</ds:DigestValue>
//!     </ds:Reference>
//!   </ds:SignedInfo>
//!   <ds:SignatureValue>...</ds:SignatureValue>
//!   [<ds:KeyInfo> ignored </ds:KeyInfo>]
//! </ds:Signature>
//! ```

use base64::Engine;
use roxmltree::Node;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};

use crate::c14n::canonicalize;
use crate::xml::{element_children, is, text_content, NS_DS, NS_EXC_C14N};
use crate::SamlError;

const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// Verify the enveloped signature `signature` over its parent element with one of `keys`.
///
/// On success the signed element is exactly `signature.parent_element()`: the caller reads
/// data only from that node (or its descendants), never from an element looked up by ID.
pub(crate) fn verify_enveloped(
    signature: Node<'_, '_>,
    keys: &[RsaPublicKey],
) -> Result<(), SamlError> {
    let signed = signature
        .parent_element()
        .ok_or(SamlError::SignaturePlacement)?;
    let id = signed
        .attribute("ID")
        .ok_or(SamlError::Reference("the signed element has no ID"))?;

    // ds:Signature = SignedInfo, SignatureValue, KeyInfo? and nothing else (no ds:Object).
    let children = element_children(signature)?;
    let (signed_info, signature_value) = match children.as_slice() {
        [si, sv] | [si, sv, _] => (*si, *sv),
        _ => return Err(SamlError::Malformed("ds:Signature children")),
    };
    if !is(signed_info, NS_DS, "SignedInfo") || !is(signature_value, NS_DS, "SignatureValue") {
        return Err(SamlError::Malformed("ds:Signature children"));
    }
    if let Some(key_info) = children.get(2) {
        if !is(*key_info, NS_DS, "KeyInfo") {
            return Err(SamlError::Malformed("ds:Signature children"));
        }
    }

    // SignedInfo = CanonicalizationMethod, SignatureMethod, Reference (exactly one).
    let si_children = element_children(signed_info)?;
    let (c14n_method, sig_method, reference) = match si_children.as_slice() {
        [c, s, r] => (*c, *s, *r),
        _ => {
            return Err(SamlError::Reference(
                "SignedInfo must hold exactly one Reference",
            ))
        }
    };
    if !is(c14n_method, NS_DS, "CanonicalizationMethod")
        || !is(sig_method, NS_DS, "SignatureMethod")
        || !is(reference, NS_DS, "Reference")
    {
        return Err(SamlError::Reference(
            "SignedInfo must hold exactly one Reference",
        ));
    }
    let signed_info_prefixes = exc_c14n_prefixes(c14n_method)?;
    algorithm(sig_method, ALG_RSA_SHA256)?;
    if !element_children(sig_method)?.is_empty() {
        return Err(SamlError::Malformed("SignatureMethod parameters"));
    }

    // Reference URI="#ID" of the enveloping element, nothing else.
    let uri = reference
        .attribute("URI")
        .ok_or(SamlError::Reference("missing URI"))?;
    if uri.strip_prefix('#') != Some(id) {
        return Err(SamlError::Reference(
            "URI is not #ID of the enveloping element",
        ));
    }
    let ref_children = element_children(reference)?;
    let (transforms, digest_method, digest_value) = match ref_children.as_slice() {
        [t, m, v] => (*t, *m, *v),
        _ => return Err(SamlError::Malformed("ds:Reference children")),
    };
    if !is(transforms, NS_DS, "Transforms")
        || !is(digest_method, NS_DS, "DigestMethod")
        || !is(digest_value, NS_DS, "DigestValue")
    {
        return Err(SamlError::Malformed("ds:Reference children"));
    }
    let transform_list = element_children(transforms)?;
    let (enveloped, exc) = match transform_list.as_slice() {
        [e, x] if is(*e, NS_DS, "Transform") && is(*x, NS_DS, "Transform") => (*e, *x),
        [t, ..] if is(*t, NS_DS, "Transform") => {
            let alg = t.attribute("Algorithm").unwrap_or_default();
            return Err(SamlError::UnsupportedAlgorithm(format!(
                "transform chain starting {alg}"
            )));
        }
        _ => return Err(SamlError::Malformed("ds:Transforms")),
    };
    algorithm(enveloped, ALG_ENVELOPED)?;
    if !element_children(enveloped)?.is_empty() {
        return Err(SamlError::Malformed(
            "enveloped-signature transform parameters",
        ));
    }
    let reference_prefixes = exc_c14n_prefixes(exc)?;
    algorithm(digest_method, ALG_SHA256)?;
    let expected_digest = decode_b64(&text_content(digest_value)?)?;

    // 1. The digest over exc-c14n(signed element minus this Signature).
    let canonical = canonicalize(signed, Some(signature.id()), &reference_prefixes)?;
    let digest = Sha256::digest(&canonical);
    if digest.as_slice() != expected_digest.as_slice() {
        return Err(SamlError::DigestMismatch);
    }

    // 2. The signature over exc-c14n(SignedInfo) with a configured IdP key.
    let signature_bytes = decode_b64(&text_content(signature_value)?)?;
    let canonical_si = canonicalize(signed_info, None, &signed_info_prefixes)?;
    let hashed = Sha256::digest(&canonical_si);
    if keys.is_empty() {
        return Err(SamlError::NoCertificate);
    }
    if keys.iter().any(|key| {
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &signature_bytes)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(SamlError::BadSignature)
    }
}

/// Require `Algorithm` to be exactly `expected`.
fn algorithm(node: Node<'_, '_>, expected: &str) -> Result<(), SamlError> {
    match node.attribute("Algorithm") {
        Some(alg) if alg == expected => Ok(()),
        Some(alg) => Err(SamlError::UnsupportedAlgorithm(
            alg.chars().take(128).collect(),
        )),
        None => Err(SamlError::Malformed("missing Algorithm")),
    }
}

/// Check an exc-c14n method/transform element and return its `InclusiveNamespaces`
/// `PrefixList` (empty when absent).
fn exc_c14n_prefixes(node: Node<'_, '_>) -> Result<Vec<String>, SamlError> {
    algorithm(node, ALG_EXC_C14N)?;
    let params = element_children(node)?;
    match params.as_slice() {
        [] => Ok(Vec::new()),
        [inc] if is(*inc, NS_EXC_C14N, "InclusiveNamespaces") => {
            if !element_children(*inc)?.is_empty() {
                return Err(SamlError::Malformed("InclusiveNamespaces content"));
            }
            let list = inc.attribute("PrefixList").unwrap_or_default();
            let prefixes: Vec<String> = list
                .split(crate::xml::is_xml_space)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            if prefixes.len() > 64 {
                return Err(SamlError::Malformed(
                    "InclusiveNamespaces PrefixList too long",
                ));
            }
            Ok(prefixes)
        }
        _ => Err(SamlError::Malformed("exc-c14n parameters")),
    }
}

/// Decode base64 that may be wrapped with XML white space.
pub(crate) fn decode_b64(text: &str) -> Result<Vec<u8>, SamlError> {
    let compact: String = text
        .chars()
        .filter(|c| !crate::xml::is_xml_space(*c))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| SamlError::Base64)
}
