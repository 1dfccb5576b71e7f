//! `palisade-collector lint-module FILE…`: reviews custom module scripts for what needs
//! root or Administrator with the rules of [`palisade_core::module_lint`] (the portal runs
//! the same rules on script datasources that carry their source), prints each finding with
//! its line and the least-privilege alternative, and exits non-zero for CI.

pub use palisade_core::module_lint::{format_finding, lint, Finding, RULES};
use std::path::PathBuf;

/// Exit code: no finding outside comments.
pub const EXIT_CLEAN: u8 = 0;
/// Exit code: at least one finding outside comments.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage error (no file, unreadable file).
pub const EXIT_USAGE: u8 = 2;

/// `lint-module`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct LintArgs {
    /// The scripts to review.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

/// Reviews the files; prints the findings; returns the exit code.
pub fn main(a: &LintArgs) -> u8 {
    let mut code = EXIT_CLEAN;
    let mut usage = false;
    for file in &a.files {
        let text = match std::fs::read(file) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                eprintln!(
                    "palisade-collector lint-module: cannot read {}: {e}",
                    file.display()
                );
                usage = true;
                continue;
            }
        };
        let shown = file.display().to_string();
        for f in lint(&text) {
            println!("{}", format_finding(&shown, &f));
            if !f.in_comment {
                code = EXIT_FINDINGS;
            }
        }
    }
    if usage {
        EXIT_USAGE
    } else {
        code
    }
}
