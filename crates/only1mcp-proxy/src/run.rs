//! Running a whole gateway process: what `only1mcp start` and the lean
//! `only1mcp-proxy` binary do, and an embedder can do the same way.
//!
//! [`GatewayBuilder::run`] binds the MCP listener (before any backend
//! starts, so a taken port fails fast), starts the gateway with the
//! builder's layers, watches the config file and SIGHUP for reloads, serves
//! the admin API when the config (or `admin_listen`) asks for it, serves MCP
//! on stdio or HTTP until Ctrl-C or SIGTERM, then stops every backend.

use std::net::SocketAddr;

use only1mcp_core::mcp::ListKind;
use only1mcp_core::pipeline::CallService;
use tower::layer::Layer;

use crate::builder::GatewayBuilder;
use crate::load::Origin;
use crate::stack::{Endpoint, Router};

/// How to run a gateway process.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where the config came from (a file is watched for reloads and is
    /// what the admin API persists to).
    pub origin: Origin,
    /// Serve MCP on stdin/stdout instead of HTTP.
    pub stdio: bool,
    /// The context profile served on stdio and at `/mcp`.
    pub profile: String,
    /// Serve the admin API here even if the config leaves it off.
    pub admin_listen: Option<SocketAddr>,
}

/// Why a gateway process could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The MCP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("{0}")]
    Serve(std::io::Error),
    /// The audit trail could not be opened.
    #[error("{0}")]
    Audit(#[from] only1mcp_auth::audit::Error),
    /// `audit.stdout` asked for with MCP on stdio, where stdout is MCP only.
    #[error("audit.stdout cannot be used with --stdio: stdout carries MCP; use audit.file")]
    AuditStdoutTaken,
}

impl<L, S> GatewayBuilder<L, S> {
    /// Runs the gateway process until Ctrl-C or SIGTERM (see the module
    /// docs). Logging must already be set up (`logging::init_with_traces`):
    /// when it turned traces on, every server's stack gets the
    /// [`TraceLayer`](only1mcp_observability::trace::TraceLayer) outside
    /// its server layers (a client span per backend call); with traces off
    /// the stacks stay as given.
    pub async fn run(self, options: RunOptions) -> Result<(), RunError>
    where
        L: Layer<Router>,
        L::Service: CallService + Sync,
        S: Layer<Endpoint> + Send + Sync + 'static,
        S::Service: CallService + Sync,
    {
        let res = if only1mcp_observability::trace::enabled() {
            self.outer_server_layer(only1mcp_observability::trace::TraceLayer::new())
                .run_as_given(options)
                .await
        } else {
            self.run_as_given(options).await
        };
        only1mcp_observability::trace::shutdown();
        res
    }

    /// [`GatewayBuilder::run`] with exactly the layers given.
    async fn run_as_given(self, options: RunOptions) -> Result<(), RunError>
    where
        L: Layer<Router>,
        L::Service: CallService + Sync,
        S: Layer<Endpoint> + Send + Sync + 'static,
        S::Service: CallService + Sync,
    {
        let config = self.config().clone();
        tracing::info!(config = %options.origin, servers = config.servers.len(), "Starting Only1MCP");
        if options.stdio && config.audit.stdout {
            return Err(RunError::AuditStdoutTaken);
        }
        // Opened before anything listens: a gateway that must audit and
        // cannot does not start.
        let auditor = only1mcp_auth::audit::Auditor::open(&config.audit)?;
        if let Some(file) = &config.audit.file {
            tracing::info!(file = %file.display(), "Audit trail open");
        }
        let builder = self.auditor(auditor);
        let listener = if options.stdio {
            None
        } else {
            let addr = config.http.listen;
            Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| RunError::Listen { addr, source })?,
            )
        };
        let gateway = builder.start().await;
        let catalog = gateway.catalog();
        tracing::info!(
            tools = catalog.entries(ListKind::Tools).len(),
            prompts = catalog.entries(ListKind::Prompts).len(),
            resources = catalog.entries(ListKind::Resources).len(),
            "Catalog ready"
        );
        drop(catalog);
        // Hot reload: the config file is watched, and SIGHUP asks for one.
        let _watcher = match &options.origin {
            Origin::File(path) => {
                let (trigger, triggers) = tokio::sync::mpsc::channel(1);
                spawn_sighup(trigger);
                match crate::reload::watch(gateway.clone(), path, triggers) {
                    Ok(watcher) => Some(watcher),
                    Err(e) => {
                        tracing::warn!(error = %e, "Cannot watch the config file; reload with SIGHUP is unavailable too");
                        None
                    }
                }
            }
            Origin::BuiltIn => None,
        };
        // The admin API, on its own listener (off under --stdio unless
        // asked for); a taken port (another gateway runs) costs the API,
        // not the gateway.
        let _admin = if config.admin.serves(options.stdio) || options.admin_listen.is_some() {
            let source = match &options.origin {
                Origin::File(path) => Some(path.clone()),
                Origin::BuiltIn => None,
            };
            let listen = options.admin_listen.unwrap_or(config.admin.listen);
            match crate::admin::start(
                gateway.clone(),
                &config.admin,
                listen,
                source,
                config.http.read_timeout,
            )
            .await
            {
                Ok(admin) => Some(admin),
                Err(e) => {
                    tracing::warn!(error = %e, "Admin API unavailable");
                    None
                }
            }
        } else {
            None
        };
        let res = match listener {
            None => {
                let (stdin, stdout) = stdio_streams();
                crate::serve::serve_stdio(
                    &gateway,
                    &options.profile,
                    tokio::io::BufReader::new(stdin),
                    stdout,
                    stop_signal(),
                )
                .await
            }
            Some(listener) => {
                crate::http::serve(&gateway, &config.http, listener, stop_signal()).await
            }
        };
        gateway.shutdown().await;
        tracing::info!("Stopped");
        res.map_err(RunError::Serve)
    }
}

/// The process's stdin and stdout as async streams. On Unix, when they are
/// pipes (an IDE, or any client that spawns the gateway), they are read and
/// written directly by the runtime's reactor; otherwise (a terminal, a file,
/// and always on Windows) through tokio's `stdin()`/`stdout()`, which hand
/// every read and write to the blocking thread pool. The direct path saves a
/// thread hand-off per operation (docs/performance.md).
#[cfg(not(unix))]
fn stdio_streams() -> (
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
) {
    tracing::info!("Serving MCP on stdio");
    (Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout()))
}

/// See the Windows version above.
#[cfg(unix)]
fn stdio_streams() -> (
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
) {
    use std::os::fd::AsFd as _;
    use tokio::net::unix::pipe;
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Receiver::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdin()),
    };
    let writer: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .and_then(pipe::Sender::from_owned_fd)
    {
        Ok(pipe) => Box::new(pipe),
        Err(_) => Box::new(tokio::io::stdout()),
    };
    tracing::info!("Serving MCP on stdio");
    (reader, writer)
}

/// Forwards SIGHUP to `trigger` (a reload request).
fn spawn_sighup(trigger: tokio::sync::mpsc::Sender<()>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            let _ = trigger.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(trigger);
}

/// Resolves on Ctrl-C or SIGTERM (Unix); on Ctrl-C, Ctrl-Break, or the
/// console closing, the user logging off or the system shutting down
/// (Windows).
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(windows)]
    {
        use tokio::signal::windows::{ctrl_break, ctrl_close, ctrl_logoff, ctrl_shutdown};
        let (Ok(mut brk), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) =
            (ctrl_break(), ctrl_close(), ctrl_logoff(), ctrl_shutdown())
        else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        // Windows ends the process a few seconds after a close, log-off or
        // shutdown event: the graceful stop must fit (http.shutdown_timeout).
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = brk.recv() => {}
            _ = close.recv() => {}
            _ = logoff.recv() => {}
            _ = shutdown.recv() => {}
        }
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
