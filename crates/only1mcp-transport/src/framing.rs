//! Newline-delimited framing with a size cap.
//!
//! MCP over stdio is one JSON-RPC message per line. [`LineReader`] reads lines
//! of at most `max` bytes; a longer line is skipped up to its newline and
//! reported as [`Line::TooLong`], so one oversized message costs an error
//! reply, not the connection. Bytes are not checked for UTF-8 here: the JSON
//! parser reports bad input as a parse error.
//!
//! Of a skipped line, [`EnvelopeScan`] reads the top-level `id` and whether
//! there is a top-level `method` while the bytes pass by, so the call an
//! oversized answer belongs to can fail at once instead of waiting out its
//! timeout. The members may come in any order (the TypeScript SDK writes
//! `result` before `id`), so the whole line is scanned; nothing of it is kept
//! but the `id`'s few bytes.
//!
//! [`LogLines`] reads a backend's stderr: lines of at most `max` bytes, the
//! rest of a longer line discarded as it is read, never an error for bytes
//! that are not UTF-8.

use only1mcp_core::jsonrpc::Id;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

/// What [`LineReader::next_line`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// One line without its `\n` (and without a trailing `\r`).
    Data(Vec<u8>),
    /// A line longer than the cap; its bytes were discarded.
    TooLong {
        /// How many bytes the line had.
        len: usize,
        /// Its top-level `id`, if it is a JSON object with a usable one.
        id: Option<Id>,
        /// Whether it has a top-level `method` (a request or notification,
        /// not a response).
        method: bool,
    },
}

/// A kept prefix larger than this is scanned on a blocking thread (as
/// frames are parsed, `correlate::PARSE_ELSEWHERE`): scanning 64 MiB takes
/// tens of milliseconds the runtime thread spends on other work meanwhile.
const SCAN_ELSEWHERE: usize = 256 << 10;

/// Reads capped lines from a buffered reader.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: R,
    max: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    /// A reader of lines of at most `max` bytes.
    pub fn new(reader: R, max: usize) -> Self {
        Self { reader, max }
    }

    /// The next line, or `None` at end of input. Empty lines are skipped.
    pub async fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        let mut len = 0usize;
        // Set once the line is over the cap: what is kept of it instead.
        let mut scan: Option<EnvelopeScan> = None;
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // End of input: a last line without a newline still counts.
                return Ok(finish(line, len, self.max, scan));
            }
            let (chunk, found) = match memchr::memchr(b'\n', available) {
                Some(idx) => (&available[..idx], Some(idx)),
                None => (available, None),
            };
            len += chunk.len();
            if len <= self.max {
                line.extend_from_slice(chunk);
            } else {
                // Over the cap: stop keeping bytes, scan them as they pass.
                let scan = match &mut scan {
                    Some(scan) => scan,
                    None => scan.insert(EnvelopeScan::of(std::mem::take(&mut line)).await),
                };
                scan.feed(chunk);
            }
            let consumed = found.map_or(chunk.len(), |idx| idx + 1);
            self.reader.consume(consumed);
            if found.is_some() {
                match finish(std::mem::take(&mut line), len, self.max, scan.take()) {
                    Some(Line::Data(data)) if data.is_empty() => len = 0,
                    Some(result) => return Ok(Some(result)),
                    None => len = 0,
                }
            }
        }
    }
}

fn finish(mut line: Vec<u8>, len: usize, max: usize, scan: Option<EnvelopeScan>) -> Option<Line> {
    if len > max {
        let scan = scan.unwrap_or_default();
        return Some(Line::TooLong {
            len,
            id: scan.id(),
            method: scan.method(),
        });
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.is_empty() && len == 0 {
        return None;
    }
    Some(Line::Data(line))
}

/// The most bytes of a top-level `id` value kept; a longer one is not used.
const MAX_ID_BYTES: usize = 128;

/// Reads the envelope of one JSON object fed in pieces: its top-level `id`
/// and whether it has a top-level `method`, wherever they stand among its
/// members, keeping nothing else. Input that is not a JSON object yields
/// neither. It tracks strings, escapes and nesting only; it does not
/// validate the JSON.
#[derive(Debug, Default)]
pub struct EnvelopeScan {
    /// Nesting depth: 1 inside the top-level object.
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// At depth 1, the next string is a key (after `{` or `,`).
    expect_key: bool,
    /// Reading a top-level key into `key`.
    reading_key: bool,
    /// The first bytes of the last top-level key, and its full length.
    key: [u8; 8],
    key_len: usize,
    /// Inside the value of the first top-level `id`.
    capturing: bool,
    /// That value's bytes (at most [`MAX_ID_BYTES`] + 1).
    id: Vec<u8>,
    /// The `id` value ended (at `,` or `}` at depth 1).
    id_done: bool,
    method: bool,
    /// The top-level object closed, or the input is not an object.
    finished: bool,
}

impl EnvelopeScan {
    /// A scan that has seen `prefix`, on a blocking thread if it is large.
    async fn of(prefix: Vec<u8>) -> Self {
        if prefix.len() > SCAN_ELSEWHERE {
            let scanned = tokio::task::spawn_blocking(move || {
                let mut scan = Self::default();
                scan.feed(&prefix);
                scan
            })
            .await;
            // Only a runtime shutting down cancels it: then nothing is known.
            return scanned.unwrap_or_else(|_| Self {
                finished: true,
                ..Self::default()
            });
        }
        let mut scan = Self::default();
        scan.feed(&prefix);
        scan
    }

    /// Scans the next bytes of the object.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !self.finished && !bytes.is_empty() {
            if self.in_string && !self.reading_key && !self.capturing && !self.escaped {
                // The bulk of a large message: skip to the string's end.
                match memchr::memchr2(b'"', b'\\', bytes) {
                    Some(idx) => bytes = &bytes[idx..],
                    None => return,
                }
            } else if !self.in_string && self.depth >= 2 && !self.capturing {
                // Nested values: only brackets and strings matter.
                match bytes
                    .iter()
                    .position(|b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))
                {
                    Some(idx) => bytes = &bytes[idx..],
                    None => return,
                }
            }
            self.step(bytes[0]);
            bytes = &bytes[1..];
        }
    }

    fn step(&mut self, byte: u8) {
        let ends_value = self.depth == 1 && !self.in_string && matches!(byte, b',' | b'}');
        let blank = !self.in_string && byte.is_ascii_whitespace();
        if self.capturing && !ends_value && !blank && self.id.len() <= MAX_ID_BYTES {
            self.id.push(byte);
        }
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                self.reading_key = false;
                return;
            }
            if self.reading_key {
                if let Some(slot) = self.key.get_mut(self.key_len) {
                    *slot = byte;
                }
                self.key_len += 1;
            }
            return;
        }
        match (self.depth, byte) {
            (_, b' ' | b'\t' | b'\r' | b'\n') => {}
            (0, b'{') => {
                self.depth = 1;
                self.expect_key = true;
            }
            (0, _) => self.finished = true,
            (1, b'"') => {
                self.in_string = true;
                if self.expect_key {
                    self.expect_key = false;
                    self.reading_key = true;
                    self.key_len = 0;
                }
            }
            (1, b':') => match self.key() {
                Some(b"id") if !self.id_done && !self.capturing => self.capturing = true,
                Some(b"method") => self.method = true,
                _ => {}
            },
            (1, b',' | b'}') => {
                if self.capturing {
                    self.capturing = false;
                    self.id_done = true;
                }
                self.expect_key = true;
                if byte == b'}' {
                    self.depth = 0;
                    self.finished = true;
                }
            }
            (_, b'{' | b'[') => self.depth = self.depth.saturating_add(1),
            (_, b'}' | b']') => self.depth -= 1,
            (_, b'"') => self.in_string = true,
            _ => {}
        }
    }

    /// The last top-level key read, if short enough to be one we look for.
    fn key(&self) -> Option<&[u8]> {
        self.key.get(..self.key_len)
    }

    /// The top-level `id`, if its value ended and is a number or string.
    pub fn id(&self) -> Option<Id> {
        if !self.id_done || self.id.len() > MAX_ID_BYTES {
            return None;
        }
        serde_json::from_slice(&self.id).ok()
    }

    /// Whether the object has a top-level `method` member.
    pub fn method(&self) -> bool {
        self.method
    }
}

/// Reads lines for logging (a backend's stderr): at most `max` bytes of a
/// line are kept; a longer line is returned cut at `max` as soon as that
/// much has arrived, and the rest of it is discarded as it is read, never
/// buffered. Bytes are not checked for UTF-8; empty lines are skipped.
#[derive(Debug)]
pub struct LogLines<R> {
    reader: R,
    max: usize,
    line: Vec<u8>,
    /// Discarding the rest of a line that was cut.
    skipping: bool,
}

impl<R: AsyncBufRead + Unpin> LogLines<R> {
    /// A reader of log lines of at most `max` bytes (at least 1).
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            max: max.max(1),
            line: Vec::new(),
            skipping: false,
        }
    }

    /// The next line and whether it was cut, or `None` at end of input.
    pub async fn next_line(&mut self) -> std::io::Result<Option<(&[u8], bool)>> {
        self.line.clear();
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // End of input: a last line without a newline still counts.
                return Ok((!self.line.is_empty()).then_some((&self.line[..], false)));
            }
            let newline = memchr::memchr(b'\n', available);
            if self.skipping {
                match newline {
                    Some(idx) => {
                        self.reader.consume(idx + 1);
                        self.skipping = false;
                    }
                    None => {
                        let n = available.len();
                        self.reader.consume(n);
                    }
                }
                continue;
            }
            let chunk = &available[..newline.unwrap_or(available.len())];
            let room = self.max - self.line.len();
            if chunk.len() > room {
                self.line.extend_from_slice(&chunk[..room]);
                self.reader.consume(room);
                self.skipping = true;
                return Ok(Some((&self.line[..], true)));
            }
            self.line.extend_from_slice(chunk);
            let n = chunk.len();
            match newline {
                Some(_) => {
                    self.reader.consume(n + 1);
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    if !self.line.is_empty() {
                        return Ok(Some((&self.line[..], false)));
                    }
                }
                None => self.reader.consume(n),
            }
        }
    }
}

/// Writes every queued message: the first one given, then whatever else is
/// already waiting on `rx` (at most 64 KiB more), each followed by a newline,
/// with one write and one flush. Batching saves a syscall and a wake-up of
/// the reader per message under load; a lone message costs the same as
/// before. Returns how many messages it wrote.
pub async fn write_batch<W: AsyncWrite + Unpin>(
    writer: &mut W,
    first: Vec<u8>,
    rx: &mut tokio::sync::mpsc::Receiver<Vec<u8>>,
    buffer: &mut Vec<u8>,
) -> std::io::Result<usize> {
    const BATCH: usize = 64 * 1024;
    buffer.clear();
    buffer.extend_from_slice(&first);
    buffer.push(b'\n');
    let mut count = 1;
    while buffer.len() < BATCH {
        match rx.try_recv() {
            Ok(line) => {
                buffer.extend_from_slice(&line);
                buffer.push(b'\n');
                count += 1;
            }
            Err(_) => break,
        }
    }
    writer.write_all(buffer).await?;
    writer.flush().await?;
    Ok(count)
}

/// Writes one message and a newline, then flushes.
pub async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, line: &[u8]) -> std::io::Result<()> {
    debug_assert!(!line.contains(&b'\n'), "a frame must not contain a newline");
    writer.write_all(line).await?;
    writer.write_all(b"\n").await?;
    writer.flush().await
}

#[cfg(test)]
mod tests;
