//! A backend's lists: every page of each list read, with its cache hint;
//! refreshed when the backend says one changed; stored, and the catalog
//! told.

use std::sync::Arc;

use only1mcp_core::Error;
use only1mcp_core::catalog::{CacheHint, Lists};
use only1mcp_core::mcp::{self, Era, ListKind, ListPage};
use only1mcp_core::upstream::Call;
use only1mcp_transport::handshake::{ClientIdentity, Established};
use only1mcp_transport::network::AnyConnection;
use tower::Service;

use super::catalog::{LARGE_CATALOG, catalog_work, on_catalog_thread_later};
use super::{Backend, Hub};

/// The most pages read from one list (guards against a cursor loop).
const MAX_PAGES: usize = 1000;

/// A list result longer than this is read on the catalog thread (about
/// 0.3 ms of parsing).
const LARGE_LIST_BYTES: usize = 256 << 10;

impl Backend {
    /// Stores this backend's lists. Large ones they replace are freed on the
    /// catalog thread: thousands of items take milliseconds to free too.
    pub(super) fn replace_lists(&self, lists: Lists) {
        let previous = self.lists.swap(Arc::new(lists));
        if previous.items() > LARGE_CATALOG {
            on_catalog_thread_later(move || drop(previous));
        }
    }

    /// Tells `hub` that this backend's lists changed, and waits until the
    /// catalog includes them.
    pub(super) async fn lists_changed(&self, hub: &Arc<dyn Hub>) {
        let (hub, server) = (hub.clone(), self.id.clone());
        let large = hub.catalog_items() > LARGE_CATALOG;
        catalog_work(large, move || hub.lists_changed(&server)).await;
    }

    /// Reads again the lists the backend said changed, keeps the others,
    /// stores the result and tells `hub`. A list that fails to read keeps
    /// its old items; if none could be read, nothing changes.
    pub(super) async fn refresh_lists(
        &self,
        hub: &Arc<dyn Hub>,
        connection: &mut AnyConnection,
        established: &Established,
        changed: Vec<ListKind>,
    ) {
        let mut fetched = Vec::new();
        for kind in changed {
            match fetch_list(kind, &self.id, connection, established, &self.identity).await {
                Ok(list) => fetched.push((kind, list)),
                Err(e) => {
                    tracing::warn!(server = %self.id, list = kind.method(), error = %e, "Refreshing a list failed");
                }
            }
        }
        if fetched.is_empty() {
            return;
        }
        // The lists that did not change are copied, large ones on the
        // catalog thread: thousands of items take milliseconds.
        let old = self.lists.load_full();
        let large = old.items()
            + fetched
                .iter()
                .map(|(_, (items, _))| items.len())
                .sum::<usize>()
            > LARGE_CATALOG;
        let lists = catalog_work(large, move || {
            let mut lists = Lists {
                hints: old.hints.clone(),
                ..Lists::default()
            };
            for kind in ListKind::ALL {
                if !fetched.iter().any(|(k, _)| *k == kind) {
                    *lists.get_mut(kind) = old.get(kind).to_vec();
                }
            }
            for (kind, (items, hint)) in fetched {
                *lists.get_mut(kind) = items;
                set_hint(&mut lists, kind, hint);
            }
            lists
        })
        .await;
        self.replace_lists(lists);
        self.lists_changed(hub).await;
    }
}

/// Reads every list the backend offers; a list that fails is logged and left
/// empty.
pub(super) async fn fetch_lists(
    server: &str,
    connection: &mut AnyConnection,
    established: &Established,
    identity: &ClientIdentity,
) -> Lists {
    let mut lists = Lists::default();
    for kind in ListKind::ALL {
        if !kind.offered_by(&established.capabilities) {
            continue;
        }
        match fetch_list(kind, server, connection, established, identity).await {
            Ok((items, hint)) => {
                *lists.get_mut(kind) = items;
                set_hint(&mut lists, kind, hint);
            }
            Err(e) => tracing::warn!(server, list = kind.method(), error = %e, "Listing failed"),
        }
    }
    lists
}

/// Records (or forgets) a list's cache hint.
fn set_hint(lists: &mut Lists, kind: ListKind, hint: Option<CacheHint>) {
    match hint {
        Some(hint) => {
            lists.hints.insert(kind, hint);
        }
        None => {
            lists.hints.remove(&kind);
        }
    }
}

/// Reads every page of one list, with the cache hint it came with.
pub(super) async fn fetch_list(
    kind: ListKind,
    server: &str,
    connection: &mut AnyConnection,
    established: &Established,
    identity: &ClientIdentity,
) -> Result<(Vec<mcp::RawObject>, Option<CacheHint>), Error> {
    let mut items = Vec::new();
    let mut hint: Option<CacheHint> = None;
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let params = cursor
            .as_ref()
            .map(|c| serde_json::value::to_raw_value(&serde_json::json!({ "cursor": c })))
            .transpose()
            .map_err(|e| protocol(server, &e.to_string()))?;
        let params = match established.era {
            Era::Legacy => params,
            Era::Modern => {
                mcp::modern_params(params.as_deref(), &identity.capabilities, &identity.info)
                    .map_err(|e| protocol(server, &e.message))?
            }
        };
        let outcome = connection.call(Call::new(kind.method(), params)).await?;
        let result =
            outcome.map_err(|e| protocol(server, &format!("{} ({})", e.message, e.code)))?;
        // Thousands of tools take milliseconds to read: not on the runtime
        // thread.
        let large = result.get().len() > LARGE_LIST_BYTES;
        let page = catalog_work(large, move || ListPage::parse(kind, &result))
            .await
            .map_err(|e| protocol(server, &e.to_string()))?;
        if let Some(ttl_ms) = page.ttl_ms {
            let seen = hint.get_or_insert(CacheHint {
                ttl_ms,
                private: false,
            });
            seen.ttl_ms = seen.ttl_ms.min(ttl_ms);
            seen.private |= page.private;
        }
        items.extend(page.items);
        match page.next_cursor {
            Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
            _ => return Ok((items, hint)),
        }
    }
    Ok((items, hint))
}

fn protocol(server: &str, reason: &str) -> Error {
    Error::UpstreamProtocol {
        server: server.to_owned(),
        reason: reason.to_owned(),
    }
}
