//! Ranking tools by a natural-language query, for the `search_tools` meta
//! tool of the `discover` mode: offline, deterministic, no model.
//!
//! [`ToolIndex::build`] runs once per catalog and precomputes every term's
//! score in every tool; [`ToolIndex::search`] analyzes the query and adds up
//! precomputed numbers.
//!
//! # Text analysis
//!
//! Query and tools go through the same word analysis:
//!
//! 1. split into words at every non-alphanumeric character, at a lower→upper
//!    change (`readFile`), before the last capital of an acronym
//!    (`HTTPServer`, but `URLs` stays one word), and between letters and
//!    digits (`utf8`);
//! 2. lowercase; drop one-character words and English stopwords;
//! 3. stem with the Snowball English stemmer (Porter2, from `rust-stemmers`),
//!    so `directories`, `directory` and `creating`, `create` meet.
//!
//! A query is first cut at whitespace, and chunks shaped like arguments
//! stand for their type instead of their letters: a URL becomes `url`, a
//! file name or path becomes `path`, `file` and the kind its extension
//! names (`image`, `audio`, `text`, …), a clock time `time`, a number
//! `number`, a hex id `hash`. A capitalized word inside a sentence (`Alice`,
//! `Lisbon`) is most likely a name, an argument: it weighs half and gets no
//! synonyms. After a negation (`not`, `haven't`, …) the next word counts
//! with `un` in front ("not committed" → `uncommitted`).
//!
//! # Scoring: BM25F
//!
//! Each tool is a document with six fields, each with a weight `w` and a
//! length normalization `b`:
//!
//! | field | from | `w` | `b` |
//! |---|---|---|---|
//! | name | the exposed name without the server prefix (`git_status`) | 3.0 | 0.3 |
//! | server | the server id | 1.0 | 0.0 |
//! | title | `title` or `annotations.title`, less the name's words | 2.0 | 0.5 |
//! | description | `description` | 1.0 | 0.75 |
//! | parameter names | `inputSchema` property names, nested | 0.8 | 0.5 |
//! | parameter text | their descriptions, titles and string `enum` values | 0.4 | 0.75 |
//!
//! A term's pseudo frequency in a tool is
//! `tf = Σ_fields w · tf_field / (1 − b + b · len_field / avg_len_field)`,
//! and its score is `idf · tf · (k1 + 1) / (k1 + tf)` with `k1 = 1.2` and
//! `idf = ln(1 + (N − df + 0.5) / (df + 0.5))`.
//!
//! # Query expansion
//!
//! A table of concept groups (`CONCEPTS`: file/document, directory/folder,
//! delete/remove/forget, …) expands each query word with its group mates at
//! 0.7 of its weight. A query word contributes the *best* of its own score
//! and its synonyms' scores, never their sum, so a tool that happens to use
//! three synonyms is not rewarded three times. The table is generic
//! vocabulary for kinds of tools (files, the web, time, version control,
//! memory, …), not keyed to any query set.
//!
//! # Adjustments
//!
//! - A tool gets up to 0.5 more for the share of its name words the query
//!   names (synonyms count 0.7): it separates `git_diff_staged` from
//!   `git_diff` when the query says "staged".
//! - A tool whose name, title or description says "deprecated" scores half.
//!
//! Results are best first; equal scores are ordered by exposed name, so a
//! query always gets the same answer.

use std::collections::HashMap;

use serde_json::Value;

use vocabulary::{is_stopword, synonyms};

mod vocabulary;

/// Words longer than this are indexed unstemmed (no English word is; it
/// bounds the stemmer's work on an odd token).
const MAX_STEM_LEN: usize = 32;

/// The stem of one lowercase word: Snowball English (Porter2) for ASCII
/// lowercase words of 3 to [`MAX_STEM_LEN`] letters; any other word (short,
/// long, with digits or non-ASCII letters) comes back unchanged.
fn stem(word: &str) -> String {
    if word.len() <= 2 || word.len() > MAX_STEM_LEN || !word.bytes().all(|b| b.is_ascii_lowercase())
    {
        return word.to_owned();
    }
    rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English)
        .stem(word)
        .into_owned()
}

/// One searchable tool.
#[derive(Debug, Clone, Copy)]
pub struct Document<'a> {
    /// The exposed name (`git__git_status`, or bare when not prefixed).
    pub name: &'a str,
    /// The id of the server that owns the tool (`git`). A leading
    /// `server` plus separator is stripped from [`Document::name`] for the
    /// name field.
    pub server: &'a str,
    /// The tool object as listed: `description`, `title`, `inputSchema`,
    /// `annotations`. Other members are ignored.
    pub tool: &'a Value,
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// The position of the tool in the documents given to
    /// [`ToolIndex::build`].
    pub index: usize,
    /// The score; only meaningful relative to other hits of the same query.
    pub score: f32,
}

/// An immutable search index over one catalog's tools.
#[derive(Debug, Clone)]
pub struct ToolIndex {
    names: Vec<String>,
    /// Each tool's distinct name terms.
    name_terms: Vec<Vec<TermId>>,
    /// Each tool's score multiplier (`DEPRECATED_FACTOR` or 1).
    factors: Vec<f32>,
    /// Stem → term.
    term_ids: HashMap<String, TermId>,
    /// Per term, its score in each tool that has it, in tool order.
    postings: Vec<Vec<Posting>>,
}

/// An interned stem: its index in `ToolIndex::postings`.
type TermId = usize;

/// A term's score in one tool.
#[derive(Debug, Clone, Copy)]
struct Posting {
    doc: usize,
    score: f32,
}

/// BM25 saturation.
const K1: f32 = 1.2;

/// The weight of a synonym relative to the query word it expands.
const SYNONYM_WEIGHT: f32 = 0.7;

/// The most a tool gains when the query names all its name words.
const NAME_COVERAGE_BONUS: f32 = 0.5;

/// The score multiplier of a tool whose name, title or description calls
/// it deprecated.
const DEPRECATED_FACTOR: f32 = 0.5;

/// The weight of a capitalized word inside a sentence (`Alice`, `Lisbon`):
/// most likely a name, an argument rather than what the tool does.
const PROPER_NOUN_WEIGHT: f32 = 0.5;

/// Query words beyond this many are ignored (bounds the work per query).
const MAX_QUERY_TERMS: usize = 32;

/// Tokens kept per field and tool (bounds the index for huge descriptions).
const MAX_FIELD_TOKENS: usize = 2048;

/// How many levels of parameter schemas are walked: each `properties`,
/// `items`, `additionalProperties`, `anyOf`, `oneOf` or `allOf` is a level.
const MAX_SCHEMA_DEPTH: usize = 6;

/// The fields of a tool, in [`FIELDS`] order.
#[derive(Debug, Clone, Copy)]
enum Field {
    Name,
    Server,
    Title,
    Description,
    ParamName,
    ParamText,
}

const N_FIELDS: usize = 6;

/// `(weight, b)` per field, indexed by `Field as usize`.
const FIELDS: [(f32, f32); N_FIELDS] = [
    (3.0, 0.3),  // name
    (1.0, 0.0),  // server
    (2.0, 0.5),  // title
    (1.0, 0.75), // description
    (0.8, 0.5),  // parameter names
    (0.4, 0.75), // parameter text
];

impl ToolIndex {
    /// Indexes the tools; [`Hit::index`] refers to their order here.
    pub fn build<'a>(docs: impl IntoIterator<Item = Document<'a>>) -> Self {
        let mut vocabulary = Vocabulary::default();
        let mut names = Vec::new();
        let mut fields = Vec::new();
        for doc in docs {
            names.push(doc.name.to_owned());
            fields.push(vocabulary.document(&doc));
        }
        let n_docs = names.len();
        let deprecated = vocabulary.ids.get(&stem("deprecated")).copied();
        let factors = fields
            .iter()
            .map(|tokens| {
                let says_deprecated = |field: Field| {
                    deprecated.is_some_and(|id| tokens[field as usize].contains(&id))
                };
                if [Field::Name, Field::Title, Field::Description]
                    .into_iter()
                    .any(says_deprecated)
                {
                    DEPRECATED_FACTOR
                } else {
                    1.0
                }
            })
            .collect();
        let name_terms = fields
            .iter()
            .map(|tokens| {
                let mut terms = tokens[Field::Name as usize].clone();
                terms.sort_unstable();
                terms.dedup();
                terms
            })
            .collect();

        let mut avg_len = [0.0_f32; N_FIELDS];
        for tokens in &fields {
            for (avg, field) in avg_len.iter_mut().zip(tokens) {
                *avg += field.len() as f32;
            }
        }
        for avg in &mut avg_len {
            *avg = if *avg > 0.0 {
                *avg / n_docs as f32
            } else {
                1.0
            };
        }

        // Pseudo term frequencies, pushed in document order.
        let mut postings: Vec<Vec<Posting>> = vec![Vec::new(); vocabulary.ids.len()];
        let mut occurrences: Vec<(TermId, usize)> = Vec::new();
        for (doc, tokens) in fields.iter().enumerate() {
            let norms: [f32; N_FIELDS] = std::array::from_fn(|field_idx| {
                let (weight, b) = FIELDS[field_idx];
                let len = tokens[field_idx].len() as f32;
                weight / (1.0 - b + b * len / avg_len[field_idx])
            });
            occurrences.clear();
            for (field_idx, field) in tokens.iter().enumerate() {
                occurrences.extend(field.iter().map(|&id| (id, field_idx)));
            }
            occurrences.sort_unstable();
            for run in occurrences.chunk_by(|a, b| a.0 == b.0) {
                let tf = run.iter().map(|&(_, field_idx)| norms[field_idx]).sum();
                postings[run[0].0].push(Posting { doc, score: tf });
            }
        }
        for list in &mut postings {
            let df = list.len() as f32;
            let idf = (1.0 + (n_docs as f32 - df + 0.5) / (df + 0.5)).ln();
            for posting in list {
                let tf = posting.score;
                posting.score = idf * tf * (K1 + 1.0) / (K1 + tf);
            }
        }
        Self {
            names,
            name_terms,
            factors,
            term_ids: vocabulary.ids,
            postings,
        }
    }

    /// The number of indexed tools.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no tool is indexed.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The exposed name of the tool at `index`.
    pub fn name(&self, index: usize) -> Option<&str> {
        self.names.get(index).map(String::as_str)
    }

    /// The `limit` best tools for `query`, best first, equal scores ordered
    /// by name. Tools that match no query word are never returned, so an
    /// empty or all-stopword query returns nothing.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        if limit == 0 || self.names.is_empty() {
            return Vec::new();
        }
        let terms: Vec<ResolvedTerm> = analyze_query(query)
            .iter()
            .map(|term| self.resolve(term))
            .collect();
        let mut total = vec![0.0_f32; self.names.len()];
        let mut best = vec![0.0_f32; self.names.len()];
        for term in &terms {
            best.fill(0.0);
            for &(id, weight) in &term.ids {
                for posting in &self.postings[id] {
                    let score = weight * posting.score;
                    if score > best[posting.doc] {
                        best[posting.doc] = score;
                    }
                }
            }
            for (total, best) in total.iter_mut().zip(&best) {
                *total += best;
            }
        }
        for (doc, total) in total.iter_mut().enumerate() {
            if *total > 0.0 {
                *total += NAME_COVERAGE_BONUS * name_coverage(&self.name_terms[doc], &terms);
                *total *= self.factors[doc];
            }
        }

        let mut hits: Vec<Hit> = total
            .into_iter()
            .enumerate()
            .filter(|(_, score)| *score > 0.0)
            .map(|(index, score)| Hit { index, score })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| self.names[a.index].cmp(&self.names[b.index]))
                .then_with(|| a.index.cmp(&b.index))
        });
        hits.truncate(limit);
        hits
    }

    /// The indexed terms a query term matches, with their weights: itself,
    /// then its synonyms.
    fn resolve(&self, term: &QueryTerm) -> ResolvedTerm {
        let mut ids = Vec::new();
        if let Some(&id) = self.term_ids.get(&term.stem) {
            ids.push((id, term.weight));
        }
        if term.expand {
            for synonym in synonyms(&term.stem) {
                if let Some(&id) = self.term_ids.get(synonym) {
                    ids.push((id, term.weight * SYNONYM_WEIGHT));
                }
            }
        }
        ResolvedTerm { ids }
    }
}

/// A query term as the indexed terms it matches.
#[derive(Debug)]
struct ResolvedTerm {
    /// `(term, weight)`: the term itself first, then its synonyms.
    ids: Vec<(TermId, f32)>,
}

/// The share of a tool's name terms the query names, each counted with the
/// best weight a query term gives it (synonyms weigh less).
fn name_coverage(name_terms: &[TermId], query: &[ResolvedTerm]) -> f32 {
    if name_terms.is_empty() {
        return 0.0;
    }
    let matched: f32 = name_terms
        .iter()
        .map(|name_term| {
            query
                .iter()
                .flat_map(|term| &term.ids)
                .filter(|(id, _)| id == name_term)
                .map(|&(_, weight)| weight)
                .fold(0.0, f32::max)
        })
        .sum();
    matched / name_terms.len() as f32
}

/// A query word after analysis.
#[derive(Debug, Clone, PartialEq)]
struct QueryTerm {
    stem: String,
    weight: f32,
    /// Whether synonyms apply (not to proper nouns).
    expand: bool,
}

/// The shape of a whitespace-separated chunk of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// `https://…`, `www.…`
    Url,
    /// Has a `/` or a file extension (`notes/todo.md`, `hello.txt`, `.csv`,
    /// `data/`), with the extension if any.
    Path(Option<String>),
    /// `14:00`, `9:30pm`
    Clock,
    /// `42`, `19.5`
    Number,
    /// A hex id of 7 to 40 digits with letters and digits (`a1b2c3d`).
    Hash,
    /// Anything else: plain words.
    Words,
}

/// Analyzes a query: chunks shaped like arguments become the words for
/// their type (a URL → `url`, a file name → `path`, `file` and the kind its
/// extension names, a clock time → `time`, a number → `number`, a hex id →
/// `hash`) instead of their letters, and capitalized words inside a sentence
/// weigh `PROPER_NOUN_WEIGHT` without synonyms. After a negation the next
/// word counts with `un` in front instead ("not committed" → `uncommitted`):
/// it names what the person does not want. Repeated stems are kept once.
fn analyze_query(query: &str) -> Vec<QueryTerm> {
    let mut terms = Vec::new();
    let mut push =
        |word: &str, weight: f32, expand: bool| push_term(&mut terms, word, weight, expand);
    let mut sentence_start = true;
    let mut negated = false;
    for chunk in query.split_whitespace() {
        let token = chunk
            .trim_start_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '.' | '/' | '~'))
            .trim_end_matches(|c: char| !c.is_alphanumeric() && c != '/');
        let shape = shape(token);
        let content = shape == Shape::Words && !analyze(token).is_empty();
        match &shape {
            Shape::Url => push("url", 1.0, true),
            Shape::Path(ext) => {
                push("path", 1.0, true);
                if let Some(ext) = ext {
                    push("file", 1.0, true);
                    if let Some(kind) = file_kind(ext) {
                        push(kind, 1.0, true);
                    }
                }
            }
            Shape::Clock => push("time", 1.0, true),
            Shape::Number => push("number", 1.0, true),
            Shape::Hash => push("hash", 1.0, true),
            Shape::Words => {
                let mut chars = token.chars();
                let proper = !sentence_start
                    && chars.next().is_some_and(char::is_uppercase)
                    && chars.next().is_some_and(char::is_lowercase);
                if negated && content && token.chars().all(char::is_alphabetic) {
                    push(&format!("un{}", token.to_lowercase()), 1.0, true);
                } else if proper {
                    push(token, PROPER_NOUN_WEIGHT, false);
                } else {
                    push(token, 1.0, true);
                }
            }
        }
        // A negation reaches over stopwords ("not yet staged").
        negated = shape == Shape::Words && (negation(token) || (negated && !content));
        sentence_start = chunk.ends_with(['.', '!', '?', ';', ':']);
    }
    terms
}

/// Adds the stems of `word` to `terms`, or raises the weight of those
/// already there. Stems beyond `MAX_QUERY_TERMS` are dropped.
fn push_term(terms: &mut Vec<QueryTerm>, word: &str, weight: f32, expand: bool) {
    for stem in analyze(word) {
        if let Some(term) = terms.iter_mut().find(|term| term.stem == stem) {
            term.weight = term.weight.max(weight);
            term.expand |= expand;
        } else if terms.len() < MAX_QUERY_TERMS {
            terms.push(QueryTerm {
                stem,
                weight,
                expand,
            });
        }
    }
}

/// `not`, `never`, `haven't`, …: the next content word is read with `un`
/// in front.
fn negation(token: &str) -> bool {
    let lower = token.to_lowercase();
    matches!(
        lower.as_str(),
        "not" | "no" | "never" | "without" | "cannot"
    ) || lower.ends_with("n't")
        || lower.ends_with("n\u{2019}t")
}

fn shape(token: &str) -> Shape {
    let lower = token.to_ascii_lowercase();
    if ["http://", "https://", "ftp://", "www."]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
    {
        return Shape::Url;
    }
    if is_clock(&lower) {
        return Shape::Clock;
    }
    if lower.starts_with(|c: char| c.is_ascii_digit())
        && lower
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
    {
        return Shape::Number;
    }
    if (7..=40).contains(&lower.len())
        && lower.chars().all(|c| c.is_ascii_hexdigit())
        && lower.contains(|c: char| c.is_ascii_digit())
        && lower.contains(|c: char| c.is_ascii_alphabetic())
    {
        return Shape::Hash;
    }
    let ext = lower.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| {
        (1..=5).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
            && ext.contains(|c: char| c.is_ascii_alphabetic())
    });
    if ext.is_some() || lower.contains('/') {
        Shape::Path(ext.map(str::to_owned))
    } else {
        Shape::Words
    }
}

/// What a file extension says about the file's content.
fn file_kind(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "png" | "jpg" | "jpeg" | "gif" | "svg" | "webp" | "bmp" | "ico" | "tif" | "tiff"
        | "heic" => "image",
        "mp3" | "wav" | "ogg" | "flac" | "m4a" | "aac" | "opus" => "audio",
        "mp4" | "mov" | "webm" | "avi" | "mkv" => "video",
        "zip" | "gz" | "tgz" | "tar" | "bz2" | "xz" | "7z" | "rar" | "zst" => "archive",
        "pdf" | "doc" | "docx" | "odt" | "rtf" | "xls" | "xlsx" | "ods" | "ppt" | "pptx" => {
            "document"
        }
        "txt" | "md" | "rst" | "csv" | "tsv" | "log" | "json" | "yaml" | "yml" | "toml" | "ini"
        | "cfg" | "conf" | "xml" | "html" | "htm" | "css" | "rs" | "py" | "js" | "ts" | "go"
        | "java" | "c" | "h" | "cpp" | "rb" | "sh" | "sql" => "text",
        _ => return None,
    })
}

/// `H:MM` or `HH:MM`, optionally followed by `am` or `pm`.
fn is_clock(token: &str) -> bool {
    let token = token
        .strip_suffix("am")
        .or_else(|| token.strip_suffix("pm"))
        .unwrap_or(token);
    token.split_once(':').is_some_and(|(hours, minutes)| {
        (1..=2).contains(&hours.len())
            && minutes.len() == 2
            && hours
                .chars()
                .chain(minutes.chars())
                .all(|c| c.is_ascii_digit())
    })
}

/// Interns the stems of the tools being indexed, and remembers each word's
/// stem: descriptions repeat their words, and stemming is the costly part.
#[derive(Debug, Default)]
struct Vocabulary {
    ids: HashMap<String, TermId>,
    /// Lowercase word → its term, `None` for words analysis drops.
    words: HashMap<String, Option<TermId>>,
}

impl Vocabulary {
    /// The terms of `text`, appended to `out` up to `MAX_FIELD_TOKENS`.
    fn add(&mut self, text: &str, out: &mut Vec<TermId>) {
        for_each_word(text, |word| {
            if out.len() >= MAX_FIELD_TOKENS {
                return;
            }
            let id = match self.words.get(word) {
                Some(&id) => id,
                None => {
                    let id = analyze_word(word).map(|stem| {
                        let next = self.ids.len();
                        *self.ids.entry(stem).or_insert(next)
                    });
                    self.words.insert(word.to_owned(), id);
                    id
                }
            };
            out.extend(id);
        });
    }

    /// The terms of each field of a tool, indexed by `Field as usize`.
    fn document(&mut self, doc: &Document<'_>) -> [Vec<TermId>; N_FIELDS] {
        let mut fields: [Vec<TermId>; N_FIELDS] = Default::default();
        let mut add = |field: Field, text: &str| self.add(text, &mut fields[field as usize]);

        let bare = doc
            .name
            .strip_prefix(doc.server)
            .filter(|rest| rest.starts_with(|c: char| !c.is_alphanumeric()))
            .map_or(doc.name, |rest| {
                rest.trim_start_matches(|c: char| !c.is_alphanumeric())
            });
        add(Field::Name, bare);
        add(Field::Server, doc.server);
        let tool = doc.tool;
        let title = tool.get("title").and_then(Value::as_str);
        let annotations_title = tool.pointer("/annotations/title").and_then(Value::as_str);
        for text in title
            .into_iter()
            .chain(annotations_title.filter(|t| Some(*t) != title))
        {
            add(Field::Title, text);
        }
        if let Some(description) = tool.get("description").and_then(Value::as_str) {
            add(Field::Description, description);
        }
        if let Some(schema) = tool.get("inputSchema") {
            walk_schema(schema, 0, &mut add);
        }
        // A title mostly restates the name ("Read File"); counting those
        // words twice would favour the servers that set titles.
        let [name, _, title, ..] = &mut fields;
        title.retain(|id| !name.contains(id));
        fields
    }
}

/// Feeds a schema's property names and their prose to `add`, down to
/// [`MAX_SCHEMA_DEPTH`]. `$ref`s are not followed.
fn walk_schema(schema: &Value, depth: usize, add: &mut impl FnMut(Field, &str)) {
    if depth >= MAX_SCHEMA_DEPTH {
        return;
    }
    let Some(schema) = schema.as_object() else {
        return;
    };
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            add(Field::ParamName, name);
            for key in ["title", "description"] {
                if let Some(text) = property.get(key).and_then(Value::as_str) {
                    add(Field::ParamText, text);
                }
            }
            for value in property
                .get("enum")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(text) = value.as_str() {
                    add(Field::ParamText, text);
                }
            }
            walk_schema(property, depth + 1, add);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(key) {
            walk_schema(sub, depth + 1, add);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for sub in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk_schema(sub, depth + 1, add);
        }
    }
}

/// Words, lowercased, without stopwords and one-character words, stemmed.
fn analyze(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |word| out.extend(analyze_word(word)));
    out
}

/// The stem of a lowercase word, or `None` for a stopword or a
/// one-character word.
fn analyze_word(word: &str) -> Option<String> {
    (word.chars().nth(1).is_some() && !is_stopword(word)).then(|| stem(word))
}

/// Splits text into lowercase words (see the module docs for the rules).
#[cfg(test)]
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    for_each_word(text, |word| words.push(word.to_owned()));
    words
}

/// Calls `f` with each lowercase word of `text` (see the module docs for
/// the rules).
fn for_each_word(text: &str, mut f: impl FnMut(&str)) {
    let mut word = String::new();
    let mut prev: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                f(&word);
                word.clear();
            }
            prev = None;
            continue;
        }
        if let Some(prev) = prev {
            let acronym_end = prev.is_uppercase() && c.is_uppercase() && {
                let mut ahead = chars.clone();
                let next = ahead.next();
                // `URLs`: a lone plural `s` after an acronym does not start
                // a word.
                next.is_some_and(char::is_lowercase)
                    && (next != Some('s') || ahead.next().is_some_and(char::is_lowercase))
            };
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || acronym_end
                || (prev.is_numeric() != c.is_numeric());
            if boundary && !word.is_empty() {
                f(&word);
                word.clear();
            }
        }
        if c.is_ascii() {
            word.push(c.to_ascii_lowercase());
        } else {
            word.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    if !word.is_empty() {
        f(&word);
    }
}

#[cfg(test)]
mod tests;
