//! Tool arguments mirrored into HTTP headers (SEP-2243, 2026-07-28).
//!
//! A tool's `inputSchema` may mark a primitive property, at any depth, with
//! `"x-mcp-header": "Region"`; a client calling that tool over Streamable
//! HTTP then sends the argument's value as `Mcp-Param-Region` too, so load
//! balancers and firewalls can route on it without reading the body. This
//! module is the rule book both sides share:
//!
//! - [`declared`] reads a schema's declarations and checks them (a token
//!   name, unique without regard to case, on a `string`, `integer` or
//!   `boolean` property); a client leaves a tool whose declarations break a
//!   rule out of its `tools/list`.
//! - [`encode`] turns an argument into a header value: `true`/`false`,
//!   decimal integers, strings as they are when they are visible ASCII
//!   without edge whitespace, else in the `=?base64?…?=` sentinel; `null`
//!   and absent arguments send no header.
//! - [`mismatch`] is the server's check of the headers a request carried
//!   against its body: a declared argument present in one and not the
//!   other, a value that differs (integers compared as numbers, the
//!   sentinel decoded first, strictly), or a sentinel that is not valid
//!   base64 is a mismatch (`400` with `-32020`). Headers no declaration
//!   names are let through.

use serde_json::Value;
use serde_json::value::RawValue;

/// The header a declaration names: `Mcp-Param-` and the declared name.
pub const PREFIX: &str = "mcp-param-";

/// One `x-mcp-header` declaration of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The declared name (the header is `Mcp-Param-{name}`).
    pub name: Box<str>,
    /// The property names from `arguments` down to the value.
    pub path: Box<[Box<str>]>,
    /// The property's type.
    pub kind: Kind,
}

/// The types a declaration may mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `"type": "string"`.
    String,
    /// `"type": "integer"` (within JavaScript's safe range).
    Integer,
    /// `"type": "boolean"`.
    Boolean,
}

/// The `x-mcp-header` declarations of `input_schema`, in schema order;
/// empty when there are none (the common case costs one substring search).
/// An error says which rule a declaration breaks.
pub fn declared(input_schema: &RawValue) -> Result<Vec<ParamHeader>, String> {
    if !input_schema.get().contains("x-mcp-header") {
        return Ok(Vec::new());
    }
    let schema: Value =
        serde_json::from_str(input_schema.get()).map_err(|e| format!("inputSchema: {e}"))?;
    let mut found = Vec::new();
    walk(&schema, &mut Vec::new(), &mut found)?;
    for (i, a) in found.iter().enumerate() {
        if found[..i]
            .iter()
            .any(|b: &ParamHeader| b.name.eq_ignore_ascii_case(&a.name))
        {
            return Err(format!(
                "x-mcp-header {:?} is declared twice (names are compared without regard to case)",
                a.name
            ));
        }
    }
    Ok(found)
}

fn walk(
    schema: &Value,
    path: &mut Vec<Box<str>>,
    found: &mut Vec<ParamHeader>,
) -> Result<(), String> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, property) in properties {
        path.push(key.as_str().into());
        if let Some(name) = property.get("x-mcp-header") {
            found.push(declaration(name, property, path)?);
        }
        walk(property, path, found)?;
        path.pop();
    }
    Ok(())
}

fn declaration(name: &Value, property: &Value, path: &[Box<str>]) -> Result<ParamHeader, String> {
    let at = path.join(".");
    let Some(name) = name.as_str() else {
        return Err(format!("x-mcp-header of {at:?} is not a string"));
    };
    if name.is_empty() {
        return Err(format!("x-mcp-header of {at:?} is empty"));
    }
    if !name.bytes().all(is_tchar) {
        return Err(format!(
            "x-mcp-header {name:?} of {at:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~ only)"
        ));
    }
    let kind = match property.get("type").and_then(Value::as_str) {
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("boolean") => Kind::Boolean,
        other => {
            return Err(format!(
                "x-mcp-header {name:?} marks {at:?} of type {}; only string, integer and boolean may be mirrored",
                other.map_or_else(|| "(none)".to_owned(), |t| format!("{t:?}"))
            ));
        }
    };
    Ok(ParamHeader {
        name: name.into(),
        path: path.into(),
        kind,
    })
}

/// RFC 9110's `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The value at `path` in `arguments`, if any.
pub fn value_at<'v>(arguments: &'v Value, path: &[Box<str>]) -> Option<&'v Value> {
    path.iter()
        .try_fold(arguments, |value, key| value.get(&**key))
}

/// The header value carrying `value`; `None` for `null` and for values no
/// header can carry (arrays, objects).
pub fn encode(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if is_plain(s) => Some(s.clone()),
        Value::String(s) => Some(format!("=?base64?{}?=", base64_encode(s.as_bytes()))),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Whether `text` can be a header value as it is: visible ASCII and spaces,
/// no space at either end, and not itself looking like the sentinel.
pub fn is_plain(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && text.trim_matches(' ') == text
        && !(text.starts_with("=?base64?") && text.ends_with("?="))
}

/// A header value as text: the `=?base64?…?=` sentinel decoded (strictly:
/// the standard alphabet with padding, then UTF-8), anything else as it is.
/// Surrounding whitespace is not part of a field value (RFC 9110 §5.5).
pub fn decode(value: &str) -> Result<String, String> {
    let value = value.trim_matches([' ', '\t']);
    match value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => base64_decode(encoded)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| format!("{value:?} is not valid base64 of UTF-8 text")),
        None => Ok(value.to_owned()),
    }
}

/// Checks the `Mcp-Param-*` headers of a `tools/call` (`header` looks one
/// up by its declared name, without regard to case) against its
/// `arguments`; the reason for the first mismatch, if any.
pub fn mismatch<'h>(
    declared: &[ParamHeader],
    arguments: Option<&Value>,
    header: impl Fn(&str) -> Option<&'h str>,
) -> Option<String> {
    for decl in declared {
        let body = arguments
            .and_then(|args| value_at(args, &decl.path))
            .filter(|v| !v.is_null());
        let sent = header(&decl.name);
        let (body, sent) = match (body, sent) {
            (None, None) => continue,
            (Some(_), None) => {
                return Some(format!(
                    "Mcp-Param-{} header is missing, but arguments.{} is given",
                    decl.name,
                    decl.path.join(".")
                ));
            }
            (None, Some(_)) => {
                return Some(format!(
                    "Mcp-Param-{} header is sent, but arguments.{} is not given",
                    decl.name,
                    decl.path.join(".")
                ));
            }
            (Some(body), Some(sent)) => (body, sent),
        };
        let sent = match decode(sent) {
            Ok(sent) => sent,
            Err(e) => return Some(format!("Mcp-Param-{}: {e}", decl.name)),
        };
        let same = match decl.kind {
            Kind::Integer => match (sent.parse::<f64>(), body.as_f64()) {
                (Ok(a), Some(b)) => a == b,
                _ => false,
            },
            Kind::Boolean => body
                .as_bool()
                .is_some_and(|b| sent == if b { "true" } else { "false" }),
            Kind::String => body.as_str() == Some(sent.as_str()),
        };
        if !same {
            return Some(format!(
                "Mcp-Param-{} header does not match arguments.{}",
                decl.name,
                decl.path.join(".")
            ));
        }
    }
    None
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding, strictly: `None` for a length that is not
/// a multiple of four, a byte outside the alphabet, padding anywhere but at
/// the end, or bits set in the padding.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, quad) in bytes.chunks(4).enumerate() {
        let last = index + 1 == bytes.len() / 4;
        let pad = quad.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &quad[..4 - pad] {
            let six = ALPHABET.iter().position(|&a| a == b)?;
            n = (n << 6) | u32::try_from(six).ok()?;
        }
        n <<= 6 * pad;
        let [_, b0, b1, b2] = n.to_be_bytes();
        let group = [b0, b1, b2];
        let keep = 3 - pad;
        if group[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&group[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    fn schema() -> Box<RawValue> {
        raw(&json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "priority": {"type": "integer", "x-mcp-header": "Priority"},
            "verbose": {"type": "boolean", "x-mcp-header": "Verbose"},
            "where": {"type": "object", "properties": {
                "zone": {"type": "string", "x-mcp-header": "Zone"}}},
            "query": {"type": "string"}
        }}))
    }

    #[test]
    fn declarations_are_read_at_any_depth() {
        let found = declared(&schema()).unwrap();
        let names: Vec<_> = found.iter().map(|d| (&*d.name, d.path.join("."))).collect();
        assert_eq!(
            names,
            [
                ("Region", "region".to_owned()),
                ("Priority", "priority".to_owned()),
                ("Verbose", "verbose".to_owned()),
                ("Zone", "where.zone".to_owned()),
            ]
        );
        assert!(
            declared(&raw(&json!({"type": "object"})))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn declarations_that_break_a_rule_are_refused() {
        for (property, why) in [
            (json!({"type": "string", "x-mcp-header": ""}), "empty"),
            (
                json!({"type": "string", "x-mcp-header": "Has Space"}),
                "token",
            ),
            (json!({"type": "string", "x-mcp-header": "Co:lon"}), "token"),
            (json!({"type": "string", "x-mcp-header": "Wörld"}), "token"),
            (
                json!({"type": "string", "x-mcp-header": "Line\nFeed"}),
                "token",
            ),
            (json!({"type": "number", "x-mcp-header": "N"}), "type"),
            (json!({"type": "object", "x-mcp-header": "O"}), "type"),
            (json!({"type": "array", "x-mcp-header": "A"}), "type"),
            (json!({"x-mcp-header": "Untyped"}), "type"),
            (json!({"type": "string", "x-mcp-header": 7}), "not a string"),
        ] {
            let schema = raw(&json!({"properties": {"p": property}}));
            let error = declared(&schema).unwrap_err();
            let expected = match why {
                "empty" => "is empty",
                "token" => "not an HTTP token",
                "type" => "only string, integer and boolean",
                _ => why,
            };
            assert!(error.contains(expected), "{property}: {error}");
        }
        let twice = raw(&json!({"properties": {
            "a": {"type": "string", "x-mcp-header": "Region"},
            "b": {"type": "string", "x-mcp-header": "REGION"}}}));
        assert!(declared(&twice).unwrap_err().contains("declared twice"));
    }

    #[test]
    fn values_are_encoded_as_the_spec_says() {
        assert_eq!(encode(&json!("us-west1")).unwrap(), "us-west1");
        assert_eq!(encode(&json!("us west 1")).unwrap(), "us west 1");
        assert_eq!(encode(&json!("")).unwrap(), "");
        assert_eq!(encode(&json!(42)).unwrap(), "42");
        assert_eq!(encode(&json!(false)).unwrap(), "false");
        assert_eq!(encode(&json!(null)), None);
        assert_eq!(encode(&json!({"a": 1})), None);
        for unsafe_text in [
            " padded ",
            " lead",
            "trail ",
            "Hello, 世界",
            "line1\nline2",
            "\tx",
            "=?base64?x?=",
        ] {
            let header = encode(&json!(unsafe_text)).unwrap();
            assert!(
                header.starts_with("=?base64?") && header.ends_with("?="),
                "{header}"
            );
            assert_eq!(decode(&header).unwrap(), unsafe_text);
        }
    }

    #[test]
    fn base64_is_decoded_strictly() {
        assert_eq!(base64_decode("SGVsbG8=").unwrap(), b"Hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("SGVsbG8"), None, "padding missing");
        assert_eq!(base64_decode("SGVs!!!bG8="), None, "outside the alphabet");
        assert_eq!(base64_decode("SG=sbG8="), None, "padding in the middle");
        assert_eq!(base64_decode("SGVsbG9="), None, "bits set in the padding");
        for text in ["", "a", "ab", "abc", "abcd", "Hello, 世界"] {
            assert_eq!(
                base64_decode(&base64_encode(text.as_bytes())).unwrap(),
                text.as_bytes()
            );
        }
        // Without the whole sentinel, a value is literal.
        assert_eq!(decode("=?base64?SGVsbG8=").unwrap(), "=?base64?SGVsbG8=");
        assert_eq!(decode("SGVsbG8=").unwrap(), "SGVsbG8=");
        assert!(decode("=?base64?SGVsbG8?=").is_err());
    }

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
    }

    #[test]
    fn the_server_check_compares_headers_with_the_body() {
        let declared = declared(&schema()).unwrap();
        let args =
            json!({"region": "us-west1", "priority": 42, "verbose": null, "where": {"zone": "b"}});
        let all = [
            ("region", "us-west1"),
            ("PRIORITY", "42.0"),
            ("Zone", "=?base64?Yg==?="),
        ];
        assert_eq!(mismatch(&declared, Some(&args), headers(&all)), None);
        // An unknown Mcp-Param header is let through.
        let extra = [
            ("region", "us-west1"),
            ("priority", "42"),
            ("zone", "b"),
            ("Other", "x"),
        ];
        assert_eq!(mismatch(&declared, Some(&args), headers(&extra)), None);
        for (pairs, why) in [
            (&[("priority", "42"), ("zone", "b")][..], "missing"),
            (
                &[("region", "us-east1"), ("priority", "42"), ("zone", "b")][..],
                "does not match",
            ),
            (
                &[("region", "us-west1"), ("priority", "41"), ("zone", "b")][..],
                "does not match",
            ),
            (
                &[
                    ("region", "us-west1"),
                    ("priority", "42"),
                    ("zone", "b"),
                    ("verbose", "true"),
                ][..],
                "not given",
            ),
            (
                &[
                    ("region", "=?base64?dXMtd2VzdDE?="),
                    ("priority", "42"),
                    ("zone", "b"),
                ][..],
                "not valid base64",
            ),
        ] {
            let error = mismatch(&declared, Some(&args), headers(pairs)).unwrap();
            assert!(error.contains(why), "{pairs:?}: {error}");
        }
    }
}
