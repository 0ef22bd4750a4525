//! The tools of a session's context view: `tools/call` routed through the
//! profile's view, and the meta tools of `discover` views (`search_tools`,
//! `describe_tool`, `call_tool`; see `crate::context`).

use std::sync::Arc;

use only1mcp_core::Error;
use only1mcp_core::catalog::Entry;
use only1mcp_core::jsonrpc::{self, ErrorObject, Message, Notification, Outcome, Request};
use only1mcp_core::mcp::{self, ListKind, RawObject};
use serde_json::Value;

use super::{ClientSession, Ctx, Target};
use crate::context::{View, Views, meta};

impl ClientSession {
    /// A view's listing plus the tools this session loaded, sorted by name.
    pub(super) fn with_loaded(
        &self,
        views: &Views,
        view: &View,
        loaded: &[Arc<str>],
    ) -> Vec<Entry> {
        let mut entries = view.listed().to_vec();
        for name in loaded {
            if entries.iter().any(|e| e.exposed == *name) {
                continue;
            }
            if let Some(entry) = views
                .catalog()
                .tool_position(name)
                .and_then(|pos| view.entry_at(views.catalog(), pos))
            {
                entries.push(entry);
            }
        }
        entries.sort_by(|a, b| a.exposed.cmp(&b.exposed));
        entries
    }

    /// `tools/call`: the meta tools of the session's view, or a routed call.
    /// `call_tool` unwraps to exactly the direct call: the same routing,
    /// errors, progress token and cancellation.
    pub(super) async fn call_tool(self: &Arc<Self>, req: Request, ctx: &Ctx) -> Outcome {
        let Some(named) = mcp::Named::parse(req.params.as_deref())? else {
            return Err(
                Error::InvalidParams("params.name is required".to_owned()).to_error_object()
            );
        };
        let views = self.gateway.views();
        let view = views.get(&self.profile).cloned();
        // The meta tool `call_tool` names the tool, and its arguments, in
        // its own arguments: the params it stands for.
        let mut unwrapped: Option<(String, mcp::Members<'_>)> = None;
        if let Some(view) = view.as_ref().filter(|v| v.has_meta()) {
            match named.name() {
                meta::SEARCH_TOOLS => {
                    let params = mcp::params_object(req.params.as_deref())?;
                    return self.search_tools(&views, view, &params).await;
                }
                meta::DESCRIBE_TOOL => {
                    let params = mcp::params_object(req.params.as_deref())?;
                    return describe_tool(&views, view, &params, |e| self.sees(ListKind::Tools, e));
                }
                meta::CALL_TOOL => {
                    let mut params = mcp::Members::parse(req.params.as_deref())?;
                    let mut args = meta_arguments(&params.to_object())?;
                    let Some(inner) = args.get("name").and_then(Value::as_str) else {
                        return Err(Error::InvalidParams(
                            "call_tool needs arguments.name".to_owned(),
                        )
                        .to_error_object());
                    };
                    let inner = inner.to_owned();
                    match args.remove("arguments") {
                        Some(arguments) => {
                            let raw = serde_json::value::to_raw_value(&arguments).map_err(|e| {
                                Error::InvalidParams(e.to_string()).to_error_object()
                            })?;
                            params.set("arguments", raw);
                        }
                        None => params.remove("arguments"),
                    }
                    unwrapped = Some((inner, params));
                }
                _ => {}
            }
        }
        let name = unwrapped.as_ref().map_or(named.name(), |(name, _)| name);
        let catalog = views.catalog();
        let position = catalog
            .tool_position(name)
            .filter(|&pos| view.as_ref().is_none_or(|v| v.reachable(pos)))
            .ok_or_else(|| Error::ToolNotFound(name.to_owned()).to_error_object())?;
        views.record_call(position);
        let entry = &catalog.entries(ListKind::Tools)[position];
        let target = Target {
            route: entry.route.clone(),
            exposed: Some(entry.exposed.clone()),
        };
        drop(views);
        let name = &target.route.name;
        let params = match unwrapped {
            Some((_, mut params)) => {
                params.set_string("name", name);
                Some(params.to_raw()?)
            }
            // The backend's name is the client's (bare names): the params
            // go as they came.
            None if named.name() == &**name => req.params,
            None => Some(named.renamed(name)?),
        };
        self.forward(target, req.method, params, ctx).await
    }

    /// `search_tools`: the best matches as one line each; with `load`, a
    /// legacy session also gets them in its own tool list.
    async fn search_tools(&self, views: &Views, view: &View, params: &RawObject) -> Outcome {
        let args = meta_arguments(params)?;
        let Some(query) = args.get("query").and_then(Value::as_str) else {
            return Err(
                Error::InvalidParams("search_tools needs arguments.query".to_owned())
                    .to_error_object(),
            );
        };
        let limit = args
            .get("limit")
            .and_then(Value::as_u64)
            .map_or(meta::DEFAULT_LIMIT, |n| {
                usize::try_from(n).unwrap_or(meta::MAX_LIMIT)
            })
            .clamp(1, meta::MAX_LIMIT);
        let load = args.get("load").and_then(Value::as_bool).unwrap_or(false);
        // With a role policy, more are searched and the hidden ones left out.
        let searched = if self.visibility().is_some() {
            meta::MAX_LIMIT.max(limit * 4)
        } else {
            limit
        };
        let found: Vec<Entry> = view
            .search(query, searched)
            .into_iter()
            .filter_map(|pos| view.entry_at(views.catalog(), pos))
            .filter(|entry| self.sees(ListKind::Tools, entry))
            .take(limit)
            .collect();
        if found.is_empty() {
            return jsonrpc::to_raw(&meta::text_result(
                &format!("No tool matches {query:?}."),
                false,
            ));
        }
        let mut text = String::new();
        for entry in &found {
            let tool: Value = serde_json::from_str(entry.item.get()).unwrap_or_default();
            let description = tool
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            text.push_str(&meta::signature_line(&entry.exposed, &tool, description));
            text.push('\n');
        }
        text.push_str(
            "Call one with call_tool {name, arguments}; describe_tool shows its full schema.",
        );
        if load {
            let added = {
                let mut state = self.state();
                if state.legacy_version.is_some() {
                    let mut added = false;
                    for entry in &found {
                        if !state.loaded.contains(&entry.exposed) {
                            state.loaded.push(entry.exposed.clone());
                            added = true;
                        }
                    }
                    Some(added)
                } else {
                    None
                }
            };
            match added {
                Some(added) => {
                    if added {
                        let note = Message::Notification(Notification {
                            method: ListKind::Tools.list_changed().to_owned(),
                            params: None,
                        });
                        self.send(&note).await;
                    }
                    text.push_str("\nThey are now in your tool list too.");
                }
                None => text.push_str(
                    "\n(load needs a session: this request is stateless, so use call_tool.)",
                ),
            }
        }
        jsonrpc::to_raw(&meta::text_result(&text, false))
    }
}

/// `describe_tool`: a reachable tool's whole definition, as `full` lists it.
fn describe_tool(
    views: &Views,
    view: &View,
    params: &RawObject,
    sees: impl Fn(&Entry) -> bool,
) -> Outcome {
    let args = meta_arguments(params)?;
    let Some(name) = args.get("name").and_then(Value::as_str) else {
        return Err(
            Error::InvalidParams("describe_tool needs arguments.name".to_owned()).to_error_object(),
        );
    };
    let entry = views
        .catalog()
        .tool_position(name)
        .filter(|&pos| view.reachable(pos))
        .map(|pos| &views.catalog().entries(ListKind::Tools)[pos])
        .filter(|entry| sees(entry));
    match entry {
        Some(entry) => jsonrpc::to_raw(&meta::text_result(entry.item.get(), false)),
        None => jsonrpc::to_raw(&meta::text_result(
            &format!("No tool named {name:?}; search_tools finds tools by what they do."),
            true,
        )),
    }
}

/// A meta tool's `arguments` object (empty when absent).
fn meta_arguments(params: &RawObject) -> Result<serde_json::Map<String, Value>, ErrorObject> {
    match params.get("arguments") {
        None => Ok(serde_json::Map::new()),
        Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
            Error::InvalidParams("params.arguments must be an object".to_owned()).to_error_object()
        }),
    }
}
