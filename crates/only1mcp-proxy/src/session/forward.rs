//! Forwarding one request to its backend through the call stack: a modern
//! client's retry resumes the call the gateway holds (ADR 0006); any other
//! call gets its progress and log routes, its params fitted to the
//! backend's era, and then either is held (a modern client, a legacy
//! backend that relays its requests) or has the backend's input requests
//! bridged into real requests to a legacy client (ADR 0003).

use std::sync::{Arc, Weak};
use std::time::Duration;

use only1mcp_core::Error;
use only1mcp_core::jsonrpc::{self, ErrorObject, Outcome};
use only1mcp_core::mcp::{self, Era, RawObject, error_code};
use only1mcp_core::pipeline::Reply;
use only1mcp_core::upstream::Call;
use only1mcp_transport::downstream::Outbound;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use super::{ClientSession, Ctx, Target};
use crate::backend::Backend;
use crate::backend::relay::{Caller, ClientLink, Reach};
use crate::gateway::{ProgressGuard, with_progress_token};
use crate::holds::{Held, Holds};

/// How many input rounds one request may take (a backend that keeps
/// asking is cut off).
const MAX_INPUT_ROUNDS: usize = 8;

impl ClientSession {
    /// Sends a request to a backend through the call stack and adapts the
    /// answer to the client's era: a modern client's retry resumes the call
    /// the gateway holds; any other call gets its progress and log routes,
    /// its params fitted to the backend's era, and goes to the backend,
    /// held for a modern client if the backend relays its requests, else
    /// with the backend's input requests bridged to a legacy client.
    pub(super) async fn forward(
        self: &Arc<Self>,
        target: Target,
        method: String,
        params: Option<Box<RawValue>>,
        ctx: &Ctx,
    ) -> Outcome {
        // A policy that came with a reload, before a restart put its check
        // in the call stack (the stack's own check is `rbac::Enforce`).
        if self.gateway.checks_calls_itself()
            && let Some(policy) = self.gateway.policy()
        {
            let probe = self.routed(
                Call::new(method.clone(), params.clone()),
                target.route.clone(),
                target.exposed.clone(),
                ctx.era,
            );
            if let Some(refused) = only1mcp_auth::rbac::refusal(&policy, &probe) {
                return Err(refused.to_error_object());
            }
        }
        let server: &str = &target.route.server;
        let backend = self.gateway.backend(server).ok_or_else(|| {
            Error::UpstreamUnavailable {
                server: server.to_owned(),
                reason: "not configured".to_owned(),
            }
            .to_error_object()
        })?;
        if let Some((state, object)) = held_retry(ctx.era, params.as_deref()) {
            return self
                .resume_held(&backend, server, &method, &state, &object)
                .await
                .and_then(|outcome| adapt_outcome(outcome, ctx.era));
        }
        let (params, _progress) = self.route_progress(params, ctx)?;
        let backend_era = backend.era().unwrap_or(Era::Legacy);
        let (params, wants_logs) = self.fit_params(&backend, backend_era, params, ctx)?;
        let _log = match (&ctx.notes, wants_logs) {
            (Some(notes), true) => Some(self.gateway.register_log(backend.id(), notes.clone())),
            _ => None,
        };
        // A legacy backend that relays its requests to clients learns, for
        // the length of the call, whose call this is (ADR 0006).
        let relays = backend_era == Era::Legacy && backend.relay().relays();
        if relays && ctx.era == Era::Modern {
            return self
                .call_held(&backend, &target, method, params, ctx)
                .await
                .and_then(|outcome| adapt_outcome(outcome, ctx.era));
        }
        let _caller = relays.then(|| {
            backend.relay().register(Caller {
                session: Arc::downgrade(self) as Weak<dyn ClientLink>,
                reach: ctx.notes.clone().map_or(Reach::Nowhere, Reach::Ask),
                capabilities: self.state().client_capabilities.clone(),
            })
        });
        self.call_bridged(&backend, &target, method, params, backend_era, ctx)
            .await
    }

    /// A modern client's retry of a call the gateway holds (ADR 0006): the
    /// client's answers go to the backend's waiting requests and the call
    /// goes on, if the state is bound to this server, method, name and
    /// caller.
    async fn resume_held(
        self: &Arc<Self>,
        backend: &Backend,
        server: &str,
        method: &str,
        state: &str,
        object: &RawObject,
    ) -> Result<Outcome, ErrorObject> {
        let name = mcp::string_field(object, "name");
        let binding = binding(server, method, name.as_deref(), self.principal());
        let timeout = backend.settings().request_timeout;
        self.resume(state, object, &binding, timeout).await
    }

    /// Swaps a client's `progressToken` for a gateway-unique one routed back
    /// to this request, for as long as the returned guard lives; with nowhere
    /// to send progress, the backend gets no token.
    fn route_progress(
        &self,
        params: Option<Box<RawValue>>,
        ctx: &Ctx,
    ) -> Result<(Option<Box<RawValue>>, Option<ProgressGuard>), ErrorObject> {
        match (&ctx.meta.progress_token, &ctx.notes) {
            (Some(original), Some(notes)) => {
                let guard = self
                    .gateway
                    .register_progress(notes.clone(), original.clone());
                let params = with_progress_token(params.as_deref(), guard.token())?;
                Ok((params, Some(guard)))
            }
            (Some(_), None) => {
                let params = mcp::edit_meta(params.as_deref(), |meta| {
                    meta.remove(mcp::meta::PROGRESS_TOKEN);
                })?;
                Ok((params, None))
            }
            (None, _) => Ok((params, None)),
        }
    }

    /// The params as a backend of `backend_era` expects them, and whether
    /// the caller wants the backend's log messages (this session set a
    /// level, or the request's `_meta` asked).
    fn fit_params(
        &self,
        backend: &Backend,
        backend_era: Era,
        params: Option<Box<RawValue>>,
        ctx: &Ctx,
    ) -> Result<(Option<Box<RawValue>>, bool), ErrorObject> {
        // Whether the request asked for log messages (`_meta` logLevel), read
        // before the params are fitted to a legacy backend, which drops it.
        let asked_for_logs = params
            .as_deref()
            .is_some_and(|p| p.get().contains(mcp::meta::LOG_LEVEL));
        let params = match (ctx.era, backend_era) {
            // Modern to modern: the client's own `_meta` (its version and
            // the capabilities it really declared) goes through, so the
            // backend may answer `input_required` and the client's retry
            // (`inputResponses`, `requestState`) comes back byte-exact.
            (Era::Modern, Era::Modern) => params,
            // A legacy client's declared capabilities go to a modern backend,
            // which may then ask for input; the gateway bridges
            // (`call_bridged`).
            (Era::Legacy, Era::Modern) => {
                let caps = self.state().client_capabilities.clone();
                match caps {
                    Some(caps) => backend.adapt_params_with(&caps, params.as_deref())?,
                    None => backend.adapt_params(backend_era, params.as_deref())?,
                }
            }
            (Era::Modern | Era::Legacy, Era::Legacy) => {
                backend.adapt_params(backend_era, params.as_deref())?
            }
        };
        // Log messages: a legacy session's level goes to modern backends as
        // `_meta` logLevel; a modern client's own `_meta` already says it.
        let session_level = self.state().log_level.clone();
        let params = match (&session_level, ctx.era, backend_era) {
            (Some(level), Era::Legacy, Era::Modern) => mcp::edit_meta(params.as_deref(), |meta| {
                meta.set(mcp::meta::LOG_LEVEL, level.clone());
            })?,
            _ => params,
        };
        Ok((params, session_level.is_some() || asked_for_logs))
    }

    /// A modern client's call to a legacy backend that relays its requests:
    /// the backend's requests to the client are not sent but answered by
    /// the client's retry, so the call is held, and the client gets
    /// `input_required` (ADR 0006).
    async fn call_held(
        self: &Arc<Self>,
        backend: &Backend,
        target: &Target,
        method: String,
        params: Option<Box<RawValue>>,
        ctx: &Ctx,
    ) -> Result<Outcome, ErrorObject> {
        let (inputs_tx, inputs) = mpsc::channel(8);
        let caller = backend.relay().register(Caller {
            session: Arc::downgrade(self) as Weak<dyn ClientLink>,
            reach: Reach::Hold(inputs_tx),
            capabilities: ctx.meta.client_capabilities.clone(),
        });
        let name = mcp::param_string(params.as_deref(), "name");
        let binding = binding(
            &target.route.server,
            &method,
            name.as_deref(),
            self.principal(),
        );
        // Held calls are rare: always through the whole stack (boxed, as a
        // held call must be anyway).
        let call = self.gateway.stack().dispatch(tagged(
            self.routed(
                Call::new(method, params),
                target.route.clone(),
                target.exposed.clone(),
                ctx.era,
            ),
            ctx,
        ));
        let held = Held {
            call: Box::pin(async move { call.await.map(|reply| (reply.era, reply.outcome)) }),
            inputs,
            pending: Vec::new(),
            next_key: 0,
            _caller: caller,
            binding,
        };
        self.drive(held, backend.settings().request_timeout).await
    }

    /// Calls the backend, and, for a legacy client in front of a modern
    /// backend, bridges each `input_required` answer: real requests to the
    /// client, then the call again with its answers (ADR 0003), at most
    /// [`MAX_INPUT_ROUNDS`] times.
    async fn call_bridged(
        self: &Arc<Self>,
        backend: &Backend,
        target: &Target,
        method: String,
        params: Option<Box<RawValue>>,
        backend_era: Era,
        ctx: &Ctx,
    ) -> Outcome {
        // Only a legacy client's call to a modern backend can take another
        // round (the backend's input requests, bridged); any other call
        // hands its method and params over instead of copying them.
        let may_bridge = ctx.era == Era::Legacy && backend_era == Era::Modern;
        let (mut method, mut params) = (method, params);
        for _ in 0..MAX_INPUT_ROUNDS {
            let call = if may_bridge {
                Call::new(method.clone(), params.clone())
            } else {
                Call::new(std::mem::take(&mut method), params.take())
            };
            let routed = tagged(
                self.routed(call, target.route.clone(), target.exposed.clone(), ctx.era),
                ctx,
            );
            let Reply {
                era: backend_era,
                outcome,
            } = self.gateway.call(backend, routed).await.map_err(|e| {
                let server: &str = &target.route.server;
                tracing::warn!(server, error = %e, "Backend call failed");
                e.to_error_object()
            })?;
            let bridge = ctx.era == Era::Legacy && backend_era == Era::Modern;
            let input = match &outcome {
                Ok(result) if bridge => input_required(result)?,
                Ok(_) | Err(_) => None,
            };
            let Some(input) = input else {
                return adapt_outcome(outcome, ctx.era);
            };
            if !may_bridge {
                // The backend came back modern during the call.
                return Err(ErrorObject::new(
                    jsonrpc::code::INTERNAL_ERROR,
                    "the backend restarted in another protocol era during the call and asks for input; call again",
                ));
            }
            let Some(via) = &ctx.notes else {
                return Err(ErrorObject::new(
                    jsonrpc::code::INTERNAL_ERROR,
                    "the backend needs input from the client, but this request has no channel back to it",
                ));
            };
            let timeout = backend.settings().request_timeout;
            params = self.answer_input(input, params, via, timeout).await?;
        }
        Err(ErrorObject::new(
            jsonrpc::code::INTERNAL_ERROR,
            format!("the backend asked for input more than {MAX_INPUT_ROUNDS} times"),
        ))
    }

    /// Asks the legacy client the backend's input requests, with real
    /// requests, and returns the params of the next round: the client's
    /// answers as `inputResponses`, and the backend's request state.
    async fn answer_input(
        &self,
        input: InputRequired,
        params: Option<Box<RawValue>>,
        via: &Outbound,
        timeout: Duration,
    ) -> Result<Option<Box<RawValue>>, ErrorObject> {
        let mut responses = RawObject::new();
        for (key, request) in input.requests {
            let answer = self
                .ask_client(request.method, request.params, via, timeout)
                .await?;
            responses.insert(key, answer);
        }
        mcp::edit_params(params.as_deref(), |object| {
            if let Ok(raw) = mcp::to_raw_object(&responses) {
                object.insert("inputResponses".to_owned(), raw);
            }
            match &input.state {
                Some(state) => {
                    object.insert("requestState".to_owned(), state.clone());
                }
                None => {
                    object.shift_remove("requestState");
                }
            }
        })
    }
}

/// The `requestState` and params of a modern client's retry of a call the
/// gateway holds; `None` for any other request (the common case costs one
/// substring scan of the params).
fn held_retry(era: Era, params: Option<&RawValue>) -> Option<(String, RawObject)> {
    if era == Era::Modern
        && params.is_some_and(|p| p.get().contains(Holds::PREFIX))
        && let Ok(object) = mcp::params_object(params)
        && let Some(state) = mcp::string_field(&object, "requestState")
        && Holds::is_ours(&state)
    {
        Some((state, object))
    } else {
        None
    }
}

/// What a held call's `requestState` is bound to: the server, the method,
/// the (backend) tool or prompt name, and who called (so a state that leaks
/// cannot be resumed by another principal).
fn binding(
    server: &str,
    method: &str,
    name: Option<&str>,
    principal: Option<&Arc<only1mcp_core::pipeline::Principal>>,
) -> String {
    let name = name.unwrap_or_default();
    let (issuer, subject) = principal.map_or(("", ""), |p| {
        (p.issuer.as_deref().unwrap_or_default(), p.subject.as_str())
    });
    format!("{server}\u{0}{method}\u{0}{name}\u{0}{issuer}\u{0}{subject}")
}

/// What an `input_required` result asks for.
struct InputRequired {
    requests: Vec<(String, InputRequest)>,
    state: Option<Box<RawValue>>,
}

/// One embedded request of an `input_required` result.
#[derive(serde::Deserialize)]
struct InputRequest {
    method: String,
    #[serde(default)]
    params: Option<Box<RawValue>>,
}

/// Reads an `input_required` result; `None` for any other result.
fn input_required(result: &RawValue) -> Result<Option<InputRequired>, ErrorObject> {
    if !result.get().contains("\"input_required\"") {
        return Ok(None);
    }
    let object: RawObject = serde_json::from_str(result.get())
        .map_err(|e| ErrorObject::new(jsonrpc::code::INTERNAL_ERROR, e.to_string()))?;
    if mcp::string_field(&object, "resultType").as_deref() != Some("input_required") {
        return Ok(None);
    }
    let requests: indexmap::IndexMap<String, InputRequest> = match object.get("inputRequests") {
        Some(raw) => serde_json::from_str(raw.get()).map_err(|e| {
            ErrorObject::new(
                jsonrpc::code::INTERNAL_ERROR,
                format!("invalid inputRequests from the backend: {e}"),
            )
        })?,
        None => indexmap::IndexMap::new(),
    };
    Ok(Some(InputRequired {
        requests: requests.into_iter().collect(),
        state: object.get("requestState").cloned(),
    }))
}

/// Adapts a backend's answer to the client's era.
fn adapt_outcome(outcome: Outcome, client: Era) -> Outcome {
    match outcome {
        Ok(result) => Ok(result),
        Err(mut error) => {
            if client == Era::Modern && error.code == error_code::RESOURCE_NOT_FOUND_LEGACY {
                error.code = jsonrpc::code::INVALID_PARAMS;
            }
            Err(error)
        }
    }
}

/// `routed` with the client's request id, when the gateway records calls
/// (the session put a `ClientRequest` in then).
fn tagged(
    mut routed: only1mcp_core::pipeline::Routed,
    ctx: &Ctx,
) -> only1mcp_core::pipeline::Routed {
    if let Some(request) = routed
        .extensions
        .get_mut::<only1mcp_core::pipeline::ClientRequest>()
    {
        request.id.clone_from(&ctx.request_id);
    }
    routed
}

#[cfg(test)]
mod tests {
    use super::*;
    use only1mcp_core::pipeline::Principal;

    #[test]
    fn a_held_call_is_bound_to_who_called() {
        let ana = Arc::new(Principal {
            subject: "ana".into(),
            ..Principal::default()
        });
        let bob = Arc::new(Principal {
            subject: "bob".into(),
            ..Principal::default()
        });
        let bound = |p| binding("fs", "tools/call", Some("read"), p);
        assert_ne!(bound(Some(&ana)), bound(Some(&bob)));
        assert_ne!(bound(Some(&ana)), bound(None));
        assert_eq!(bound(Some(&ana)), bound(Some(&ana.clone())));
    }
}
