//! [`Named`]: request params routed by their `name`, which the gateway
//! rewrites while passing the rest of the text through as it came.

use std::borrow::Cow;
use std::ops::Range;

use serde_json::value::RawValue;

use super::Members;
use crate::jsonrpc::{ErrorObject, code};

/// Params with a string `name` member (`tools/call`, `prompts/get`): the
/// name, and how to write the params again with another one.
///
/// The common shape, one top-level `name` among keys without escapes, is
/// read by one scan of the text and rewritten by replacing the name's value
/// in a copy of it; the rest (escaped or repeated keys) goes through
/// [`Members`], with the same result.
#[derive(Debug)]
pub struct Named<'a> {
    name: Cow<'a, str>,
    source: Source<'a>,
}

#[derive(Debug)]
enum Source<'a> {
    /// `text` has one top-level `name`, its value at `value`.
    Text { text: &'a str, value: Range<usize> },
    /// The general path.
    Members(Members<'a>),
}

impl<'a> Named<'a> {
    /// Reads `params`: `Ok(None)` if they have no string `name` (absent
    /// params included); params that are not an object are an
    /// invalid-params error, as [`Members::parse`] says.
    pub fn parse(params: Option<&'a RawValue>) -> Result<Option<Self>, ErrorObject> {
        if let Some(text) = params.map(RawValue::get)
            && let Some(found) = scan(text, "name")
        {
            let Some(value) = found else {
                return Ok(None);
            };
            let Some(name) = string_value(&text[value.clone()]) else {
                return Ok(None);
            };
            return Ok(Some(Self {
                name,
                source: Source::Text { text, value },
            }));
        }
        let members = Members::parse(params)?;
        Ok(members.string("name").map(|name| Self {
            name: Cow::Owned(name),
            source: Source::Members(members),
        }))
    }

    /// The name the params carry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The params again, with `name` for their name and everything else as
    /// it was.
    pub fn renamed(self, name: &str) -> Result<Box<RawValue>, ErrorObject> {
        match self.source {
            Source::Text { text, value } => {
                let mut out = Vec::with_capacity(text.len() - value.len() + name.len() + 2);
                out.extend_from_slice(&text.as_bytes()[..value.start]);
                serde_json::to_writer(&mut out, name).map_err(internal)?;
                out.extend_from_slice(&text.as_bytes()[value.end..]);
                let out = String::from_utf8(out).map_err(internal)?;
                RawValue::from_string(out).map_err(internal)
            }
            Source::Members(mut members) => {
                members.set_string("name", name);
                members.to_raw()
            }
        }
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorObject {
    ErrorObject::new(code::INTERNAL_ERROR, format!("serialize: {e}"))
}

/// A JSON string value as text: borrowed unless it has escapes; `None` if
/// `value` is not a string.
fn string_value(value: &str) -> Option<Cow<'_, str>> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str(value).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Where the value of the top-level member `key` of `text` lies: `Some(None)`
/// if the object has no such member, `None` where the scan leaves the answer
/// to [`Members`] (not an object, a key with escapes, `key` repeated or not
/// a string).
///
/// `text` must be valid JSON, as a [`RawValue`]'s text is: the scan finds
/// boundaries in one pass, it does not validate.
fn scan(text: &str, key: &str) -> Option<Option<Range<usize>>> {
    let b = text.as_bytes();
    if b.iter().find(|c| !c.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let mut depth = 0u32;
    // At depth 1: whether the next string is a key, and whether the next
    // value is the one of `key`.
    let mut at_key = false;
    let mut value_next = false;
    let mut found = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let open = i;
                let mut escaped = false;
                i += 1;
                loop {
                    match *b.get(i)? {
                        b'"' => break,
                        b'\\' => {
                            escaped = true;
                            i += 2;
                        }
                        _ => i += 1,
                    }
                }
                if depth == 1 && at_key {
                    if escaped {
                        return None;
                    }
                    at_key = false;
                    if &b[open + 1..i] == key.as_bytes() {
                        if found.is_some() {
                            return None;
                        }
                        value_next = true;
                    }
                } else if depth == 1 && value_next {
                    value_next = false;
                    found = Some(open..i + 1);
                }
            }
            b'{' | b'[' => {
                if depth == 1 && value_next {
                    return None;
                }
                depth += 1;
                at_key = depth == 1;
            }
            b'}' | b']' => depth = depth.checked_sub(1)?,
            b',' if depth == 1 => at_key = true,
            b' ' | b'\t' | b'\n' | b'\r' | b':' | b',' => {}
            // A number or a literal.
            _ if depth == 1 && value_next => return None,
            _ => {}
        }
        i += 1;
    }
    (!value_next).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value found, as text; `None`: absent; panics where the scan
    /// leaves it to `Members`.
    fn found(text: &str) -> Option<&str> {
        scan(text, "name")
            .unwrap_or_else(|| panic!("left to Members: {text}"))
            .map(|value| &text[value])
    }

    #[test]
    fn the_scan_finds_the_top_level_name_past_any_value() {
        assert_eq!(found(r#"{"name":"x"}"#), Some(r#""x""#));
        assert_eq!(found(" {\n\"name\"\t:\r \"x\" }\n"), Some(r#""x""#));
        assert_eq!(
            found(r#"{"arguments":{"name":"inner","s":"}\"{]"},"name":"t"}"#),
            Some(r#""t""#)
        );
        assert_eq!(
            found(r#"{"a":[1,{"b":["]"]}],"name":"t\\"}"#),
            Some(r#""t\\""#)
        );
        assert_eq!(found(r#"{"a":-2.5e3,"name":"7","b":true}"#), Some(r#""7""#));
        // A string that reads as members if its escapes are misread.
        assert_eq!(
            found(r#"{"s":"\\\",\"name\":\"evil\\","name":"t"}"#),
            Some(r#""t""#)
        );
        assert_eq!(found(r#"{"a":"name","b":{"name":1}}"#), None);
        assert_eq!(found("{}"), None);
        assert_eq!(found("{ }"), None);
    }

    #[test]
    fn the_scan_leaves_escaped_and_repeated_keys_to_members() {
        for text in [
            r#"{"n\u0061me":"x"}"#,
            r#"{"a\"b":1,"name":"x"}"#,
            r#"{"name":"x","name":"y"}"#,
            r#"{"name":7}"#,
            r#"{"name":null,"a":1}"#,
            r#"{"name":{"a":"b"}}"#,
            "[1]",
            r#""name""#,
            "3",
        ] {
            assert_eq!(scan(text, "name"), None, "{text}");
        }
    }
}
