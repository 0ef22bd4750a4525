use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use quickcheck_macros::quickcheck;
use serde_json::json;

use super::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/corpus/");
const SERVERS: &[&str] = &["everything", "filesystem", "memory", "git", "time", "fetch"];
const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

/// The tools of one captured server (`docs/corpus/<id>.json`).
fn corpus(id: &str) -> Vec<Value> {
    let path = format!("{CORPUS}{id}.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    let file: Value = serde_json::from_str(&text).unwrap();
    file["tools"].as_array().unwrap().clone()
}

fn compact_all(tools: &[Value], opts: &CompactOptions) -> Vec<Value> {
    tools.iter().map(|tool| compact_tool(tool, opts)).collect()
}

fn compact(schema: &Value) -> Value {
    compact_schema(schema, &CompactOptions::default())
}

// --- descriptions ---------------------------------------------------------

#[track_caller]
fn check_shorten(text: &str, max: usize, expect: &str) {
    let short = shorten(text, max);
    assert_eq!(short, expect);
    assert!(
        short.chars().count() <= max,
        "{short:?} is over {max} characters"
    );
}

#[test]
fn description_is_cut_to_its_first_sentence() {
    check_shorten(
        "Read the complete contents of a file as text. DEPRECATED: Use read_text_file instead.",
        120,
        "Read the complete contents of a file as text.",
    );
    check_shorten("Is it there? Then read it.", 120, "Is it there?");
    check_shorten("Stop! Then go.", 120, "Stop!");
    check_shorten(
        "Shows the working tree status",
        120,
        "Shows the working tree status",
    );
}

#[test]
fn abbreviations_do_not_end_a_sentence() {
    check_shorten(
        "Match a glob, e.g. *.rs or i.e. anything. Then more.",
        120,
        "Match a glob, e.g. *.rs or i.e. anything.",
    );
    check_shorten("Compare a vs. b. More.", 120, "Compare a vs. b.");
    check_shorten(
        "Lists files, dirs, etc. in one call. More.",
        120,
        "Lists files, dirs, etc. in one call.",
    );
    check_shorten(
        "A zone (e.g. UTC) name. More.",
        120,
        "A zone (e.g. UTC) name.",
    );
    check_shorten(
        "Made in the U.S. by hand. More.",
        120,
        "Made in the U.S. by hand.",
    );
}

#[test]
fn decimals_versions_and_extensions_do_not_end_a_sentence() {
    check_shorten(
        "Costs 0.5 credits with v1.2.3 on notes.txt and .env files. Then more.",
        120,
        "Costs 0.5 credits with v1.2.3 on notes.txt and .env files.",
    );
    // A real sentence end right after an extension still ends the sentence.
    check_shorten("Reads notes.txt. Then more.", 120, "Reads notes.txt.");
}

#[test]
fn multiline_text_ends_at_a_blank_line_and_collapses_whitespace() {
    check_shorten(
        "Fetches a URL from the internet\n\nAlthough originally you did not have internet access.",
        120,
        "Fetches a URL from the internet",
    );
    check_shorten("Heading\r\n  \r\nBody.", 120, "Heading");
    check_shorten(
        "  Read\ta   file\nfrom  disk. Rest.",
        120,
        "Read a file from disk.",
    );
    check_shorten("Ends with a break.\nNext line.", 120, "Ends with a break.");
}

#[test]
fn unicode_is_cut_on_characters_and_cjk_full_stops() {
    check_shorten(
        "ファイルを読みます。次に書きます。",
        120,
        "ファイルを読みます。",
    );
    check_shorten(
        "Lit « été » d'un fichier. Puis.",
        120,
        "Lit « été » d'un fichier.",
    );
    // 11 characters, 21 bytes: the cap counts characters.
    check_shorten("ééééé ééééé", 11, "ééééé ééééé");
    check_shorten("ééééé ééééé", 10, "ééééé…");
    check_shorten("éééééééééé", 5, "éééé…");
}

#[test]
fn long_sentences_are_cut_at_a_word_boundary() {
    check_shorten("one two three four", 9, "one two…");
    check_shorten("one two three four", 8, "one two…");
    check_shorten("one two three four", 7, "one…");
    check_shorten("one, two three", 6, "one…");
    check_shorten("abcdefghij", 4, "abc…");
    check_shorten("abc", 1, "…");
    check_shorten("abc", 0, "");
}

#[test]
fn unchanged_text_is_borrowed() {
    assert!(matches!(shorten("Get the time.", 120), Cow::Borrowed(_)));
    assert!(matches!(
        shorten("Get the time. More.", 120),
        Cow::Borrowed(_)
    ));
    assert!(matches!(shorten("Get  the time.", 120), Cow::Owned(_)));
}

#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn shorten_is_idempotent_and_bounded(text: String, max: u8) -> bool {
    let max = usize::from(max);
    let once = shorten(&text, max).into_owned();
    let twice = shorten(&once, max);
    once.chars().count() <= max && twice == once && !once.contains("  ")
}

#[quickcheck]
#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn shorten_is_idempotent_on_prose(words: Vec<u8>, max: u8) -> bool {
    // Arbitrary strings rarely contain sentences; build some from a small
    // vocabulary of words, abbreviations and separators.
    const VOCAB: &[&str] = &[
        "read",
        "a",
        "file",
        "e.g.",
        "i.e.",
        "etc.",
        "vs.",
        "notes.txt",
        "1.5",
        "end.",
        "Stop!",
        "why?",
        "\n",
        "\n\n",
        "  ",
        "été",
        "。",
        "x,",
        "(see",
        "it)",
    ];
    let text = words
        .iter()
        .map(|w| VOCAB[usize::from(*w) % VOCAB.len()])
        .collect::<Vec<_>>()
        .join(" ");
    let max = usize::from(max % 40);
    let once = shorten(&text, max).into_owned();
    once.chars().count() <= max && shorten(&once, max) == once
}

// --- tools ----------------------------------------------------------------

#[test]
fn title_repeating_the_name_is_dropped_and_others_kept() {
    let opts = CompactOptions::default();
    let title = |name: &str, title: &str| {
        compact_tool(&json!({ "name": name, "title": title }), &opts)
            .get("title")
            .cloned()
    };
    assert_eq!(title("read_text_file", "Read Text File"), None);
    assert_eq!(title("echo", "Echo Tool"), None);
    assert_eq!(
        title("gzip-file-as-resource", "GZip File as Resource Tool"),
        None
    );
    assert_eq!(
        title("read_file", "Read File (Deprecated)"),
        Some(json!("Read File (Deprecated)"))
    );
    assert_eq!(
        title("get-env", "Print Environment Tool"),
        Some(json!("Print Environment Tool"))
    );
}

#[test]
fn tool_keeps_unknown_fields_and_key_order_and_drops_default_execution() {
    let tool = json!({
        "annotations": { "readOnlyHint": true, "title": "Kept" },
        "description": "Does it.  Really.",
        "_meta": { "x": { "title": "also kept" } },
        "name": "do_it",
        "icons": [{ "src": "data:," }],
        "inputSchema": { "type": "object", "title": "Args", "properties": {} },
        "execution": { "taskSupport": "forbidden" }
    });
    let compacted = compact_tool(&tool, &CompactOptions::default());
    assert_eq!(
        serde_json::to_string(&compacted).unwrap(),
        r#"{"annotations":{"readOnlyHint":true,"title":"Kept"},"description":"Does it.","_meta":{"x":{"title":"also kept"}},"name":"do_it","icons":[{"src":"data:,"}],"inputSchema":{"type":"object","properties":{}}}"#
    );
}

#[test]
fn output_schema_is_dropped_unless_kept() {
    let tool = json!({
        "name": "t",
        "inputSchema": { "type": "object" },
        "outputSchema": { "type": "object", "title": "Out", "properties": { "a": { "type": "string", "title": "A" } } }
    });
    let dropped = compact_tool(&tool, &CompactOptions::default());
    assert_eq!(dropped.get("outputSchema"), None);
    let opts = CompactOptions {
        keep_output_schema: true,
        ..CompactOptions::default()
    };
    assert_eq!(
        compact_tool(&tool, &opts)["outputSchema"],
        json!({ "type": "object", "properties": { "a": { "type": "string" } } })
    );
}

#[test]
fn zero_caps_drop_descriptions() {
    let opts = CompactOptions {
        description_max: 0,
        param_description_max: 0,
        keep_output_schema: false,
    };
    let tool = json!({
        "name": "t",
        "description": "Does t.",
        "inputSchema": { "type": "object", "description": "Args.", "properties": { "a": { "type": "string", "description": "The a." } } }
    });
    assert_eq!(
        compact_tool(&tool, &opts),
        json!({ "name": "t", "inputSchema": { "type": "object", "properties": { "a": { "type": "string" } } } })
    );
}

// --- schemas --------------------------------------------------------------

#[test]
fn annotations_go_and_validation_keywords_stay() {
    let schema = json!({
        "type": "object",
        "title": "Args",
        "$comment": "internal",
        "properties": {
            "path": { "type": "string", "title": "Path", "minLength": 1, "format": "uri", "default": "/", "examples": ["/tmp"] },
            "n": { "type": "integer", "minimum": 1, "maximum": 10, "deprecated": true, "readOnly": true },
            "tags": { "type": "array", "items": { "type": "string", "title": "Tag", "pattern": "^[a-z]+$" }, "uniqueItems": true }
        },
        "required": [],
        "additionalProperties": false
    });
    assert_eq!(
        compact(&schema),
        json!({
            "type": "object",
            "properties": {
                "path": { "type": "string", "minLength": 1, "format": "uri" },
                "n": { "type": "integer", "minimum": 1, "maximum": 10, "deprecated": true, "readOnly": true },
                "tags": { "type": "array", "items": { "type": "string", "pattern": "^[a-z]+$" }, "uniqueItems": true }
            },
            "additionalProperties": false
        })
    );
}

#[test]
fn properties_named_like_keywords_are_kept() {
    let schema = json!({
        "type": "object",
        "properties": {
            "title": { "type": "string", "title": "Title" },
            "description": { "type": "string", "description": "What the item is for.  Long." },
            "default": { "type": "integer" },
            "examples": { "type": "array" },
            "$comment": { "type": "string" }
        },
        "required": ["title", "description"]
    });
    assert_eq!(
        compact(&schema),
        json!({
            "type": "object",
            "properties": {
                "title": { "type": "string" },
                "description": { "type": "string", "description": "What the item is for." },
                "default": { "type": "integer" },
                "examples": { "type": "array" },
                "$comment": { "type": "string" }
            },
            "required": ["title", "description"]
        })
    );
}

#[test]
fn enum_const_and_unknown_keyword_values_are_never_walked() {
    let schema = json!({
        "type": "object",
        "properties": {
            "mode": { "enum": [{ "title": "a", "description": "x.  y." }, "b"] },
            "fixed": { "const": { "title": "t", "default": 1, "required": [] } },
            "ext": { "type": "string", "x-ui": { "title": "Shown", "default": "d" } }
        }
    });
    assert_eq!(compact(&schema), schema);
}

#[test]
fn empty_root_properties_are_kept() {
    let schema = json!({ "type": "object", "title": "noArgs", "properties": {} });
    assert_eq!(
        compact(&schema),
        json!({ "type": "object", "properties": {} })
    );
}

#[test]
fn dialect_is_dropped_when_draft_07_and_2020_12_agree() {
    let schema = json!({
        "$schema": DRAFT_07,
        "type": "object",
        "properties": { "a": { "type": "array", "items": { "type": "string" }, "minItems": 1 } },
        "required": ["a"]
    });
    assert_eq!(
        compact(&schema),
        json!({
            "type": "object",
            "properties": { "a": { "type": "array", "items": { "type": "string" }, "minItems": 1 } },
            "required": ["a"]
        })
    );
    let by_ref = json!({
        "$schema": DRAFT_07,
        "$ref": "#/definitions/Args",
        "definitions": { "Args": { "type": "object", "title": "Args" } }
    });
    assert_eq!(
        compact(&by_ref),
        json!({ "$ref": "#/definitions/Args", "definitions": { "Args": { "type": "object" } } })
    );
}

#[test]
fn dialect_is_kept_when_its_meaning_differs() {
    let cases = [
        // Array-form `items`: a tuple in draft-07, invalid in 2020-12.
        json!({ "$schema": DRAFT_07, "type": "array", "items": [{ "type": "string" }], "additionalItems": false }),
        // Draft-07 ignores a `$ref`'s siblings.
        json!({ "$schema": DRAFT_07, "definitions": { "n": { "type": "integer" } }, "properties": { "a": { "$ref": "#/definitions/n", "maximum": 5 } } }),
        json!({ "$schema": DRAFT_07, "dependencies": { "a": ["b"] } }),
        // Draft-07 validators assert `format`; 2020-12 ones do not.
        json!({ "$schema": DRAFT_07, "properties": { "t": { "type": "string", "format": "date-time" } } }),
        // Unknown to draft-07, applied by 2020-12.
        json!({ "$schema": DRAFT_07, "properties": { "a": {} }, "unevaluatedProperties": false }),
        json!({ "$schema": DRAFT_07, "$id": "https://example.com/s", "type": "object" }),
        json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{ "type": "string" }] }),
        json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "$dynamicRef": "#meta" }),
        // Draft-04's boolean `exclusiveMinimum`.
        json!({ "$schema": "http://json-schema.org/draft-04/schema#", "minimum": 0, "exclusiveMinimum": true }),
        json!({ "$schema": "https://example.com/my-dialect", "type": "object" }),
        json!({ "$schema": DRAFT_07, "properties": { "a": { "$schema": DRAFT_07 } } }),
    ];
    for schema in cases {
        assert_eq!(compact(&schema)["$schema"], schema["$schema"], "{schema}");
    }
}

#[test]
fn locations_a_ref_points_into_are_kept() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": { "$ref": "#/properties/b/default" },
            "b": { "type": "object", "title": "B", "default": { "type": "string", "title": "T" } },
            "c": { "$ref": "#/properties/d/description" },
            "d": { "description": "Kept.  As is." }
        }
    });
    assert_eq!(
        compact(&schema),
        json!({
            "type": "object",
            "properties": {
                "a": { "$ref": "#/properties/b/default" },
                "b": { "type": "object", "default": { "type": "string", "title": "T" } },
                "c": { "$ref": "#/properties/d/description" },
                "d": { "description": "Kept.  As is." }
            }
        })
    );
}

#[test]
fn every_subschema_position_is_compacted() {
    let noisy = json!({ "type": "string", "title": "T" });
    let clean = json!({ "type": "string" });
    for key in SCHEMA_ONE {
        let schema = json!({ (*key): noisy });
        assert_eq!(compact(&schema), json!({ (*key): clean }), "{key}");
    }
    for key in SCHEMA_LISTS {
        assert_eq!(
            compact(&json!({ (*key): [noisy, true] })),
            json!({ (*key): [clean, true] }),
            "{key}"
        );
    }
    for key in SCHEMA_MAPS.iter().chain(&["dependencies"]) {
        assert_eq!(
            compact(&json!({ (*key): { "x": noisy, "y": false } })),
            json!({ (*key): { "x": clean, "y": false } }),
            "{key}"
        );
    }
    assert_eq!(
        compact(&json!({ "dependencies": { "a": ["title"] } })),
        json!({ "dependencies": { "a": ["title"] } })
    );
}

fn adversarial() -> Vec<Value> {
    vec![
        json!({
            "type": "object",
            "title": "Args",
            "properties": {
                "title": { "type": "string", "title": "Title", "description": "The title.", "minLength": 2 },
                "description": { "type": "string", "maxLength": 5, "default": "toolong" },
                "default": { "type": "integer", "default": 3, "examples": [1, 2] }
            },
            "required": ["title"],
            "additionalProperties": false
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "object",
            "definitions": { "n": { "type": "integer", "minimum": 0, "title": "N" } },
            "properties": { "a": { "$ref": "#/definitions/n", "maximum": 5, "description": "At most 5, says the sibling." } },
            "required": ["a"]
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "array",
            "title": "Pair",
            "items": [{ "type": "string", "title": "First" }, { "type": "integer" }],
            "additionalItems": false
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "object",
            "properties": { "pair": { "type": "array", "items": [{ "type": "string" }, { "type": "integer" }] } }
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "object",
            "properties": { "when": { "type": "string", "format": "date-time", "title": "When" } },
            "required": ["when"]
        }),
        json!({
            "$schema": DRAFT_07,
            "$ref": "#/definitions/Args",
            "definitions": {
                "Args": {
                    "type": "object",
                    "properties": {
                        "n": { "type": "integer", "minimum": 1, "maximum": 10, "default": 5 },
                        "id": { "type": "string", "pattern": "^[a-z]{2,4}$", "examples": ["ab"] },
                        "mode": { "enum": ["fast", "slow", { "title": "x" }], "title": "Mode" }
                    },
                    "required": ["n"],
                    "additionalProperties": false
                }
            }
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "object",
            "properties": { "a": { "type": "string" }, "b": { "type": "integer" } },
            "dependencies": { "a": ["b"], "b": { "properties": { "a": { "const": "x" } } } }
        }),
        json!({
            "$schema": DRAFT_07,
            "type": "object",
            "properties": {
                "kind": { "type": "string", "enum": ["a", "b"] },
                "list": { "type": "array", "items": { "type": "number" }, "contains": { "minimum": 5 }, "maxItems": 3 }
            },
            "if": { "properties": { "kind": { "const": "a" } } },
            "then": { "required": ["list"] },
            "else": { "not": { "required": ["list"] } }
        }),
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": { "p": { "type": "object", "properties": { "x": { "type": "integer", "title": "X" } } } },
            "$ref": "#/$defs/p",
            "properties": { "y": { "type": "string", "title": "Y" }, "t": { "type": "array", "prefixItems": [{ "type": "boolean" }], "items": false } },
            "unevaluatedProperties": false
        }),
        json!({
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": { "n": { "type": "number", "minimum": 0, "exclusiveMinimum": true, "title": "N" } }
        }),
        json!({
            "type": "object",
            "properties": {
                "a": { "$ref": "#/properties/b/default" },
                "b": { "type": "object", "default": { "type": "string", "minLength": 2 } },
                "c": { "anyOf": [{ "type": "null" }, { "type": "number", "exclusiveMaximum": 1.5 }], "default": null }
            }
        }),
    ]
}

#[test]
fn annotations_keep_only_what_differs_from_the_spec_defaults() {
    let check = |hints: Value, expect: Value| {
        let tool = json!({"name": "t", "inputSchema": {"type": "object"}, "annotations": hints});
        assert_eq!(
            compact_tool(&tool, &CompactOptions::default())["annotations"],
            expect
        );
    };
    // Read-only: destructive/idempotent mean nothing; openWorld true is the default.
    check(
        json!({"readOnlyHint": true, "destructiveHint": false, "idempotentHint": true, "openWorldHint": true, "title": "T"}),
        json!({"readOnlyHint": true, "title": "T"}),
    );
    // Not read-only: every hint that differs from its default stays.
    check(
        json!({"readOnlyHint": false, "destructiveHint": false, "idempotentHint": true, "openWorldHint": false}),
        json!({"destructiveHint": false, "idempotentHint": true, "openWorldHint": false}),
    );
    check(
        json!({"readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": true}),
        json!({}),
    );
    // Non-boolean values are not defaults.
    check(
        json!({"readOnlyHint": "yes"}),
        json!({"readOnlyHint": "yes"}),
    );
    // execution other than the default stays.
    let tool = json!({"name": "t", "inputSchema": {"type": "object"}, "execution": {"taskSupport": "required"}});
    assert_eq!(
        compact_tool(&tool, &CompactOptions::default())["execution"],
        json!({"taskSupport": "required"})
    );
}

#[test]
fn descriptions_that_only_repeat_the_names_go() {
    let tool = json!({"name": "fetch", "inputSchema": {"type": "object", "properties": {
        "url": {"type": "string", "description": "URL to fetch"},
        "timeout": {"type": "number", "description": "Timeout in seconds"},
        "entities": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string", "description": "The name of the entity"}
        }}}
    }}});
    let out = compact_tool(&tool, &CompactOptions::default());
    let props = &out["inputSchema"]["properties"];
    assert!(props["url"].get("description").is_none(), "{out}");
    assert_eq!(props["timeout"]["description"], "Timeout in seconds");
    assert!(
        props["entities"]["items"]["properties"]["name"]
            .get("description")
            .is_none()
    );
}

#[test]
fn nullable_any_of_becomes_a_type_union() {
    let schema = json!({"type": "object", "properties": {
        "a": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "Since when, as a date."},
        "b": {"anyOf": [{"type": "string"}, {"minLength": 1}]},
        "c": {"type": "string", "anyOf": [{"type": "string"}]}
    }});
    let out = compact_schema(&schema, &CompactOptions::default());
    assert_eq!(out["properties"]["a"]["type"], json!(["string", "null"]));
    assert!(out["properties"]["a"].get("anyOf").is_none());
    assert_eq!(out["properties"]["b"], schema["properties"]["b"]);
    assert_eq!(out["properties"]["c"], schema["properties"]["c"]);
}

#[test]
fn compaction_is_idempotent() {
    let opts_sets = [
        CompactOptions::default(),
        CompactOptions {
            description_max: 10,
            param_description_max: 0,
            keep_output_schema: true,
        },
    ];
    for opts in &opts_sets {
        let mut tools: Vec<Value> = SERVERS.iter().flat_map(|id| corpus(id)).collect();
        tools.extend(
            adversarial()
                .into_iter()
                .map(|schema| json!({ "name": "adv", "inputSchema": schema })),
        );
        for tool in &tools {
            let once = compact_tool(tool, opts);
            assert_eq!(compact_tool(&once, opts), once, "{}", tool["name"]);
        }
    }
}

// --- the corpus -----------------------------------------------------------

fn compact_catalog(id: &str) -> Vec<Value> {
    compact_all(&corpus(id), &CompactOptions::default())
}

#[test]
fn compact_catalog_everything() {
    insta::assert_json_snapshot!(compact_catalog("everything"));
}

#[test]
fn compact_catalog_filesystem() {
    insta::assert_json_snapshot!(compact_catalog("filesystem"));
}

#[test]
fn compact_catalog_memory() {
    insta::assert_json_snapshot!(compact_catalog("memory"));
}

#[test]
fn compact_catalog_git() {
    insta::assert_json_snapshot!(compact_catalog("git"));
}

#[test]
fn compact_catalog_time() {
    insta::assert_json_snapshot!(compact_catalog("time"));
}

#[test]
fn compact_catalog_fetch() {
    insta::assert_json_snapshot!(compact_catalog("fetch"));
}

#[test]
#[allow(clippy::print_stderr, reason = "the sizes are the report")]
fn compact_catalogs_are_smaller_than_full_ones() {
    let size = |tools: &[Value]| serde_json::to_string(tools).unwrap().len();
    let kept = CompactOptions {
        keep_output_schema: true,
        ..CompactOptions::default()
    };
    let (mut total_full, mut total_compact) = (0, 0);
    for id in SERVERS {
        let tools = corpus(id);
        let full = size(&tools);
        let compact = size(&compact_all(&tools, &CompactOptions::default()));
        let with_output = size(&compact_all(&tools, &kept));
        eprintln!(
            "{id:<11} full {full:>6} B  compact {compact:>6} B ({:>3}% smaller)  compact+outputSchema {with_output:>6} B",
            100 - compact * 100 / full
        );
        assert!(compact < full, "{id}: {compact} >= {full}");
        assert!(with_output < full, "{id}: {with_output} >= {full}");
        total_full += full;
        total_compact += compact;
    }
    eprintln!(
        "all         full {total_full:>6} B  compact {total_compact:>6} B ({:>3}% smaller)",
        100 - total_compact * 100 / total_full
    );
}

// --- equivalence: the compacted schema accepts exactly the same instances --

/// A schema under test, with validators for the original and the compacted
/// form, and how many valid and invalid instances it has seen.
struct SchemaCase {
    label: String,
    original: Value,
    validator: jsonschema::Validator,
    /// The compacted schema under the original's draft, under its own
    /// (`$schema`, else 2020-12), and under draft-07 when `$schema` went.
    compacted: Vec<(&'static str, jsonschema::Validator)>,
    n_valid: AtomicUsize,
    n_invalid: AtomicUsize,
}

fn draft_of(schema: &Value) -> jsonschema::Draft {
    jsonschema::Draft::Draft202012.detect(schema)
}

fn validator(schema: &Value, draft: jsonschema::Draft) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(draft)
        .build(schema)
        .unwrap_or_else(|err| panic!("{schema}: {err}"))
}

static SCHEMAS: LazyLock<Vec<SchemaCase>> = LazyLock::new(|| {
    let opts = CompactOptions::default();
    let mut schemas = Vec::new();
    for id in SERVERS {
        for tool in corpus(id) {
            for key in ["inputSchema", "outputSchema"] {
                if let Some(schema) = tool.get(key) {
                    schemas.push((format!("{id}/{}/{key}", tool["name"]), schema.clone()));
                }
            }
        }
    }
    for (idx, schema) in adversarial().into_iter().enumerate() {
        schemas.push((format!("adversarial/{idx}"), schema));
    }
    schemas
        .into_iter()
        .map(|(label, original)| {
            let draft = draft_of(&original);
            let compacted = compact_schema(&original, &opts);
            let mut validators = vec![
                ("original's draft", validator(&compacted, draft)),
                ("own draft", validator(&compacted, draft_of(&compacted))),
            ];
            if original.get("$schema").is_some() && compacted.get("$schema").is_none() {
                validators.push(("draft-07", validator(&compacted, jsonschema::Draft::Draft7)));
            }
            SchemaCase {
                label,
                validator: validator(&original, draft),
                original,
                compacted: validators,
                n_valid: AtomicUsize::new(0),
                n_invalid: AtomicUsize::new(0),
            }
        })
        .collect()
});

/// An instance for one of [`SCHEMAS`].
#[derive(Debug, Clone)]
struct Case {
    schema_idx: usize,
    instance: Value,
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let schema_idx = usize::arbitrary(g) % SCHEMAS.len();
        let schema = &SCHEMAS[schema_idx].original;
        let mut names = vec![
            String::from("title"),
            String::from("description"),
            String::from("extra"),
        ];
        visit(schema, &mut Vec::new(), &mut |map, _| {
            names.extend(
                map.get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flat_map(|p| p.keys().cloned()),
            );
        });
        let instance = match percent(g) {
            0..10 => arbitrary_json(g, 3, &names),
            10..45 => Instances {
                root: schema,
                mutate: 0,
                names: &names,
            }
            .value(schema, g, 0),
            45..75 => Instances {
                root: schema,
                mutate: 5,
                names: &names,
            }
            .value(schema, g, 0),
            _ => Instances {
                root: schema,
                mutate: 25,
                names: &names,
            }
            .value(schema, g, 0),
        };
        Self {
            schema_idx,
            instance,
        }
    }
}

fn percent(g: &mut Gen) -> u32 {
    u32::arbitrary(g) % 100
}

fn arbitrary_json(g: &mut Gen, depth: usize, names: &[String]) -> Value {
    let kinds = if depth == 0 { 5 } else { 7 };
    match u32::arbitrary(g) % kinds {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(g)),
        2 => json!(i64::arbitrary(g) % 20),
        3 => json!(f64::from(i32::arbitrary(g) % 100) / 4.0),
        4 => Value::String(g.choose(names).cloned().unwrap_or_default()),
        5 => Value::Array(
            (0..usize::arbitrary(g) % 4)
                .map(|_| arbitrary_json(g, depth - 1, names))
                .collect(),
        ),
        _ => Value::Object(
            (0..usize::arbitrary(g) % 4)
                .map(|_| {
                    (
                        g.choose(names).cloned().unwrap_or_default(),
                        arbitrary_json(g, depth - 1, names),
                    )
                })
                .collect(),
        ),
    }
}

/// Builds instances from a schema: valid ones, and with `mutate` percent
/// chance per node, a near miss there instead.
struct Instances<'s> {
    root: &'s Value,
    mutate: u32,
    names: &'s [String],
}

impl Instances<'_> {
    fn value(&self, schema: &Value, g: &mut Gen, depth: usize) -> Value {
        if self.mutate > 0 && percent(g) < self.mutate {
            self.near_miss(schema, g, depth)
        } else {
            self.valid(schema, g, depth)
        }
    }

    /// The subschema a local `$ref` points at.
    fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(&percent_decode(pointer))
    }

    fn valid(&self, schema: &Value, g: &mut Gen, depth: usize) -> Value {
        let Value::Object(s) = schema else {
            return if *schema == Value::Bool(false) {
                Value::Null
            } else {
                arbitrary_json(g, 2, self.names)
            };
        };
        if depth > 8 {
            return Value::Null;
        }
        if let Some(target) = s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.resolve(r))
        {
            return self.value(target, g, depth + 1);
        }
        if let Some(value) = s.get("const") {
            return value.clone();
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            return g.choose(values).cloned().unwrap_or_default();
        }
        if let Some(Value::Array(branches)) = s
            .get("anyOf")
            .or_else(|| s.get("oneOf"))
            .or_else(|| s.get("allOf"))
            && let Some(branch) = g.choose(branches)
        {
            return self.value(branch, g, depth + 1);
        }
        // Defaults and examples are handy valid-looking values (for patterns).
        if bool::arbitrary(g) {
            let samples: Vec<&Value> = s
                .get("default")
                .into_iter()
                .chain(
                    s.get("examples")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                )
                .collect();
            if let Some(sample) = g.choose(&samples) {
                return (*sample).clone();
            }
        }
        let types: Vec<&str> = match s.get("type") {
            Some(Value::String(ty)) => vec![ty],
            Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).collect(),
            _ if s.contains_key("properties") => vec!["object"],
            _ if s.contains_key("items") || s.contains_key("prefixItems") => vec!["array"],
            _ => vec!["null", "boolean", "number", "string", "object", "array"],
        };
        let number = |key: &str| s.get(key).and_then(Value::as_f64);
        match *g.choose(&types).unwrap_or(&"null") {
            "object" => {
                let required: Vec<&str> = s
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut out = Map::new();
                for (name, sub) in s
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    if required.contains(&name.as_str()) || bool::arbitrary(g) {
                        out.insert(name.clone(), self.value(sub, g, depth + 1));
                    }
                }
                for name in required {
                    if !out.contains_key(name) {
                        out.insert(name.to_owned(), arbitrary_json(g, 1, self.names));
                    }
                }
                match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {}
                    Some(extra @ Value::Object(_)) if bool::arbitrary(g) => {
                        out.insert(String::from("extra"), self.value(extra, g, depth + 1));
                    }
                    _ if percent(g) < 20 => {
                        out.insert(String::from("extra"), arbitrary_json(g, 1, self.names));
                    }
                    _ => {}
                }
                Value::Object(out)
            }
            "array" => {
                let min = s.get("minItems").and_then(Value::as_u64).unwrap_or(0);
                let max = s
                    .get("maxItems")
                    .and_then(Value::as_u64)
                    .unwrap_or(min + 3)
                    .min(min + 3);
                let len = min + u64::arbitrary(g) % (max - min + 1);
                let prefix = s
                    .get("prefixItems")
                    .or_else(|| s.get("items").filter(|items| items.is_array()));
                let rest = s
                    .get("items")
                    .filter(|items| !items.is_array())
                    .or_else(|| s.get("additionalItems"));
                let items = (0..len).map(|idx| {
                    let item = prefix
                        .and_then(|p| p.get(usize::try_from(idx).unwrap_or(usize::MAX)))
                        .or(rest);
                    match item {
                        Some(item) => self.value(item, g, depth + 1),
                        None => arbitrary_json(g, 1, self.names),
                    }
                });
                Value::Array(items.collect())
            }
            "string" => {
                if let Some(format) = s.get("format").and_then(Value::as_str) {
                    let samples: &[&str] = match format {
                        "date-time" => &["2024-01-01T00:00:00Z", "2024-02-29T12:30:00+02:00"],
                        "uri" => &["https://example.com/a?b=c", "file:///tmp/x"],
                        _ => &["x"],
                    };
                    return json!(g.choose(samples));
                }
                let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                let max = s
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(min + 8)
                    .min(min + 8);
                let len = min + u64::arbitrary(g) % (max - min + 1);
                let text: String = (0..len)
                    .map(|_| {
                        *g.choose(&['a', 'b', 'z', 'é', 'Q', '1', ' '])
                            .unwrap_or(&'a')
                    })
                    .collect();
                Value::String(text)
            }
            "integer" | "number" => {
                let lo = number("minimum")
                    .or(number("exclusiveMinimum").map(|x| x.floor() + 1.0))
                    .unwrap_or(-50.0);
                let hi = number("maximum")
                    .or(number("exclusiveMaximum").map(|x| x.ceil() - 1.0))
                    .unwrap_or(lo + 100.0);
                let span = (hi - lo).max(0.0);
                let x = (lo + f64::from(u32::arbitrary(g) % 1000) / 1000.0 * span).round();
                let fraction = s.get("type") == Some(&json!("number")) && bool::arbitrary(g);
                if fraction && x + 0.5 <= hi {
                    json!(x + 0.5)
                } else {
                    json!(x as i64)
                }
            }
            "boolean" => Value::Bool(bool::arbitrary(g)),
            _ => Value::Null,
        }
    }

    /// A value that is likely invalid at this node: a wrong type, a boundary
    /// number, a string or array of the wrong length, a missing or extra
    /// property, or an out-of-enum value.
    fn near_miss(&self, schema: &Value, g: &mut Gen, depth: usize) -> Value {
        let valid = self.valid(schema, g, depth);
        let s = schema.as_object().cloned().unwrap_or_default();
        let number = |key: &str| s.get(key).and_then(Value::as_f64);
        match u32::arbitrary(g) % 6 {
            0 => g
                .choose(&[
                    json!(null),
                    json!(true),
                    json!(0),
                    json!(1.5),
                    json!("x"),
                    json!([]),
                    json!({}),
                ])
                .cloned()
                .unwrap_or_default(),
            1 => {
                let mut edges = vec![
                    json!(-1),
                    json!(0),
                    json!(5),
                    json!(6),
                    json!(11),
                    json!(1.5),
                    json!(1e300),
                    json!(-0.0),
                ];
                for key in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
                    if let Some(x) = number(key) {
                        edges.extend([
                            json!(x),
                            json!(x - 1.0),
                            json!(x + 1.0),
                            json!(x - 0.5),
                            json!(x + 0.5),
                        ]);
                    }
                }
                g.choose(&edges).cloned().unwrap_or_default()
            }
            2 => match valid {
                Value::Object(mut map) => {
                    if bool::arbitrary(g) && !map.is_empty() {
                        let idx = usize::arbitrary(g) % map.len();
                        let name = map.keys().nth(idx).cloned().unwrap_or_default();
                        map.shift_remove(&name);
                    } else {
                        let name = g.choose(self.names).cloned().unwrap_or_default();
                        map.insert(name, arbitrary_json(g, 1, self.names));
                    }
                    Value::Object(map)
                }
                Value::Array(mut items) => {
                    if bool::arbitrary(g) {
                        items.clear();
                    } else if let Some(first) = items.first().cloned() {
                        items.push(first);
                        items.push(arbitrary_json(g, 1, self.names));
                    }
                    Value::Array(items)
                }
                Value::String(text) => json!(format!("{text}x")),
                other => other,
            },
            3 => match s
                .get("enum")
                .and_then(Value::as_array)
                .and_then(|values| g.choose(values))
            {
                Some(Value::String(text)) => json!(format!("{text}-not")),
                _ => json!("not-in-enum"),
            },
            4 => {
                let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(1);
                let max = s
                    .get("maxLength")
                    .and_then(Value::as_u64)
                    .unwrap_or(min + 20);
                let len = *g.choose(&[0, min.saturating_sub(1), max + 1]).unwrap_or(&0);
                json!("a".repeat(usize::try_from(len).unwrap_or(0)))
            }
            _ => arbitrary_json(g, 2, self.names),
        }
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "quickcheck hands arguments over by value"
)]
fn instances_are_judged_alike(case: Case) -> TestResult {
    let schema = &SCHEMAS[case.schema_idx];
    let expected = schema.validator.is_valid(&case.instance);
    for (label, validator) in &schema.compacted {
        if validator.is_valid(&case.instance) != expected {
            return TestResult::error(format!(
                "{}: original says {expected}, compacted under {label} disagrees, for {}",
                schema.label, case.instance
            ));
        }
    }
    let counter = if expected {
        &schema.n_valid
    } else {
        &schema.n_invalid
    };
    counter.fetch_add(1, Ordering::Relaxed);
    TestResult::passed()
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the counts show the test is not vacuous"
)]
fn compacted_schemas_accept_exactly_the_same_instances() {
    let n_cases = 300 * SCHEMAS.len() as u64;
    QuickCheck::new()
        .tests(n_cases)
        .max_tests(n_cases)
        .quickcheck(instances_are_judged_alike as fn(Case) -> TestResult);
    let (mut n_valid, mut n_invalid) = (0, 0);
    for schema in SCHEMAS.iter() {
        let valid = schema.n_valid.load(Ordering::Relaxed);
        let invalid = schema.n_invalid.load(Ordering::Relaxed);
        assert!(
            valid > 0 && invalid > 0,
            "{}: {valid} valid, {invalid} invalid instances",
            schema.label
        );
        n_valid += valid;
        n_invalid += invalid;
    }
    eprintln!(
        "{n_valid} valid and {n_invalid} invalid instances over {} schemas",
        SCHEMAS.len()
    );
    let share = n_valid * 100 / (n_valid + n_invalid);
    assert!(
        (25..=85).contains(&share),
        "{share}% of {} instances were valid",
        n_valid + n_invalid
    );
}
