//! The catalog thread: catalog work on many items (reading a large list,
//! rebuilding the catalog, freeing replaced lists) runs there, so the one
//! runtime thread (ADR 0008) keeps serving.

/// Catalog work on more items than this (a rebuild, copying or freeing
/// lists) goes to the catalog thread. Less takes under about 0.3 ms (a
/// rebuild costs about 1.2 µs a tool, divan `catalog_build_50x100`) and
/// runs in place: a gateway with a small catalog starts no extra thread,
/// whose own heap would cost it about 2 MiB.
pub(crate) const LARGE_CATALOG: usize = 256;

/// Runs catalog work and returns its result: on the catalog thread if it
/// is `large`, else in place. With one runtime thread (ADR 0008), large
/// work done there would hold every other request for milliseconds.
pub(crate) async fn catalog_work<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> T {
    if large {
        on_catalog_thread(work).await
    } else {
        work()
    }
}

/// Runs `work` on the catalog thread and waits for its result: the catalog
/// work that takes milliseconds for thousands of tools (reading a list's
/// items, rebuilding). A panic there is a panic here, as if it ran inline.
async fn on_catalog_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = done.send(work());
    });
    if let Err(job) = to_catalog_thread(job) {
        tracing::warn!("No catalog thread; doing catalog work on the runtime thread");
        job();
    }
    finished.await.expect("catalog work panicked")
}

/// Runs `work` on the catalog thread without waiting for it (here, if
/// there is no catalog thread).
pub(super) fn on_catalog_thread_later(work: impl FnOnce() + Send + 'static) {
    if let Err(job) = to_catalog_thread(Box::new(work)) {
        job();
    }
}

/// Hands `job` to the catalog thread, or back if there is none.
fn to_catalog_thread(job: Job) -> Result<(), Job> {
    match catalog_thread() {
        Some(thread) => thread.send(job).map_err(|unsent| unsent.0),
        None => Err(job),
    }
}

/// Work for the catalog thread.
type Job = Box<dyn FnOnce() + Send>;

/// The thread catalog work runs on, one job after another (rebuilds are
/// serialized anyway), started on first use and named `catalog`: not
/// tokio's blocking pool, whose threads look like runtime workers. `None`
/// if it cannot be started.
fn catalog_thread() -> Option<&'static std::sync::mpsc::Sender<Job>> {
    static THREAD: std::sync::OnceLock<Option<std::sync::mpsc::Sender<Job>>> =
        std::sync::OnceLock::new();
    THREAD
        .get_or_init(|| {
            let (jobs, queue) = std::sync::mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("catalog".to_owned())
                // A job that panics is reported to its caller (its answer
                // never comes); the thread goes on with the next.
                .spawn(move || {
                    for job in queue {
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .ok()
                .map(|_| jobs)
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// On a runtime with one thread, a task keeps running while a catalog
    /// rebuild is under way: the rebuild waits for that task's message,
    /// which it could never get if it held the runtime's only thread.
    #[tokio::test(flavor = "current_thread")]
    async fn catalog_rebuilds_leave_the_runtime_thread_serving() {
        let (tx, rx) = mpsc::channel::<()>();
        let heard = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let rebuild = catalog_work(true, {
            let heard = heard.clone();
            move || {
                let got = rx.recv_timeout(Duration::from_secs(10)).is_ok();
                heard.store(got, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let other = async move {
            tokio::task::yield_now().await;
            let _ = tx.send(());
        };
        tokio::join!(rebuild, other);
        assert!(
            heard.load(std::sync::atomic::Ordering::SeqCst),
            "the other task did not run during the rebuild"
        );
    }
}
