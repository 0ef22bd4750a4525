//! The line format of the audit trail and the hash that chains each line to
//! the one before it (ADR 0019).
//!
//! A line is one JSON object, its members in this order: `time` (RFC 3339,
//! UTC, milliseconds), `seq` (1 for the first line of a chain, one more for
//! each line after it, across restarts and rotations), the event's fields
//! ([`super::Event`]), `prev` (the `hash` of the line before, 64 hex
//! digits; 64 zeros before the first), and last `hash`:
//!
//! ```text
//! hash = hex(SHA-256(the line's bytes up to, not including, `,"hash":`))
//! ```
//!
//! So each hash covers its line's content and, through `prev`, every line
//! before it: a changed line no longer matches its hash; one whose hash was
//! recomputed no longer matches the next line's `prev`; a removed line
//! leaves a gap in `seq` and `prev`; lines swapped break the order of `seq`.

use std::time::SystemTime;

use ring::digest;
use serde::Serialize;

use super::Event;

/// The `prev` of the first line of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a chain stands: the last line's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The last line's sequence number (0 before the first line).
    pub seq: u64,
    /// The last line's hash ([`GENESIS`] before the first line).
    pub hash: String,
}

impl Head {
    /// The head of a chain with no line yet.
    pub fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    time: String,
    seq: u64,
    #[serde(flatten)]
    event: &'a Event,
    prev: &'a str,
}

const HASH_MEMBER: &str = ",\"hash\":\"";

/// The line (with its newline) recording `event` at `time` after `head`,
/// and the chain's new head.
pub fn line(head: &Head, time: SystemTime, event: &Event) -> (String, Head) {
    let seq = head.seq + 1;
    let body = Body {
        time: humantime::format_rfc3339_millis(time).to_string(),
        seq,
        event,
        prev: &head.hash,
    };
    let mut text = serde_json::to_string(&body).unwrap_or_else(|_| {
        // An Event holds only strings, numbers and JSON values: it always
        // serializes. Kept total anyway, and still chained.
        format!(
            r#"{{"seq":{seq},"event":"unserializable","prev":"{}"}}"#,
            head.hash
        )
    });
    text.pop(); // the closing brace
    let hash = hex(digest::digest(&digest::SHA256, text.as_bytes()).as_ref());
    text.push_str(HASH_MEMBER);
    text.push_str(&hash);
    text.push_str("\"}\n");
    (text, Head { seq, hash })
}

/// What a line says of its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its `seq`.
    pub seq: u64,
    /// Its `prev`.
    pub prev: String,
    /// Its `hash`, as written.
    pub hash: String,
    /// Whether `hash` is the hash of its content.
    pub intact: bool,
}

/// Why a line is not a line of the trail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// It does not end with a `hash` member of 64 hex digits.
    #[error("it has no hash at its end")]
    NoHash,
    /// Its content is not a JSON object with `seq` and `prev`.
    #[error("it is not a JSON object with seq and prev")]
    NoLink,
}

/// Reads `line` (without its newline).
pub fn read(line: &str) -> Result<Link, Malformed> {
    let at = line.rfind(HASH_MEMBER).ok_or(Malformed::NoHash)?;
    let (content, rest) = line.split_at(at);
    let hash = rest
        .strip_prefix(HASH_MEMBER)
        .and_then(|r| r.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or(Malformed::NoHash)?;
    #[derive(serde::Deserialize)]
    struct Fields {
        seq: u64,
        prev: String,
    }
    let fields: Fields =
        serde_json::from_str(&format!("{content}}}")).map_err(|_| Malformed::NoLink)?;
    let intact = hex(digest::digest(&digest::SHA256, content.as_bytes()).as_ref()) == hash;
    Ok(Link {
        seq: fields.seq,
        prev: fields.prev,
        hash: hash.to_owned(),
        intact,
    })
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// Lowercase hex of SHA-256 of `bytes` (the hash of an argument value).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}
