#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `WebhookSender` against real HTTP receivers (axum) on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use palisade_core::secret::Secret;
use palisade_notify::{
    verify_webhook_signature, Channel, DeliveryError, Message, Sender, WebhookConfig,
    WebhookSender, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use tokio::net::TcpListener;

const SECRET: &str = "whsec-0123456789abcdef-loopback";
const CODE: &str = "482913";

#[derive(Debug, Clone)]
struct Request {
    path_and_query: String,
    content_type: Option<String>,
    timestamp: String,
    signature_ok: bool,
    body: serde_json::Value,
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Request>>>,
    hits: Arc<Mutex<usize>>,
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// A receiver that checks the signature like a real gateway: 200 if valid, 401 if not.
async fn verifying(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    *receiver.hits.lock().unwrap() += 1;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let timestamp = header(TIMESTAMP_HEADER).unwrap_or_default();
    let signature = header(SIGNATURE_HEADER).unwrap_or_default();
    let signature_ok = verify_webhook_signature(SECRET.as_bytes(), &timestamp, &body, &signature)
        && signature == independent_signature(&timestamp, &body);
    receiver.requests.lock().unwrap().push(Request {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        content_type: header("content-type"),
        timestamp,
        signature_ok,
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });
    if signature_ok {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

/// The documented wire format, computed without the crate: `sha256=` and the lowercase hex
/// HMAC-SHA256 of `timestamp + "." + body`.
fn independent_signature(timestamp: &str, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn start_verifying() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let router = Router::new()
        .route("/hooks/sms", post(verifying))
        .with_state(receiver.clone());
    (serve(router).await, receiver)
}

fn sender(url: String, secret: &str, timeout: Duration) -> WebhookSender {
    WebhookSender::new(WebhookConfig {
        url,
        secret: Secret::new(secret.into()),
        timeout,
    })
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn assert_no_secrets(err: &DeliveryError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(CODE), "error leaks the code: {shown}");
        assert!(!shown.contains(SECRET), "error leaks the secret: {shown}");
        assert!(!shown.contains("+1415"), "error leaks the number: {shown}");
        assert!(
            !shown.contains("token="),
            "error leaks the URL query: {shown}"
        );
    }
}

#[tokio::test]
async fn delivers_signed_sms_and_voice() {
    let (addr, receiver) = start_verifying().await;
    let sender = sender(
        format!("http://{addr}/hooks/sms?tenant=7"),
        SECRET,
        Duration::from_secs(5),
    );
    assert_eq!(sender.channels(), &[Channel::Sms, Channel::Voice]);

    let text = format!("Palisade code: {CODE} \"quoted\" & <tagged> ünïcode");
    sender
        .send(&Message::sms("+14155550100", text.clone()))
        .await
        .unwrap();
    sender
        .send(&Message::voice(
            "+4930123456",
            format!("Your code is {CODE}"),
        ))
        .await
        .unwrap();

    let requests = receiver.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert!(request.signature_ok, "{request:?}");
        assert_eq!(request.path_and_query, "/hooks/sms?tenant=7");
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        let ts: u64 = request.timestamp.parse().unwrap();
        assert!(ts.abs_diff(now()) < 300, "stale timestamp {ts}");
    }
    assert_eq!(
        requests[0].body,
        serde_json::json!({"number": "+14155550100", "message": text, "channel": "sms"})
    );
    assert_eq!(
        requests[1].body,
        serde_json::json!({
            "number": "+4930123456",
            "message": format!("Your code is {CODE}"),
            "channel": "voice"
        })
    );
}

#[tokio::test]
async fn wrong_secret_fails_verification_and_is_rejected() {
    let (addr, receiver) = start_verifying().await;
    let sender = sender(
        format!("http://{addr}/hooks/sms"),
        "not-the-shared-secret-at-all",
        Duration::from_secs(5),
    );
    let err = sender
        .send(&Message::sms("+14155550100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 401 });
    assert_no_secrets(&err);
    let requests = receiver.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert!(!requests[0].signature_ok);
}

#[tokio::test]
async fn receiver_error_is_rejected_with_its_status() {
    let hits = Arc::new(Mutex::new(0usize));
    let counted = Arc::clone(&hits);
    let router = Router::new().route(
        "/hook",
        post(move || {
            let counted = Arc::clone(&counted);
            async move {
                *counted.lock().unwrap() += 1;
                (StatusCode::INTERNAL_SERVER_ERROR, format!("echo: {CODE}")).into_response()
            }
        }),
    );
    let addr = serve(router).await;
    let err = sender(
        format!("http://{addr}/hook?token=abc"),
        SECRET,
        Duration::from_secs(5),
    )
    .send(&Message::sms("+14155550100", format!("code {CODE}")))
    .await
    .unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 500 });
    assert_no_secrets(&err);
    assert_eq!(*hits.lock().unwrap(), 1, "no retry, one request");
}

#[tokio::test]
async fn slow_receiver_times_out() {
    let router = Router::new().route(
        "/hook",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK
        }),
    );
    let addr = serve(router).await;
    let started = Instant::now();
    let err = sender(
        format!("http://{addr}/hook"),
        SECRET,
        Duration::from_millis(300),
    )
    .send(&Message::voice("+14155550100", format!("code {CODE}")))
    .await
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err,
        DeliveryError::Timeout {
            host: addr.to_string()
        }
    );
    assert_no_secrets(&err);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = sender(
        format!("http://{addr}/hook?token=abc"),
        SECRET,
        Duration::from_secs(5),
    )
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
async fn redirects_are_not_followed() {
    // The configured endpoint redirects elsewhere; nothing may reach the other server.
    let (elsewhere, other) = start_verifying().await;
    let target = format!("http://{elsewhere}/hooks/sms");
    let router = Router::new().route(
        "/hook",
        post(move || {
            let target = target.clone();
            async move {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, target)],
                )
                    .into_response()
            }
        }),
    );
    let addr = serve(router).await;
    let err = sender(
        format!("http://{addr}/hook"),
        SECRET,
        Duration::from_secs(5),
    )
    .send(&Message::sms("+14155550100", format!("code {CODE}")))
    .await
    .unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 307 });
    assert_eq!(*other.hits.lock().unwrap(), 0);
}

#[tokio::test]
async fn email_and_bad_numbers_are_refused_before_connecting() {
    let (addr, receiver) = start_verifying().await;
    let sender = sender(
        format!("http://{addr}/hooks/sms"),
        SECRET,
        Duration::from_secs(5),
    );
    let err = sender
        .send(&Message::email(
            "a@example.com",
            "code",
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
    for bad in [
        "14155550100",
        "+1 415 555 0100",
        "",
        "+0123456789",
        "a@example.com",
    ] {
        let err = sender
            .send(&Message::sms(bad, format!("code {CODE}")))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            DeliveryError::InvalidRecipient {
                channel: Channel::Sms
            },
            "{bad}"
        );
    }
    assert_eq!(*receiver.hits.lock().unwrap(), 0);
}

#[tokio::test]
async fn cleartext_http_is_refused_off_loopback() {
    let err = WebhookSender::new(WebhookConfig::new(
        "http://sms-gateway.example.com/hook",
        Secret::new(SECRET.into()),
    ))
    .unwrap_err();
    assert!(matches!(err, DeliveryError::Config(_)));
    assert!(WebhookSender::new(WebhookConfig::new(
        "https://sms-gateway.example.com/hook",
        Secret::new(SECRET.into()),
    ))
    .is_ok());
}

#[tokio::test]
async fn https_to_a_cleartext_server_fails_tls_and_sends_nothing() {
    let (addr, receiver) = start_verifying().await;
    let err = sender(
        format!("https://{addr}/hooks/sms"),
        SECRET,
        Duration::from_secs(5),
    )
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
    assert!(receiver.requests.lock().unwrap().is_empty());
}
