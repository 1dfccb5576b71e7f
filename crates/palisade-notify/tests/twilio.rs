#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `TwilioSender` against a loopback HTTP server that emulates Twilio's two endpoints: it
//! checks basic auth, the form fields and the TwiML, and answers 201 with JSON like Twilio.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use palisade_core::secret::Secret;
use palisade_notify::{Channel, DeliveryError, Message, Sender, TwilioConfig, TwilioSender};
use tokio::net::TcpListener;

mod common;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-5f2b9c";
const FROM: &str = "+15005550006";
const CODE: &str = "482913";
/// Like Twilio's magic test number: refused with 400.
const INVALID_TO: &str = "+15005550001";

#[derive(Debug, Clone)]
struct Call {
    resource: String,
    fields: Vec<(String, String)>,
}

impl Call {
    fn field(&self, name: &str) -> Option<&str> {
        let mut values = self.fields.iter().filter(|(k, _)| k == name);
        let value = values.next().map(|(_, v)| v.as_str());
        assert!(values.next().is_none(), "duplicate field {name}");
        value
    }
}

#[derive(Clone, Default)]
struct Emulator {
    calls: Arc<Mutex<Vec<Call>>>,
    unauthorized: Arc<Mutex<usize>>,
}

fn twilio_error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"code": code, "message": message, "status": status.as_u16()})),
    )
        .into_response()
}

async fn create(
    State(emulator): State<Emulator>,
    Path((sid, resource)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected);
    if !authorized || sid != SID {
        *emulator.unauthorized.lock().unwrap() += 1;
        return twilio_error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return twilio_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, 0, "form expected");
    }
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let call = Call {
        resource: resource.clone(),
        fields,
    };
    let content = match resource.as_str() {
        "Messages.json" => "Body",
        "Calls.json" => "Twiml",
        _ => return twilio_error(StatusCode::NOT_FOUND, 20404, "not found"),
    };
    let (Some(to), Some(_), Some(_)) = (call.field("To"), call.field("From"), call.field(content))
    else {
        return twilio_error(StatusCode::BAD_REQUEST, 21604, "missing parameter");
    };
    if to == INVALID_TO {
        return twilio_error(StatusCode::BAD_REQUEST, 21211, "invalid 'To' phone number");
    }
    let to = to.to_owned();
    emulator.calls.lock().unwrap().push(call);
    let (prefix, status) = if content == "Body" {
        ("SM", "queued")
    } else {
        ("CA", "queued")
    };
    (
        StatusCode::CREATED,
        Json(serde_json::json!({
            "sid": format!("{prefix}0123456789abcdef0123456789abcdef"),
            "account_sid": SID,
            "to": to,
            "from": FROM,
            "status": status,
        })),
    )
        .into_response()
}

async fn start() -> (SocketAddr, Emulator) {
    let emulator = Emulator::default();
    let router = Router::new()
        .route("/2010-04-01/Accounts/{sid}/{resource}", post(create))
        .with_state(emulator.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, emulator)
}

fn sender(addr: SocketAddr, token: &str) -> TwilioSender {
    TwilioSender::new(TwilioConfig {
        base_url: format!("http://{addr}"),
        account_sid: SID.into(),
        auth_token: Secret::new(token.into()),
        from: FROM.into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn assert_no_secrets(err: &DeliveryError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(CODE), "error leaks the code: {shown}");
        assert!(!shown.contains(TOKEN), "error leaks the token: {shown}");
        assert!(
            !shown.contains("wrong-token"),
            "error leaks the token: {shown}"
        );
    }
}

#[tokio::test]
async fn sms_is_posted_as_a_form_with_basic_auth() {
    let (addr, emulator) = start().await;
    let sender = sender(addr, TOKEN);
    assert_eq!(sender.channels(), &[Channel::Sms, Channel::Voice]);
    assert!(!format!("{sender:?}").contains(TOKEN));

    let text = format!("Palisade code: {CODE} & more=1+2 ünïcode");
    sender
        .send(&Message::sms("+14155550100", text.clone()))
        .await
        .unwrap();

    let calls = emulator.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.resource, "Messages.json");
    assert_eq!(call.field("To"), Some("+14155550100"));
    assert_eq!(call.field("From"), Some(FROM));
    assert_eq!(call.field("Body"), Some(text.as_str()));
    assert_eq!(call.fields.len(), 3, "{:?}", call.fields);
    assert_eq!(*emulator.unauthorized.lock().unwrap(), 0);
}

#[tokio::test]
async fn voice_call_says_the_digits_twice_in_escaped_twiml() {
    let (addr, emulator) = start().await;
    let text = format!("Your code is {CODE}. <Hangup/> & \"bye\"");
    sender(addr, TOKEN)
        .send(&Message::voice("+14155550100", text))
        .await
        .unwrap();

    let calls = emulator.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.resource, "Calls.json");
    assert_eq!(call.field("To"), Some("+14155550100"));
    assert_eq!(call.field("From"), Some(FROM));
    assert_eq!(call.fields.len(), 3, "{:?}", call.fields);
    let twiml = call.field("Twiml").unwrap();

    // Well-formed XML whose only elements are Response, Say, Pause: the text's `<Hangup/>`
    // stayed text.
    let doc = roxmltree::Document::parse(twiml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "Response");
    let children: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    let names: Vec<&str> = children.iter().map(|n| n.tag_name().name()).collect();
    assert_eq!(names, ["Say", "Pause", "Say"], "{twiml}");
    assert_eq!(
        root.descendants().filter(|n| n.is_element()).count(),
        4,
        "{twiml}"
    );
    let spoken = "Your code is 4, 8, 2, 9, 1, 3. <Hangup/> & \"bye\"";
    for say in [children[0], children[2]] {
        assert_eq!(say.text(), Some(spoken), "{twiml}");
        assert_eq!(say.children().count(), 1, "{twiml}");
    }
    assert!(
        !twiml.contains(CODE),
        "digits must be spoken one by one: {twiml}"
    );
}

#[tokio::test]
async fn wrong_token_is_rejected_without_leaking_it() {
    let (addr, emulator) = start().await;
    let err = sender(addr, "wrong-token")
        .send(&Message::sms("+14155550100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 401 });
    assert_no_secrets(&err);
    assert_eq!(*emulator.unauthorized.lock().unwrap(), 1);
    assert!(emulator.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn provider_refusal_is_rejected() {
    let (addr, emulator) = start().await;
    let err = sender(addr, TOKEN)
        .send(&Message::voice(INVALID_TO, format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 400 });
    assert_no_secrets(&err);
    assert!(emulator.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn email_and_bad_numbers_never_reach_the_provider() {
    let (addr, emulator) = start().await;
    let sender = sender(addr, TOKEN);
    let err = sender
        .send(&Message::email(
            "a@example.com",
            "s",
            format!("code {CODE}"),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::UnsupportedChannel {
            channel: Channel::Email
        }
    );
    let err = sender
        .send(&Message::voice("0415 555 0100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::InvalidRecipient {
            channel: Channel::Voice
        }
    );
    assert!(emulator.calls.lock().unwrap().is_empty());
    assert_eq!(*emulator.unauthorized.lock().unwrap(), 0);
}

#[tokio::test]
async fn unreachable_provider_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = sender(addr, TOKEN)
        .send(&Message::sms("+14155550100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Connect {
            host: addr.to_string()
        }
    );
    assert_no_secrets(&err);
}

#[tokio::test]
async fn untrusted_certificate_gets_no_credentials() {
    let (addr, log) = common::untrusted_tls_server().await;
    let sender = TwilioSender::new(TwilioConfig {
        base_url: format!("https://{addr}"),
        ..TwilioConfig::new(SID, Secret::new(TOKEN.into()), FROM)
    })
    .unwrap();
    let err = sender
        .send(&Message::sms("+14155550100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Tls {
            host: addr.to_string()
        }
    );
    assert_no_secrets(&err);
    use std::sync::atomic::Ordering;
    assert!(log.connections.load(Ordering::SeqCst) >= 1);
    assert_eq!(log.handshakes.load(Ordering::SeqCst), 0);
    assert_eq!(log.bytes_after_handshake.load(Ordering::SeqCst), 0);
}
