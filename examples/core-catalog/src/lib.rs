//! Merging two MCP servers' tool lists and routing a namespaced tool call with
//! `only1mcp-core` alone: no tokio, no sockets, no processes. The same calls
//! the gateway makes, on input given as text.
//!
//! 1. [`listing`]: a server's `tools/list` result, as the backend sent it, read
//!    with [`ListPage::parse`] into a [`ServerListing`];
//! 2. [`merge`]: [`Catalog::build`] merges the listings; a tool name that two
//!    servers offer is exposed as `server__name` for both
//!    ([`Prefix::OnConflict`], the default separator of
//!    [`naming::Namespace`]), other names stay bare;
//! 3. [`route`]: a client's `tools/call` line is parsed with [`jsonrpc::parse`],
//!    its tool name read with [`Named`], looked up with [`Catalog::tool`], and
//!    written again with the backend's own name for the owning server; a call
//!    that cannot be routed gets the JSON-RPC error the gateway would answer
//!    with ([`Error::to_error_object`]).
//!
//! [`report`] runs the three steps on [`FS_TOOLS`], [`GIT_TOOLS`] and two
//! calls; the binary prints it.

use std::sync::Arc;

use only1mcp_core::catalog::{Catalog, Lists, Prefix, Route, ServerListing, ToolFilter};
use only1mcp_core::jsonrpc::{self, Frame, Message, Request, Response};
use only1mcp_core::mcp::{ListKind, ListPage, Named};
use only1mcp_core::{Error, naming};
use serde_json::value::RawValue;

/// The `tools/list` result of a filesystem server.
pub const FS_TOOLS: &str = r#"{"tools":[
  {"name":"read_file","description":"Read a file","inputSchema":{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}},
  {"name":"status","description":"Disk usage of the root","inputSchema":{"type":"object"}}
]}"#;

/// The `tools/list` result of a git server: it also has a `status` tool.
pub const GIT_TOOLS: &str = r#"{"tools":[
  {"name":"log","description":"Show the commit log","inputSchema":{"type":"object","properties":{"repo_path":{"type":"string"}}}},
  {"name":"status","description":"Show the working tree status","inputSchema":{"type":"object","properties":{"repo_path":{"type":"string"}}}}
]}"#;

/// A client's call of the git server's `status`, by its namespaced name.
pub const CALL_GIT_STATUS: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"git__status","arguments":{"repo_path":"."}}}"#;

/// A client's call of a tool no server offers.
pub const CALL_UNKNOWN: &str =
    r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"hg__status"}}"#;

/// One server's listing from its `tools/list` result (`result` is the JSON
/// text of the result member). A result that is not a tool list is the
/// server's fault: [`Error::UpstreamProtocol`].
pub fn listing(server: &str, result: &str) -> Result<ServerListing, Error> {
    let invalid = |reason: String| Error::UpstreamProtocol {
        server: server.to_owned(),
        reason,
    };
    let raw: &RawValue = serde_json::from_str(result).map_err(|e| invalid(e.to_string()))?;
    let page = ListPage::parse(ListKind::Tools, raw).map_err(|e| invalid(e.to_string()))?;
    Ok(ServerListing {
        server: Arc::from(server),
        prefix: Prefix::OnConflict,
        filter: ToolFilter::default(),
        lists: Lists {
            tools: page.items,
            ..Lists::default()
        },
    })
}

/// The merged catalog of the listings, which come in priority order.
pub fn merge(listings: &[ServerListing]) -> Catalog {
    Catalog::build(listings, &naming::Namespace::default())
}

/// A tool call ready for its backend.
#[derive(Debug)]
pub struct Routed {
    /// The owning server and the tool's name there.
    pub route: Route,
    /// The request to send that server: the client's, with the backend's
    /// tool name and every other byte of the params as they came.
    pub request: Request,
}

/// Routes one client line, a `tools/call` request. `Err` is the response the
/// client gets instead: the request is malformed, not a tool call, or names
/// no tool of the catalog.
pub fn route(catalog: &Catalog, line: &str) -> Result<Routed, Response> {
    let request = match jsonrpc::parse(line.as_bytes()) {
        Ok(Frame::Single(Message::Request(request))) => request,
        Ok(_) => {
            let error = Error::InvalidRequest("expected one request".to_owned());
            return Err(Response::error(None, error.to_error_object()));
        }
        Err(invalid) => return Err(invalid.into_response()),
    };
    let id = request.id.clone();
    let refuse = |error: Error| Response::error(Some(id.clone()), error.to_error_object());
    if request.method != "tools/call" {
        return Err(refuse(Error::MethodNotFound(request.method)));
    }
    let named = match Named::parse(request.params.as_deref()) {
        Ok(Some(named)) => named,
        Ok(None) => {
            let error = Error::InvalidParams("tools/call needs a string `name`".to_owned());
            return Err(refuse(error));
        }
        Err(error) => return Err(Response::error(Some(id), error)),
    };
    let Some(route) = catalog.tool(named.name()).cloned() else {
        return Err(refuse(Error::ToolNotFound(named.name().to_owned())));
    };
    let params = named
        .renamed(&route.name)
        .map_err(|error| Response::error(Some(id.clone()), error))?;
    Ok(Routed {
        route,
        request: Request {
            id: request.id,
            method: request.method,
            params: Some(params),
        },
    })
}

/// The example's output: the merged tools with their routes, then each call
/// and what becomes of it.
pub fn report() -> Result<String, Error> {
    let catalog = merge(&[listing("fs", FS_TOOLS)?, listing("git", GIT_TOOLS)?]);
    let tools = catalog.entries(ListKind::Tools);
    let mut out = format!("merged tools ({}):\n", tools.len());
    for entry in tools {
        out.push_str(&format!(
            "  {:<12} -> {} / {}\n",
            entry.exposed, entry.route.server, entry.route.name
        ));
    }
    for line in [CALL_GIT_STATUS, CALL_UNKNOWN] {
        out.push_str(&format!("client: {line}\n"));
        match route(&catalog, line) {
            Ok(routed) => out.push_str(&format!(
                "to {}: {}\n",
                routed.route.server,
                text(&Message::Request(routed.request))
            )),
            Err(response) => {
                out.push_str(&format!("answer: {}\n", text(&Message::Response(response))))
            }
        }
    }
    Ok(out)
}

/// A message as the one line of JSON that goes on the wire.
fn text(message: &Message) -> String {
    String::from_utf8_lossy(&message.to_vec()).into_owned()
}
