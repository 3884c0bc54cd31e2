//! One event in, one update per recipient out: decide the recipients, store their updates with
//! per-user seqs (reading current state after each head, see `chat3_core::updates`), then publish
//! every update on the updates exchange.

use chat3_core::bus::{Bus, BusError};
use chat3_core::events::types;
use chat3_core::store::Store;
use chat3_core::updates::{self, Planned};
use chat3_sdk::{DialogId, EventEnvelope, Update, UpdateType, UserId};
use futures_util::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use crate::state;
use chat3_core::stripes::Stripes;

/// Updates published concurrently for one event.
const PUBLISH_CONCURRENCY: usize = 16;

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

/// The event types the worker turns into updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `dialog.create`: every member gets a `dialog` update.
    DialogCreate,
    /// `dialog.member.add`: every member (the added ones included) gets a `dialog` update.
    MemberAdd,
    /// `message.create`: every member gets a `message` update.
    MessageCreate,
    /// `dialog.read`: the reader gets a `dialog` update.
    DialogRead,
}

impl Kind {
    /// The kind of an event type, `None` for types not handled (yet).
    pub fn of(event_type: &str) -> Option<Self> {
        match event_type {
            types::DIALOG_CREATE => Some(Kind::DialogCreate),
            types::DIALOG_MEMBER_ADD => Some(Kind::MemberAdd),
            types::MESSAGE_CREATE => Some(Kind::MessageCreate),
            types::DIALOG_READ => Some(Kind::DialogRead),
            _ => None,
        }
    }

    fn update_type(self) -> UpdateType {
        match self {
            Kind::MessageCreate => UpdateType::Message,
            Kind::DialogCreate | Kind::MemberAdd | Kind::DialogRead => UpdateType::Dialog,
        }
    }
}

/// Stores and publishes the updates of one event; returns how many were published. Events of
/// types not handled return 0. Safe to repeat: a second run re-publishes the stored updates.
#[tracing::instrument(skip_all, fields(event_id = %event.event_id, tenant = %event.tenant_id, event_type = %event.event_type), err)]
pub async fn process_event(
    store: &Store,
    bus: &Bus,
    locks: &Stripes,
    event: &EventEnvelope,
) -> Result<usize, ProcessError> {
    let Some(kind) = Kind::of(&event.event_type) else {
        return Ok(0);
    };
    let stored = store_updates(store, locks, event, kind).await?;
    publish(bus, &stored).await?;
    Ok(stored.len())
}

/// Decides the recipients and stores their updates (no publishing).
#[tracing::instrument(skip_all, fields(event_id = %event.event_id), err)]
pub async fn store_updates(
    store: &Store,
    locks: &Stripes,
    event: &EventEnvelope,
    kind: Kind,
) -> Result<Vec<Update>, ProcessError> {
    let tenant = &event.tenant_id;
    let dialog_id = dialog_of(event)?;
    let recipients: Vec<UserId> = match kind {
        Kind::DialogRead => vec![field_id(&event.data, "userId")?],
        Kind::DialogCreate | Kind::MemberAdd | Kind::MessageCreate => {
            state::member_ids(store, tenant, &dialog_id).await?
        }
    };
    let message_id = match kind {
        Kind::MessageCreate => Some(message_id_of(event)?),
        _ => None,
    };
    if recipients.is_empty() {
        tracing::debug!(dialog_id = %dialog_id, "no recipients");
        return Ok(Vec::new());
    }

    let load = |users: Vec<UserId>| {
        let dialog_id = dialog_id.clone();
        let message_id = message_id.clone();
        async move {
            let Some(dialog) = state::dialog(store, tenant, &dialog_id).await? else {
                return Ok(Vec::new());
            };
            let members = state::members(store, tenant, &dialog_id, &users).await?;
            let message = match &message_id {
                Some(id) => Some(
                    state::message(store, tenant, id)
                        .await?
                        .or_else(|| event.data.get("message").cloned())
                        .unwrap_or(Value::Null),
                ),
                None => None,
            };
            Ok(members
                .into_iter()
                .map(|m| {
                    let mut data = Map::new();
                    data.insert("dialog".into(), state::dialog_view(&dialog, &m));
                    match kind {
                        Kind::MessageCreate => {
                            data.insert("message".into(), message.clone().unwrap_or(Value::Null));
                        }
                        Kind::MemberAdd => {
                            data.insert("member".into(), state::member_view(&dialog, &m));
                            let added = event.data.get("members").cloned().unwrap_or(json!([]));
                            data.insert("members".into(), added);
                        }
                        Kind::DialogCreate | Kind::DialogRead => {
                            data.insert("member".into(), state::member_view(&dialog, &m));
                        }
                    }
                    Planned {
                        user_id: m.user_id,
                        user_type: m.user_type,
                        data: Value::Object(data),
                    }
                })
                .collect())
        }
    };
    let _held = locks.lock(recipients.iter().map(|u| (tenant, u))).await;
    Ok(updates::fan_out(store, event, kind.update_type(), recipients, load).await?)
}

/// Publishes each update with routing key `update.{tenant}.{userType}.{user}.{updateType}` and
/// message id = update id, waiting for the broker's confirms.
#[tracing::instrument(skip_all, fields(updates = stored.len()), err)]
pub async fn publish(bus: &Bus, stored: &[Update]) -> Result<(), ProcessError> {
    // Futures collected first: a closure inside the stream trips the `Send` check of `spawn`.
    let sends: Vec<_> = stored.iter().map(|u| publish_one(bus, u)).collect();
    futures_util::stream::iter(sends)
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Publishes one update. One that can never be sent (its routing key does not fit AMQP) is
/// logged and skipped: it stays readable in the user's feed, and the other recipients of the
/// event still get theirs.
async fn publish_one(bus: &Bus, update: &Update) -> Result<(), ProcessError> {
    let body = serde_json::to_vec(update)
        .map_err(|e| ProcessError::Poison(format!("update not encodable: {e}")))?;
    match bus
        .publish_json(
            bus.updates_exchange(),
            &updates::routing_key(update),
            &update.update_id,
            &body,
        )
        .await
    {
        Err(e) if e.is_permanent() => {
            tracing::error!(update_id = %update.update_id, user_id = %update.user_id, error = %e, "update cannot be published; it stays in the feed");
            Ok(())
        }
        other => Ok(other?),
    }
}

/// The dialog an event concerns: the envelope's, else the payload's.
fn dialog_of(event: &EventEnvelope) -> Result<DialogId, ProcessError> {
    if let Some(d) = &event.dialog_id {
        return Ok(d.clone());
    }
    let nested = ["dialog", "message"]
        .iter()
        .find_map(|k| event.data.get(k)?.get("dialogId")?.as_str());
    let raw = nested
        .or_else(|| event.data.get("dialogId").and_then(Value::as_str))
        .ok_or_else(|| ProcessError::Poison("no dialogId".to_owned()))?;
    raw.parse()
        .map_err(|e| ProcessError::Poison(format!("dialogId: {e}")))
}

fn message_id_of(event: &EventEnvelope) -> Result<String, ProcessError> {
    event
        .data
        .get("message")
        .and_then(|m| m.get("messageId"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| (event.entity_type == "message").then(|| event.entity_id.clone()))
        .ok_or_else(|| ProcessError::Poison("no messageId".to_owned()))
}

fn field_id(data: &Value, key: &str) -> Result<UserId, ProcessError> {
    data.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ProcessError::Poison(format!("no {key}")))?
        .parse()
        .map_err(|e| ProcessError::Poison(format!("{key}: {e}")))
}
