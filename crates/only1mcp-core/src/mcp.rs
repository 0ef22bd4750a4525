//! The parts of MCP the gateway inspects, for both protocol eras.
//!
//! The modern era (revision 2026-07-28) is stateless: no `initialize`, every
//! request carries `_meta` with the protocol version and client capabilities,
//! `server/discover` describes the server, and results carry `resultType`.
//! The legacy era (2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05) opens a
//! session with `initialize`. Everything here is plain data; transports and the
//! proxy decide what to do with it.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::jsonrpc::{ErrorObject, code};

mod members;
mod named;
pub mod param_headers;
pub use members::Members;
pub use named::Named;

/// Protocol revisions the gateway knows, newest first.
pub mod version {
    /// The stateless revision.
    pub const V2026_07_28: &str = "2026-07-28";
    /// The last revision with the `initialize` handshake.
    pub const V2025_11_25: &str = "2025-11-25";
    /// Legacy revision (structured output, elicitation).
    pub const V2025_06_18: &str = "2025-06-18";
    /// Legacy revision (Streamable HTTP, batches).
    pub const V2025_03_26: &str = "2025-03-26";
    /// Legacy revision (HTTP+SSE).
    pub const V2024_11_05: &str = "2024-11-05";

    /// Modern revisions, newest first.
    pub const MODERN: &[&str] = &[V2026_07_28];
    /// Handshake-era revisions, newest first.
    pub const LEGACY: &[&str] = &[V2025_11_25, V2025_06_18, V2025_03_26, V2024_11_05];
}

/// The two protocol eras.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Era {
    /// 2026-07-28 and later: stateless, `server/discover`, `_meta` per request.
    Modern,
    /// 2025-11-25 and earlier: `initialize` handshake, sessions.
    Legacy,
}

impl Era {
    /// The era a protocol version string belongs to, if the gateway knows it.
    pub fn of(version: &str) -> Option<Self> {
        if version::MODERN.contains(&version) {
            Some(Self::Modern)
        } else if version::LEGACY.contains(&version) {
            Some(Self::Legacy)
        } else {
            None
        }
    }
}

/// The legacy version to answer an `initialize` with: the client's if the
/// gateway supports it, otherwise the newest legacy version.
pub fn negotiate_legacy(requested: &str) -> &'static str {
    version::LEGACY
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(version::V2025_11_25)
}

/// Method names.
pub mod method {
    /// Legacy handshake request.
    pub const INITIALIZE: &str = "initialize";
    /// Legacy handshake completion notification.
    pub const INITIALIZED: &str = "notifications/initialized";
    /// Modern server description.
    pub const SERVER_DISCOVER: &str = "server/discover";
    /// Legacy liveness check.
    pub const PING: &str = "ping";
    /// List tools.
    pub const TOOLS_LIST: &str = "tools/list";
    /// Call a tool.
    pub const TOOLS_CALL: &str = "tools/call";
    /// List prompts.
    pub const PROMPTS_LIST: &str = "prompts/list";
    /// Get a prompt.
    pub const PROMPTS_GET: &str = "prompts/get";
    /// List resources.
    pub const RESOURCES_LIST: &str = "resources/list";
    /// List resource templates.
    pub const RESOURCES_TEMPLATES_LIST: &str = "resources/templates/list";
    /// Read a resource.
    pub const RESOURCES_READ: &str = "resources/read";
    /// Subscribe to a resource (legacy).
    pub const RESOURCES_SUBSCRIBE: &str = "resources/subscribe";
    /// Unsubscribe from a resource (legacy).
    pub const RESOURCES_UNSUBSCRIBE: &str = "resources/unsubscribe";
    /// Argument completion.
    pub const COMPLETION_COMPLETE: &str = "completion/complete";
    /// Set the log level (legacy).
    pub const LOGGING_SET_LEVEL: &str = "logging/setLevel";
    /// Cancellation notification (both directions).
    pub const CANCELLED: &str = "notifications/cancelled";
    /// Progress notification.
    pub const PROGRESS: &str = "notifications/progress";
    /// Log message notification.
    pub const MESSAGE: &str = "notifications/message";
    /// The tool list changed.
    pub const TOOLS_LIST_CHANGED: &str = "notifications/tools/list_changed";
    /// The prompt list changed.
    pub const PROMPTS_LIST_CHANGED: &str = "notifications/prompts/list_changed";
    /// The resource list changed.
    pub const RESOURCES_LIST_CHANGED: &str = "notifications/resources/list_changed";
    /// A subscribed resource changed.
    pub const RESOURCES_UPDATED: &str = "notifications/resources/updated";
}

/// Keys of the modern per-request `_meta`.
pub mod meta {
    /// The protocol version of a modern request (required).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities on a modern request (required).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The client's name and version on a modern request (should).
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The server's name and version on a modern result (should).
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// The log level of a modern request.
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// Progress token (both eras).
    pub const PROGRESS_TOKEN: &str = "progressToken";
    /// The prefix every modern protocol key shares.
    pub const PROTOCOL_PREFIX: &str = "io.modelcontextprotocol/";
    /// The W3C trace context, unprefixed (OpenTelemetry's MCP convention,
    /// SEP-414).
    pub const TRACEPARENT: &str = "traceparent";
    /// The W3C trace state, beside [`TRACEPARENT`].
    pub const TRACESTATE: &str = "tracestate";
}

/// MCP-specific error codes.
pub mod error_code {
    /// Legacy "resource not found" (modern peers must get -32602 instead).
    pub const RESOURCE_NOT_FOUND_LEGACY: i64 = -32002;
    /// Legacy URL elicitation required.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
    /// Modern: an HTTP header does not match the body.
    pub const HEADER_MISMATCH: i64 = -32020;
    /// Modern: the request needs a client capability that was not declared.
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// Modern: unsupported protocol version.
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// The gateway's: a policy refused the call (HTTP 403).
    pub const DENIED: i64 = -32030;
    /// The gateway's: the caller is over its rate limit (HTTP 429).
    pub const RATE_LIMITED: i64 = -32031;
    /// The gateway's: the server's circuit breaker is open (HTTP 503).
    pub const CIRCUIT_OPEN: i64 = -32032;
    /// The gateway's: it holds as many sessions as it may
    /// (`limits.max_sessions`; HTTP 503).
    pub const TOO_MANY_SESSIONS: i64 = -32033;
}

/// Name and version of an implementation (`clientInfo` / `serverInfo`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Implementation {
    /// The programmatic name.
    pub name: String,
    /// The version string.
    pub version: String,
    /// Optional display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A `{ "listChanged": bool }` capability.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ListChanged {
    /// Whether the server sends `list_changed` notifications.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub list_changed: bool,
}

/// The resources capability.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesCapability {
    /// Whether `resources/subscribe` is supported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub subscribe: bool,
    /// Whether list-changed notifications are sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub list_changed: bool,
}

/// Server capabilities, as far as the gateway routes them. Fields it does not
/// know are dropped: the gateway only advertises what it can deliver.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerCapabilities {
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<ListChanged>,
    /// Prompts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompts: Option<ListChanged>,
    /// Resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesCapability>,
    /// Logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<serde_json::Value>,
    /// Argument completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completions: Option<serde_json::Value>,
}

impl ServerCapabilities {
    /// The union of several servers' capabilities, as an aggregate advertises
    /// it: a capability is present if any server has it, and `listChanged` is
    /// always on because the aggregate changes when backends come and go.
    pub fn merge<'a>(all: impl IntoIterator<Item = &'a Self>) -> Self {
        let mut merged = Self::default();
        for caps in all {
            if caps.tools.is_some() {
                merged.tools = Some(ListChanged { list_changed: true });
            }
            if caps.prompts.is_some() {
                merged.prompts = Some(ListChanged { list_changed: true });
            }
            if let Some(res) = caps.resources {
                let entry = merged.resources.get_or_insert(ResourcesCapability {
                    subscribe: false,
                    list_changed: true,
                });
                entry.subscribe |= res.subscribe;
            }
            if caps.logging.is_some() {
                merged.logging = Some(serde_json::json!({}));
            }
            if caps.completions.is_some() {
                merged.completions = Some(serde_json::json!({}));
            }
        }
        merged
    }
}

/// Parameters of a legacy `initialize` request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The version the client asks for.
    pub protocol_version: String,
    /// The client's capabilities, untouched.
    #[serde(default)]
    pub capabilities: Option<Box<RawValue>>,
    /// The client's name and version.
    #[serde(default)]
    pub client_info: Option<Implementation>,
}

/// The result of a legacy `initialize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// The negotiated version.
    pub protocol_version: String,
    /// The server's capabilities.
    #[serde(default)]
    pub capabilities: ServerCapabilities,
    /// The server's name and version.
    pub server_info: Implementation,
    /// Usage instructions for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

/// The result of a modern `server/discover`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverResult {
    /// Versions the server supports.
    pub supported_versions: Vec<String>,
    /// The server's capabilities.
    #[serde(default)]
    pub capabilities: ServerCapabilities,
    /// Usage instructions for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Always `complete`.
    #[serde(default = "complete", skip_serializing_if = "String::is_empty")]
    pub result_type: String,
    /// Cache lifetime in milliseconds.
    #[serde(default)]
    pub ttl_ms: u64,
    /// `public` or `private`.
    #[serde(default = "public")]
    pub cache_scope: String,
    /// Carries `io.modelcontextprotocol/serverInfo`.
    #[serde(rename = "_meta", default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Map<String, serde_json::Value>>,
}

fn complete() -> String {
    "complete".to_owned()
}

fn public() -> String {
    "public".to_owned()
}

impl DiscoverResult {
    /// The server info from `_meta`, if present.
    pub fn server_info(&self) -> Option<Implementation> {
        let info = self.meta.as_ref()?.get(meta::SERVER_INFO)?;
        serde_json::from_value(info.clone()).ok()
    }
}

/// The modern keys of a request's `_meta`, as far as the gateway checks them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestMeta {
    /// `io.modelcontextprotocol/protocolVersion`.
    #[serde(rename = "io.modelcontextprotocol/protocolVersion", default)]
    pub protocol_version: Option<String>,
    /// `io.modelcontextprotocol/clientCapabilities`, untouched.
    #[serde(rename = "io.modelcontextprotocol/clientCapabilities", default)]
    pub client_capabilities: Option<Box<RawValue>>,
    /// `progressToken`.
    #[serde(rename = "progressToken", default)]
    pub progress_token: Option<Box<RawValue>>,
    /// `traceparent`: the caller's W3C trace context (the OpenTelemetry MCP
    /// convention's place for it). A value that is not a string is
    /// ignored, not an error: the gateway does not own these keys.
    #[serde(default, deserialize_with = "string_or_none")]
    pub traceparent: Option<String>,
    /// `tracestate`, beside `traceparent`, read the same way.
    #[serde(default, deserialize_with = "string_or_none")]
    pub tracestate: Option<String>,
}

/// A string, or `None` for any other JSON value.
fn string_or_none<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    struct StringOrNone;

    impl<'de> serde::de::Visitor<'de> for StringOrNone {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any value")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }

    de.deserialize_any(StringOrNone)
}

#[derive(Deserialize)]
struct WithMeta {
    #[serde(rename = "_meta", default)]
    meta: Option<RequestMeta>,
}

/// Reads the `_meta` of a request's params (absent params or `_meta` give the
/// default). Malformed `_meta` is an invalid-params error.
pub fn request_meta(params: Option<&RawValue>) -> Result<RequestMeta, ErrorObject> {
    let Some(params) = params else {
        return Ok(RequestMeta::default());
    };
    // Without `_meta` in the text, and no escape that could spell it, there
    // is no `_meta` key: the common legacy call skips the parse.
    let text = params.get();
    if !text.contains("_meta") && !text.contains('\\') && text.trim_start().starts_with('{') {
        return Ok(RequestMeta::default());
    }
    serde_json::from_str::<WithMeta>(params.get())
        .map(|w| w.meta.unwrap_or_default())
        .map_err(|e| ErrorObject::new(code::INVALID_PARAMS, format!("Invalid _meta: {e}")))
}

/// The list kinds a gateway merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list` → `tools`, keyed by `name`.
    Tools,
    /// `prompts/list` → `prompts`, keyed by `name`.
    Prompts,
    /// `resources/list` → `resources`, keyed by `uri`.
    Resources,
    /// `resources/templates/list` → `resourceTemplates`, keyed by `uriTemplate`.
    ResourceTemplates,
}

impl ListKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::Tools,
        Self::Prompts,
        Self::Resources,
        Self::ResourceTemplates,
    ];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => method::TOOLS_LIST,
            Self::Prompts => method::PROMPTS_LIST,
            Self::Resources => method::RESOURCES_LIST,
            Self::ResourceTemplates => method::RESOURCES_TEMPLATES_LIST,
        }
    }

    /// The result field holding the items.
    pub fn field(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Prompts => "prompts",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The item field that identifies an item.
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools | Self::Prompts => "name",
            Self::Resources => "uri",
            Self::ResourceTemplates => "uriTemplate",
        }
    }

    /// The notification a server sends when this list changes.
    pub fn list_changed(self) -> &'static str {
        match self {
            Self::Tools => method::TOOLS_LIST_CHANGED,
            Self::Prompts => method::PROMPTS_LIST_CHANGED,
            Self::Resources | Self::ResourceTemplates => method::RESOURCES_LIST_CHANGED,
        }
    }

    /// Whether a server with these capabilities serves this list.
    pub fn offered_by(self, caps: &ServerCapabilities) -> bool {
        match self {
            Self::Tools => caps.tools.is_some(),
            Self::Prompts => caps.prompts.is_some(),
            Self::Resources | Self::ResourceTemplates => caps.resources.is_some(),
        }
    }
}

/// One page of a list result: the items stay raw JSON objects.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPage {
    /// The items, each an object with unknown fields kept verbatim.
    pub items: Vec<RawObject>,
    /// The cursor of the next page, if any.
    pub next_cursor: Option<String>,
    /// Modern cache lifetime.
    pub ttl_ms: Option<u64>,
    /// Modern `cacheScope: "private"`.
    pub private: bool,
}

impl ListPage {
    /// Parses a list result of the given kind.
    pub fn parse(kind: ListKind, result: &RawValue) -> Result<Self, serde_json::Error> {
        let mut object: RawObject = serde_json::from_str(result.get())?;
        let items = match object.shift_remove(kind.field()) {
            Some(raw) => serde_json::from_str(raw.get())?,
            None => Vec::new(),
        };
        let next_cursor = match object.get("nextCursor") {
            Some(raw) if raw.get() != "null" => Some(serde_json::from_str(raw.get())?),
            _ => None,
        };
        let ttl_ms = match object.get("ttlMs") {
            Some(raw) => serde_json::from_str(raw.get()).ok(),
            None => None,
        };
        let private = object
            .get("cacheScope")
            .is_some_and(|raw| raw.get() == "\"private\"");
        Ok(Self {
            items,
            next_cursor,
            ttl_ms,
            private,
        })
    }
}

/// A JSON object whose values stay raw: fields pass through byte-for-byte and
/// keep their order.
pub type RawObject = indexmap::IndexMap<String, Box<RawValue>>;

/// Reads a string field of a raw object.
pub fn string_field(object: &RawObject, field: &str) -> Option<String> {
    serde_json::from_str(object.get(field)?.get()).ok()
}

/// The string field `field` of request params, read in one pass that skips
/// every other member without building anything (unlike [`params_object`]
/// followed by [`string_field`]). `None` if the params are absent, not an
/// object, or the field is missing or not a string; of a repeated field the
/// last one counts, as with [`params_object`].
pub fn param_string(params: Option<&RawValue>, field: &str) -> Option<String> {
    struct Field<'f>(&'f str);

    impl<'de> serde::de::Visitor<'de> for Field<'_> {
        type Value = Option<String>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(members::Key(key)) = map.next_key()? {
                if key == self.0 {
                    found = map.next_value::<Option<String>>()?;
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }

    let mut de = serde_json::Deserializer::from_str(params?.get());
    serde::Deserializer::deserialize_map(&mut de, Field(field))
        .ok()
        .flatten()
}

/// Sets a string field of a raw object, keeping its position if present.
pub fn set_string_field(object: &mut RawObject, field: &str, value: &str) {
    if let Ok(raw) = serde_json::value::to_raw_value(value) {
        object.insert(field.to_owned(), raw);
    }
}

/// Parses params as a raw object (absent params give an empty object).
pub fn params_object(params: Option<&RawValue>) -> Result<RawObject, ErrorObject> {
    match params {
        None => Ok(RawObject::new()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            ErrorObject::new(
                code::INVALID_PARAMS,
                format!("Invalid params: expected an object ({e})"),
            )
        }),
    }
}

/// Rewrites the `_meta` object of request params with `edit`, keeping every
/// other field verbatim. An empty `_meta` is removed; absent params become an
/// object only if `_meta` ends up non-empty.
pub fn edit_meta(
    params: Option<&RawValue>,
    edit: impl FnOnce(&mut Members<'_>),
) -> Result<Option<Box<RawValue>>, ErrorObject> {
    let mut object = Members::parse(params)?;
    let edited = {
        let mut meta = Members::parse(object.get("_meta")).map_err(|e| {
            ErrorObject::new(
                code::INVALID_PARAMS,
                e.message.replacen("Invalid params", "Invalid _meta", 1),
            )
        })?;
        edit(&mut meta);
        if meta.is_empty() {
            None
        } else {
            Some(meta.to_raw()?)
        }
    };
    match edited {
        Some(meta) => object.set("_meta", meta),
        None => object.remove("_meta"),
    }
    if params.is_none() && object.is_empty() {
        return Ok(None);
    }
    object.to_raw().map(Some)
}

/// Rewrites the top level of request params with `edit`, keeping every
/// other field verbatim.
pub fn edit_params(
    params: Option<&RawValue>,
    edit: impl FnOnce(&mut RawObject),
) -> Result<Option<Box<RawValue>>, ErrorObject> {
    let mut object = params_object(params)?;
    edit(&mut object);
    to_raw_object(&object).map(Some)
}

/// Serializes a raw object.
pub fn to_raw_object(object: &RawObject) -> Result<Box<RawValue>, ErrorObject> {
    serde_json::value::to_raw_value(object)
        .map_err(|e| ErrorObject::new(code::INTERNAL_ERROR, format!("serialize: {e}")))
}

/// Params for a modern backend: the gateway's protocol version and the given
/// client capabilities and info in `_meta`.
pub fn modern_params(
    params: Option<&RawValue>,
    client_capabilities: &RawValue,
    client_info: &RawValue,
) -> Result<Option<Box<RawValue>>, ErrorObject> {
    edit_meta(params, |meta| {
        meta.set_string(meta::PROTOCOL_VERSION, version::V2026_07_28);
        meta.set(meta::CLIENT_CAPABILITIES, client_capabilities.to_owned());
        meta.set(meta::CLIENT_INFO, client_info.to_owned());
    })
}

/// Params for a legacy backend: the modern `io.modelcontextprotocol/*` keys
/// removed from `_meta` (a legacy server does not expect them).
pub fn legacy_params(params: Option<&RawValue>) -> Result<Option<Box<RawValue>>, ErrorObject> {
    let has_modern_keys = params.is_some_and(|p| p.get().contains(meta::PROTOCOL_PREFIX));
    if !has_modern_keys {
        return Ok(params.map(ToOwned::to_owned));
    }
    edit_meta(params, |meta| {
        meta.retain(|key| !key.starts_with(meta::PROTOCOL_PREFIX));
    })
}

#[cfg(test)]
mod tests;
