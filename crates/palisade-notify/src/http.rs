//! What the HTTP senders share: endpoint checks, the client, error mapping.

use std::time::Duration;

use reqwest::{Client, Response, Url};

use crate::{caused_by_tls, is_loopback_host, DeliveryError};

/// A checked HTTP endpoint and the `host:port` label errors and logs may show.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: Url,
    pub(crate) host: String,
}

/// Parses and checks a configured endpoint URL.
///
/// `https` anywhere, `http` only on loopback; no credentials in the URL; no fragment.
/// The error messages never repeat the URL (it may hold a token in its query).
pub(crate) fn endpoint(raw: &str) -> Result<Endpoint, DeliveryError> {
    let url = Url::parse(raw.trim())
        .map_err(|_| DeliveryError::Config("the endpoint URL does not parse"))?;
    let host = url
        .host_str()
        .ok_or(DeliveryError::Config("the endpoint URL has no host"))?
        .to_owned();
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        _ => {
            return Err(DeliveryError::Config(
                "the endpoint URL must use https:// (http:// only on loopback)",
            ))
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DeliveryError::Config(
            "the endpoint URL must not contain credentials",
        ));
    }
    if url.fragment().is_some() {
        return Err(DeliveryError::Config(
            "the endpoint URL must not contain a fragment",
        ));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let host = format!("{host}:{port}");
    Ok(Endpoint { url, host })
}

/// The HTTP client: the given timeout for connecting and for the whole exchange, no
/// redirects, no proxies (only the configured endpoint is ever contacted), rustls with ring.
pub(crate) fn client(timeout: Duration) -> Result<Client, DeliveryError> {
    if timeout.is_zero() {
        return Err(DeliveryError::Config("the timeout must be positive"));
    }
    Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("palisade-notify/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| DeliveryError::Config("the HTTP client could not be built"))
}

/// Maps a transport error to a [`DeliveryError`] that names only the host.
pub(crate) fn map_error(err: &reqwest::Error, host: &str) -> DeliveryError {
    let host = host.to_owned();
    if err.is_timeout() {
        DeliveryError::Timeout { host }
    } else if caused_by_tls(err) {
        DeliveryError::Tls { host }
    } else if err.is_connect() || err.is_request() || err.is_body() {
        // Refused, reset, TLS handshake or the exchange broke off.
        DeliveryError::Connect { host }
    } else {
        DeliveryError::Protocol { host }
    }
}

/// 2xx is delivered; anything else is [`DeliveryError::Rejected`] (the body is not read: it
/// could echo the message).
pub(crate) fn check_status(response: &Response) -> Result<(), DeliveryError> {
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(DeliveryError::Rejected {
            status: status.as_u16(),
        })
    }
}

/// Sends a prepared request and checks the answer.
pub(crate) async fn execute(
    request: reqwest::RequestBuilder,
    host: &str,
) -> Result<(), DeliveryError> {
    let response = request.send().await.map_err(|e| map_error(&e, host))?;
    check_status(&response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(endpoint("https://sms.example.com/hook").is_ok());
        assert!(endpoint("http://127.0.0.1:9000/hook").is_ok());
        assert!(endpoint("http://[::1]:9000/hook").is_ok());
        assert!(endpoint("http://localhost:9000/hook").is_ok());
        assert!(matches!(
            endpoint("http://sms.example.com/hook"),
            Err(DeliveryError::Config(_))
        ));
        assert!(endpoint("ftp://sms.example.com/").is_err());
        assert!(endpoint("https://user:pw@sms.example.com/").is_err());
        assert!(endpoint("not a url").is_err());
        let ep = endpoint("https://sms.example.com/hook?token=hunter2").ok();
        assert_eq!(ep.map(|e| e.host).as_deref(), Some("sms.example.com:443"));
        let ep = endpoint("http://[::1]:9000/").ok();
        assert_eq!(ep.map(|e| e.host).as_deref(), Some("[::1]:9000"));
    }

    #[test]
    fn zero_timeout_refused() {
        assert!(client(Duration::ZERO).is_err());
        assert!(client(Duration::from_secs(1)).is_ok());
    }
}
