use super::*;
use crate::config::PrefixMode;

fn item(json: &str) -> RawObject {
    serde_json::from_str(json).unwrap()
}

fn tool(name: &str) -> RawObject {
    item(&format!(
        r#"{{"name":"{name}","description":"does {name}","inputSchema":{{"type":"object","$defs":{{"x":{{}}}}}}}}"#
    ))
}

fn listing(server: &str, prefix: Prefix, tools: &[&str]) -> ServerListing {
    ServerListing {
        server: server.into(),
        prefix,
        filter: ToolFilter::default(),
        lists: Lists {
            tools: tools.iter().map(|t| tool(t)).collect(),
            ..Lists::default()
        },
    }
}

/// Renders the tool list and conflicts as text for snapshots.
fn render(catalog: &Catalog) -> String {
    let mut out = String::new();
    for entry in catalog.entries(ListKind::Tools) {
        out.push_str(&format!(
            "{} -> {}/{}\n",
            entry.exposed, entry.route.server, entry.route.name
        ));
    }
    for conflict in catalog.conflicts() {
        out.push_str(&format!("conflict: {conflict}\n"));
    }
    out
}

#[track_caller]
fn check(listings: &[ServerListing], expect: &str) {
    let catalog = Catalog::build(listings, &Namespace::default());
    assert_eq!(render(&catalog), expect);
}

#[test]
fn always_prefix_namespaces_every_tool() {
    check(
        &[
            listing("echo", Prefix::Always, &["echo", "sleep"]),
            listing("arith", Prefix::Always, &["add", "sleep"]),
        ],
        "arith__add -> arith/add\narith__sleep -> arith/sleep\necho__echo -> echo/echo\necho__sleep -> echo/sleep\n",
    );
}

#[test]
fn on_conflict_keeps_unique_names_bare() {
    check(
        &[
            listing("echo", Prefix::OnConflict, &["echo", "sleep"]),
            listing("arith", Prefix::OnConflict, &["add", "sleep"]),
        ],
        "add -> arith/add\narith__sleep -> arith/sleep\necho -> echo/echo\necho__sleep -> echo/sleep\n",
    );
}

#[test]
fn bare_collisions_are_resolved_by_priority_and_reported() {
    check(
        &[
            listing("a", Prefix::Never, &["x"]),
            listing("b", Prefix::Never, &["x"]),
        ],
        "b__x -> b/x\nx -> a/x\nconflict: name \"x\" of server \"b\" collides with server \"a\"; exposed as \"b__x\"\n",
    );
}

#[test]
fn a_prefixed_name_taken_by_a_bare_one_gets_a_suffix() {
    // Server "b" (bare) exposes a tool literally named "a__x"; server "a"
    // wants "a__x" too, and loses by priority.
    check(
        &[
            listing("b", Prefix::Never, &["a__x"]),
            listing("a", Prefix::Always, &["x"]),
        ],
        "a__x -> b/a__x\na__x_2 -> a/x\nconflict: name \"a__x\" of server \"a\" collides with server \"b\"; exposed as \"a__x_2\"\n",
    );
}

#[test]
fn tool_filters_apply_to_backend_names() {
    let mut fs = listing(
        "fs",
        Prefix::Always,
        &["read_file", "read_dir", "write_file"],
    );
    fs.filter = ToolFilter::new(&crate::config::ToolFilterConfig {
        allow: vec!["read_*".to_owned(), "write_*".to_owned()],
        deny: vec!["*_dir".to_owned()],
    })
    .unwrap();
    check(
        &[fs],
        "fs__read_file -> fs/read_file\nfs__write_file -> fs/write_file\n",
    );
}

#[test]
fn exposed_items_keep_every_other_field_verbatim() {
    let catalog = Catalog::build(
        &[listing("s", Prefix::Always, &["t"])],
        &Namespace::default(),
    );
    insta::assert_snapshot!(
        catalog.entries(ListKind::Tools)[0].item.get(),
        @r#"{"name":"s__t","description":"does t","inputSchema":{"type":"object","$defs":{"x":{}}}}"#
    );
}

#[test]
fn resources_route_by_uri_and_templates_by_match() {
    let mut a = listing("a", Prefix::Always, &[]);
    a.lists.resources = vec![item(r#"{"uri":"file:///x","name":"x"}"#)];
    a.lists.resource_templates = vec![item(r#"{"uriTemplate":"echo://messages/{id}","name":"m"}"#)];
    let mut b = listing("b", Prefix::Always, &[]);
    b.lists.resources = vec![item(r#"{"uri":"file:///x","name":"x2"}"#)];
    b.lists.resource_templates = vec![item(r#"{"uriTemplate":"echo://{+rest}","name":"any"}"#)];
    let catalog = Catalog::build(&[a, b], &Namespace::default());
    assert_eq!(catalog.resource("file:///x").map(|s| &**s), Some("a"));
    assert_eq!(
        catalog.resource("echo://messages/42").map(|s| &**s),
        Some("a")
    );
    assert_eq!(
        catalog.resource("echo://other/path").map(|s| &**s),
        Some("b")
    );
    assert_eq!(catalog.resource("nope://x"), None);
    assert_eq!(catalog.entries(ListKind::Resources).len(), 1);
    assert_eq!(catalog.conflicts().len(), 1);
    assert_eq!(catalog.conflicts()[0].exposed_as, None);
}

#[test]
fn uri_templates_match_like_rfc6570() {
    assert!(template_matches("a://{x}/b", "a://1/b"));
    assert!(!template_matches("a://{x}/b", "a://1/2/b"));
    assert!(template_matches("a://{+x}/b", "a://1/2/b"));
    assert!(!template_matches("a://{x}", "a://"));
    assert!(template_matches("a://s{?q,r}", "a://s?q=1"));
    assert!(template_matches("a://s{?q,r}", "a://s"));
    assert!(template_matches("plain", "plain"));
}

#[test]
fn prefix_resolution_prefers_the_server_override() {
    assert_eq!(
        Prefix::resolve(PrefixMode::Always, Some(false)),
        Prefix::Never
    );
    assert_eq!(
        Prefix::resolve(PrefixMode::OnConflict, Some(true)),
        Prefix::Always
    );
    assert_eq!(
        Prefix::resolve(PrefixMode::OnConflict, None),
        Prefix::OnConflict
    );
}

#[test]
fn output_order_is_stable_across_input_order() {
    let one = Catalog::build(
        &[listing("s", Prefix::Always, &["b", "a", "c"])],
        &Namespace::default(),
    );
    let two = Catalog::build(
        &[listing("s", Prefix::Always, &["c", "b", "a"])],
        &Namespace::default(),
    );
    assert_eq!(render(&one), render(&two));
}

#[test]
fn paging_serves_every_item_exactly_once() {
    let names: Vec<String> = (0..23).map(|n| format!("t{n:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let catalog = Catalog::build(
        &[listing("s", Prefix::Always, &refs)],
        &Namespace::default(),
    );
    let entries = catalog.entries(ListKind::Tools);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let (items, next) = page(ListKind::Tools, entries, cursor.as_deref(), 5).unwrap();
        seen.extend(items.iter().map(|e| e.exposed.to_string()));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let all: Vec<String> = entries.iter().map(|e| e.exposed.to_string()).collect();
    assert_eq!(seen, all);
    assert_eq!(page(ListKind::Tools, entries, None, 0).unwrap().0.len(), 23);
}

#[test]
fn paging_resumes_after_a_removed_item_and_refuses_garbage() {
    let before = Catalog::build(
        &[listing("s", Prefix::Always, &["a", "b", "c", "d"])],
        &Namespace::default(),
    );
    let (first, next) = page(ListKind::Tools, before.entries(ListKind::Tools), None, 2).unwrap();
    assert_eq!(first.len(), 2);
    // "b" (the last served) disappears before the next page is asked for.
    let after = Catalog::build(
        &[listing("s", Prefix::Always, &["a", "c", "d"])],
        &Namespace::default(),
    );
    let (second, end) = page(
        ListKind::Tools,
        after.entries(ListKind::Tools),
        next.as_deref(),
        2,
    )
    .unwrap();
    let names: Vec<&str> = second.iter().map(|e| &*e.exposed).collect();
    assert_eq!((names, end), (vec!["s__c", "s__d"], None));
    assert!(
        page(
            ListKind::Tools,
            after.entries(ListKind::Tools),
            Some("nonsense"),
            2
        )
        .is_err()
    );
}

#[test]
fn merged_cache_hints_take_the_shortest_lifetime_and_any_private_scope() {
    let modern = |ttl_ms, private| Some(CacheHint { ttl_ms, private });
    assert_eq!(
        CacheHint::merge([modern(60_000, false), modern(5_000, false)]),
        CacheHint {
            ttl_ms: 5_000,
            private: false
        }
    );
    assert_eq!(
        CacheHint::merge([modern(60_000, true), modern(5_000, false)]),
        CacheHint {
            ttl_ms: 5_000,
            private: true
        }
    );
    // A legacy server gives no hint: its list can change at any time.
    assert_eq!(CacheHint::merge([modern(60_000, false), None]).ttl_ms, 0);
    let mut a = listing("a", Prefix::Always, &["x"]);
    a.lists.hints.insert(
        ListKind::Tools,
        CacheHint {
            ttl_ms: 30_000,
            private: true,
        },
    );
    let catalog = Catalog::build(&[a], &Namespace::default());
    assert_eq!(
        catalog.cache_hint(ListKind::Tools),
        CacheHint {
            ttl_ms: 30_000,
            private: true
        }
    );
}

#[test]
fn unportable_tool_names_get_aliases_that_route_back() {
    let long = "x".repeat(70);
    let listings = [listing("fs", Prefix::Always, &["read.file", &long, "ok"])];
    let catalog = Catalog::build(&listings, &Namespace::default());
    let names: Vec<&str> = catalog
        .entries(ListKind::Tools)
        .iter()
        .map(|e| &*e.exposed)
        .collect();
    for name in &names {
        assert!(is_portable_tool_name(name), "{name}");
    }
    let dotted = catalog
        .entries(ListKind::Tools)
        .iter()
        .find(|e| e.alias_of.as_deref() == Some("fs__read.file"))
        .expect("read.file is aliased");
    assert_eq!(&*catalog.tool(&dotted.exposed).unwrap().name, "read.file");
    assert!(
        dotted
            .item
            .get()
            .contains(&format!("\"name\":\"{}\"", dotted.exposed))
    );
    let long_entry = catalog
        .entries(ListKind::Tools)
        .iter()
        .find(|e| e.alias_of.is_some() && *e.route.name == *long)
        .expect("the long name is aliased");
    assert_eq!(long_entry.exposed.len(), 64);
    assert_eq!(catalog.tool("fs__ok").map(|r| &*r.name), Some("ok"));
    assert!(
        catalog
            .entries(ListKind::Tools)
            .iter()
            .filter(|e| e.alias_of.is_none())
            .count()
            == 1
    );
}
