//! `cargo xtask check-deps`: the crate layering of docs/ARCHITECTURE.md, checked against
//! `cargo metadata` rather than only described.
//!
//! Four rules, each failing with the edge (or the path of edges) that breaks it:
//!
//! 1. **Arrows point down.** Every dependency of one workspace crate on another (normal, build
//!    or dev) must be in [`LAYERS`], the table of docs/ARCHITECTURE.md. In particular a
//!    feature crate (balancer, health, cache, auth, observability) depends on `only1mcp-core`
//!    and nothing else of ours, and `only1mcp-core` on nothing of ours. Two exceptions: any
//!    crate but core may dev-depend on `only1mcp-test-support` (the test harness; dev-only by
//!    the same table, since no crate may depend on it normally), and a crate under `examples/`
//!    may depend on any library crate of ours. A workspace crate that is neither in the table
//!    nor under `examples/` fails the check until someone places it in the layering.
//! 2. **Core does no IO.** `only1mcp-core`'s normal dependencies, followed transitively, must
//!    not reach a crate of [`IO_CRATES`] (runtimes, sockets, HTTP stacks, TLS, file watching,
//!    exporters) or of [`APP_CRATES`]. The same holds for the example that shows core used
//!    alone (`examples/core-catalog`), which may depend on core and nothing else of ours.
//! 3. **Application crates stay at the top.** The normal dependencies of the crates below
//!    `only1mcp-proxy` (core, transport, the feature crates), followed transitively, must not
//!    reach a crate of [`APP_CRATES`] (command-line parsing, config loading, file watching,
//!    HTTP routers and servers, terminal UIs).
//! 4. **No import circles.** Inside each workspace crate, the top-level modules (`src/x.rs`,
//!    `src/x/…`) and the `crate::x` paths between them form a graph without a cycle
//!    (`imports`, which says exactly what is read). A circle fails naming its modules and the
//!    file and line of each edge.
//!
//! Only normal edges count for rules 2 and 3: a dev-dependency is not part of what an embedder
//! builds, and a build-dependency runs on the build machine. The resolve graph is the one
//! `cargo metadata` reports for the whole workspace, for every platform and with the features
//! that the workspace's members enable together, so a dependency behind a `cfg(windows)` or
//! one switched on by another member's feature is caught as well.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;

use crate::{capture, cargo_in};

mod imports;

/// The core crate: no IO, nothing of ours below it.
const CORE: &str = "only1mcp-core";

/// The example that uses `only1mcp-core` alone: held to core's rules.
const CORE_EXAMPLE: &str = "only1mcp-example-core-catalog";

/// The crates whose normal dependencies reach no crate of [`IO_CRATES`].
const NO_IO: [&str; 2] = [CORE, CORE_EXAMPLE];

/// The dev-only test harness.
const TEST_SUPPORT: &str = "only1mcp-test-support";

/// The feature crates: each depends on `only1mcp-core` only.
const FEATURE_CRATES: [&str; 5] = [
    "only1mcp-balancer",
    "only1mcp-health",
    "only1mcp-cache",
    "only1mcp-auth",
    "only1mcp-observability",
];

/// The library crates an example under `examples/` may use.
const LIBRARY_CRATES: [&str; 8] = [
    CORE,
    "only1mcp-transport",
    "only1mcp-balancer",
    "only1mcp-health",
    "only1mcp-cache",
    "only1mcp-auth",
    "only1mcp-observability",
    "only1mcp-proxy",
];

/// Each workspace crate and the workspace crates it may depend on: the crate table and the
/// drawing of docs/ARCHITECTURE.md.
const LAYERS: &[(&str, &[&str])] = &[
    (CORE, &[]),
    ("only1mcp-transport", &[CORE]),
    ("only1mcp-balancer", &[CORE]),
    ("only1mcp-health", &[CORE]),
    ("only1mcp-cache", &[CORE]),
    ("only1mcp-auth", &[CORE]),
    ("only1mcp-observability", &[CORE]),
    ("only1mcp-proxy", &LIBRARY_CRATES),
    (
        "only1mcp-cli",
        &[CORE, "only1mcp-proxy", "only1mcp-example-servers"],
    ),
    ("only1mcp-tui", &[CORE]),
    (TEST_SUPPORT, &[CORE, "only1mcp-proxy"]),
    (CORE_EXAMPLE, &[CORE]),
    ("xtask", &[]),
];

/// Crates that do IO or run an event loop, which `only1mcp-core` must never reach through its
/// normal dependencies, each with what it is.
const IO_CRATES: &[(&str, &str)] = &[
    ("tokio", "an async runtime"),
    ("tokio-util", "tokio's IO utilities"),
    ("tokio-stream", "tokio's streams"),
    ("async-std", "an async runtime"),
    ("smol", "an async runtime"),
    ("async-io", "an async runtime's reactor"),
    ("polling", "an OS event poller"),
    ("mio", "an OS event poller"),
    ("socket2", "sockets"),
    ("hyper", "an HTTP implementation"),
    ("hyper-util", "an HTTP implementation"),
    ("h2", "an HTTP/2 implementation"),
    ("h3", "an HTTP/3 implementation"),
    ("quinn", "a QUIC implementation"),
    ("reqwest", "an HTTP client"),
    ("ureq", "an HTTP client"),
    ("curl", "an HTTP client"),
    ("isahc", "an HTTP client"),
    ("tower-http", "HTTP middleware"),
    ("tungstenite", "a WebSocket implementation"),
    ("tokio-tungstenite", "a WebSocket implementation"),
    ("rustls", "a TLS stack"),
    ("tokio-rustls", "a TLS stack"),
    ("native-tls", "a TLS stack"),
    ("openssl", "a TLS stack"),
    ("tracing-subscriber", "a log subscriber that writes output"),
    ("metrics-exporter-prometheus", "a metrics exporter"),
    ("opentelemetry-otlp", "a telemetry exporter"),
];

/// Application-level crates that live in `only1mcp-proxy` and above, never in core, transport
/// or a feature crate.
const APP_CRATES: &[(&str, &str)] = &[
    ("clap", "command-line parsing"),
    ("figment", "config loading"),
    ("notify", "file watching"),
    ("notify-debouncer-full", "file watching"),
    ("axum", "an HTTP router"),
    ("axum-server", "an HTTP server"),
    ("ratatui", "a terminal UI"),
    ("crossterm", "a terminal UI"),
];

const USAGE: &str = "\
Usage: cargo xtask check-deps

Reads `cargo metadata` and fails when a dependency breaks the crate layering, or
when top-level modules of a crate import each other in a circle (see
xtask/src/deps.rs and docs/ARCHITECTURE.md).
";

/// `cargo xtask check-deps`.
pub(crate) fn run(workspace: &Path, args: &[OsString]) -> Result<()> {
    match args {
        [] => {}
        [arg] if arg == "-h" || arg == "--help" => {
            print!("{USAGE}");
            return Ok(());
        }
        _ => {
            print!("{USAGE}");
            bail!("unexpected arguments {args:?}");
        }
    }
    let metadata = Metadata::read(workspace)?;
    let violations = check(&metadata)?;
    let circles = check_imports(&metadata)?;
    for violation in violations.iter().chain(&circles) {
        eprintln!("xtask: check-deps: {violation}");
    }
    if !violations.is_empty() {
        bail!(
            "the crate layering is broken by {} dependenc{} (the allowed edges are in \
             xtask/src/deps.rs and docs/ARCHITECTURE.md){}",
            violations.len(),
            if violations.len() == 1 { "y" } else { "ies" },
            if circles.is_empty() {
                ""
            } else {
                ", and modules import each other in a circle"
            }
        );
    }
    if !circles.is_empty() {
        bail!(
            "{} import circle{} between the top-level modules of a crate (see \
             xtask/src/deps/imports.rs)",
            circles.len(),
            if circles.len() == 1 { "" } else { "s" }
        );
    }
    eprintln!(
        "xtask: check-deps ok ({} workspace crates, no import circles)",
        metadata.workspace_members.len()
    );
    Ok(())
}

/// Rule 4: one line per import circle between the top-level modules of a workspace crate.
fn check_imports(metadata: &Metadata) -> Result<Vec<String>> {
    let mut members: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|package| metadata.workspace_members.contains(&package.id))
        .collect();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    let mut circles = Vec::new();
    for package in members {
        let Some(src) = package.manifest_path.parent().map(|dir| dir.join("src")) else {
            continue;
        };
        if !src.is_dir() {
            continue;
        }
        let graph = imports::ModuleGraph::new(&imports::read_tree(&src)?);
        circles.extend(graph.circles().into_iter().map(|circle| {
            format!(
                "{}: import circle between top-level modules: {circle}",
                package.name
            )
        }));
    }
    Ok(circles)
}

/// The parts of `cargo metadata --format-version 1` the check reads.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
    resolve: Option<Resolve>,
}

#[derive(Debug, Clone, Deserialize)]
struct Package {
    id: String,
    name: String,
    manifest_path: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

/// One package of the resolve graph and its resolved dependencies.
#[derive(Debug, Clone, Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Debug, Clone, Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKindInfo>,
}

/// How a dependency is used: `kind` is `null` for a normal dependency, `"dev"` or `"build"`.
#[derive(Debug, Clone, Deserialize)]
struct DepKindInfo {
    kind: Option<String>,
}

impl NodeDep {
    fn is_normal(&self) -> bool {
        self.dep_kinds.iter().any(|info| info.kind.is_none())
    }

    fn is_dev_only(&self) -> bool {
        self.dep_kinds
            .iter()
            .all(|info| info.kind.as_deref() == Some("dev"))
    }
}

impl Metadata {
    /// Runs `cargo metadata` in `workspace` (all platforms, the lock file as it is).
    fn read(workspace: &Path) -> Result<Self> {
        let mut cmd = cargo_in(workspace);
        cmd.args(["metadata", "--format-version", "1", "--locked"]);
        let json = capture(&mut cmd)?;
        serde_json::from_str(&json).context("cannot read the output of `cargo metadata`")
    }
}

/// The resolve graph, indexed by package id.
struct Graph<'m> {
    names: BTreeMap<&'m str, &'m str>,
    deps: BTreeMap<&'m str, &'m [NodeDep]>,
}

impl<'m> Graph<'m> {
    fn new(metadata: &'m Metadata) -> Result<Self> {
        let resolve = metadata
            .resolve
            .as_ref()
            .context("`cargo metadata` gave no resolve graph")?;
        Ok(Self {
            names: metadata
                .packages
                .iter()
                .map(|package| (package.id.as_str(), package.name.as_str()))
                .collect(),
            deps: resolve
                .nodes
                .iter()
                .map(|node| (node.id.as_str(), node.deps.as_slice()))
                .collect(),
        })
    }

    fn name(&self, id: &'m str) -> &'m str {
        self.names.get(id).copied().unwrap_or(id)
    }

    /// Every package `from` reaches through normal dependencies whose name is in `forbidden`,
    /// each with the shortest path to it (`a -> b -> c`).
    ///
    /// The walk stops at a forbidden package (what it pulls in is its own business) and at a
    /// workspace crate in `members`: an edge to one is checked against the table, and that
    /// crate's own dependencies by its own rules.
    fn reach(
        &self,
        from: &'m str,
        forbidden: &[(&str, &str)],
        members: &BTreeMap<&str, &Package>,
    ) -> Vec<(String, &'m str)> {
        let mut parent: BTreeMap<&'m str, &'m str> = BTreeMap::new();
        let mut seen = BTreeSet::from([from]);
        let mut queue = VecDeque::from([from]);
        let mut found = Vec::new();
        while let Some(id) = queue.pop_front() {
            for dep in self.deps.get(id).copied().unwrap_or_default() {
                if !dep.is_normal() || !seen.insert(dep.pkg.as_str()) {
                    continue;
                }
                parent.insert(&dep.pkg, id);
                let name = self.name(&dep.pkg);
                if forbidden.iter().any(|(bad, _)| *bad == name) {
                    let mut path = vec![name];
                    let mut at = dep.pkg.as_str();
                    while let Some(&up) = parent.get(at) {
                        path.push(self.name(up));
                        at = up;
                    }
                    path.reverse();
                    found.push((path.join(" -> "), name));
                } else if !members.contains_key(dep.pkg.as_str()) {
                    queue.push_back(&dep.pkg);
                }
            }
        }
        found
    }
}

/// Checks the layering; returns one line per broken rule, naming the edge or path.
fn check(metadata: &Metadata) -> Result<Vec<String>> {
    let graph = Graph::new(metadata)?;
    let members: BTreeMap<&str, &Package> = metadata
        .workspace_members
        .iter()
        .map(|id| {
            let package = metadata
                .packages
                .iter()
                .find(|package| &package.id == id)
                .with_context(|| format!("workspace member {id} is not among the packages"))?;
            Ok((id.as_str(), package))
        })
        .collect::<Result<_>>()?;
    let examples = metadata.workspace_root.join("examples");
    let mut violations = Vec::new();

    // 1. Arrows point down.
    for (&id, package) in &members {
        let from = package.name.as_str();
        let allowed: &[&str] = match LAYERS.iter().find(|(name, _)| *name == from) {
            Some((_, allowed)) => allowed,
            None if package.manifest_path.starts_with(&examples) => &LIBRARY_CRATES,
            None => {
                violations.push(format!(
                    "{from} ({}) is not in the layering table: add it to LAYERS in \
                     xtask/src/deps.rs and to docs/ARCHITECTURE.md with the crates it may \
                     depend on",
                    package.manifest_path.display()
                ));
                continue;
            }
        };
        for dep in graph.deps.get(id).copied().unwrap_or_default() {
            let Some(to) = members.get(dep.pkg.as_str()).map(|p| p.name.as_str()) else {
                continue;
            };
            let dev_harness = dep.is_dev_only() && to == TEST_SUPPORT && from != CORE;
            if allowed.contains(&to) || dev_harness {
                continue;
            }
            let rule = if from == CORE {
                format!("{CORE} depends on no other crate of ours")
            } else if FEATURE_CRATES.contains(&from) {
                format!("a feature crate depends on {CORE} only")
            } else {
                format!(
                    "{from} may depend on {} only; an arrow may not point up or sideways",
                    if allowed.is_empty() {
                        "no crate of ours".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                )
            };
            violations.push(format!("{from} -> {to}: {rule}"));
        }
    }

    // 2 and 3. Core does no IO; application crates stay at the top.
    let below_proxy = LIBRARY_CRATES
        .iter()
        .filter(|name| **name != "only1mcp-proxy")
        .chain([&CORE_EXAMPLE]);
    for &name in below_proxy {
        let Some((&id, _)) = members.iter().find(|(_, package)| package.name == name) else {
            continue;
        };
        let mut found = graph.reach(id, APP_CRATES, &members);
        if NO_IO.contains(&name) {
            found.extend(graph.reach(id, IO_CRATES, &members));
        }
        for (path, bad) in found {
            let what = IO_CRATES
                .iter()
                .chain(APP_CRATES)
                .find(|(crate_name, _)| *crate_name == bad)
                .map_or("", |(_, what)| what);
            let rule = match name {
                CORE => "core does no IO and holds no application code",
                CORE_EXAMPLE => "the example shows core used alone, without IO",
                _ => "application crates are used in only1mcp-proxy and above",
            };
            violations.push(format!(
                "{path}: {name} must not depend on {bad} ({what}); {rule}"
            ));
        }
    }
    Ok(violations)
}

#[cfg(test)]
mod tests;
