//! The `compact` diet mode: a deterministic rewrite of each tool definition
//! that costs far fewer tokens and leaves every tool callable with exactly the
//! same arguments.
//!
//! What changes, and why it is safe:
//!
//! - **Descriptions** are cut to their first sentence, whitespace runs become
//!   one space, and the result is capped at a word boundary with a trailing
//!   `…` ([`shorten`]). A sentence ends at `.`, `!` or `?` followed by
//!   whitespace (not after `e.g.`, `i.e.`, `etc.`, `vs.` and similar; decimals,
//!   file extensions and version numbers have no space after their dot), at a
//!   CJK full stop, or at a blank line.
//! - **The tool `title`** is dropped when it only repeats the name (compared
//!   lowercased, without punctuation, ignoring a trailing "tool": `Read Text
//!   File` for `read_text_file`, `Echo Tool` for `echo`). A title that says
//!   more (`Read File (Deprecated)`, `Print Environment Tool` for `get-env`)
//!   is kept: on the reference servers that is two titles, and both carry
//!   information the first sentence of the description loses.
//! - **Schemas** lose the keywords that are annotations in every JSON Schema
//!   draft, so they cannot change which instances validate: `title`,
//!   `$comment`, `examples`, `default`. A nested `description` is shortened
//!   like a tool's, with its own cap (or dropped), and an empty `required` goes.
//!   `deprecated`, `readOnly` and `writeOnly` are annotations too but stay:
//!   they tell the model what not to send, and they are rare. Every validation
//!   keyword stays, `format` included (it asserts under draft-07 validators).
//!   Only keyword positions are rewritten: values of `enum`, `const`, unknown
//!   keywords and property *names* are never touched, and a location some
//!   `$ref` points into is left as it was.
//! - **The root `$schema`** is dropped only when the schema means the same
//!   under draft-07 and 2020-12 (MCP's default when `$schema` is absent), that
//!   is when it names draft-07, 2019-09 or 2020-12 and uses only keywords whose
//!   meaning those drafts share: no array-form `items`, `additionalItems`,
//!   `dependencies`, `$ref` beside assertions, `$id`, anchors, dynamic or
//!   recursive refs, `format` or `content*` (draft-07 validators assert them,
//!   2020-12 ones do not), nor any keyword only one of the drafts knows.
//! - **`outputSchema`** is dropped unless [`CompactOptions::keep_output_schema`]
//!   is set, in which case it is compacted like `inputSchema`. The model does
//!   not need it to call the tool, and on servers that declare it, it is often
//!   the larger half of the definition. A client that does not see it skips
//!   validating `structuredContent` (the result still carries it); nothing
//!   fails.
//! - **`annotations`** lose the hints that repeat the spec's defaults
//!   (`readOnlyHint: false`, `destructiveHint: true`, `idempotentHint: false`,
//!   `openWorldHint: true`) and the `destructiveHint`/`idempotentHint` of a
//!   read-only tool, which the spec defines only for tools that are not
//!   read-only: a host applying the defaults decides exactly as before
//!   (confirmation prompts included). **`execution`** goes when it is only
//!   `{"taskSupport": "forbidden"}`, the default.
//! - Everything else (`name`, `icons`, `_meta`, unknown fields) is kept
//!   unchanged, in its original order.
//!
//! [`compact_tool`] and [`compact_schema`] are idempotent: compacting a
//! compacted value changes nothing.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// How hard [`compact_tool`] cuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactOptions {
    /// The most characters (not bytes) a tool description keeps after it is
    /// cut to its first sentence, the `…` included; 0 drops descriptions.
    pub description_max: usize,
    /// The same cap for the `description` of schemas (parameters and the
    /// schema root); 0 drops them.
    pub param_description_max: usize,
    /// Whether `outputSchema` is kept (compacted) rather than dropped.
    pub keep_output_schema: bool,
}

impl Default for CompactOptions {
    /// 120 characters for tools and 100 for parameters keep the whole first
    /// sentence of every reference-server description but one (a 121-character
    /// parameter sentence); output schemas are dropped.
    fn default() -> Self {
        Self {
            description_max: 120,
            param_description_max: 100,
            keep_output_schema: false,
        }
    }
}

/// The compact form of one `tools/list` item. A value that is not an object
/// comes back unchanged.
pub fn compact_tool(tool: &Value, opts: &CompactOptions) -> Value {
    let Value::Object(fields) = tool else {
        return tool.clone();
    };
    let name = fields.get("name").and_then(Value::as_str).unwrap_or("");
    let mut out = Map::with_capacity(fields.len());
    for (key, value) in fields {
        let kept = match key.as_str() {
            "title" => match value.as_str() {
                Some(title) if repeats_name(title, name) => None,
                _ => Some(value.clone()),
            },
            "description" => match value.as_str() {
                Some(text) => shortened(text, opts.description_max),
                None => Some(value.clone()),
            },
            "inputSchema" => Some(compact_schema_of(value, opts, name)),
            "outputSchema" if !opts.keep_output_schema => None,
            "outputSchema" => Some(compact_schema_of(value, opts, name)),
            "annotations" => Some(prune_annotations(value)),
            // `taskSupport` defaults to "forbidden": saying so says nothing.
            "execution" if *value == serde_json::json!({"taskSupport": "forbidden"}) => None,
            _ => Some(value.clone()),
        };
        if let Some(kept) = kept {
            out.insert(key.clone(), kept);
        }
    }
    Value::Object(out)
}

/// Tool annotations without the hints that say what their absence says: a
/// hint equal to its default (`readOnlyHint: false`, `destructiveHint: true`,
/// `idempotentHint: false`, `openWorldHint: true`), and `destructiveHint` /
/// `idempotentHint` of a read-only tool, which the spec gives meaning only
/// when `readOnlyHint` is false. A client reading the pruned hints under the
/// spec's defaults reaches the same conclusions. Other fields stay.
fn prune_annotations(value: &Value) -> Value {
    let Value::Object(hints) = value else {
        return value.clone();
    };
    let read_only = hints.get("readOnlyHint") == Some(&Value::Bool(true));
    let pruned: Map<String, Value> = hints
        .iter()
        .filter(|(key, hint)| {
            let default = match key.as_str() {
                "readOnlyHint" | "idempotentHint" => Some(false),
                "destructiveHint" | "openWorldHint" => Some(true),
                _ => None,
            };
            let meaningless =
                read_only && matches!(key.as_str(), "destructiveHint" | "idempotentHint");
            !(meaningless || default.is_some_and(|d| **hint == Value::Bool(d)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(pruned)
}

/// The compact form of a JSON Schema: it accepts exactly the instances the
/// original accepts (see the module docs for what is removed).
pub fn compact_schema(schema: &Value, opts: &CompactOptions) -> Value {
    compact_schema_of(schema, opts, "")
}

/// [`compact_schema`] for a schema of the tool `tool` (whose name's words
/// count as said when judging a parameter description redundant).
fn compact_schema_of(schema: &Value, opts: &CompactOptions, tool: &str) -> Value {
    let walk = Walk {
        opts,
        targets: ref_targets(schema),
        drop_dialect: dialect_is_redundant(schema),
        tool_words: words(tool),
    };
    walk.schema(schema, &mut Vec::new())
}

/// The lowercase words of a name or a text: split at non-alphanumerics and
/// at camelCase humps, a plural `-s` or `-ies` made singular.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let w = std::mem::take(word);
            let w = if let Some(stem) = w.strip_suffix("ies").filter(|s| s.len() > 1) {
                format!("{stem}y")
            } else {
                match w.strip_suffix('s') {
                    Some(stem) if stem.len() > 2 && !stem.ends_with('s') => stem.to_owned(),
                    _ => w,
                }
            };
            out.push(w);
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            if c.is_uppercase() && prev_lower {
                flush(&mut word, &mut out);
            }
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
            word.extend(c.to_lowercase());
        } else {
            flush(&mut word, &mut out);
            prev_lower = false;
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Words a parameter description may use without saying anything the
/// names and the schema's `type` do not already say.
const FILLER: &[&str] = &[
    "the",
    "a",
    "an",
    "of",
    "to",
    "for",
    "in",
    "on",
    "at",
    "by",
    "with",
    "from",
    "and",
    "or",
    "is",
    "are",
    "be",
    "this",
    "that",
    "it",
    "its",
    "as",
    "into",
    "which",
    "will",
    "should",
    "can",
    "given",
    "specified",
    "provided",
    "optional",
    "required",
    "value",
    "array",
    "list",
    "string",
    "number",
    "integer",
    "boolean",
    "object",
];

/// Whether a parameter description only repeats the names around it (the
/// tool's and those of the properties on its path) with filler words:
/// "The name of the entity" for `entities[].name`, "URL to fetch" for `url`
/// of `fetch`. Such a description tells the model nothing it does not read
/// in the names; one with any other word ("in seconds", "HH:MM") stays.
fn repeats_names(description: &str, names: &[String]) -> bool {
    words(description)
        .iter()
        .all(|w| FILLER.contains(&w.as_str()) || names.contains(w))
}

/// The first sentence of `text`, whitespace runs collapsed to one space, cut
/// at a word boundary to at most `max` characters including a trailing `…`.
/// `max == 0` gives an empty string.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    truncate(collapse_whitespace(first_sentence(text)), max)
}

/// `shorten`, or `None` when nothing is left.
fn shortened(text: &str, max: usize) -> Option<Value> {
    let short = shorten(text, max);
    (!short.is_empty()).then(|| Value::String(short.into_owned()))
}

/// Whether a tool title says nothing its name does not.
fn repeats_name(title: &str, name: &str) -> bool {
    fn normalized(text: &str) -> String {
        text.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    }
    let (title, name) = (normalized(title), normalized(name));
    title == name || title.strip_suffix("tool") == Some(name.as_str())
}

/// The text up to the end of its first sentence (or paragraph), trimmed.
fn first_sentence(text: &str) -> &str {
    let text = text.trim_start();
    let mut chars = text.char_indices().peekable();
    while let Some((idx, c)) = chars.next() {
        let end = idx + c.len_utf8();
        match c {
            '。' | '！' | '？' => return &text[..end],
            '.' | '!' | '?' => {
                let at_break = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
                if at_break && !(c == '.' && is_abbreviation(&text[..end])) {
                    return &text[..end];
                }
            }
            '\n' => {
                let rest = &text[end..];
                if let Some(line_end) = rest.find('\n')
                    && rest[..line_end].trim().is_empty()
                {
                    return text[..idx].trim_end();
                }
            }
            _ => {}
        }
    }
    text.trim_end()
}

/// Whether the word ending `text` (which ends with a `.`) is an abbreviation
/// whose dot does not end a sentence.
fn is_abbreviation(text: &str) -> bool {
    const WORDS: &[&str] = &[
        "eg.", "ie.", "etc.", "vs.", "cf.", "approx.", "incl.", "esp.", "resp.", "viz.",
    ];
    let word = text.rsplit(char::is_whitespace).next().unwrap_or(text);
    let word = word
        .trim_start_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    if WORDS.contains(&word.as_str()) {
        return true;
    }
    // Initialisms: `e.g.`, `i.e.`, `a.k.a.`, `U.S.`.
    let mut letters = word.strip_suffix('.').unwrap_or(&word).split('.');
    word.matches('.').count() >= 2 && letters.all(|part| part.chars().count() == 1)
}

/// `text` (already trimmed) with every whitespace run replaced by one space.
fn collapse_whitespace(text: &str) -> Cow<'_, str> {
    if !text.contains("  ") && !text.chars().any(|c| c.is_whitespace() && c != ' ') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text`: cut at the last space that fits, with
/// trailing separators removed and `…` appended.
fn truncate(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if max == 0 {
        return Cow::Borrowed("");
    }
    if text.chars().count() <= max {
        return text;
    }
    // Keep `max - 1` characters for the text, one for the `…`.
    let limit = text
        .char_indices()
        .nth(max - 1)
        .map_or(text.len(), |(idx, _)| idx);
    let head = &text[..limit];
    let head = if text[limit..].starts_with(' ') {
        head
    } else {
        head.rfind(' ').map_or(head, |space| &head[..space])
    };
    let head = head.trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':'));
    Cow::Owned(format!("{head}…"))
}

/// Keywords whose value is a map of name to subschema.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
];
/// Keywords whose value is a subschema or an array of subschemas.
const SCHEMA_LISTS: &[&str] = &["items", "prefixItems", "allOf", "anyOf", "oneOf"];
/// Keywords whose value is one subschema.
const SCHEMA_ONE: &[&str] = &[
    "not",
    "if",
    "then",
    "else",
    "additionalProperties",
    "additionalItems",
    "propertyNames",
    "contains",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentSchema",
];
/// Annotations removed outright: no draft validates anything with them.
const REMOVED: &[&str] = &["title", "$comment", "examples", "default"];

/// Calls `f` on every subschema of `value`, the value of keyword `key`, with
/// the path segments that lead from `value` to it.
fn each_subschema<'v>(key: &str, value: &'v Value, mut f: impl FnMut(&[String], &'v Value)) {
    let is_schema = |v: &Value| v.is_object() || v.is_boolean();
    if SCHEMA_MAPS.contains(&key) || key == "dependencies" {
        // `dependencies` mixes subschemas with arrays of property names.
        for (name, sub) in value.as_object().into_iter().flatten() {
            if is_schema(sub) {
                f(std::slice::from_ref(name), sub);
            }
        }
    } else if SCHEMA_LISTS.contains(&key) {
        match value {
            Value::Array(subs) => {
                for (idx, sub) in subs.iter().enumerate() {
                    f(&[idx.to_string()], sub);
                }
            }
            _ => f(&[], value),
        }
    } else if SCHEMA_ONE.contains(&key) {
        f(&[], value);
    }
}

/// Calls `f` on every schema object in `schema` (itself included), with its
/// path from the root.
fn visit<'v>(
    schema: &'v Value,
    path: &mut Vec<String>,
    f: &mut dyn FnMut(&'v Map<String, Value>, &[String]),
) {
    let Value::Object(map) = schema else {
        return;
    };
    f(map, path);
    for (key, value) in map {
        path.push(key.clone());
        each_subschema(key, value, |rel, sub| {
            path.extend_from_slice(rel);
            visit(sub, path, f);
            path.truncate(path.len() - rel.len());
        });
        path.pop();
    }
}

/// Every location (as path segments from the root) some reference may point
/// at: each JSON-pointer fragment, resolved against the root and against
/// every subschema that declares an id (over-approximating is harmless).
fn ref_targets(schema: &Value) -> Vec<Vec<String>> {
    let mut pointers = Vec::new();
    let mut bases = vec![Vec::new()];
    visit(schema, &mut Vec::new(), &mut |map, path| {
        for key in ["$ref", "$dynamicRef", "$recursiveRef"] {
            if let Some(pointer) = map
                .get(key)
                .and_then(Value::as_str)
                .and_then(pointer_segments)
            {
                pointers.push(pointer);
            }
        }
        if !path.is_empty()
            && ["$id", "id"]
                .iter()
                .any(|key| map.get(*key).is_some_and(Value::is_string))
        {
            bases.push(path.to_vec());
        }
    });
    bases
        .iter()
        .flat_map(|base| {
            pointers
                .iter()
                .map(move |pointer| [base.as_slice(), pointer].concat())
        })
        .collect()
}

/// The decoded segments of a reference's JSON-pointer fragment, if it has one.
fn pointer_segments(reference: &str) -> Option<Vec<String>> {
    let (_, fragment) = reference.split_once('#')?;
    let fragment = percent_decode(fragment);
    if fragment.is_empty() {
        return Some(Vec::new());
    }
    let rest = fragment.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// `%XX` escapes decoded (as URI fragments carry them).
fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let hex = bytes
            .get(idx + 1..idx + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[idx], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                idx += 3;
            }
            (byte, _) => {
                out.push(byte);
                idx += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Whether the root `$schema` can go: it names draft-07, 2019-09 or 2020-12,
/// and every keyword in the schema means the same under draft-07 and 2020-12.
fn dialect_is_redundant(schema: &Value) -> bool {
    const DIALECTS: &[&str] = &[
        "json-schema.org/draft-07/schema",
        "json-schema.org/draft/2019-09/schema",
        "json-schema.org/draft/2020-12/schema",
    ];
    const SHARED: &[&str] = &[
        "type",
        "enum",
        "const",
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "contains",
        "maxProperties",
        "minProperties",
        "required",
        "properties",
        "patternProperties",
        "additionalProperties",
        "propertyNames",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "then",
        "else",
        "items",
        "$defs",
        "definitions",
        "$ref",
    ];
    const ANNOTATIONS: &[&str] = &[
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
    ];
    let named = schema.get("$schema").and_then(Value::as_str).map(|uri| {
        let uri = uri.trim_end_matches('#');
        let uri = uri
            .strip_prefix("https://")
            .or_else(|| uri.strip_prefix("http://"));
        uri.is_some_and(|uri| DIALECTS.contains(&uri))
    });
    if named != Some(true) {
        return false;
    }
    let mut shared = true;
    visit(schema, &mut Vec::new(), &mut |map, path| {
        for (key, value) in map {
            shared &= match key.as_str() {
                "$schema" => path.is_empty(),
                // Draft-07 ignores a `$ref`'s siblings; 2020-12 applies them.
                "$ref" => {
                    value.as_str().is_some_and(|r| r.starts_with('#'))
                        && map.keys().all(|sibling| {
                            ["$ref", "$schema", "$defs", "definitions"].contains(&sibling.as_str())
                                || ANNOTATIONS.contains(&sibling.as_str())
                        })
                }
                "items" => value.is_object() || value.is_boolean(),
                "exclusiveMaximum" | "exclusiveMinimum" => value.is_number(),
                key => SHARED.contains(&key) || ANNOTATIONS.contains(&key),
            };
        }
    });
    shared
}

/// `anyOf: [{"type": "string"}, {"type": "null"}]` (what Pydantic writes for
/// `Optional[str]`) as `type: ["string", "null"]`: the same instances
/// validate, in every draft. Only when every branch is a lone `type` and the
/// schema has no `type` of its own.
fn merge_nullable_types(schema: &mut Map<String, Value>) {
    if schema.contains_key("type") {
        return;
    }
    let Some(Value::Array(branches)) = schema.get("anyOf") else {
        return;
    };
    let mut types: Vec<Value> = Vec::with_capacity(branches.len());
    for branch in branches {
        match branch.as_object() {
            Some(b) if b.len() == 1 => match b.get("type") {
                Some(Value::String(t)) => {
                    if !types.iter().any(|x| x.as_str() == Some(t)) {
                        types.push(Value::String(t.clone()));
                    }
                }
                _ => return,
            },
            _ => return,
        }
    }
    if types.is_empty() {
        return;
    }
    // Keep the keyword where `anyOf` stood.
    let rebuilt: Map<String, Value> = std::mem::take(schema)
        .into_iter()
        .map(|(k, v)| {
            if k == "anyOf" {
                ("type".to_owned(), Value::Array(types.clone()))
            } else {
                (k, v)
            }
        })
        .collect();
    *schema = rebuilt;
}

/// One compaction pass over a schema document.
struct Walk<'o> {
    opts: &'o CompactOptions,
    /// Locations references point at (see [`ref_targets`]).
    targets: Vec<Vec<String>>,
    /// Whether the root `$schema` goes.
    drop_dialect: bool,
    /// The words of the tool's name.
    tool_words: Vec<String>,
}

impl Walk<'_> {
    /// Whether something a reference points at lies at or below `path`.
    fn pinned(&self, path: &[String]) -> bool {
        self.targets.iter().any(|target| target.starts_with(path))
    }

    fn schema(&self, schema: &Value, path: &mut Vec<String>) -> Value {
        let Value::Object(map) = schema else {
            return schema.clone();
        };
        let mut out = Map::with_capacity(map.len());
        for (key, value) in map {
            path.push(key.clone());
            if let Some(kept) = self.keyword(key, value, path) {
                out.insert(key.clone(), kept);
            }
            path.pop();
        }
        if !self.pinned(path) {
            merge_nullable_types(&mut out);
        }
        Value::Object(out)
    }

    /// The words of the tool's name and of every property name on `path`.
    fn names_on(&self, path: &[String]) -> Vec<String> {
        let mut names = self.tool_words.clone();
        for pair in path.windows(2) {
            if pair[0] == "properties" {
                names.extend(words(&pair[1]));
            }
        }
        names
    }

    /// The compacted value of keyword `key` at `path`, or `None` to drop it.
    fn keyword(&self, key: &str, value: &Value, path: &mut Vec<String>) -> Option<Value> {
        let removable = REMOVED.contains(&key)
            || key == "description"
            || (key == "required" && value.as_array().is_some_and(Vec::is_empty))
            || (key == "$schema" && path.len() == 1 && self.drop_dialect);
        if removable && self.pinned(path) {
            return Some(value.clone());
        }
        if key == "description" {
            return match value.as_str() {
                Some(text) => shortened(text, self.opts.param_description_max).filter(|short| {
                    // A property's (shortened) description that only repeats
                    // the names goes too.
                    let is_property = path.len() >= 3 && path[path.len() - 3] == "properties";
                    !(is_property
                        && short
                            .as_str()
                            .is_some_and(|s| repeats_names(s, &self.names_on(path))))
                }),
                None => Some(value.clone()),
            };
        }
        if removable {
            return None;
        }
        let is_schema = |v: &Value| v.is_object() || v.is_boolean();
        let rebuilt = match value {
            // `dependencies` mixes subschemas with arrays of property names.
            Value::Object(subs) if SCHEMA_MAPS.contains(&key) || key == "dependencies" => {
                let subs = subs.iter().map(|(name, sub)| {
                    let sub = if is_schema(sub) {
                        self.subschema(sub, path, name.clone())
                    } else {
                        sub.clone()
                    };
                    (name.clone(), sub)
                });
                Value::Object(subs.collect())
            }
            Value::Array(subs) if SCHEMA_LISTS.contains(&key) => {
                let subs = subs.iter().enumerate();
                Value::Array(
                    subs.map(|(idx, sub)| self.subschema(sub, path, idx.to_string()))
                        .collect(),
                )
            }
            _ if SCHEMA_LISTS.contains(&key) || SCHEMA_ONE.contains(&key) => {
                self.schema(value, path)
            }
            _ => value.clone(),
        };
        Some(rebuilt)
    }

    /// [`Self::schema`] of the subschema at `path` + `segment`.
    fn subschema(&self, sub: &Value, path: &mut Vec<String>, segment: String) -> Value {
        path.push(segment);
        let res = self.schema(sub, path);
        path.pop();
        res
    }
}

#[cfg(test)]
mod tests;
