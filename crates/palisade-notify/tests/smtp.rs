#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `SmtpSender` against a real SMTP server on loopback: the minimal server below speaks the
//! protocol (220 greeting, EHLO/HELO, AUTH PLAIN/LOGIN, MAIL FROM, RCPT TO, DATA with
//! dot-unstuffing, RSET, NOOP, QUIT) over a tokio `TcpListener` and records what it receives.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use palisade_core::secret::Secret;
use palisade_notify::{Channel, DeliveryError, Message, Sender, SmtpConfig, SmtpSender};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod common;

const CODE: &str = "482913";
const PASSWORD: &str = "hunter2-smtp-password";

/// One message as the server received it.
#[derive(Debug, Clone, Default)]
struct Received {
    mail_from: String,
    rcpt_to: Vec<String>,
    /// The message after dot-unstuffing, CRLF line endings, without the final `.` line.
    data: String,
}

#[derive(Debug, Clone, Default)]
struct Behaviour {
    /// Advertise AUTH PLAIN LOGIN and accept these credentials.
    auth: Option<(String, String)>,
    /// Answer RCPT TO with this code.
    reject_rcpt: Option<u16>,
    /// Accept connections but never say anything.
    silent: bool,
}

#[derive(Debug, Default)]
struct Log {
    connections: usize,
    /// Every command line received (outside DATA), verbatim.
    commands: Vec<String>,
    /// Credentials received through AUTH (accepted or not).
    auth: Vec<(String, String)>,
    messages: Vec<Received>,
}

struct SmtpServer {
    addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl SmtpServer {
    async fn start(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = Arc::clone(&log);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                let log = Arc::clone(&shared);
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    if behaviour.silent {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(stream);
                        return;
                    }
                    // A broken connection just ends the session, as with a real server.
                    let _ = session(stream, &behaviour, &log).await;
                });
            }
        });
        SmtpServer { addr, log }
    }

    fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    fn messages(&self) -> Vec<Received> {
        self.log.lock().unwrap().messages.clone()
    }

    fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().commands.clone()
    }
}

/// The angle-bracketed address after `MAIL FROM:` or `RCPT TO:` (ESMTP parameters dropped).
fn path_argument(rest: &str) -> Option<String> {
    let start = rest.find('<')?;
    let end = rest[start..].find('>')? + start;
    Some(rest[start + 1..end].to_owned())
}

fn b64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn session(
    stream: TcpStream,
    behaviour: &Behaviour,
    log: &Mutex<Log>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    macro_rules! reply {
        ($($arg:tt)*) => {{
            write.write_all(format!($($arg)*).as_bytes()).await?;
            write.write_all(b"\r\n").await?;
            write.flush().await?;
        }};
    }
    macro_rules! read_line {
        () => {{
            line.clear();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned()
        }};
    }

    reply!("220 mx.test ESMTP palisade-notify test server");
    let mut greeted = false;
    let mut current: Option<Received> = None;
    loop {
        let command = read_line!();
        log.lock().unwrap().commands.push(command.clone());
        let upper = command.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_owned();
        match verb.as_str() {
            "EHLO" => {
                greeted = true;
                current = None;
                let mut lines = vec!["mx.test greets you", "8BITMIME", "SMTPUTF8", "PIPELINING"];
                if behaviour.auth.is_some() {
                    lines.push("AUTH PLAIN LOGIN");
                }
                lines.push("SIZE 10485760");
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                    reply!("250{sep}{l}");
                }
            }
            "HELO" => {
                greeted = true;
                current = None;
                reply!("250 mx.test");
            }
            "AUTH" if behaviour.auth.is_some() && greeted => {
                let words: Vec<&str> = command.split_whitespace().collect();
                let mechanism = words.get(1).map(|m| m.to_ascii_uppercase());
                let credentials = match mechanism.as_deref() {
                    Some("PLAIN") => {
                        let initial = match words.get(2) {
                            Some(initial) => (*initial).to_owned(),
                            None => {
                                reply!("334 ");
                                read_line!()
                            }
                        };
                        let decoded = b64(&initial);
                        let mut parts = decoded.split('\0');
                        let _authzid = parts.next();
                        let user = parts.next().unwrap_or("").to_owned();
                        let pass = parts.next().unwrap_or("").to_owned();
                        (user, pass)
                    }
                    Some("LOGIN") => {
                        reply!("334 VXNlcm5hbWU6");
                        let user = b64(&read_line!());
                        reply!("334 UGFzc3dvcmQ6");
                        let pass = b64(&read_line!());
                        (user, pass)
                    }
                    _ => {
                        reply!("504 5.5.4 Unrecognized authentication type");
                        continue;
                    }
                };
                log.lock().unwrap().auth.push(credentials.clone());
                if Some(&credentials) == behaviour.auth.as_ref() {
                    reply!("235 2.7.0 Authentication successful");
                } else {
                    reply!("535 5.7.8 Authentication credentials invalid");
                }
            }
            "MAIL" if upper.starts_with("MAIL FROM:") && greeted => match path_argument(&command) {
                Some(from) => {
                    current = Some(Received {
                        mail_from: from,
                        ..Received::default()
                    });
                    reply!("250 2.1.0 OK");
                }
                None => reply!("501 5.5.4 Syntax: MAIL FROM:<address>"),
            },
            "RCPT" if upper.starts_with("RCPT TO:") => {
                match (&mut current, path_argument(&command)) {
                    (None, _) => reply!("503 5.5.1 MAIL first"),
                    (Some(_), None) => reply!("501 5.5.4 Syntax: RCPT TO:<address>"),
                    (Some(_), Some(_)) if behaviour.reject_rcpt.is_some() => {
                        let code = behaviour.reject_rcpt.unwrap_or(550);
                        reply!("{code} 5.1.1 Recipient refused");
                    }
                    (Some(message), Some(to)) => {
                        message.rcpt_to.push(to);
                        reply!("250 2.1.5 OK");
                    }
                }
            }
            "DATA" => match current.take() {
                Some(mut message) if !message.rcpt_to.is_empty() => {
                    reply!("354 End data with <CR><LF>.<CR><LF>");
                    loop {
                        line.clear();
                        if reader.read_until(b'\n', &mut line).await? == 0 {
                            return Ok(());
                        }
                        let text = String::from_utf8_lossy(&line).into_owned();
                        let content = text.trim_end_matches(['\r', '\n']);
                        if content == "." {
                            break;
                        }
                        // RFC 5321 4.5.2: a leading dot was doubled by the client.
                        let unstuffed = text.strip_prefix('.').unwrap_or(&text);
                        message.data.push_str(unstuffed);
                    }
                    log.lock().unwrap().messages.push(message);
                    reply!("250 2.0.0 OK queued");
                }
                other => {
                    current = other;
                    reply!("503 5.5.1 RCPT first");
                }
            },
            "RSET" => {
                current = None;
                reply!("250 2.0.0 OK");
            }
            "NOOP" => reply!("250 2.0.0 OK"),
            "QUIT" => {
                reply!("221 2.0.0 Bye");
                return Ok(());
            }
            _ => reply!("502 5.5.2 Command not recognized"),
        }
    }
}

/// Splits a received message into its (unfolded) headers and its body.
fn parse(data: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = data.split_once("\r\n\r\n").unwrap();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().unwrap();
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The body after undoing the transfer encoding the client chose.
fn decoded_body(headers: &[(String, String)], body: &str) -> String {
    let encoding = header(headers, "Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .to_ascii_lowercase();
    match encoding.as_str() {
        "7bit" | "8bit" | "binary" => body.to_owned(),
        "base64" => {
            let joined: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(joined)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        }
        "quoted-printable" => {
            let mut out = Vec::new();
            let bytes = body.replace("=\r\n", "").into_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        other => panic!("unexpected transfer encoding {other}"),
    }
}

fn sender(url: String) -> SmtpSender {
    SmtpSender::new(SmtpConfig {
        url,
        from: "Palisade <palisade@example.com>".into(),
        username: None,
        password: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn code_email() -> Message {
    Message::email(
        "alice@example.com",
        "Your Palisade sign-in code",
        format!(
            "Your Palisade sign-in code is {CODE}.\n.This line starts with a dot.\n..And this one with two.\nIt expires in 5 minutes.\n"
        ),
    )
}

fn assert_no_secrets(err: &DeliveryError) {
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(CODE), "error leaks the code: {shown}");
        assert!(
            !shown.contains("sign-in code"),
            "error leaks the text: {shown}"
        );
        assert!(
            !shown.contains(PASSWORD),
            "error leaks the password: {shown}"
        );
        assert!(
            !shown.contains("alice@"),
            "error leaks the recipient: {shown}"
        );
    }
}

#[tokio::test]
async fn delivers_the_code_to_a_real_smtp_server() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let sender = sender(server.url());
    assert_eq!(sender.channels(), &[Channel::Email]);

    sender.send(&code_email()).await.unwrap();

    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let received = &messages[0];
    assert_eq!(received.mail_from, "palisade@example.com");
    assert_eq!(received.rcpt_to, vec!["alice@example.com".to_owned()]);
    let (headers, body) = parse(&received.data);
    assert_eq!(
        header(&headers, "Subject"),
        Some("Your Palisade sign-in code")
    );
    assert!(header(&headers, "To")
        .unwrap()
        .contains("alice@example.com"));
    assert!(header(&headers, "From")
        .unwrap()
        .contains("palisade@example.com"));
    assert!(header(&headers, "Date").is_some());
    assert!(header(&headers, "Message-ID").is_some());
    assert!(header(&headers, "Content-Type")
        .unwrap()
        .starts_with("text/plain"));
    let body = decoded_body(&headers, &body);
    assert!(
        body.contains(&format!("sign-in code is {CODE}.")),
        "{body:?}"
    );
    // Dot-stuffed by the client, unstuffed by the server: the text arrives as written.
    assert!(
        body.contains("\r\n.This line starts with a dot.\r\n..And this one with two.\r\n"),
        "{body:?}"
    );
    let commands = server.commands();
    assert!(
        commands.iter().any(|c| c.starts_with("EHLO ")),
        "{commands:?}"
    );
    assert!(
        !commands.iter().any(|c| c.starts_with("AUTH")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn utf8_text_arrives_intact() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let text = format!("Ihr Anmeldecode lautet {CODE} – gültig für 5 Minuten. 🔐\n");
    sender(server.url())
        .send(&Message::email(
            "bob@example.com",
            "Anmeldecode",
            text.clone(),
        ))
        .await
        .unwrap();
    let messages = server.messages();
    assert_eq!(messages.len(), 1);
    let (headers, body) = parse(&messages[0].data);
    assert!(header(&headers, "Content-Type")
        .unwrap()
        .to_ascii_lowercase()
        .contains("charset=utf-8"));
    assert_eq!(decoded_body(&headers, &body).trim_end(), text.trim_end());
}

#[tokio::test]
async fn authenticates_on_loopback() {
    let server = SmtpServer::start(Behaviour {
        auth: Some(("palisade".into(), PASSWORD.into())),
        ..Behaviour::default()
    })
    .await;
    let sender = SmtpSender::new(SmtpConfig {
        username: Some("palisade".into()),
        password: Some(Secret::new(PASSWORD.into())),
        ..SmtpConfig::new(server.url(), "palisade@example.com")
    })
    .unwrap();
    assert!(!format!("{sender:?}").contains(PASSWORD));

    sender.send(&code_email()).await.unwrap();

    let log = server.log.lock().unwrap();
    assert_eq!(log.auth, vec![("palisade".to_owned(), PASSWORD.to_owned())]);
    assert_eq!(log.messages.len(), 1);
    assert_eq!(
        log.messages[0].rcpt_to,
        vec!["alice@example.com".to_owned()]
    );
}

#[tokio::test]
async fn wrong_password_is_rejected_without_leaking_it() {
    let server = SmtpServer::start(Behaviour {
        auth: Some(("palisade".into(), "the-right-password".into())),
        ..Behaviour::default()
    })
    .await;
    let sender = SmtpSender::new(SmtpConfig {
        username: Some("palisade".into()),
        password: Some(Secret::new(PASSWORD.into())),
        ..SmtpConfig::new(server.url(), "palisade@example.com")
    })
    .unwrap();
    let err = sender.send(&code_email()).await.unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 535 });
    assert_no_secrets(&err);
    assert!(server.messages().is_empty());
    assert!(!server.commands().iter().any(|c| c.starts_with("MAIL")));
}

#[tokio::test]
async fn refused_recipient_is_rejected() {
    let server = SmtpServer::start(Behaviour {
        reject_rcpt: Some(550),
        ..Behaviour::default()
    })
    .await;
    let err = sender(server.url()).send(&code_email()).await.unwrap_err();
    assert_eq!(err, DeliveryError::Rejected { status: 550 });
    assert_no_secrets(&err);
    assert!(server.messages().is_empty());
    assert!(!server.commands().iter().any(|c| c == "DATA"));
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_without_the_text() {
    // Bind, learn the port, close: nothing listens there any more.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let err = sender(format!("smtp://{addr}"))
        .send(&code_email())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Connect {
            host: addr.to_string()
        }
    );
    assert!(err.to_string().contains(&addr.to_string()));
    assert_no_secrets(&err);
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = SmtpServer::start(Behaviour {
        silent: true,
        ..Behaviour::default()
    })
    .await;
    let sender = SmtpSender::new(SmtpConfig {
        timeout: Duration::from_millis(300),
        ..SmtpConfig::new(server.url(), "palisade@example.com")
    })
    .unwrap();
    let started = Instant::now();
    let err = sender.send(&code_email()).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        err,
        DeliveryError::Timeout {
            host: server.addr.to_string()
        }
    );
    assert_no_secrets(&err);
    assert_eq!(server.log.lock().unwrap().connections, 1);
}

#[tokio::test]
async fn required_starttls_is_never_downgraded() {
    // The server offers no STARTTLS: neither the password nor the message may be sent.
    let server = SmtpServer::start(Behaviour {
        auth: Some(("palisade".into(), PASSWORD.into())),
        ..Behaviour::default()
    })
    .await;
    let sender = SmtpSender::new(SmtpConfig {
        username: Some("palisade".into()),
        password: Some(Secret::new(PASSWORD.into())),
        ..SmtpConfig::new(
            format!("smtp+starttls://{}", server.addr),
            "palisade@example.com",
        )
    })
    .unwrap();
    let err = sender.send(&code_email()).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Tls {
            host: server.addr.to_string()
        }
    );
    assert_no_secrets(&err);
    let log = server.log.lock().unwrap();
    assert!(log.auth.is_empty());
    assert!(log.messages.is_empty());
    assert!(
        !log.commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL") || c == "DATA"),
        "{:?}",
        log.commands
    );
}

#[tokio::test]
async fn smtps_to_a_cleartext_server_fails_tls() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let sender = SmtpSender::new(SmtpConfig::new(
        format!("smtps://{}", server.addr),
        "palisade@example.com",
    ))
    .unwrap();
    let err = sender.send(&code_email()).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Tls {
            host: server.addr.to_string()
        }
    );
    assert_no_secrets(&err);
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn wrong_channel_and_bad_recipient_never_connect() {
    let server = SmtpServer::start(Behaviour::default()).await;
    let sender = sender(server.url());
    let err = sender
        .send(&Message::sms("+14155550100", format!("code {CODE}")))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::UnsupportedChannel {
            channel: Channel::Sms
        }
    );
    let err = sender
        .send(&Message::email(
            "not an address",
            "s",
            format!("code {CODE}"),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DeliveryError::InvalidRecipient {
            channel: Channel::Email
        }
    );
    assert_no_secrets(&err);
    assert_eq!(server.log.lock().unwrap().connections, 0);
}

#[tokio::test]
async fn header_injection_through_the_subject_is_neutralised() {
    let server = SmtpServer::start(Behaviour::default()).await;
    sender(server.url())
        .send(&Message::email(
            "alice@example.com",
            "Code\r\nBcc: mallory@example.com",
            format!("code {CODE}"),
        ))
        .await
        .unwrap();
    let messages = server.messages();
    assert_eq!(messages[0].rcpt_to, vec!["alice@example.com".to_owned()]);
    let (headers, _) = parse(&messages[0].data);
    assert!(header(&headers, "Bcc").is_none(), "{headers:?}");
}

#[tokio::test]
async fn smtps_refuses_an_untrusted_certificate() {
    let (addr, log) = common::untrusted_tls_server().await;
    let sender = SmtpSender::new(SmtpConfig {
        username: Some("palisade".into()),
        password: Some(Secret::new(PASSWORD.into())),
        ..SmtpConfig::new(format!("smtps://{addr}"), "palisade@example.com")
    })
    .unwrap();
    let err = sender.send(&code_email()).await.unwrap_err();
    assert_eq!(
        err,
        DeliveryError::Tls {
            host: addr.to_string()
        }
    );
    assert_no_secrets(&err);
    use std::sync::atomic::Ordering;
    assert_eq!(log.connections.load(Ordering::SeqCst), 1);
    assert_eq!(log.handshakes.load(Ordering::SeqCst), 0);
    assert_eq!(log.bytes_after_handshake.load(Ordering::SeqCst), 0);
}
