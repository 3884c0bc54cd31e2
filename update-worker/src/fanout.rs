//! Events in, one update per recipient out, a batch of events at a time: decide the recipients
//! (one query for the whole batch), store their updates with per-user seqs (reading current
//! state after the heads, see `chat3_core::updates::fan_out_batch`), then publish every update
//! on the updates exchange, each user's in seq order.

use std::collections::{BTreeMap, HashMap, HashSet};

use chat3_core::bus::{Bus, BusError, Outgoing};
use chat3_core::store::Store;
use chat3_core::updates::{self, Planned, Work};
use chat3_sdk::{DialogId, EventEnvelope, TenantId, Update, UserId};

use crate::handlers::Handling;
use crate::shards::{self, ShardWork};
use crate::{state, topology};
use chat3_core::docs::{DialogDoc, MemberDoc};
use chat3_core::reads;

/// Why an event could not be turned into updates.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The event can never be processed (missing or malformed fields): dead-letter it.
    #[error("malformed event: {0}")]
    Poison(String),
    /// Storage failed; worth retrying.
    #[error(transparent)]
    Store(#[from] chat3_core::Error),
    /// Publishing failed; worth retrying (stored updates are re-published, not re-created).
    #[error("publishing an update failed: {0}")]
    Publish(#[from] BusError),
}

/// How a failure should be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Retrying cannot help (malformed event, an update that cannot be sent): dead-letter.
    Never,
    /// The store or the broker is unavailable, or writers contend: retry until it is back.
    UntilAvailable,
    /// Anything else: a bounded number of attempts, then requeue once, then dead-letter.
    Bounded,
}

impl ProcessError {
    /// How this failure should be retried.
    pub fn retry(&self) -> Retry {
        match self {
            ProcessError::Poison(_) => Retry::Never,
            ProcessError::Publish(e) if e.is_permanent() => Retry::Never,
            ProcessError::Publish(_) => Retry::UntilAvailable,
            ProcessError::Store(e) if e.is_unavailable() => Retry::UntilAvailable,
            ProcessError::Store(chat3_core::Error::Conflict { .. }) => Retry::UntilAvailable,
            ProcessError::Store(_) => Retry::Bounded,
        }
    }
}

/// An event checked and ready to fan out.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The event.
    pub event: EventEnvelope,
    /// The dialog it concerns (`None`: a user event).
    pub dialog: Option<DialogId>,
    /// What it means for the fan-out.
    pub handling: Handling,
}

impl Prepared {
    fn dialog_key(&self) -> Option<state::DialogKey> {
        Some((self.event.tenant_id.clone(), self.dialog.clone()?))
    }
}

/// Checks one event: `None` for types not handled, `Poison` when it lacks what its type needs.
pub fn prepare(event: EventEnvelope) -> Result<Option<Prepared>, ProcessError> {
    let Some(handling) = Handling::of(&event)? else {
        return Ok(None);
    };
    let dialog = event
        .dialog_id
        .clone()
        .or_else(|| handling.dialog_in_payload().cloned());
    if dialog.is_none() && handling.has_dialog() {
        return Err(ProcessError::Poison("no dialogId".to_owned()));
    }
    Ok(Some(Prepared {
        event,
        dialog,
        handling,
    }))
}

/// Stores and publishes the updates of one event; returns how many were published. Events of
/// types not handled return 0. Safe to repeat: a second run re-publishes the stored updates.
#[tracing::instrument(skip_all, fields(event_id = %event.event_id, tenant = %event.tenant_id, event_type = %event.event_type), err)]
pub async fn process_event(
    store: &Store,
    bus: &Bus,
    event: &EventEnvelope,
) -> Result<usize, ProcessError> {
    match prepare(event.clone())? {
        None => Ok(0),
        Some(p) => process_batch(store, bus, &[p]).await,
    }
}

/// Stores and publishes the updates of a batch of events for all their recipients; returns how
/// many were published. Safe to repeat: a second run re-publishes the stored updates.
#[tracing::instrument(skip_all, fields(events = batch.len()), err)]
pub async fn process_batch(
    store: &Store,
    bus: &Bus,
    batch: &[Prepared],
) -> Result<usize, ProcessError> {
    let typing = publish_ephemeral(store, bus, batch).await?;
    let stored = store_batch(store, &durable(batch)).await?;
    publish(bus, &stored).await?;
    Ok(typing + stored.len())
}

/// Stores and publishes the updates of a batch of events for the users given per event (a
/// shard's share, see [`crate::shards`]); returns how many were published.
#[tracing::instrument(skip_all, fields(events = batch.len()), err)]
pub async fn process_for(
    store: &Store,
    bus: &Bus,
    batch: &[Prepared],
    users: Vec<Vec<UserId>>,
) -> Result<usize, ProcessError> {
    let stored = store_for(store, batch, users).await?;
    publish(bus, &stored).await?;
    Ok(stored.len())
}

/// Splits a batch of events by user shard: reads their recipients and publishes one
/// [`ShardWork`] per (event, shard) on `exchange`, in event order, waiting for the confirms.
/// Returns how many work items were published.
#[tracing::instrument(skip_all, fields(events = batch.len()), err)]
pub async fn split(
    store: &Store,
    bus: &Bus,
    exchange: &str,
    shards: u16,
    batch: &[Prepared],
) -> Result<usize, ProcessError> {
    let typing = publish_ephemeral(store, bus, batch).await?;
    let batch = &durable(batch);
    let recipients = recipients(store, batch).await?;
    let mut work = Vec::new();
    for (p, users) in batch.iter().zip(recipients) {
        let mut by_shard: BTreeMap<u16, Vec<UserId>> = BTreeMap::new();
        for u in users {
            by_shard
                .entry(shards::shard_of(&p.event.tenant_id, &u, shards))
                .or_default()
                .push(u);
        }
        for (k, users) in by_shard {
            let item = ShardWork {
                event: p.event.clone(),
                users,
            };
            let body = serde_json::to_vec(&item)
                .map_err(|e| ProcessError::Poison(format!("work not encodable: {e}")))?;
            work.push((
                topology::shard_key(k),
                format!("{}:{k}", p.event.event_id),
                body,
            ));
        }
    }
    let items: Vec<Outgoing<'_>> = work
        .iter()
        .map(|(key, id, body)| Outgoing {
            routing_key: key,
            message_id: id,
            body,
        })
        .collect();
    for result in bus.publish_many(exchange, &items).await {
        result?;
    }
    Ok(typing + items.len())
}

/// The recipients of each event of `batch`, as its handling says (the dialogs' current members
/// read in one query for the batch).
async fn recipients(store: &Store, batch: &[Prepared]) -> Result<Vec<Vec<UserId>>, ProcessError> {
    let mut member_dialogs: Vec<state::DialogKey> = batch
        .iter()
        .filter(|p| p.handling.recipients().needs_members())
        .filter_map(Prepared::dialog_key)
        .collect();
    member_dialogs.sort();
    member_dialogs.dedup();
    let members_of = if member_dialogs.is_empty() {
        HashMap::new()
    } else {
        reads::member_ids(store, &member_dialogs).await?
    };
    Ok(batch
        .iter()
        .map(|p| {
            let members = p
                .dialog_key()
                .and_then(|k| members_of.get(&k))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            p.handling.recipients().resolve(members)
        })
        .collect())
}

/// Publishes the ephemeral events of `batch` (typing) to their recipients without storing
/// them or giving them a seq; returns how many updates went out. The others are left alone.
#[tracing::instrument(skip_all, err)]
pub async fn publish_ephemeral(
    store: &Store,
    bus: &Bus,
    batch: &[Prepared],
) -> Result<usize, ProcessError> {
    let ephemeral: Vec<Prepared> = batch
        .iter()
        .filter(|p| p.handling.is_ephemeral())
        .cloned()
        .collect();
    if ephemeral.is_empty() {
        return Ok(0);
    }
    let users = recipients(store, &ephemeral).await?;
    let mut wanted: HashMap<state::DialogKey, Vec<UserId>> = HashMap::new();
    for (p, users) in ephemeral.iter().zip(&users) {
        if let Some(key) = p.dialog_key() {
            wanted.entry(key).or_default().extend(users.iter().cloned());
        }
    }
    let members = reads::memberships(store, &wanted).await?;
    let now = chat3_core::ids::now_ms();
    let mut out = Vec::new();
    for (p, users) in ephemeral.iter().zip(users) {
        let Some(key) = p.dialog_key() else {
            continue;
        };
        for u in users {
            let Some(m) = members.get(&(key.clone(), u.clone())) else {
                continue;
            };
            out.push(Update {
                update_id: chat3_core::ids::update_id(),
                tenant_id: p.event.tenant_id.clone(),
                user_id: u,
                user_type: m.user_type.clone(),
                seq: None,
                update_type: p.handling.update_type(),
                event_type: p.event.event_type.clone(),
                event_id: p.event.event_id.clone(),
                dialog_id: p.dialog.clone(),
                created_at: now,
                data: serde_json::to_value(&p.event.data).unwrap_or_default(),
            });
        }
    }
    publish(bus, &out).await?;
    Ok(out.len())
}

/// The events of `batch` that are stored (all but the ephemeral ones).
pub fn durable(batch: &[Prepared]) -> Vec<Prepared> {
    batch
        .iter()
        .filter(|p| !p.handling.is_ephemeral())
        .cloned()
        .collect()
}

/// Decides the recipients of a batch and stores their updates (no publishing); the updates come
/// back sorted by (tenant, user, seq), the order to publish them in.
#[tracing::instrument(skip_all, fields(events = batch.len()), err)]
pub async fn store_batch(store: &Store, batch: &[Prepared]) -> Result<Vec<Update>, ProcessError> {
    let users = recipients(store, batch).await?;
    store_for(store, batch, users).await
}

/// Stores the updates of `batch` for the users given per event (no publishing), sorted by
/// (tenant, user, seq).
async fn store_for(
    store: &Store,
    batch: &[Prepared],
    users: Vec<Vec<UserId>>,
) -> Result<Vec<Update>, ProcessError> {
    let work: Vec<Work<'_>> = batch
        .iter()
        .zip(users)
        .map(|(p, users)| Work {
            event: &p.event,
            update_type: p.handling.update_type(),
            users,
        })
        .collect();
    let load = |pending: Vec<Vec<UserId>>| load_state(store, batch, pending);
    let stored = updates::fan_out_batch(store, &work, load).await?;
    let mut all: Vec<Update> = stored.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        (a.tenant_id.as_str(), a.user_id.as_str(), a.seq).cmp(&(
            b.tenant_id.as_str(),
            b.user_id.as_str(),
            b.seq,
        ))
    });
    Ok(all)
}

/// What each recipient of `batch` receives, read from current state (after their heads):
/// `pending` names, per event, the users asked for.
async fn load_state(
    store: &Store,
    batch: &[Prepared],
    pending: Vec<Vec<UserId>>,
) -> chat3_core::Result<Vec<Vec<Planned>>> {
    let mut keys: Vec<state::DialogKey> = batch.iter().filter_map(Prepared::dialog_key).collect();
    keys.sort();
    keys.dedup();
    let dialogs = reads::dialogs(store, &keys).await?;
    let mut wanted: HashMap<state::DialogKey, Vec<UserId>> = HashMap::new();
    for (p, users) in batch.iter().zip(&pending) {
        if let Some(key) = p.dialog_key() {
            wanted.entry(key).or_default().extend(users.iter().cloned());
        }
    }
    let members = reads::memberships(store, &wanted).await?;
    let ids: Vec<(TenantId, String)> = batch
        .iter()
        .filter_map(|p| {
            let id = p.handling.message_id()?;
            Some((p.event.tenant_id.clone(), id.to_string()))
        })
        .collect();
    let messages = if ids.is_empty() {
        HashMap::new()
    } else {
        reads::messages(store, &ids).await?
    };
    // The recipients' own reactions, for messages that have any.
    let reacted: Vec<(TenantId, String)> = messages
        .iter()
        .filter(|(_, m)| !m.reactions.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let mine = reads::reactions_by_user(store, &reacted).await?;
    let none = HashSet::new();
    Ok(batch
        .iter()
        .zip(&pending)
        .map(|(p, users)| {
            let key = p.dialog_key();
            let dialog = key.as_ref().and_then(|k| dialogs.get(k));
            let message_id = p.handling.message_id().map(|id| id.to_string());
            let message = message_id
                .as_ref()
                .and_then(|id| messages.get(&(p.event.tenant_id.clone(), id.clone())));
            users
                .iter()
                .filter_map(|u| {
                    let member = key
                        .as_ref()
                        .and_then(|k| members.get(&(k.clone(), u.clone())));
                    let Some((dialog, m)) = dialog.zip(member) else {
                        let (user_id, user_type, data) = p.handling.direct(&p.event, u)?;
                        return Some(Planned {
                            user_id,
                            user_type,
                            data,
                            update_type: None,
                        });
                    };
                    let reactions = message_id
                        .as_ref()
                        .and_then(|id| {
                            mine.get(&(p.event.tenant_id.clone(), id.clone(), u.clone()))
                        })
                        .unwrap_or(&none);
                    Some(plan(p, dialog, m, message, reactions))
                })
                .collect()
        })
        .collect())
}

/// What one recipient of `p` receives.
fn plan(
    p: &Prepared,
    dialog: &DialogDoc,
    m: &MemberDoc,
    message: Option<&chat3_sdk::Message>,
    mine: &HashSet<String>,
) -> Planned {
    let update_type = p.handling.update_type_for(&m.user_id);
    Planned {
        user_id: m.user_id.clone(),
        user_type: m.user_type.clone(),
        data: p.handling.data(dialog, m, message, mine),
        update_type: (update_type != p.handling.update_type()).then_some(update_type),
    }
}

/// Publishes `stored` in the given order (so each user's updates go out in seq order) with
/// routing key `update.{tenant}.{userType}.{user}.{updateType}` and message id = update id,
/// waiting for the broker's confirms. An update that can never be sent (its routing key does
/// not fit AMQP) is logged and skipped: it stays readable in the user's feed, and the others
/// still go out.
#[tracing::instrument(skip_all, fields(updates = stored.len()), err)]
pub async fn publish(bus: &Bus, stored: &[Update]) -> Result<(), ProcessError> {
    let encoded: Vec<(String, Vec<u8>)> = stored
        .iter()
        .map(|u| {
            serde_json::to_vec(u)
                .map(|body| (updates::routing_key(u), body))
                .map_err(|e| ProcessError::Poison(format!("update not encodable: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let items: Vec<Outgoing<'_>> = stored
        .iter()
        .zip(&encoded)
        .map(|(u, (key, body))| Outgoing {
            routing_key: key,
            message_id: &u.update_id,
            body,
        })
        .collect();
    let mut failure = None;
    for (u, result) in stored
        .iter()
        .zip(bus.publish_many(bus.updates_exchange(), &items).await)
    {
        match result {
            Ok(()) => {}
            Err(e) if e.is_permanent() => {
                tracing::error!(update_id = %u.update_id, user_id = %u.user_id, error = %e, "update cannot be published; it stays in the feed");
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    match failure {
        Some(e) => Err(ProcessError::Publish(e)),
        None => Ok(()),
    }
}
