//! `cargo xtask peers`: installs the real MCP peers the tests use, idempotently.
//!
//! Layout under the peers directory (gitignored `<workspace>/peers` by default):
//! - `node/`: an npm project with the reference servers (`node_modules/.bin/mcp-server-*`).
//! - `venv/`: a Python virtualenv with the `mcp` SDK and `mcp-server-time` (`bin/mcp-server-time`).
//!
//! Each directory holds a stamp file naming exactly what was installed and with which
//! interpreter. When the stamp matches, the directory is left alone; otherwise it is
//! reinstalled from scratch, the servers are checked to answer `initialize` over stdio,
//! and only then is the stamp written.

use std::{
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{capture, run_step, secs, show};

/// npm packages installed into `peers/node` (exact versions).
const NODE_PACKAGES: &[&str] = &[
    "@modelcontextprotocol/server-everything@2026.8.31",
    "@modelcontextprotocol/server-filesystem@2026.8.31",
    "@modelcontextprotocol/server-memory@2026.8.31",
];

/// PyPI requirements installed into `peers/venv` (exact versions).
const PYTHON_PACKAGES: &[&str] = &["mcp==2.3.0", "mcp-server-time==2026.10.19"];

/// Name of the stamp file inside `peers/node` and `peers/venv`.
const STAMP: &str = ".only1mcp-peers-stamp";

/// Bump to force a reinstall everywhere when the install procedure changes.
const STAMP_FORMAT: u32 = 1;

/// How long a freshly installed server gets to answer `initialize`.
const INITIALIZE_TIMEOUT: Duration = Duration::from_secs(60);

/// Installs (or confirms) all peers under `dir`, printing what was done.
pub(crate) fn install(dir: &Path) -> Result<()> {
    let started = Instant::now();
    eprintln!("xtask: peers directory {}", dir.display());
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let node = ensure_node(&dir.join("node"))?;
    let venv = ensure_venv(&dir.join("venv"))?;
    eprintln!("xtask: peers ready in {}:", secs(started.elapsed()));
    eprintln!("xtask:   node: {node}");
    eprintln!("xtask:   venv: {venv}");
    Ok(())
}

/// `peers/node`: the npm reference servers. Returns a one-line description of what happened.
fn ensure_node(dir: &Path) -> Result<String> {
    let node_version = capture(Command::new("node").arg("--version"))
        .context("node is required for the npm peers")?;
    let stamp = stamp_text(&[
        format!("node {node_version}"),
        format!("npm install {}", NODE_PACKAGES.join(" ")),
    ]);
    let everything = dir.join("node_modules/.bin/mcp-server-everything");
    if stamp_matches(dir, &stamp) && everything.exists() {
        return Ok(format!("up to date ({})", NODE_PACKAGES.join(", ")));
    }

    let started = Instant::now();
    eprintln!("xtask: installing npm peers into {}", dir.display());
    // Only remove what this command creates, never the whole directory.
    for name in [STAMP, "package.json", "package-lock.json"] {
        remove_file_if_exists(&dir.join(name))?;
    }
    remove_dir_if_exists(&dir.join("node_modules"))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    fs::write(
        dir.join("package.json"),
        "{\n  \"name\": \"only1mcp-peers\",\n  \"private\": true\n}\n",
    )
    .context("cannot write peers/node/package.json")?;

    let mut npm = Command::new("npm");
    npm.current_dir(dir)
        .args(["install", "--no-audit", "--no-fund", "--save-exact"])
        .args(NODE_PACKAGES);
    run_step("npm install", &mut npm)?;

    let version = check_initialize(&everything, &[])?;
    write_stamp(dir, &stamp)?;
    Ok(format!(
        "installed {} in {} with node {node_version}; mcp-server-everything answered initialize \
         ({version})",
        NODE_PACKAGES.join(", "),
        secs(started.elapsed()),
    ))
}

/// `peers/venv`: the Python SDK and PyPI reference servers. Returns a one-line description.
fn ensure_venv(dir: &Path) -> Result<String> {
    let python = "python3";
    let python_version = capture(Command::new(python).arg("--version"))
        .context("python3 is required for the Python peers")?;
    // A venv hard-codes its own absolute path in its scripts, so the path is part of the stamp.
    let stamp = stamp_text(&[
        format!("python {python_version}"),
        format!("path {}", dir.display()),
        format!("pip install {}", PYTHON_PACKAGES.join(" ")),
    ]);
    let time_server = dir.join("bin/mcp-server-time");
    if stamp_matches(dir, &stamp) && time_server.exists() {
        return Ok(format!("up to date ({})", PYTHON_PACKAGES.join(", ")));
    }

    let started = Instant::now();
    eprintln!("xtask: creating Python venv {}", dir.display());
    if dir.join("pyvenv.cfg").exists() {
        remove_dir_if_exists(dir)?;
    } else if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} exists, is not empty and is not a venv; move it away",
            dir.display()
        );
    }

    let venv_python = dir.join("bin/python");
    let mut venv = Command::new(python);
    venv.args(["-m", "venv"]).arg(dir);
    let mut pip = if run_step("python3 -m venv", &mut venv).is_ok() {
        let mut pip = Command::new(&venv_python);
        pip.args(["-m", "pip"]);
        pip
    } else {
        // Debian's python3 without the python3-venv package has no ensurepip: make the venv
        // without pip and drive the system pip against it instead.
        eprintln!("xtask: retrying without ensurepip (pip runs from the system python)");
        remove_dir_if_exists(dir)?;
        let mut venv = Command::new(python);
        venv.args(["-m", "venv", "--without-pip"]).arg(dir);
        run_step("python3 -m venv --without-pip", &mut venv)?;
        let mut pip = Command::new(python);
        pip.args(["-m", "pip", "--python"]).arg(&venv_python);
        pip
    };
    pip.args([
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--quiet",
    ])
    .args(PYTHON_PACKAGES);
    run_step("pip install", &mut pip)?;

    let version = check_initialize(&time_server, &["--local-timezone", "UTC"])?;
    write_stamp(dir, &stamp)?;
    Ok(format!(
        "installed {} in {} with {python_version}; mcp-server-time answered initialize \
         ({version})",
        PYTHON_PACKAGES.join(", "),
        secs(started.elapsed()),
    ))
}

fn stamp_text(lines: &[String]) -> String {
    let mut text = format!("only1mcp peers stamp v{STAMP_FORMAT}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}

fn stamp_matches(dir: &Path, expected: &str) -> bool {
    fs::read_to_string(dir.join(STAMP)).is_ok_and(|found| found == expected)
}

fn write_stamp(dir: &Path, text: &str) -> Result<()> {
    let path = dir.join(STAMP);
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn remove_file_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Starts `program` as a stdio MCP server, sends a legacy `initialize` and waits for its result.
///
/// Returns a short description (`protocolVersion` and `serverInfo.name`) of the answer.
fn check_initialize(program: &Path, args: &[&str]) -> Result<String> {
    const REQUEST: &str = concat!(
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"#,
        r#""protocolVersion":"2025-11-25","capabilities":{},"#,
        r#""clientInfo":{"name":"only1mcp-xtask","version":"0"}}}"#,
        "\n"
    );
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    eprintln!("xtask: checking that `{}` answers initialize", show(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", program.display()))?;

    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        bail!("child stdio was not captured");
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let written = stdin
        .write_all(REQUEST.as_bytes())
        .and_then(|()| stdin.flush());
    let deadline = Instant::now() + INITIALIZE_TIMEOUT;
    let answer = written.map_err(anyhow::Error::from).and_then(|()| {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains(r#""id":1"#) || line.contains(r#""id": 1"#) => {
                    break Ok(line);
                }
                Ok(_) => {} // a notification or log line
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Err(anyhow::anyhow!(
                        "no answer within {}",
                        secs(INITIALIZE_TIMEOUT)
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(anyhow::anyhow!("stdout closed before an answer"));
                }
            }
        }
    });

    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    let stderr_text = stderr_reader.join().unwrap_or_default();

    let fail = |why: String| {
        anyhow::anyhow!(
            "{} did not answer initialize: {why}\n--- its stderr ---\n{}",
            program.display(),
            stderr_text.trim_end()
        )
    };
    let line = answer.map_err(|err| fail(format!("{err:#}")))?;
    if !line.contains(r#""result""#) {
        return Err(fail(format!("unexpected answer {line}")));
    }
    let version = json_string_field(&line, "protocolVersion").unwrap_or("?");
    let name = json_string_field(&line, "name").unwrap_or("?");
    Ok(format!("protocolVersion {version}, server {name}"))
}

/// The first `"key":"value"` string value in a JSON text (enough for a smoke check; no escapes).
fn json_string_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let after_key = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let after_colon = after_key.trim_start().strip_prefix(':')?.trim_start();
    let value = after_colon.strip_prefix('"')?;
    Some(&value[..value.find('"')?])
}
