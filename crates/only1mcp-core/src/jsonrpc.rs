//! The JSON-RPC 2.0 envelope.
//!
//! Only the envelope is typed: `params`, `result` and `error.data` stay raw JSON
//! ([`RawValue`]) so that whatever the gateway does not inspect passes through
//! byte-for-byte. [`parse`] turns one frame (a line on stdio, a body on HTTP)
//! into a single message or a batch, and tells a parse error (-32700) from an
//! invalid request (-32600).

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The JSON-RPC version string every message carries.
pub const VERSION: &str = "2.0";

/// Standard JSON-RPC error codes.
pub mod code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
}

/// A request id: a number or a string (never `null` on a request).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    /// A numeric id. JSON-RPC allows fractions, MCP does not; integers only.
    Number(i64),
    /// A string id.
    String(Arc<str>),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl de::Visitor<'_> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Id, E> {
                Ok(Id::Number(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Id, E> {
                i64::try_from(v)
                    .map(Id::Number)
                    .map_err(|_| E::custom("id out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Id, E> {
                Ok(Id::String(v.into()))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// A JSON-RPC request: it expects exactly one response with the same id.
#[derive(Debug)]
pub struct Request {
    /// The id the sender chose.
    pub id: Id,
    /// The method name.
    pub method: String,
    /// The parameters, untouched.
    pub params: Option<Box<RawValue>>,
}

/// A JSON-RPC notification: no id, no response.
#[derive(Debug)]
pub struct Notification {
    /// The method name.
    pub method: String,
    /// The parameters, untouched.
    pub params: Option<Box<RawValue>>,
}

/// The error member of a failed response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code.
    pub code: i64,
    /// A short human-readable description.
    pub message: String,
    /// Optional extra data, untouched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

impl ErrorObject {
    /// An error without data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// An error with `data` serialized from `data`.
    pub fn with_data(code: i64, message: impl Into<String>, data: &impl Serialize) -> Self {
        Self {
            code,
            message: message.into(),
            data: serde_json::value::to_raw_value(data).ok(),
        }
    }
}

/// What a response carries: a result or an error.
pub type Outcome = Result<Box<RawValue>, ErrorObject>;

/// A JSON-RPC response.
#[derive(Debug)]
pub struct Response {
    /// The id of the request this answers; `None` (serialized as `null`) only
    /// for errors about a request whose id could not be read.
    pub id: Option<Id>,
    /// The result or the error.
    pub outcome: Outcome,
}

impl Response {
    /// A successful response.
    pub fn result(id: Id, result: Box<RawValue>) -> Self {
        Self {
            id: Some(id),
            outcome: Ok(result),
        }
    }

    /// An error response.
    pub fn error(id: Option<Id>, error: ErrorObject) -> Self {
        Self {
            id,
            outcome: Err(error),
        }
    }
}

/// Any JSON-RPC message.
#[derive(Debug)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A notification.
    Notification(Notification),
    /// A response.
    Response(Response),
}

/// One decoded frame: a single message or a batch (2025-03-26 peers only).
#[derive(Debug)]
pub enum Frame {
    /// A single message.
    Single(Message),
    /// A non-empty array of messages. Entries that were not valid messages are
    /// kept as the error to answer them with.
    Batch(Vec<Result<Message, Invalid>>),
}

/// A frame or batch entry that is not a valid JSON-RPC message.
#[derive(Debug, Clone)]
pub struct Invalid {
    /// The id, when it could be read: the error response must carry it.
    pub id: Option<Id>,
    /// The error to answer with (-32700 or -32600).
    pub error: ErrorObject,
}

impl Invalid {
    /// The error response for this invalid input.
    pub fn into_response(self) -> Response {
        Response::error(self.id, self.error)
    }
}

/// The envelope as it arrives, before it is classified.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    method: Option<String>,
    params: Option<Box<RawValue>>,
    result: Option<Box<RawValue>>,
    error: Option<ErrorObject>,
}

/// Keeps `"id": null` apart from an absent id (`Some(null)` vs `None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

/// Decodes one frame.
///
/// Returns `Err` when the whole frame must be answered with one error: it is
/// not JSON (-32700), or not an object or array of objects (-32600).
///
/// ```
/// use only1mcp_core::jsonrpc::{self, Frame, Id, Message};
///
/// // A request: the method is read, the params stay raw JSON text.
/// let line = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fs__read"}}"#;
/// let Ok(Frame::Single(Message::Request(request))) = jsonrpc::parse(line) else {
///     panic!("one request");
/// };
/// assert_eq!((request.id, request.method.as_str()), (Id::Number(1), "tools/call"));
/// assert_eq!(request.params.expect("params").get(), r#"{"name":"fs__read"}"#);
///
/// // Not JSON: the whole frame is answered with one -32700 error, without an id.
/// let invalid = jsonrpc::parse(b"{\"jsonrpc\":").expect_err("not JSON");
/// assert_eq!((invalid.error.code, invalid.id), (-32700, None));
///
/// // JSON but not a message: -32600, with the id when it could be read.
/// let line = br#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#;
/// let invalid = jsonrpc::parse(line).expect_err("wrong version");
/// assert_eq!((invalid.error.code, invalid.id), (-32600, Some(Id::String("a".into()))));
///
/// // A batch keeps each bad entry as the error to answer it with.
/// let Ok(Frame::Batch(entries)) = jsonrpc::parse(br#"[{"jsonrpc":"2.0","method":"x"},7]"#) else {
///     panic!("a batch");
/// };
/// assert!(matches!(entries[0], Ok(Message::Notification(_))));
/// assert_eq!(entries[1].as_ref().expect_err("not a message").error.code, -32600);
/// ```
pub fn parse(bytes: &[u8]) -> Result<Frame, Invalid> {
    // The common case, one well-formed object, in one pass. Anything else,
    // and anything this pass refuses, takes the two-pass path below, which
    // tells a parse error (-32700) from an invalid request (-32600).
    // Read as text: checking the UTF-8 once here costs less than serde_json
    // checking each string it borrows from a byte slice.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{')
        && let Ok(text) = std::str::from_utf8(bytes)
        && let Ok(env) = serde_json::from_str::<Envelope<'_>>(text)
    {
        return classify_envelope(env).map(Frame::Single);
    }
    parse_two_pass(bytes)
}

/// [`parse`] the general way: check that the frame is JSON, then classify
/// each message.
fn parse_two_pass(bytes: &[u8]) -> Result<Frame, Invalid> {
    let value: &RawValue = serde_json::from_slice(bytes).map_err(|e| Invalid {
        id: None,
        error: ErrorObject::new(code::PARSE_ERROR, format!("Parse error: {e}")),
    })?;
    let text = value.get().trim_start();
    if text.starts_with('[') {
        let entries: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| Invalid {
            id: None,
            error: ErrorObject::new(code::PARSE_ERROR, format!("Parse error: {e}")),
        })?;
        if entries.is_empty() {
            return Err(invalid(None, "Invalid Request: empty batch"));
        }
        Ok(Frame::Batch(entries.into_iter().map(classify).collect()))
    } else {
        classify(value).map(Frame::Single)
    }
}

fn invalid(id: Option<Id>, message: impl Into<String>) -> Invalid {
    Invalid {
        id,
        error: ErrorObject::new(code::INVALID_REQUEST, message),
    }
}

fn classify(raw: &RawValue) -> Result<Message, Invalid> {
    let env: Envelope<'_> = serde_json::from_str(raw.get())
        .map_err(|e| invalid(None, format!("Invalid Request: {e}")))?;
    classify_envelope(env)
}

fn classify_envelope(env: Envelope<'_>) -> Result<Message, Invalid> {
    // Read the id first so every later error can carry it.
    let id = match &env.id {
        None => None,
        Some(raw_id) if raw_id.get() == "null" => None,
        // Digits only, nearly every id, without a second deserializer (the
        // rest, `-0` a float among them, the deserializer judges).
        Some(raw_id)
            if raw_id.get().bytes().all(|b| b.is_ascii_digit())
                && let Ok(n) = raw_id.get().parse::<i64>() =>
        {
            Some(Id::Number(n))
        }
        Some(raw_id) => Some(
            serde_json::from_str::<Id>(raw_id.get())
                .map_err(|_| invalid(None, "Invalid Request: id must be an integer or a string"))?,
        ),
    };
    match env.jsonrpc.map(RawValue::get) {
        Some("\"2.0\"") => {}
        _ => return Err(invalid(id, "Invalid Request: jsonrpc must be \"2.0\"")),
    }
    match (env.method, env.id.is_some(), env.result, env.error) {
        (Some(method), _, None, None) => match (id, env.id.is_some()) {
            (Some(id), _) => Ok(Message::Request(Request {
                id,
                method,
                params: env.params,
            })),
            (None, false) => Ok(Message::Notification(Notification {
                method,
                params: env.params,
            })),
            (None, true) => Err(invalid(None, "Invalid Request: id must not be null")),
        },
        (None, true, Some(result), None) => match id {
            Some(id) => Ok(Message::Response(Response::result(id, result))),
            None => Err(invalid(None, "Invalid Request: result with a null id")),
        },
        (None, true, None, Some(error)) => Ok(Message::Response(Response::error(id, error))),
        (_, _, _, _) => Err(invalid(
            id,
            "Invalid Request: expected a request, a notification or a response",
        )),
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", VERSION)?;
        match self {
            Self::Request(req) => {
                map.serialize_entry("id", &req.id)?;
                map.serialize_entry("method", &req.method)?;
                if let Some(params) = &req.params {
                    map.serialize_entry("params", params)?;
                }
            }
            Self::Notification(note) => {
                map.serialize_entry("method", &note.method)?;
                if let Some(params) = &note.params {
                    map.serialize_entry("params", params)?;
                }
            }
            Self::Response(res) => {
                map.serialize_entry("id", &res.id)?;
                match &res.outcome {
                    Ok(result) => map.serialize_entry("result", result)?,
                    Err(error) => map.serialize_entry("error", error)?,
                }
            }
        }
        map.end()
    }
}

impl Message {
    /// Serializes the message as one line of compact JSON (no newline).
    pub fn to_vec(&self) -> Vec<u8> {
        // Written out rather than through `Serialize`, which costs several
        // times more on the hot path: sized once, raw parts copied as they
        // are. The output is the same (a property test holds them equal).
        let raw_len = |value: Option<&RawValue>| value.map_or(0, |v| v.get().len());
        let size = match self {
            Self::Request(req) => req.method.len() + raw_len(req.params.as_deref()),
            Self::Notification(note) => note.method.len() + raw_len(note.params.as_deref()),
            Self::Response(res) => res.outcome.as_ref().map_or(128, |r| r.get().len()),
        };
        let mut out = Vec::with_capacity(size + 64);
        out.extend_from_slice(br#"{"jsonrpc":"2.0""#);
        match self {
            Self::Request(req) => {
                put_json(&mut out, "id", &req.id);
                put_json(&mut out, "method", &req.method);
                put_raw(&mut out, "params", req.params.as_deref());
            }
            Self::Notification(note) => {
                put_json(&mut out, "method", &note.method);
                put_raw(&mut out, "params", note.params.as_deref());
            }
            Self::Response(res) => {
                put_json(&mut out, "id", &res.id);
                match &res.outcome {
                    Ok(result) => put_raw(&mut out, "result", Some(result)),
                    Err(error) => put_json(&mut out, "error", error),
                }
            }
        }
        out.push(b'}');
        out
    }
}

/// Appends `,"key":` and `value` as JSON.
fn put_json(out: &mut Vec<u8>, key: &str, value: &impl Serialize) {
    put_key(out, key);
    // Writing ids, strings and error objects to a vector cannot fail.
    let _ = serde_json::to_writer(out, value);
}

/// Appends `,"key":` and the raw value as it is, if there is one.
fn put_raw(out: &mut Vec<u8>, key: &str, value: Option<&RawValue>) {
    if let Some(value) = value {
        put_key(out, key);
        out.extend_from_slice(value.get().as_bytes());
    }
}

fn put_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

impl From<Response> for Message {
    fn from(res: Response) -> Self {
        Self::Response(res)
    }
}

impl From<Request> for Message {
    fn from(req: Request) -> Self {
        Self::Request(req)
    }
}

impl From<Notification> for Message {
    fn from(note: Notification) -> Self {
        Self::Notification(note)
    }
}

/// Serializes `value` into a raw JSON value.
///
/// For the gateway's own results (merged lists, capabilities); serializing
/// these types cannot fail, so a failure is reported as an internal error.
pub fn to_raw(value: &impl Serialize) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(value)
        .map_err(|e| ErrorObject::new(code::INTERNAL_ERROR, format!("serialize: {e}")))
}

#[cfg(test)]
mod tests;
