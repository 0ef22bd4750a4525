//! The admin API's handlers. Each change edits a copy of the running config,
//! validates it, applies it with [`Gateway::reload`] and, when asked,
//! writes the one entry back to the config file.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::StatusCode;
use only1mcp_core::catalog::Catalog;
use only1mcp_core::config::{Config, ServerConfig};
use only1mcp_core::mcp::ListKind;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast::error::RecvError;

use super::dto::{
    ChangeDto, ErrorDto, LastErrorDto, LogLineDto, LogsDto, RecentDto, ReloadDto, ReplicaDto,
    ServerList, ServerStatus, TestDto,
};
use super::persist::{self, Edit};
use super::{AdminState, transport_name};
use crate::backend::{Backend, Status};
use crate::load::LoadError;
use crate::logging::capture as logs;

/// An error answer: a status and a JSON body.
#[derive(Debug)]
pub(super) struct ApiError(StatusCode, ErrorDto);

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self(
            status,
            ErrorDto {
                error: error.into(),
                problems: Vec::new(),
            },
        )
    }

    fn invalid(error: impl Into<String>, problems: Vec<String>) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            ErrorDto {
                error: error.into(),
                problems,
            },
        )
    }

    fn unknown(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no server {id:?} is configured"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// `?persist=true`.
#[derive(Debug, Deserialize)]
pub(super) struct PersistQuery {
    #[serde(default)]
    persist: bool,
}

/// `?lines=N&follow=true`.
#[derive(Debug, Deserialize)]
pub(super) struct LogsQuery {
    #[serde(default = "default_lines")]
    lines: usize,
    #[serde(default)]
    follow: bool,
}

fn default_lines() -> usize {
    100
}

pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such admin route")
}

// ---- status ----------------------------------------------------------------

/// `GET /servers`.
pub(super) async fn list(State(state): State<AdminState>) -> Json<ServerList> {
    let gateway = &state.inner.gateway;
    let config = gateway.config();
    let catalog = gateway.catalog();
    let exposed = exposed_tools(&catalog);
    let windows = gateway.metrics().map(|m| m.windows()).unwrap_or_default();
    let servers = config
        .servers
        .iter()
        .map(|(id, server)| {
            let backend = server.enabled.then(|| gateway.backend(id)).flatten();
            let mut status = status_of(id, server, backend.as_deref(), &exposed);
            if let Some((replicas, differ)) = gateway.replicas(id) {
                status.replicas = replicas
                    .into_iter()
                    .map(|r| ReplicaDto {
                        replica: r.replica,
                        state: r.state.to_owned(),
                        breaker: r.breaker,
                        ejections: r.ejections,
                        in_flight: r.in_flight,
                        requests: r.requests,
                        ewma_ms: r.ewma_ms,
                        pid: r.pid,
                    })
                    .collect();
                status.replicas_differ = differ;
            }
            status.recent = windows.iter().find(|w| &*w.server == id).map(recent);
            status
        })
        .collect();
    // Token counts build the tokenizer on first use: off the runtime.
    let views = gateway.views();
    let context = tokio::task::spawn_blocking(move || views.report())
        .await
        .unwrap_or_default();
    Json(ServerList { servers, context })
}

/// Tools in the catalog per server.
fn exposed_tools(catalog: &Catalog) -> HashMap<&str, usize> {
    let mut counts = HashMap::new();
    for entry in catalog.entries(ListKind::Tools) {
        *counts.entry(&*entry.route.server).or_default() += 1;
    }
    counts
}

fn recent(window: &only1mcp_observability::metrics::ServerWindow) -> RecentDto {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    RecentDto {
        window_secs: window.window.as_secs_f64(),
        calls: window.calls,
        rate: window.rate(),
        error_rate: window.error_rate(),
        p50_ms: window.p50.map(ms),
        p99_ms: window.p99.map(ms),
    }
}

/// `GET /metrics`: the Prometheus page (404 when metrics are off).
pub(super) async fn metrics(State(state): State<AdminState>) -> Response {
    match state.inner.gateway.metrics_page() {
        Some(page) => (
            [(
                http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            page,
        )
            .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "metrics are off (metrics.enabled)")
            .into_response(),
    }
}

fn status_of(
    id: &str,
    server: &ServerConfig,
    backend: Option<&Backend>,
    exposed: &HashMap<&str, usize>,
) -> ServerStatus {
    let mut status = ServerStatus {
        id: id.to_owned(),
        transport: transport_name(server).to_owned(),
        status: "disabled".to_owned(),
        reason: None,
        era: None,
        protocol_version: None,
        tools: 0,
        tools_offered: 0,
        prompts: 0,
        resources: 0,
        requests: 0,
        errors: 0,
        in_flight: 0,
        p50_ms: None,
        uptime_secs: None,
        last_error: None,
        replace_failed: None,
        replicas: Vec::new(),
        replicas_differ: Vec::new(),
        recent: None,
    };
    let Some(backend) = backend else {
        return status;
    };
    let (word, reason) = match backend.status() {
        Status::Starting => ("starting", None),
        Status::Ready => ("ready", None),
        Status::Restarting => ("restarting", None),
        Status::Failed(reason) => ("failed", Some(reason)),
        Status::Stopped => ("stopped", None),
    };
    let established = backend.established();
    let lists = backend.lists();
    let stats = backend.stats();
    status.status = word.to_owned();
    status.reason = reason;
    status.era = established.as_ref().map(|e| e.era);
    status.protocol_version = established.map(|e| e.protocol_version);
    status.tools = exposed.get(id).copied().unwrap_or(0);
    status.tools_offered = lists.tools.len();
    status.prompts = lists.prompts.len();
    status.resources = lists.resources.len();
    status.requests = stats.requests;
    status.errors = stats.errors;
    status.in_flight = stats.in_flight;
    status.p50_ms = stats.p50.map(|d| d.as_secs_f64() * 1000.0);
    status.uptime_secs = stats.uptime.map(|d| d.as_secs());
    status.replace_failed = backend.replace_failed().map(|reason| (*reason).clone());
    status.last_error = stats.last_error.map(|e| LastErrorDto {
        message: e.message,
        at: humantime::format_rfc3339_seconds(e.at).to_string(),
    });
    status
}

// ---- changes ---------------------------------------------------------------

/// What a change does to the file, once applied.
#[derive(Debug, Clone, Copy)]
enum FileEdit {
    Upsert,
    Remove,
}

/// Validates `config`, prepares the file edit if asked, applies `config`,
/// then writes the file.
async fn apply(
    state: &AdminState,
    config: Config,
    id: &str,
    action: &str,
    persist: bool,
    file_edit: FileEdit,
) -> ApiResult<ChangeDto> {
    if let Err(invalid) = crate::load::check(&config) {
        return Err(ApiError::invalid(
            "the change would make the config invalid",
            invalid.0.iter().map(ToString::to_string).collect(),
        ));
    }
    // Tried before applying, so a file that cannot be edited changes
    // nothing; done again after, on the file as it is then.
    let file = if persist {
        let Some(path) = &state.inner.source else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "the gateway runs on the built-in config: there is no file to persist to",
            ));
        };
        let edit = match file_edit {
            FileEdit::Upsert => match config.servers.get(id) {
                Some(server) => Edit::Upsert(id, server),
                None => Edit::Remove(id),
            },
            FileEdit::Remove => Edit::Remove(id),
        };
        persist::edited(path, edit)
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("cannot persist: {e}")))?;
        Some((path, edit))
    } else {
        None
    };
    let report = state.inner.gateway.reload(&config).await;
    let persisted = match file {
        Some((path, edit)) => {
            persist::persist(path, edit).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!(
                        "applied to the running gateway, but writing the config file failed: {e}"
                    ),
                )
            })?;
            tracing::info!(server = id, config = %path.display(), action, "Change written to the config file");
            Some(path.display().to_string())
        }
        None => None,
    };
    Ok(Json(ChangeDto {
        server: id.to_owned(),
        action: action.to_owned(),
        persisted,
        reload: ReloadDto::from(&report),
    }))
}

/// `POST /servers`: the body is a `servers` entry plus its `id`.
pub(super) async fn add(
    State(state): State<AdminState>,
    Query(query): Query<PersistQuery>,
    body: Bytes,
) -> Result<(StatusCode, Json<ChangeDto>), ApiError> {
    let mut fields: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("the body must be a JSON object", vec![e.to_string()]))?;
    let Some(Value::String(id)) = fields.remove("id") else {
        return Err(ApiError::invalid(
            "the body needs an \"id\" (a string)",
            vec!["id: missing".to_owned()],
        ));
    };
    let server: ServerConfig = serde_json::from_value(Value::Object(fields)).map_err(|e| {
        ApiError::invalid(
            "not a valid server entry",
            vec![format!("servers.{id}: {e}")],
        )
    })?;
    let _one_at_a_time = state.inner.changes.lock().await;
    let mut config = (*state.inner.gateway.config()).clone();
    if config.servers.contains_key(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("a server {id:?} is configured already; remove it first"),
        ));
    }
    config.servers.insert(id.clone(), server);
    let res = apply(
        &state,
        config,
        &id,
        "added",
        query.persist,
        FileEdit::Upsert,
    )
    .await?;
    Ok((StatusCode::CREATED, res))
}

/// `DELETE /servers/{id}`.
pub(super) async fn remove(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(query): Query<PersistQuery>,
) -> ApiResult<ChangeDto> {
    let _one_at_a_time = state.inner.changes.lock().await;
    let mut config = (*state.inner.gateway.config()).clone();
    if config.servers.remove(&id).is_none() {
        return Err(ApiError::unknown(&id));
    }
    apply(
        &state,
        config,
        &id,
        "removed",
        query.persist,
        FileEdit::Remove,
    )
    .await
}

async fn set_enabled(
    state: &AdminState,
    id: &str,
    enabled: bool,
    persist: bool,
) -> ApiResult<ChangeDto> {
    let _one_at_a_time = state.inner.changes.lock().await;
    let mut config = (*state.inner.gateway.config()).clone();
    let Some(server) = config.servers.get_mut(id) else {
        return Err(ApiError::unknown(id));
    };
    server.enabled = enabled;
    let action = if enabled { "enabled" } else { "disabled" };
    apply(state, config, id, action, persist, FileEdit::Upsert).await
}

/// `POST /servers/{id}/enable`.
pub(super) async fn enable(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(query): Query<PersistQuery>,
) -> ApiResult<ChangeDto> {
    set_enabled(&state, &id, true, query.persist).await
}

/// `POST /servers/{id}/disable`.
pub(super) async fn disable(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(query): Query<PersistQuery>,
) -> ApiResult<ChangeDto> {
    set_enabled(&state, &id, false, query.persist).await
}

/// `POST /reload`: re-reads the config file.
pub(super) async fn reload(State(state): State<AdminState>) -> ApiResult<ReloadDto> {
    let Some(path) = &state.inner.source else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "the gateway runs on the built-in config: there is no file to reload",
        ));
    };
    let _one_at_a_time = state.inner.changes.lock().await;
    match crate::reload::reload_from(&state.inner.gateway, path).await {
        Ok(report) => Ok(Json(ReloadDto::from(&report))),
        Err(e) => {
            let problems = match &e {
                LoadError::Invalid(invalid) => invalid.0.iter().map(ToString::to_string).collect(),
                other => vec![other.to_string()],
            };
            Err(ApiError::invalid(
                format!(
                    "{}: invalid config; the gateway keeps running on the previous one",
                    path.display()
                ),
                problems,
            ))
        }
    }
}

// ---- test ------------------------------------------------------------------

/// `POST /servers/{id}/test`.
pub(super) async fn test(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> ApiResult<TestDto> {
    let config = state.inner.gateway.config();
    let Some(server) = config.servers.get(&id) else {
        return Err(ApiError::unknown(&id));
    };
    let res = crate::gateway::test_server(&id, server, &config).await;
    Ok(Json(TestDto::new(&id, transport_name(server), res)))
}

// ---- logs ------------------------------------------------------------------

/// `GET /servers/{id}/logs`.
pub(super) async fn server_logs(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let configured = state.inner.gateway.config().servers.contains_key(&id);
    if !configured && !logs::book().knows(&id) {
        return Err(ApiError::unknown(&id));
    }
    Ok(logs_answer(Some(id), &query))
}

/// `GET /logs`: every server's lines.
pub(super) async fn all_logs(Query(query): Query<LogsQuery>) -> Response {
    logs_answer(None, &query)
}

fn logs_answer(server: Option<String>, query: &LogsQuery) -> Response {
    let n = query.lines.min(logs::LINES_PER_SERVER);
    if !query.follow {
        let lines = logs::book().recent(server.as_deref(), n);
        return Json(LogsDto { lines }).into_response();
    }
    Sse::new(follow(server, n))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// The last `n` lines, then new ones as they come, as `log` events.
fn follow(server: Option<String>, n: usize) -> impl Stream<Item = Result<Event, Infallible>> {
    // Subscribed before the snapshot, so no line falls between the two; the
    // sequence number drops the ones seen in both.
    let mut live = logs::book().follow();
    let recent = logs::book().recent(server.as_deref(), n);
    let event = |line: &LogLineDto| {
        Event::default()
            .event("log")
            .id(line.seq.to_string())
            .data(serde_json::to_string(line).unwrap_or_default())
    };
    async_stream::stream! {
        let mut last = 0;
        for line in &recent {
            last = line.seq;
            yield Ok(event(line));
        }
        loop {
            match live.recv().await {
                Ok(line) => {
                    if line.seq <= last || server.as_deref().is_some_and(|s| s != line.server) {
                        continue;
                    }
                    last = line.seq;
                    yield Ok(event(&line));
                }
                Err(RecvError::Lagged(missed)) => {
                    yield Ok(Event::default().event("lagged").data(missed.to_string()));
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
}
