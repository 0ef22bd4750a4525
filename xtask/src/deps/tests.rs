//! The layering check against the real workspace, and against the real workspace with one
//! forbidden edge added to its resolve graph.

use std::{path::Path, sync::LazyLock};

use super::{DepKindInfo, Metadata, NodeDep, check};

/// The workspace's own `cargo metadata`, read once.
static WORKSPACE: LazyLock<Metadata> = LazyLock::new(|| {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    Metadata::read(root).expect("cargo metadata runs")
});

/// The kind of an added edge.
#[derive(Clone, Copy)]
enum Kind {
    Normal,
    Dev,
}

/// The workspace's metadata with one more edge `from -> to` (package names).
fn with_edge(from: &str, to: &str, kind: Kind) -> Metadata {
    let mut metadata = WORKSPACE.clone();
    let id = |name: &str| {
        metadata
            .packages
            .iter()
            .find(|package| package.name == name)
            .unwrap_or_else(|| panic!("no package {name} in the workspace graph"))
            .id
            .clone()
    };
    let (from_id, to_id) = (id(from), id(to));
    let node = metadata
        .resolve
        .as_mut()
        .expect("resolve graph")
        .nodes
        .iter_mut()
        .find(|node| node.id == from_id)
        .expect("node of the package");
    node.deps.push(NodeDep {
        pkg: to_id,
        dep_kinds: vec![DepKindInfo {
            kind: match kind {
                Kind::Normal => None,
                Kind::Dev => Some("dev".to_owned()),
            },
        }],
    });
    metadata
}

/// Asserts the check finds exactly one broken rule, and that it names `edge`.
fn assert_fails_naming(metadata: &Metadata, edge: &str) {
    let violations = check(metadata).expect("check runs");
    assert_eq!(
        violations.len(),
        1,
        "expected one violation naming {edge}, got {violations:#?}"
    );
    assert!(
        violations[0].starts_with(&format!("{edge}: ")),
        "the violation should name {edge}: {}",
        violations[0]
    );
}

#[test]
fn the_workspace_as_it_is_passes() {
    let violations = check(&WORKSPACE).expect("check runs");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn core_depending_on_tokio_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-core", "tokio", Kind::Normal),
        "only1mcp-core -> tokio",
    );
}

#[test]
fn core_reaching_tokio_through_a_dependency_fails_naming_the_path() {
    // globset is a normal dependency of core (and of nothing else held to the IO rule); a
    // dependency of it that pulls tokio is as bad as core's own.
    assert_fails_naming(
        &with_edge("globset", "tokio", Kind::Normal),
        "only1mcp-core -> globset -> tokio",
    );
}

#[test]
fn core_depending_on_hyper_fails() {
    // Only the edge is named, not the crates hyper pulls in (tokio, h2, ...).
    assert_fails_naming(
        &with_edge("only1mcp-core", "hyper", Kind::Normal),
        "only1mcp-core -> hyper",
    );
}

#[test]
fn core_may_use_tokio_in_its_tests() {
    let violations = check(&with_edge("only1mcp-core", "tokio", Kind::Dev)).expect("runs");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn core_depending_on_the_proxy_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-core", "only1mcp-proxy", Kind::Normal),
        "only1mcp-core -> only1mcp-proxy",
    );
}

#[test]
fn a_feature_crate_depending_on_the_transport_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-auth", "only1mcp-transport", Kind::Normal),
        "only1mcp-auth -> only1mcp-transport",
    );
}

#[test]
fn a_feature_crate_depending_on_another_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-balancer", "only1mcp-health", Kind::Normal),
        "only1mcp-balancer -> only1mcp-health",
    );
}

#[test]
fn a_feature_crate_may_depend_on_core() {
    let violations =
        check(&with_edge("only1mcp-cache", "only1mcp-core", Kind::Normal)).expect("runs");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn an_arrow_from_the_transport_up_to_the_proxy_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-transport", "only1mcp-proxy", Kind::Normal),
        "only1mcp-transport -> only1mcp-proxy",
    );
}

#[test]
fn the_test_harness_is_a_dev_dependency_only() {
    let dev = check(&with_edge(
        "only1mcp-transport",
        "only1mcp-test-support",
        Kind::Dev,
    ))
    .expect("runs");
    assert!(dev.is_empty(), "{dev:#?}");
    assert_fails_naming(
        &with_edge("only1mcp-transport", "only1mcp-test-support", Kind::Normal),
        "only1mcp-transport -> only1mcp-test-support",
    );
}

#[test]
fn the_transport_depending_on_clap_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-transport", "clap", Kind::Normal),
        "only1mcp-transport -> clap",
    );
}

#[test]
fn a_crate_outside_the_table_fails_until_it_is_placed() {
    let mut metadata = WORKSPACE.clone();
    let tui = metadata
        .packages
        .iter_mut()
        .find(|package| package.name == "only1mcp-tui")
        .expect("the tui crate");
    tui.name = "only1mcp-gui".to_owned();
    let violations = check(&metadata).expect("runs");
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].starts_with("only1mcp-gui (")
            && violations[0].contains("is not in the layering table"),
        "{}",
        violations[0]
    );
}

#[test]
fn an_example_may_use_the_libraries_but_not_the_test_harness() {
    let mut metadata = WORKSPACE.clone();
    // An example no crate depends on, renamed so that it is out of the table like a new one.
    let servers = metadata
        .packages
        .iter_mut()
        .find(|package| package.name == "only1mcp-example-custom-layer")
        .expect("the custom layer example");
    servers.name = "only1mcp-example-new".to_owned();
    let id = servers.id.clone();
    let package_id = |name: &str| {
        metadata
            .packages
            .iter()
            .find(|package| package.name == name)
            .expect("package")
            .id
            .clone()
    };
    let (proxy, harness) = (
        package_id("only1mcp-proxy"),
        package_id("only1mcp-test-support"),
    );
    let node = metadata
        .resolve
        .as_mut()
        .expect("resolve graph")
        .nodes
        .iter_mut()
        .find(|node| node.id == id)
        .expect("node");
    for pkg in [proxy, harness] {
        node.deps.push(NodeDep {
            pkg,
            dep_kinds: vec![DepKindInfo { kind: None }],
        });
    }
    let violations = check(&metadata).expect("runs");
    assert_eq!(violations.len(), 1, "{violations:#?}");
    assert!(
        violations[0].starts_with("only1mcp-example-new -> only1mcp-test-support: "),
        "{}",
        violations[0]
    );
}

#[test]
fn the_core_example_reaching_tokio_fails() {
    assert_fails_naming(
        &with_edge("only1mcp-example-core-catalog", "tokio", Kind::Normal),
        "only1mcp-example-core-catalog -> tokio",
    );
}

#[test]
fn the_core_example_depending_on_the_proxy_fails() {
    assert_fails_naming(
        &with_edge(
            "only1mcp-example-core-catalog",
            "only1mcp-proxy",
            Kind::Normal,
        ),
        "only1mcp-example-core-catalog -> only1mcp-proxy",
    );
}

#[test]
fn the_workspace_has_no_import_circles() {
    let circles = super::check_imports(&WORKSPACE).expect("the check reads every crate");
    assert!(circles.is_empty(), "{circles:#?}");
}
