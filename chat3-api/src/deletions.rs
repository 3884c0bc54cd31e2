//! The background job that removes the data of tenants being deleted
//! ([`chat3_core::tenant_deletion`]): `DELETE /api/tenants/{id}` hands it the tenant; at start
//! and every [`RESCAN`] it also picks up deletions that no process is finishing (one that was
//! interrupted by a restart or crash). Deletions run one after another; one that fails is
//! retried at the next rescan.

use std::collections::BTreeSet;
use std::time::Duration;

use chat3_core::store::Store;
use chat3_core::tenant_deletion;
use chat3_sdk::TenantId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How often unfinished deletions are looked for.
pub const RESCAN: Duration = Duration::from_secs(60);

/// Hands tenants over to the deletion job.
#[derive(Clone)]
pub struct Deletions {
    tx: mpsc::UnboundedSender<TenantId>,
}

impl Deletions {
    /// Asks the job to remove `tenant`'s data (marked deleting already); never blocks.
    pub fn request(&self, tenant: TenantId) {
        if self.tx.send(tenant).is_err() {
            tracing::warn!("tenant deletion job stopped; the next start resumes the deletion");
        }
    }
}

/// Starts the job; `grace` is how long a deletion waits for writes admitted before the keys'
/// revocation reached every instance (the key-cache TTL and a margin).
pub fn spawn(
    store: Store,
    grace: Duration,
    shutdown: CancellationToken,
) -> (Deletions, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(store, grace, rx, shutdown));
    (Deletions { tx }, task)
}

async fn run(
    store: Store,
    grace: Duration,
    mut rx: mpsc::UnboundedReceiver<TenantId>,
    shutdown: CancellationToken,
) {
    let mut rescan = tokio::time::interval(RESCAN);
    let mut queue = BTreeSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(t) = rx.recv() => { queue.insert(t); }
            _ = rescan.tick() => match tenant_deletion::pending(&store).await {
                Ok(found) => queue.extend(found),
                Err(e) => tracing::warn!(error = %e, "could not look for unfinished tenant deletions"),
            },
        }
        while let Some(tenant) = queue.pop_first() {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                done = tenant_deletion::run(&store, &tenant, grace, |_| {}) => match done {
                    Ok(_) => {}
                    // Finished meanwhile by another instance.
                    Err(chat3_core::Error::NotFound { .. }) => {}
                    Err(e) => tracing::warn!(
                        tenant = %tenant, error = %e,
                        "tenant deletion interrupted; retried at the next rescan"
                    ),
                },
            }
        }
    }
}
