//! `cargo xtask corpus [--check]`: captures the tool catalogs of six real MCP servers into
//! `docs/corpus/<id>.json` (see docs/corpus/README.md).
//!
//! Steps: `peers` (install or confirm; the servers are peers), then
//! `docs/corpus/capture.py <peers>` with the peers venv's python, then a table of the servers
//! with their tool counts.
//!
//! With `--check` the catalogs are captured into `target/corpus/` instead and compared byte for
//! byte with the committed ones. It fails when a file differs or is missing on either side: a
//! peer's version changed without a re-capture, or the capture is not deterministic.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::{capture, peers};

/// Where the corpus lives, relative to the workspace root.
const CORPUS_DIR: &str = "docs/corpus";

/// Where `--check` captures to, relative to the workspace root.
const CHECK_DIR: &str = "target/corpus";

const USAGE: &str = "\
Usage: cargo xtask corpus [--check]

Captures the tool catalogs of the six corpus servers (docs/corpus/capture.py) into
docs/corpus/<id>.json.

  --check   capture into target/corpus/ instead and fail unless every file is byte-identical
            to the one in docs/corpus/
";

/// One line of capture.py's summary.
#[derive(Debug)]
struct Captured {
    server: String,
    n_tools: usize,
    package: String,
    version: String,
}

/// `cargo xtask corpus [--check]`.
pub(crate) fn run(workspace: &Path, peers_dir: &Path, args: &[OsString]) -> Result<()> {
    let check = match args {
        [] => false,
        [arg] if arg == "--check" => true,
        [arg] if arg == "-h" || arg == "--help" => {
            print!("{USAGE}");
            return Ok(());
        }
        _ => {
            print!("{USAGE}");
            bail!("unexpected arguments {args:?}");
        }
    };
    peers::install(peers_dir)?;

    let corpus = workspace.join(CORPUS_DIR);
    let out_dir = if check {
        let dir = workspace.join(CHECK_DIR);
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        dir
    } else {
        corpus.clone()
    };
    let python = peers_dir.join("venv/bin/python");
    let mut cmd = Command::new(&python);
    cmd.arg(corpus.join("capture.py"))
        .arg(peers_dir)
        .arg(&out_dir)
        .current_dir(workspace);
    eprintln!("xtask: capturing the corpus into {}", out_dir.display());
    let summary = capture(&mut cmd).context("capture.py failed")?;
    let captured = summary
        .lines()
        .map(parse_summary_line)
        .collect::<Result<Vec<_>>>()?;

    let n_tools: usize = captured.iter().map(|it| it.n_tools).sum();
    eprintln!(
        "xtask: corpus: {} servers, {n_tools} tools in {}:",
        captured.len(),
        out_dir.display()
    );
    for it in &captured {
        eprintln!(
            "xtask:   {:<12} {:>3} tools  {} {}",
            it.server, it.n_tools, it.package, it.version
        );
    }

    if check {
        compare(&corpus, &out_dir)?;
        eprintln!("xtask: corpus check ok: {CORPUS_DIR} is byte-identical to a fresh capture");
    }
    Ok(())
}

/// `id<TAB>n_tools<TAB>package<TAB>version`.
fn parse_summary_line(line: &str) -> Result<Captured> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [server, n_tools, package, version] = fields[..] else {
        bail!("unexpected summary line from capture.py: {line:?}");
    };
    Ok(Captured {
        server: server.to_owned(),
        n_tools: n_tools
            .parse()
            .with_context(|| format!("bad tool count in {line:?}"))?,
        package: package.to_owned(),
        version: version.to_owned(),
    })
}

/// Fails unless `expected` and `actual` hold the same `*.json` files with the same bytes.
fn compare(expected: &Path, actual: &Path) -> Result<()> {
    let expected_files = json_files(expected)?;
    let actual_files = json_files(actual)?;
    let mut problems = Vec::new();
    for name in expected_files.union(&actual_files) {
        let (old, new) = (expected.join(name), actual.join(name));
        match (fs::read(&old).ok(), fs::read(&new).ok()) {
            (Some(old_bytes), Some(new_bytes)) if old_bytes == new_bytes => {}
            (Some(_), Some(_)) => problems.push(format!("{name} differs (see {})", new.display())),
            (Some(_), None) => problems.push(format!("{name} was not captured")),
            (None, _) => problems.push(format!("{name} is new (not in {CORPUS_DIR})")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        bail!(
            "{CORPUS_DIR} is out of date; run `cargo xtask corpus` and review the diff:\n  {}",
            problems.join("\n  ")
        )
    }
}

fn json_files(dir: &Path) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path: PathBuf = entry?.path();
        if path.extension().is_some_and(|ext| ext == "json")
            && let Some(name) = path.file_name().and_then(|name| name.to_str())
        {
            names.insert(name.to_owned());
        }
    }
    Ok(names)
}
