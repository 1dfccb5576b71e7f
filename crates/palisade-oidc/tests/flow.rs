#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The relying party against the test identity provider on loopback: the whole authorization
//! code flow with PKCE, and every way an ID token must be refused.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use palisade_core::secret::Secret;
use palisade_oidc::testing::{
    follow_authorization, Signing, Tamper, TestProvider, TestProviderConfig, TestUser,
    TEST_RSA_KEY_2_PEM,
};
use palisade_oidc::{Client, Endpoints, Identity, OidcConfig, OidcError, PendingLogin};
use serde_json::json;

const CLIENT_ID: &str = "palisade-test";
/// Characters that RFC 6749 §2.3.1 form-encoding must carry through Basic authentication.
const CLIENT_SECRET: &str = "s3cret: with+odd&chars=%";
const REDIRECT_URI: &str = "http://127.0.0.1:8080/sso/corp/callback";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random(seed: u8) -> [u8; 96] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
}

fn alice() -> TestUser {
    let mut alice = TestUser::new("alice-0001", "alice@example.com", &["pwd", "otp"]);
    alice.name = Some("Alice Example".into());
    alice.preferred_username = Some("alice".into());
    alice.acr = Some("urn:example:loa:2".into());
    alice
}

struct Setup {
    provider: TestProvider,
    client: Client,
}

async fn provider(secret: Option<&str>) -> TestProvider {
    let users = vec![
        alice(),
        TestUser::new("bob-0002", "bob@example.com", &["hwk"]),
    ];
    TestProvider::start(
        "127.0.0.1:0".parse().unwrap(),
        TestProviderConfig::new(CLIENT_ID, secret, REDIRECT_URI, users),
    )
    .await
    .unwrap()
}

fn config(provider: &TestProvider, secret: Option<&str>) -> OidcConfig {
    OidcConfig::new(
        "corp",
        provider.issuer(),
        CLIENT_ID,
        secret.map(|s| Secret::new(s.to_owned())),
        REDIRECT_URI,
    )
}

async fn setup() -> Setup {
    let provider = provider(Some(CLIENT_SECRET)).await;
    let client = Client::new(config(&provider, Some(CLIENT_SECRET)))
        .await
        .unwrap();
    Setup { provider, client }
}

/// Begins a login, lets the "browser" visit the provider, and returns what came back.
async fn authorize(client: &Client, seed: u8) -> (PendingLogin, String, String) {
    let (url, pending) = client.begin(&random(seed));
    let (code, state) = follow_authorization(&url).await.unwrap();
    (pending, code, state)
}

async fn login(client: &Client) -> Result<Identity, OidcError> {
    let (pending, code, state) = authorize(client, 1).await;
    client.complete(&pending, &state, &code, now()).await
}

/// Logs in with the provider tampering as told, and returns the error.
async fn refused(tamper: Tamper) -> OidcError {
    let s = setup().await;
    s.provider.set_tamper(tamper);
    let (pending, code, state) = authorize(&s.client, 1).await;
    let err = s
        .client
        .complete(&pending, &state, &code, now())
        .await
        .unwrap_err();
    assert_eq!(s.provider.token_requests(), 1, "the code was exchanged");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(&code), "{text}");
        assert!(!text.contains(pending.pkce_verifier.expose()), "{text}");
        assert!(!text.contains(&pending.nonce), "{text}");
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
    err
}

#[tokio::test]
async fn happy_path_returns_the_identity_with_amr() {
    let s = setup().await;
    let identity = login(&s.client).await.unwrap();
    assert_eq!(
        identity,
        Identity {
            issuer: s.provider.issuer().to_owned(),
            subject: "alice-0001".into(),
            email: Some("alice@example.com".into()),
            email_verified: Some(true),
            name: Some("Alice Example".into()),
            preferred_username: Some("alice".into()),
            amr: vec!["pwd".into(), "otp".into()],
            acr: Some("urn:example:loa:2".into()),
            auth_time: identity.auth_time,
        }
    );
    assert!((now() - identity.auth_time.unwrap()).abs() < 10);
    assert_eq!(s.provider.discovery_fetches(), 1);
    assert_eq!(s.provider.jwks_fetches(), 1);
    assert_eq!(
        s.provider.last_client_auth(),
        Some("client_secret_basic"),
        "a configured secret is sent with client_secret_basic"
    );
}

#[tokio::test]
async fn authorization_request_carries_pkce_s256_state_and_nonce() {
    let s = setup().await;
    let (url, pending) = s.client.begin(&random(7));
    let url = reqwest::Url::parse(&url).unwrap();
    assert_eq!(url.path(), "/authorize");
    let params: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let verifier = pending.pkce_verifier.expose();
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ));
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], CLIENT_ID);
    assert_eq!(params["redirect_uri"], REDIRECT_URI);
    assert_eq!(params["scope"], "openid email profile");
    assert_eq!(params["state"], pending.state);
    assert_eq!(params["nonce"], pending.nonce);
    assert_eq!(params["code_challenge"], challenge);
    assert_eq!(params["code_challenge_method"], "S256");
    assert!(!url.as_str().contains(verifier.as_str()));
    // state, nonce and verifier are the three thirds of the random input, base64url.
    let r = random(7);
    assert_eq!(pending.state, URL_SAFE_NO_PAD.encode(&r[..32]));
    assert_eq!(pending.nonce, URL_SAFE_NO_PAD.encode(&r[32..64]));
    assert_eq!(verifier, &URL_SAFE_NO_PAD.encode(&r[64..]));
    assert_eq!(verifier.len(), 43);

    // The provider saw the same.
    follow_authorization(url.as_str()).await.unwrap();
    let seen = s.provider.last_authorization().unwrap();
    assert_eq!(seen.code_challenge, challenge);
    assert_eq!(seen.code_challenge_method, "S256");
    assert_eq!(seen.nonce, pending.nonce);

    let (_, other) = s.client.begin(&random(8));
    assert_ne!(other.state, pending.state);
    let (_, os_random) = s.client.begin_with_os_rng().unwrap();
    assert_ne!(os_random.state, pending.state);
}

#[tokio::test]
async fn es256_tokens_verify_too() {
    let s = setup().await;
    s.provider.set_tamper(Tamper {
        signing: Signing::Es256,
        ..Tamper::default()
    });
    assert_eq!(login(&s.client).await.unwrap().subject, "alice-0001");
}

#[tokio::test]
async fn public_client_sends_no_secret() {
    let provider = provider(None).await;
    let client = Client::new(config(&provider, None)).await.unwrap();
    assert_eq!(login(&client).await.unwrap().subject, "alice-0001");
    assert_eq!(provider.last_client_auth(), Some("none"));
}

#[tokio::test]
async fn configured_endpoints_skip_discovery() {
    let provider = provider(Some(CLIENT_SECRET)).await;
    let mut config = config(&provider, Some(CLIENT_SECRET));
    let issuer = provider.issuer();
    config.endpoints = Some(Endpoints {
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}/jwks"),
    });
    let client = Client::new(config).await.unwrap();
    assert_eq!(login(&client).await.unwrap().subject, "alice-0001");
    assert_eq!(provider.discovery_fetches(), 0);
}

#[tokio::test]
async fn wrong_state_is_refused_before_the_code_is_exchanged() {
    let s = setup().await;
    let (pending, code, state) = authorize(&s.client, 1).await;
    let (_, other) = s.client.begin(&random(2));
    for returned in [other.state.as_str(), "", &state[..state.len() - 1]] {
        let err = s
            .client
            .complete(&pending, returned, &code, now())
            .await
            .unwrap_err();
        assert!(matches!(err, OidcError::StateMismatch), "{err:?}");
    }
    assert_eq!(s.provider.token_requests(), 0);
    // The right state still works with the same code.
    s.client
        .complete(&pending, &state, &code, now())
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_nonce_is_refused() {
    let err = refused(Tamper {
        nonce: Some(URL_SAFE_NO_PAD.encode([9u8; 32])),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::NonceMismatch), "{err:?}");
}

#[tokio::test]
async fn nonce_of_another_pending_login_is_refused() {
    let s = setup().await;
    let (pending, code, state) = authorize(&s.client, 1).await;
    let (_, other) = s.client.begin(&random(2));
    let swapped = PendingLogin {
        nonce: other.nonce,
        ..pending
    };
    let err = s
        .client
        .complete(&swapped, &state, &code, now())
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::NonceMismatch), "{err:?}");
}

#[tokio::test]
async fn expired_token_is_refused_beyond_the_skew() {
    let err = refused(Tamper {
        exp_offset_secs: Some(-120),
        iat_offset_secs: -420,
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::Expired), "{err:?}");

    let s = setup().await;
    s.provider.set_tamper(Tamper {
        exp_offset_secs: Some(-20),
        iat_offset_secs: -320,
        ..Tamper::default()
    });
    login(&s.client)
        .await
        .expect("20 s past exp is within the 60 s skew");
    // The relying party's clock is the parameter: the same token later is refused.
    let (pending, code, state) = authorize(&s.client, 3).await;
    let err = s
        .client
        .complete(&pending, &state, &code, now() + 3600)
        .await
        .unwrap_err();
    assert!(matches!(err, OidcError::Expired), "{err:?}");
}

#[tokio::test]
async fn token_issued_in_the_future_is_refused() {
    let err = refused(Tamper {
        iat_offset_secs: 3600,
        exp_offset_secs: Some(3900),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::IssuedInFuture), "{err:?}");
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let err = refused(Tamper {
        audience: Some(json!("another-client")),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::WrongAudience), "{err:?}");

    let err = refused(Tamper {
        audience: Some(json!(["another-client", "palisade-test-2"])),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::WrongAudience), "{err:?}");
}

#[tokio::test]
async fn several_audiences_need_azp_equal_to_the_client() {
    let err = refused(Tamper {
        audience: Some(json!([CLIENT_ID, "another-client"])),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::WrongAuthorizedParty), "{err:?}");

    let err = refused(Tamper {
        audience: Some(json!([CLIENT_ID, "another-client"])),
        azp: Some("another-client".into()),
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::WrongAuthorizedParty), "{err:?}");

    let s = setup().await;
    s.provider.set_tamper(Tamper {
        audience: Some(json!([CLIENT_ID, "another-client"])),
        azp: Some(CLIENT_ID.into()),
        ..Tamper::default()
    });
    login(&s.client).await.unwrap();
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let s = setup().await;
    let issuer = s.provider.issuer().to_owned();
    drop(s);
    for wrong in [
        "https://evil.example".to_owned(),
        format!("{issuer}/"),
        issuer.to_uppercase(),
    ] {
        let err = refused(Tamper {
            issuer: Some(wrong),
            ..Tamper::default()
        })
        .await;
        assert!(matches!(err, OidcError::WrongIssuer), "{err:?}");
    }
}

#[tokio::test]
async fn token_signed_by_another_key_is_refused() {
    let err = refused(Tamper {
        signing: Signing::ForeignRsaKey,
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::BadSignature), "{err:?}");
}

#[tokio::test]
async fn alg_none_is_refused() {
    let err = refused(Tamper {
        signing: Signing::AlgNone,
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::AlgorithmNotAllowed), "{err:?}");
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_refused() {
    let err = refused(Tamper {
        signing: Signing::Hs256WithPublicKey,
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::AlgorithmNotAllowed), "{err:?}");
}

#[tokio::test]
async fn es256_under_an_rsa_kid_is_refused() {
    let err = refused(Tamper {
        signing: Signing::Es256UnderRsaKid,
        ..Tamper::default()
    })
    .await;
    assert!(matches!(err, OidcError::KeyAlgorithmMismatch), "{err:?}");
}

#[tokio::test]
async fn pkce_verifier_mismatch_is_refused_by_the_provider() {
    let s = setup().await;
    let (pending, code, state) = authorize(&s.client, 1).await;
    let (_, other) = s.client.begin(&random(2));
    let forged = PendingLogin {
        pkce_verifier: other.pkce_verifier,
        ..pending.clone()
    };
    let err = s
        .client
        .complete(&forged, &state, &code, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OidcError::TokenRefused { status: 400, error: Some(e) } if e == "invalid_grant"),
        "{err:?}"
    );
    assert_eq!(s.provider.last_token_rejection(), Some("pkce"));
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&code) && !text.contains(forged.pkce_verifier.expose()));

    // The code was spent on the failed attempt: the right verifier cannot use it any more.
    let err = s
        .client
        .complete(&pending, &state, &code, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::TokenRefused { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(s.provider.last_token_rejection(), Some("unknown_code"));
}

#[tokio::test]
async fn a_code_is_exchanged_only_once() {
    let s = setup().await;
    let (pending, code, state) = authorize(&s.client, 1).await;
    s.client
        .complete(&pending, &state, &code, now())
        .await
        .unwrap();
    let err = s
        .client
        .complete(&pending, &state, &code, now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OidcError::TokenRefused { status: 400, .. }),
        "{err:?}"
    );
    assert_eq!(s.provider.last_token_rejection(), Some("unknown_code"));
}

#[tokio::test]
async fn wrong_client_secret_is_refused_by_the_provider() {
    let provider = provider(Some(CLIENT_SECRET)).await;
    let client = Client::new(config(&provider, Some("not-the-secret")))
        .await
        .unwrap();
    let err = login(&client).await.unwrap_err();
    assert!(
        matches!(&err, OidcError::TokenRefused { status: 401, error: Some(e) } if e == "invalid_client"),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("not-the-secret"));
    assert_eq!(provider.last_token_rejection(), Some("client_auth"));
}

#[tokio::test]
async fn key_rotation_triggers_one_jwks_refetch() {
    let s = setup().await;
    login(&s.client).await.unwrap();
    login(&s.client).await.unwrap();
    assert_eq!(s.provider.jwks_fetches(), 1, "the key set is cached");

    let old_kid = s.provider.rsa_kid();
    s.provider.rotate_key(TEST_RSA_KEY_2_PEM).unwrap();
    assert_ne!(s.provider.rsa_kid(), old_kid);
    login(&s.client).await.unwrap();
    assert_eq!(
        s.provider.jwks_fetches(),
        2,
        "one refetch for the unknown kid"
    );
    login(&s.client).await.unwrap();
    assert_eq!(s.provider.jwks_fetches(), 2, "the new key set is cached");
}

#[tokio::test]
async fn a_kid_unknown_after_the_refetch_is_refused() {
    let s = setup().await;
    login(&s.client).await.unwrap();
    assert_eq!(s.provider.jwks_fetches(), 1);
    s.provider.set_tamper(Tamper {
        kid: Some("no-such-key".into()),
        ..Tamper::default()
    });
    let err = login(&s.client).await.unwrap_err();
    assert!(matches!(err, OidcError::UnknownKey), "{err:?}");
    assert_eq!(s.provider.jwks_fetches(), 2, "exactly one refetch");

    // With an empty cache the first fetch is the only one.
    let fresh = Client::new(config(&s.provider, Some(CLIENT_SECRET)))
        .await
        .unwrap();
    let err = login(&fresh).await.unwrap_err();
    assert!(matches!(err, OidcError::UnknownKey), "{err:?}");
    assert_eq!(s.provider.jwks_fetches(), 3);
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer_exactly() {
    let provider = provider(Some(CLIENT_SECRET)).await;
    let mut config = config(&provider, Some(CLIENT_SECRET));
    config.issuer.push('/');
    let err = Client::new(config).await.unwrap_err();
    assert!(matches!(err, OidcError::DiscoveryIssuerMismatch), "{err:?}");
}

#[tokio::test]
async fn insecure_or_unreachable_configuration_is_refused() {
    let base = OidcConfig::new("corp", "http://idp.example", CLIENT_ID, None, REDIRECT_URI);
    let err = Client::new(base.clone()).await.unwrap_err();
    assert!(matches!(err, OidcError::Config(_)), "{err:?}");

    let mut insecure_redirect = base.clone();
    insecure_redirect.issuer = "https://idp.example".into();
    insecure_redirect.redirect_uri = "http://palisade.example/cb".into();
    let err = Client::new(insecure_redirect).await.unwrap_err();
    assert!(matches!(err, OidcError::Config(_)), "{err:?}");

    // Nothing listens on this loopback port: the error names the endpoint, not the URL.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut closed = base;
    closed.issuer = format!("http://127.0.0.1:{port}");
    let err = Client::new(closed).await.unwrap_err();
    assert!(
        matches!(
            err,
            OidcError::Http {
                endpoint: palisade_oidc::EndpointKind::Discovery,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn pending_login_round_trips_through_serde_and_hides_the_verifier() {
    let pending = PendingLogin {
        state: "st".into(),
        nonce: "no".into(),
        pkce_verifier: Secret::new("verifier-value-kept-server-side".into()),
    };
    let json = serde_json::to_string(&pending).unwrap();
    assert!(json.contains("verifier-value-kept-server-side"));
    let back: PendingLogin = serde_json::from_str(&json).unwrap();
    assert_eq!(back, pending);
    assert!(!format!("{pending:?}").contains("verifier-value"));
}
