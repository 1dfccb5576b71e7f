//! `palisade token migrate TOKEN_ID`: the token migration assistant.
//!
//! Interactive by default: shows the proposed role (on stderr) and asks before each step,
//! reading the answer from stdin. `--yes` answers yes (silent), `--dry-run` prints the
//! proposal as JSON and changes nothing. Without a step flag the command starts a migration,
//! or (interactively) offers the next step of one already started. The JSON result goes to
//! stdout; the new token's secret is in it, once.

use clap::Args as ClapArgs;
use palisade_core::token_migration::DEFAULT_DAYS;
use palisade_server::monitor::estate::EstateCache;
use palisade_server::ops::token_migration::{self as ops, Outcome, Plan, StartRequest};
use palisade_server::portal::{Actor, Portal};
use palisade_server::StoreConfig;
use serde_json::Value;
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// Options of `token migrate`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The token to replace (its id, as in the token listing).
    token_id: i64,
    /// Days of recorded calls to read.
    #[arg(long, default_value_t = DEFAULT_DAYS)]
    days: i64,
    /// Prints the proposal as JSON and changes nothing.
    #[arg(long, conflicts_with_all = ["yes", "confirm_disable", "finish", "status"])]
    dry_run: bool,
    /// Answers yes to every question (silent mode, for automation).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Name of the role to create (default: OWNER-token-ID).
    #[arg(long)]
    role_name: Option<String>,
    /// Name of the API-only user to create (default: OWNER-token-ID).
    #[arg(long)]
    username: Option<String>,
    /// Step 2: the new token works; disable the old one and start its grace period (again:
    /// restart the grace period after switching what still used it).
    #[arg(long, conflicts_with_all = ["finish", "status"])]
    confirm_disable: bool,
    /// Step 3: delete the old token if its grace period passed and nothing used it (what
    /// `serve` also checks periodically); otherwise report what still uses it.
    #[arg(long, conflicts_with = "status")]
    finish: bool,
    /// Prints the migration's status as JSON.
    #[arg(long)]
    status: bool,
}

/// Asks a yes/no question on stderr; the answer is a line on stdin (end of input: no).
fn ask(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let answer = line.trim().to_ascii_lowercase();
    Ok(answer == "y" || answer == "yes")
}

fn secs_text(s: i64) -> String {
    palisade_server::wire::utc_text(s.saturating_mul(1000))
}

/// The proposal, for people.
fn describe(plan: &Plan) -> String {
    let p = &plan.proposal;
    let mut out = String::new();
    let kind = match plan.token.kind {
        palisade_store::TokenType::Lmv1 => "LMv1",
        palisade_store::TokenType::Bearer => "Bearer",
        palisade_store::TokenType::Widget => "widget",
    };
    out.push_str(&format!(
        "API token {} ({kind}, access id {}) of {}",
        plan.token.id, plan.token.access_id, plan.owner.username
    ));
    if let Some(v) = plan.violates_mandate {
        out.push_str(&format!(" — breaks the token mandate: {v}"));
    }
    out.push_str(&format!(
        "\n{} call(s) in the last {} days{}.\n",
        p.calls_considered,
        plan.days,
        if plan.truncated {
            " (more distinct calls than were read)"
        } else {
            ""
        }
    ));
    if !p.privileges.is_empty() {
        out.push_str(&format!(
            "\nProposed role `{}` for a new API-only user `{}`:\n",
            plan.role_name, plan.username
        ));
    }
    for pp in &p.privileges {
        out.push_str(&format!("  {}\n", pp.text));
        for c in &pp.covers {
            out.push_str(&format!(
                "      {} {}  x{}  last {}\n",
                c.method,
                c.path,
                c.count,
                secs_text(c.last_seen_ms.div_euclid(1000))
            ));
        }
        for n in &pp.notes {
            out.push_str(&format!("      note: {n}\n"));
        }
    }
    if !p.refused.is_empty() {
        out.push_str("\nRefused calls (403), not granted:\n");
        for r in &p.refused {
            out.push_str(&format!(
                "  {} {}  x{}  (would need {})\n",
                r.calls.method, r.calls.path, r.calls.count, r.would_need
            ));
        }
    }
    if !p.unresolved.is_empty() {
        out.push_str("\nCalls nothing is granted for:\n");
        for u in &p.unresolved {
            out.push_str(&format!(
                "  {} {}  x{}  ({})\n",
                u.calls.method, u.calls.path, u.calls.count, u.reason
            ));
        }
    }
    if p.failed_authentication > 0 {
        out.push_str(&format!(
            "\n{} call(s) failed authentication (401).\n",
            p.failed_authentication
        ));
    }
    for w in &p.warnings {
        out.push_str(&format!("\nwarning: {w}\n"));
    }
    if let Some(r) = &plan.refusal {
        out.push_str(&format!("\nNo role can be proposed: {r}\n"));
    }
    out
}

fn print_status(v: &Value) {
    super::print(v);
}

async fn run_start(
    portal: &Portal,
    estates: &EstateCache,
    args: &Args,
) -> anyhow::Result<ExitCode> {
    let plan = ops::plan(portal, estates, args.token_id, args.days).await?;
    if args.dry_run {
        super::print(&ops::plan_json(&plan));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(m) = &plan.migration {
        // Already started: show where it is; interactively, offer the next step.
        let status = ops::status(portal, args.token_id).await?;
        if args.yes {
            print_status(&status);
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "API token {} is already being migrated (state {}).",
            args.token_id,
            m.state.as_str()
        );
        return match m.state {
            palisade_store::token_migration::RetirementState::Retiring => {
                run_disable(portal, args).await
            }
            palisade_store::token_migration::RetirementState::Disabled => {
                run_finish(portal, args).await
            }
            palisade_store::token_migration::RetirementState::Deleted => {
                print_status(&status);
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    eprint!("{}", describe(&plan));
    if let Some(r) = &plan.refusal {
        anyhow::bail!("{r}");
    }
    let role_name = args.role_name.clone().unwrap_or(plan.role_name.clone());
    let username = args.username.clone().unwrap_or(plan.username.clone());
    let question = format!(
        "\nCreate role `{role_name}`, API-only user `{username}` and a new {} token, and mark token {} retiring?",
        match plan.token.kind {
            palisade_store::TokenType::Lmv1 => "LMv1",
            palisade_store::TokenType::Bearer => "Bearer",
            palisade_store::TokenType::Widget => "widget",
        },
        args.token_id
    );
    if !args.yes && !ask(&question)? {
        anyhow::bail!("not confirmed; nothing was changed");
    }
    let started = ops::start(
        portal,
        estates,
        &Actor::cli(),
        None,
        args.token_id,
        StartRequest {
            days: Some(args.days),
            role_name: Some(role_name),
            username: Some(username),
            expect: Some(plan.proposal.privilege_texts()),
        },
    )
    .await?;
    super::print(&ops::started_json(&started));
    eprintln!(
        "The new token's secret is printed once, above. Deploy it where token {} was used; when it works, run `palisade token migrate {} --confirm-disable`.",
        args.token_id, args.token_id
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_disable(portal: &Portal, args: &Args) -> anyhow::Result<ExitCode> {
    let status = ops::status(portal, args.token_id).await?;
    let new = status["replacedBy"].as_i64().unwrap_or_default();
    let last_new = status["newToken"]["lastUsedOn"].as_i64().unwrap_or(0);
    let last_old = status["oldToken"]["lastUsedOn"].as_i64().unwrap_or(0);
    eprintln!(
        "Old token {} last used {}; new token {new} last used {}.",
        args.token_id,
        if last_old > 0 {
            secs_text(last_old)
        } else {
            "never".into()
        },
        if last_new > 0 {
            secs_text(last_new)
        } else {
            "never".into()
        },
    );
    let question = if status["state"] == "disabled" {
        format!(
            "Restart the grace period of disabled token {} (it is deleted after {} days without use)?",
            args.token_id, status["graceDays"]
        )
    } else {
        format!(
            "Disable token {} now (it is deleted after a grace period without use)?",
            args.token_id
        )
    };
    if !args.yes && !ask(&question)? {
        anyhow::bail!("not confirmed; nothing was changed");
    }
    ops::confirm_disable(portal, &Actor::cli(), args.token_id).await?;
    print_status(&ops::status(portal, args.token_id).await?);
    Ok(ExitCode::SUCCESS)
}

async fn run_finish(portal: &Portal, args: &Args) -> anyhow::Result<ExitCode> {
    let outcome = ops::finish(portal, &Actor::cli(), args.token_id).await?;
    let mut v = palisade_server::routes::token_migration::outcome_json(&outcome);
    v["migration"] = ops::status(portal, args.token_id).await?;
    match &outcome {
        Outcome::Retiring => eprintln!(
            "Token {} is still retiring: confirm disabling it first (--confirm-disable).",
            args.token_id
        ),
        Outcome::Waiting(at) => eprintln!(
            "Token {} is disabled and unused so far; it is deleted after {}.",
            args.token_id,
            secs_text(at.div_euclid(1000))
        ),
        Outcome::Kept(calls) => {
            eprintln!(
                "Token {} was used after it was disabled; it is kept. Still using it:",
                args.token_id
            );
            for c in calls {
                eprintln!(
                    "  {} {}  x{}  last {}  from {}",
                    c.method,
                    c.path,
                    c.count,
                    secs_text(c.last_seen_ms.div_euclid(1000)),
                    c.ips.join(", ")
                );
            }
            eprintln!(
                "Switch those to the new token, then run `palisade token migrate {} --confirm-disable` to restart the grace period.",
                args.token_id
            );
        }
        Outcome::Deleted => eprintln!("Token {} is deleted.", args.token_id),
    }
    super::print(&v);
    Ok(ExitCode::SUCCESS)
}

/// Runs `token migrate`.
pub async fn run(store: &StoreConfig, args: Args) -> anyhow::Result<ExitCode> {
    let portal = super::open(store).await?;
    let estates = EstateCache::default();
    if args.status {
        print_status(&ops::status(&portal, args.token_id).await?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.confirm_disable {
        return run_disable(&portal, &args).await;
    }
    if args.finish {
        return run_finish(&portal, &args).await;
    }
    run_start(&portal, &estates, &args).await
}
