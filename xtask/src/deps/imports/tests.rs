//! The import-circle check against small source trees written to a temporary directory: one
//! with a circle (it fails and names it) and ones without (they pass), including references
//! that must not count (comments, strings, tests).

use std::path::Path;

use super::{ModuleGraph, read_tree};

/// Writes `files` (path under `src/`, text) into a fresh `src/` and returns the circles found.
fn circles_of(files: &[(&str, &str)]) -> Vec<String> {
    graph_of(files).circles()
}

/// Writes `files` (path under `src/`, text) into a fresh `src/` and reads its graph.
fn graph_of(files: &[(&str, &str)]) -> ModuleGraph {
    let dir = tempfile::tempdir().expect("temporary directory");
    let src = dir.path().join("src");
    for (path, text) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("directory");
        std::fs::write(&path, text).expect("write");
    }
    ModuleGraph::new(&read_tree(&src).expect("read the tree"))
}

/// `files` with the file at `path` replaced by (or added as) `text`.
fn with_file<'f>(
    files: &[(&'f str, &'f str)],
    path: &'f str,
    text: &'f str,
) -> Vec<(&'f str, &'f str)> {
    let mut files: Vec<_> = files.iter().copied().filter(|(p, _)| *p != path).collect();
    files.push((path, text));
    files
}

/// `a -> b -> c -> d`, through a file below `b/` and an item `c` re-exported at the root.
const ACYCLIC: &[(&str, &str)] = &[
    (
        "lib.rs",
        "mod a;\nmod b;\nmod c;\nmod d;\npub use c::{Gamma, inner::Deep as Renamed};\n",
    ),
    (
        "a.rs",
        "//! A.\n\nuse crate::b::Beta;\n\npub struct Alpha(Beta);\n",
    ),
    ("b.rs", "mod inner;\npub struct Beta;\n"),
    (
        "b/inner.rs",
        "pub(crate) fn gamma() -> crate::Gamma {\n    crate::Gamma\n}\n",
    ),
    (
        "c.rs",
        "pub(crate) mod inner;\npub struct Gamma;\nuse crate::{d::{Delta, Delta2}, self as _};\n",
    ),
    ("c/inner.rs", "pub struct Deep;\n"),
    ("d.rs", "pub struct Delta;\npub struct Delta2;\n"),
];

#[test]
fn a_tree_without_a_circle_passes() {
    assert_eq!(circles_of(ACYCLIC), Vec::<String>::new());
}

#[test]
fn a_circle_fails_naming_its_modules_and_where_each_edge_is() {
    // d -> a closes a -> b -> c -> d -> a, in a grouped use on d's third line.
    let d = "pub struct Delta;\npub struct Delta2;\nuse crate::{self as _, a::Alpha};\n";
    assert_eq!(
        circles_of(&with_file(ACYCLIC, "d.rs", d)),
        [
            "a -> b -> c -> d -> a (src/a.rs:3 names crate::b; src/b/inner.rs:1 names crate::c; \
             src/c.rs:3 names crate::d; src/d.rs:3 names crate::a)"
        ]
    );
}

#[test]
fn a_path_to_an_item_the_root_reexports_counts_as_a_path_to_its_module() {
    // `crate::Renamed` is `c::inner::Deep` (lib.rs): d -> c, and c already names d.
    let d = "pub struct Delta;\npub struct Delta2;\nfn f(_: crate::Renamed) {}\n";
    assert_eq!(
        circles_of(&with_file(ACYCLIC, "d.rs", d)),
        ["c -> d -> c (src/c.rs:3 names crate::d; src/d.rs:3 names crate::c)"]
    );
}

/// A `d.rs` that names `crate::a` only where it does not count.
const D_QUIET: &str = r##"//! Not `crate::a` in a doc comment.
pub struct Delta;
pub struct Delta2;
// use crate::a::Alpha;
/* crate::a /* nested */ crate::a */
const S: &str = "crate::a::Alpha \" crate::a";
const R: &str = r#"crate::a "quoted" crate::a"#;
const C: char = '{';
const Q: char = '\'';
fn lifetime<'a>(s: &'a str) -> &'a str { s }
#[cfg(test)]
use crate::a::Alpha;
#[cfg(test)]
#[allow(unused)]
mod tests {
    const BRACE: char = '}';
    fn f() { let _ = "}"; { crate::a::Alpha; } }
}
pub(crate) fn after_the_tests() {}
"##;

#[test]
fn comments_strings_and_tests_are_not_read() {
    let mut files = with_file(ACYCLIC, "d.rs", D_QUIET);
    files.push(("d/tests.rs", "use crate::a::Alpha;\n"));
    files.push(("bin/tool.rs", "use crate::a::Alpha;\n"));
    assert_eq!(circles_of(&files), Vec::<String>::new());

    // The same path after the test module is read: the module ended where it ends.
    let d = format!("{D_QUIET}fn g(_: crate::a::Alpha) {{}}\n");
    assert_eq!(
        circles_of(&with_file(&files, "d.rs", &d)),
        [
            "a -> b -> c -> d -> a (src/a.rs:3 names crate::b; src/b/inner.rs:1 names crate::c; \
             src/c.rs:3 names crate::d; src/d.rs:20 names crate::a)"
        ]
    );
}

#[test]
fn separate_circles_are_reported_each_by_its_shortest_path() {
    let circles = circles_of(&[
        ("lib.rs", "mod a; mod b; mod c; mod x; mod y;\n"),
        // a -> b -> a is shorter than a -> c -> b -> a.
        ("a.rs", "use crate::c::C;\nuse crate::b::B;\n"),
        ("b.rs", "use crate::a::A;\n"),
        ("c.rs", "use crate::b::B;\n"),
        ("x.rs", "fn f() { crate::y::g() }\n"),
        ("y/mod.rs", "pub fn g() { $crate::x::f() }\n"),
    ]);
    assert_eq!(
        circles,
        [
            "a -> b -> a (src/a.rs:2 names crate::b; src/b.rs:1 names crate::a)",
            "x -> y -> x (src/x.rs:1 names crate::y; src/y/mod.rs:1 names crate::x)",
        ]
    );
}

#[test]
fn paths_through_super_that_reach_the_root_count() {
    let graph = graph_of(&[
        ("lib.rs", "mod p; mod q; mod s;\n"),
        // Two `super`s from p/inner.rs reach the root; one reaches p (its own `s`, not the
        // top-level `s`, which names p: counted, it would make a circle p -> s -> p).
        (
            "p/inner.rs",
            "use super::super::q::Q;\nuse super::s::Local;\n",
        ),
        ("p/mod.rs", "mod inner;\nmod s;\n"),
        ("p/s.rs", "pub struct Local;\n"),
        // One `super` from q.rs reaches the root.
        ("q.rs", "pub struct Q;\nfn f() { super::p::Sibling; }\n"),
        ("s.rs", "use crate::p::Thing;\n"),
    ]);
    assert_eq!(graph.targets("p").collect::<Vec<_>>(), ["q"]);
    assert_eq!(
        graph.circles(),
        ["p -> q -> p (src/p/inner.rs:1 names crate::q; src/q.rs:2 names crate::p)"]
    );
}

#[test]
fn the_real_source_trees_read() {
    // The proxy's tree has many modules and edges; reading it finds some and no circle.
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/only1mcp-proxy/src");
    let graph = ModuleGraph::new(&read_tree(&src).expect("read the proxy's tree"));
    assert!(graph.targets("session").any(|to| to == "gateway"));
    assert_eq!(graph.circles(), Vec::<String>::new());
}
