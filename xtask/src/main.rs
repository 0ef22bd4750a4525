//! Project automation for Only1MCP, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! Commands:
//! - `peers`: install the real MCP peers the tests talk to into `<workspace>/peers/`
//!   (Node reference servers and a Python venv with the `mcp` SDK); idempotent.
//! - `test [ARGS...]`: `peers`, then `cargo test --workspace --locked [ARGS...]` (without
//!   `--workspace` when ARGS select packages with `-p`/`--package`), with
//!   `ONLY1MCP_PEERS` set to the absolute peers directory; then, when no ARGS were given,
//!   `conformance` (both modes, with the baseline).
//! - `conformance [ARGS...]`: `peers`, then the official MCP conformance suite in server mode
//!   (the gateway's HTTP face in front of `conformance/fixture_server.py`) and in client mode
//!   (the gateway's backend connector, via `conformance/client_adapter.py`); see
//!   `conformance.rs` and docs/conformance.md.
//! - `bench [OPTIONS]`: release build, then the echo backend measured directly and through the
//!   gateway; writes `target/bench-report.md`; `--pairs`, `--callgrind`, `--soak` and `--reload`
//!   rerun docs/performance.md's other figures (see `bench.rs`, `cargo xtask bench --help`).
//! - `corpus [--check]`: `peers`, then `docs/corpus/capture.py`, which writes the tool catalogs
//!   of six real MCP servers to `docs/corpus/<id>.json`; with `--check`, captures into
//!   `target/corpus/` and fails unless the files are byte-identical (see `corpus.rs`).
//! - `check-deps`: reads `cargo metadata` and fails when a dependency breaks the crate layering
//!   of docs/ARCHITECTURE.md, or when top-level modules of a crate import each other in a
//!   circle (see `deps.rs`).
//! - `windows [--check-only]`: the Windows build checked from Linux (clippy for
//!   `x86_64-pc-windows-gnu`, then a smoke run under Wine; see `windows.rs`).
//! - `ci`: `cargo fmt --check`, `cargo clippy -D warnings`, `cargo deny check bans licenses
//!   sources`, `check-deps`, then `test`.
//!
//! The peers directory is `<workspace>/peers` unless `ONLY1MCP_PEERS` is already set, in which
//! case that directory is used (and passed on to the tests unchanged).
#![allow(
    clippy::disallowed_methods,
    reason = "xtask is the automation binary; it runs tools (cargo, npm, python) by design"
)]
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a command-line tool; reporting progress on the terminal is its job"
)]

mod bench;
mod conformance;
mod corpus;
mod deps;
mod peers;
mod windows;

use std::{
    env,
    ffi::{OsStr, OsString},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// Environment variable through which the tests find the installed peers.
const PEERS_ENV: &str = "ONLY1MCP_PEERS";

const HELP: &str = "\
Usage: cargo xtask <COMMAND> [ARGS...]

Commands:
  peers          Install the MCP peers used by the tests into <workspace>/peers (idempotent)
  test [ARGS]    Run `peers`, then `cargo test --workspace --locked [ARGS]` with ONLY1MCP_PEERS set
                 (`--workspace` is left out when ARGS contain -p/--package); then, without ARGS,
                 `conformance` (both modes, with conformance/baseline.yml)
  ci             cargo fmt --check, clippy -D warnings, cargo deny check bans licenses sources,
                 `check-deps`, then `test`
  check-deps     Fail when a dependency breaks the crate layering of docs/ARCHITECTURE.md
                 (core without IO, feature crates on core only, arrows down), or when
                 top-level modules of a crate import each other in a circle (see deps.rs)
  conformance [--server | --client] [--gateway-url URL | --fixture-direct] [--requirements REV]...
              [--scenario NAME] [--baseline FILE]
                 Run the MCP conformance suite against the gateway: server mode (its HTTP face
                 in front of conformance/fixture_server.py) and client mode (its backend
                 connector, via conformance/client_adapter.py); both by default
  bench [OPTIONS]
                 Release build, then the echo backend measured directly and through the gateway;
                 writes target/bench-report.md; --pairs N, --callgrind, --soak D and --reload N
                 rerun the other published figures (`cargo xtask bench --help` lists every option)
  corpus [--check]
                 Run `peers`, then capture the tool catalogs of six real MCP servers into
                 docs/corpus/<id>.json; --check captures into target/corpus/ and fails unless
                 the files are byte-identical to the committed ones
  windows [--check-only]
                 clippy -D warnings for x86_64-pc-windows-gnu, then (unless --check-only) a
                 build and a smoke run under Wine: one call through `only1mcp.exe start --stdio`
                 to a server found through PATHEXT (see windows.rs)
  help           Show this message

Environment:
  ONLY1MCP_PEERS   Peers directory to use instead of <workspace>/peers
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = env::args_os().skip(1);
    let Some(command) = args.next() else {
        print!("{HELP}");
        bail!("no command given");
    };
    let rest: Vec<OsString> = args.collect();
    let workspace = workspace_root()?;
    match command.to_str() {
        Some("peers") => {
            no_extra_args("peers", &rest)?;
            peers::install(&peers_dir(&workspace)?)
        }
        Some("test") => test(&workspace, &rest),
        Some("conformance") => conformance::run(&workspace, &peers_dir(&workspace)?, &rest),
        Some("bench") => bench::run(&workspace, &rest),
        Some("check-deps") => deps::run(&workspace, &rest),
        Some("corpus") => corpus::run(&workspace, &peers_dir(&workspace)?, &rest),
        Some("windows") => windows::run(&workspace, &rest),
        Some("ci") => {
            no_extra_args("ci", &rest)?;
            ci(&workspace)
        }
        Some("help" | "-h" | "--help") => {
            print!("{HELP}");
            Ok(())
        }
        _ => {
            print!("{HELP}");
            bail!("unknown command {command:?}")
        }
    }
}

fn no_extra_args(command: &str, rest: &[OsString]) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        bail!("`cargo xtask {command}` takes no arguments (got {rest:?})")
    }
}

/// The workspace root: the parent of this package's manifest directory.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time too; the compile-time value is the fallback
/// for running the binary directly.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let root = manifest_dir
        .parent()
        .context("xtask manifest directory has no parent")?;
    root.canonicalize()
        .with_context(|| format!("cannot resolve workspace root {}", root.display()))
}

/// The absolute peers directory: `$ONLY1MCP_PEERS` if set and non-empty, else `<workspace>/peers`.
fn peers_dir(workspace: &Path) -> Result<PathBuf> {
    match env::var_os(PEERS_ENV) {
        Some(dir) if !dir.is_empty() => std::path::absolute(&dir)
            .with_context(|| format!("cannot make {PEERS_ENV}={dir:?} absolute")),
        _ => Ok(workspace.join("peers")),
    }
}

/// The cargo binary that launched us (`$CARGO`), so nested runs use the same toolchain.
fn cargo() -> OsString {
    env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

fn cargo_in(workspace: &Path) -> Command {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(workspace);
    cmd
}

/// `cargo xtask test [ARGS...]`.
fn test(workspace: &Path, extra: &[OsString]) -> Result<()> {
    let peers = peers_dir(workspace)?;
    peers::install(&peers)?;
    // `--workspace` would override a `-p/--package` selection, so leave it out then.
    let selects_packages = extra.iter().take_while(|arg| *arg != "--").any(|arg| {
        let arg = arg.to_string_lossy();
        arg == "-p" || arg.starts_with("--package") || (arg.starts_with("-p") && arg.len() > 2)
    });
    let mut cmd = cargo_in(workspace);
    cmd.arg("test");
    if !selects_packages {
        cmd.arg("--workspace");
    }
    cmd.arg("--locked").args(extra).env(PEERS_ENV, &peers);
    eprintln!("xtask: {PEERS_ENV}={}", peers.display());
    run_step("cargo test", &mut cmd)?;
    if extra.is_empty() {
        // `cargo test --workspace` has just built target/debug/only1mcp (the CLI's integration
        // tests run it); `cargo build -p only1mcp-cli` would rebuild it with other features.
        let started = Instant::now();
        conformance::run(workspace, &peers, &["--no-build".into()])?;
        eprintln!("xtask: conformance ok ({})", secs(started.elapsed()));
    } else {
        eprintln!("xtask: conformance skipped (test ARGS given; run `cargo xtask conformance`)");
    }
    Ok(())
}

/// `cargo xtask ci`.
fn ci(workspace: &Path) -> Result<()> {
    // Fail before the long steps if cargo-deny is missing.
    let deny_present = cargo_in(workspace)
        .args(["deny", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !deny_present {
        bail!(
            "cargo-deny is not installed, so `cargo deny check` cannot run; \
             install it with `cargo install --locked cargo-deny`"
        );
    }

    let started = Instant::now();
    let mut timings = Vec::new();
    let steps: [(&str, &[&str]); 3] = [
        ("cargo fmt", &["fmt", "--all", "--check"]),
        (
            "cargo clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ),
        (
            "cargo deny",
            &["deny", "check", "bans", "licenses", "sources"],
        ),
    ];
    for (name, args) in steps {
        let mut cmd = cargo_in(workspace);
        cmd.args(args);
        timings.push((name, run_step(name, &mut cmd)?));
    }
    let deps_started = Instant::now();
    deps::run(workspace, &[])?;
    timings.push(("check-deps", deps_started.elapsed()));
    let test_started = Instant::now();
    test(workspace, &[])?;
    timings.push(("test + conformance", test_started.elapsed()));

    eprintln!("xtask: ci passed in {}", secs(started.elapsed()));
    for (name, took) in timings {
        eprintln!("xtask:   {name:<20} {}", secs(took));
    }
    Ok(())
}

/// Runs `cmd` with inherited stdio; fails unless it exits successfully. Returns the wall time.
fn run_step(name: &str, cmd: &mut Command) -> Result<Duration> {
    eprintln!("xtask: $ {}", show(cmd));
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", cmd.get_program().display()))?;
    let took = started.elapsed();
    if !status.success() {
        bail!("{name} failed ({status}) after {}", secs(took));
    }
    eprintln!("xtask: {name} ok ({})", secs(took));
    Ok(took)
}

/// Runs `cmd` and returns its trimmed stdout; fails unless it exits successfully.
fn capture(cmd: &mut Command) -> Result<String> {
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", show(cmd)))?;
    if !output.status.success() {
        bail!("`{}` failed ({})", show(cmd), output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A shell-like rendering of `cmd` for progress messages.
fn show(cmd: &Command) -> String {
    let mut out = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        out.push_str(&format!("(cd {}) ", dir.display()));
    }
    let words = std::iter::once(cmd.get_program()).chain(cmd.get_args());
    let words: Vec<String> = words.map(quote).collect();
    out.push_str(&words.join(" "));
    out
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=@:+,".contains(c))
    {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn secs(took: Duration) -> String {
    format!("{:.1}s", took.as_secs_f64())
}
