//! The fourth rule of `cargo xtask check-deps`: **no import circles** between the top-level
//! modules of a crate.
//!
//! A file's top-level module is the first component of its path under `src/` (`src/gateway.rs`
//! and `src/gateway/reload.rs` are both `gateway`); the crate roots (`lib.rs`, `main.rs`) and
//! `src/bin/` (crates of their own) are not modules of the graph. Module `a` depends on module
//! `b` when code in `a` names a `crate::b…` path: `use crate::b::X`, a grouped
//! `use crate::{b::X, c}` (one edge per member), or a path in an expression. A path to an item
//! the crate root re-exports (`crate::Gateway`, from `pub use gateway::Gateway;` in `lib.rs`)
//! counts as a path to the module it comes from. `$crate::b` counts, and so does `super::b`
//! when it climbs to the crate root (one `super` in `src/a.rs`, two in `src/a/x.rs`; an inline
//! `mod` other than a test module is not counted as a level). Comments, string and character literals,
//! `#[cfg(test)]` modules and `use`s, and `tests.rs` files (and files under a `tests/`
//! folder) are not read: tests may reach across.
//!
//! The graph must have no cycle; each strongly connected part is reported as its shortest
//! circle, with the file and line of each edge of it.

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};

/// One source file of a crate: its path under `src/` and its text.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub(super) path: PathBuf,
    pub(super) text: String,
}

/// Reads every `.rs` file under `src`, in path order.
pub(super) fn read_tree(src: &Path) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot read the directory {}", dir.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read the directory {}", dir.display()))?
                .path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let path = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
                sources.push(Source { path, text });
            }
        }
    }
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(sources)
}

/// Where an edge was seen first: the file (under `src/`) and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Site {
    path: PathBuf,
    line: usize,
}

/// The top-level modules of one crate and the paths between them.
#[derive(Debug, Default)]
pub(super) struct ModuleGraph {
    edges: BTreeMap<String, BTreeMap<String, Site>>,
}

impl ModuleGraph {
    /// The graph of `sources` (one crate's `src/`).
    pub(super) fn new(sources: &[Source]) -> Self {
        let modules: BTreeSet<String> =
            sources.iter().filter_map(|s| top_module(&s.path)).collect();
        // Items the crate root re-exports, by the name they have there.
        let root = sources
            .iter()
            .find(|s| s.path == Path::new("lib.rs"))
            .or_else(|| sources.iter().find(|s| s.path == Path::new("main.rs")));
        let reexports = root.map_or_else(BTreeMap::new, |root| {
            root_reexports(&without_tests(&code_only(&root.text)), &modules)
        });
        let mut graph = Self::default();
        for source in sources {
            let Some(from) = top_module(&source.path) else {
                continue;
            };
            // Unit tests in files of their own: `tests.rs`, or anything under a `tests/`.
            if source
                .path
                .components()
                .any(|part| part.as_os_str() == "tests" || part.as_os_str() == "tests.rs")
            {
                continue;
            }
            let code = without_tests(&code_only(&source.text));
            for (offset, first) in root_paths(&code, depth(&source.path)) {
                let to = if modules.contains(&first) {
                    first
                } else if let Some(module) = reexports.get(&first) {
                    module.clone()
                } else {
                    continue;
                };
                if to == from {
                    continue;
                }
                let line = code[..offset].matches('\n').count() + 1;
                graph
                    .edges
                    .entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_insert_with(|| Site {
                        path: source.path.clone(),
                        line,
                    });
            }
        }
        graph
    }

    /// One circle per strongly connected part of the graph (its shortest through its first
    /// module), each as `a -> b -> a` followed by where each edge is, in module order.
    pub(super) fn circles(&self) -> Vec<String> {
        let mut circles = Vec::new();
        for part in self.strongly_connected() {
            let Some(start) = part.first() else { continue };
            let Some(path) = self.shortest_circle(start, &part) else {
                continue;
            };
            let sites = path
                .windows(2)
                .map(|pair| {
                    let site = &self.edges[&pair[0]][&pair[1]];
                    format!(
                        "src/{}:{} names crate::{}",
                        site.path.display(),
                        site.line,
                        pair[1]
                    )
                })
                .collect::<Vec<_>>();
            circles.push(format!("{} ({})", path.join(" -> "), sites.join("; ")));
        }
        circles
    }

    /// The modules `module` depends on.
    fn targets<'g>(&'g self, module: &str) -> impl DoubleEndedIterator<Item = &'g String> {
        self.edges.get(module).into_iter().flat_map(BTreeMap::keys)
    }

    /// The strongly connected parts of more than one module, each sorted, in order
    /// (Tarjan's algorithm, iterative).
    fn strongly_connected(&self) -> Vec<Vec<String>> {
        let nodes: BTreeSet<&String> = self
            .edges
            .iter()
            .flat_map(|(from, to)| std::iter::once(from).chain(to.keys()))
            .collect();
        let mut index: BTreeMap<&String, usize> = BTreeMap::new();
        let mut low: BTreeMap<&String, usize> = BTreeMap::new();
        let mut stack: Vec<&String> = Vec::new();
        let mut on_stack: BTreeSet<&String> = BTreeSet::new();
        let mut parts = Vec::new();
        for &root in &nodes {
            if index.contains_key(root) {
                continue;
            }
            // Each frame: a node and the targets of it still to visit.
            let mut frames: Vec<(&String, Vec<&String>)> = Vec::new();
            let mut enter = Some(root);
            loop {
                if let Some(node) = enter.take() {
                    index.insert(node, index.len());
                    low.insert(node, index[node]);
                    stack.push(node);
                    on_stack.insert(node);
                    frames.push((node, self.targets(node).rev().collect()));
                }
                let Some((node, pending)) = frames.last_mut() else {
                    break;
                };
                let node = *node;
                if let Some(next) = pending.pop() {
                    if !index.contains_key(next) {
                        enter = Some(next);
                    } else if on_stack.contains(next) {
                        let lowest = low[node].min(index[next]);
                        low.insert(node, lowest);
                    }
                    continue;
                }
                frames.pop();
                if let Some((parent, _)) = frames.last() {
                    let lowest = low[parent].min(low[node]);
                    low.insert(parent, lowest);
                }
                if low[node] == index[node] {
                    let mut part = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack.remove(member);
                        part.push(member.clone());
                        if member == node {
                            break;
                        }
                    }
                    if part.len() > 1 {
                        part.sort();
                        parts.push(part);
                    }
                }
            }
        }
        parts.sort();
        parts
    }

    /// The shortest path from `start` back to itself inside `part` (breadth first, targets in
    /// order): `[start, …, start]`.
    fn shortest_circle(&self, start: &String, part: &[String]) -> Option<Vec<String>> {
        let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for next in self.targets(node) {
                if !part.contains(next) {
                    continue;
                }
                if next == start {
                    let mut path = vec![start.clone(), node.clone()];
                    let mut at = node;
                    while let Some(&up) = parent.get(at) {
                        path.push(up.clone());
                        at = up;
                    }
                    path.reverse();
                    return Some(path);
                }
                if next != start && !parent.contains_key(next) {
                    parent.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        None
    }
}

/// The top-level module of a file under `src/`; `None` for the crate roots and `src/bin/`.
fn top_module(path: &Path) -> Option<String> {
    let mut components = path.components();
    let first = components.next()?.as_os_str().to_str()?;
    let is_file = components.next().is_none();
    match (first, is_file) {
        ("lib.rs" | "main.rs", true) | ("bin", false) => None,
        (file, true) => file.strip_suffix(".rs").map(str::to_owned),
        (dir, false) => Some(dir.to_owned()),
    }
}

/// `text` with comments and the contents of string and character literals blanked out
/// (newlines kept, so lines and offsets stay as they were).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let ident_before = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r'))) && !ident_before && {
            let after_r = if c == 'r' { i + 1 } else { i + 2 };
            let hashes = chars[after_r..].iter().take_while(|&&h| h == '#').count();
            chars.get(after_r + hashes) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let after_r = if c == 'r' { i + 1 } else { i + 2 };
            let hashes = chars[after_r..].iter().take_while(|&&h| h == '#').count();
            let body = after_r + hashes + 1;
            out.extend(std::iter::repeat_n(' ', body - i));
            i = body;
            while i < chars.len() {
                if chars[i] == '"'
                    && chars[i + 1..].iter().take_while(|&&h| h == '#').count() >= hashes
                {
                    out.extend(std::iter::repeat_n(' ', hashes + 1));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => {
                        out.push(' ');
                        if let Some(&escaped) = chars.get(i + 1) {
                            out.push(blank(escaped));
                        }
                        i += 2;
                    }
                    '"' => {
                        out.push(' ');
                        i += 1;
                        break;
                    }
                    other => {
                        out.push(blank(other));
                        i += 1;
                    }
                }
            }
        } else if c == '\'' && next == Some('\\') {
            // An escaped character literal: '\n', '\'', '\u{7f}'.
            let end = chars[i + 2..]
                .iter()
                .skip(1)
                .position(|&q| q == '\'')
                .map_or(chars.len(), |at| i + 3 + at + 1);
            out.extend(std::iter::repeat_n(' ', end - i));
            i = end;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A character literal: '{', '"'. (A lifetime has no closing quote.)
            out.push_str("   ");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `code` (already [`code_only`]) with each `#[cfg(test)]` module body and `use` blanked out.
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(at) = code[from..].find("#[cfg(test)]").map(|at| from + at) {
        from = at + "#[cfg(test)]".len();
        let mut rest = skip_attributes(code, from);
        if let Some(after) = code[rest..].strip_prefix("pub") {
            // `pub mod`, `pub(crate) mod`
            rest = code.len() - after.len();
            if code[rest..].starts_with('(') {
                rest += code[rest..].find(')').map_or(0, |close| close + 1);
            }
            rest = skip_space(code, rest);
        }
        let end = if keyword_at(code, rest, "mod") {
            match code[rest..].find(['{', ';']).map(|at| rest + at) {
                Some(open) if code[open..].starts_with('{') => matching_brace(code, open),
                Some(semi) => semi + 1,
                None => code.len(),
            }
        } else if keyword_at(code, rest, "use") {
            code[rest..]
                .find(';')
                .map_or(code.len(), |semi| rest + semi + 1)
        } else {
            continue;
        };
        blank_range(&mut out, at, end);
        from = end;
    }
    out
}

/// The offset after the `#[…]` attributes and whitespace at `from`.
fn skip_attributes(code: &str, from: usize) -> usize {
    let mut at = skip_space(code, from);
    while code[at..].starts_with("#[") {
        at = matching_bracket(code, at + 1, '[', ']');
        at = skip_space(code, at);
    }
    at
}

fn skip_space(code: &str, from: usize) -> usize {
    from + code[from..].len() - code[from..].trim_start().len()
}

/// Whether `keyword` starts at `at`, as a whole word.
fn keyword_at(code: &str, at: usize, keyword: &str) -> bool {
    code[at..].starts_with(keyword)
        && !code[at + keyword.len()..]
            .chars()
            .next()
            .is_some_and(is_ident)
}

/// The offset after the brace that closes the one at `open`.
fn matching_brace(code: &str, open: usize) -> usize {
    matching_bracket(code, open, '{', '}')
}

/// The offset after the `close` that matches the `open` at `at`.
fn matching_bracket(code: &str, at: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    for (offset, c) in code[at..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return at + offset + c.len_utf8();
            }
        }
    }
    code.len()
}

/// Blanks `out[from..to]` (ASCII spaces for every byte but newlines).
fn blank_range(out: &mut String, from: usize, to: usize) {
    let blanked: String = out[from..to]
        .chars()
        .map(|c| {
            if c == '\n' {
                "\n".to_owned()
            } else {
                " ".repeat(c.len_utf8())
            }
        })
        .collect();
    out.replace_range(from..to, &blanked);
}

/// Each path in `code` that starts at the crate root: its offset and its first component (one
/// per member of a grouped `crate::{a::X, b}`). `crate::a`, `$crate::a`, and `super::a` with
/// as many `super`s as the file is deep (`depth`: 1 for `src/x.rs` and `src/x/mod.rs`).
fn root_paths(code: &str, depth: usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(c) = code[at..].chars().next() {
        if !is_ident(c) {
            at += c.len_utf8();
            continue;
        }
        let start = at;
        at += code[at..]
            .find(|c: char| !is_ident(c))
            .unwrap_or(code.len() - at);
        // A segment inside a path (`a::crate` is not one; `self::super` is left alone).
        if code[..start].trim_end().ends_with("::") {
            continue;
        }
        let next = match &code[start..at] {
            "crate" => after_separator(code, at),
            "super" => {
                let mut ups = 1;
                let mut next = None;
                while let Some(segment) = after_separator(code, at) {
                    if keyword_at(code, segment, "super") {
                        ups += 1;
                        at = segment + "super".len();
                        continue;
                    }
                    next = (ups == depth).then_some(segment);
                    break;
                }
                next
            }
            _ => None,
        };
        let Some(next) = next else { continue };
        if code[next..].starts_with('{') {
            let end = matching_brace(code, next);
            for (offset, first) in group_members(&code[next + 1..end.saturating_sub(1)]) {
                found.push((next + 1 + offset, first));
            }
        } else if let Some(first) = ident_at(code, next) {
            found.push((start, first.to_owned()));
        }
    }
    found
}

/// The offset of the segment after the `::` at `at` (whitespace allowed around it), if a `::`
/// is there.
fn after_separator(code: &str, at: usize) -> Option<usize> {
    let at = skip_space(code, at);
    code[at..]
        .starts_with("::")
        .then(|| skip_space(code, at + 2))
}

/// How deep the module of a file under `src/` is: 1 for `x.rs` and `x/mod.rs`, 2 for
/// `x/y.rs`, …
fn depth(path: &Path) -> usize {
    let n = path.components().count();
    if path.file_name().is_some_and(|name| name == "mod.rs") {
        n - 1
    } else {
        n
    }
}

/// The first component of each member of a use group's inside (`a::X, b::{c, d}, self`):
/// `a` and `b`, with their offsets; `self` and globs are skipped.
fn group_members(inside: &str) -> Vec<(usize, String)> {
    let mut members = Vec::new();
    let mut depth = 0usize;
    let mut start = true;
    for (offset, c) in inside.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                start = false;
                if depth == 0
                    && let Some(first) = ident_at(inside, offset)
                    && first != "self"
                {
                    members.push((offset, first.to_owned()));
                }
            }
            _ => {}
        }
    }
    members
}

/// The identifier that starts at `at`, if one does.
fn ident_at(code: &str, at: usize) -> Option<&str> {
    let rest = &code[at..];
    let len = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
    let ident = &rest[..len];
    (!ident.is_empty() && !ident.starts_with(|c: char| c.is_ascii_digit())).then_some(ident)
}

/// The names the crate root's `use`s bring in (`pub use gateway::Gateway;`,
/// `pub use error::{Error, Result as R};`), each with the top-level module it comes from.
fn root_reexports(code: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("use").map(|at| from + at) {
        from = at + "use".len();
        if code[..at].chars().next_back().is_some_and(is_ident) || !keyword_at(code, at, "use") {
            continue;
        }
        let Some(end) = code[from..].find(';').map(|semi| from + semi) else {
            break;
        };
        let tokens = tokens(&code[from..end]);
        let mut leaves = Vec::new();
        use_tree(&tokens, &mut 0, &[], &mut leaves);
        for (first, name) in leaves {
            if modules.contains(first) {
                names.insert(name.to_owned(), first.to_owned());
            }
        }
        from = end;
    }
    names
}

/// The tokens of a use tree: identifiers, `::` and single punctuation characters.
fn tokens(tree: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < tree.len() {
        let rest = &tree[at..];
        let Some(c) = rest.chars().next() else { break };
        let len = if c.is_whitespace() {
            at += c.len_utf8();
            continue;
        } else if rest.starts_with("::") {
            2
        } else if is_ident(c) {
            rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        tokens.push(&rest[..len]);
        at += len;
    }
    tokens
}

/// Reads one use tree from `tokens` at `at`, after the path `prefix`, and adds each name it
/// brings into scope with the first component of its path (`crate::`, `self::` and a leading
/// `::` skipped). Globs bring none that can be named here.
fn use_tree<'t>(
    tokens: &[&'t str],
    at: &mut usize,
    prefix: &[&'t str],
    leaves: &mut Vec<(&'t str, &'t str)>,
) {
    let mut path = prefix.to_vec();
    loop {
        match tokens.get(*at).copied() {
            Some("{") => {
                *at += 1;
                while *at < tokens.len() {
                    if tokens[*at] == "}" {
                        *at += 1;
                        return;
                    }
                    let before = *at;
                    use_tree(tokens, at, &path, leaves);
                    match tokens.get(*at).copied() {
                        Some(",") => *at += 1,
                        Some("}") => {}
                        _ if *at == before => return,
                        _ => {}
                    }
                }
                return;
            }
            Some("::") => *at += 1,
            Some(token) if token.starts_with(is_ident) => {
                *at += 1;
                if !(path.is_empty() && matches!(token, "crate" | "self")) {
                    path.push(token);
                }
                if tokens.get(*at) == Some(&"::") {
                    continue;
                }
                let name = if tokens.get(*at) == Some(&"as") {
                    *at += 1;
                    let alias = tokens.get(*at).copied();
                    *at += 1;
                    alias
                } else if token == "self" {
                    path.iter().rev().nth(1).copied()
                } else {
                    Some(token)
                };
                if let (Some(first), Some(name)) = (path.first().copied(), name)
                    && name != "_"
                {
                    leaves.push((first, name));
                }
                return;
            }
            // A glob, or something this reader does not know.
            _ => {
                *at += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
