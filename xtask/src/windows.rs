//! `cargo xtask windows`: the Windows build, checked from Linux.
//!
//! 1. `cargo clippy --workspace --all-targets` for `x86_64-pc-windows-gnu`, warnings denied.
//! 2. A build of the CLI and the example servers for that target.
//! 3. Unless `--check-only`: a smoke run under Wine. `only1mcp.exe start --stdio` is started
//!    with a config whose one server is a bare command name, `echo-wrapper`, that only exists as
//!    `echo-wrapper.cmd` on the server's own `PATH` (the `npx` → `npx.cmd` case: found through
//!    `PATHEXT`, with no shell in the config); a JSON-RPC client here initializes, calls the
//!    echo tool through the gateway, and closes stdin; the gateway must answer and exit 0.
//!
//! Needs Debian's `gcc-mingw-w64-x86-64` and `wine64` and rustup's `x86_64-pc-windows-gnu`
//! std (`.ci/run` installs them). Wine 8.0 lacks the `ProcessPrng` that Rust's std calls at
//! start-up, so the smoke directory gets a small stand-in DLL built from
//! `xtask/windows/bcryptprimitives.c` (see that file); nothing of it ships.

use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{cargo_in, run_step, secs};

const TARGET: &str = "x86_64-pc-windows-gnu";

/// How long the gateway under Wine has to answer each message (a fresh Wine prefix takes a few
/// seconds to create on first use).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// `cargo xtask windows [--check-only]`.
pub(crate) fn run(workspace: &Path, args: &[OsString]) -> Result<()> {
    let check_only = match args {
        [] => false,
        [flag] if flag == "--check-only" => true,
        _ => bail!("`cargo xtask windows` takes only `--check-only` (got {args:?})"),
    };
    let mut clippy = cargo_in(workspace);
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--target",
        TARGET,
    ]);
    clippy.args(["--", "-D", "warnings"]);
    run_step("cargo clippy (windows)", &mut clippy)?;
    if check_only {
        return Ok(());
    }
    let mut build = cargo_in(workspace);
    build.args(["build", "--locked", "--target", TARGET, "--bins"]);
    build.args(["-p", "only1mcp-cli", "-p", "only1mcp-example-servers"]);
    run_step("cargo build (windows)", &mut build)?;
    let started = Instant::now();
    smoke(workspace)?;
    eprintln!(
        "xtask: windows smoke test under Wine ok ({})",
        secs(started.elapsed())
    );
    Ok(())
}

/// Wine's 64-bit loader: Debian puts it outside `PATH`.
fn wine() -> Result<PathBuf> {
    let debian = PathBuf::from("/usr/lib/wine/wine64");
    if debian.is_file() {
        return Ok(debian);
    }
    which_on_path("wine64")
        .or_else(|| which_on_path("wine"))
        .context("Wine is not installed (Debian: `apt-get install wine64`); run with --check-only to skip the smoke test")
}

fn which_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

/// Wine's name for a Unix path: the `Z:` drive maps `/`.
fn wine_path(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

fn smoke(workspace: &Path) -> Result<()> {
    let built = workspace.join("target").join(TARGET).join("debug");
    let dir = workspace.join("target/windows-smoke");
    let bin = dir.join("bin");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&bin)?;
    for exe in ["only1mcp.exe", "only1mcp-echo-server.exe"] {
        std::fs::copy(built.join(exe), dir.join(exe))
            .with_context(|| format!("cannot copy {exe} from {}", built.display()))?;
    }
    let mut gcc = Command::new("x86_64-w64-mingw32-gcc");
    gcc.args(["-shared", "-o"])
        .arg(dir.join("bcryptprimitives.dll"))
        .arg(workspace.join("xtask/windows/bcryptprimitives.c"))
        .arg("-ladvapi32");
    run_step("mingw gcc (Wine stand-in DLL)", &mut gcc)?;
    std::fs::write(
        bin.join("echo-wrapper.cmd"),
        "@\"%~dp0..\\only1mcp-echo-server.exe\" %*\r\n",
    )?;
    std::fs::write(
        dir.join("smoke.yaml"),
        format!(
            "servers:\n  echo:\n    command: echo-wrapper\n    env:\n      PATH: '{}'\n",
            wine_path(&bin)
        ),
    )?;

    let mut gateway = Command::new(wine()?)
        .current_dir(&dir)
        .args(["only1mcp.exe", "start", "--stdio", "--config", "smoke.yaml"])
        .env("WINEPREFIX", dir.join("prefix"))
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start Wine")?;
    let mut stdin = gateway.stdin.take().context("no stdin")?;
    let stdout = gateway.stdout.take().context("no stdout")?;
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let answer = |id: u64| -> Result<serde_json::Value> {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines.recv_timeout(left).with_context(|| {
                format!("no answer to request {id} within {ANSWER_TIMEOUT:?}")
            })??;
            let message: serde_json::Value = serde_json::from_str(&line)
                .with_context(|| format!("the gateway wrote a line that is not JSON: {line}"))?;
            if message["id"] == id {
                return Ok(message);
            }
        }
    };
    let send = |stdin: &mut std::process::ChildStdin, message: serde_json::Value| {
        writeln!(stdin, "{message}").context("the gateway's stdin closed")
    };
    let result = (|| -> Result<()> {
        send(
            &mut stdin,
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "xtask-windows-smoke", "version": "1"}}}),
        )?;
        let init = answer(1)?;
        if init["result"]["serverInfo"]["name"] != "only1mcp" {
            bail!("unexpected initialize answer: {init}");
        }
        send(
            &mut stdin,
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )?;
        send(
            &mut stdin,
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
                "name": "echo__echo", "arguments": {"text": "hello from Wine"}}}),
        )?;
        let call = answer(2)?;
        if call["result"]["content"][0]["text"] != "hello from Wine" {
            bail!("the echo tool did not answer through the gateway: {call}");
        }
        Ok(())
    })();
    drop(stdin);
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    let status = loop {
        if let Some(status) = gateway.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = gateway.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    result?;
    match status {
        Some(status) if status.success() => Ok(()),
        Some(status) => bail!("the gateway under Wine exited with {status} after its stdin closed"),
        None => bail!(
            "the gateway under Wine did not exit within {ANSWER_TIMEOUT:?} of its stdin closing"
        ),
    }
}
