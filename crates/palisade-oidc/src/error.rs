//! The one error type of this crate.
//!
//! No message carries a token, an authorization code, a PKCE verifier, a state, a nonce or a
//! client secret: variants hold only fixed descriptions, HTTP status codes, and the OAuth
//! `error` code of a token endpoint answer once it passed a character check.

use std::fmt;

/// Which of the identity provider's endpoints an HTTP error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// `{issuer}/.well-known/openid-configuration`.
    Discovery,
    /// The token endpoint.
    Token,
    /// The JSON Web Key Set (`jwks_uri`).
    Jwks,
}

impl fmt::Display for EndpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointKind::Discovery => "discovery document",
            EndpointKind::Token => "token endpoint",
            EndpointKind::Jwks => "JWKS endpoint",
        })
    }
}

/// Everything that can go wrong while configuring the relying party or signing a user in.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    /// The configuration is unusable (a fixed description says why).
    #[error("invalid OIDC configuration: {0}")]
    Config(&'static str),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// The request did not get an answer (connection, TLS, timeout). The source carries no URL.
    #[error("request to the identity provider's {endpoint} failed")]
    Http {
        /// Which endpoint.
        endpoint: EndpointKind,
        /// The transport error, stripped of its URL.
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint answered with an unexpected HTTP status.
    #[error("the identity provider's {endpoint} answered HTTP {status}")]
    HttpStatus {
        /// Which endpoint.
        endpoint: EndpointKind,
        /// The HTTP status code.
        status: u16,
    },
    /// The answer was larger than this crate accepts.
    #[error("the identity provider's {endpoint} sent an oversized answer")]
    ResponseTooLarge {
        /// Which endpoint.
        endpoint: EndpointKind,
    },
    /// The answer could not be understood.
    #[error("the identity provider's {endpoint} sent an invalid answer: {reason}")]
    InvalidResponse {
        /// Which endpoint.
        endpoint: EndpointKind,
        /// A fixed description.
        reason: &'static str,
    },
    /// The discovery document names another issuer than the configured one.
    #[error("the discovery document names a different issuer than the configured one")]
    DiscoveryIssuerMismatch,
    /// The `state` that came back with the browser is not the one this login started with.
    #[error("the returned state does not match the pending login")]
    StateMismatch,
    /// The authorization code is empty or implausibly long.
    #[error("the authorization code is missing or malformed")]
    InvalidCode,
    /// The token endpoint refused the code exchange.
    #[error("the token endpoint refused the code exchange (HTTP {status}{})", match .error { Some(e) => format!(", error {e}"), None => String::new() })]
    TokenRefused {
        /// The HTTP status code.
        status: u16,
        /// The OAuth `error` code (`invalid_grant`, `invalid_client`, ...), when the answer
        /// carried one made only of the characters RFC 6749 allows (and at most 64 of them).
        error: Option<String>,
    },
    /// The ID token is not a well-formed JWS in compact serialization (fixed description).
    #[error("malformed ID token: {0}")]
    MalformedIdToken(&'static str),
    /// The ID token's `alg` is not RS256 or ES256 (`none`, HS256 and all others are refused).
    #[error("the ID token's signature algorithm is not allowed")]
    AlgorithmNotAllowed,
    /// The key named by `kid` is of another type than the token's `alg` requires.
    #[error("the ID token's algorithm does not match the key it names")]
    KeyAlgorithmMismatch,
    /// No key in the JWKS (fetched again once) matches the token's `kid`.
    #[error("no key in the identity provider's JWKS matches the ID token")]
    UnknownKey,
    /// The token has no `kid` and the JWKS holds several keys that could have signed it.
    #[error("the ID token names no key and the JWKS holds several candidates")]
    AmbiguousKey,
    /// The signature does not verify under the chosen key.
    #[error("the ID token's signature is invalid")]
    BadSignature,
    /// `iss` is not exactly the configured issuer.
    #[error("the ID token was issued by a different issuer")]
    WrongIssuer,
    /// `aud` does not contain the client ID.
    #[error("the ID token is not intended for this client")]
    WrongAudience,
    /// `azp` is not the client ID (or is missing while `aud` names several audiences).
    #[error("the ID token's authorized party is not this client")]
    WrongAuthorizedParty,
    /// `exp` lies more than the allowed clock skew in the past.
    #[error("the ID token has expired")]
    Expired,
    /// `iat` lies more than the allowed clock skew in the future.
    #[error("the ID token was issued in the future")]
    IssuedInFuture,
    /// `nbf` lies more than the allowed clock skew in the future.
    #[error("the ID token is not yet valid")]
    NotYetValid,
    /// `nonce` is not the one this login started with.
    #[error("the ID token's nonce does not match the pending login")]
    NonceMismatch,
    /// A required claim is missing or of the wrong type.
    #[error("the ID token's {0} claim is missing or invalid")]
    InvalidClaim(&'static str),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Random,
}
