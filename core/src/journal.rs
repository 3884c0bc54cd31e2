//! Reading the event journal (the outbox's `events` collection, DESIGN §4) back: a time range
//! of events of chosen types, of one tenant or of all, oldest first. What `update-worker
//! reprocess` replays; the document layout stays in [`crate::outbox`].

use bson::{doc, Document};
use chat3_sdk::{EventEnvelope, TenantId};
use futures_util::TryStreamExt;

use crate::error::Result;
use crate::store::{coll, scoped, Store};

/// Which journal events to read.
#[derive(Debug, Clone)]
pub struct Range {
    /// One tenant's, or everyone's.
    pub tenant: Option<TenantId>,
    /// Event types (wire names).
    pub types: Vec<String>,
    /// Stored at or after this (ms since the epoch).
    pub from_ms: i64,
    /// Stored before this.
    pub to_ms: i64,
}

impl Range {
    fn filter(&self) -> Document {
        let range = doc! {
            "eventType": { "$in": &self.types },
            "createdAt": {
                "$gte": bson::DateTime::from_millis(self.from_ms),
                "$lt": bson::DateTime::from_millis(self.to_ms),
            },
        };
        match &self.tenant {
            Some(t) => scoped(t, range),
            None => range,
        }
    }
}

/// One journal entry: its event, or `None` when the stored envelope cannot be read (logged).
pub type Entry = Option<EventEnvelope>;

/// How many journal events `range` selects.
pub async fn count(store: &Store, range: &Range) -> Result<u64> {
    Ok(store
        .coll(coll::EVENTS)
        .count_documents(range.filter())
        .await?)
}

/// The journal events of `range`, oldest first, read as they are consumed.
pub struct Events {
    cursor: mongodb::Cursor<Document>,
}

impl Events {
    /// Opens the range.
    pub async fn open(store: &Store, range: &Range) -> Result<Self> {
        let cursor = store
            .coll(coll::EVENTS)
            .find(range.filter())
            .sort(doc! { "createdAt": 1, "_id": 1 })
            .await?;
        Ok(Self { cursor })
    }

    /// The next entry, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Entry>> {
        let Some(doc) = self.cursor.try_next().await? else {
            return Ok(None);
        };
        let parsed = crate::outbox::envelope_of(&doc);
        Ok(Some(match parsed {
            Ok(event) => Some(event),
            Err(e) => {
                tracing::warn!(id = ?doc.get("_id"), error = %e, "unreadable journal entry");
                None
            }
        }))
    }
}
