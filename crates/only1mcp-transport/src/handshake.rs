//! Opening an MCP session with a backend, in whichever era it speaks.
//!
//! [`establish`] probes with a modern `server/discover`. A discover result
//! that lists 2026-07-28, or an "unsupported version" error that does, means
//! the backend is modern. Any other answer, an error, or silence until the
//! probe timeout means legacy: the gateway then runs the `initialize`
//! handshake. Keying on one particular error code would misread servers that
//! answer modern requests wrongly (see the MCP checklist, H5).

use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{ErrorObject, Message, Notification, Outcome};
use only1mcp_core::mcp::{
    self, DiscoverResult, Era, Implementation, InitializeResult, ServerCapabilities, error_code,
    method, version,
};
use only1mcp_core::upstream::{Call, Upstream};
use serde_json::value::RawValue;

/// What the gateway tells a backend about itself.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    /// `clientInfo`.
    pub info: Box<RawValue>,
    /// The client capabilities declared to the backend.
    pub capabilities: Box<RawValue>,
}

impl ClientIdentity {
    /// The gateway's identity with the given capabilities.
    pub fn new(info: &Implementation, capabilities: &serde_json::Value) -> Self {
        Self {
            info: to_raw(info),
            capabilities: to_raw(capabilities),
        }
    }
}

fn to_raw(value: &impl serde::Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// What the handshake learned about a backend.
#[derive(Debug, Clone)]
pub struct Established {
    /// The era it speaks.
    pub era: Era,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// Its capabilities.
    pub capabilities: ServerCapabilities,
    /// Its name and version.
    pub server_info: Option<Implementation>,
    /// Its instructions for the model.
    pub instructions: Option<String>,
}

/// Opens a session: the era probe, then `initialize` for legacy backends.
pub async fn establish<U: Upstream>(
    server: &str,
    upstream: &mut U,
    identity: &ClientIdentity,
    probe_timeout: Duration,
    timeout: Duration,
) -> Result<Established, Error> {
    let probe = mcp::modern_params(None, &identity.capabilities, &identity.info)
        .map_err(|e| protocol(server, &e.message))?;
    let mut outcome = call(
        upstream,
        method::SERVER_DISCOVER,
        probe.clone(),
        probe_timeout,
        server,
    )
    .await;
    // "Unsupported version" naming a version the gateway speaks: retry once
    // with it (a server may refuse a first request to test the retry).
    if let Ok(Err(error)) = &outcome
        && speaks_modern(error)
        && supported_versions(error)
            .iter()
            .any(|v| v == version::V2026_07_28)
    {
        tracing::debug!(
            server,
            "Backend answered -32022 listing 2026-07-28; retrying the probe"
        );
        outcome = call(
            upstream,
            method::SERVER_DISCOVER,
            probe,
            probe_timeout,
            server,
        )
        .await;
    }
    match outcome {
        Ok(Ok(result)) => {
            if let Ok(discover) = serde_json::from_str::<DiscoverResult>(result.get())
                && discover
                    .supported_versions
                    .iter()
                    .any(|v| v == version::V2026_07_28)
            {
                return Ok(Established {
                    era: Era::Modern,
                    protocol_version: version::V2026_07_28.to_owned(),
                    server_info: discover.server_info(),
                    capabilities: discover.capabilities,
                    instructions: discover.instructions,
                });
            }
        }
        Ok(Err(error)) if speaks_modern(&error) => {
            // It is modern but refused our version; it speaks none we know
            // beyond 2026-07-28, so fall through to legacy as a last resort.
            tracing::debug!(server, "Backend refused 2026-07-28; trying initialize");
        }
        Ok(Err(_)) | Err(_) => {}
    }
    initialize(server, upstream, identity, timeout).await
}

/// `data.supported` of an unsupported-version error.
fn supported_versions(error: &ErrorObject) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Data {
        #[serde(default)]
        supported: Vec<String>,
    }
    error
        .data
        .as_deref()
        .and_then(|d| serde_json::from_str::<Data>(d.get()).ok())
        .map(|d| d.supported)
        .unwrap_or_default()
}

fn speaks_modern(error: &ErrorObject) -> bool {
    error.code == error_code::UNSUPPORTED_PROTOCOL_VERSION
}

async fn initialize<U: Upstream>(
    server: &str,
    upstream: &mut U,
    identity: &ClientIdentity,
    timeout: Duration,
) -> Result<Established, Error> {
    let params = serde_json::json!({
        "protocolVersion": version::V2025_11_25,
        "capabilities": identity.capabilities,
        "clientInfo": identity.info,
    });
    let params = serde_json::value::to_raw_value(&params).ok();
    let result = match call(upstream, method::INITIALIZE, params, timeout, server).await? {
        Ok(result) => result,
        Err(error) => {
            return Err(protocol(
                server,
                &format!("initialize failed: {} ({})", error.message, error.code),
            ));
        }
    };
    let init: InitializeResult = serde_json::from_str(result.get())
        .map_err(|e| protocol(server, &format!("invalid initialize result: {e}")))?;
    if Era::of(&init.protocol_version) != Some(Era::Legacy) {
        return Err(protocol(
            server,
            &format!("unsupported protocol version {:?}", init.protocol_version),
        ));
    }
    upstream.send(Message::Notification(Notification {
        method: method::INITIALIZED.to_owned(),
        params: None,
    }))?;
    Ok(Established {
        era: Era::Legacy,
        protocol_version: init.protocol_version,
        capabilities: init.capabilities,
        server_info: Some(init.server_info),
        instructions: init.instructions,
    })
}

async fn call<U: Upstream>(
    upstream: &mut U,
    method: &str,
    params: Option<Box<RawValue>>,
    timeout: Duration,
    server: &str,
) -> Result<Outcome, Error> {
    match tokio::time::timeout(timeout, upstream.call(Call::new(method, params))).await {
        Ok(res) => res,
        Err(_) => Err(Error::UpstreamTimedOut {
            server: server.to_owned(),
            after: timeout,
        }),
    }
}

fn protocol(server: &str, reason: &str) -> Error {
    Error::UpstreamProtocol {
        server: server.to_owned(),
        reason: reason.to_owned(),
    }
}
