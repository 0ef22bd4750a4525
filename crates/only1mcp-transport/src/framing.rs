//! Newline-delimited framing with a size cap.
//!
//! MCP over stdio is one JSON-RPC message per line. [`LineReader`] reads lines
//! of at most `max` bytes; a longer line is skipped up to its newline and
//! reported as [`Line::TooLong`], so one oversized message costs an error
//! reply, not the connection. Bytes are not checked for UTF-8 here: the JSON
//! parser reports bad input as a parse error.

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
    },
}

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
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                // End of input: a last line without a newline still counts.
                return Ok(finish(line, len, self.max));
            }
            let (chunk, found) = match memchr::memchr(b'\n', available) {
                Some(idx) => (&available[..idx], Some(idx)),
                None => (available, None),
            };
            len += chunk.len();
            if len <= self.max {
                line.extend_from_slice(chunk);
            } else if !line.is_empty() {
                // Over the cap: stop keeping bytes, keep counting.
                line = Vec::new();
            }
            let consumed = found.map_or(chunk.len(), |idx| idx + 1);
            self.reader.consume(consumed);
            if found.is_some() {
                match finish(line, len, self.max) {
                    Some(Line::Data(data)) if data.is_empty() => {
                        line = Vec::new();
                        len = 0;
                    }
                    Some(result) => return Ok(Some(result)),
                    None => {
                        line = Vec::new();
                        len = 0;
                    }
                }
            }
        }
    }
}

fn finish(mut line: Vec<u8>, len: usize, max: usize) -> Option<Line> {
    if len > max {
        return Some(Line::TooLong { len });
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.is_empty() && len == 0 {
        return None;
    }
    Some(Line::Data(line))
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
mod tests {
    use super::*;

    async fn read_all(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some(line) = reader.next_line().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn splits_lines_across_buffer_boundaries() {
        assert_eq!(
            read_all(b"hello\nworld!\r\n\nlast", 100).await,
            vec![
                Line::Data(b"hello".to_vec()),
                Line::Data(b"world!".to_vec()),
                Line::Data(b"last".to_vec()),
            ]
        );
    }

    #[tokio::test]
    async fn an_oversized_line_is_skipped_and_reading_goes_on() {
        assert_eq!(
            read_all(b"ok\n0123456789abc\nnext\n", 8).await,
            vec![
                Line::Data(b"ok".to_vec()),
                Line::TooLong { len: 13 },
                Line::Data(b"next".to_vec()),
            ]
        );
    }
}
