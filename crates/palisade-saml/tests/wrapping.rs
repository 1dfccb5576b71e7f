//! XML signature wrapping (XSW) attacks, built from validly signed pysaml2 fixtures. In each
//! shape the original signed element is still in the document and still verifies where it
//! sits; the SP must refuse instead of reading the attacker's assertion. Shapes follow
//! Somorovsky et al., "On Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012),
//! as implemented by SAML Raider (XSW1-XSW8), plus single-defence variants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use palisade_saml::SamlError;

const RESPONSE_OPEN: &str = "<ns0:Response ";
const RESPONSE_CLOSE: &str = "</ns0:Response>";
const STATUS: &str = r#"<ns0:Status><ns0:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></ns0:Status>"#;
const EVIL_ID: &str = "id-evil-assertion";

/// The document around its single Assertion: (before, assertion, after).
fn split(xml: &str) -> (String, String, String) {
    let r = element_range(xml, ASSERTION_OPEN, ASSERTION_CLOSE);
    (
        xml[..r.start].to_string(),
        xml[r.clone()].to_string(),
        xml[r.end..].to_string(),
    )
}

fn signature(element_xml: &str) -> String {
    element(element_xml, SIGNATURE_OPEN, SIGNATURE_CLOSE).to_string()
}

fn without_signature(element_xml: &str) -> String {
    element_xml.replacen(&signature(element_xml), "", 1)
}

/// The attacker's assertion: the signed one's content with another NameID.
fn evil_content(assertion: &str) -> String {
    assert!(assertion.contains(">alice@example.test</ns1:NameID>"));
    assertion.replacen(
        ">alice@example.test</ns1:NameID>",
        ">admin@example.test</ns1:NameID>",
        1,
    )
}

fn with_id(element_xml: &str, old: &str, new: &str) -> String {
    replace_once(
        element_xml,
        &format!(" ID=\"{old}\""),
        &format!(" ID=\"{new}\""),
    )
}

/// Put `inner` into the `ds:Signature` element of `element_xml` (as its last child).
fn inside_signature(element_xml: &str, inner: &str) -> String {
    replace_once(
        element_xml,
        SIGNATURE_CLOSE,
        &format!("{inner}{SIGNATURE_CLOSE}"),
    )
}

fn object(inner: &str) -> String {
    format!("<ns2:Object>{inner}</ns2:Object>")
}

fn assertion_signed() -> (String, String, String, String) {
    let xml = fixture("assertion_signed");
    let (before, assertion, after) = split(&xml);
    let id = attr(&assertion, ASSERTION_OPEN, "ID");
    assert!(
        assertion.contains(SIGNATURE_OPEN),
        "the fixture's assertion is signed"
    );
    assert!(
        !before.contains(SIGNATURE_OPEN),
        "the fixture's response is unsigned"
    );
    // Sanity: the unmodified fixture is accepted.
    assert!(consume(&xml).is_ok());
    (before, assertion, after, id)
}

/// The evil assertion alone (no wrapping) is refused for its signature, so every refusal
/// below is the wrapping defence's doing, not a lucky digest failure.
#[test]
fn evil_assertion_alone_is_refused() {
    let (before, assertion, after, id) = assertion_signed();
    let evil = evil_content(&assertion);
    assert_eq!(
        consume(&format!("{before}{evil}{after}")),
        Err(SamlError::DigestMismatch)
    );
    let evil_unsigned = with_id(&without_signature(&evil), &id, EVIL_ID);
    assert_eq!(
        consume(&format!("{before}{evil_unsigned}{after}")),
        Err(SamlError::Unsigned)
    );
}

// ---- Response signature shapes (XSW1, XSW2) -------------------------------------------

fn response_signed() -> (String, String) {
    let xml = fixture("response_signed");
    let response = element(&xml, RESPONSE_OPEN, RESPONSE_CLOSE).to_string();
    assert!(consume(&xml).is_ok());
    (xml, response)
}

/// An evil Response around the original: new ID, the original's content with the evil
/// assertion, and `extra` placed right after its Issuer.
fn evil_response(response: &str, extra: &str) -> String {
    let response_id = attr(response, RESPONSE_OPEN, "ID");
    let (_, assertion, _) = split(response);
    let evil = with_id(
        &evil_content(&assertion),
        &attr(&assertion, ASSERTION_OPEN, "ID"),
        EVIL_ID,
    );
    let stripped = without_signature(response).replacen(&assertion, &evil, 1);
    let stripped = with_id(&stripped, &response_id, "id-evil-response");
    replace_once(&stripped, STATUS, &format!("{extra}{STATUS}"))
}

#[test]
fn xsw1_original_response_inside_the_signature_of_an_evil_response() {
    let (xml, response) = response_signed();
    let sig = signature(&response);
    let original_unsigned = without_signature(&response);
    let wrapped_sig = inside_signature(&sig, &original_unsigned);
    let doc = xml.replace(&response, &evil_response(&response, &wrapped_sig));
    assert_eq!(consume(&doc), Err(SamlError::AssertionCount(2)));
}

#[test]
fn xsw2_original_response_before_a_detached_signature() {
    let (xml, response) = response_signed();
    let sig = signature(&response);
    let original_unsigned = without_signature(&response);
    let doc = xml.replace(
        &response,
        &evil_response(&response, &format!("{original_unsigned}{sig}")),
    );
    assert_eq!(
        consume(&doc),
        Err(SamlError::Malformed("unexpected element in Response"))
    );
}

#[test]
fn evil_assertion_added_to_a_signed_response() {
    let (xml, response) = response_signed();
    let (_, assertion, _) = split(&response);
    let evil = with_id(
        &evil_content(&assertion),
        &attr(&assertion, ASSERTION_OPEN, "ID"),
        EVIL_ID,
    );
    let doc = replace_once(&xml, STATUS, &format!("{STATUS}{evil}"));
    assert_eq!(consume(&doc), Err(SamlError::AssertionCount(2)));
}

// ---- Assertion signature shapes (XSW3-XSW8) --------------------------------------------

#[test]
fn xsw3_evil_assertion_before_the_signed_one() {
    let (before, assertion, after, id) = assertion_signed();
    let evil = with_id(&without_signature(&evil_content(&assertion)), &id, EVIL_ID);
    assert_eq!(
        consume(&format!("{before}{evil}{assertion}{after}")),
        Err(SamlError::AssertionCount(2))
    );
    // ... or after it.
    assert_eq!(
        consume(&format!("{before}{assertion}{evil}{after}")),
        Err(SamlError::AssertionCount(2))
    );
}

#[test]
fn xsw4_evil_assertion_wrapping_the_signed_one() {
    let (before, assertion, after, id) = assertion_signed();
    let evil = with_id(&without_signature(&evil_content(&assertion)), &id, EVIL_ID);
    let wrapped = replace_once(
        &evil,
        ASSERTION_CLOSE,
        &format!("{assertion}{ASSERTION_CLOSE}"),
    );
    assert_eq!(
        consume(&format!("{before}{wrapped}{after}")),
        Err(SamlError::AssertionCount(2))
    );
}

#[test]
fn xsw5_evil_assertion_keeps_the_signature_original_copy_appended() {
    let (before, assertion, after, id) = assertion_signed();
    // The evil assertion carries the original Signature (whose Reference names the original
    // ID); the untouched original is appended after it.
    let evil_other_id = with_id(&evil_content(&assertion), &id, EVIL_ID);
    let original_unsigned = without_signature(&assertion);
    assert_eq!(
        consume(&format!(
            "{before}{evil_other_id}{original_unsigned}{after}"
        )),
        Err(SamlError::AssertionCount(2))
    );
    // Same with the ID kept on both copies.
    let evil_same_id = evil_content(&assertion);
    assert_eq!(
        consume(&format!("{before}{evil_same_id}{original_unsigned}{after}")),
        Err(SamlError::DuplicateId(id))
    );
}

#[test]
fn xsw6_original_inside_the_signature_of_the_evil_assertion() {
    let (before, assertion, after, id) = assertion_signed();
    let evil = with_id(&evil_content(&assertion), &id, EVIL_ID);
    // The signed original, signature and all: its Signature's Id now occurs twice.
    let wrapped = inside_signature(&evil, &assertion);
    assert_eq!(
        consume(&format!("{before}{wrapped}{after}")),
        Err(SamlError::DuplicateId("Signature2".into()))
    );
    // The original without its signature.
    let wrapped = inside_signature(&evil, &without_signature(&assertion));
    assert_eq!(
        consume(&format!("{before}{wrapped}{after}")),
        Err(SamlError::AssertionCount(2))
    );
}

#[test]
fn xsw7_signed_assertion_moved_under_extensions() {
    let (before, assertion, after, id) = assertion_signed();
    let evil = with_id(&without_signature(&evil_content(&assertion)), &id, EVIL_ID);
    let extensions = format!("<ns0:Extensions>{assertion}</ns0:Extensions>");
    let before_with_ext = replace_once(&before, STATUS, &format!("{extensions}{STATUS}"));
    assert_eq!(
        consume(&format!("{before_with_ext}{evil}{after}")),
        Err(SamlError::AssertionCount(2))
    );
    // The signed assertion under Extensions and nothing else: not where an assertion goes.
    assert_eq!(
        consume(&format!("{before_with_ext}{after}")),
        Err(SamlError::Malformed(
            "the Assertion is not a child of the Response"
        ))
    );
}

#[test]
fn xsw8_original_in_an_object_of_the_evil_assertion_signature() {
    let (before, assertion, after, id) = assertion_signed();
    let original_unsigned = without_signature(&assertion);
    for evil_id in [id.as_str(), EVIL_ID] {
        let evil = if evil_id == id {
            evil_content(&assertion)
        } else {
            with_id(&evil_content(&assertion), &id, evil_id)
        };
        let evil = inside_signature(&evil, &object(&original_unsigned));
        let expected = if evil_id == id {
            SamlError::DuplicateId(id.clone())
        } else {
            SamlError::AssertionCount(2)
        };
        assert_eq!(consume(&format!("{before}{evil}{after}")), Err(expected));
    }
}

// ---- Single defences in isolation ------------------------------------------------------

#[test]
fn duplicate_ids_anywhere_are_refused() {
    let (before, assertion, after, id) = assertion_signed();
    let extensions =
        format!("<ns0:Extensions><x:Thing xmlns:x=\"urn:example\" ID=\"{id}\"/></ns0:Extensions>");
    let before_with_ext = replace_once(&before, STATUS, &format!("{extensions}{STATUS}"));
    assert_eq!(
        consume(&format!("{before_with_ext}{assertion}{after}")),
        Err(SamlError::DuplicateId(id.clone()))
    );
    // `Id` and `xml:id` count as IDs too.
    for attribute in ["Id", "id", "xml:id"] {
        let extensions = format!("<ns0:Extensions><x:Thing xmlns:x=\"urn:example\" {attribute}=\"{id}\"/></ns0:Extensions>");
        let before_with_ext = replace_once(&before, STATUS, &format!("{extensions}{STATUS}"));
        assert_eq!(
            consume(&format!("{before_with_ext}{assertion}{after}")),
            Err(SamlError::DuplicateId(id.clone())),
            "{attribute}"
        );
    }
}

#[test]
fn signature_moved_to_the_response_does_not_cover_an_edited_assertion() {
    let (before, assertion, after, _) = assertion_signed();
    let sig = signature(&assertion);
    let evil = without_signature(&evil_content(&assertion));
    let before_with_sig = replace_once(&before, STATUS, &format!("{sig}{STATUS}"));
    assert_eq!(
        consume(&format!("{before_with_sig}{evil}{after}")),
        Err(SamlError::Reference(
            "URI is not #ID of the enveloping element"
        ))
    );
}

#[test]
fn stray_signatures_are_refused() {
    let (before, assertion, after, _) = assertion_signed();
    let sig = signature(&assertion);
    let extensions = |inner: &str| {
        replace_once(
            &before,
            STATUS,
            &format!("<ns0:Extensions>{inner}</ns0:Extensions>{STATUS}"),
        )
    };
    // A copy of the signature in Extensions: its Id is duplicated...
    assert_eq!(
        consume(&format!("{}{assertion}{after}", extensions(&sig))),
        Err(SamlError::DuplicateId("Signature2".into()))
    );
    // ... and without the Id it is a signature where none may be.
    let copy = replace_once(&sig, " Id=\"Signature2\"", "");
    assert_eq!(
        consume(&format!("{}{assertion}{after}", extensions(&copy))),
        Err(SamlError::SignaturePlacement)
    );
    // A signature deeper in the assertion.
    let deeper = replace_once(
        &assertion,
        "</ns1:Subject>",
        &format!("{copy}</ns1:Subject>"),
    );
    assert_eq!(
        consume(&format!("{before}{deeper}{after}")),
        Err(SamlError::SignaturePlacement)
    );
    // Two signatures directly in the assertion.
    let twice = replace_once(&assertion, &sig, &format!("{sig}{copy}"));
    assert_eq!(
        consume(&format!("{before}{twice}{after}")),
        Err(SamlError::SignaturePlacement)
    );
}

#[test]
fn signature_must_be_the_single_reference_to_its_parent() {
    let (before, assertion, after, id) = assertion_signed();
    let reference = element(&assertion, "<ns2:Reference ", "</ns2:Reference>").to_string();
    // Two references (the second one to the same element).
    let two = replace_once(&assertion, &reference, &format!("{reference}{reference}"));
    assert_eq!(
        consume(&format!("{before}{two}{after}")),
        Err(SamlError::Reference(
            "SignedInfo must hold exactly one Reference"
        ))
    );
    // Whole-document reference, and a reference to another element.
    for uri in ["", "#id-elsewhere", &id] {
        let other = replace_once(
            &assertion,
            &format!("URI=\"#{id}\""),
            &format!("URI=\"{uri}\""),
        );
        assert!(
            matches!(
                consume(&format!("{before}{other}{after}")),
                Err(SamlError::Reference(_))
            ),
            "{uri:?}"
        );
    }
    // No ds:Object in the signature.
    let with_object = inside_signature(&assertion, &object("<x:y xmlns:x=\"urn:example\"/>"));
    assert_eq!(
        consume(&format!("{before}{with_object}{after}")),
        Err(SamlError::Malformed("ds:Signature children"))
    );
}

#[test]
fn lookalike_namespaces_are_not_saml() {
    let (before, assertion, after, id) = assertion_signed();
    // An evil "Assertion" in a namespace that only looks like SAML's, next to the signed one.
    let evil = with_id(&without_signature(&evil_content(&assertion)), &id, EVIL_ID)
        .replace("ns1:", "sarnl:")
        .replacen(
            "<sarnl:Assertion ",
            "<sarnl:Assertion xmlns:sarnl=\"urn:oasis:names:tc:SAML:2.0:assertiom\" ",
            1,
        );
    assert_eq!(
        consume(&format!("{before}{evil}{assertion}{after}")),
        Err(SamlError::Malformed("unexpected element in Response"))
    );
    // The signed assertion's prefix re-bound to another namespace: it is not an assertion.
    let rebound = assertion.replacen(
        ASSERTION_OPEN,
        "<ns1:Assertion xmlns:ns1=\"urn:oasis:names:tc:SAML:2.0:assertiom\" ",
        1,
    );
    assert!(consume(&format!("{before}{rebound}{after}")).is_err());
}

#[test]
fn transforms_are_exactly_enveloped_then_exc_c14n() {
    let (before, assertion, after, _) = assertion_signed();
    let enveloped =
        r#"<ns2:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#;
    let exc = r#"<ns2:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;
    for (from, to) in [
        (exc.to_string(), String::new()),
        (enveloped.to_string(), String::new()),
        (exc.to_string(), format!("{exc}{exc}")),
        (
            exc.to_string(),
            r#"<ns2:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>"#.to_string(),
        ),
        (
            exc.to_string(),
            r#"<ns2:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>"#.to_string(),
        ),
        (
            r#"<ns2:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#.to_string(),
            r#"<ns2:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>"#.to_string(),
        ),
    ] {
        let changed = replace_once(&assertion, &from, &to);
        assert!(
            matches!(consume(&format!("{before}{changed}{after}")), Err(SamlError::UnsupportedAlgorithm(_))),
            "{to}"
        );
    }
}
