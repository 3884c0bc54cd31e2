//! Reactions: a member sets or unsets a reaction on one message of the dialog
//! (`message.reaction.changed` when something changed). One per (message, user, reaction);
//! the message keeps the counts (`reactions: [{reaction, count}]`, in the order first set),
//! updated in the same transaction as the row, so counts are exact under concurrent writers
//! (they conflict on the message and run again). `me` is the viewer's side: the user's own rows.

use bson::{doc, Bson, Document};
use chat3_sdk::events::ReactionChanged;
use chat3_sdk::{
    DialogId, MessageId, MessageReactions, Page, ReactionCount, ReactionEntry, TenantId, UserId,
};
use futures_util::TryStreamExt;

use crate::docs;
use crate::error::{Error, Result};
use crate::events::{event, Actor};
use crate::filter::{Field, Kind, ListQuery, Resource};
use crate::ids::now_ms;
use crate::messages::change::{refresh_last, user_target};
use crate::store::{coll, scoped, Store};
use crate::write::{self, Reply, Staged};
use crate::Ctx;

/// Longest reaction, in characters.
pub const MAX_REACTION_CHARS: usize = 50;

/// Set or unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add the user's reaction (nothing when already set).
    Set,
    /// Remove it (nothing when not set).
    Unset,
}

impl Action {
    /// `set` or `unset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Set => "set",
            Action::Unset => "unset",
        }
    }
}

/// 1-50 characters, no control characters.
pub fn check_reaction(r: &str) -> Result<()> {
    let n = r.chars().count();
    if n == 0 || n > MAX_REACTION_CHARS || r.chars().any(char::is_control) {
        return Err(Error::invalid(
            "validation_error",
            format!(
                "reaction must be 1-{MAX_REACTION_CHARS} characters without control characters"
            ),
        ));
    }
    Ok(())
}

/// The reactions `user` set on `message`.
async fn mine_in(
    store: &Store,
    s: &mut mongodb::ClientSession,
    tenant: &TenantId,
    message: &MessageId,
    user: &UserId,
) -> Result<Vec<String>> {
    Ok(store
        .coll(coll::REACTIONS)
        .find(scoped(
            tenant,
            doc! {"messageId": message.as_str(), "userId": user.as_str()},
        ))
        .projection(doc! {"reaction": 1})
        .session(&mut *s)
        .await?
        .stream(&mut *s)
        .try_collect::<Vec<Document>>()
        .await?
        .iter()
        .filter_map(|d| d.get_str("reaction").ok().map(str::to_owned))
        .collect())
}

/// Sets or unsets `user`'s `reaction` on `message` (of `dialog`, which they are a member of).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, message = %message))]
pub async fn change(
    ctx: &Ctx,
    tenant: &TenantId,
    user: &UserId,
    dialog: &DialogId,
    message: &MessageId,
    action: Action,
    reaction: &str,
) -> Result<MessageReactions> {
    check_reaction(reaction)?;
    let _queued = ctx.message_locks.lock(format!("{tenant}/{message}")).await;
    let store = &ctx.store;
    write::transact(ctx, Reply::Ok, async |s| {
        let (_, stored) = user_target(store, s, tenant, user, dialog, message).await?;
        let mut m = stored.message;
        let key = scoped(
            tenant,
            doc! {"messageId": message.as_str(), "userId": user.as_str(), "reaction": reaction},
        );
        let rows = store.coll(coll::REACTIONS);
        let exists = rows.find_one(key.clone()).session(&mut *s).await?.is_some();
        let changed = match (action, exists) {
            (Action::Set, false) => {
                rows.insert_one(doc! {
                    "tenantId": tenant.as_str(), "dialogId": dialog.as_str(), "messageId": message.as_str(),
                    "userId": user.as_str(), "reaction": reaction, "createdAt": now_ms(),
                })
                .session(&mut *s)
                .await?;
                match m.reactions.iter_mut().find(|r| r.reaction == reaction) {
                    Some(r) => r.count += 1,
                    None => m.reactions.push(ReactionCount {
                        reaction: reaction.to_owned(),
                        count: 1,
                        me: false,
                    }),
                }
                true
            }
            (Action::Unset, true) => {
                rows.delete_one(key).session(&mut *s).await?;
                for r in &mut m.reactions {
                    if r.reaction == reaction {
                        r.count = r.count.saturating_sub(1);
                    }
                }
                m.reactions.retain(|r| r.count > 0);
                true
            }
            _ => false,
        };
        let mut events = Vec::new();
        if changed {
            let counts: Vec<Bson> = m
                .reactions
                .iter()
                .map(|r| Bson::Document(doc! {"reaction": &r.reaction, "count": docs::stored_seq(r.count)}))
                .collect();
            store
                .coll(coll::MESSAGES)
                .update_one(
                    scoped(tenant, doc! {"messageId": message.as_str()}),
                    doc! {"$set": {"reactions": counts}},
                )
                .session(&mut *s)
                .await?;
            refresh_last(store, s, &m).await?;
            events.push(event(
                tenant,
                message.as_str(),
                Some(dialog),
                &Actor::user(user.as_str()),
                &ReactionChanged {
                    message_id: message.clone(),
                    user_id: user.clone(),
                    reaction: reaction.to_owned(),
                    action: action.as_str().to_owned(),
                },
            ));
        }
        let mine = mine_in(store, s, tenant, message, user).await?;
        for r in &mut m.reactions {
            r.me = mine.contains(&r.reaction);
        }
        Ok(Staged::new(
            MessageReactions {
                message_id: message.clone(),
                reactions: m.reactions,
            },
            events,
        ))
    })
    .await
}

/// What the message reactions of a message may filter and sort by: they are read within the message
/// through `(tenantId, messageId, userId, ...)`, so `userId` is index-backed; the others scan
/// the message's rows (bounded by [`crate::filter::SCAN_MAX_TIME`]).
pub const LIST: Resource = Resource {
    name: "message reactions",
    fields: &[
        Field::indexed("userId", "userId", Kind::Str),
        Field::scanned("reaction", "reaction", Kind::Str),
        Field::scanned("createdAt", "createdAt", Kind::Int),
    ],
    meta: None,
    sorts: &[("createdAt", "createdAt")],
};

/// Who reacted how to a message, oldest first, for a member of its dialog (403 `not_a_member`
/// otherwise).
#[tracing::instrument(skip_all, fields(tenant = %tenant, user = %user, message = %message))]
pub async fn list(
    store: &Store,
    tenant: &TenantId,
    user: &UserId,
    dialog: &DialogId,
    message: &MessageId,
    q: &ListQuery,
    (page, limit): (u64, u64),
) -> Result<Page<ReactionEntry>> {
    crate::messages::change::rows_of(
        store,
        coll::REACTIONS,
        "reaction",
        tenant,
        user,
        dialog,
        message,
        q,
        (page, limit),
    )
    .await?
    .try_map(|d| {
        Ok(ReactionEntry {
            user_id: docs::parse(&d, "userId")?,
            reaction: docs::s(&d, "reaction")?,
            created_at: docs::ts(&d, "createdAt"),
        })
    })
}
