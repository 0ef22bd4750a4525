use std::path::PathBuf;

use serde_json::json;

use super::vocabulary::CONCEPTS;
use super::*;

#[track_caller]
fn check_words(text: &str, expect: &[&str]) {
    assert_eq!(split_words(text), expect, "split_words({text:?})");
}

#[test]
fn split_words_handles_every_naming_style() {
    check_words("git__git_status", &["git", "git", "status"]);
    check_words("read_text_file", &["read", "text", "file"]);
    check_words("get-tiny-image", &["get", "tiny", "image"]);
    check_words("longRunningOperation", &["long", "running", "operation"]);
    check_words("HTTPServer", &["http", "server"]);
    check_words("parseURLs now", &["parse", "urls", "now"]);
    check_words("utf8 ipv4Address", &["utf", "8", "ipv", "4", "address"]);
    check_words("fs.read-file/v2", &["fs", "read", "file", "v", "2"]);
    check_words("Ünïcode Straße", &["ünïcode", "straße"]);
    check_words("  --  ", &[]);
}

#[track_caller]
fn check_stem(word: &str, expect: &str) {
    assert_eq!(stem(word), expect, "stem({word:?})");
}

#[test]
fn stemmer_follows_snowball_english() {
    // Porter's examples, where Porter2 (Snowball English) agrees with Porter (1980).
    for (word, expect) in [
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("cats", "cat"),
        ("feed", "feed"),
        ("agreed", "agre"),
        ("plastered", "plaster"),
        ("bled", "bled"),
        ("motoring", "motor"),
        ("sing", "sing"),
        ("conflated", "conflat"),
        ("hopping", "hop"),
        ("falling", "fall"),
        ("filing", "file"),
        ("happy", "happi"),
        ("sky", "sky"),
        ("relational", "relat"),
        ("controlling", "control"),
        ("adjustment", "adjust"),
        ("adoption", "adopt"),
    ] {
        check_stem(word, expect);
    }
    // Where Porter2 differs: `general` stays apart from `generate` (Porter
    // stemmed both to `gener`), a final `y` after a vowel stays (`day`, not
    // `dai`), `-us`/`-ss` words keep their `s` (`status`), and the irregular
    // forms of its exception list.
    for (word, expect) in [
        ("generalizations", "general"),
        ("generate", "generat"),
        ("today", "today"),
        ("status", "status"),
        ("using", "use"),
        ("lying", "lie"),
        ("skies", "sky"),
        ("news", "news"),
    ] {
        check_stem(word, expect);
    }
}

#[test]
fn stemmer_conflates_tool_vocabulary() {
    for group in [
        &["directory", "directories"][..],
        &["create", "creating", "created", "creates"],
        &["file", "files"],
        &["delete", "deleted", "deleting", "deletion"],
        &["list", "listing", "lists"],
        &["entity", "entities"],
        &["observation", "observations", "observe"],
        &["modify", "modified", "modifies"],
    ] {
        let stems: Vec<String> = group.iter().map(|w| stem(w)).collect();
        assert!(
            stems.iter().all(|s| *s == stems[0]),
            "{group:?} → {stems:?}"
        );
    }
}

#[test]
fn stemmer_leaves_short_long_and_non_ascii_words() {
    check_stem("is", "is");
    check_stem("straße", "straße");
    check_stem("42", "42");
    let long = "y".repeat(10_000);
    check_stem(&long, &long);
}

#[test]
fn analyze_drops_stopwords_and_stems() {
    assert_eq!(
        analyze("Please show me the files in my Directories"),
        ["show", "file", "directori"]
    );
    assert_eq!(analyze("a I to of"), Vec::<String>::new());
}

#[test]
fn no_concept_word_is_a_stopword() {
    for word in CONCEPTS.iter().flat_map(|group| group.split_whitespace()) {
        assert!(
            !is_stopword(word),
            "{word:?} is both a concept and a stopword"
        );
        assert!(
            word.chars().nth(1).is_some(),
            "{word:?} is too short to be indexed"
        );
        assert_eq!(word, word.to_lowercase(), "concept words are lowercase");
    }
}

#[test]
fn synonyms_are_symmetric_and_stemmed() {
    assert!(synonyms(&stem("folder")).contains(&stem("directory")));
    assert!(synonyms(&stem("directories")).contains(&stem("folder")));
    assert!(synonyms(&stem("remove")).contains(&stem("delete")));
    assert!(!synonyms(&stem("folder")).contains(&stem("folder")));
    assert!(synonyms("zzz").is_empty());
}

/// The query's terms as `stem` or `stem*weight`, with `!` for no synonyms.
fn query_terms(query: &str) -> Vec<String> {
    analyze_query(query)
        .into_iter()
        .map(|term| {
            let mut out = term.stem;
            if term.weight != 1.0 {
                out.push_str(&format!("*{}", term.weight));
            }
            if !term.expand {
                out.push('!');
            }
            out
        })
        .collect()
}

#[test]
fn argument_shaped_chunks_stand_for_their_type() {
    assert_eq!(
        query_terms("fetch https://example.com/status/page.html now"),
        ["fetch", "url", "now"]
    );
    assert_eq!(
        query_terms("open notes/todo.md and logs/"),
        ["open", "path", "file", "text"]
    );
    assert_eq!(
        query_terms("show me cat.PNG"),
        ["show", "path", "file", "imag"]
    );
    assert_eq!(
        query_terms("find every .csv"),
        ["find", "everi", "path", "file", "text"]
    );
    assert_eq!(query_terms("meet at 14:00 or 9:30pm"), ["meet", "time"]);
    assert_eq!(query_terms("add 19.5 and 22"), ["add", "number"]);
    assert_eq!(
        query_terms("show commit a1b2c3d"),
        ["show", "commit", "hash"]
    );
    // Not shapes: a version, a word with a dot inside a sentence end.
    assert_eq!(query_terms("tag v1.0."), ["tag"]);
}

#[test]
fn capitalized_words_inside_a_sentence_are_names() {
    assert_eq!(
        query_terms("Remember that Alice works in Lisbon. Folder too"),
        ["rememb", "alic*0.5!", "work", "lisbon*0.5!", "folder"]
    );
    // Acronyms are not names.
    assert_eq!(query_terms("get raw HTML"), ["get", "raw", "html"]);
}

#[test]
fn a_negation_turns_the_next_word_into_its_opposite() {
    assert_eq!(query_terms("files not yet committed"), ["file", "uncommit"]);
    assert_eq!(query_terms("what I haven't staged"), ["unstag"]);
    assert_eq!(query_terms("no 42"), ["number"]);
}

fn tool(description: &str, params: &Value) -> Value {
    json!({
        "description": description,
        "inputSchema": {"type": "object", "properties": params},
    })
}

/// `(server, exposed name, tool)`, like [`corpus`].
type Tools = Vec<(String, String, Value)>;

/// A small hand-made catalog.
fn catalog() -> Tools {
    [
        (
            "fs",
            "read_text_file",
            tool(
                "Read the complete contents of a file as text.",
                &json!({"path": {"type": "string", "description": "Path of the file"}}),
            ),
        ),
        (
            "fs",
            "list_directory",
            tool(
                "Get a detailed listing of all files and directories in a specified path.",
                &json!({"path": {"type": "string"}}),
            ),
        ),
        (
            "fs",
            "create_directory",
            tool(
                "Create a new directory or ensure a directory exists.",
                &json!({"path": {"type": "string"}}),
            ),
        ),
        (
            "fs",
            "move_file",
            tool(
                "Move or rename files and directories.",
                &json!({"source": {"type": "string"}, "destination": {"type": "string"}}),
            ),
        ),
        (
            "git",
            "git_diff_staged",
            tool(
                "Shows changes that are staged for commit",
                &json!({"repo_path": {"type": "string"}}),
            ),
        ),
        (
            "git",
            "git_diff_unstaged",
            tool(
                "Shows changes in the working directory that are not yet staged",
                &json!({"repo_path": {"type": "string"}}),
            ),
        ),
        (
            "time",
            "convert_time",
            tool(
                "Convert time between timezones",
                &json!({
                    "source_timezone": {"type": "string", "description": "IANA timezone name"},
                    "options": {"type": "object", "properties": {
                        "format": {"type": "string", "enum": ["iso8601", "rfc2822"]}
                    }},
                }),
            ),
        ),
        (
            "weather",
            "getForecast",
            json!({"title": "Weather forecast", "description": "Forecast for a city"}),
        ),
    ]
    .into_iter()
    .map(|(server, name, tool)| (server.to_owned(), format!("{server}__{name}"), tool))
    .collect()
}

fn index(tools: &Tools) -> ToolIndex {
    ToolIndex::build(
        tools
            .iter()
            .map(|(server, name, tool)| Document { name, server, tool }),
    )
}

/// The names of the top `limit` hits.
fn top(index: &ToolIndex, query: &str, limit: usize) -> Vec<String> {
    index
        .search(query, limit)
        .iter()
        .map(|hit| index.name(hit.index).unwrap().to_owned())
        .collect()
}

#[track_caller]
fn check_first(query: &str, expect: &str) {
    let index = index(&catalog());
    let got = top(&index, query, 3);
    assert_eq!(
        got.first().map(String::as_str),
        Some(expect),
        "{query:?} → {got:?}"
    );
}

#[test]
fn ranks_by_description_name_and_params() {
    check_first("read a file", "fs__read_text_file");
    check_first("browse that folder", "fs__list_directory");
    check_first("make a new folder", "fs__create_directory");
    check_first("rename a document", "fs__move_file");
    check_first("what have I staged", "git__git_diff_staged");
    check_first("what time is it in Tokyo timezone", "time__convert_time");
    check_first("rfc2822", "time__convert_time");
    check_first("weather forecast", "weather__getForecast");
}

#[test]
fn empty_and_unknown_queries_return_nothing() {
    let index = index(&catalog());
    assert!(index.search("", 5).is_empty());
    assert!(index.search("   ", 5).is_empty());
    assert!(index.search("the of and", 5).is_empty());
    assert!(index.search("xylophone quokka", 5).is_empty());
    assert!(index.search("file", 0).is_empty());
    assert!(index.search("🦀 ∑ ünïcode", 5).is_empty());
}

#[test]
fn huge_queries_are_cut_to_a_bounded_number_of_terms() {
    let query: String = (0..20_000).map(|i| format!("word{i}x ")).collect();
    assert_eq!(analyze_query(&query).len(), MAX_QUERY_TERMS);
    let index = index(&catalog());
    assert!(index.search(&query, 5).is_empty());
}

#[test]
fn empty_index_returns_nothing() {
    let index = ToolIndex::build([]);
    assert!(index.is_empty());
    assert_eq!(index.len(), 0);
    assert!(index.search("file", 5).is_empty());
}

#[test]
fn scores_descend_and_respect_the_limit() {
    let index = index(&catalog());
    assert_eq!(index.len(), 8);
    for query in ["file directory", "git diff changes", "time", "path"] {
        let hits = index.search(query, 3);
        assert!(!hits.is_empty() && hits.len() <= 3, "{query:?}: {hits:?}");
        assert!(
            hits.windows(2).all(|w| w[0].score >= w[1].score),
            "{query:?}: {hits:?}"
        );
        assert!(hits.iter().all(|hit| hit.score > 0.0));
    }
}

#[test]
fn equal_scores_are_ordered_by_name() {
    let same = tool("Does the thing", &json!({}));
    let names = ["b__thing", "c__thing", "a__thing"];
    let index = ToolIndex::build(names.iter().map(|name| Document {
        name,
        server: &name[..1],
        tool: &same,
    }));
    let hits = index.search("thing", 10);
    assert_eq!(
        hits.iter().map(|hit| hit.index).collect::<Vec<_>>(),
        [2, 0, 1]
    );
    assert!(hits.iter().all(|hit| hit.score == hits[0].score));
    // The same query twice gives the same answer.
    assert_eq!(index.search("thing", 10), hits);
}

#[test]
fn deprecated_tools_score_half() {
    let tool = |description: &str| json!({ "description": description });
    let tools = [
        tool("Read a file. DEPRECATED."),
        tool("Read a file. Supported."),
    ];
    let index =
        ToolIndex::build(
            tools
                .iter()
                .zip(["a__old", "b__new"])
                .map(|(tool, name)| Document {
                    name,
                    server: &name[..1],
                    tool,
                }),
        );
    let hits = index.search("read file", 10);
    assert_eq!(hits[0].index, 1);
    assert_eq!(hits[1].score, hits[0].score * DEPRECATED_FACTOR);
}

/// The stem interned as `id`.
fn stem_of(ids: &HashMap<String, TermId>, id: TermId) -> &str {
    ids.iter()
        .find(|(_, other)| **other == id)
        .map(|(stem, _)| stem.as_str())
        .unwrap()
}

#[test]
fn title_words_that_restate_the_name_are_not_counted_twice() {
    let title = "Read File (Deprecated)";
    let tool = json!({"title": title, "annotations": {"title": title}});
    let mut vocabulary = Vocabulary::default();
    let fields = vocabulary.document(&Document {
        name: "fs__read_file",
        server: "fs",
        tool: &tool,
    });
    let stems = |field: Field| -> Vec<&str> {
        fields[field as usize]
            .iter()
            .map(|id| stem_of(&vocabulary.ids, *id))
            .collect()
    };
    assert_eq!(stems(Field::Name), ["read", "file"]);
    assert_eq!(stems(Field::Server), ["fs"]);
    assert_eq!(stems(Field::Title), ["deprec"]);
}

#[test]
fn server_prefix_is_not_part_of_the_name_field() {
    let index = index(&catalog());
    let name_stems = |doc: usize| -> Vec<&str> {
        let mut stems: Vec<&str> = index.name_terms[doc]
            .iter()
            .map(|id| stem_of(&index.term_ids, *id))
            .collect();
        stems.sort_unstable();
        stems
    };
    assert_eq!(name_stems(4), ["diff", "git", "stage"]);
    assert_eq!(name_stems(7), ["forecast", "get"]);
}

#[test]
fn nested_parameters_and_enums_are_indexed() {
    let index = index(&catalog());
    for term in ["format", "iso", "8601", "rfc", "2822", "iana"] {
        assert!(index.term_ids.contains_key(&stem(term)), "{term}");
    }
    assert!(!index.term_ids.contains_key("ianna"));
}

#[test]
fn deep_schemas_are_cut_off() {
    // Property names `xx`, `xxx`, `xxxx`, … one level deeper each.
    let name = |depth: usize| "x".repeat(depth + 2);
    let mut schema = json!({"type": "string"});
    for depth in (0..50).rev() {
        schema = json!({"type": "object", "properties": {name(depth): schema}});
    }
    let tool = json!({"description": "nested", "inputSchema": schema});
    let index = ToolIndex::build([Document {
        name: "nested",
        server: "s",
        tool: &tool,
    }]);
    for depth in 0..MAX_SCHEMA_DEPTH {
        assert!(index.term_ids.contains_key(&name(depth)), "depth {depth}");
    }
    assert!(!index.term_ids.contains_key(&name(MAX_SCHEMA_DEPTH)));
}

// The quality gate on the captured corpus of real servers.

const CORPUS_SERVERS: [&str; 6] = ["everything", "filesystem", "memory", "git", "time", "fetch"];

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/corpus")
}

/// `(server, exposed name, tool)` for every tool of the corpus.
fn corpus() -> Tools {
    let mut tools = Vec::new();
    for server in CORPUS_SERVERS {
        let path = corpus_dir().join(format!("{server}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        let file: Value = serde_json::from_str(&text).unwrap();
        let list = file["tools"].as_array().expect("a tools array");
        for tool in list {
            let name = tool["name"].as_str().expect("a tool name");
            tools.push((server.to_owned(), format!("{server}__{name}"), tool.clone()));
        }
    }
    tools
}

/// `(expected exposed name, request)` per line of a query file.
fn queries(file: &str) -> Vec<(String, String)> {
    let path = corpus_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (name, request) = line
                .split_once('|')
                .unwrap_or_else(|| panic!("not `name | request`: {line:?}"));
            (name.trim().to_owned(), request.trim().to_owned())
        })
        .collect()
}

/// Top-1 and top-3 hit rates of `file`'s queries over the corpus, after
/// checking that every expected tool exists; prints the misses.
#[allow(
    clippy::print_stderr,
    reason = "the table of misses is the test's report"
)]
fn hit_rates(file: &str, min_queries: usize) -> (f64, f64) {
    let corpus = corpus();
    let queries = queries(file);
    let index = index(&corpus);
    let unknown: Vec<&str> = queries
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !corpus.iter().any(|(_, exposed, _)| exposed == name))
        .collect();
    assert!(
        unknown.is_empty(),
        "{file} names tools the corpus lacks: {unknown:?}"
    );
    assert!(
        queries.len() >= min_queries,
        "only {} queries",
        queries.len()
    );

    let (mut top1, mut top3) = (0, 0);
    let mut misses = Vec::new();
    for (expect, request) in &queries {
        let got = top(&index, request, 3);
        let rank = got.iter().position(|name| name == expect);
        top1 += usize::from(rank == Some(0));
        top3 += usize::from(rank.is_some());
        if rank != Some(0) {
            misses.push((request, expect, rank, got));
        }
    }
    let n = queries.len() as f64;
    let (top1_rate, top3_rate) = (top1 as f64 / n, top3 as f64 / n);
    eprintln!(
        "{file}: {} tools, {} queries: top-1 {top1}/{} = {top1_rate:.3}, top-3 {top3}/{} = {top3_rate:.3}",
        index.len(),
        queries.len(),
        queries.len(),
        queries.len(),
    );
    eprintln!("not first (rank: 2, 3 or - for outside the top 3):");
    for (request, expect, rank, got) in &misses {
        let rank = rank.map_or("-".to_owned(), |rank| (rank + 1).to_string());
        eprintln!("  [{rank}] {request:?}\n      expected {expect}, got {got:?}");
    }
    (top1_rate, top3_rate)
}

/// The quality gate of issue 7: the intended tool in the top 3 for at least
/// 90 % of `queries.txt`.
#[test]
fn search_quality_on_corpus() {
    let (_, top3_rate) = hit_rates("queries.txt", 70);
    assert!(top3_rate >= 0.90, "top-3 rate {top3_rate:.3} < 0.90");
}

/// The same measure on `queries-holdout.txt`, written without sight of the
/// ranker or of `queries.txt` and never tuned against: how the ranker does
/// on requests it was not shaped by.
#[test]
fn search_quality_on_held_out_queries() {
    let (_, top3_rate) = hit_rates("queries-holdout.txt", 40);
    // A regression floor at the level measured when the set was written
    // (0.820 top-3, 0.689 top-1, docs/context.md), not the goal.
    assert!(top3_rate >= 0.80, "top-3 rate {top3_rate:.3} < 0.80");
}
