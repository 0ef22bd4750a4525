//! Driving and resuming a modern client's call held on a legacy backend
//! that asks for input (ADR 0006; the store is `crate::holds`).

use std::sync::Arc;
use std::time::Duration;

use only1mcp_core::jsonrpc::{self, ErrorObject, Outcome};
use only1mcp_core::mcp::RawObject;
use serde_json::value::RawValue;

use super::ClientSession;
use crate::backend::relay::Pending;
use crate::holds::Held;

impl ClientSession {
    /// Waits for a held call: its result, or the backend's next requests to
    /// the client, answered as `input_required` (the call is then held).
    pub(super) async fn drive(
        self: &Arc<Self>,
        mut held: Held,
        timeout: Duration,
    ) -> Result<Outcome, ErrorObject> {
        tokio::select! {
            result = &mut held.call => {
                let (_, outcome) = result.map_err(|e| e.to_error_object())?;
                Ok(outcome)
            }
            Some(first) = held.inputs.recv() => {
                let mut requests = serde_json::Map::new();
                let mut add = |pending: Pending, held: &mut Held| {
                    held.next_key += 1;
                    let key = format!("input-{}", held.next_key);
                    let params = pending
                        .params
                        .as_deref()
                        .and_then(|p| serde_json::from_str::<serde_json::Value>(p.get()).ok())
                        .unwrap_or_else(|| serde_json::json!({}));
                    requests.insert(
                        key.clone(),
                        serde_json::json!({ "method": pending.method, "params": params }),
                    );
                    held.pending.push((key, pending.answer));
                };
                add(first, &mut held);
                while let Ok(more) = held.inputs.try_recv() {
                    add(more, &mut held);
                }
                let state = self.gateway.holds().put(held, timeout)?;
                let result = serde_json::json!({
                    "resultType": "input_required",
                    "inputRequests": requests,
                    "requestState": state,
                });
                Ok(jsonrpc::to_raw(&result))
            }
        }
    }

    /// A retry that carries the gateway's `requestState`: the answers go to
    /// the backend's waiting requests, and the call goes on.
    pub(super) async fn resume(
        self: &Arc<Self>,
        state: &str,
        params: &RawObject,
        binding: &str,
        timeout: Duration,
    ) -> Result<Outcome, ErrorObject> {
        let mut held = self.gateway.holds().take(state, binding)?;
        let responses: RawObject = match params.get("inputResponses") {
            Some(raw) => serde_json::from_str(raw.get()).map_err(|_| {
                ErrorObject::new(
                    jsonrpc::code::INVALID_PARAMS,
                    "inputResponses must be an object",
                )
            })?,
            None => RawObject::new(),
        };
        for (key, answer) in held.pending.drain(..) {
            let outcome = match responses.get(&key) {
                Some(result) => Ok::<Box<RawValue>, ErrorObject>(result.clone()),
                None => Err(ErrorObject::new(
                    jsonrpc::code::INVALID_PARAMS,
                    format!("the client sent no answer to input request {key}"),
                )),
            };
            let _ = answer.send(outcome);
        }
        self.drive(held, timeout).await
    }
}
