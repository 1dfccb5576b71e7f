#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The `test-idp` example as a process, the way the portal's end-to-end tests run it.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use palisade_core::secret::Secret;
use palisade_oidc::testing::follow_authorization;
use palisade_oidc::{Client, OidcConfig};

/// `cargo test` builds the examples next to the test binaries' `deps` folder.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir
        .join("examples")
        .join(format!("test-idp{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo test -p palisade-oidc` (which builds examples) or \
         `cargo build -p palisade-oidc --example test-idp` first",
        binary.display()
    );
    binary
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn test_idp_process_signs_a_configured_user_in() {
    let redirect_uri = "http://127.0.0.1:8080/sso/corp/callback";
    let mut child = Killed(
        Command::new(example_binary())
            .args(["--listen", "127.0.0.1:0", "--client-id", "palisade-e2e"])
            .args([
                "--client-secret",
                "e2e-secret",
                "--redirect-uri",
                redirect_uri,
            ])
            .args(["--user", "carol-3:carol@example.com:pwd,hwk:Carol C"])
            .args(["--user", "dave-4::otp"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(issuer.starts_with("http://127.0.0.1:"), "{issuer}");

    let client = Client::new(OidcConfig::new(
        "corp",
        &issuer,
        "palisade-e2e",
        Some(Secret::new("e2e-secret".into())),
        redirect_uri,
    ))
    .await
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let (url, pending) = client.begin_with_os_rng().unwrap();
    let (code, state) = follow_authorization(&url).await.unwrap();
    let carol = client.complete(&pending, &state, &code, now).await.unwrap();
    assert_eq!(carol.subject, "carol-3");
    assert_eq!(carol.email.as_deref(), Some("carol@example.com"));
    assert_eq!(carol.name.as_deref(), Some("Carol C"));
    assert_eq!(carol.amr, ["pwd", "hwk"]);

    // login_hint picks another configured user.
    let (url, pending) = client.begin_with_os_rng().unwrap();
    let (code, state) = follow_authorization(&format!("{url}&login_hint=dave-4"))
        .await
        .unwrap();
    let dave = client.complete(&pending, &state, &code, now).await.unwrap();
    assert_eq!(dave.subject, "dave-4");
    assert_eq!(dave.email, None);
    assert_eq!(dave.amr, ["otp"]);
}
