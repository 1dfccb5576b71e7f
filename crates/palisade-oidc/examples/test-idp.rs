//! A test OpenID Connect identity provider, for end-to-end tests of the portal. Test only: its
//! signing key is public (`tests/fixtures/`) unless `--signing-key` names another.
//!
//! ```sh
//! cargo run -p palisade-oidc --example test-idp -- --listen 127.0.0.1:0 \
//!     --client-id palisade --client-secret s3cret \
//!     --redirect-uri http://127.0.0.1:8080/sso/corp/callback \
//!     --user alice:alice@example.com:pwd,otp
//! ```
//!
//! It prints `listening on http://127.0.0.1:PORT` (the issuer) on stdout once it accepts
//! connections, approves every authorization request at once for the first `--user` (or the
//! one `login_hint` names by subject or email), and runs until interrupted or killed.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use palisade_oidc::testing::{TestProvider, TestProviderConfig, TestUser};

/// A test OpenID Connect identity provider that auto-approves configured users.
#[derive(Parser)]
#[command(name = "test-idp")]
struct Args {
    /// The address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The registered client's ID.
    #[arg(long)]
    client_id: String,
    /// The client's secret (client_secret_basic or client_secret_post); omit for a public client.
    #[arg(long)]
    client_secret: Option<String>,
    /// The client's registered redirect URI (compared exactly).
    #[arg(long)]
    redirect_uri: String,
    /// A user as `sub:email:amr[,amr...][:name]`; repeatable, the first is the default.
    #[arg(long = "user", required = true)]
    users: Vec<String>,
    /// The RSA signing key (PKCS#8 PEM); the public test key by default.
    #[arg(long)]
    signing_key: Option<PathBuf>,
}

async fn run(args: Args) -> Result<(), String> {
    let users = args
        .users
        .iter()
        .map(|spec| TestUser::parse_spec(spec))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut config = TestProviderConfig::new(
        &args.client_id,
        args.client_secret.as_deref(),
        &args.redirect_uri,
        users,
    );
    if let Some(path) = &args.signing_key {
        config.signing_key_pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    let provider = TestProvider::start(args.listen, config)
        .await
        .map_err(|e| e.to_string())?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", provider.issuer()).map_err(|e| e.to_string())?;
    stdout.flush().map_err(|e| e.to_string())?;
    tokio::select! {
        () = provider.wait() => Err("the server stopped".into()),
        signal = tokio::signal::ctrl_c() => signal.map_err(|e| e.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test-idp: {e}");
            ExitCode::FAILURE
        }
    }
}
