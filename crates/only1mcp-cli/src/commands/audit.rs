//! `only1mcp audit`: checking the tamper-evident audit trail.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use only1mcp_proxy::audit::verify::{self, Broken, Verified};

use crate::output;

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that an audit file's hash chain holds: names the first line
    /// that was changed, removed or reordered. Give a rotated series oldest
    /// first (audit.jsonl.2 audit.jsonl.1 audit.jsonl) to check it as one
    /// chain. Exits 0 when it holds, 1 when it is broken, 2 when a file
    /// cannot be read.
    Verify {
        /// The files, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `audit` subcommand.
pub(crate) fn run(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify { files, json } => verify_files(&files, json),
    }
}

fn verify_files(files: &[PathBuf], json: bool) -> ExitCode {
    match verify::verify(files) {
        Err(e) => {
            output::error(&format!("cannot read the audit trail: {e}"));
            ExitCode::from(2)
        }
        Ok(Ok(verified)) => {
            if json {
                output::json(&serde_json::json!({
                    "intact": true,
                    "lines": verified.lines,
                    "first_seq": verified.seqs.map(|s| s.0),
                    "last_seq": verified.seqs.map(|s| s.1),
                    "starts_chain": verified.starts_chain,
                }));
            } else {
                output::line(&intact_text(&verified));
            }
            ExitCode::SUCCESS
        }
        Ok(Err(broken)) => {
            if json {
                let (kind, file, line) = where_broken(&broken);
                output::json(&serde_json::json!({
                    "intact": false,
                    "kind": kind,
                    "file": file.display().to_string(),
                    "line": line,
                    "message": broken.to_string(),
                }));
            } else {
                output::error(&format!("audit trail broken: {broken}"));
            }
            ExitCode::FAILURE
        }
    }
}

fn intact_text(verified: &Verified) -> String {
    let Some((first, last)) = verified.seqs else {
        return "intact: no lines".to_owned();
    };
    let start = if verified.starts_chain {
        "from the start of the chain".to_owned()
    } else {
        format!(
            "continuing a chain from an earlier file (seq {}); give it first to check the link",
            first.saturating_sub(1)
        )
    };
    format!(
        "intact: {} lines, seq {first} to {last}, {start}",
        verified.lines
    )
}

fn where_broken(broken: &Broken) -> (&'static str, &std::path::Path, u64) {
    match broken {
        Broken::Malformed { at, .. } => ("malformed", &at.file, at.line),
        Broken::Changed { at } => ("changed", &at.file, at.line),
        Broken::Rehashed { at, .. } => ("rehashed", &at.file, at.line),
        Broken::Removed { at, .. } => ("removed", &at.file, at.line),
        Broken::Reordered { at, .. } => ("reordered", &at.file, at.line),
    }
}
