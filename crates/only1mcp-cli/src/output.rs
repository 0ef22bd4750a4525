//! Everything the CLI prints: tables for people, JSON for scripts.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "this module is the CLI's output: printing is its job"
)]

/// Prints a line to stdout.
pub(crate) fn line(text: &str) {
    println!("{text}");
}

/// Writes bytes as they are to stdout (a generated script or page).
pub(crate) fn raw(bytes: &[u8]) -> std::process::ExitCode {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            error(&format!("cannot write to stdout: {e}"));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Prints an error to stderr.
pub(crate) fn error(text: &str) {
    eprintln!("error: {text}");
}

/// Prints a note to stderr (kept off stdout, which may carry MCP).
pub(crate) fn note(text: &str) {
    eprintln!("{text}");
}

/// Prints a value as pretty JSON on stdout.
pub(crate) fn json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Renders rows as a left-aligned table with a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (idx, cell) in row.iter().enumerate() {
            widths[idx] = widths[idx].max(cell.chars().count());
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (idx, cell) in cells.enumerate() {
            if idx > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            let pad = widths[idx].saturating_sub(cell.chars().count());
            out.extend(std::iter::repeat_n(' ', pad));
        }
        out.trim_end().to_owned()
    };
    let mut out = render(&mut header.iter().copied());
    out.push('\n');
    for row in rows {
        out.push_str(&render(&mut row.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}
