//! Choosing stored updates for operators (`update-worker replay`): by tenant, user, seq range and
//! time range.

use bson::{doc, Document};
use chat3_sdk::{TenantId, Update, UserId};
use futures_util::{Stream, TryStreamExt};

use super::readable;
use crate::error::{Error, Result};
use crate::store::{coll, scoped, Store};

/// Which stored updates an operator replays.
#[derive(Debug, Clone)]
pub struct Selection {
    /// Tenant.
    pub tenant: TenantId,
    /// One user, or all of the tenant's.
    pub user: Option<UserId>,
    /// Lowest seq, inclusive.
    pub from_seq: Option<u64>,
    /// Highest seq, inclusive.
    pub to_seq: Option<u64>,
    /// Earliest `createdAt` (ms), inclusive.
    pub from_ms: Option<i64>,
    /// Latest `createdAt` (ms), exclusive.
    pub to_ms: Option<i64>,
}

impl Selection {
    fn filter(&self) -> Document {
        let mut extra = Document::new();
        if let Some(user) = &self.user {
            extra.insert("userId", user.as_str());
        }
        let mut seq = Document::new();
        if let Some(from) = self.from_seq {
            seq.insert("$gte", crate::docs::stored_seq(from));
        }
        if let Some(to) = self.to_seq {
            seq.insert("$lte", crate::docs::stored_seq(to));
        }
        if !seq.is_empty() {
            extra.insert("seq", seq);
        }
        let mut at = Document::new();
        if let Some(from) = self.from_ms {
            at.insert("$gte", from);
        }
        if let Some(to) = self.to_ms {
            at.insert("$lt", to);
        }
        if !at.is_empty() {
            extra.insert("createdAt", at);
        }
        scoped(&self.tenant, extra)
    }
}

/// How many stored updates `selection` matches.
pub async fn count(store: &Store, selection: &Selection) -> Result<u64> {
    Ok(store
        .coll(coll::UPDATES)
        .count_documents(selection.filter())
        .await?)
}

/// The stored updates `selection` matches, by user then seq.
pub async fn select(
    store: &Store,
    selection: &Selection,
) -> Result<impl Stream<Item = Result<Update>>> {
    let cursor = store
        .coll(coll::UPDATES)
        .find(selection.filter())
        .sort(doc! { "userId": 1, "seq": 1 })
        .await?;
    // An unreadable update is logged and skipped (see `readable`), not the end of the replay.
    Ok(cursor
        .map_err(Error::from)
        .try_filter_map(|d| async move { Ok(readable([d]).pop()) }))
}
