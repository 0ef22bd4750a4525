//! The call series: one per server and tool (or prompt, or method), made
//! when the catalog names them, looked up per call without a lock or an
//! allocation.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use only1mcp_core::catalog::Catalog;
use only1mcp_core::mcp::{ListKind, method};

use super::histogram::{Histogram, Snapshot};
use super::labels::{self, ERROR_TYPES, METHODS, N_ERROR_TYPES, OTHER};

/// One series of calls: its labels, and a duration histogram per error
/// type (made the first time that error type occurs on it; success's
/// always).
#[derive(Debug)]
pub struct Series {
    /// The label pairs but `error_type`, rendered and escaped.
    labels: String,
    /// The server, for per-server sums.
    pub(crate) server: Arc<str>,
    ok: Histogram,
    failed: [OnceLock<Box<Histogram>>; N_ERROR_TYPES - 1],
}

impl Series {
    /// A series with `labels` (rendered pairs) of `server`.
    pub(crate) fn new(server: Arc<str>, labels: String) -> Self {
        Self {
            labels,
            server,
            ok: Histogram::default(),
            failed: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Records a call that ended as `error_idx` says (0: success) after
    /// `elapsed`.
    #[inline]
    pub fn record(&self, error_idx: usize, elapsed: Duration) {
        match error_idx.checked_sub(1) {
            None => self.ok.record(elapsed),
            Some(idx) => self.failed[idx]
                .get_or_init(|| Box::new(Histogram::default()))
                .record(elapsed),
        }
    }

    /// Every histogram of the series that has been used, with its error
    /// type.
    pub(crate) fn each(&self) -> impl Iterator<Item = (&'static str, Snapshot)> + '_ {
        std::iter::once((ERROR_TYPES[0], self.ok.snapshot())).chain(
            self.failed
                .iter()
                .enumerate()
                .filter_map(|(idx, h)| h.get().map(|h| (ERROR_TYPES[idx + 1], h.snapshot()))),
        )
    }

    /// Writes every used histogram of the series as `name`.
    pub(crate) fn render(&self, out: &mut String, name: &str) {
        for (error_type, snap) in self.each().filter(|(_, snap)| snap.count() > 0) {
            let labels = format!("{},error_type=\"{error_type}\"", self.labels);
            snap.render(out, name, &labels);
        }
    }
}

/// One server's series.
#[derive(Debug)]
pub(crate) struct ServerSeries {
    tools: HashMap<Arc<str>, Arc<Series>>,
    prompts: HashMap<Arc<str>, Arc<Series>>,
    /// Per method, for calls that name no tool or prompt of the catalog
    /// (an unlisted name folds into its method's `_OTHER`).
    methods: Vec<Arc<Series>>,
}

/// Every server's series: what the catalog names, swapped whole when it
/// changes.
#[derive(Debug, Default)]
pub(crate) struct Table {
    servers: HashMap<Arc<str>, ServerSeries>,
    /// Calls to a server the table does not know (yet).
    unknown: Option<ServerSeries>,
}

fn pairs(server: &str, method: &str, name_key: &str, name: &str) -> String {
    let mut labels = format!(
        "server=\"{}\",mcp_method_name=\"{}\"",
        labels::escape(server),
        labels::escape(method)
    );
    if !name_key.is_empty() {
        labels.push_str(&format!(",{name_key}=\"{}\"", labels::escape(name)));
    }
    labels
}

impl ServerSeries {
    fn new(server: &Arc<str>, previous: Option<&Self>) -> Self {
        let methods = METHODS
            .iter()
            .enumerate()
            .map(|(idx, method)| {
                previous
                    .and_then(|p| p.methods.get(idx).cloned())
                    .unwrap_or_else(|| {
                        let (key, name) = match *method {
                            method::TOOLS_CALL => ("gen_ai_tool_name", OTHER),
                            method::PROMPTS_GET => ("gen_ai_prompt_name", OTHER),
                            _ => ("", ""),
                        };
                        Arc::new(Series::new(
                            server.clone(),
                            pairs(server, method, key, name),
                        ))
                    })
            })
            .collect();
        Self {
            tools: HashMap::new(),
            prompts: HashMap::new(),
            methods,
        }
    }

    fn lookup(&self, method_idx: usize, name: Option<&str>) -> &Arc<Series> {
        let named = match (METHODS[method_idx], name) {
            (method::TOOLS_CALL, Some(name)) => self.tools.get(name),
            (method::PROMPTS_GET, Some(name)) => self.prompts.get(name),
            _ => None,
        };
        named.unwrap_or(&self.methods[method_idx])
    }
}

impl Table {
    /// The table for `catalog`'s tools and prompts, keeping the series of
    /// `previous` that still exist (their counts go on).
    pub(crate) fn build(catalog: &Catalog, previous: &Self) -> Self {
        let mut servers: HashMap<Arc<str>, ServerSeries> = HashMap::new();
        for (kind, method, key) in [
            (ListKind::Tools, method::TOOLS_CALL, "gen_ai_tool_name"),
            (ListKind::Prompts, method::PROMPTS_GET, "gen_ai_prompt_name"),
        ] {
            for entry in catalog.entries(kind) {
                let server = &entry.route.server;
                let old = previous.servers.get(server);
                let series = servers
                    .entry(server.clone())
                    .or_insert_with(|| ServerSeries::new(server, old));
                let kept = old.and_then(|old| match kind {
                    ListKind::Tools => old.tools.get(&entry.exposed),
                    _ => old.prompts.get(&entry.exposed),
                });
                let made = kept.cloned().unwrap_or_else(|| {
                    Arc::new(Series::new(
                        server.clone(),
                        pairs(server, method, key, &entry.exposed),
                    ))
                });
                match kind {
                    ListKind::Tools => series.tools.insert(entry.exposed.clone(), made),
                    _ => series.prompts.insert(entry.exposed.clone(), made),
                };
            }
        }
        // Servers with nothing listed keep their method series.
        for (server, old) in &previous.servers {
            if !servers.contains_key(server) {
                servers.insert(server.clone(), ServerSeries::new(server, Some(old)));
            }
        }
        Self {
            servers,
            unknown: Some(ServerSeries::new(
                &Arc::from(OTHER),
                previous.unknown.as_ref(),
            )),
        }
    }

    /// Makes sure `servers` have their method series (a server may be
    /// called before it lists anything).
    pub(crate) fn with_servers<'a>(
        &self,
        servers: impl IntoIterator<Item = &'a Arc<str>>,
    ) -> Option<Self> {
        let missing: Vec<&Arc<str>> = servers
            .into_iter()
            .filter(|s| !self.servers.contains_key(*s))
            .collect();
        if missing.is_empty() {
            return None;
        }
        let mut servers: HashMap<Arc<str>, ServerSeries> = self
            .servers
            .iter()
            .map(|(id, s)| {
                (
                    id.clone(),
                    ServerSeries {
                        tools: s.tools.clone(),
                        prompts: s.prompts.clone(),
                        methods: s.methods.clone(),
                    },
                )
            })
            .collect();
        for server in missing {
            servers.insert(server.clone(), ServerSeries::new(server, None));
        }
        Some(Self {
            servers,
            unknown: Some(ServerSeries::new(&Arc::from(OTHER), self.unknown.as_ref())),
        })
    }

    /// The series of a call of method `method_idx` naming `name` on
    /// `server`, if the table has it.
    #[inline]
    pub(crate) fn lookup(
        &self,
        server: &str,
        method_idx: usize,
        name: Option<&str>,
    ) -> Option<&Arc<Series>> {
        match self.servers.get(server) {
            Some(series) => Some(series.lookup(method_idx, name)),
            None => self.unknown.as_ref().map(|u| u.lookup(method_idx, None)),
        }
    }

    /// Every series, each once.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Series>> {
        self.servers
            .values()
            .chain(self.unknown.as_ref())
            .flat_map(|s| {
                s.methods
                    .iter()
                    .chain(s.tools.values())
                    .chain(s.prompts.values())
            })
    }
}
