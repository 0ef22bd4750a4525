//! A decoder for `text/event-stream` (server-sent events), as the MCP HTTP
//! transports use it.
//!
//! [`Decoder`] is fed the body in chunks of any size and yields complete
//! [`Event`]s, following the WHATWG parsing rules: lines end in CRLF, LF or
//! CR (also when split across chunks); `:` starts a comment; `data` lines
//! are joined with `\n`; an `id` sets the last event id even on an event
//! without data (the MCP "priming" event), and `retry` sets the reconnection
//! delay. Events with empty data are not dispatched, but their id and retry
//! are kept: [`Decoder::last_event_id`] and [`Decoder::retry`] are what a
//! client resumes with. An event larger than the cap is dropped, not
//! buffered.

use std::time::Duration;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event type (`message` unless the server named another).
    pub event: String,
    /// The data lines, joined with `\n`; never empty.
    pub data: String,
    /// The last event id when this event was dispatched.
    pub id: Option<String>,
}

/// An incremental `text/event-stream` parser.
#[derive(Debug)]
pub struct Decoder {
    max_event: usize,
    line: Vec<u8>,
    line_too_long: bool,
    after_cr: bool,
    at_start: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    oversized: bool,
    last_event_id: Option<String>,
    retry: Option<Duration>,
}

impl Decoder {
    /// A decoder that drops events whose data exceeds `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Self {
            max_event,
            line: Vec::new(),
            line_too_long: false,
            after_cr: false,
            at_start: true,
            event: None,
            data: String::new(),
            has_data: false,
            oversized: false,
            last_event_id: None,
            retry: None,
        }
    }

    /// The id of the last event seen, dispatched or not (resume from here
    /// with `Last-Event-ID`).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref().filter(|id| !id.is_empty())
    }

    /// The reconnection delay the server asked for with `retry:`.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Feeds the next chunk of the body; complete events are appended to
    /// `out`. An event cut off by the end of the body is never dispatched.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Event>) {
        if self.at_start && !chunk.is_empty() {
            self.at_start = false;
            chunk = chunk.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(chunk);
        }
        while !chunk.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(end) => {
                    self.push_line_bytes(&chunk[..end]);
                    self.after_cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    if std::mem::replace(&mut self.line_too_long, false) {
                        // The end of an oversized line, not a blank line.
                        self.line.clear();
                        continue;
                    }
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, out);
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.push_line_bytes(chunk);
                    chunk = &[];
                }
            }
        }
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        if self.line_too_long {
            return;
        }
        if self.line.len() + bytes.len() <= self.max_event {
            self.line.extend_from_slice(bytes);
        } else {
            self.oversize();
            self.line_too_long = true;
        }
    }

    fn oversize(&mut self) {
        if !self.oversized {
            tracing::warn!(
                limit = self.max_event,
                "Server-sent event larger than the limit; dropped"
            );
        }
        self.oversized = true;
        self.line.clear();
        self.data.clear();
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if self.oversized || line[0] == b':' {
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_event {
                    self.oversize();
                }
            }
            "id" if !value.contains('\0') => self.last_event_id = Some(value.to_owned()),
            "retry" => {
                if let Ok(ms) = value.parse::<u64>()
                    && value.bytes().all(|b| b.is_ascii_digit())
                {
                    self.retry = Some(Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Event>) {
        let event = self.event.take();
        let data = std::mem::take(&mut self.data);
        let has_data = std::mem::replace(&mut self.has_data, false);
        if std::mem::replace(&mut self.oversized, false) || !has_data || data.is_empty() {
            return;
        }
        out.push(Event {
            event: event
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
            id: self.last_event_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> (Vec<Event>, Decoder) {
        let mut decoder = Decoder::new(1024);
        let mut out = Vec::new();
        for chunk in input.chunks(piece) {
            decoder.feed(chunk, &mut out);
        }
        (out, decoder)
    }

    #[test]
    fn priming_event_sets_the_id_without_dispatching() {
        let body = b"id: prime-1\ndata: \n\nevent: message\nid: e2\ndata: {\"a\":1}\n\n";
        let (events, decoder) = decode_in_pieces(body, body.len());
        assert_eq!(
            events,
            vec![Event {
                event: "message".into(),
                data: "{\"a\":1}".into(),
                id: Some("e2".into()),
            }]
        );
        assert_eq!(decoder.last_event_id(), Some("e2"));
    }

    #[test]
    fn any_line_ending_and_any_chunking_give_the_same_events() {
        let body = b"\xEF\xBB\xBF: comment\r\nevent: endpoint\r\ndata: /message?sessionId=1\r\n\r\ndata: a\rdata: b\r\rretry: 1500\nid\n\n";
        for piece in 1..body.len() {
            let (events, decoder) = decode_in_pieces(body, piece);
            assert_eq!(events.len(), 2, "piece {piece}");
            assert_eq!(events[0].event, "endpoint");
            assert_eq!(events[0].data, "/message?sessionId=1");
            assert_eq!(events[1].event, "message");
            assert_eq!(events[1].data, "a\nb");
            assert_eq!(decoder.retry(), Some(Duration::from_millis(1500)));
            assert_eq!(decoder.last_event_id(), None);
        }
    }

    #[test]
    fn oversized_and_unterminated_events_are_dropped() {
        let big = format!("data: {}\n\ndata: ok\n\ndata: cut", "x".repeat(2000));
        let (events, _) = decode_in_pieces(big.as_bytes(), 7);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data, "ok");
    }
}
