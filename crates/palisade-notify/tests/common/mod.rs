//! A TLS server on loopback whose certificate is valid for 127.0.0.1 but self-signed, so a
//! client that verifies certificates must refuse it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// What the untrusted server saw.
#[derive(Default)]
pub struct TlsLog {
    pub connections: AtomicUsize,
    pub handshakes: AtomicUsize,
    pub bytes_after_handshake: AtomicUsize,
}

pub async fn untrusted_tls_server() -> (SocketAddr, Arc<TlsLog>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = certified.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(TlsLog::default());
    let shared = Arc::clone(&log);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let log = Arc::clone(&shared);
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                log.handshakes.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    log.bytes_after_handshake.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, log)
}
