//! Group commit of message sends. Requests are queued to one of a few writer tasks (a dialog
//! always to the same one, so a dialog's sends are written in arrival order); each writer takes
//! everything queued (up to a batch) and commits it in one transaction of a fixed number of
//! store operations, whatever the batch size:
//!
//! 1. read the batch's dialogs, the senders' memberships (and, when asked, quoted messages,
//!    earlier messages with the same `clientMessageId`, and idempotency claims): one query each;
//! 2. assign each dialog's seqs and unread counts in arrival order;
//! 3. write: one multi-statement `update` of the dialogs (conditional on the `lastSeq` read),
//!    one `insert_many` of the messages, one multi-statement `update` of the memberships (the
//!    senders' watermarks and every member's activity key for the inbox), one `insert_many` of
//!    the `message.create` events into the outbox, and the idempotent replies;
//! 4. commit, then hand the events to the background publisher.
//!
//! A request that cannot be written (unknown dialog, sender not a member, ...) gets its error
//! and takes no seq; the others commit.
//!
//! Admission: each writer keeps a moving average of what one send costs it (a batch's commit
//! time over its size). A request whose expected wait — the sends queued ahead of it times that
//! cost — exceeds the configured bound is answered 503 `overloaded` at once, as is one that
//! finds the queue full or that, against the estimate, waited longer than the bound; none of
//! them is written. A batch is cut to what the writer commits in a quarter of the bound, so an
//! accepted send waits at most about the bound plus one batch. See `docs/write-path.md`.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bson::{doc, Bson, Document};
use chat3_sdk::{CreateMessage, DialogId, EventEnvelope, Message, TenantId};
use futures_util::TryStreamExt;
use mongodb::ClientSession;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::docs;
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::idempotency::{self, Claimed};
use crate::ids::{self, now_ms};
use crate::outbox::{self, Publisher};
use crate::plain;
use crate::store::{coll, Store};
use chat3_sdk::events::MessageCreated;

/// Settings of the send writers.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Writer tasks (a dialog always goes to the same one).
    pub writers: usize,
    /// Most sends committed in one transaction.
    pub max_batch: usize,
    /// Sends queued per writer before new ones are refused (503).
    pub queue: usize,
    /// A send that waited longer than this is refused (503) instead of written.
    pub max_wait: Duration,
}

impl Default for SendConfig {
    fn default() -> Self {
        Self {
            writers: 2,
            max_batch: 256,
            queue: 1024,
            max_wait: Duration::from_millis(250),
        }
    }
}

/// Batches smaller than this do not feed the cost estimate.
const COST_SAMPLE_MIN_BATCH: usize = 8;

/// How long a batch keeps retrying after it conflicted with another process.
const CONFLICT_RETRY_WINDOW: Duration = Duration::from_secs(5);

/// One send, validated, waiting for its writer.
pub(crate) struct Job {
    pub tenant: TenantId,
    pub dialog: DialogId,
    pub req: CreateMessage,
    pub message_type: String,
    pub meta: Document,
    pub claim: Option<Claimed>,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<Result<(Message, bool)>>,
}

/// The handle requests enqueue their sends on. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SendQueue {
    shards: Arc<Vec<(mpsc::Sender<Job>, Arc<Cost>)>>,
    max_wait: Duration,
}

/// What one send costs a writer, in microseconds: a moving average over its recent batches of
/// at least [`COST_SAMPLE_MIN_BATCH`] sends (0 until the first such batch: no refusal by
/// estimate while the load is light).
#[derive(Debug, Default)]
struct Cost {
    per_send_us: AtomicU64,
}

impl Cost {
    fn per_send(&self) -> Duration {
        Duration::from_micros(self.per_send_us.load(Ordering::Relaxed))
    }

    /// Folds in a batch of `sends` that took `took` (weight 1/4 for the newest batch).
    fn record(&self, sends: usize, took: Duration) {
        let now = (took.as_micros() as u64) / sends.max(1) as u64;
        let old = self.per_send_us.load(Ordering::Relaxed);
        let next = if old == 0 { now } else { (old * 3 + now) / 4 };
        self.per_send_us.store(next.max(1), Ordering::Relaxed);
    }

    /// Most sends to take into one batch: what fits a quarter of `max_wait`.
    fn batch_limit(&self, max_wait: Duration, max_batch: usize) -> usize {
        let per = self.per_send_us.load(Ordering::Relaxed);
        if per == 0 {
            return max_batch.max(1);
        }
        let fits = (max_wait.as_micros() as u64 / 4) / per;
        (fits as usize).clamp(1, max_batch.max(1))
    }
}

fn overloaded(why: &str) -> Error {
    Error::Unavailable {
        code: "overloaded",
        message: format!("{why}; retry after the Retry-After delay"),
    }
}

impl SendQueue {
    /// Starts the writers; they finish what is queued and end once `shutdown` is cancelled.
    pub fn start(
        store: Store,
        publisher: Publisher,
        config: SendConfig,
        shutdown: CancellationToken,
    ) -> (Self, Vec<JoinHandle<()>>) {
        let mut shards = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..config.writers.max(1) {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            let cost = Arc::new(Cost::default());
            shards.push((tx, cost.clone()));
            let writer = Writer {
                store: store.clone(),
                publisher: publisher.clone(),
                config: config.clone(),
                cost,
            };
            tasks.push(tokio::spawn(writer.run(rx, shutdown.clone())));
        }
        (
            Self {
                shards: Arc::new(shards),
                max_wait: config.max_wait,
            },
            tasks,
        )
    }

    /// Queues `job` and waits for its outcome; 503 `overloaded` at once when the queue is full.
    pub(crate) async fn submit(
        &self,
        tenant: TenantId,
        dialog: DialogId,
        req: CreateMessage,
        message_type: String,
        meta: Document,
    ) -> Result<(Message, bool)> {
        let (reply, answer) = oneshot::channel();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&tenant, &dialog).hash(&mut h);
        let (shard, cost) = &self.shards[(h.finish() % self.shards.len() as u64) as usize];
        let ahead = shard.max_capacity() - shard.capacity();
        let expected = cost.per_send().saturating_mul(ahead as u32 + 1);
        if expected > self.max_wait {
            return Err(overloaded("the store is at capacity"));
        }
        let job = Job {
            tenant,
            dialog,
            req,
            message_type,
            meta,
            claim: idempotency::current(),
            enqueued: Instant::now(),
            reply,
        };
        shard.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => overloaded("too many sends are waiting"),
            mpsc::error::TrySendError::Closed(_) => overloaded("the server is shutting down"),
        })?;
        answer
            .await
            .map_err(|_| Error::Internal("the send writer stopped".to_owned()))?
    }
}

struct Writer {
    store: Store,
    publisher: Publisher,
    config: SendConfig,
    cost: Arc<Cost>,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Job>, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(job) => job,
                    None => return,
                },
                _ = shutdown.cancelled() => break,
            };
            let mut batch = vec![first];
            let limit = self
                .cost
                .batch_limit(self.config.max_wait, self.config.max_batch);
            while batch.len() < limit {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit(batch).await;
        }
        // Shutting down: write what was already accepted.
        rx.close();
        let mut rest = Vec::new();
        while let Ok(job) = rx.try_recv() {
            rest.push(job);
        }
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(self.config.max_batch));
            self.commit(std::mem::replace(&mut rest, tail)).await;
        }
    }

    /// Commits `jobs` (retrying conflicts) and answers every one of them.
    async fn commit(&self, jobs: Vec<Job>) {
        let (jobs, late): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.enqueued.elapsed() <= self.config.max_wait);
        for job in late {
            let _ = job
                .reply
                .send(Err(overloaded("the send waited too long for the store")));
        }
        if jobs.is_empty() {
            return;
        }
        let started = Instant::now();
        let mut attempt = 0u32;
        let outcome = loop {
            attempt += 1;
            match self.try_commit(&jobs).await {
                Ok(done) => break Ok(done),
                Err(e) if is_conflict(&e, started) => {
                    tracing::debug!(attempt, error = %e, "send batch conflicted; running it again");
                    crate::write::conflict_pause(attempt).await;
                }
                Err(e) => break Err(e),
            }
        };
        match outcome {
            Ok((outcomes, events)) => {
                // Small batches say little about the cost of a send under load (their fixed
                // part dominates), and a light load needs no admission control.
                if attempt == 1 && jobs.len() >= COST_SAMPLE_MIN_BATCH {
                    self.cost.record(jobs.len(), started.elapsed());
                }
                self.publisher.submit(&events);
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, sends = jobs.len(), "send batch failed");
                for job in jobs {
                    let _ = job.reply.send(Err(e.duplicate()));
                }
            }
        }
    }

    /// One transaction for `jobs`: the outcome of each, and the events to publish.
    async fn try_commit(
        &self,
        jobs: &[Job],
    ) -> Result<(Vec<Result<(Message, bool)>>, Vec<EventEnvelope>)> {
        let store = &self.store;
        let started = Instant::now();
        let mut session = store.client().start_session().await?;
        session.start_transaction().await?;
        let result = write_batch(store, &mut session, jobs).await;
        match result {
            Ok(done) => {
                let written = started.elapsed();
                commit_retrying_unknown(&mut session).await?;
                tracing::debug!(
                    sends = jobs.len(),
                    write_us = written.as_micros() as u64,
                    total_us = started.elapsed().as_micros() as u64,
                    "send batch committed"
                );
                Ok(done)
            }
            Err(e) => {
                let _ = session.abort_transaction().await;
                Err(e)
            }
        }
    }
}

/// Commits, retrying a commit whose outcome is unknown (the driver's rule for commit).
async fn commit_retrying_unknown(session: &mut ClientSession) -> Result<()> {
    for _ in 0..3 {
        match session.commit_transaction().await {
            Ok(()) => return Ok(()),
            Err(e)
                if e.contains_label(crate::write::UNKNOWN_COMMIT)
                    && !crate::write::is_outage(&e) =>
            {
                continue
            }
            Err(e) => return Err(Error::Storage(e)),
        }
    }
    session.commit_transaction().await.map_err(Error::Storage)
}

/// Worth running the batch again: a conflict with another process (a write conflict, a dialog
/// or an idempotency claim changed since it was read, a `clientMessageId` inserted meanwhile:
/// the next read sees it).
fn is_conflict(e: &Error, started: Instant) -> bool {
    match e {
        Error::Storage(s) => {
            crate::write::retryable(s, crate::write::TRANSIENT, started)
                || (crate::error::is_duplicate_key(s) && started.elapsed() < CONFLICT_RETRY_WINDOW)
        }
        Error::Conflict { code, .. } => {
            *code == BATCH_CONFLICT && started.elapsed() < CONFLICT_RETRY_WINDOW
        }
        _ => false,
    }
}

/// Something the batch read changed before it wrote.
pub(crate) const BATCH_CONFLICT: &str = "batch_conflict";

type Key = (String, String);

fn key(tenant: &TenantId, dialog: &DialogId) -> Key {
    (tenant.to_string(), dialog.to_string())
}

/// `{$or: [...]}` of `parts`, or `None` when there are none.
fn any_of(parts: Vec<Document>) -> Option<Document> {
    (!parts.is_empty()).then(|| doc! { "$or": parts })
}

async fn find_all(
    store: &Store,
    session: &mut ClientSession,
    collection: &str,
    filter: Option<Document>,
) -> Result<Vec<Document>> {
    let Some(filter) = filter else {
        return Ok(Vec::new());
    };
    let mut cursor = store
        .coll(collection)
        .find(filter)
        .session(&mut *session)
        .await?;
    Ok(cursor.stream(&mut *session).try_collect().await?)
}

/// What the reads of a batch found.
struct Found {
    dialogs: HashMap<Key, Document>,
    members: HashSet<(String, String, String)>,
    quoted: HashMap<(String, String, String), Message>,
    by_client_id: HashMap<(String, String, String, String), Message>,
    claims_held: HashSet<usize>,
}

async fn read_batch(store: &Store, session: &mut ClientSession, jobs: &[Job]) -> Result<Found> {
    let mut dialog_keys = HashSet::new();
    let mut dialog_parts = Vec::new();
    let mut member_parts = Vec::new();
    let mut quoted_parts = Vec::new();
    let mut cmid_parts = Vec::new();
    let mut claim_parts = Vec::new();
    for j in jobs {
        let (t, d) = (j.tenant.as_str(), j.dialog.as_str());
        if dialog_keys.insert(key(&j.tenant, &j.dialog)) {
            dialog_parts.push(doc! { "tenantId": t, "dialogId": d });
        }
        member_parts
            .push(doc! { "tenantId": t, "dialogId": d, "userId": j.req.sender_id.as_str() });
        if let Some(q) = &j.req.quoted_message_id {
            // By its index only; the dialog is compared below (a quote from elsewhere is refused).
            quoted_parts.push(doc! { "tenantId": t, "messageId": q.as_str() });
        }
        if let Some(c) = &j.req.client_message_id {
            cmid_parts.push(doc! {
                "tenantId": t, "dialogId": d, "senderId": j.req.sender_id.as_str(), "clientMessageId": c,
            });
        }
        if let Some(claim) = &j.claim {
            claim_parts.push(claim.filter());
        }
    }
    let mut found = Found {
        dialogs: HashMap::new(),
        members: HashSet::new(),
        quoted: HashMap::new(),
        by_client_id: HashMap::new(),
        claims_held: HashSet::new(),
    };
    for d in find_all(store, session, coll::DIALOGS, any_of(dialog_parts)).await? {
        let k = (docs::s(&d, "tenantId")?, docs::s(&d, "dialogId")?);
        found.dialogs.insert(k, d);
    }
    for m in find_all(store, session, coll::MEMBERS, any_of(member_parts)).await? {
        found.members.insert((
            docs::s(&m, "tenantId")?,
            docs::s(&m, "dialogId")?,
            docs::s(&m, "userId")?,
        ));
    }
    for q in find_all(store, session, coll::MESSAGES, any_of(quoted_parts)).await? {
        let m = docs::message(&q)?;
        found.quoted.insert(
            (
                m.tenant_id.to_string(),
                m.dialog_id.to_string(),
                m.message_id.to_string(),
            ),
            m,
        );
    }
    for m in find_all(store, session, coll::MESSAGES, any_of(cmid_parts)).await? {
        let message = docs::message(&m)?;
        let k = (
            message.tenant_id.to_string(),
            message.dialog_id.to_string(),
            message.sender_id.to_string(),
            message.client_message_id.clone().unwrap_or_default(),
        );
        found.by_client_id.insert(k, message);
    }
    let held = find_all(store, session, coll::IDEMPOTENCY_KEYS, any_of(claim_parts)).await?;
    for (i, j) in jobs.iter().enumerate() {
        if let Some(claim) = &j.claim {
            if held.iter().any(|d| claim.matches(d)) {
                found.claims_held.insert(i);
            }
        }
    }
    Ok(found)
}

/// The running state of one dialog while seqs are assigned.
struct Running {
    old_seq: i64,
    seq: i64,
    count: i64,
    last: Option<Message>,
}

/// Reads, decides and writes one batch inside the caller's transaction.
async fn write_batch(
    store: &Store,
    session: &mut ClientSession,
    jobs: &[Job],
) -> Result<(Vec<Result<(Message, bool)>>, Vec<EventEnvelope>)> {
    let found = read_batch(store, session, jobs).await?;
    let now = now_ms();
    let mut running: HashMap<Key, Running> = HashMap::new();
    let mut outcomes: Vec<Option<Result<(Message, bool)>>> = Vec::with_capacity(jobs.len());
    // Sends created in this batch by client id, and repeats of them within the same batch.
    let mut created_by_cmid: HashMap<(String, String, String, String), usize> = HashMap::new();
    let mut repeat_of: HashMap<usize, usize> = HashMap::new();
    let mut message_docs = Vec::new();
    let mut events = Vec::new();
    // Per dialog, each member sender's highest (seq, count at it) in this batch.
    let mut watermarks: HashMap<Key, HashMap<String, (i64, i64)>> = HashMap::new();
    let mut replies = Vec::new();
    for (i, j) in jobs.iter().enumerate() {
        let (t, d, sender) = (
            j.tenant.to_string(),
            j.dialog.to_string(),
            j.req.sender_id.to_string(),
        );
        let Some(dialog_doc) = found.dialogs.get(&(t.clone(), d.clone())) else {
            outcomes.push(Some(Err(Error::not_found(
                "dialog_not_found",
                format!("dialog '{}' does not exist", j.dialog),
            ))));
            continue;
        };
        if j.claim.is_some() && !found.claims_held.contains(&i) {
            outcomes.push(Some(Err(idempotency::taken_over(j.claim.as_ref()))));
            continue;
        }
        if let Some(c) = &j.req.client_message_id {
            let k = (t.clone(), d.clone(), sender.clone(), c.clone());
            if let Some(original) = found.by_client_id.get(&k) {
                outcomes.push(Some(
                    super::same_or_conflict(original, &j.req, &j.message_type).map(|m| (m, false)),
                ));
                continue;
            }
            if let Some(&first) = created_by_cmid.get(&k) {
                // Resolved after the loop, once the first one's message exists.
                outcomes.push(None);
                repeat_of.insert(i, first);
                continue;
            }
            created_by_cmid.insert(k, i);
        }
        let countable = !super::is_system(&j.message_type);
        let is_member = found
            .members
            .contains(&(t.clone(), d.clone(), sender.clone()));
        if countable && !is_member {
            outcomes.push(Some(Err(Error::forbidden(
                "sender_not_member",
                format!(
                    "sender '{}' is not a member of dialog '{}'",
                    j.req.sender_id, j.dialog
                ),
            ))));
            continue;
        }
        let mut quote = None;
        if let Some(q) = &j.req.quoted_message_id {
            match found.quoted.get(&(t.clone(), d.clone(), q.to_string())) {
                None => {
                    outcomes.push(Some(Err(Error::not_found(
                        "quoted_message_not_found",
                        format!("quoted message '{q}' is not in this dialog"),
                    ))));
                    continue;
                }
                Some(original) if original.deleted_at.is_some() => {
                    outcomes.push(Some(Err(super::deleted(q))));
                    continue;
                }
                Some(original) => quote = Some(docs::snapshot(original)),
            }
        }
        let state = running
            .entry((t.clone(), d.clone()))
            .or_insert_with(|| Running {
                old_seq: docs::u(dialog_doc, "lastSeq") as i64,
                seq: docs::u(dialog_doc, "lastSeq") as i64,
                count: docs::u(dialog_doc, "msgCount") as i64,
                last: None,
            });
        state.seq += 1;
        if countable {
            state.count += 1;
        }
        let (seq, count_at) = (state.seq, state.count);
        let message_id = ids::message_id();
        let stored = docs::MessageDoc {
            message: Message {
                message_id: message_id.clone(),
                tenant_id: j.tenant.clone(),
                dialog_id: j.dialog.clone(),
                seq: seq as u64,
                sender_id: j.req.sender_id.clone(),
                content: j.req.content.clone(),
                message_type: j.message_type.clone(),
                meta: j
                    .meta
                    .iter()
                    .map(|(k, v)| (k.clone(), plain::to_json(v)))
                    .collect(),
                quoted_message_id: j.req.quoted_message_id.clone(),
                client_message_id: j.req.client_message_id.clone(),
                quoted_message: quote,
                created_at: now,
                edited_at: None,
                deleted_at: None,
                statuses: docs::empty_statuses(),
                reactions: Vec::new(),
            },
            count_at: count_at as u64,
        };
        let msg_doc = stored.to_doc();
        let message = stored.message;
        if is_member {
            // Later sends of the batch have higher seqs and counts: the last one wins.
            watermarks
                .entry((t.clone(), d.clone()))
                .or_default()
                .insert(sender.clone(), (seq, count_at));
        }
        events.push(event(
            &j.tenant,
            message_id.as_str(),
            Some(&j.dialog),
            &Actor::user(sender.as_str()),
            &MessageCreated {
                message: message.clone(),
            },
        ));
        if let Some(claim) = &j.claim {
            let body = serde_json::to_string(&chat3_sdk::Data::new(&message))
                .map_err(|e| Error::Internal(e.to_string()))?;
            replies.push((claim.clone(), body));
        }
        state.last = Some(message.clone());
        message_docs.push(msg_doc);
        outcomes.push(Some(Ok((message, true))));
    }
    if message_docs.is_empty() {
        return Ok((resolve_repeats(outcomes, &repeat_of, jobs), Vec::new()));
    }

    // Dialogs: the new lastSeq and count, conditional on what was read. Members: one pipeline
    // update per dialog raises every member's activity key and the senders' watermarks.
    let mut dialog_updates = Vec::new();
    let mut member_updates = Vec::new();
    for ((t, d), state) in &running {
        let last = state
            .last
            .as_ref()
            .map(plain::to_document)
            .transpose()?
            .map(Bson::Document)
            .unwrap_or(Bson::Null);
        dialog_updates.push(doc! {
            "q": { "tenantId": t, "dialogId": d, "lastSeq": state.old_seq },
            "u": { "$set": { "lastSeq": state.seq, "msgCount": state.count, "updatedAt": now, "lastMessage": last } },
        });
        let senders = watermarks
            .remove(&(t.clone(), d.clone()))
            .unwrap_or_default();
        member_updates.push(doc! {
            "q": { "tenantId": t, "dialogId": d },
            "u": [ { "$set": member_changes(now, &senders) } ],
            "multi": true,
        });
    }
    let expected = dialog_updates.len() as i64;
    let matched = run_update(store, session, coll::DIALOGS, dialog_updates).await?;
    if matched != expected {
        return Err(Error::conflict(
            BATCH_CONFLICT,
            "a dialog of the batch changed since it was read",
        ));
    }
    store
        .coll(coll::MESSAGES)
        .insert_many(message_docs)
        .session(&mut *session)
        .await?;
    run_update(store, session, coll::MEMBERS, member_updates).await?;
    outbox::stage_many(store, session, &events).await?;
    for (claim, body) in &replies {
        idempotency::record_claimed(store, session, claim, 201, body).await?;
    }
    Ok((resolve_repeats(outcomes, &repeat_of, jobs), events))
}

/// The `$set` stage for a dialog's members: activity for all, watermarks for `senders`
/// (user id → (seq, count at it)); never lowers either. User ids are literals (one could start
/// with `$`).
fn member_changes(now: i64, senders: &HashMap<String, (i64, i64)>) -> Document {
    let mut set = doc! {
        "lastActivityAt": { "$max": [ { "$ifNull": ["$lastActivityAt", 0_i64] }, now ] },
    };
    if senders.is_empty() {
        return set;
    }
    let branches = |pick: fn(&(i64, i64)) -> i64| -> Vec<Document> {
        senders
            .iter()
            .map(|(u, v)| doc! { "case": { "$eq": ["$userId", { "$literal": u }] }, "then": pick(v) })
            .collect()
    };
    let is_sender: Vec<Document> = senders
        .keys()
        .map(|u| doc! { "$eq": ["$userId", { "$literal": u }] })
        .collect();
    set.insert(
        "lastReadAt",
        doc! { "$cond": [ { "$or": is_sender }, now, { "$ifNull": ["$lastReadAt", Bson::Null] } ] },
    );
    for (field, pick) in [
        (
            "lastReadSeq",
            (|v: &(i64, i64)| v.0) as fn(&(i64, i64)) -> i64,
        ),
        ("readCount", |v: &(i64, i64)| v.1),
    ] {
        set.insert(
            field,
            doc! { "$max": [
                { "$ifNull": [format!("${field}"), 0_i64] },
                { "$switch": { "branches": branches(pick), "default": 0_i64 } },
            ] },
        );
    }
    set
}

/// A repeat of a `clientMessageId` within one batch gets the first one's message (or 409).
fn resolve_repeats(
    outcomes: Vec<Option<Result<(Message, bool)>>>,
    repeat_of: &HashMap<usize, usize>,
    jobs: &[Job],
) -> Vec<Result<(Message, bool)>> {
    let firsts: Vec<Option<Message>> = outcomes
        .iter()
        .map(|o| match o {
            Some(Ok((m, true))) => Some(m.clone()),
            _ => None,
        })
        .collect();
    outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            Some(r) => r,
            None => match repeat_of.get(&i).and_then(|&f| firsts[f].as_ref()) {
                Some(first) => super::same_or_conflict(first, &jobs[i].req, &jobs[i].message_type)
                    .map(|m| (m, false)),
                None => Err(Error::Internal("repeat of a send that failed".to_owned())),
            },
        })
        .collect()
}

/// Runs one `update` command with several statements; returns how many documents matched.
async fn run_update(
    store: &Store,
    session: &mut ClientSession,
    collection: &str,
    statements: Vec<Document>,
) -> Result<i64> {
    if statements.is_empty() {
        return Ok(0);
    }
    let reply = store
        .db()
        .run_command(doc! { "update": collection, "updates": statements, "ordered": true })
        .session(&mut *session)
        .await?;
    if let Ok(errors) = reply.get_array("writeErrors") {
        if !errors.is_empty() {
            return Err(Error::Internal(format!(
                "update of {collection} failed: {errors:?}"
            )));
        }
    }
    Ok(docs::ts(&reply, "n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cost_estimate_follows_recent_batches_and_cuts_batches_to_the_budget() {
        let c = Cost::default();
        let budget = Duration::from_millis(200);
        assert_eq!(c.per_send(), Duration::ZERO, "no estimate before a batch");
        assert_eq!(c.batch_limit(budget, 256), 256);
        c.record(10, Duration::from_millis(20));
        assert_eq!(c.per_send(), Duration::from_millis(2));
        // A quarter of 200 ms at 2 ms a send.
        assert_eq!(c.batch_limit(budget, 256), 25);
        assert_eq!(c.batch_limit(budget, 16), 16);
        c.record(10, Duration::from_millis(60));
        assert_eq!(c.per_send(), Duration::from_micros(3000));
        c.record(1, Duration::from_secs(10));
        assert_eq!(c.batch_limit(budget, 256), 1, "never below one send");
    }
}
