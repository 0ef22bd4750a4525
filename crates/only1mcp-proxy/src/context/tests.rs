//! Views over hand-made catalogs and over the real corpus in `docs/corpus`.

use std::fmt::Write as _;

use only1mcp_core::catalog::{Lists, Prefix, ServerListing, ToolFilter};
use only1mcp_core::config::ToolsetRule;
use only1mcp_core::mcp::RawObject;
use only1mcp_core::naming::Namespace;

use super::*;

const CORPUS: &[&str] = &["everything", "filesystem", "memory", "git", "time", "fetch"];

fn corpus_listing(server: &str) -> ServerListing {
    let path = format!(
        "{}/../../docs/corpus/{server}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    #[derive(serde::Deserialize)]
    struct File {
        tools: Vec<serde_json::Value>,
    }
    let file: File = serde_json::from_str(&text).unwrap();
    // The files are pretty-printed for review; servers send compact JSON,
    // and that is what a client would receive in `full` mode.
    let tools: Vec<RawObject> = file
        .tools
        .iter()
        .map(|tool| serde_json::from_str(&tool.to_string()).unwrap())
        .collect();
    listing(server, tools)
}

/// A server's listing of `tools`, names always prefixed.
fn listing(server: &str, tools: Vec<RawObject>) -> ServerListing {
    ServerListing {
        server: server.into(),
        prefix: Prefix::Always,
        filter: ToolFilter::default(),
        lists: Lists {
            tools,
            ..Lists::default()
        },
    }
}

fn catalog(listings: &[ServerListing]) -> Arc<Catalog> {
    Arc::new(Catalog::build(listings, &Namespace::default()))
}

fn config(yaml_context: serde_json::Value) -> Config {
    Config {
        context: serde_json::from_value(yaml_context).unwrap(),
        ..Config::default()
    }
}

fn names(view: &View) -> Vec<&str> {
    view.listed().iter().map(|e| &*e.exposed).collect()
}

fn small() -> Arc<Catalog> {
    let tool = |name: &str, description: &str| -> RawObject {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "description": description,
            "inputSchema": {"type": "object", "properties": {"x": {"type": "string", "title": "X", "description": "The x. It matters."}}}
        }))
        .unwrap()
    };
    catalog(&[
        listing(
            "fs",
            vec![
                tool("read_file", "Read a file from disk. Returns its text."),
                tool("write_file", "Write a file to disk. Creates it if needed."),
            ],
        ),
        listing(
            "clock",
            vec![tool("now", "The current time in a timezone.")],
        ),
    ])
}

#[test]
fn full_is_the_catalog_and_compact_keeps_names_and_order() {
    let catalog = small();
    let views = Views::build(
        catalog.clone(),
        &config(serde_json::json!({"profiles": {"lean": {"mode": "compact"}}})),
        None,
    );
    let full = views.get("default").unwrap();
    assert_eq!(full.mode, ContextMode::Full);
    assert!(!full.has_meta());
    assert_eq!(
        listing_json(full.listed()),
        listing_json(catalog.entries(ListKind::Tools))
    );
    let lean = views.get("lean").unwrap();
    assert_eq!(names(lean), names(full));
    assert!(listing_json(lean.listed()).len() < listing_json(full.listed()).len());
    assert!(!listing_json(lean.listed()).contains("It matters"));
    // An unknown profile falls back to the default one.
    assert_eq!(views.get("gone").unwrap().profile.as_ref(), "default");
    assert!(!views.has_profile("gone"));
}

#[test]
fn discover_lists_meta_tools_and_pins_and_reaches_everything() {
    let catalog = small();
    let views = Views::build(
        catalog.clone(),
        &config(serde_json::json!({"mode": "discover", "pinned": ["clock__now"]})),
        None,
    );
    let view = views.get("default").unwrap();
    assert_eq!(
        names(view),
        ["call_tool", "clock__now", "describe_tool", "search_tools"]
    );
    for pos in 0..catalog.entries(ListKind::Tools).len() {
        assert!(view.reachable(pos));
    }
    let hits = view.search("save text into a file", 3);
    let top = &catalog.entries(ListKind::Tools)[hits[0]].exposed;
    assert_eq!(&**top, "fs__write_file");
}

#[test]
fn most_called_tools_are_pinned_on_the_next_build() {
    let catalog = small();
    let cfg = config(serde_json::json!({"mode": "discover", "pin_most_used": 1}));
    let first = Views::build(catalog.clone(), &cfg, None);
    assert_eq!(first.get("default").unwrap().listed().len(), 3);
    let read = catalog.tool_position("fs__read_file").unwrap();
    let write = catalog.tool_position("fs__write_file").unwrap();
    first.record_call(read);
    first.record_call(write);
    first.record_call(write);
    let second = Views::build(catalog, &cfg, Some(&first));
    assert!(names(second.get("default").unwrap()).contains(&"fs__write_file"));
    assert!(!names(second.get("default").unwrap()).contains(&"fs__read_file"));
    assert!(second.differ(&first));
}

#[test]
fn toolsets_narrow_the_listing_and_discover_hidden_decides_reach() {
    let catalog = small();
    let mut cfg = config(serde_json::json!({
        "profiles": {
            "open": {"toolsets": ["files"]},
            "closed": {"toolsets": ["files"], "discover_hidden": false}
        }
    }));
    cfg.context.toolsets.insert(
        "files".to_owned(),
        vec![ToolsetRule {
            server: "fs".to_owned(),
            tools: vec!["read_*".to_owned()],
        }],
    );
    let views = Views::build(catalog.clone(), &cfg, None);
    let now = catalog.tool_position("clock__now").unwrap();
    let open = views.get("open").unwrap();
    assert_eq!(
        names(open),
        [
            "call_tool",
            "describe_tool",
            "fs__read_file",
            "search_tools"
        ]
    );
    assert!(open.reachable(now));
    let closed = views.get("closed").unwrap();
    assert_eq!(names(closed), ["fs__read_file"]);
    assert!(!closed.reachable(now));
    assert!(closed.search("time", 3).is_empty());
}

#[test]
fn auto_is_full_under_the_budget_and_discover_above_it() {
    let catalog = small();
    let full_tokens = tokens::count(&listing_json(catalog.entries(ListKind::Tools)));
    let under = Views::build(
        catalog.clone(),
        &config(serde_json::json!({"mode": "auto", "budget_tokens": full_tokens})),
        None,
    );
    assert_eq!(under.get("default").unwrap().mode, ContextMode::Full);
    let over = Views::build(
        catalog,
        &config(serde_json::json!({"mode": "auto", "budget_tokens": full_tokens - 1})),
        None,
    );
    let view = over.get("default").unwrap();
    assert_eq!(view.configured, ContextMode::Auto);
    assert_eq!(view.mode, ContextMode::Discover);
}

#[test]
fn reports_count_the_listing_as_served_and_the_savings() {
    let catalog = small();
    let views = Views::build(
        catalog.clone(),
        &config(serde_json::json!({"mode": "compact"})),
        None,
    );
    let view = views.get("default").unwrap();
    view.record_served();
    view.record_served();
    let report = &views.report()[0];
    assert_eq!(
        report.tokens_listed,
        tokens::count(&listing_json(view.listed()))
    );
    assert_eq!(
        report.tokens_full,
        tokens::count(&listing_json(catalog.entries(ListKind::Tools)))
    );
    assert_eq!(report.lists_served, 2);
    assert_eq!(
        report.tokens_saved,
        2 * (report.tokens_full - report.tokens_listed) as u64
    );
}

/// The items of a listing cut to what hosts hand the model (`name`,
/// `description`, `inputSchema`; annotations, titles and output schemas
/// stay with the host), as one JSON array.
fn model_visible(entries: &[Entry]) -> String {
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let tool: Value = serde_json::from_str(e.item.get()).unwrap();
            let kept: serde_json::Map<String, Value> = tool
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| ["name", "description", "inputSchema"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(kept)
        })
        .collect();
    serde_json::to_string(&items).unwrap()
}

fn percent_saved(full: usize, now: usize) -> f64 {
    100.0 * (full - now) as f64 / full as f64
}

/// Issue 7's measures on the real corpus, with the tokenizer: the table
/// docs/context.md reports. Goals: compact at least 60 % fewer tokens than
/// full, discover at least 90 %.
#[test]
#[allow(clippy::print_stderr, reason = "the table is the measurement")]
fn corpus_token_savings() {
    let listings: Vec<ServerListing> = CORPUS.iter().map(|s| corpus_listing(s)).collect();
    let mut table = String::from(
        "| server | tools | full | compact | saved | model-visible full | compact | saved |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let cfg = config(serde_json::json!({"mode": "compact"}));
    let row = |table: &mut String,
               name: &str,
               catalog: &Arc<Catalog>,
               views: &Views,
               profile: &str| {
        let full = views.baseline_tokens();
        let compact = views.get(profile).unwrap().tokens();
        let model_full = tokens::count(&model_visible(catalog.entries(ListKind::Tools)));
        let model_compact = tokens::count(&model_visible(views.get(profile).unwrap().listed()));
        let _ = writeln!(
            table,
            "| {name} | {} | {full} | {compact} | {:.1} % | {model_full} | {model_compact} | {:.1} % |",
            catalog.entries(ListKind::Tools).len(),
            percent_saved(full, compact),
            percent_saved(model_full, model_compact),
        );
        (full, compact)
    };
    for listing in &listings {
        let catalog = catalog(std::slice::from_ref(listing));
        let views = Views::build(catalog.clone(), &cfg, None);
        row(&mut table, &listing.server, &catalog, &views, "default");
    }
    let all = catalog(&listings);
    let views = Views::build(
        all.clone(),
        &config(serde_json::json!({"profiles": {
            "compact": {"mode": "compact"},
            "discover": {"mode": "discover"}
        }})),
        None,
    );
    let (full, compact) = row(&mut table, "**all**", &all, &views, "compact");
    let discover = views.get("discover").unwrap().tokens();
    let bare = Views::build(
        all,
        &config(serde_json::json!({"mode": "compact", "param_description_max": 0})),
        None,
    );
    let bare_tokens = bare.get("default").unwrap().tokens();
    let _ = writeln!(
        table,
        "\ndiscover: {discover} tokens ({:.1} % fewer than full); compact without parameter descriptions: {bare_tokens} ({:.1} %)",
        percent_saved(full, discover),
        percent_saved(full, bare_tokens),
    );
    eprintln!("{table}");
    // Met: the initial listing of discover.
    assert!(
        discover * 10 <= full,
        "discover must be at least 90% smaller: {discover} vs {full}\n{table}"
    );
    // The goal of 60 % is not met by the default compact (55.4 % when this
    // was written; docs/context.md says why): this is a regression floor.
    assert!(
        percent_saved(full, compact) >= 55.0,
        "compact regressed: {compact} vs {full}\n{table}"
    );
    assert!(percent_saved(full, bare_tokens) >= 60.0, "{table}");
}
