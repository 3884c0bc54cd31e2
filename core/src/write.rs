//! The one write helper (DESIGN §4). A write route says what to write and which events it
//! caused; [`transact`] runs that in one MongoDB transaction together with the outbox entries of
//! the events and, when the request holds an `X-Idempotency-Key` claim, the reply to replay, then
//! publishes the events after commit.
//!
//! Recording the reply inside the transaction is what makes an idempotent retry exactly-once
//! even across a crash: either the write and its reply are both committed (a retry replays the
//! reply), or neither is (a retry takes the claim over once its lease expired and runs again).

use std::time::{Duration, Instant};

use chat3_sdk::{Data, EventEnvelope};
use mongodb::ClientSession;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::{idempotency, outbox, Ctx};

/// What a successful write answers, for the idempotency record.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 201 with `{data}`.
    Created,
    /// 200 with `{data}`.
    Ok,
    /// An intermediate step of a write made of several transactions (deleting a user removes
    /// them from each dialog in its own transaction): no reply is recorded; the last step
    /// records it, and a retry after a crash runs the remaining steps.
    Step,
    /// A fixed reply instead of `{data}`: for results that must not be stored (secrets).
    Fixed {
        /// HTTP status.
        status: u16,
        /// JSON body.
        body: serde_json::Value,
    },
}

impl Reply {
    fn render<T: Serialize>(&self, value: &T) -> Result<(u16, String)> {
        let (status, body) = match self {
            Reply::Created => (201, serde_json::to_string(&Data::new(value))),
            Reply::Ok | Reply::Step => (200, serde_json::to_string(&Data::new(value))),
            Reply::Fixed { status, body } => (*status, serde_json::to_string(body)),
        };
        body.map(|b| (status, b))
            .map_err(|e| Error::Internal(format!("reply not encodable: {e}")))
    }
}

/// What the transaction body produced: the result and the events it caused.
#[derive(Debug)]
pub struct Staged<T> {
    /// The result returned to the caller.
    pub value: T,
    /// Events to store in the outbox and publish after commit (none when nothing changed).
    pub events: Vec<EventEnvelope>,
    /// The recorded status instead of the [`Reply`]'s, for writes whose status depends on what
    /// they found (201 when something was created, 200 when it existed already).
    pub status: Option<u16>,
}

impl<T> Staged<T> {
    /// A result with its events.
    pub fn new(value: T, events: Vec<EventEnvelope>) -> Self {
        Self {
            value,
            events,
            status: None,
        }
    }

    /// The same, answered with `status` (`{data}` body) instead of the [`Reply`]'s.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

/// Runs `body` in a transaction (run again after a write conflict), stages its events,
/// records the idempotent reply, commits, and publishes the events. Domain errors returned by
/// `body` abort the transaction and come back unchanged.
pub async fn transact<T, F>(ctx: &Ctx, reply: Reply, body: F) -> Result<T>
where
    T: Serialize,
    F: for<'s> AsyncFnMut(&'s mut ClientSession) -> Result<Staged<T>>,
{
    let staged = commit(&ctx.store, reply, body).await?;
    ctx.publisher.submit(&staged.events);
    Ok(staged.value)
}

/// How long a write keeps retrying transactions that conflicted with concurrent writers (the
/// API's request deadline usually ends it first).
const CONFLICT_RETRY_WINDOW: Duration = Duration::from_secs(30);

/// [`transact`] without the publish: for writes that emit no event (tenants, keys), and the
/// first half of [`transact`].
///
/// A transaction that conflicted with a concurrent one (`TransientTransactionError` from a
/// write conflict) is run again, and a commit whose outcome is unknown is retried, both within
/// [`CONFLICT_RETRY_WINDOW`]. An unreachable store is not retried here: the caller learns at
/// once (503), instead of the driver's own loop waiting for two minutes.
pub async fn commit<T, F>(store: &Store, reply: Reply, mut body: F) -> Result<Staged<T>>
where
    T: Serialize,
    F: for<'s> AsyncFnMut(&'s mut ClientSession) -> Result<Staged<T>>,
{
    let started = Instant::now();
    let retry = |e: &mongodb::error::Error, label: &str| retryable(e, label, started);
    let mut session = store.client().start_session().await?;
    let mut attempt = 0u32;
    'run: loop {
        attempt += 1;
        session.start_transaction().await?;
        let ran: mongodb::error::Result<Staged<T>> = async {
            let staged = body(&mut session).await.map_err(Error::into_txn)?;
            for event in &staged.events {
                outbox::stage(store, &mut session, event).await?;
            }
            if !matches!(reply, Reply::Step) {
                let (status, text) = reply.render(&staged.value).map_err(Error::into_txn)?;
                let status = staged.status.unwrap_or(status);
                idempotency::record_in(store, &mut session, status, &text).await?;
            }
            Ok(staged)
        }
        .await;
        let staged = match ran {
            Ok(staged) => staged,
            Err(e) => {
                let _ = session.abort_transaction().await;
                if retry(&e, TRANSIENT) {
                    conflict_pause(attempt).await;
                    continue 'run;
                }
                return Err(Error::from_txn(e));
            }
        };
        loop {
            match session.commit_transaction().await {
                Ok(()) => return Ok(staged),
                Err(e) if retry(&e, UNKNOWN_COMMIT) => continue,
                Err(e) if retry(&e, TRANSIENT) => {
                    conflict_pause(attempt).await;
                    continue 'run;
                }
                Err(e) => return Err(Error::from_txn(e)),
            }
        }
    }
}

/// How long a write retries a transaction that failed because the store was briefly
/// unreachable (a failed heartbeat clears the connection pool): short, so an outage still
/// answers 503 within a few seconds.
const OUTAGE_RETRY_WINDOW: Duration = Duration::from_secs(1);

/// Whether a transaction that failed with `e` (carrying `label`) should run again: conflicts
/// for [`CONFLICT_RETRY_WINDOW`], a brief unreachability for [`OUTAGE_RETRY_WINDOW`].
pub(crate) fn retryable(e: &mongodb::error::Error, label: &str, started: Instant) -> bool {
    let window = if is_outage(e) {
        OUTAGE_RETRY_WINDOW
    } else {
        CONFLICT_RETRY_WINDOW
    };
    e.contains_label(label) && started.elapsed() < window
}

pub(crate) const TRANSIENT: &str = "TransientTransactionError";
pub(crate) const UNKNOWN_COMMIT: &str = "UnknownTransactionCommitResult";

/// The store is unreachable (as opposed to a conflict between writers).
pub(crate) fn is_outage(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    matches!(
        e.kind.as_ref(),
        ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::ServerSelection { .. }
    )
}

/// A short random pause before running a conflicted transaction again, growing with attempts,
/// so that competing writers spread apart.
pub(crate) async fn conflict_pause(attempt: u32) {
    use rand::Rng;
    let cap = 1u64 << attempt.min(5);
    let ms = rand::rng().random_range(0..=cap);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}
